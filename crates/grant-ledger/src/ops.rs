//! The operations of the lifecycle, each run inside one store transaction
//! ([`Ctx`]). An operation first reads and decides, writing nothing; then
//! it emits its events, each sealed into the chain and projected into
//! state. So an operation that fails (an unknown id, bad input) leaves no
//! trace, and one that answers has its events stored with its state.

use std::sync::Arc;

use grant_engine::Engine;
use serde_json::Map;

use crate::LedgerConfig;
use crate::api::{
    Approve, BindCredential, GrantAnswer, OpenTask, Renew, RequestGrant, Revoke, RevokeTarget,
    Revoked, Swept, UseAnswer, UseGrant,
};
use crate::error::LedgerError;
use crate::event::{Event, EventType};
use crate::id::{check_name, new_id};
use crate::model::{Grant, GrantState, Task, TaskState};
use crate::policy::{self, LedgerDecision, LedgerFacts};
use crate::store::{Head, Tx};
use crate::time::Timestamp;

/// The deepest task tree: bounds every walk up or down a chain.
pub const MAX_DEPTH: u32 = 64;
/// At most this many labels per task.
pub const MAX_LABELS: usize = 64;
/// The longest label key or value, in bytes.
pub const MAX_LABEL_BYTES: usize = 1024;
/// The actor the sweep writes as.
pub const SWEEPER: &str = "ledger";

/// One operation's view of the ledger: the transaction, the chain's head,
/// the policy and the time it runs under.
pub(crate) struct Ctx<'t> {
    pub tx: &'t mut dyn Tx,
    head: Option<Option<Head>>,
    pub now: Timestamp,
    pub engine: Arc<Engine>,
    pub config: &'t LedgerConfig,
    pub actor: String,
    /// Working without the store, on this process's local state.
    pub degraded: bool,
    /// Degraded: every event emitted, for the spool.
    pub spooled: Vec<Event>,
    /// Replaying a degraded spool: events are marked `degraded`.
    pub replaying: bool,
    /// An administrative handle's transaction: the policy hash the store
    /// last recorded, which its events carry instead of `engine`'s (a
    /// placeholder that decides nothing).
    pub stamp: Option<String>,
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(
        tx: &'t mut dyn Tx,
        engine: Arc<Engine>,
        config: &'t LedgerConfig,
    ) -> Ctx<'t> {
        Ctx {
            tx,
            head: None,
            now: Timestamp::default(),
            engine,
            config,
            actor: String::new(),
            degraded: false,
            spooled: Vec::new(),
            replaying: false,
            stamp: None,
        }
    }

    /// The policy hash this operation's events and refusals carry.
    pub(crate) fn policy_hash(&self) -> &str {
        self.stamp
            .as_deref()
            .unwrap_or_else(|| self.engine.policy_hash())
    }

    /// The chain's head, read once per transaction and kept current.
    pub(crate) fn head(&mut self) -> Result<Option<Head>, LedgerError> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let head = self.tx.head()?;
        self.head = Some(head.clone());
        Ok(head)
    }

    /// A new event of `kind` at `now` by this operation's actor.
    pub(crate) fn event(&self, kind: EventType) -> Event {
        Event::new(kind, &self.actor, self.policy_hash(), self.now)
    }

    /// Seals `event` into the chain and applies it to state.
    pub(crate) fn emit(&mut self, mut event: Event) -> Result<Event, LedgerError> {
        if event.event_id.is_empty() {
            event.event_id = new_id("evt_")?;
        }
        event.degraded |= self.degraded || self.replaying;
        let head = self.head()?;
        let stored = crate::chain::seal(&mut event, head.as_ref())?;
        self.tx.append(&stored)?;
        crate::project::apply(self.tx, &event)?;
        self.head = Some(Some(Head {
            seq: stored.seq,
            hash: stored.hash,
        }));
        if self.degraded {
            self.spooled.push(event.clone());
        }
        Ok(event)
    }

    fn task(&mut self, task_id: &str) -> Result<Task, LedgerError> {
        self.tx
            .task(task_id)?
            .ok_or_else(|| LedgerError::not_found("task", task_id))
    }

    fn grant(&mut self, grant_id: &str) -> Result<Grant, LedgerError> {
        self.tx
            .grant(grant_id)?
            .ok_or_else(|| LedgerError::not_found("grant", grant_id))
    }

    fn decided(&self, decision: grant_engine::Decision) -> Result<LedgerDecision, LedgerError> {
        Ok(LedgerDecision {
            decision_id: new_id("dec_")?,
            decision,
        })
    }

    fn refusal(&self, reason: &str) -> Result<LedgerDecision, LedgerError> {
        self.decided(policy::refusal(self.policy_hash(), reason))
    }

    fn redacted(&self, attrs: &Map<String, serde_json::Value>) -> serde_json::Value {
        let mut value = serde_json::Value::Object(attrs.clone());
        self.config.redact(&mut value);
        value
    }
}

/// The store meta key of the last policy hash `policy.activated` recorded.
pub(crate) const POLICY_HASH_KEY: &str = "policy_hash";

/// Records the policy in force when it differs from the last one recorded.
pub(crate) fn activate_policy(ctx: &mut Ctx<'_>) -> Result<bool, LedgerError> {
    let hash = ctx.engine.policy_hash().to_string();
    if ctx.tx.meta(POLICY_HASH_KEY)?.as_deref() == Some(hash.as_str()) {
        return Ok(false);
    }
    ctx.emit(ctx.event(EventType::PolicyActivated))?;
    ctx.tx.set_meta(POLICY_HASH_KEY, &hash)?;
    Ok(true)
}

pub(crate) fn open_task(ctx: &mut Ctx<'_>, open: OpenTask) -> Result<Task, LedgerError> {
    check_name("agent", &open.agent)?;
    if let Some(id) = &open.task_id {
        check_name("task_id", id)?;
    }
    check_labels(&open.labels)?;
    if let Some(deadline) = open.deadline
        && deadline <= ctx.now
    {
        return Err(LedgerError::invalid(format!(
            "deadline {deadline} is not in the future (now is {})",
            ctx.now
        )));
    }
    if ctx.tx.is_blocked(&open.agent)? {
        return Err(LedgerError::Forbidden(format!(
            "agent `{}` is blocked",
            open.agent
        )));
    }
    let task_id = match open.task_id {
        Some(id) => {
            if ctx.tx.task(&id)?.is_some() {
                return Err(LedgerError::Conflict(format!("task id `{id}` is taken")));
            }
            id
        }
        None => new_id("task_")?,
    };
    let mut deadline = open.deadline;
    if let Some(parent_id) = &open.parent_task_id {
        let parent = ctx.task(parent_id)?;
        if parent.state != TaskState::Open {
            return Err(LedgerError::Conflict(format!(
                "parent task `{parent_id}` has ended"
            )));
        }
        if parent.depth + 1 > MAX_DEPTH {
            return Err(LedgerError::invalid(format!(
                "task `{parent_id}` is at depth {}; sub-tasks may nest {MAX_DEPTH} deep",
                parent.depth
            )));
        }
        // A sub-task never outlives its parent.
        deadline = match (deadline, parent.deadline) {
            (Some(own), Some(parents)) => Some(own.min(parents)),
            (own, parents) => own.or(parents),
        };
    }
    let mut event = ctx.event(EventType::TaskOpened);
    event.task_id = Some(task_id.clone());
    event.parent_task_id = open.parent_task_id;
    event.agent = Some(open.agent);
    event.deadline = deadline;
    event.labels = Some(open.labels);
    ctx.emit(event)?;
    ctx.task(&task_id)
}

fn check_labels(labels: &std::collections::BTreeMap<String, String>) -> Result<(), LedgerError> {
    if labels.len() > MAX_LABELS {
        return Err(LedgerError::invalid(format!(
            "{} labels given; a task may have {MAX_LABELS}",
            labels.len()
        )));
    }
    for (key, value) in labels {
        if key.is_empty() || key.len() > MAX_LABEL_BYTES || value.len() > MAX_LABEL_BYTES {
            return Err(LedgerError::invalid(format!(
                "label `{}` is empty or over {MAX_LABEL_BYTES} bytes (key or value)",
                key.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// The facts of `task` for a decision at `now`.
fn facts<'a>(ctx: &Ctx<'_>, task: &'a Task, renewals: u64) -> LedgerFacts<'a> {
    LedgerFacts {
        agent: &task.agent,
        depth: task.depth,
        chain: Some(&task.chain),
        task_age_seconds: task.opened_at.secs_until(ctx.now),
        // Degraded, other replicas may have issued grants this process
        // cannot see: the count is unknown, so conditions on it fail closed.
        task_grants: if ctx.degraded {
            None
        } else {
            Some(task.grants_issued)
        },
        renewals,
        degraded: ctx.degraded,
    }
}

/// The cap a parent grant puts on a child: the parent task's usable grant
/// for the same tool, the one that lasts longest.
fn parent_grant(
    ctx: &mut Ctx<'_>,
    task: &Task,
    tool: &str,
) -> Result<Result<Option<Grant>, String>, LedgerError> {
    let Some(parent_id) = &task.parent_task_id else {
        return Ok(Ok(None));
    };
    let now = ctx.now;
    let best = ctx
        .tx
        .grants_of_task(parent_id)?
        .into_iter()
        .filter(|g| g.tool == tool && g.usable_at(now))
        .max_by(|a, b| {
            a.expires_at
                .cmp(&b.expires_at)
                .then_with(|| b.grant_id.cmp(&a.grant_id))
        });
    match best {
        Some(grant) => match ancestors_usable(ctx, &grant)? {
            Ok(()) => Ok(Ok(Some(grant))),
            Err(why) => Ok(Err(why)),
        },
        None => Ok(Err(format!(
            "parent task `{parent_id}` holds no active grant for `{tool}`"
        ))),
    }
}

/// Whether every ancestor of `grant` (by `parent_grant_id`) is usable now.
fn ancestors_usable(ctx: &mut Ctx<'_>, grant: &Grant) -> Result<Result<(), String>, LedgerError> {
    let mut next = grant.parent_grant_id.clone();
    let mut hops = 0;
    while let Some(id) = next {
        hops += 1;
        if hops > MAX_DEPTH + 1 {
            return Err(LedgerError::Internal(format!(
                "the grant chain above `{}` loops",
                grant.grant_id
            )));
        }
        let ancestor = ctx.grant(&id)?;
        if !ancestor.usable_at(ctx.now) {
            return Ok(Err(format!(
                "ancestor grant `{id}` is {}",
                describe_unusable(&ancestor, ctx.now)
            )));
        }
        next = ancestor.parent_grant_id;
    }
    Ok(Ok(()))
}

/// The grant that caps `grant` (its `parent_grant_id`), and whether it
/// and every grant above it is usable now: what an approval's start and a
/// renewal need.
fn parent_of(
    ctx: &mut Ctx<'_>,
    grant: &Grant,
) -> Result<(Option<Grant>, Result<(), String>), LedgerError> {
    let Some(id) = &grant.parent_grant_id else {
        return Ok((None, Ok(())));
    };
    let parent = ctx.grant(id)?;
    let usable = if parent.usable_at(ctx.now) {
        ancestors_usable(ctx, &parent)?
    } else {
        Err(format!(
            "parent grant `{id}` is {}",
            describe_unusable(&parent, ctx.now)
        ))
    };
    Ok((Some(parent), usable))
}

fn describe_unusable(grant: &Grant, now: Timestamp) -> &'static str {
    match grant.state_at(now) {
        GrantState::Pending => "pending approval",
        GrantState::Active if grant.uses_left == Some(0) => "used up",
        GrantState::Active => "active",
        GrantState::Exhausted => "used up",
        GrantState::Expired => "expired",
        GrantState::Revoked => "revoked",
    }
}

/// The lifetime and uses a grant may have from `start`, under every cap:
/// the decision's ttl, the task's deadline, the parent grant, and the
/// ledger's maximum grant lifetime from `issued_at`.
struct Caps {
    expires_at: Timestamp,
    uses_left: Option<u64>,
}

fn caps(
    ctx: &Ctx<'_>,
    task: &Task,
    parent: Option<&Grant>,
    ttl_seconds: u64,
    uses: Option<u64>,
    issued_at: Timestamp,
) -> Result<Caps, String> {
    let mut expires_at = ctx.now.plus_secs(ttl_seconds);
    if let Some(deadline) = task.deadline {
        expires_at = expires_at.min(deadline);
    }
    expires_at = expires_at.min(issued_at.plus_secs(ctx.config.max_grant_lifetime));
    let mut uses_left = uses;
    if let Some(parent) = parent {
        expires_at = expires_at.min(parent.expires_at);
        if let Some(parent_left) = parent.uses_left {
            uses_left = Some(uses_left.map_or(parent_left, |u| u.min(parent_left)));
        }
    }
    if expires_at < ctx.now.plus_secs(1) {
        return Err("the grant's lifetime would be under one second after its caps".to_string());
    }
    if uses_left == Some(0) {
        return Err("the grant would have no use left after its caps".to_string());
    }
    Ok(Caps {
        expires_at,
        uses_left,
    })
}

/// How a grant request came out, before anything is written. Short-lived
/// and moved once, so the size of `Allowed` does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum GrantDecided {
    Denied {
        decision: LedgerDecision,
        reason: String,
    },
    Allowed {
        decision: LedgerDecision,
        parent: Option<Grant>,
        expires_at: Timestamp,
        uses_left: Option<u64>,
        ttl_seconds: u64,
        /// The groups that must approve; empty for an active grant.
        approvals: Vec<String>,
    },
}

/// Decides a grant request for `task`: the ledger's refusals, the policy
/// with the ledger attributes, the parent grant, the caps. Writes nothing,
/// so a preview and the request itself decide alike.
pub(crate) fn decide_grant(
    ctx: &mut Ctx<'_>,
    request: &RequestGrant,
    read: &mut grant_engine::Request,
    task: &Task,
) -> Result<GrantDecided, LedgerError> {
    let refuse = |ctx: &Ctx<'_>, reason: String| -> Result<GrantDecided, LedgerError> {
        Ok(GrantDecided::Denied {
            decision: ctx.refusal(&reason)?,
            reason,
        })
    };
    if task.state != TaskState::Open {
        return refuse(ctx, format!("task `{}` has ended", task.task_id));
    }
    if task.agent != request.agent {
        return refuse(
            ctx,
            format!(
                "agent `{}` is not the agent of task `{}`",
                request.agent, task.task_id
            ),
        );
    }
    let decision = policy::decide(&ctx.engine, read, &facts(ctx, task, 0));
    let decision = ctx.decided(decision)?;
    if !decision.is_allow() {
        let reason = decision.reason();
        return Ok(GrantDecided::Denied { decision, reason });
    }
    let parent = match parent_grant(ctx, task, &request.tool)? {
        Ok(parent) => parent,
        Err(reason) => return refuse(ctx, reason),
    };
    let ttl_seconds = decision.decision.ttl_seconds.unwrap_or(0);
    let obligations = decision.decision.obligations.clone().unwrap_or_default();
    let approvals = obligations.approvals;
    if approvals.is_empty() {
        let caps = match caps(
            ctx,
            task,
            parent.as_ref(),
            ttl_seconds,
            obligations.uses,
            ctx.now,
        ) {
            Ok(caps) => caps,
            Err(reason) => return refuse(ctx, reason),
        };
        let ttl_seconds = ctx.now.secs_until(caps.expires_at);
        return Ok(GrantDecided::Allowed {
            decision,
            parent,
            expires_at: caps.expires_at,
            uses_left: caps.uses_left,
            ttl_seconds,
            approvals,
        });
    }
    if ctx.degraded {
        return refuse(
            ctx,
            "approvals cannot be collected while the ledger works without its store".to_string(),
        );
    }
    // Waiting for approvals: the lifetime starts at the last one; until
    // then the approval timeout runs (within the task's deadline).
    let mut expires_at = ctx.now.plus_secs(ctx.config.approval_timeout);
    if let Some(deadline) = task.deadline {
        expires_at = expires_at.min(deadline);
    }
    if let Some(parent) = &parent {
        expires_at = expires_at.min(parent.expires_at);
    }
    let uses_left = match parent.as_ref().and_then(|p| p.uses_left) {
        Some(left) => Some(obligations.uses.map_or(left, |u| u.min(left))),
        None => obligations.uses,
    };
    Ok(GrantDecided::Allowed {
        decision,
        parent,
        expires_at,
        uses_left,
        ttl_seconds,
        approvals,
    })
}

/// Checks a grant request's input and reads its task.
/// Checks a grant request's input, reads it as the engine will decide it,
/// and reads its task.
fn grant_request_task(
    ctx: &mut Ctx<'_>,
    request: &RequestGrant,
) -> Result<(Task, grant_engine::Request), LedgerError> {
    check_name("tool", &request.tool)?;
    check_name("agent", &request.agent)?;
    let read = policy::read(
        &ctx.engine,
        &request.tool,
        &request.attrs,
        request.ttl.as_ref(),
    )?;
    Ok((ctx.task(&request.task_id)?, read))
}

/// What [`request_grant`] would decide, writing nothing.
pub(crate) fn preview_grant(
    ctx: &mut Ctx<'_>,
    request: &RequestGrant,
) -> Result<LedgerDecision, LedgerError> {
    let (task, mut read) = grant_request_task(ctx, request)?;
    Ok(match decide_grant(ctx, request, &mut read, &task)? {
        GrantDecided::Denied { decision, .. } | GrantDecided::Allowed { decision, .. } => decision,
    })
}

/// Returns the answer and the task as read, which the ledger keeps for
/// deciding while its store is unavailable.
pub(crate) fn request_grant(
    ctx: &mut Ctx<'_>,
    request: RequestGrant,
) -> Result<(GrantAnswer, Task), LedgerError> {
    let (task, mut read) = grant_request_task(ctx, &request)?;
    let decided = decide_grant(ctx, &request, &mut read, &task)?;
    let attrs = ctx.redacted(&request.attrs);
    let mut event = ctx.event(EventType::GrantDenied);
    event.task_id = Some(task.task_id.clone());
    event.parent_task_id = task.parent_task_id.clone();
    event.agent = Some(request.agent);
    event.tool = Some(request.tool);
    event.attrs = Some(attrs);
    let (decision, parent, expires_at, uses_left, ttl_seconds, approvals) = match decided {
        GrantDecided::Denied { decision, reason } => {
            return deny_grant(ctx, event, decision, &reason).map(|a| (a, task));
        }
        GrantDecided::Allowed {
            decision,
            parent,
            expires_at,
            uses_left,
            ttl_seconds,
            approvals,
        } => (
            decision,
            parent,
            expires_at,
            uses_left,
            ttl_seconds,
            approvals,
        ),
    };
    let grant_id = new_id("grant_")?;
    event.kind = if approvals.is_empty() {
        EventType::GrantIssued
    } else {
        EventType::GrantPending
    };
    event.grant_id = Some(grant_id.clone());
    event.parent_grant_id = parent.map(|p| p.grant_id);
    event.expires_at = Some(expires_at);
    event.uses_left = uses_left;
    event.ttl_seconds = Some(ttl_seconds);
    if !approvals.is_empty() {
        event.approvals = Some(approvals);
    }
    event.decision = Some(decision.to_json());
    ctx.emit(event)?;
    let answer = GrantAnswer {
        grant: Some(ctx.grant(&grant_id)?),
        decision,
    };
    Ok((answer, task))
}

fn deny_grant(
    ctx: &mut Ctx<'_>,
    mut event: Event,
    decision: LedgerDecision,
    reason: &str,
) -> Result<GrantAnswer, LedgerError> {
    event.decision = Some(decision.to_json());
    event.reason = Some(reason.to_string());
    ctx.emit(event)?;
    Ok(GrantAnswer {
        grant: None,
        decision,
    })
}

/// Refuses an approver who is the grant's agent or an agent of its chain.
fn check_approver(
    ctx: &mut Ctx<'_>,
    grant: &Grant,
    approve: &Approve,
) -> Result<Task, LedgerError> {
    check_name("approver", &approve.approver)?;
    check_name("group", &approve.group)?;
    let task = ctx.task(&grant.task_id)?;
    if approve.approver == grant.agent || task.chain.contains(&approve.approver) {
        return Err(LedgerError::Forbidden(format!(
            "`{}` may not approve grant `{}`: an agent never approves its own chain's grants",
            approve.approver, grant.grant_id
        )));
    }
    match grant.state_at(ctx.now) {
        GrantState::Pending => {}
        state => {
            return Err(LedgerError::Conflict(format!(
                "grant `{}` is not pending ({})",
                grant.grant_id,
                state_name(state)
            )));
        }
    }
    if !grant.approvals.required.contains(&approve.group) {
        return Err(LedgerError::Forbidden(format!(
            "grant `{}` needs no approval from group `{}`",
            grant.grant_id, approve.group
        )));
    }
    if grant
        .approvals
        .granted
        .iter()
        .any(|a| a.group == approve.group)
    {
        return Err(LedgerError::Conflict(format!(
            "group `{}` has already approved grant `{}`",
            approve.group, grant.grant_id
        )));
    }
    Ok(task)
}

pub(crate) fn state_name(state: GrantState) -> &'static str {
    match state {
        GrantState::Pending => "pending",
        GrantState::Active => "active",
        GrantState::Exhausted => "exhausted",
        GrantState::Expired => "expired",
        GrantState::Revoked => "revoked",
    }
}

fn grant_event(ctx: &Ctx<'_>, kind: EventType, grant: &Grant) -> Event {
    let mut event = ctx.event(kind);
    event.grant_id = Some(grant.grant_id.clone());
    event.task_id = Some(grant.task_id.clone());
    event.parent_grant_id = grant.parent_grant_id.clone();
    event.agent = Some(grant.agent.clone());
    event.tool = Some(grant.tool.clone());
    event
}

pub(crate) fn approve(ctx: &mut Ctx<'_>, approve: Approve) -> Result<Grant, LedgerError> {
    let grant = ctx.grant(&approve.grant_id)?;
    let task = check_approver(ctx, &grant, &approve)?;
    let mut event = grant_event(ctx, EventType::GrantApproved, &grant);
    event.group = Some(approve.group.clone());
    event.approver = Some(approve.approver.clone());
    let last = grant.approvals.missing().all(|g| g == approve.group);
    let mut refused = None;
    if last {
        // The lifetime starts now, under the caps of issuance applied again.
        let (parent, parent_ok) = parent_of(ctx, &grant)?;
        match parent_ok.and_then(|()| {
            caps(
                ctx,
                &task,
                parent.as_ref(),
                grant.ttl_seconds,
                grant.uses_left,
                ctx.now,
            )
        }) {
            Ok(caps) => {
                event.expires_at = Some(caps.expires_at);
                event.uses_left = caps.uses_left;
                event.ttl_seconds = Some(ctx.now.secs_until(caps.expires_at));
            }
            Err(reason) => refused = Some(reason),
        }
    }
    event.reason = approve.reason;
    ctx.emit(event)?;
    if let Some(reason) = refused {
        let mut revoked = grant_event(ctx, EventType::GrantRevoked, &grant);
        revoked.reason = Some(format!("approved, but it cannot start: {reason}"));
        revoked.credential_refs = Some(grant.credential_refs());
        ctx.emit(revoked)?;
    }
    ctx.grant(&grant.grant_id)
}

pub(crate) fn reject(ctx: &mut Ctx<'_>, approve: Approve) -> Result<Grant, LedgerError> {
    let grant = ctx.grant(&approve.grant_id)?;
    check_approver(ctx, &grant, &approve)?;
    let mut event = grant_event(ctx, EventType::GrantRejected, &grant);
    event.group = Some(approve.group);
    event.approver = Some(approve.approver);
    event.reason = approve.reason;
    ctx.emit(event)?;
    ctx.grant(&grant.grant_id)
}

pub(crate) fn use_grant(ctx: &mut Ctx<'_>, use_: UseGrant) -> Result<UseAnswer, LedgerError> {
    let grant = ctx.grant(&use_.grant_id)?;
    let mut read = match &use_.attrs {
        Some(attrs) => Some(policy::read(&ctx.engine, &grant.tool, attrs, None)?),
        None => None,
    };
    let mut event = grant_event(ctx, EventType::GrantUseRefused, &grant);
    event.agent = Some(use_.agent.clone());
    event.tool = Some(use_.tool.clone());
    event.attrs = use_.attrs.as_ref().map(|a| ctx.redacted(a));
    let now = ctx.now;
    let mut refusal = if use_.agent != grant.agent {
        Some(format!(
            "agent `{}` does not hold grant `{}`",
            use_.agent, grant.grant_id
        ))
    } else if use_.tool != grant.tool {
        Some(format!(
            "grant `{}` is for `{}`, not `{}`",
            grant.grant_id, grant.tool, use_.tool
        ))
    } else if !grant.usable_at(now) {
        Some(format!(
            "grant `{}` is {}",
            grant.grant_id,
            describe_unusable(&grant, now)
        ))
    } else {
        ancestors_usable(ctx, &grant)?.err()
    };
    let mut uses_left = grant.uses_left;
    let mut decision = None;
    if refusal.is_none()
        && let Some(read) = &mut read
    {
        let task = ctx.task(&grant.task_id)?;
        let decided = ctx.decided(policy::decide(
            &ctx.engine,
            read,
            &facts(ctx, &task, grant.renewals),
        ))?;
        if !decided.is_allow() {
            refusal = Some(decided.reason());
        } else if let Some(group) = unmet_approval(&decided, &grant) {
            refusal = Some(format!(
                "this use needs an approval from `{group}`, which grant `{}` lacks",
                grant.grant_id
            ));
        } else if let Some(lower) = decided.decision.obligations.as_ref().and_then(|o| o.uses) {
            uses_left = Some(uses_left.map_or(lower, |left| left.min(lower)));
        }
        decision = Some(decided);
    }
    event.decision = decision.as_ref().map(LedgerDecision::to_json);
    if let Some(reason) = refusal {
        event.reason = Some(reason.clone());
        event.uses_left = grant.uses_left;
        ctx.emit(event)?;
        return Ok(UseAnswer {
            ok: false,
            uses_left: grant.uses_left,
            expires_at: Some(grant.expires_at),
            reason: Some(reason),
            decision,
        });
    }
    let after = uses_left.map(|left| left.saturating_sub(1));
    event.kind = EventType::GrantUsed;
    event.uses_left = after;
    event.expires_at = Some(grant.expires_at);
    ctx.emit(event)?;
    Ok(UseAnswer {
        ok: true,
        uses_left: after,
        expires_at: Some(grant.expires_at),
        reason: None,
        decision,
    })
}

/// A group the decision needs that the grant was not approved by.
fn unmet_approval(decision: &LedgerDecision, grant: &Grant) -> Option<String> {
    let needed = decision.decision.obligations.as_ref()?;
    needed
        .approvals
        .iter()
        .find(|group| !grant.approvals.granted.iter().any(|a| a.group == **group))
        .cloned()
}

pub(crate) fn renew(ctx: &mut Ctx<'_>, renew: Renew) -> Result<GrantAnswer, LedgerError> {
    let grant = ctx.grant(&renew.grant_id)?;
    let mut read = policy::read(&ctx.engine, &grant.tool, &renew.attrs, renew.ttl.as_ref())?;
    let task = ctx.task(&grant.task_id)?;
    let mut denied = grant_event(ctx, EventType::GrantRenewDenied, &grant);
    denied.agent = Some(renew.agent.clone());
    denied.attrs = Some(ctx.redacted(&renew.attrs));
    let now = ctx.now;
    let refusal = if renew.agent != grant.agent {
        Some(format!(
            "agent `{}` does not hold grant `{}`",
            renew.agent, grant.grant_id
        ))
    } else if !grant.usable_at(now) {
        Some(format!(
            "grant `{}` is {}",
            grant.grant_id,
            describe_unusable(&grant, now)
        ))
    } else if task.state != TaskState::Open {
        Some(format!("task `{}` has ended", task.task_id))
    } else {
        None
    };
    if let Some(reason) = refusal {
        return deny_renewal(ctx, denied, ctx.refusal(&reason)?, &reason, &grant);
    }
    let decision = ctx.decided(policy::decide(
        &ctx.engine,
        &mut read,
        &facts(ctx, &task, grant.renewals + 1),
    ))?;
    if !decision.is_allow() {
        let reason = decision.reason();
        return deny_renewal(ctx, denied, decision, &reason, &grant);
    }
    if let Some(group) = unmet_approval(&decision, &grant) {
        let reason = format!(
            "the renewal needs an approval from `{group}`, which grant `{}` lacks",
            grant.grant_id
        );
        let decision = ctx.refusal(&reason)?;
        return deny_renewal(ctx, denied, decision, &reason, &grant);
    }
    let (parent, usable) = parent_of(ctx, &grant)?;
    if let Err(reason) = usable {
        let decision = ctx.refusal(&reason)?;
        return deny_renewal(ctx, denied, decision, &reason, &grant);
    }
    let ttl_seconds = decision.decision.ttl_seconds.unwrap_or(0);
    let lower = decision.decision.obligations.as_ref().and_then(|o| o.uses);
    let uses = match (grant.uses_left, lower) {
        (Some(left), Some(u)) => Some(left.min(u)),
        (left, u) => left.or(u),
    };
    let caps = match caps(
        ctx,
        &task,
        parent.as_ref(),
        ttl_seconds,
        uses,
        grant.issued_at,
    ) {
        Ok(caps) => caps,
        Err(reason) => {
            let decision = ctx.refusal(&reason)?;
            return deny_renewal(ctx, denied, decision, &reason, &grant);
        }
    };
    let mut event = grant_event(ctx, EventType::GrantRenewed, &grant);
    event.expires_at = Some(caps.expires_at);
    event.uses_left = caps.uses_left;
    event.ttl_seconds = Some(now.secs_until(caps.expires_at));
    event.attrs = denied.attrs.take();
    event.decision = Some(decision.to_json());
    ctx.emit(event)?;
    Ok(GrantAnswer {
        grant: Some(ctx.grant(&grant.grant_id)?),
        decision,
    })
}

fn deny_renewal(
    ctx: &mut Ctx<'_>,
    mut event: Event,
    decision: LedgerDecision,
    reason: &str,
    grant: &Grant,
) -> Result<GrantAnswer, LedgerError> {
    event.decision = Some(decision.to_json());
    event.reason = Some(reason.to_string());
    event.expires_at = Some(grant.expires_at);
    ctx.emit(event)?;
    Ok(GrantAnswer {
        grant: None,
        decision,
    })
}

pub(crate) fn bind_credential(
    ctx: &mut Ctx<'_>,
    bind: BindCredential,
) -> Result<Grant, LedgerError> {
    check_name("issuer", &bind.issuer)?;
    check_name("credential_ref", &bind.credential_ref)?;
    let grant = ctx.grant(&bind.grant_id)?;
    if grant.state_at(ctx.now) != GrantState::Active {
        return Err(LedgerError::Conflict(format!(
            "grant `{}` is {}; credentials are bound to active grants",
            grant.grant_id,
            state_name(grant.state_at(ctx.now))
        )));
    }
    if let Some(expires_at) = bind.expires_at
        && expires_at > grant.expires_at
    {
        return Err(LedgerError::Conflict(format!(
            "the credential expires at {expires_at}, after grant `{}` (at {})",
            grant.grant_id, grant.expires_at
        )));
    }
    let mut event = grant_event(ctx, EventType::CredentialBound, &grant);
    event.issuer = Some(bind.issuer);
    event.credential_refs = Some(vec![bind.credential_ref]);
    event.expires_at = bind.expires_at;
    ctx.emit(event)?;
    ctx.grant(&grant.grant_id)
}

pub(crate) fn revoke(ctx: &mut Ctx<'_>, revoke: Revoke) -> Result<Revoked, LedgerError> {
    let mut done = Revoked::default();
    let reason = if revoke.reason.trim().is_empty() {
        "revoked".to_string()
    } else {
        revoke.reason
    };
    match revoke.target {
        RevokeTarget::Grant(id) => {
            let grant = ctx.grant(&id)?;
            revoke_grant_tree(ctx, grant, &reason, &mut done)?;
        }
        RevokeTarget::Task(id) => {
            let task = ctx.task(&id)?;
            end_task_tree(ctx, task, &reason, &mut done)?;
        }
        RevokeTarget::Agent(agent) => {
            check_name("agent", &agent)?;
            for task in ctx.tx.open_tasks_of_agent(&agent)? {
                // A sub-task may already have ended with an earlier tree.
                let task = ctx.task(&task.task_id)?;
                end_task_tree(ctx, task, &reason, &mut done)?;
            }
            if revoke.block && !ctx.tx.is_blocked(&agent)? {
                let mut event = ctx.event(EventType::AgentBlocked);
                event.agent = Some(agent);
                event.reason = Some(reason);
                ctx.emit(event)?;
            }
        }
    }
    Ok(done)
}

pub(crate) fn unblock(ctx: &mut Ctx<'_>, agent: &str) -> Result<bool, LedgerError> {
    check_name("agent", agent)?;
    if !ctx.tx.is_blocked(agent)? {
        return Ok(false);
    }
    let mut event = ctx.event(EventType::AgentUnblocked);
    event.agent = Some(agent.to_string());
    ctx.emit(event)?;
    Ok(true)
}

pub(crate) fn end_task(ctx: &mut Ctx<'_>, task_id: &str) -> Result<Revoked, LedgerError> {
    let task = ctx.task(task_id)?;
    let mut done = Revoked::default();
    end_task_tree(ctx, task, "task ended", &mut done)?;
    Ok(done)
}

/// Revokes `grant` if live, and every grant it caps, transitively. A grant
/// already past `expires_at` that no sweep has reached yet is not revoked
/// (it was no longer usable): its `grant.expired` is written now, as the
/// sweep would, so the trail never shows an expired grant as revoked.
fn revoke_grant_tree(
    ctx: &mut Ctx<'_>,
    grant: Grant,
    reason: &str,
    done: &mut Revoked,
) -> Result<(), LedgerError> {
    let mut stack = vec![grant];
    let mut visited = 0usize;
    while let Some(grant) = stack.pop() {
        visited += 1;
        if visited > 1_000_000 {
            return Err(LedgerError::Internal(
                "a grant tree of over a million grants".to_string(),
            ));
        }
        if grant.state.is_live() && grant.expires_at <= ctx.now {
            expire(ctx, &grant)?;
        } else if grant.state.is_live() {
            let mut event = grant_event(ctx, EventType::GrantRevoked, &grant);
            event.reason = Some(reason.to_string());
            event.credential_refs = Some(grant.credential_refs());
            ctx.emit(event)?;
            done.revoked.push(grant.grant_id.clone());
        }
        stack.extend(ctx.tx.child_grants(&grant.grant_id)?);
    }
    Ok(())
}

/// Ends `task` if open: revokes its grants (and what they cap) and ends its
/// sub-tasks, deepest first.
fn end_task_tree(
    ctx: &mut Ctx<'_>,
    task: Task,
    reason: &str,
    done: &mut Revoked,
) -> Result<(), LedgerError> {
    if task.state != TaskState::Open {
        return Ok(());
    }
    for grant in ctx.tx.grants_of_task(&task.task_id)? {
        // Re-read: an earlier revocation in this tree may have reached it.
        let grant = ctx.grant(&grant.grant_id)?;
        revoke_grant_tree(ctx, grant, reason, done)?;
    }
    for sub in ctx.tx.subtasks(&task.task_id)? {
        let sub = ctx.task(&sub.task_id)?;
        end_task_tree(ctx, sub, reason, done)?;
    }
    let mut event = ctx.event(EventType::TaskEnded);
    event.task_id = Some(task.task_id.clone());
    event.parent_task_id = task.parent_task_id.clone();
    event.agent = Some(task.agent.clone());
    event.reason = Some(reason.to_string());
    ctx.emit(event)?;
    done.ended.push(task.task_id);
    Ok(())
}

/// Records that a live `grant` passed its `expires_at`.
fn expire(ctx: &mut Ctx<'_>, grant: &Grant) -> Result<(), LedgerError> {
    let mut event = grant_event(ctx, EventType::GrantExpired, grant);
    event.expires_at = Some(grant.expires_at);
    event.credential_refs = Some(grant.credential_refs());
    ctx.emit(event).map(|_| ())
}

/// How many rows one sweep transaction handles, so a backlog is worked off
/// in bounded steps.
pub const SWEEP_BATCH: usize = 512;

/// Expires grants past `expires_at` and ends tasks past their deadline.
/// Returns whether more may be due.
pub(crate) fn sweep(ctx: &mut Ctx<'_>, swept: &mut Swept) -> Result<bool, LedgerError> {
    let now = ctx.now;
    let due = ctx.tx.due_grants(now, SWEEP_BATCH)?;
    let more_grants = due.len() == SWEEP_BATCH;
    for grant in due {
        let grant = ctx.grant(&grant.grant_id)?;
        if !grant.state.is_live() || grant.expires_at > now {
            continue;
        }
        expire(ctx, &grant)?;
        swept.expired.push(grant.grant_id);
    }
    let due = ctx.tx.due_tasks(now, SWEEP_BATCH)?;
    let more_tasks = due.len() == SWEEP_BATCH;
    for task in due {
        let task = ctx.task(&task.task_id)?;
        let mut done = Revoked::default();
        end_task_tree(ctx, task, "deadline", &mut done)?;
        swept.ended.extend(done.ended);
        swept.expired.extend(done.revoked);
    }
    Ok(more_grants || more_tasks)
}
