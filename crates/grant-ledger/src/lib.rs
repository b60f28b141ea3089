//! Grant's ledger: tasks, grants, use, renewal, revocation, delegation, and
//! one tamper-evident audit chain (docs/lifecycle.md is the guide; the
//! normative behaviour is the lifecycle spec).

pub mod audit;
pub mod chain;
pub mod checkpoint;
pub mod clock;
pub mod error;
pub mod event;
mod hex;
mod id;
pub mod jcs;
pub mod model;
pub mod redact;
pub mod store;
pub mod time;

pub use chain::{Problem, Verification};
pub use checkpoint::{Checkpoint, CheckpointError, Signer, VerifyingKey};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::LedgerError;
pub use event::{Event, EventType};
pub use model::{Approval, Approvals, Credential, Grant, GrantState, Task, TaskState, TaskView};
pub use redact::Redactor;
pub use store::{Store, StoreError, StoreErrorKind};
pub use time::Timestamp;
