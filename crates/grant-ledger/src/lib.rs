//! Grant's ledger: tasks, grants, use, renewal, revocation, delegation, and
//! one tamper-evident audit chain (docs/lifecycle.md is the guide; the
//! normative behaviour is the lifecycle spec).
//!
//! A [`Ledger`] sits over a [`Store`] (memory, SQLite, PostgreSQL) and a
//! policy [`grant_engine::Engine`]. Every operation is atomic: its state
//! change and its events are stored together, durably, before it answers.
//! State is a projection of the events, so replaying a chain rebuilds it.

pub mod api;
pub mod audit;
pub mod chain;
pub mod checkpoint;
pub mod clock;
mod degraded;
pub mod error;
pub mod event;
mod guard;
mod hex;
mod id;
pub mod jcs;
mod ledger;
pub mod model;
mod ops;
mod policy;
mod project;
pub mod redact;
pub mod replay;
pub mod settings;
pub mod store;
pub mod time;

pub use api::{
    Approve, BindCredential, GrantAnswer, OpenTask, Renew, RequestGrant, Revoke, RevokeTarget,
    Revoked, Swept, UseAnswer, UseGrant,
};

pub use chain::{Problem, Verification};
pub use checkpoint::{Checkpoint, CheckpointError, Signer, VerifyingKey};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::LedgerError;
pub use event::{Event, EventType};
pub use guard::{Admission, Guard};
pub use id::{new_id, random_bytes};
pub use ledger::{CheckpointConfig, Ledger, LedgerConfig, LedgerStats};
pub use model::{Approval, Approvals, Credential, Grant, GrantState, Task, TaskState, TaskView};
pub use ops::{MAX_DEPTH, MAX_LABEL_BYTES, MAX_LABELS};
pub use policy::{LedgerDecision, forged_ledger_keys, refuse_forged_keys};
pub use redact::Redactor;
pub use settings::{LedgerSettings, RedactSettings};
pub use store::{Store, StoreError, StoreErrorKind};
pub use time::Timestamp;
