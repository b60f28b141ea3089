//! Working without the store (the spec's "store unavailable"): fail safe,
//! never fail open.
//!
//! When a write fails because the store is unavailable, grant requests are
//! denied, unless the policy declares `ledger.degraded` and a spool file is
//! configured. Then the same operations (ops.rs) run against a local
//! in-memory ledger holding the tasks this process has seen and the grants
//! it issues while degraded, deciding with `ledger.degraded = true` (allow
//! rules apply only if they read it; `ledger.task_grants` is missing). Every
//! event they write, and every revocation asked for, is appended to the
//! spool and fsynced before the answer. Only grants issued here while
//! degraded can be used, never past their expiry; revocations apply at
//! once, locally.
//!
//! When a write succeeds again, the spool is replayed in order into the
//! chain in one transaction, after a `ledger.degraded` event and before a
//! `ledger.recovered` one, each event keeping its time and marked
//! `degraded`. Revocations replay as revocations, so a revocation already in
//! the store wins over a spooled use. The store remembers how far each
//! spool was replayed, so a crash between the commit and the spool's
//! truncation replays nothing twice.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::Revoke;
use crate::error::LedgerError;
use crate::event::{Event, EventType};
use crate::model::{Task, TaskState};
use crate::ops::{self, Ctx};
use crate::store::memory::MemoryStore;
use crate::store::{Store, StoreError, StoreErrorKind};
use crate::time::Timestamp;

/// How many tasks this process remembers for deciding while degraded.
const TASKS_REMEMBERED: usize = 16_384;

/// One line of the spool.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "spooled", rename_all = "snake_case")]
pub(crate) enum Spooled {
    /// An event written while degraded, replayed as it is.
    Event { index: u64, event: Box<Event> },
    /// A revocation asked for while degraded, replayed as a revocation at
    /// its time.
    Revoke {
        index: u64,
        time: Timestamp,
        actor: String,
        revoke: Revoke,
    },
}

impl Spooled {
    fn index(&self) -> u64 {
        match self {
            Spooled::Event { index, .. } | Spooled::Revoke { index, .. } => *index,
        }
    }
}

/// The local side of the ledger while its store is unavailable.
#[derive(Debug)]
pub(crate) struct Degraded {
    spool_path: Option<PathBuf>,
    /// Tasks seen while the store was up, oldest first out.
    seen: HashMap<String, Task>,
    seen_order: VecDeque<String>,
    /// Set while the store is unavailable.
    pub(crate) state: Option<Local>,
}

#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) store: Arc<MemoryStore>,
    spool: File,
    entries: Vec<Spooled>,
    /// The id under which the store records how far this spool was replayed.
    spool_id: String,
    /// When the store was last tried (by the ledger's clock).
    pub(crate) last_attempt: Option<Timestamp>,
}

impl Degraded {
    pub(crate) fn new(spool_path: Option<PathBuf>) -> Degraded {
        Degraded {
            spool_path,
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            state: None,
        }
    }

    /// Whether grants may be issued without the store at all.
    pub(crate) fn can_spool(&self) -> bool {
        self.spool_path.is_some()
    }

    /// Remembers a task as the store last showed it.
    pub(crate) fn remember(&mut self, task: &Task) {
        // Labels play no part in decisions: not kept, so the memory this
        // takes is bounded by the task count and chain lengths.
        let mut task = task.clone();
        task.labels.clear();
        if self
            .seen
            .insert(task.task_id.clone(), task.clone())
            .is_none()
        {
            self.seen_order.push_back(task.task_id.clone());
            while self.seen_order.len() > TASKS_REMEMBERED {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// The task as this process last saw it, with its ancestors, so sub-task
    /// facts (`ledger.chain`) are known.
    pub(crate) fn seen(&self, task_id: &str) -> Option<&Task> {
        self.seen.get(task_id)
    }

    /// Enters degraded mode (or stays in it): opens the spool, writing
    /// `ledger.degraded` first.
    pub(crate) fn enter(
        &mut self,
        error: &StoreError,
        now: Timestamp,
        policy_hash: &str,
    ) -> Result<&mut Local, LedgerError> {
        if self.state.is_none() {
            let path = self
                .spool_path
                .clone()
                .ok_or_else(|| LedgerError::Store(error.clone()))?;
            let (spool, entries, spool_id) = open_spool(&path)?;
            let mut local = Local {
                store: Arc::new(MemoryStore::new()),
                spool,
                entries,
                spool_id,
                last_attempt: Some(now),
            };
            if local.entries.is_empty() {
                let mut event =
                    Event::new(EventType::LedgerDegraded, ops::SWEEPER, policy_hash, now);
                event.reason = Some(format!("store unavailable: {}", error.message));
                event.degraded = true;
                local.append(vec![event])?;
            }
            self.state = Some(local);
        }
        self.state
            .as_mut()
            .ok_or_else(|| LedgerError::Internal("degraded state vanished".to_string()))
    }

    /// Loads a spool left by an earlier run, so it is replayed at the next
    /// chance.
    pub(crate) fn resume(&mut self) -> Result<(), LedgerError> {
        let Some(path) = self.spool_path.clone() else {
            return Ok(());
        };
        if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 {
            return Ok(());
        }
        let (spool, entries, spool_id) = open_spool(&path)?;
        self.state = Some(Local {
            store: Arc::new(MemoryStore::new()),
            spool,
            entries,
            spool_id,
            last_attempt: None,
        });
        Ok(())
    }
}

impl Local {
    /// Entries spooled so far.
    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Appends events to the spool and fsyncs it before anyone answers.
    pub(crate) fn append(&mut self, events: Vec<Event>) -> Result<(), LedgerError> {
        let start = self.entries.len() as u64 + 1;
        let entries: Vec<Spooled> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Spooled::Event {
                index: start + i as u64,
                event: Box::new(event),
            })
            .collect();
        self.write(entries)
    }

    pub(crate) fn append_revoke(
        &mut self,
        time: Timestamp,
        actor: &str,
        revoke: Revoke,
    ) -> Result<(), LedgerError> {
        let index = self.entries.len() as u64 + 1;
        self.write(vec![Spooled::Revoke {
            index,
            time,
            actor: actor.to_string(),
            revoke,
        }])
    }

    fn write(&mut self, entries: Vec<Spooled>) -> Result<(), LedgerError> {
        let mut text = String::new();
        for entry in &entries {
            let line = serde_json::to_string(&SpoolLine {
                spool_id: &self.spool_id,
                entry,
            })
            .map_err(|e| LedgerError::Internal(format!("cannot encode a spool entry: {e}")))?;
            text.push_str(&line);
            text.push('\n');
        }
        self.spool
            .write_all(text.as_bytes())
            .and_then(|()| self.spool.sync_data())
            .map_err(|e| {
                LedgerError::Store(StoreError::unavailable(format!(
                    "the degraded spool cannot be written: {e}"
                )))
            })?;
        self.entries.extend(entries);
        Ok(())
    }

    /// Replays the spool into `store` in one transaction; returns how many
    /// entries were replayed. On success the spool file is emptied.
    pub(crate) fn replay(
        &mut self,
        store: &dyn Store,
        engine: &Arc<grant_engine::Engine>,
        config: &crate::LedgerConfig,
        now: Timestamp,
    ) -> Result<usize, LedgerError> {
        let key = format!("spool:{}", self.spool_id);
        let mut replayed = 0usize;
        let mut fatal = None;
        let entries = &self.entries;
        store
            .write(&mut |tx| {
                let done: u64 = tx.meta(&key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut ctx = Ctx::new(tx, Arc::clone(engine), config);
                ctx.replaying = true;
                let mut count = 0usize;
                let result = (|| -> Result<(), LedgerError> {
                    for entry in entries.iter().filter(|e| e.index() > done) {
                        replay_entry(&mut ctx, entry)?;
                        count += 1;
                    }
                    if count > 0 {
                        ctx.replaying = false;
                        ctx.now = now;
                        ctx.actor = ops::SWEEPER.to_string();
                        let mut event = ctx.event(EventType::LedgerRecovered);
                        event.reason = Some(format!("replayed {count} spooled entries"));
                        ctx.emit(event)?;
                    }
                    let last = entries.last().map_or(done, Spooled::index);
                    ctx.tx.set_meta(&key, &last.to_string())?;
                    Ok(())
                })();
                match result {
                    Ok(()) => {
                        replayed = count;
                        Ok(())
                    }
                    Err(LedgerError::Store(e)) => Err(e),
                    Err(other) => {
                        let message = other.to_string();
                        fatal = Some(other);
                        Err(StoreError::corrupt(message))
                    }
                }
            })
            .map_err(|e| fatal.take().unwrap_or(LedgerError::Store(e)))?;
        // Durable in the store: the spool may go.
        self.spool
            .set_len(0)
            .and_then(|()| self.spool.sync_all())
            .map_err(|e| {
                LedgerError::Store(StoreError::unavailable(format!(
                    "the degraded spool cannot be emptied: {e}"
                )))
            })?;
        Ok(replayed)
    }
}

#[derive(Serialize)]
struct SpoolLine<'a> {
    spool_id: &'a str,
    #[serde(flatten)]
    entry: &'a Spooled,
}

#[derive(Deserialize)]
struct SpoolLineOwned {
    spool_id: String,
    #[serde(flatten)]
    entry: Spooled,
}

fn replay_entry(ctx: &mut Ctx<'_>, entry: &Spooled) -> Result<(), LedgerError> {
    match entry {
        Spooled::Event { event, .. } => {
            let mut event = (**event).clone();
            ctx.now = event.time;
            ctx.actor.clone_from(&event.actor);
            event.degraded = true;
            let revoke_after = match event.kind {
                // A grant issued while degraded into a task that ended in
                // the meantime is recorded, then revoked at once.
                EventType::GrantIssued => {
                    let task = event
                        .task_id
                        .as_deref()
                        .map(|id| ctx.tx.task(id))
                        .transpose()?
                        .flatten();
                    match task {
                        Some(task) if task.state == TaskState::Open => false,
                        Some(_) => true,
                        None => {
                            return Err(LedgerError::Internal(format!(
                                "spooled grant `{}` names a task the store does not hold",
                                event.grant_id.as_deref().unwrap_or("?")
                            )));
                        }
                    }
                }
                _ => false,
            };
            let grant_id = event.grant_id.clone();
            ctx.emit(event)?;
            if let (true, Some(grant_id)) = (revoke_after, grant_id) {
                ops::revoke(
                    ctx,
                    Revoke {
                        target: crate::api::RevokeTarget::Grant(grant_id),
                        reason: "its task ended while the ledger was degraded".to_string(),
                        block: false,
                    },
                )?;
            }
            Ok(())
        }
        Spooled::Revoke {
            time,
            actor,
            revoke,
            ..
        } => {
            ctx.now = *time;
            ctx.actor.clone_from(actor);
            match ops::revoke(ctx, revoke.clone()) {
                // A revocation of something the store never held changes
                // nothing; it was enforced locally while degraded.
                Ok(_) | Err(LedgerError::NotFound { .. }) => Ok(()),
                Err(other) => Err(other),
            }
        }
    }
}

/// Opens (creating, 0600) the spool and reads what an earlier run left.
fn open_spool(path: &Path) -> Result<(File, Vec<Spooled>, String), LedgerError> {
    let unavailable = |e: std::io::Error| {
        LedgerError::Store(StoreError::unavailable(format!(
            "spool `{}`: {e}",
            path.display()
        )))
    };
    let mut options = OpenOptions::new();
    options.create(true).read(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(unavailable)?;
    let mut entries = Vec::new();
    let mut spool_id = None;
    let lines: Vec<String> = BufReader::new(&file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: SpoolLineOwned = match serde_json::from_str(line) {
            Ok(parsed) => parsed,
            // A last line cut short by a crash was never fsynced, so never
            // answered: nothing acknowledged is in it.
            // It is cut off, so the next append starts on a line of its own.
            Err(_) if Some(n) == last && !line.ends_with('}') => {
                let good: usize = lines.iter().take(n).map(|l| l.len() + 1).sum();
                file.set_len(good as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(unavailable)?;
                break;
            }
            Err(e) => {
                return Err(LedgerError::Store(StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("spool `{}` line {}: {e}", path.display(), n + 1),
                )));
            }
        };
        spool_id.get_or_insert(parsed.spool_id);
        entries.push(parsed.entry);
    }
    let spool_id = match spool_id {
        Some(id) => id,
        None => crate::id::new_id("spool_")?,
    };
    Ok((file, entries, spool_id))
}
