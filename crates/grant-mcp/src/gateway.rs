//! The decisions, whatever the transport: a [`Gateway`] holds the ledger,
//! the agent and the session attributes; a [`Session`] is one MCP session,
//! kept as one task of the ledger, deciding each `tools/call` with its own
//! arguments.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use grant_engine::{Decision, Engine};
use grant_ledger::{
    Grant, GrantState, Ledger, LedgerDecision, LedgerError, OpenTask, RequestGrant, Revoke,
    RevokeTarget, Timestamp, UseGrant,
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
    /// Declared `args.*` attributes: the path, and the keys under the
    /// call's `arguments` it reads (`args.a.b` reads `arguments.a.b`).
    arg_paths: Vec<(String, Vec<String>)>,
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
        let engine = ledger.engine();
        let arg_paths = arg_paths(&engine);
        let ledger_in_memory = ledger.store().describe() == "memory";
        Gateway {
            ledger,
            agent: agent.to_string(),
            prefix: prefix.to_string(),
            session_attrs,
            arg_paths,
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

    /// The request attributes of one call: the session's, then each
    /// declared `args.*` the arguments give (as given: the engine types
    /// them, and a wrong type denies the call).
    fn call_attrs(&self, arguments: Option<&Map<String, Value>>) -> Map<String, Value> {
        let mut attrs = self.session_attrs.clone();
        let Some(arguments) = arguments else {
            return attrs;
        };
        for (path, keys) in &self.arg_paths {
            let mut value = None;
            let mut at = arguments;
            for (i, key) in keys.iter().enumerate() {
                match at.get(key) {
                    Some(Value::Object(inner)) if i + 1 < keys.len() => at = inner,
                    Some(found) if i + 1 == keys.len() => value = Some(found),
                    _ => break,
                }
            }
            if let Some(value) = value.filter(|v| !v.is_null()) {
                attrs.insert(path.clone(), value.clone());
            }
        }
        attrs
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
        if self.in_memory {
            return op(&self.ledger);
        }
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || op(&ledger))
            .await
            .unwrap_or_else(|e| Err(LedgerError::Internal(format!("a ledger call failed: {e}"))))
    }
}

fn arg_paths(engine: &Engine) -> Vec<(String, Vec<String>)> {
    engine
        .attr_paths()
        .filter_map(|path| {
            let rest = path.strip_prefix("args.")?;
            Some((
                path.to_string(),
                rest.split('.').map(str::to_string).collect(),
            ))
        })
        .collect()
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
    task_id: Option<String>,
    ended: bool,
    /// Labels from the client's `initialize` (claimed by the client).
    client_labels: BTreeMap<String, String>,
    grants: HashMap<String, ToolGrants>,
}

/// The grants a session holds for one tool: the one its calls use, and
/// one waiting for an approval.
#[derive(Debug, Default)]
struct ToolGrants {
    active: Option<Held>,
    pending: Option<Held>,
}

#[derive(Clone, Debug)]
struct Held {
    grant_id: String,
    expires_at: Timestamp,
    uses_left: Option<u64>,
    /// Approval groups, while pending.
    waiting_for: Vec<String>,
}

impl Held {
    fn of(grant: &Grant) -> Held {
        Held {
            grant_id: grant.grant_id.clone(),
            expires_at: grant.expires_at,
            uses_left: grant.uses_left,
            waiting_for: grant.approvals.missing().map(str::to_string).collect(),
        }
    }

    fn usable_at(&self, now: Timestamp) -> bool {
        now < self.expires_at && self.uses_left != Some(0)
    }
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
        self.state.lock().await.task_id.clone()
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
        self.ensure_task(&mut state).await
    }

    async fn ensure_task(&self, state: &mut SessionState) -> Result<String, String> {
        if state.ended {
            return Err("the session has ended".to_string());
        }
        if let Some(task) = &state.task_id {
            return Ok(task.clone());
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
                state.task_id = Some(task.task_id.clone());
                Ok(task.task_id)
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
        let Some(task_id) = state.task_id.clone() else {
            return Ok(Vec::new());
        };
        state.grants.clear();
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
        let attrs = self.gateway.call_attrs(arguments);
        let mut state = self.state.lock().await;
        let task_id = match self.ensure_task(&mut state).await {
            Ok(task) => task,
            Err(message) => return self.unavailable(&tool, None, &message),
        };
        match self.decide_locked(&mut state, &task_id, &tool, attrs).await {
            Ok(outcome) => outcome,
            Err(error) => self.unavailable(&tool, Some(&task_id), &error.to_string()),
        }
    }

    async fn decide_locked(
        &self,
        state: &mut SessionState,
        task_id: &str,
        tool: &str,
        attrs: Map<String, Value>,
    ) -> Result<CallOutcome, LedgerError> {
        let gateway = &self.gateway;
        let now = gateway.ledger.clock().now();
        let held = state.grants.entry(tool.to_string()).or_default();

        // A grant that waited for approval may have been approved since.
        if let Some(pending) = held.pending.clone() {
            let id = pending.grant_id.clone();
            let grant = gateway.ledger_call(move |l| l.grant(&id)).await?;
            match grant.state_at(now) {
                GrantState::Active => {
                    held.active = Some(Held::of(&grant));
                    held.pending = None;
                }
                GrantState::Pending => held.pending = Some(Held::of(&grant)),
                _ => held.pending = None,
            }
        }

        let mut approval_needed = false;
        if let Some(active) = held.active.clone().filter(|a| a.usable_at(now)) {
            let use_ = UseGrant {
                grant_id: active.grant_id.clone(),
                agent: gateway.agent.clone(),
                tool: tool.to_string(),
                attrs: Some(attrs.clone()),
            };
            let actor = gateway.actor.clone();
            let answer = gateway
                .ledger_call(move |l| l.use_grant(&actor, use_))
                .await?;
            if answer.ok {
                if let Some(active) = &mut held.active {
                    active.uses_left = answer.uses_left;
                }
                return Ok(CallOutcome::Forward {
                    tool: tool.to_string(),
                    grant_id: active.grant_id,
                });
            }
            match &answer.decision {
                // The policy denies this call: the grant stays as it was.
                Some(decision) if !decision.is_allow() => {
                    return Ok(self.refuse(
                        tool,
                        task_id,
                        Refusal::Denied(decision),
                        Some(&active.grant_id),
                    ));
                }
                // Allowed, but with an approval this grant lacks.
                Some(_) => approval_needed = true,
                // The grant is no longer usable (revoked, expired, used up).
                None => held.active = None,
            }
        } else {
            held.active = None;
        }

        let request = RequestGrant {
            task_id: task_id.to_string(),
            agent: gateway.agent.clone(),
            tool: tool.to_string(),
            attrs,
            ttl: None,
        };
        // One grant waits for approval at a time: while it waits, a call
        // that needs the approval points at it instead of asking again.
        if let Some(pending) = held.pending.clone() {
            let needs_approval = approval_needed || {
                let preview = request.clone();
                let decision = gateway.ledger_call(move |l| l.preview(&preview)).await?;
                decision.is_allow()
                    && decision
                        .decision
                        .obligations
                        .as_ref()
                        .is_some_and(|o| !o.approvals.is_empty())
            };
            if needs_approval {
                return Ok(self.refuse(tool, task_id, Refusal::Pending(&pending), None));
            }
        }

        let actor = gateway.actor.clone();
        let answer = gateway
            .ledger_call(move |l| l.request_grant(&actor, request))
            .await?;
        let Some(grant) = answer.grant else {
            return Ok(self.refuse(tool, task_id, Refusal::Denied(&answer.decision), None));
        };
        if grant.state == GrantState::Pending {
            let pending = Held::of(&grant);
            held.pending = Some(pending.clone());
            return Ok(self.refuse(tool, task_id, Refusal::Pending(&pending), None));
        }
        // Issued: this call is its first use.
        let use_ = UseGrant {
            grant_id: grant.grant_id.clone(),
            agent: gateway.agent.clone(),
            tool: tool.to_string(),
            attrs: None,
        };
        let actor = gateway.actor.clone();
        let used = gateway
            .ledger_call(move |l| l.use_grant(&actor, use_))
            .await?;
        let mut active = Held::of(&grant);
        active.uses_left = used.uses_left;
        held.active = Some(active);
        if !used.ok {
            let reason = used.reason.unwrap_or_default();
            return Ok(self.refuse(
                tool,
                task_id,
                Refusal::UseRefused(&reason),
                Some(&grant.grant_id),
            ));
        }
        Ok(CallOutcome::Forward {
            tool: tool.to_string(),
            grant_id: grant.grant_id,
        })
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
            Refusal::Pending(pending) => {
                let groups = pending.waiting_for.join("`, `");
                let text = format!(
                    "Grant is waiting for an approval: `{tool}` was not called.\nGrant {} needs an approval from `{groups}` (it waits until {}). Ask a person to approve it, then call the tool again.\nTask {task_id}.",
                    pending.grant_id, pending.expires_at
                );
                let meta = json!({
                    "status": "pending",
                    "tool": tool,
                    "task_id": task_id,
                    "grant_id": pending.grant_id,
                    "approvals": pending.waiting_for,
                    "expires_at": pending.expires_at,
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
    Pending(&'a Held),
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
