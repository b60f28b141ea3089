//! The ledger as JavaScript sees it. Every operation runs on the libuv
//! thread pool (an `AsyncTask`) and resolves with `{ok: value}` or
//! `{error: {kind, message}}`: index.js turns the one into camelCase
//! results and the other into its error classes, so that the binding's
//! errors are JS classes with a `kind`, not napi's generic errors.

use std::sync::{Arc, Mutex, PoisonError};

use grant_ledger::{
    Admission, Approve, BindCredential, Guard, Ledger, LedgerError, OpenTask, Renew, RequestGrant,
    Revoke, UseGrant,
};
use napi::Task;
use napi::bindgen_prelude::{AsyncTask, Either, Env, Result, Unknown};
use napi_derive::napi;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};

use crate::engine::NativeEngine;
use crate::js::{to_json, to_json_map};

/// The ledger, until it is closed.
type Shared = Arc<Mutex<Option<Ledger>>>;

fn current(shared: &Shared) -> Option<Ledger> {
    shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn error_json(error: &LedgerError) -> Json {
    let kind = match error {
        LedgerError::NotFound { .. } => "not_found",
        LedgerError::Conflict(_) => "conflict",
        LedgerError::Forbidden(_) => "forbidden",
        LedgerError::Invalid(_) => "invalid",
        LedgerError::Store(_) => "unavailable",
        _ => "internal",
    };
    json!({"error": {"kind": kind, "message": error.to_string()}})
}

fn closed() -> Json {
    json!({"error": {"kind": "closed", "message": "the ledger is closed"}})
}

fn invalid(message: impl std::fmt::Display) -> Json {
    json!({"error": {"kind": "invalid", "message": message.to_string()}})
}

fn to_value<T: serde::Serialize>(value: &T) -> std::result::Result<Json, LedgerError> {
    serde_json::to_value(value)
        .map_err(|e| LedgerError::Internal(format!("an answer did not serialize: {e}")))
}

type Job = Box<dyn FnOnce(&Ledger, &str) -> std::result::Result<Json, LedgerError> + Send>;

/// One ledger operation, run off the JS thread.
pub struct Op {
    ledger: Option<Ledger>,
    actor: String,
    job: Option<Job>,
    /// An answer known before running (bad input).
    early: Option<Json>,
}

impl Task for Op {
    type Output = Json;
    type JsValue = String;

    fn compute(&mut self) -> Result<Json> {
        if let Some(early) = self.early.take() {
            return Ok(early);
        }
        let (Some(ledger), Some(job)) = (&self.ledger, self.job.take()) else {
            return Ok(closed());
        };
        Ok(match job(ledger, &self.actor) {
            Ok(value) => json!({ "ok": value }),
            Err(error) => error_json(&error),
        })
    }

    fn resolve(&mut self, _env: Env, output: Json) -> Result<String> {
        Ok(output.to_string())
    }
}

/// A ledger over a store, deciding with an engine's policy.
#[napi]
pub struct NativeLedger {
    shared: Shared,
    actor: String,
}

/// Opening a ledger, off the JS thread.
pub struct Open {
    url: String,
    engine: grant_engine::Engine,
    actor: String,
}

impl Task for Open {
    type Output = std::result::Result<Ledger, Json>;
    type JsValue = Either<NativeLedger, String>;

    fn compute(&mut self) -> Result<Self::Output> {
        let store = match grant_ledger::store::open(&self.url) {
            Ok(store) => store,
            Err(error) => return Ok(Err(error_json(&LedgerError::Store(error)))),
        };
        Ok(Ledger::open(store, self.engine.clone()).map_err(|e| error_json(&e)))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(match output {
            Ok(ledger) => Either::A(NativeLedger {
                shared: Arc::new(Mutex::new(Some(ledger))),
                actor: std::mem::take(&mut self.actor),
            }),
            Err(error) => Either::B(error.to_string()),
        })
    }
}

/// Opens a ledger over the store `url` names (`memory`, `sqlite:PATH`,
/// `postgres://...`).
#[napi(ts_return_type = "Promise<NativeLedger | string>")]
pub fn open_ledger(url: String, engine: &NativeEngine, actor: String) -> AsyncTask<Open> {
    AsyncTask::new(Open {
        url,
        engine: engine.engine.clone(),
        actor,
    })
}

fn parse<T: DeserializeOwned>(input: Json) -> std::result::Result<T, Json> {
    serde_json::from_value(input).map_err(invalid)
}

/// Reads `attrs` (a JS object, or nothing) as JSON.
fn attrs_of(
    env: &Env,
    attrs: Option<Unknown<'_>>,
) -> std::result::Result<Option<Map<String, Json>>, Json> {
    let Some(attrs) = attrs else {
        return Ok(None);
    };
    match to_json(env, attrs, 0) {
        Ok(None | Some(Json::Null)) => Ok(None),
        Ok(Some(Json::Object(map))) => Ok(Some(map)),
        Ok(Some(_)) => Err(invalid("`attrs` must be an object")),
        Err(error) => Err(invalid(format!("`attrs`: {}", error.reason))),
    }
}

impl NativeLedger {
    fn op(&self, job: std::result::Result<Job, Json>) -> AsyncTask<Op> {
        let (job, early) = match job {
            Ok(job) => (Some(job), None),
            Err(early) => (None, Some(early)),
        };
        AsyncTask::new(Op {
            ledger: current(&self.shared),
            actor: self.actor.clone(),
            job,
            early,
        })
    }
}

#[napi]
impl NativeLedger {
    #[napi(ts_return_type = "Promise<string>")]
    pub fn open_task(&self, input: serde_json::Value) -> AsyncTask<Op> {
        self.op(parse::<OpenTask>(input).map(|open| -> Job {
            Box::new(move |ledger, actor| to_value(&ledger.open_task(actor, open)?))
        }))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn request_grant(
        &self,
        env: Env,
        input: serde_json::Value,
        attrs: Option<Unknown<'_>>,
    ) -> AsyncTask<Op> {
        let job = attrs_of(&env, attrs).and_then(|attrs| {
            let mut request = parse::<RequestGrant>(input)?;
            request.attrs = attrs.unwrap_or_default();
            Ok::<Job, Json>(Box::new(move |ledger, actor| {
                to_value(&ledger.request_grant(actor, request)?)
            }))
        });
        self.op(job)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn use_grant(
        &self,
        env: Env,
        input: serde_json::Value,
        attrs: Option<Unknown<'_>>,
    ) -> AsyncTask<Op> {
        let job = attrs_of(&env, attrs).and_then(|attrs| {
            let mut use_ = parse::<UseGrant>(input)?;
            use_.attrs = attrs;
            Ok::<Job, Json>(Box::new(move |ledger, actor| {
                to_value(&ledger.use_grant(actor, use_)?)
            }))
        });
        self.op(job)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn renew(
        &self,
        env: Env,
        input: serde_json::Value,
        attrs: Option<Unknown<'_>>,
    ) -> AsyncTask<Op> {
        let job = attrs_of(&env, attrs).and_then(|attrs| {
            let mut renew = parse::<Renew>(input)?;
            renew.attrs = attrs.unwrap_or_default();
            Ok::<Job, Json>(Box::new(move |ledger, actor| {
                to_value(&ledger.renew(actor, renew)?)
            }))
        });
        self.op(job)
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn approve(&self, input: serde_json::Value) -> AsyncTask<Op> {
        self.op(parse::<Approve>(input).map(|approve| -> Job {
            Box::new(move |ledger, actor| to_value(&ledger.approve(actor, approve)?))
        }))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn reject(&self, input: serde_json::Value) -> AsyncTask<Op> {
        self.op(parse::<Approve>(input).map(|reject| -> Job {
            Box::new(move |ledger, actor| to_value(&ledger.reject(actor, reject)?))
        }))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn bind_credential(&self, input: serde_json::Value) -> AsyncTask<Op> {
        self.op(parse::<BindCredential>(input).map(|bind| -> Job {
            Box::new(move |ledger, actor| to_value(&ledger.bind_credential(actor, bind)?))
        }))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn revoke(&self, input: serde_json::Value) -> AsyncTask<Op> {
        self.op(parse::<Revoke>(input).map(|revoke| -> Job {
            Box::new(move |ledger, actor| to_value(&ledger.revoke(actor, revoke)?))
        }))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn end_task(&self, task_id: String) -> AsyncTask<Op> {
        self.op(Ok(Box::new(move |ledger, actor| {
            to_value(&ledger.end_task(actor, &task_id)?)
        })))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn grant(&self, grant_id: String) -> AsyncTask<Op> {
        self.op(Ok(Box::new(move |ledger, _| {
            to_value(&ledger.grant(&grant_id)?)
        })))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn task(&self, task_id: String) -> AsyncTask<Op> {
        self.op(Ok(Box::new(move |ledger, _| {
            to_value(&ledger.task(&task_id)?)
        })))
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub fn timeline(&self, task_id: String) -> AsyncTask<Op> {
        self.op(Ok(Box::new(move |ledger, _| {
            to_value(&ledger.timeline(&task_id)?)
        })))
    }

    /// Recomputes the audit chain from the store.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn verify(&self) -> AsyncTask<Op> {
        self.op(Ok(Box::new(move |ledger, _| {
            let verification = grant_ledger::chain::verify(ledger.store().as_ref(), &[], None)?;
            Ok(json!({
                "intact": verification.is_intact(),
                "events": verification.events,
                "head_hash": verification.head.as_ref().map(|h| h.hash.clone()),
                "problem": verification.problem.as_ref().map(|p| json!({"seq": p.seq, "what": p.what})),
            }))
        })))
    }

    /// Closes the ledger: later operations reject with a `closed` error.
    /// Operations already started finish.
    #[napi]
    pub fn close(&self) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        current(&self.shared).is_none()
    }

    /// A guard of `agent`'s tool calls in task `task_id`, every call
    /// carrying `attrs`.
    #[napi(ts_return_type = "NativeGuard | string")]
    pub fn guard(
        &self,
        env: Env,
        task_id: String,
        agent: String,
        attrs: Option<Unknown<'_>>,
    ) -> Either<NativeGuard, String> {
        let Some(ledger) = current(&self.shared) else {
            return Either::B(closed().to_string());
        };
        let attrs = match attrs_of(&env, attrs) {
            Ok(attrs) => attrs.unwrap_or_default(),
            Err(error) => return Either::B(error.to_string()),
        };
        let guard = Guard::new(ledger, &task_id, &agent, &self.actor).with_attrs(attrs);
        Either::A(NativeGuard {
            guard: Arc::new(guard),
            shared: Arc::clone(&self.shared),
        })
    }
}

/// `grant_ledger::Guard`: request-or-reuse a grant per call.
#[napi]
pub struct NativeGuard {
    guard: Arc<Guard>,
    shared: Shared,
}

/// One call's admission, off the JS thread.
pub struct Admit {
    guard: Option<Arc<Guard>>,
    tool: String,
    arguments: std::result::Result<Option<Map<String, Json>>, Json>,
}

impl Task for Admit {
    type Output = Json;
    type JsValue = String;

    fn compute(&mut self) -> Result<Json> {
        let Some(guard) = &self.guard else {
            return Ok(closed());
        };
        let arguments = match std::mem::replace(&mut self.arguments, Ok(None)) {
            Ok(arguments) => arguments,
            Err(error) => return Ok(error),
        };
        let admission = match guard.admit_call(&self.tool, arguments.as_ref()) {
            Ok(admission) => admission,
            Err(error) => return Ok(error_json(&error)),
        };
        let answer = match admission {
            Admission::Allowed {
                grant_id,
                uses_left,
                expires_at,
                issued,
            } => json!({"admission": "allowed", "grant_id": grant_id, "uses_left": uses_left,
                        "expires_at": expires_at, "issued": issued}),
            Admission::Denied { decision, grant_id } => {
                json!({"admission": "denied", "decision": decision, "grant_id": grant_id})
            }
            Admission::Pending {
                grant_id,
                approvals,
                expires_at,
            } => json!({"admission": "pending", "grant_id": grant_id, "approvals": approvals,
                        "expires_at": expires_at}),
            Admission::UseRefused { grant_id, reason } => {
                json!({"admission": "use_refused", "grant_id": grant_id, "reason": reason})
            }
        };
        Ok(json!({ "ok": answer }))
    }

    fn resolve(&mut self, _env: Env, output: Json) -> Result<String> {
        Ok(output.to_string())
    }
}

#[napi]
impl NativeGuard {
    /// Decides and records one call of `tool` with `arguments` (read as
    /// the policy's `args.*` attributes).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn admit(
        &self,
        env: Env,
        tool: String,
        arguments: Option<Unknown<'_>>,
    ) -> AsyncTask<Admit> {
        let arguments = match arguments {
            None => Ok(None),
            Some(arguments) => match crate::js::classify(&env, arguments) {
                Ok(crate::js::Js::Object(object)) => to_json_map(&env, &object, 0)
                    .map(Some)
                    .map_err(|e| invalid(format!("the call's arguments: {}", e.reason))),
                // Arguments that are not an object give no `args.*`.
                Ok(_) => Ok(None),
                Err(error) => Err(invalid(error.reason)),
            },
        };
        let guard = current(&self.shared).map(|_| Arc::clone(&self.guard));
        AsyncTask::new(Admit {
            guard,
            tool,
            arguments,
        })
    }

    /// Forgets the grants held: the next call requests anew.
    #[napi]
    pub fn forget(&self) {
        self.guard.forget();
    }
}
