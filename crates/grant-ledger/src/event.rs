//! Audit events: the append-only record every operation writes, and from
//! which all state is projected. The fields follow the spec; keys that do
//! not apply are left out of the JSON (and so out of the hash).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "task.opened")]
    TaskOpened,
    #[serde(rename = "task.ended")]
    TaskEnded,
    #[serde(rename = "grant.issued")]
    GrantIssued,
    #[serde(rename = "grant.pending")]
    GrantPending,
    #[serde(rename = "grant.denied")]
    GrantDenied,
    #[serde(rename = "grant.approved")]
    GrantApproved,
    #[serde(rename = "grant.rejected")]
    GrantRejected,
    #[serde(rename = "grant.used")]
    GrantUsed,
    #[serde(rename = "grant.use_refused")]
    GrantUseRefused,
    #[serde(rename = "grant.renewed")]
    GrantRenewed,
    #[serde(rename = "grant.renew_denied")]
    GrantRenewDenied,
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    #[serde(rename = "grant.expired")]
    GrantExpired,
    #[serde(rename = "credential.bound")]
    CredentialBound,
    #[serde(rename = "policy.activated")]
    PolicyActivated,
    #[serde(rename = "ledger.degraded")]
    LedgerDegraded,
    #[serde(rename = "ledger.recovered")]
    LedgerRecovered,
    #[serde(rename = "agent.blocked")]
    AgentBlocked,
    #[serde(rename = "agent.unblocked")]
    AgentUnblocked,
}

impl EventType {
    /// The name events carry in `type`, e.g. `grant.issued`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TaskOpened => "task.opened",
            EventType::TaskEnded => "task.ended",
            EventType::GrantIssued => "grant.issued",
            EventType::GrantPending => "grant.pending",
            EventType::GrantDenied => "grant.denied",
            EventType::GrantApproved => "grant.approved",
            EventType::GrantRejected => "grant.rejected",
            EventType::GrantUsed => "grant.used",
            EventType::GrantUseRefused => "grant.use_refused",
            EventType::GrantRenewed => "grant.renewed",
            EventType::GrantRenewDenied => "grant.renew_denied",
            EventType::GrantRevoked => "grant.revoked",
            EventType::GrantExpired => "grant.expired",
            EventType::CredentialBound => "credential.bound",
            EventType::PolicyActivated => "policy.activated",
            EventType::LedgerDegraded => "ledger.degraded",
            EventType::LedgerRecovered => "ledger.recovered",
            EventType::AgentBlocked => "agent.blocked",
            EventType::AgentUnblocked => "agent.unblocked",
        }
    }
}

/// One audit record. `seq`, `prev_hash` and `hash` are set when the event
/// is chained (chain.rs); everything else by the operation that wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub seq: u64,
    pub event_id: String,
    pub time: Timestamp,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The authenticated caller that asked (or `ledger` for the sweep).
    pub actor: String,
    /// The policy in force when the event was written.
    pub policy_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The full decision, with `decision_id` and `policy_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
    /// The attributes as given, redacted paths replaced by a keyed hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Uses left after the event; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u64>,
    /// Seconds of the grant's lifetime (a pending grant's, once approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_refs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `task.opened`: the task's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// `task.opened`: the task's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `grant.pending`: the groups that must approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<String>>,
    /// `grant.approved` / `grant.rejected`: the group and who answered for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// `credential.bound`: who minted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Written from the degraded spool, replayed after recovery.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
    pub prev_hash: String,
    #[serde(default)]
    pub hash: String,
}

impl Event {
    /// An event of `kind` with only the common fields set; the operation
    /// fills in the rest before it is chained.
    pub fn new(kind: EventType, actor: &str, policy_hash: &str, time: Timestamp) -> Event {
        Event {
            seq: 0,
            event_id: String::new(),
            time,
            kind,
            actor: actor.to_string(),
            policy_hash: policy_hash.to_string(),
            task_id: None,
            parent_task_id: None,
            grant_id: None,
            parent_grant_id: None,
            agent: None,
            tool: None,
            decision: None,
            attrs: None,
            expires_at: None,
            uses_left: None,
            ttl_seconds: None,
            credential_refs: None,
            reason: None,
            deadline: None,
            labels: None,
            approvals: None,
            group: None,
            approver: None,
            issuer: None,
            degraded: false,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}
