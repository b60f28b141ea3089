//! The ledger's state: tasks and grants, as the answers carry them and the
//! stores keep them. State is a projection of the events (project.rs):
//! every field here is set from an event, so replaying the events rebuilds
//! it exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Whether a task is still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Grants may be requested in it.
    Open,
    /// Ended (completed, revoked, or past its deadline); its grants are
    /// revoked and its sub-tasks ended.
    Ended,
}

/// One unit of work of one agent; tasks form a tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    pub agent: String,
    pub parent_task_id: Option<String>,
    /// 0 for a root task; a sub-task's is its parent's + 1.
    pub depth: u32,
    /// The agents of every ancestor task, root first.
    pub chain: Vec<String>,
    pub opened_at: Timestamp,
    pub deadline: Option<Timestamp>,
    pub state: TaskState,
    pub labels: BTreeMap<String, String>,
    /// Grants issued in this task, pending ones included (`ledger.task_grants`).
    pub grants_issued: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
}

/// Where a grant is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantState {
    /// Waiting for approvals.
    Pending,
    /// Usable until `expires_at`, while uses are left.
    Active,
    /// No use left.
    Exhausted,
    /// Past `expires_at` (or, pending, past the approval timeout).
    Expired,
    /// Revoked, or its task ended.
    Revoked,
}

impl GrantState {
    /// Whether the grant may still become or be usable.
    pub fn is_live(self) -> bool {
        matches!(self, GrantState::Pending | GrantState::Active)
    }
}

/// The approvals a grant needs, and those it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    /// Every group that must approve, sorted.
    pub required: Vec<String>,
    /// The approvals given so far, in order.
    pub granted: Vec<Approval>,
}

impl Approvals {
    /// The groups that have not approved yet.
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        self.required
            .iter()
            .map(String::as_str)
            .filter(|group| !self.granted.iter().any(|a| a.group == *group))
    }

    /// Whether every required group has approved.
    pub fn complete(&self) -> bool {
        self.missing().next().is_none()
    }
}

/// One group's approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub group: String,
    pub approver: String,
    pub at: Timestamp,
}

/// A credential the issuer minted for a grant: a reference or fingerprint,
/// never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub issuer: String,
    pub credential_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// Permission for one agent, in one task, to use one tool, until
/// `expires_at`, at most `uses_left` more times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: String,
    pub task_id: String,
    pub agent: String,
    pub tool: String,
    pub state: GrantState,
    /// When it was issued (for a pending grant, requested).
    pub issued_at: Timestamp,
    /// When it stops: for a pending grant, when the approval timeout ends.
    pub expires_at: Timestamp,
    /// The lifetime the decision granted, in seconds (after the caps).
    pub ttl_seconds: u64,
    /// Uses left; `None` when unlimited.
    pub uses_left: Option<u64>,
    pub approvals: Approvals,
    /// The parent task's grant for the same tool that caps this one.
    pub parent_grant_id: Option<String>,
    /// Renewals so far (`ledger.renewals` of the next one is this + 1).
    pub renewals: u64,
    /// Issued while the ledger worked without its store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credential>,
    /// The decision that issued it (or, renewed, the last renewal's).
    pub decision_id: String,
    pub policy_hash: String,
}

impl Grant {
    /// The state at `now`: an active or pending grant past `expires_at` is
    /// expired, even before the sweep writes its event.
    pub fn state_at(&self, now: Timestamp) -> GrantState {
        if self.state.is_live() && now >= self.expires_at {
            GrantState::Expired
        } else {
            self.state
        }
    }

    /// Whether a use at `now` may go through, as far as this grant alone is
    /// concerned.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.state_at(now) == GrantState::Active && self.uses_left != Some(0)
    }

    /// The references of every credential bound to it.
    pub fn credential_refs(&self) -> Vec<String> {
        self.credentials
            .iter()
            .map(|c| c.credential_ref.clone())
            .collect()
    }
}

/// A task with its grants and sub-tasks, as a read returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    #[serde(flatten)]
    pub task: Task,
    pub grants: Vec<Grant>,
    pub subtasks: Vec<String>,
}
