//! The [`Ledger`]: the public, synchronous API. Every operation runs as one
//! job of the group committer: jobs that arrive while a transaction is
//! being committed wait, then run together, one after another in one
//! transaction with one durable commit (one fsync for the lot). Each job
//! still sees the state its predecessors left, so the effect is as if they
//! ran one at a time in `seq` order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use grant_engine::Engine;

use crate::api::{
    Approve, BindCredential, GrantAnswer, OpenTask, Renew, RequestGrant, Revoke, Revoked, Swept,
    UseAnswer, UseGrant,
};
use crate::clock::{Clock, SystemClock};
use crate::degraded::{Degraded, Local};
use crate::error::LedgerError;
use crate::event::Event;
use crate::model::{Grant, Task, TaskView};
use crate::ops::{self, Ctx};
use crate::policy::LedgerDecision;
use crate::policy::PolicyHandle;
use crate::store::{Store, StoreError, StoreErrorKind, StoredEvent};

/// Settings of a ledger; `Default` gives the spec's defaults.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// No grant lives longer than this from its issue, renewals included
    /// (seconds; default 12 h, the longest session STS issues).
    pub max_grant_lifetime: u64,
    /// A pending grant not fully approved within this expires (seconds;
    /// default 15 m).
    pub approval_timeout: u64,
    /// The local spool for degraded issuance (fsynced, replayed on
    /// recovery). Without one, grant requests are denied while the store is
    /// unavailable, whatever the policy says.
    pub spool: Option<std::path::PathBuf>,
    /// Attribute paths whose values events keep only as a keyed hash.
    pub redactor: Option<crate::Redactor>,
    /// Signed checkpoints of the chain, when a key is configured.
    pub checkpoints: Option<CheckpointConfig>,
}

/// Where and how often the ledger writes signed checkpoints: after a commit
/// that takes the chain `every` events or more past the last checkpoint, it
/// signs the head, keeps it in the store (meta `checkpoint`) and appends it
/// to `file`, outside the store, where a rewrite of the store cannot reach.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    pub signer: Arc<crate::Signer>,
    pub file: std::path::PathBuf,
    pub every: u64,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            max_grant_lifetime: 12 * 3600,
            approval_timeout: 15 * 60,
            spool: None,
            redactor: None,
            checkpoints: None,
        }
    }
}

impl LedgerConfig {
    /// Replaces the configured attribute paths with keyed hashes.
    pub(crate) fn redact(&self, attrs: &mut serde_json::Value) {
        if let Some(redactor) = &self.redactor {
            redactor.redact(attrs);
        }
    }
}

/// Tasks, grants and their audit chain, over a [`Store`]. Cheap to clone;
/// clones share everything. Safe to use from many threads.
#[derive(Clone, Debug)]
pub struct Ledger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    policy: PolicyHandle,
    clock: Arc<dyn Clock>,
    config: LedgerConfig,
    committer: Committer,
    degraded: Mutex<Degraded>,
    /// Mirrors `degraded.state.is_some()`, so the normal path never takes
    /// that lock.
    is_degraded: AtomicBool,
    /// An administrative handle ([`Ledger::administer`]): `policy` is a
    /// placeholder, events carry the policy hash the store last recorded,
    /// and operations that decide are refused.
    administers: bool,
}

impl Ledger {
    /// A ledger over `store`, deciding with `engine`, on the system clock.
    /// Records `policy.activated` when the store last saw another policy.
    pub fn open(store: Arc<dyn Store>, engine: Engine) -> Result<Ledger, LedgerError> {
        Ledger::with(
            store,
            engine,
            Arc::new(SystemClock),
            LedgerConfig::default(),
        )
    }

    /// A ledger with its clock and settings given.
    pub fn with(
        store: Arc<dyn Store>,
        engine: Engine,
        clock: Arc<dyn Clock>,
        config: LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        let mut degraded = Degraded::new(config.spool.clone());
        degraded.resume()?;
        let is_degraded = AtomicBool::new(degraded.state.is_some());
        let ledger = Ledger {
            inner: Arc::new(Inner {
                store,
                policy: PolicyHandle::new(engine),
                clock,
                config,
                committer: Committer::default(),
                degraded: Mutex::new(degraded),
                is_degraded,
                administers: false,
            }),
        };
        // A spool left by an earlier run is replayed first, if the store is
        // up; else the ledger starts degraded.
        if ledger.inner.is_degraded.load(Ordering::SeqCst) {
            let _ = ledger.recover();
        }
        if !ledger.inner.is_degraded.load(Ordering::SeqCst) {
            ledger.run("ledger", ops::activate_policy)?;
        }
        Ok(ledger)
    }

    /// An administrative handle on `store`, on the system clock: it
    /// approves, rejects, revokes, ends tasks, unblocks agents and reads,
    /// without a policy. It decides nothing, so it needs none:
    /// `request_grant`, `preview`, `renew` and `use_grant` with `attrs`
    /// are refused ([`LedgerError::Invalid`]), and opening it records no
    /// `policy.activated`. Its events carry the policy hash the store last
    /// recorded (read in each transaction, so a policy another process
    /// activates meanwhile is the one stamped).
    ///
    /// For a person acting out of band (`grant approve`). A store that has
    /// recorded no policy is refused: nothing can be pending in it.
    pub fn administer(store: Arc<dyn Store>) -> Result<Ledger, LedgerError> {
        Ledger::administer_with(store, Arc::new(SystemClock), LedgerConfig::default())
    }

    /// An administrative handle with its clock and settings given. It works
    /// only against its store, so a configured `spool` is refused.
    pub fn administer_with(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        if config.spool.is_some() {
            return Err(LedgerError::invalid(
                "an administrative ledger handle has no degraded spool: it works only against its store",
            ));
        }
        let mut recorded = None;
        store.read(&mut |tx| {
            recorded = tx.meta(ops::POLICY_HASH_KEY)?;
            Ok(())
        })?;
        if recorded.is_none() {
            return Err(LedgerError::invalid(format!(
                "the store `{}` has recorded no policy: nothing can be pending in it",
                store.describe()
            )));
        }
        // The engine slot must hold something; an empty policy decides
        // nothing and its hash is never stamped (see `Ctx::stamp`).
        let placeholder = Engine::from_text("administer.grant", "").map_err(|e| {
            LedgerError::Internal(format!(
                "the empty policy does not load: {}",
                e.report(false)
            ))
        })?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                store,
                policy: PolicyHandle::new(placeholder),
                clock,
                config,
                committer: Committer::default(),
                degraded: Mutex::new(Degraded::new(None)),
                is_degraded: AtomicBool::new(false),
                administers: true,
            }),
        })
    }

    /// Whether this is an administrative handle ([`Ledger::administer`]).
    pub fn administers(&self) -> bool {
        self.inner.administers
    }

    /// Refuses an operation that decides on an administrative handle.
    fn decides(&self) -> Result<(), LedgerError> {
        if self.inner.administers {
            return Err(LedgerError::invalid(
                "this ledger handle administers (approve, reject, revoke, end_task, reads); \
                 it does not decide: open it with a policy",
            ));
        }
        Ok(())
    }

    /// The engine decisions are made with now (on an administrative handle,
    /// an empty policy that decides nothing).
    pub fn engine(&self) -> Arc<Engine> {
        self.inner.policy.current()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Swaps the policy atomically: operations that start after this
    /// returns decide under `engine`; `policy.activated` records it.
    pub fn set_policy(&self, engine: Engine, actor: &str) -> Result<(), LedgerError> {
        self.decides()?;
        self.inner.policy.swap(engine);
        self.run(actor, ops::activate_policy).map(|_| ())
    }

    pub fn open_task(&self, actor: &str, open: OpenTask) -> Result<Task, LedgerError> {
        let task = self.run(actor, move |ctx| ops::open_task(ctx, open))?;
        lock(&self.inner.degraded).remember(&task);
        Ok(task)
    }

    pub fn request_grant(
        &self,
        actor: &str,
        request: RequestGrant,
    ) -> Result<GrantAnswer, LedgerError> {
        self.decides()?;
        let error = match self.attempt(actor, request.clone(), ops::request_grant) {
            Attempt::Done(result) => {
                let (answer, task) = result?;
                lock(&self.inner.degraded).remember(&task);
                return Ok(answer);
            }
            Attempt::Unavailable(error) => error,
        };
        let engine = self.engine();
        let declared = engine.attr("ledger.degraded").is_some();
        let mut degraded = lock(&self.inner.degraded);
        let refuse = |reason: String| -> Result<GrantAnswer, LedgerError> {
            Ok(GrantAnswer {
                grant: None,
                decision: LedgerDecision {
                    decision_id: crate::id::new_id("dec_")?,
                    decision: crate::policy::refusal(engine.policy_hash(), &reason),
                },
            })
        };
        if !declared || !degraded.can_spool() {
            let why = if declared {
                "no degraded spool is configured"
            } else {
                "the policy does not declare `ledger.degraded`"
            };
            return refuse(format!(
                "ledger store unavailable: {}; grants are denied until it returns ({why})",
                error.message
            ));
        }
        let now = self.inner.clock.now();
        let seen_task = degraded.seen(&request.task_id).cloned();
        let parent = seen_task
            .as_ref()
            .and_then(|t| t.parent_task_id.as_deref())
            .and_then(|p| degraded.seen(p).cloned());
        let local = degraded.enter(&error, now, engine.policy_hash())?;
        let Some(task) = seen_task else {
            return refuse(format!(
                "ledger store unavailable: task `{}` is unknown to this process, so it cannot be decided until the store returns",
                request.task_id
            ));
        };
        let (answer, _) = self.run_local(local, actor, now, move |ctx| {
            for task in [Some(task), parent].into_iter().flatten() {
                if ctx.tx.task(&task.task_id)?.is_none() {
                    ctx.tx.put_task(&task)?;
                }
            }
            ops::request_grant(ctx, request)
        })?;
        Ok(answer)
    }

    /// Decides a grant request exactly as [`Ledger::request_grant`] would
    /// now (the ledger's refusals, the ledger attributes, the parent
    /// grant, the caps), but issues and records nothing: for a caller that
    /// wants to know before it asks (a gateway listing the tools an agent
    /// may call). The answer is not a grant; only `request_grant` issues.
    pub fn preview(&self, request: &RequestGrant) -> Result<LedgerDecision, LedgerError> {
        self.decides()?;
        let engine = self.engine();
        let now = self.inner.clock.now();
        let mut answer = None;
        self.inner.store.read(&mut |tx| {
            let mut ctx = Ctx::new(tx, Arc::clone(&engine), &self.inner.config);
            ctx.now = now;
            answer = Some(ops::preview_grant(&mut ctx, request));
            Ok(())
        })?;
        answer.unwrap_or_else(|| Err(LedgerError::Internal("the preview did not run".to_string())))
    }

    pub fn approve(&self, actor: &str, approve: Approve) -> Result<Grant, LedgerError> {
        self.run(actor, move |ctx| ops::approve(ctx, approve))
    }

    pub fn reject(&self, actor: &str, reject: Approve) -> Result<Grant, LedgerError> {
        self.run(actor, move |ctx| ops::reject(ctx, reject))
    }

    pub fn use_grant(&self, actor: &str, use_: UseGrant) -> Result<UseAnswer, LedgerError> {
        // A use with attributes is decided again.
        if use_.attrs.is_some() {
            self.decides()?;
        }
        let error = match self.attempt(actor, use_.clone(), ops::use_grant) {
            Attempt::Done(result) => return result,
            Attempt::Unavailable(error) => error,
        };
        let engine = self.engine();
        let mut degraded = lock(&self.inner.degraded);
        if engine.attr("ledger.degraded").is_none() || !degraded.can_spool() {
            return Err(LedgerError::Store(error));
        }
        let now = self.inner.clock.now();
        let local = degraded.enter(&error, now, engine.policy_hash())?;
        let mut known = false;
        local.store.read(&mut |tx| {
            known = tx.grant(&use_.grant_id)?.is_some();
            Ok(())
        })?;
        if !known {
            // Only grants issued here while degraded are usable now; the
            // refusal is recorded like any other.
            let reason = format!(
                "ledger store unavailable: grant `{}` was not issued by this process while degraded, so it cannot be used until the store returns",
                use_.grant_id
            );
            let mut event = Event::new(
                crate::EventType::GrantUseRefused,
                actor,
                engine.policy_hash(),
                now,
            );
            event.grant_id = Some(use_.grant_id);
            event.agent = Some(use_.agent);
            event.tool = Some(use_.tool);
            event.reason = Some(reason.clone());
            event.degraded = true;
            local.append(vec![event])?;
            return Ok(UseAnswer {
                ok: false,
                uses_left: None,
                expires_at: None,
                reason: Some(reason),
                decision: None,
            });
        }
        self.run_local(local, actor, now, move |ctx| ops::use_grant(ctx, use_))
    }

    pub fn renew(&self, actor: &str, renew: Renew) -> Result<GrantAnswer, LedgerError> {
        self.decides()?;
        self.run(actor, move |ctx| ops::renew(ctx, renew))
    }

    pub fn bind_credential(&self, actor: &str, bind: BindCredential) -> Result<Grant, LedgerError> {
        self.run(actor, move |ctx| ops::bind_credential(ctx, bind))
    }

    pub fn revoke(&self, actor: &str, revoke: Revoke) -> Result<Revoked, LedgerError> {
        let error = match self.attempt(actor, revoke.clone(), ops::revoke) {
            Attempt::Done(result) => return result,
            Attempt::Unavailable(error) => error,
        };
        let mut degraded = lock(&self.inner.degraded);
        if !degraded.can_spool() {
            return Err(LedgerError::Store(error));
        }
        // Spooled first (fsynced), then enforced locally at once; replayed
        // as a revocation when the store returns.
        let now = self.inner.clock.now();
        let engine = self.engine();
        let local = degraded.enter(&error, now, engine.policy_hash())?;
        local.append_revoke(now, actor, revoke.clone())?;
        let mut done = Revoked::default();
        let store = Arc::clone(&local.store);
        let config = &self.inner.config;
        store.write(&mut |tx| {
            let mut ctx = Ctx::new(tx, Arc::clone(&engine), config);
            ctx.now = now;
            ctx.actor = actor.to_string();
            match ops::revoke(&mut ctx, revoke.clone()) {
                Ok(local_done) => done = local_done,
                Err(LedgerError::Store(e)) => return Err(e),
                Err(_) => {}
            }
            Ok(())
        })?;
        if let crate::api::RevokeTarget::Grant(id) = &revoke.target
            && !done.revoked.contains(id)
        {
            done.revoked.insert(0, id.clone());
        }
        Ok(done)
    }

    pub fn end_task(&self, actor: &str, task_id: &str) -> Result<Revoked, LedgerError> {
        let id = task_id.to_string();
        match self.run(actor, move |ctx| ops::end_task(ctx, &id)) {
            Err(LedgerError::Store(e))
                if e.kind == StoreErrorKind::Unavailable
                    && lock(&self.inner.degraded).can_spool() =>
            {
                let revoke = Revoke {
                    target: crate::api::RevokeTarget::Task(task_id.to_string()),
                    reason: "task ended".to_string(),
                    block: false,
                };
                self.revoke(actor, revoke)
            }
            other => other,
        }
    }

    /// How many operations ran and in how many store transactions (group
    /// commit puts many in one), since the ledger was opened.
    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            operations: self.inner.committer.operations.load(Ordering::Relaxed),
            commits: self.inner.committer.commits.load(Ordering::Relaxed),
            checkpoint_failures: self
                .inner
                .committer
                .checkpoint_failures
                .load(Ordering::Relaxed),
        }
    }

    /// Whether the ledger is working without its store (a spool not yet
    /// replayed), and since when its spool holds entries.
    pub fn is_degraded(&self) -> bool {
        self.inner.is_degraded.load(Ordering::SeqCst)
    }

    /// Entries (events and revocations) in the degraded spool, waiting to
    /// be replayed into the store; 0 when not degraded.
    pub fn spooled_entries(&self) -> u64 {
        if !self.is_degraded() {
            return 0;
        }
        lock(&self.inner.degraded)
            .state
            .as_ref()
            .map_or(0, Local::entry_count)
    }

    /// Replays the degraded spool into the store now. `Ok(true)` when the
    /// ledger was degraded and has recovered; `Ok(false)` when it was not
    /// degraded; an error when the store is still unavailable.
    pub fn recover(&self) -> Result<bool, LedgerError> {
        let mut degraded = lock(&self.inner.degraded);
        let Some(local) = degraded.state.as_mut() else {
            return Ok(false);
        };
        local.last_attempt = Some(self.inner.clock.now());
        let engine = self.engine();
        local.replay(
            self.inner.store.as_ref(),
            &engine,
            &self.inner.config,
            self.inner.clock.now(),
        )?;
        degraded.state = None;
        self.inner.is_degraded.store(false, Ordering::SeqCst);
        drop(degraded);
        self.run("ledger", ops::activate_policy)?;
        Ok(true)
    }

    /// Runs `op` against the store (through [`Ledger::run`], which first
    /// replays a waiting degraded spool). `Unavailable` when the store
    /// cannot be written, so the caller may work degraded.
    fn attempt<A, T, F>(&self, actor: &str, input: A, op: F) -> Attempt<T>
    where
        A: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>, A) -> Result<T, LedgerError> + Send + 'static,
    {
        match self.run(actor, move |ctx| op(ctx, input)) {
            Err(LedgerError::Store(e)) if e.kind == StoreErrorKind::Unavailable => {
                Attempt::Unavailable(e)
            }
            result => Attempt::Done(result),
        }
    }

    /// Runs `op` on the local degraded ledger and spools what it wrote
    /// before answering.
    fn run_local<T>(
        &self,
        local: &mut Local,
        actor: &str,
        now: crate::Timestamp,
        op: impl FnOnce(&mut Ctx<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.inner.is_degraded.store(true, Ordering::SeqCst);
        let engine = self.engine();
        let mut op = Some(op);
        let mut result = None;
        let mut spooled = Vec::new();
        let store = Arc::clone(&local.store);
        store.write(&mut |tx| {
            let mut ctx = Ctx::new(tx, Arc::clone(&engine), &self.inner.config);
            ctx.now = now;
            ctx.actor = actor.to_string();
            ctx.degraded = true;
            let Some(op) = op.take() else { return Ok(()) };
            match op(&mut ctx) {
                Err(LedgerError::Store(e)) => return Err(e),
                other => result = Some(other),
            }
            spooled = std::mem::take(&mut ctx.spooled);
            Ok(())
        })?;
        local.append(spooled)?;
        result.unwrap_or_else(|| {
            Err(LedgerError::Internal(
                "a degraded operation did not run".to_string(),
            ))
        })
    }

    /// Lets a blocked agent open tasks again; `false` when it was not blocked.
    pub fn unblock(&self, actor: &str, agent: &str) -> Result<bool, LedgerError> {
        let agent = agent.to_string();
        self.run(actor, move |ctx| ops::unblock(ctx, &agent))
    }

    /// Writes `grant.expired` for every grant past its expiry and ends every
    /// task past its deadline, in bounded transactions.
    pub fn sweep(&self) -> Result<Swept, LedgerError> {
        let mut swept = Swept::default();
        loop {
            let (more, step) = self.run(ops::SWEEPER, |ctx| {
                let mut step = Swept::default();
                ops::sweep(ctx, &mut step).map(|more| (more, step))
            })?;
            swept.expired.extend(step.expired);
            swept.ended.extend(step.ended);
            if !more {
                return Ok(swept);
            }
        }
    }

    /// A grant, its state as of now (an active grant past its expiry reads
    /// `expired` before the sweep records it).
    pub fn grant(&self, grant_id: &str) -> Result<Grant, LedgerError> {
        let now = self.inner.clock.now();
        let mut found = None;
        self.inner.store.read(&mut |tx| {
            found = tx.grant(grant_id)?;
            Ok(())
        })?;
        let mut grant = found.ok_or_else(|| LedgerError::not_found("grant", grant_id))?;
        grant.state = grant.state_at(now);
        Ok(grant)
    }

    /// A task with its grants (states as of now) and its sub-tasks' ids.
    pub fn task(&self, task_id: &str) -> Result<TaskView, LedgerError> {
        let now = self.inner.clock.now();
        let mut found = None;
        self.inner.store.read(&mut |tx| {
            if let Some(task) = tx.task(task_id)? {
                let grants = tx.grants_of_task(task_id)?;
                let subtasks = tx
                    .subtasks(task_id)?
                    .into_iter()
                    .map(|t| t.task_id)
                    .collect();
                found = Some((task, grants, subtasks));
            }
            Ok(())
        })?;
        let (task, mut grants, subtasks) =
            found.ok_or_else(|| LedgerError::not_found("task", task_id))?;
        for grant in &mut grants {
            grant.state = grant.state_at(now);
        }
        Ok(TaskView {
            task,
            grants,
            subtasks,
        })
    }

    /// Up to `limit` events after `after`, as stored.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, LedgerError> {
        let mut events = Vec::new();
        self.inner.store.read(&mut |tx| {
            events = tx.events_after(after, limit)?;
            Ok(())
        })?;
        Ok(events)
    }

    /// Every event of a task and its sub-tasks, in order.
    pub fn timeline(&self, task_id: &str) -> Result<Vec<Event>, LedgerError> {
        crate::audit::timeline(self.inner.store.as_ref(), task_id)
    }

    /// Runs one operation through the group committer.
    ///
    /// Operations other than requests, uses and revocations have no
    /// degraded form: while the store is unavailable they fail.
    fn run<T, F>(&self, actor: &str, op: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> Result<T, LedgerError> + Send + 'static,
    {
        // While a spool waits, nothing reaches the store before it: the
        // chain keeps the order in which the answers were given.
        if self.is_degraded() {
            let now = self.inner.clock.now();
            let due = lock(&self.inner.degraded).state.as_ref().is_some_and(|l| {
                l.last_attempt
                    .is_none_or(|at| now >= at.plus_micros(RECOVERY_INTERVAL_MICROS))
            });
            if !(due && self.recover().is_ok()) && self.is_degraded() {
                return Err(LedgerError::Store(StoreError::unavailable(
                    "the ledger works without its store until its degraded spool is replayed",
                )));
            }
        }
        let slot = Arc::new(Mutex::new(None));
        let job = Box::new(TypedJob {
            op: Some(op),
            actor: actor.to_string(),
            result: None,
            slot: Arc::clone(&slot),
        });
        self.inner.committer.submit(&self.inner, job, &slot)
    }
}

/// Counters of a ledger's work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Operations run through the committer.
    pub operations: u64,
    /// Store transactions they ran in.
    pub commits: u64,
    /// Signed checkpoints kept in the store but not written to the
    /// checkpoint file (it could not be written).
    pub checkpoint_failures: u64,
}

/// How often a degraded ledger tries its store again, at most.
const RECOVERY_INTERVAL_MICROS: i64 = 1_000_000;

enum Attempt<T> {
    Done(Result<T, LedgerError>),
    Unavailable(StoreError),
}

type Slot<T> = Arc<Mutex<Option<Result<T, LedgerError>>>>;

/// One queued operation.
trait Job: Send {
    /// Runs the operation; `Err` only for a failure that must abort the
    /// whole transaction (the store, or the ledger's own consistency).
    fn run(&mut self, ctx: &mut Ctx<'_>) -> Result<(), LedgerError>;
    /// Delivers the answer once the transaction's fate is known.
    fn finish(self: Box<Self>, failure: Option<&LedgerError>);
}

struct TypedJob<T, F> {
    op: Option<F>,
    actor: String,
    result: Option<Result<T, LedgerError>>,
    slot: Slot<T>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&mut Ctx<'_>) -> Result<T, LedgerError> + Send,
{
    fn run(&mut self, ctx: &mut Ctx<'_>) -> Result<(), LedgerError> {
        let Some(op) = self.op.take() else {
            return Ok(());
        };
        ctx.actor.clone_from(&self.actor);
        let before = ctx.head()?.map(|h| h.seq);
        match op(ctx) {
            Err(error @ (LedgerError::Store(_) | LedgerError::Internal(_))) => Err(error),
            // An operation refuses before it writes; one that wrote and then
            // failed would leave half an operation, so the batch aborts.
            Err(error) if ctx.head()?.map(|h| h.seq) != before => Err(LedgerError::Internal(
                format!("an operation failed after writing: {error}"),
            )),
            result => {
                self.result = Some(result);
                Ok(())
            }
        }
    }

    fn finish(self: Box<Self>, failure: Option<&LedgerError>) {
        let result = match failure {
            Some(error) => Err(error.clone()),
            None => self.result.unwrap_or_else(|| {
                Err(LedgerError::Internal(
                    "an operation did not run".to_string(),
                ))
            }),
        };
        *lock(&self.slot) = Some(result);
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Group commit: the first waiting thread leads, running every queued job
/// in one transaction; the others wait for their answers.
#[derive(Debug, Default)]
struct Committer {
    queue: Mutex<Queue>,
    done: Condvar,
    operations: AtomicU64,
    commits: AtomicU64,
    checkpoint_failures: AtomicU64,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    leading: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("jobs", &self.jobs.len())
            .field("leading", &self.leading)
            .finish()
    }
}

/// At most this many operations share one transaction, so one commit's
/// latency stays bounded under load.
const MAX_BATCH: usize = 256;

impl Committer {
    fn submit<T>(
        &self,
        inner: &Inner,
        job: Box<dyn Job>,
        slot: &Slot<T>,
    ) -> Result<T, LedgerError> {
        let mut queue = lock(&self.queue);
        queue.jobs.push(job);
        loop {
            if let Some(result) = lock(slot).take() {
                return result;
            }
            if queue.leading {
                queue = self
                    .done
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue.leading = true;
            let take = queue.jobs.len().min(MAX_BATCH);
            let batch: Vec<Box<dyn Job>> = queue.jobs.drain(..take).collect();
            drop(queue);
            self.operations
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.commits.fetch_add(1, Ordering::Relaxed);
            commit_batch(inner, batch);
            queue = lock(&self.queue);
            queue.leading = false;
            self.done.notify_all();
        }
    }
}

fn commit_batch(inner: &Inner, mut batch: Vec<Box<dyn Job>>) {
    let engine = inner.policy.current();
    let mut fatal: Option<LedgerError> = None;
    let mut checkpoint = None;
    let written = inner.store.write(&mut |tx| {
        let mut ctx = Ctx::new(tx, Arc::clone(&engine), &inner.config);
        let abort = |error: LedgerError, fatal: &mut Option<LedgerError>| {
            let store_error = match &error {
                LedgerError::Store(e) => e.clone(),
                other => StoreError::corrupt(other.to_string()),
            };
            *fatal = Some(error);
            store_error
        };
        if inner.administers {
            // Read under the append lock: the policy in force in the store
            // when these events are chained, whoever activated it.
            match ctx.tx.meta(ops::POLICY_HASH_KEY) {
                Ok(Some(hash)) => ctx.stamp = Some(hash),
                Ok(None) => {
                    return Err(abort(
                        LedgerError::Internal(format!(
                            "the store `{}` no longer records a policy",
                            inner.store.describe()
                        )),
                        &mut fatal,
                    ));
                }
                Err(error) => return Err(abort(LedgerError::Store(error), &mut fatal)),
            }
        }
        for job in &mut batch {
            ctx.now = inner.clock.now();
            if let Err(error) = job.run(&mut ctx) {
                return Err(abort(error, &mut fatal));
            }
        }
        if let Some(config) = &inner.config.checkpoints {
            checkpoint = due_checkpoint(&mut ctx, config).map_err(|e| abort(e, &mut fatal))?;
        }
        Ok(())
    });
    if let (Ok(()), None, Some(checkpoint), Some(config)) =
        (&written, &fatal, &checkpoint, &inner.config.checkpoints)
    {
        // Exported once durable in the store: a checkpoint outside never
        // names an event the store does not hold.
        if crate::checkpoint::append(&config.file, checkpoint).is_err() {
            inner
                .committer
                .checkpoint_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    let failure = match (written, fatal) {
        (_, Some(error)) => Some(error),
        (Err(error), None) => Some(LedgerError::Store(error)),
        (Ok(()), None) => None,
    };
    for job in batch {
        job.finish(failure.as_ref());
    }
}

/// The meta key of the latest signed checkpoint.
const CHECKPOINT_KEY: &str = "checkpoint";

/// Signs the head when the chain has grown `every` events past the last
/// checkpoint, keeping it in the store in the same transaction.
fn due_checkpoint(
    ctx: &mut Ctx<'_>,
    config: &CheckpointConfig,
) -> Result<Option<crate::Checkpoint>, LedgerError> {
    let Some(head) = ctx.head()? else {
        return Ok(None);
    };
    let last = match ctx.tx.meta(CHECKPOINT_KEY)? {
        Some(json) => serde_json::from_str::<crate::Checkpoint>(&json)
            .map(|c| c.seq)
            .unwrap_or(0),
        None => 0,
    };
    if head.seq < last.saturating_add(config.every.max(1)) {
        return Ok(None);
    }
    let checkpoint = config.signer.sign(head.seq, &head.hash, ctx.now);
    let json = serde_json::to_string(&checkpoint)
        .map_err(|e| LedgerError::Internal(format!("cannot encode a checkpoint: {e}")))?;
    ctx.tx.set_meta(CHECKPOINT_KEY, &json)?;
    Ok(Some(checkpoint))
}
