//! The native API (`/v1/...`): decisions, and the ledger's lifecycle.
//! Every route authenticates, checks its role (and the token's agent or
//! group scope), reads its body strictly (unknown fields are 400), and
//! answers the spec's statuses. Ledger calls block (they wait for a durable
//! commit), so they run on tokio's blocking pool.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use grant_ledger::{
    Approve, BindCredential, GrantAnswer, OpenTask, Renew, RequestGrant, Revoke, RevokeTarget,
    Timestamp, UseGrant,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{Caller, Role};
use crate::body::{json_body, json_bytes, require_object};
use crate::error::ApiError;
use crate::state::AppState;

type Body = Result<Bytes, BytesRejection>;

// ----- decisions -------------------------------------------------------

/// `POST /v1/decide`.
pub async fn decide(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = (|| {
        app.caller(&headers)?.require(Role::Decide)?;
        let bytes = json_bytes(&headers, body)?;
        require_object(&bytes)?;
        Ok::<_, ApiError>(bytes)
    })();
    match result {
        Ok(bytes) => Json(app.decide_native(&bytes)).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    requests: Vec<Box<serde_json::value::RawValue>>,
}

/// `POST /v1/decide/batch`: every request decided under one policy, in
/// order; a request that is not an object is a deny with its error.
pub async fn decide_batch(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = (|| {
        app.caller(&headers)?.require(Role::Decide)?;
        json_body::<Batch>(&headers, body)
    })();
    match result {
        Ok(batch) => {
            let engine = app.engine();
            let decisions: Vec<grant_ledger::LedgerDecision> = batch
                .requests
                .iter()
                .map(|raw| app.decide_with(&engine, raw.get().as_bytes()))
                .collect();
            Json(json!({ "decisions": decisions })).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// `POST /v1/explain`.
pub async fn explain(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = (|| {
        app.caller(&headers)?.require(Role::Decide)?;
        let bytes = json_bytes(&headers, body)?;
        require_object(&bytes)?;
        Ok::<_, ApiError>(bytes)
    })();
    match result {
        Ok(bytes) => {
            let engine = app.engine();
            let (decision, request) = app.decide_read(&engine, &bytes);
            let explanation = engine.explain(&request);
            Json(json!({ "decision": decision, "explanation": explanation })).into_response()
        }
        Err(error) => error.into_response(),
    }
}

// ----- tasks -------------------------------------------------------------

/// `POST /v1/tasks`.
pub async fn open_task(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Issue)?;
        let open: OpenTask = json_body(&headers, body)?;
        caller.require_agent(&open.agent)?;
        let task = app
            .ledger_call(move |ledger| ledger.open_task(&caller.name, open))
            .await?;
        Ok((StatusCode::CREATED, Json(json!(task))).into_response())
    })
    .await
}

/// `POST /v1/tasks/{id}/end`.
pub async fn end_task(
    State(app): State<AppState>,
    PathId(task_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Issue)?;
        let _: EmptyBody = optional_body(&headers, body)?;
        let id = task_id.clone();
        let task = app.ledger_call(move |ledger| ledger.task(&id)).await?;
        caller.require_agent(&task.task.agent)?;
        let revoked = app
            .ledger_call(move |ledger| ledger.end_task(&caller.name, &task_id))
            .await?;
        Ok(revoked_answer(&app, &revoked))
    })
    .await
}

/// `GET /v1/tasks/{id}`.
pub async fn get_task(
    State(app): State<AppState>,
    PathId(task_id): PathId,
    headers: HeaderMap,
) -> Response {
    respond(async {
        app.caller(&headers)?.require(Role::Read)?;
        let task = app.ledger_call(move |ledger| ledger.task(&task_id)).await?;
        Ok(Json(json!(task)).into_response())
    })
    .await
}

/// `GET /v1/tasks/{id}/timeline`.
pub async fn timeline(
    State(app): State<AppState>,
    PathId(task_id): PathId,
    headers: HeaderMap,
) -> Response {
    respond(async {
        app.caller(&headers)?.require(Role::Read)?;
        let events = app
            .ledger_call(move |ledger| ledger.timeline(&task_id))
            .await?;
        Ok(Json(json!({ "events": events })).into_response())
    })
    .await
}

// ----- grants ------------------------------------------------------------

/// `POST /v1/grants`.
pub async fn request_grant(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Issue)?;
        let request: RequestGrant = json_body(&headers, body)?;
        caller.require_agent(&request.agent)?;
        if let Err(stale) = app.policies.check_fresh() {
            return Ok(grant_refused(&app, &request.tool, stale));
        }
        let started = Instant::now();
        let answer = app
            .ledger_call(move |ledger| ledger.request_grant(&caller.name, request))
            .await?;
        app.count_grant_answer(&answer, started.elapsed());
        Ok(grant_answer(answer, StatusCode::CREATED))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UseBody {
    agent: String,
    tool: String,
    #[serde(default)]
    attrs: Option<Map<String, Value>>,
}

/// `POST /v1/grants/{id}/use`.
pub async fn use_grant(
    State(app): State<AppState>,
    PathId(grant_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Use)?;
        let body: UseBody = json_body(&headers, body)?;
        caller.require_agent(&body.agent)?;
        if let Err(stale) = app.policies.check_fresh() {
            app.metrics.uses_refused.increment(1);
            return Ok((
                StatusCode::FORBIDDEN,
                Json(json!({ "ok": false, "reason": stale })),
            )
                .into_response());
        }
        let use_ = UseGrant {
            grant_id,
            agent: body.agent,
            tool: body.tool,
            attrs: body.attrs,
        };
        let started = Instant::now();
        let answer = app
            .ledger_call(move |ledger| ledger.use_grant(&caller.name, use_))
            .await?;
        if let Some(decision) = &answer.decision {
            app.metrics
                .decision(decision.is_allow(), started.elapsed().as_secs_f64());
        }
        if answer.ok {
            app.metrics.grants_used.increment(1);
            let mut out = json!({
                "ok": true,
                "uses_left": answer.uses_left,
                "expires_at": answer.expires_at,
            });
            if let Some(decision) = answer.decision {
                out["decision"] = json!(decision);
            }
            Ok(Json(out).into_response())
        } else {
            app.metrics.uses_refused.increment(1);
            let mut out = json!({
                "ok": false,
                "reason": answer.reason.unwrap_or_else(|| "the use was refused".to_string()),
            });
            if let Some(decision) = answer.decision {
                out["decision"] = json!(decision);
            }
            Ok((StatusCode::FORBIDDEN, Json(out)).into_response())
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    agent: String,
    #[serde(default)]
    attrs: Map<String, Value>,
    #[serde(default)]
    ttl: Option<Value>,
}

/// `POST /v1/grants/{id}/renew`.
pub async fn renew(
    State(app): State<AppState>,
    PathId(grant_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Issue)?;
        let body: RenewBody = json_body(&headers, body)?;
        caller.require_agent(&body.agent)?;
        let id = grant_id.clone();
        let grant = app.ledger_call(move |ledger| ledger.grant(&id)).await?;
        if let Err(stale) = app.policies.check_fresh() {
            return Ok(grant_refused(&app, &grant.tool, stale));
        }
        let renew = Renew {
            grant_id,
            agent: body.agent,
            attrs: body.attrs,
            ttl: body.ttl,
        };
        let started = Instant::now();
        let answer = app
            .ledger_call(move |ledger| ledger.renew(&caller.name, renew))
            .await?;
        app.metrics
            .decision(answer.decision.is_allow(), started.elapsed().as_secs_f64());
        Ok(grant_answer(answer, StatusCode::OK))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    group: String,
    #[serde(default)]
    approver: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/grants/{id}/approve`.
pub async fn approve(
    state: State<AppState>,
    path: PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    approve_or_reject(state, path, headers, body, true).await
}

/// `POST /v1/grants/{id}/reject`.
pub async fn reject(
    state: State<AppState>,
    path: PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    approve_or_reject(state, path, headers, body, false).await
}

async fn approve_or_reject(
    State(app): State<AppState>,
    PathId(grant_id): PathId,
    headers: HeaderMap,
    body: Body,
    approving: bool,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Approve)?;
        let body: ApproveBody = json_body(&headers, body)?;
        caller.require_group(&body.group)?;
        let approver = approver_of(&caller, body.approver)?;
        let approve = Approve {
            grant_id,
            approver,
            group: body.group,
            reason: body.reason,
        };
        let grant = app
            .ledger_call(move |ledger| {
                if approving {
                    ledger.approve(&caller.name, approve)
                } else {
                    ledger.reject(&caller.name, approve)
                }
            })
            .await?;
        Ok(Json(json!({ "grant": grant })).into_response())
    })
    .await
}

/// With tokens, the approver is the token's name (a different one in the
/// body is refused: nobody approves in another's name); without, the body
/// names the approver.
fn approver_of(caller: &Caller, given: Option<String>) -> Result<String, ApiError> {
    if caller.authenticated {
        match given {
            Some(name) if name != caller.name => Err(ApiError::forbidden(format!(
                "token `{}` may not approve as `{name}`: the approver is the token's name",
                caller.name
            ))),
            _ => Ok(caller.name.clone()),
        }
    } else {
        given.ok_or_else(|| {
            ApiError::bad_request("`approver` is required when the service has no tokens")
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    issuer: String,
    credential_ref: String,
    #[serde(default)]
    expires_at: Option<Timestamp>,
}

/// `POST /v1/grants/{id}/credential`.
pub async fn bind_credential(
    State(app): State<AppState>,
    PathId(grant_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Issue)?;
        let body: CredentialBody = json_body(&headers, body)?;
        let id = grant_id.clone();
        let grant = app.ledger_call(move |ledger| ledger.grant(&id)).await?;
        caller.require_agent(&grant.agent)?;
        let bind = BindCredential {
            grant_id,
            issuer: body.issuer,
            credential_ref: body.credential_ref,
            expires_at: body.expires_at,
        };
        let grant = app
            .ledger_call(move |ledger| ledger.bind_credential(&caller.name, bind))
            .await?;
        Ok(Json(json!({ "grant": grant })).into_response())
    })
    .await
}

/// `GET /v1/grants/{id}`.
pub async fn get_grant(
    State(app): State<AppState>,
    PathId(grant_id): PathId,
    headers: HeaderMap,
) -> Response {
    respond(async {
        app.caller(&headers)?.require(Role::Read)?;
        let grant = app
            .ledger_call(move |ledger| ledger.grant(&grant_id))
            .await?;
        Ok(Json(json!(grant)).into_response())
    })
    .await
}

// ----- revocation and administration -------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    grant_id: Option<String>,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    reason: String,
    #[serde(default)]
    block: bool,
}

/// `POST /v1/revoke`: exactly one of `grant_id`, `task_id`, `agent`.
pub async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Revoke)?;
        let body: RevokeBody = json_body(&headers, body)?;
        let target = match (body.grant_id, body.task_id, body.agent) {
            (Some(id), None, None) => RevokeTarget::Grant(id),
            (None, Some(id), None) => RevokeTarget::Task(id),
            (None, None, Some(agent)) => RevokeTarget::Agent(agent),
            _ => {
                return Err(ApiError::bad_request(
                    "name exactly one of `grant_id`, `task_id` and `agent` to revoke",
                ));
            }
        };
        if body.block && !matches!(target, RevokeTarget::Agent(_)) {
            return Err(ApiError::bad_request(
                "`block` applies to an `agent` revocation only",
            ));
        }
        let revoke = Revoke {
            target,
            reason: body.reason,
            block: body.block,
        };
        let revoked = app
            .ledger_call(move |ledger| ledger.revoke(&caller.name, revoke))
            .await?;
        Ok(revoked_answer(&app, &revoked))
    })
    .await
}

/// `POST /v1/agents/{id}/unblock`.
pub async fn unblock(
    State(app): State<AppState>,
    PathId(agent): PathId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Admin)?;
        let _: EmptyBody = optional_body(&headers, body)?;
        let name = agent.clone();
        let was_blocked = app
            .ledger_call(move |ledger| ledger.unblock(&caller.name, &name))
            .await?;
        Ok(Json(json!({ "agent": agent, "unblocked": was_blocked })).into_response())
    })
    .await
}

/// `POST /v1/policy/reload`: 200 with the hash served (new or not); 422
/// when the source is bad and the old policy keeps serving.
pub async fn reload(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(async {
        let caller = app.caller(&headers)?;
        caller.require(Role::Admin)?;
        let _: EmptyBody = optional_body(&headers, body)?;
        let outcome = app.reload(caller.name.clone()).await?;
        Ok(match outcome {
            crate::policy::Reload::Activated(hash) => {
                Json(json!({ "policy_hash": hash, "changed": true })).into_response()
            }
            crate::policy::Reload::Unchanged(hash) => {
                Json(json!({ "policy_hash": hash, "changed": false })).into_response()
            }
            crate::policy::Reload::Failed(error) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": error,
                    "policy_hash": app.engine().policy_hash(),
                })),
            )
                .into_response(),
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    wait: Option<String>,
}

/// Events per page at most.
const MAX_EVENTS: usize = 1000;
/// The longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `GET /v1/events?after=SEQ&limit=N&wait=30s`: events after `after`;
/// with `wait`, an empty answer waits up to that long for new ones.
pub async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    respond(async {
        app.caller(&headers)?.require(Role::Read)?;
        let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let limit = query.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_EVENTS {
            return Err(ApiError::bad_request(format!(
                "`limit` must be between 1 and {MAX_EVENTS}"
            )));
        }
        let wait = match &query.wait {
            None => Duration::ZERO,
            Some(text) => {
                let seconds = grant_engine::parse_duration(text)
                    .map_err(|e| ApiError::bad_request(format!("`wait` `{text}`: {e}")))?;
                Duration::from_secs(seconds)
            }
        };
        // Long polls end before the request timeout would cut them.
        let wait = wait.min(MAX_WAIT).min(
            app.settings
                .limits
                .request_timeout
                .saturating_sub(Duration::from_secs(1)),
        );
        let deadline = Instant::now() + wait;
        loop {
            let after = query.after;
            let stored = app
                .ledger_call(move |ledger| ledger.events_after(after, limit))
                .await?;
            if !stored.is_empty() || Instant::now() >= deadline {
                let mut events = Vec::with_capacity(stored.len());
                for event in &stored {
                    let value: Value = serde_json::from_str(&event.json).map_err(|e| {
                        ApiError::internal(format!("event {} is not JSON: {e}", event.seq))
                    })?;
                    events.push(value);
                }
                return Ok(Json(json!({ "events": events })).into_response());
            }
            tokio::time::sleep(Duration::from_millis(100).min(deadline - Instant::now())).await;
        }
    })
    .await
}

// ----- shared --------------------------------------------------------------

/// The `{id}` of a route's path; a malformed one (invalid UTF-8 after
/// percent-decoding) is a 400 with the service's JSON error body, not
/// axum's plain-text one.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathId, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "the path is malformed: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Routes without a body accept none, or an empty JSON object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

fn optional_body<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    match &body {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
            serde_json::from_str("{}").map_err(|e| ApiError::internal(e.to_string()))
        }
        _ => json_body(headers, body),
    }
}

async fn respond(future: impl Future<Output = Result<Response, ApiError>>) -> Response {
    match future.await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `{"revoked", "ended"}`, counted.
fn revoked_answer(app: &AppState, revoked: &grant_ledger::Revoked) -> Response {
    app.metrics
        .grants_revoked
        .increment(revoked.revoked.len() as u64);
    Json(json!(revoked)).into_response()
}

/// `{"grant", "decision"}`: `status` on allow, 403 with `grant: null` on
/// deny.
fn grant_answer(answer: GrantAnswer, allowed_status: StatusCode) -> Response {
    let status = if answer.grant.is_some() {
        allowed_status
    } else {
        StatusCode::FORBIDDEN
    };
    (
        status,
        Json(json!({ "grant": answer.grant, "decision": answer.decision })),
    )
        .into_response()
}

/// A grant request or renewal refused before the ledger saw it (a stale
/// policy): the same shape as the ledger's denies.
fn grant_refused(app: &AppState, tool: &str, reason: String) -> Response {
    let decision = app.refusal(tool, reason);
    (
        StatusCode::FORBIDDEN,
        Json(json!({ "grant": null, "decision": decision })),
    )
        .into_response()
}
