//! What every handler shares: the ledger (and through it the served
//! engine), the policy source, the tokens, the metrics and the decision
//! log; and the one path every decision takes, native or AuthZEN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use grant_engine::{Decision, Engine, Request, RequestError, RequestErrorKind};
use grant_ledger::{GrantAnswer, Ledger, LedgerDecision, LedgerError};
use serde_json::{Map, Value, json};

use crate::auth::{Auth, Caller};
use crate::config::Settings;
use crate::decision_log::DecisionLog;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::policy::{Policies, Reload};

/// The state of a server; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub ledger: Ledger,
    pub policies: Policies,
    pub auth: Auth,
    pub metrics: Metrics,
    pub decision_log: DecisionLog,
    pub started: Instant,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }

    /// The caller of a request (401 when tokens are on and it has none).
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        self.auth.authenticate(headers)
    }

    /// The engine in force now; a request takes it once and is decided
    /// wholly under it, whatever a reload does meanwhile.
    pub fn engine(&self) -> Arc<Engine> {
        self.ledger.engine()
    }

    /// Decides one native request under the current policy.
    pub fn decide_native(&self, bytes: &[u8]) -> LedgerDecision {
        let engine = self.engine();
        self.decide_with(&engine, bytes)
    }

    /// Decides one native request (`{"tool", "attrs", "ttl"}`, JSON) under
    /// `engine`: the decision JSON with its `decision_id`, counted, timed
    /// and logged. A stale policy, or a `ledger.*` attribute given, is a
    /// deny with that error.
    pub fn decide_with(&self, engine: &Engine, bytes: &[u8]) -> LedgerDecision {
        self.decide_read(engine, bytes).0
    }

    /// [`AppState::decide_with`], with the request as it was decided (its
    /// refusals included), for an explanation that tells the same story.
    pub fn decide_read(&self, engine: &Engine, bytes: &[u8]) -> (LedgerDecision, Request) {
        let started = Instant::now();
        let mut request = read_native(engine, bytes);
        let decision =
            self.decide_request(engine, &mut request, started, Decision::is_allow, || {
                serde_json::from_slice(bytes).unwrap_or(Value::Null)
            });
        (decision, request)
    }

    /// The one path every decision of the service takes, whatever API it
    /// came by: a request already read into `request` (since `started`) is
    /// refused if the policy is stale, decided by `engine`, given its
    /// `decision_id`, counted (as an allow when `granted` says the caller
    /// was granted it), and logged with `logged()` as its request (built
    /// only when the decision log is on; its `attrs` are redacted).
    pub fn decide_request(
        &self,
        engine: &Engine,
        request: &mut Request,
        started: Instant,
        granted: impl FnOnce(&Decision) -> bool,
        logged: impl FnOnce() -> Value,
    ) -> LedgerDecision {
        if let Err(stale) = self.policies.check_fresh() {
            request.refuse(RequestError::new(RequestErrorKind::Refused, stale));
        }
        let decision = engine.decide(request);
        let elapsed = started.elapsed();
        self.metrics
            .decision(granted(&decision), elapsed.as_secs_f64());
        // Without an id from the OS's random source a decision cannot be
        // traced; it is still answered (a deny stays a deny).
        let out = LedgerDecision {
            decision_id: grant_ledger::new_id("dec_").unwrap_or_default(),
            decision,
        };
        if self.decision_log.is_enabled() {
            self.log_decision(logged(), &out, elapsed);
        }
        out
    }

    /// A deny decision for `tool` with `reason` as its error, decided by
    /// nothing (the policy was not asked): a stale policy.
    pub fn refusal(&self, tool: &str, reason: String) -> LedgerDecision {
        let engine = self.engine();
        let mut request = engine.request();
        request.set_tool(tool);
        request.refuse(RequestError::new(RequestErrorKind::Refused, reason));
        LedgerDecision {
            decision_id: grant_ledger::new_id("dec_").unwrap_or_default(),
            decision: engine.decide(&request),
        }
    }

    fn log_decision(&self, mut request: Value, decision: &LedgerDecision, elapsed: Duration) {
        if let (Some(redactor), Some(attrs)) =
            (&self.settings.ledger.redactor, request.get_mut("attrs"))
        {
            redactor.redact(attrs);
        }
        let line = json!({
            "decision_id": decision.decision_id,
            "time": self.ledger.clock().now(),
            "request": request,
            "decision": decision,
            "policy_hash": decision.decision.policy_hash,
            "latency_us": u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        });
        self.decision_log.write(line.to_string());
    }

    /// Runs a ledger operation on the blocking pool.
    pub async fn ledger_call<T, F>(&self, op: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    {
        let ledger = self.ledger.clone();
        match tokio::task::spawn_blocking(move || op(&ledger)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(join) => {
                tracing::error!("a ledger operation panicked: {join}");
                Err(ApiError::internal(
                    "internal error: the operation failed; nothing was recorded by it",
                ))
            }
        }
    }

    /// Reloads the policy from its source (on the blocking pool: it reads
    /// files and compiles).
    pub async fn reload(&self, actor: String) -> Result<Reload, ApiError> {
        let app = self.clone();
        let outcome = tokio::task::spawn_blocking(move || app.policies.reload(&app.ledger, &actor))
            .await
            .map_err(|e| ApiError::internal(format!("the reload failed: {e}")))?;
        self.count_reload(&outcome);
        Ok(outcome)
    }

    /// Counts and logs a reload's outcome.
    pub fn count_reload(&self, outcome: &Reload) {
        match outcome {
            Reload::Activated(hash) => {
                self.metrics.reloads_ok.increment(1);
                tracing::info!("policy reloaded: now serving {hash}");
            }
            Reload::Unchanged(hash) => {
                self.metrics.reloads_ok.increment(1);
                // The watcher re-checks an unchanged source periodically:
                // not worth a line at the default level.
                tracing::debug!("policy reloaded: unchanged ({hash})");
            }
            Reload::Failed(error) => {
                self.metrics.reloads_failed.increment(1);
                tracing::error!(
                    "policy reload failed; still serving {}:\n{error}",
                    self.engine().policy_hash()
                );
            }
        }
    }

    /// Counts a grant request's answer.
    pub fn count_grant_answer(&self, answer: &GrantAnswer, elapsed: Duration) {
        self.metrics
            .decision(answer.decision.is_allow(), elapsed.as_secs_f64());
        match &answer.grant {
            Some(grant) if grant.state == grant_ledger::GrantState::Pending => {
                self.metrics.grants_pending.increment(1);
            }
            Some(_) => self.metrics.grants_issued.increment(1),
            None => self.metrics.grants_denied.increment(1),
        }
    }
}

/// Reads a native request (`{"tool", "attrs", "ttl"}`, JSON) by the
/// engine's rules, refusing any `ledger.*` attribute it gives.
fn read_native(engine: &Engine, bytes: &[u8]) -> Request {
    let mut request = engine.request();
    engine.read_json(bytes, &mut request);
    // Most requests never mention the ledger: only those are parsed again
    // to find the keys they try to give.
    if bytes.windows(6).any(|w| w == b"ledger") {
        #[derive(serde::Deserialize)]
        struct Attrs {
            #[serde(default)]
            attrs: Option<Map<String, Value>>,
        }
        if let Ok(Attrs { attrs: Some(attrs) }) = serde_json::from_slice::<Attrs>(bytes) {
            grant_ledger::refuse_forged_keys(&attrs, &mut request);
        }
    }
    request
}
