//! What the ledger's operations take and answer. The service maps these
//! to its JSON bodies; field names follow the spec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Map;

use crate::model::Grant;
use crate::policy::LedgerDecision;
use crate::time::Timestamp;

/// Open a task (a sub-task when `parent_task_id` is given).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenTask {
    pub agent: String,
    /// Generated (`task_` and 128 random bits) when not given.
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub parent_task_id: Option<String>,
    /// A sub-task's deadline is capped at its parent's (and inherits it
    /// when not given).
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Ask for a grant of `tool` in a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestGrant {
    pub task_id: String,
    pub agent: String,
    pub tool: String,
    #[serde(default)]
    pub attrs: Map<String, serde_json::Value>,
    /// The ttl asked for: a duration string (`"5m"`) or seconds.
    #[serde(default)]
    pub ttl: Option<serde_json::Value>,
}

/// Approve or reject a pending grant for one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    pub grant_id: String,
    pub approver: String,
    pub group: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Use a grant once; with `attrs`, the policy decides this use again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseGrant {
    pub grant_id: String,
    pub agent: String,
    pub tool: String,
    #[serde(default)]
    pub attrs: Option<Map<String, serde_json::Value>>,
}

/// Renew an active grant: decided again under the current policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    pub grant_id: String,
    pub agent: String,
    #[serde(default)]
    pub attrs: Map<String, serde_json::Value>,
    #[serde(default)]
    pub ttl: Option<serde_json::Value>,
}

/// Record the credential an issuer minted for a grant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindCredential {
    pub grant_id: String,
    pub issuer: String,
    /// A reference or fingerprint, never the secret.
    pub credential_ref: String,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// What a revocation names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeTarget {
    Grant(String),
    Task(String),
    Agent(String),
}

/// Revoke a grant (and every grant it caps), a task (and its grants and
/// sub-tasks), or an agent (all its open tasks; with `block`, its new
/// tasks too until unblocked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    pub target: RevokeTarget,
    pub reason: String,
    #[serde(default)]
    pub block: bool,
}

/// A grant request's or renewal's answer: the grant on allow (`active` or
/// `pending`), `None` on any deny, and the decision either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAnswer {
    pub grant: Option<Grant>,
    pub decision: LedgerDecision,
}

/// A use's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseAnswer {
    pub ok: bool,
    /// Uses left after this one; `None` when unlimited.
    pub uses_left: Option<u64>,
    pub expires_at: Option<Timestamp>,
    /// Why the use was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The decision of this use, when it was decided again (`attrs` given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<LedgerDecision>,
}

/// What a revocation or the end of a task changed; empty when it was
/// already done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub revoked: Vec<String>,
    pub ended: Vec<String>,
}

/// What a sweep changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swept {
    pub expired: Vec<String>,
    pub ended: Vec<String>,
}
