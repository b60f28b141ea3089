//! The decisions, whatever the transport: a [`Gateway`] holds the ledger,
//! the agent and the session attributes; a [`Session`] is one MCP session,
//! kept as one task of the ledger, deciding each `tools/call` with its own
//! arguments.

use std::collections::BTreeMap;
use std::sync::Arc;

use grant_engine::Decision;
use grant_ledger::{
    Admission, Guard, Ledger, LedgerDecision, LedgerError, OpenTask, Revoke, RevokeTarget,
    Timestamp,
};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

/// The shared part of every session of one gateway.
#[derive(Debug)]
pub struct Gateway {
    ledger: Ledger,
    agent: String,
    prefix: String,
    /// The session attributes, flat, typed.
    session_attrs: Map<String, Value>,
    /// The ledger's actor for everything this gateway does.
    actor: String,
    /// Labels every task of this gateway carries.
    labels: BTreeMap<String, String>,
    /// The ledger keeps nothing on disk: its operations never wait on I/O.
    in_memory: bool,
}

impl Gateway {
    /// A gateway deciding for `agent` the tools of the server named
    /// `prefix`. `labels` go on every session's task (the server command,
    /// say).
    pub fn new(
        ledger: Ledger,
        agent: &str,
        prefix: &str,
        session_attrs: Map<String, Value>,
        labels: BTreeMap<String, String>,
    ) -> Gateway {
        let ledger_in_memory = ledger.store().describe() == "memory";
        Gateway {
            ledger,
            agent: agent.to_string(),
            prefix: prefix.to_string(),
            session_attrs,
            actor: format!("mcp:{prefix}"),
            labels,
            in_memory: ledger_in_memory,
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The policy's name for the server's tool `name`.
    pub fn tool_name(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// A new session; its task opens at [`Session::open`].
    pub fn session(self: &Arc<Self>) -> Session {
        Session {
            gateway: Arc::clone(self),
            state: Mutex::new(SessionState::default()),
        }
    }

    /// A `tools/call` the transport found no session for (an HTTP request
    /// naming no session, or one the gateway does not know): refused
    /// undecided, as when the ledger is unavailable, `reason` saying why.
    pub fn refuse_sessionless(&self, params: Option<&Value>, reason: &str) -> CallOutcome {
        match params.and_then(|p| p.get("name")).and_then(Value::as_str) {
            Some(name) => unavailable(&self.tool_name(name), None, reason),
            None => CallOutcome::Invalid(
                "tools/call params need the tool's `name` as a string".to_string(),
            ),
        }
    }

    /// `--hide-denied`: leaves out of a `tools/list` result the tools no
    /// allow rule's pattern matches (they are denied whatever the call).
    /// Returns whether it changed anything.
    pub fn hide_denied(&self, result: &mut Value) -> bool {
        let engine = self.ledger.engine();
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
            return false;
        };
        let before = tools.len();
        tools.retain(|tool| {
            tool.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| engine.may_allow(&self.tool_name(name)))
        });
        tools.len() != before
    }

    /// Runs a ledger operation: a durable store's off the async threads
    /// (its commit waits for an fsync, which must not stall the relay of
    /// the server's answers); the memory store's in place, where the hop
    /// to another thread and back cost several times the operation.
    async fn ledger_call<T, F>(&self, op: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    {
        let ledger = self.ledger.clone();
        self.blocking(move || op(&ledger)).await
    }

    /// Runs `op`, which calls the ledger, as [`Gateway::ledger_call`] does.
    async fn blocking<T, F>(&self, op: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, LedgerError> + Send + 'static,
    {
        if self.in_memory {
            return op();
        }
        tokio::task::spawn_blocking(op)
            .await
            .unwrap_or_else(|e| Err(LedgerError::Internal(format!("a ledger call failed: {e}"))))
    }
}

/// One MCP session: one task of the ledger.
#[derive(Debug)]
pub struct Session {
    gateway: Arc<Gateway>,
    /// Held across each decision: one session's calls are decided one at a
    /// time, so its grants are never requested twice by a race.
    state: Mutex<SessionState>,
}

#[derive(Debug, Default)]
struct SessionState {
    ended: bool,
    /// Labels from the client's `initialize` (claimed by the client).
    client_labels: BTreeMap<String, String>,
    /// The session's task and its grants, once the task is open.
    guard: Option<Arc<Guard>>,
}

/// What to do with a `tools/call`.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// Allowed and recorded as a use of `grant_id`: relay it unchanged.
    Forward { tool: String, grant_id: String },
    /// Not allowed: answer the client with this `CallToolResult`
    /// (`isError: true`); the server never sees the call.
    Refuse { tool: String, result: Value },
    /// The params are not a tool call: a JSON-RPC invalid-params error.
    Invalid(String),
}

impl Session {
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The task, once opened.
    pub async fn task_id(&self) -> Option<String> {
        let state = self.state.lock().await;
        state
            .guard
            .as_ref()
            .map(|guard| guard.task_id().to_string())
    }

    /// Opens the session's task at `initialize` (its params give the
    /// client's claimed name and protocol version, kept as labels). The
    /// agent is the gateway's, never one the client names. Idempotent; a
    /// failure is kept and retried at the next call, which is refused
    /// until the task exists.
    pub async fn open(&self, initialize: Option<&Value>) -> Result<String, String> {
        let mut state = self.state.lock().await;
        if let Some(params) = initialize {
            state.client_labels = client_labels(params);
        }
        let guard = self.ensure_task(&mut state).await?;
        Ok(guard.task_id().to_string())
    }

    /// The session's guard, its task opened first if it is not yet.
    async fn ensure_task(&self, state: &mut SessionState) -> Result<Arc<Guard>, String> {
        if state.ended {
            return Err("the session has ended".to_string());
        }
        if let Some(guard) = &state.guard {
            return Ok(Arc::clone(guard));
        }
        let mut labels = self.gateway.labels.clone();
        labels.extend(state.client_labels.clone());
        let open = OpenTask {
            agent: self.gateway.agent.clone(),
            labels,
            ..OpenTask::default()
        };
        let actor = self.gateway.actor.clone();
        match self
            .gateway
            .ledger_call(move |ledger| ledger.open_task(&actor, open))
            .await
        {
            Ok(task) => {
                tracing::info!(
                    "session task {} opened for agent {}",
                    task.task_id,
                    task.agent
                );
                let guard = Arc::new(
                    Guard::new(
                        self.gateway.ledger.clone(),
                        &task.task_id,
                        &self.gateway.agent,
                        &self.gateway.actor,
                    )
                    .with_attrs(self.gateway.session_attrs.clone()),
                );
                state.guard = Some(Arc::clone(&guard));
                Ok(guard)
            }
            Err(error) => {
                let message = format!("the ledger could not open the session's task: {error}");
                tracing::warn!("{message}");
                Err(message)
            }
        }
    }

    /// Ends the session's task, revoking every grant it holds; returns the
    /// revoked grant ids. Idempotent. No call is decided after.
    pub async fn end(&self, why: &str) -> Result<Vec<String>, String> {
        let mut state = self.state.lock().await;
        state.ended = true;
        let Some(guard) = &state.guard else {
            return Ok(Vec::new());
        };
        guard.forget();
        let task_id = guard.task_id().to_string();
        let actor = self.gateway.actor.clone();
        let revoke = Revoke {
            target: RevokeTarget::Task(task_id.clone()),
            reason: format!("session ended: {why}"),
            block: false,
        };
        let ended = self
            .gateway
            .ledger_call(move |ledger| ledger.revoke(&actor, revoke))
            .await;
        match ended {
            Ok(revoked) => {
                tracing::info!(task = %task_id, revoked = revoked.revoked.len(), "session ended: {why}");
                Ok(revoked.revoked)
            }
            Err(error) => {
                let message = format!("the ledger could not end task {task_id}: {error}");
                tracing::error!("{message}");
                Err(message)
            }
        }
    }

    /// Decides one `tools/call` from its params. Every call is decided with
    /// its own arguments: the first allowed call of a tool gets a grant and
    /// uses it; later calls use that grant while it lasts, each use decided
    /// again with the call's attributes; an expired or used-up grant gives
    /// way to a new request. A deny leaves the grants as they were.
    pub async fn decide_call(&self, params: Option<&Value>) -> CallOutcome {
        let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
            return CallOutcome::Invalid(
                "tools/call params need the tool's `name` as a string".to_string(),
            );
        };
        let arguments = match params.and_then(|p| p.get("arguments")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                return CallOutcome::Invalid(
                    "tools/call `arguments` must be an object".to_string(),
                );
            }
        };
        let tool = self.gateway.tool_name(name);
        let mut state = self.state.lock().await;
        let guard = match self.ensure_task(&mut state).await {
            Ok(guard) => guard,
            Err(message) => return self.unavailable(&tool, None, &message),
        };
        let task_id = guard.task_id().to_string();
        let called = tool.clone();
        let arguments = arguments.cloned();
        let admitted = self
            .gateway
            .blocking(move || guard.admit_call(&called, arguments.as_ref()))
            .await;
        match admitted {
            Ok(Admission::Allowed { grant_id, .. }) => CallOutcome::Forward { tool, grant_id },
            Ok(Admission::Denied { decision, grant_id }) => self.refuse(
                &tool,
                &task_id,
                Refusal::Denied(&decision),
                grant_id.as_deref(),
            ),
            Ok(Admission::Pending {
                grant_id,
                approvals,
                expires_at,
            }) => self.refuse(
                &tool,
                &task_id,
                Refusal::Pending {
                    grant_id: &grant_id,
                    approvals: &approvals,
                    expires_at,
                },
                None,
            ),
            Ok(Admission::UseRefused { grant_id, reason }) => self.refuse(
                &tool,
                &task_id,
                Refusal::UseRefused(&reason),
                Some(&grant_id),
            ),
            Err(error) => self.unavailable(&tool, Some(&task_id), &error.to_string()),
        }
    }

    /// For a deny no rule decided: the allow rules for the tool that did
    /// not apply, by id and `@reason` (written for the model; their
    /// conditions are not shown: they may name attributes the agent has no
    /// business knowing).
    fn unmet_allows(&self, tool: &str) -> String {
        let engine = self.gateway.ledger.engine();
        let mut text = String::new();
        for rule in engine
            .rules_for(tool)
            .into_iter()
            .filter(|r| r.effect == grant_engine::DecisionEffect::Allow)
        {
            match rule.annotations.get("reason") {
                Some(reason) => text.push_str(&format!(
                    "\nAllowed only under rule `{}`, which did not apply: {reason}",
                    rule.id
                )),
                None => text.push_str(&format!(
                    "\nAllowed only under rule `{}`, which did not apply.",
                    rule.id
                )),
            }
        }
        text
    }

    fn unavailable(&self, tool: &str, task_id: Option<&str>, message: &str) -> CallOutcome {
        unavailable(tool, task_id, message)
    }

    fn refuse(
        &self,
        tool: &str,
        task_id: &str,
        refusal: Refusal<'_>,
        grant_id: Option<&str>,
    ) -> CallOutcome {
        let (text, meta) = match refusal {
            Refusal::Denied(decision) => {
                let mut text = format!(
                    "Grant denied this call: `{tool}` was not called.\n{}",
                    describe(&decision.decision)
                );
                if decision.decision.rules.is_empty() && decision.decision.errors.is_empty() {
                    text.push_str(&self.unmet_allows(tool));
                }
                text.push_str(&format!(
                    "\nDecision {} in task {task_id}.",
                    decision.decision_id
                ));
                if let Some(grant) = grant_id {
                    text.push_str(&format!(" Grant {grant} is unchanged."));
                }
                let meta = json!({
                    "status": "denied",
                    "tool": tool,
                    "task_id": task_id,
                    "grant_id": grant_id,
                    "decision": decision,
                });
                (text, meta)
            }
            Refusal::Pending {
                grant_id: pending,
                approvals,
                expires_at,
            } => {
                let groups = approvals.join("`, `");
                let text = format!(
                    "Grant is waiting for an approval: `{tool}` was not called.\nGrant {pending} needs an approval from `{groups}` (it waits until {expires_at}). Ask a person to approve it, then call the tool again.\nTask {task_id}."
                );
                let meta = json!({
                    "status": "pending",
                    "tool": tool,
                    "task_id": task_id,
                    "grant_id": pending,
                    "approvals": approvals,
                    "expires_at": expires_at,
                });
                (text, meta)
            }
            Refusal::UseRefused(reason) => {
                let text = format!(
                    "Grant refused this call: `{tool}` was not called.\nReason: {reason}\nTask {task_id}."
                );
                let meta = json!({
                    "status": "refused",
                    "tool": tool,
                    "task_id": task_id,
                    "grant_id": grant_id,
                    "reason": reason,
                });
                (text, meta)
            }
        };
        CallOutcome::Refuse {
            tool: tool.to_string(),
            result: tool_error(text, meta),
        }
    }
}

/// A call refused because it could not be decided and recorded.
fn unavailable(tool: &str, task_id: Option<&str>, message: &str) -> CallOutcome {
    let text = format!(
        "Grant refused this call: `{tool}` was not called, because the decision could not be made and recorded (the gateway fails closed).\nReason: {message}"
    );
    CallOutcome::Refuse {
        tool: tool.to_string(),
        result: tool_error(
            text,
            json!({"status": "unavailable", "tool": tool, "task_id": task_id, "reason": message}),
        ),
    }
}

enum Refusal<'a> {
    Denied(&'a LedgerDecision),
    Pending {
        grant_id: &'a str,
        approvals: &'a [String],
        expires_at: Timestamp,
    },
    UseRefused(&'a str),
}

/// The decision in lines a model (and a person) reads: each deciding rule
/// with its `@reason`, then the engine's reasons and errors.
fn describe(decision: &Decision) -> String {
    let mut lines = Vec::new();
    for rule in &decision.rules {
        match rule.annotations.get("reason") {
            Some(reason) => lines.push(format!("Rule `{}`: {reason}", rule.id)),
            None => lines.push(format!("Rule `{}`.", rule.id)),
        }
    }
    for reason in &decision.reasons {
        lines.push(format!("Reason: {reason}"));
    }
    for error in &decision.errors {
        lines.push(format!("Invalid: {error}"));
    }
    if !decision.missing.is_empty() {
        lines.push(format!("Missing: {}", decision.missing.join(", ")));
    }
    lines.join("\n")
}

/// The `_meta` key of the gateway's refusals: the decision, for programs.
pub const META_KEY: &str = "grant/decision";

/// A `CallToolResult` the model reads as a failed call.
pub fn tool_error(text: String, meta: Value) -> Value {
    json!({
        "content": [{"type": "text", "text": text}],
        "isError": true,
        "_meta": {META_KEY: meta},
    })
}

/// The client's claimed identity, as task labels (marked as claimed: the
/// gateway cannot check them).
fn client_labels(initialize: &Value) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let info = initialize.get("clientInfo");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| clip(s).to_string());
    if let Some(name) = text(info.and_then(|i| i.get("name"))) {
        labels.insert("mcp.client_claimed".to_string(), name);
    }
    if let Some(version) = text(info.and_then(|i| i.get("version"))) {
        labels.insert("mcp.client_version_claimed".to_string(), version);
    }
    if let Some(protocol) = text(initialize.get("protocolVersion")) {
        labels.insert("mcp.protocol".to_string(), protocol);
    }
    labels
}

/// A label value held to the ledger's limit, cut on a character boundary.
pub fn clip(text: &str) -> &str {
    let max = grant_ledger::MAX_LABEL_BYTES;
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
