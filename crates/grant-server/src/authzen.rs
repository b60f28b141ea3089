//! OpenID AuthZEN Authorization API 1.0: evaluation, evaluations and the
//! metadata document, mapped onto Grant's requests as the lifecycle spec
//! says (docs/authzen.md is the guide).
//!
//! An AuthZEN request becomes a Grant request: the tool is `action.name`;
//! `subject.type`, `subject.id`, `resource.type` and `resource.id` are
//! attributes of those names; each key of `subject.properties`,
//! `resource.properties`, `action.properties` and `context` is an attribute
//! under `subject.`, `resource.`, `action.` and `context.` (a nested object
//! spells deeper dotted paths, as in native requests); `context.ttl` is the
//! asked ttl. Unlike the native API, attributes the policy does not declare
//! are ignored: AuthZEN callers send what they have. Every decision then
//! takes the service's one decision path (`AppState::decide_request`).

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::response::{IntoResponse, Response};
use grant_engine::{Decision, Engine, Obligations, RequestError, RequestErrorKind};
use grant_ledger::LedgerDecision;
use serde_json::{Map, Value, json};

use crate::auth::Role;
use crate::body::{json_bytes, parse_object};
use crate::error::ApiError;
use crate::state::AppState;

type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;
type Object = Map<String, Value>;

/// `POST /access/v1/evaluation`.
pub async fn evaluation(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let request = match read(&app, &headers, body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    match single(&request) {
        Ok(evaluation) => {
            let engine = app.engine();
            Json(decide(&app, &engine, Ok(evaluation))).into_response()
        }
        Err(error) => ApiError::bad_request(error).into_response(),
    }
}

/// The caller checked, then the body: a JSON object.
fn read(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Object, ApiError> {
    app.caller(headers)?.require(Role::Decide)?;
    parse_object(&json_bytes(headers, body)?)
}

/// `POST /access/v1/evaluations`: every item decided under one policy, in
/// order, until the semantic says stop.
pub async fn evaluations(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let request = match read(&app, &headers, body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let batch = match Batch::read(&request) {
        Ok(batch) => batch,
        Err(error) => return ApiError::bad_request(error).into_response(),
    };
    let engine = app.engine();
    let Some(items) = batch.items else {
        // No `evaluations` (or an empty one): AuthZEN 1.0 says the request
        // is then a single evaluation, answered as one.
        return match batch.defaults.complete() {
            Ok(evaluation) => Json(decide(&app, &engine, Ok(evaluation))).into_response(),
            Err(error) => ApiError::bad_request(error).into_response(),
        };
    };
    let mut answers = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let evaluation = item.and_then(|item| {
            batch
                .defaults
                .overridden_by(&item)
                .complete()
                .map_err(|e| format!("evaluations[{i}]: {e}, in the item or at the top level"))
        });
        let answer = decide(&app, &engine, evaluation);
        let granted = answer.get("decision") == Some(&Value::Bool(true));
        answers.push(answer);
        match batch.semantic {
            Semantic::DenyOnFirstDeny if !granted => break,
            Semantic::PermitOnFirstPermit if granted => break,
            _ => {}
        }
    }
    Json(json!({ "evaluations": answers })).into_response()
}

/// `GET /.well-known/authzen-configuration` (no authentication: it says
/// only where the endpoints are).
pub async fn metadata(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let base = match &app.settings.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let scheme = if app.settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            // The Host header is the caller's word: used only when it is a
            // plain host[:port], so that nothing else lands in the URLs.
            let host = headers
                .get(HOST)
                .and_then(|value| value.to_str().ok())
                .filter(|host| plain_authority(host))
                .map_or_else(|| app.settings.listen.to_string(), str::to_string);
            format!("{scheme}://{host}")
        }
    };
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
    .into_response()
}

fn plain_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

// ----- reading requests ---------------------------------------------------

/// A subject, resource or action as given: each part optional until the
/// evaluation is complete (batch defaults may fill it in).
#[derive(Clone, Copy, Debug, Default)]
struct Entity<'a> {
    /// `type` (subject, resource) or `name` (action).
    kind: Option<&'a str>,
    /// `id` (subject, resource).
    id: Option<&'a str>,
    properties: Option<&'a Object>,
}

/// One evaluation's four parts, any of which may be missing.
#[derive(Clone, Copy, Debug, Default)]
struct Parts<'a> {
    subject: Option<Entity<'a>>,
    action: Option<Entity<'a>>,
    resource: Option<Entity<'a>>,
    context: Option<&'a Object>,
}

/// A complete evaluation.
#[derive(Clone, Copy, Debug)]
struct Evaluation<'a> {
    subject: (&'a str, &'a str, Option<&'a Object>),
    action: (&'a str, Option<&'a Object>),
    resource: (&'a str, &'a str, Option<&'a Object>),
    context: Option<&'a Object>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// An evaluations request: the defaults, each item read (or why it could
/// not be), and the semantic.
struct Batch<'a> {
    defaults: Parts<'a>,
    items: Option<Vec<Result<Parts<'a>, String>>>,
    semantic: Semantic,
}

impl<'a> Batch<'a> {
    /// A malformed top level (a default or `options` of the wrong shape,
    /// `evaluations` not an array) is an `Err`: a 400. A malformed item is
    /// that item's error only.
    fn read(request: &'a Object) -> Result<Batch<'a>, String> {
        let defaults = Parts::read(request, "")?;
        let semantic = match request.get("options") {
            None | Some(Value::Null) => Semantic::ExecuteAll,
            Some(Value::Object(options)) => match options.get("evaluations_semantic") {
                None | Some(Value::Null) => Semantic::ExecuteAll,
                Some(Value::String(name)) => match name.as_str() {
                    "execute_all" => Semantic::ExecuteAll,
                    "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
                    "permit_on_first_permit" => Semantic::PermitOnFirstPermit,
                    other => {
                        return Err(format!(
                            "`options.evaluations_semantic` `{}` is not one of `execute_all`, `deny_on_first_deny`, `permit_on_first_permit`",
                            excerpt(other)
                        ));
                    }
                },
                Some(other) => {
                    return Err(mistyped("options.evaluations_semantic", "a string", other));
                }
            },
            Some(other) => return Err(mistyped("options", "an object", other)),
        };
        let items = match request.get("evaluations") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Object(item) => Parts::read(item, &format!("evaluations[{i}].")),
                        other => Err(mistyped(&format!("evaluations[{i}]"), "an object", other)),
                    })
                    .collect(),
            ),
            Some(other) => return Err(mistyped("evaluations", "an array", other)),
        };
        Ok(Batch {
            defaults,
            items,
            semantic,
        })
    }
}

/// A single evaluation: every part required.
fn single(request: &Object) -> Result<Evaluation<'_>, String> {
    Parts::read(request, "")?.complete()
}

impl<'a> Parts<'a> {
    /// Reads the four parts of `object` (at `at`, for messages), checking
    /// the type of each field given; unknown fields are ignored.
    fn read(object: &'a Object, at: &str) -> Result<Parts<'a>, String> {
        Ok(Parts {
            subject: Entity::read(object.get("subject"), &format!("{at}subject"), "type", true)?,
            action: Entity::read(object.get("action"), &format!("{at}action"), "name", false)?,
            resource: Entity::read(
                object.get("resource"),
                &format!("{at}resource"),
                "type",
                true,
            )?,
            context: match object.get("context") {
                None | Some(Value::Null) => None,
                Some(Value::Object(context)) => Some(context),
                Some(other) => return Err(mistyped(&format!("{at}context"), "an object", other)),
            },
        })
    }

    /// These parts as defaults, with `item`'s parts in their place: a part
    /// the item gives replaces the default whole, except that a missing
    /// `type` or `id` falls back to the default's.
    fn overridden_by(&self, item: &Parts<'a>) -> Parts<'a> {
        let with_fallback = |own: Option<Entity<'a>>, default: Option<Entity<'a>>| match own {
            Some(own) => Some(Entity {
                kind: own.kind.or(default.and_then(|d| d.kind)),
                id: own.id.or(default.and_then(|d| d.id)),
                properties: own.properties,
            }),
            None => default,
        };
        Parts {
            subject: with_fallback(item.subject, self.subject),
            action: item.action.or(self.action),
            resource: with_fallback(item.resource, self.resource),
            context: item.context.or(self.context),
        }
    }

    fn complete(&self) -> Result<Evaluation<'a>, String> {
        let subject = self.subject.ok_or("`subject` is required")?;
        let action = self.action.ok_or("`action` is required")?;
        let resource = self.resource.ok_or("`resource` is required")?;
        Ok(Evaluation {
            subject: (
                subject.kind.ok_or("`subject.type` is required")?,
                subject.id.ok_or("`subject.id` is required")?,
                subject.properties,
            ),
            action: (
                action.kind.ok_or("`action.name` is required")?,
                action.properties,
            ),
            resource: (
                resource.kind.ok_or("`resource.type` is required")?,
                resource.id.ok_or("`resource.id` is required")?,
                resource.properties,
            ),
            context: self.context,
        })
    }
}

impl<'a> Entity<'a> {
    /// `kind_key` is `type` or `name`; `with_id` whether an `id` belongs.
    fn read(
        value: Option<&'a Value>,
        at: &str,
        kind_key: &str,
        with_id: bool,
    ) -> Result<Option<Entity<'a>>, String> {
        let object = match value {
            None => return Ok(None),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(mistyped(at, "an object", other)),
        };
        let string = |key: &str| match object.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(mistyped(&format!("{at}.{key}"), "a string", other)),
        };
        Ok(Some(Entity {
            kind: string(kind_key)?,
            id: if with_id { string("id")? } else { None },
            properties: match object.get("properties") {
                None | Some(Value::Null) => None,
                Some(Value::Object(properties)) => Some(properties),
                Some(other) => {
                    return Err(mistyped(&format!("{at}.properties"), "an object", other));
                }
            },
        }))
    }
}

fn mistyped(at: &str, expected: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("`{at}` must be {expected}, found {found}")
}

/// At most 64 characters of caller text in a message.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

// ----- mapping and deciding -----------------------------------------------

/// The attributes an evaluation gives that the policy declares (dotted
/// paths), and the asked ttl; `Err` when a property collides with a field.
fn attributes<'a>(
    engine: &Engine,
    evaluation: &Evaluation<'a>,
) -> Result<(Object, Option<&'a Value>), String> {
    let mut attrs = Object::new();
    let (subject_type, subject_id, subject_properties) = evaluation.subject;
    let (_, action_properties) = evaluation.action;
    let (resource_type, resource_id, resource_properties) = evaluation.resource;
    for (path, value) in [
        ("subject.type", subject_type),
        ("subject.id", subject_id),
        ("resource.type", resource_type),
        ("resource.id", resource_id),
    ] {
        if engine.attr(path).is_some() {
            attrs.insert(path.to_string(), Value::String(value.to_string()));
        }
    }
    for (group, properties, reserved) in [
        ("subject", subject_properties, &["id", "type"][..]),
        ("resource", resource_properties, &["id", "type"][..]),
        ("action", action_properties, &["name"][..]),
    ] {
        for (key, value) in properties.into_iter().flatten() {
            if reserved.contains(&key.as_str()) {
                return Err(format!(
                    "`{group}.properties.{key}` collides with `{group}.{key}`; rename the property"
                ));
            }
            add(engine, &mut attrs, format!("{group}.{key}"), value)?;
        }
    }
    let mut ttl = None;
    for (key, value) in evaluation.context.into_iter().flatten() {
        if key == "ttl" {
            ttl = Some(value);
        } else {
            add(engine, &mut attrs, format!("context.{key}"), value)?;
        }
    }
    Ok((attrs, ttl))
}

/// Adds `value` at `path` if the policy declares it, or each member of an
/// object at the deeper paths it spells; anything else is ignored. (JSON
/// parsing bounds the depth, so the recursion is bounded.)
fn add(engine: &Engine, attrs: &mut Object, path: String, value: &Value) -> Result<(), String> {
    if engine.attr(&path).is_some() {
        if attrs.contains_key(&path) {
            return Err(format!(
                "attribute `{}` is given twice (nested and dotted)",
                excerpt(&path)
            ));
        }
        attrs.insert(path, value.clone());
    } else if let Value::Object(members) = value {
        for (key, member) in members {
            add(engine, attrs, format!("{path}.{key}"), member)?;
        }
    }
    Ok(())
}

/// Decides one evaluation (or an item that could not be read) and answers
/// it in AuthZEN's shape.
fn decide(app: &AppState, engine: &Engine, evaluation: Result<Evaluation<'_>, String>) -> Value {
    let started = Instant::now();
    let mut request = engine.request();
    let (tool, attrs, ttl, problem) = match evaluation {
        Ok(evaluation) => match attributes(engine, &evaluation) {
            Ok((attrs, ttl)) => (evaluation.action.0, attrs, ttl, None),
            Err(problem) => (evaluation.action.0, Object::new(), None, Some(problem)),
        },
        Err(problem) => ("", Object::new(), None, Some(problem)),
    };
    // An item that could not be read is refused with its one problem, not
    // also with what reading nothing would add (an empty tool).
    if !tool.is_empty() || problem.is_none() {
        engine.read_parts(tool, &attrs, ttl, &mut request);
    }
    if let Some(problem) = problem {
        request.refuse(RequestError::new(RequestErrorKind::Malformed, problem));
    }
    let decision = app.decide_request(
        engine,
        &mut request,
        started,
        granted,
        || json!({ "api": "authzen", "tool": tool, "attrs": attrs, "ttl": ttl }),
    );
    answer(&decision)
}

/// Whether an AuthZEN caller is granted `decision`: an allow that binds it
/// to nothing it cannot honour.
fn granted(decision: &Decision) -> bool {
    decision.is_allow()
        && decision
            .obligations
            .as_ref()
            .is_none_or(grant_engine::Obligations::is_empty)
}

/// The AuthZEN answer to a decision.
fn answer(decided: &LedgerDecision) -> Value {
    let decision = &decided.decision;
    if !decision.errors.is_empty() {
        return json!({
            "decision": false,
            "context": {
                "error": decision.errors.join("; "),
                "decision_id": decided.decision_id,
                "policy_hash": decision.policy_hash,
            },
        });
    }
    let obligations = decision
        .obligations
        .as_ref()
        .filter(|o| decision.is_allow() && !o.is_empty());
    if let Some(obligations) = obligations {
        return json!({
            "decision": false,
            "context": {
                "reason": format!(
                    "the policy allows this only with obligations ({}) that need Grant's ledger, which an AuthZEN caller cannot honour: request a grant through the native API (POST /v1/grants)",
                    describe(obligations)
                ),
                "ttl_seconds": Value::Null,
                "decision_id": decided.decision_id,
                "policy_hash": decision.policy_hash,
                "rules": decision.rules,
                "reasons": decision.reasons,
                "obligations": obligations,
            },
        });
    }
    json!({
        "decision": decision.is_allow(),
        "context": {
            "ttl_seconds": decision.ttl_seconds,
            "decision_id": decided.decision_id,
            "policy_hash": decision.policy_hash,
            "rules": decision.rules,
            "reasons": decision.reasons,
        },
    })
}

/// `uses 1, approval "sre"`: the obligations as the language writes them.
fn describe(obligations: &Obligations) -> String {
    let uses = obligations.uses.map(|uses| format!("uses {uses}"));
    let approvals = obligations
        .approvals
        .iter()
        .map(|group| format!("approval \"{group}\""));
    uses.into_iter()
        .chain(approvals)
        .collect::<Vec<_>>()
        .join(", ")
}
