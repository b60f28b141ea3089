//! Where the ledger keeps its events and the state they project to. One
//! trait, [`Store`], with three backends (memory, SQLite, PostgreSQL) and
//! one conformance suite (tests/store_conformance.rs) run against each.
//!
//! A store is deliberately dumb: rows in, rows out, by a few keys. Every
//! rule of the lifecycle lives once, in the ledger above it. What a store
//! owes the ledger:
//!
//! - [`Store::write`] runs its closure in one transaction that holds the
//!   chain's append lock (across processes, for a shared database), so
//!   operations are serializable and `seq` stays gapless; it commits
//!   durably (fsync) before returning `Ok`, and keeps nothing of a closure
//!   that returned `Err` or of a commit that failed.
//! - Reads inside a write see that write's own changes.
//! - Events are never updated or deleted.

pub mod faulty;
pub mod memory;
pub mod postgres;
pub mod sqlite;

use std::fmt::Debug;
use std::sync::Arc;

use crate::model::{Grant, Task};
use crate::time::Timestamp;

/// One event as stored: its place in the chain, the keys a read looks it up
/// by, and its canonical JSON text (which includes `hash`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub hash: String,
    /// The `type` field, e.g. `grant.issued`.
    pub kind: String,
    pub task_id: Option<String>,
    pub grant_id: Option<String>,
    pub json: String,
}

/// The last event of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// What a transaction may read and write. Lists come back in a stable
/// order: tasks and grants by id, events by `seq`.
pub trait Tx {
    /// The last event, or `None` for an empty chain.
    fn head(&mut self) -> Result<Option<Head>, StoreError>;
    /// Appends an event; its `seq` is the head's + 1.
    fn append(&mut self, event: &StoredEvent) -> Result<(), StoreError>;
    /// Up to `limit` events with `seq > after`, ascending.
    fn events_after(&mut self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// Every event of these tasks, ascending by `seq`.
    fn events_of_tasks(&mut self, task_ids: &[String]) -> Result<Vec<StoredEvent>, StoreError>;

    fn task(&mut self, task_id: &str) -> Result<Option<Task>, StoreError>;
    /// Inserts or replaces the task with this `task_id`.
    fn put_task(&mut self, task: &Task) -> Result<(), StoreError>;
    /// The tasks whose parent is `task_id`.
    fn subtasks(&mut self, task_id: &str) -> Result<Vec<Task>, StoreError>;
    /// The open tasks of `agent`.
    fn open_tasks_of_agent(&mut self, agent: &str) -> Result<Vec<Task>, StoreError>;
    /// Up to `limit` open tasks whose deadline is at or before `now`.
    fn due_tasks(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Task>, StoreError>;

    fn grant(&mut self, grant_id: &str) -> Result<Option<Grant>, StoreError>;
    /// Inserts or replaces the grant with this `grant_id`.
    fn put_grant(&mut self, grant: &Grant) -> Result<(), StoreError>;
    /// The grants of `task_id`.
    fn grants_of_task(&mut self, task_id: &str) -> Result<Vec<Grant>, StoreError>;
    /// The grants whose `parent_grant_id` is `grant_id`.
    fn child_grants(&mut self, grant_id: &str) -> Result<Vec<Grant>, StoreError>;
    /// Up to `limit` pending or active grants whose `expires_at` is at or
    /// before `now`.
    fn due_grants(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Grant>, StoreError>;

    fn is_blocked(&mut self, agent: &str) -> Result<bool, StoreError>;
    fn set_blocked(&mut self, agent: &str, blocked: bool) -> Result<(), StoreError>;

    /// A small named value the ledger keeps beside the chain (the policy
    /// hash last activated, the latest signed checkpoint).
    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
}

/// A closure run inside a transaction.
pub type Work<'a> = dyn FnMut(&mut dyn Tx) -> Result<(), StoreError> + 'a;

/// A place the ledger keeps its events and state.
pub trait Store: Send + Sync + Debug {
    /// Runs `work` in one serializable transaction holding the append lock
    /// and commits it durably; nothing of it is kept when `work` or the
    /// commit fails.
    fn write(&self, work: &mut Work<'_>) -> Result<(), StoreError>;
    /// Runs `work` over a consistent snapshot; writes inside it fail.
    fn read(&self, work: &mut Work<'_>) -> Result<(), StoreError>;
    /// The store's URL, without secrets, for messages.
    fn describe(&self) -> String;
}

/// What kind of failure a [`StoreError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or written now (I/O, connection, lock
    /// timeout); the operation may succeed later.
    Unavailable,
    /// The file or database is not a ledger, or is a ledger of a newer
    /// schema version than this build knows.
    NotALedger,
    /// The data in the store is malformed.
    Corrupt,
    /// The URL is malformed or names no known backend.
    BadUrl,
}

/// A store failed; nothing of the operation was kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Unavailable, message)
    }

    pub fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Corrupt, message)
    }
}

/// Opens the store a URL names: `memory`, `sqlite:PATH` (also
/// `sqlite://PATH`, so `sqlite:///abs/path`), or `postgres://...` (also
/// `postgresql://`, passed to the PostgreSQL client as given).
pub fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url == "memory" || url == "memory:" {
        return Ok(Arc::new(memory::MemoryStore::new()));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(bad_url(url));
        }
        return Ok(Arc::new(sqlite::SqliteStore::open(path)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::open(url)?));
    }
    Err(bad_url(url))
}

fn bad_url(url: &str) -> StoreError {
    // Whatever it is, it may hold a password.
    let url = postgres::mask_password(url);
    StoreError::new(
        StoreErrorKind::BadUrl,
        format!(
            "`{url}` names no store; use `memory`, `sqlite:PATH` or \
             `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`"
        ),
    )
}

/// Serializes a task or grant for a store's body column.
pub(crate) fn to_body<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::corrupt(format!("cannot encode a row: {e}")))
}

/// Reads a task or grant back from a store's body column.
pub(crate) fn from_body<T: serde::de::DeserializeOwned>(
    what: &str,
    body: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::corrupt(format!("a stored {what} is malformed: {e}")))
}
