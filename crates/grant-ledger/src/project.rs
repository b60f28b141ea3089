//! State as a projection of events: the one place tasks and grants change.
//! Operations decide which events to write; [`apply`] turns each into rows.
//! Replaying a chain through it into an empty store rebuilds the same
//! tasks and grants (tests/replay.rs), which is why every state change has
//! an event that carries all it needs.

use crate::error::LedgerError;
use crate::event::{Event, EventType};
use crate::model::{Approval, Approvals, Credential, Grant, GrantState, Task, TaskState};
use crate::store::Tx;

/// Applies one event's state change.
pub(crate) fn apply(tx: &mut dyn Tx, event: &Event) -> Result<(), LedgerError> {
    match event.kind {
        EventType::TaskOpened => open_task(tx, event),
        EventType::TaskEnded => {
            let mut task = task_of(tx, event)?;
            task.state = TaskState::Ended;
            task.ended_at = Some(event.time);
            task.end_reason = event.reason.clone();
            tx.put_task(&task)?;
            Ok(())
        }
        EventType::GrantIssued | EventType::GrantPending => issue_grant(tx, event),
        EventType::GrantApproved => {
            let mut grant = grant_of(tx, event)?;
            grant.approvals.granted.push(Approval {
                group: event.group.clone().ok_or_else(|| missing(event, "group"))?,
                approver: event
                    .approver
                    .clone()
                    .ok_or_else(|| missing(event, "approver"))?,
                at: event.time,
            });
            // The last approval carries the lifetime that starts with it.
            if let Some(expires_at) = event.expires_at {
                grant.state = GrantState::Active;
                grant.expires_at = expires_at;
                grant.uses_left = event.uses_left;
                grant.ttl_seconds = event.ttl_seconds.unwrap_or(grant.ttl_seconds);
            }
            tx.put_grant(&grant)?;
            Ok(())
        }
        EventType::GrantRejected | EventType::GrantRevoked => {
            set_state(tx, event, GrantState::Revoked)
        }
        EventType::GrantExpired => set_state(tx, event, GrantState::Expired),
        EventType::GrantUsed => use_grant(tx, event),
        EventType::GrantRenewed => {
            let mut grant = grant_of(tx, event)?;
            grant.expires_at = event.expires_at.unwrap_or(grant.expires_at);
            grant.uses_left = event.uses_left;
            grant.ttl_seconds = event.ttl_seconds.unwrap_or(grant.ttl_seconds);
            grant.renewals += 1;
            if let Some(id) = decision_id(event) {
                grant.decision_id = id;
            }
            grant.policy_hash = event.policy_hash.clone();
            tx.put_grant(&grant)?;
            Ok(())
        }
        EventType::CredentialBound => {
            let mut grant = grant_of(tx, event)?;
            for credential_ref in event.credential_refs.iter().flatten() {
                grant.credentials.push(Credential {
                    issuer: event
                        .issuer
                        .clone()
                        .ok_or_else(|| missing(event, "issuer"))?,
                    credential_ref: credential_ref.clone(),
                    expires_at: event.expires_at,
                });
            }
            tx.put_grant(&grant)?;
            Ok(())
        }
        EventType::AgentBlocked | EventType::AgentUnblocked => {
            let agent = event
                .agent
                .as_deref()
                .ok_or_else(|| missing(event, "agent"))?;
            tx.set_blocked(agent, event.kind == EventType::AgentBlocked)?;
            Ok(())
        }
        EventType::GrantDenied
        | EventType::GrantUseRefused
        | EventType::GrantRenewDenied
        | EventType::PolicyActivated
        | EventType::LedgerDegraded
        | EventType::LedgerRecovered => Ok(()),
    }
}

fn open_task(tx: &mut dyn Tx, event: &Event) -> Result<(), LedgerError> {
    let task_id = event
        .task_id
        .clone()
        .ok_or_else(|| missing(event, "task_id"))?;
    let agent = event.agent.clone().ok_or_else(|| missing(event, "agent"))?;
    let (depth, chain) = match &event.parent_task_id {
        Some(parent_id) => {
            let parent = tx.task(parent_id)?.ok_or_else(|| {
                inconsistent(event, format!("its parent task `{parent_id}` is unknown"))
            })?;
            let mut chain = parent.chain.clone();
            chain.push(parent.agent.clone());
            (parent.depth + 1, chain)
        }
        None => (0, Vec::new()),
    };
    tx.put_task(&Task {
        task_id,
        agent,
        parent_task_id: event.parent_task_id.clone(),
        depth,
        chain,
        opened_at: event.time,
        deadline: event.deadline,
        state: TaskState::Open,
        labels: event.labels.clone().unwrap_or_default(),
        grants_issued: 0,
        ended_at: None,
        end_reason: None,
    })?;
    Ok(())
}

fn issue_grant(tx: &mut dyn Tx, event: &Event) -> Result<(), LedgerError> {
    let mut task = task_of(tx, event)?;
    let pending = event.kind == EventType::GrantPending;
    let grant = Grant {
        grant_id: event
            .grant_id
            .clone()
            .ok_or_else(|| missing(event, "grant_id"))?,
        task_id: task.task_id.clone(),
        agent: event.agent.clone().ok_or_else(|| missing(event, "agent"))?,
        tool: event.tool.clone().ok_or_else(|| missing(event, "tool"))?,
        state: if pending {
            GrantState::Pending
        } else {
            GrantState::Active
        },
        issued_at: event.time,
        expires_at: event
            .expires_at
            .ok_or_else(|| missing(event, "expires_at"))?,
        ttl_seconds: event.ttl_seconds.unwrap_or(0),
        uses_left: event.uses_left,
        approvals: Approvals {
            required: event.approvals.clone().unwrap_or_default(),
            granted: Vec::new(),
        },
        parent_grant_id: event.parent_grant_id.clone(),
        renewals: 0,
        degraded: event.degraded,
        credentials: Vec::new(),
        decision_id: decision_id(event).unwrap_or_default(),
        policy_hash: event.policy_hash.clone(),
    };
    tx.put_grant(&grant)?;
    task.grants_issued += 1;
    tx.put_task(&task)?;
    Ok(())
}

fn use_grant(tx: &mut dyn Tx, event: &Event) -> Result<(), LedgerError> {
    let mut grant = grant_of(tx, event)?;
    grant.uses_left = event.uses_left;
    if grant.uses_left == Some(0) && grant.state == GrantState::Active {
        grant.state = GrantState::Exhausted;
    }
    let mut parent = grant.parent_grant_id.clone();
    tx.put_grant(&grant)?;
    // One budget down the tree: a use also takes one from each limited
    // ancestor.
    let mut hops = 0usize;
    while let Some(parent_id) = parent {
        hops += 1;
        if hops > crate::ops::MAX_DEPTH as usize + 1 {
            return Err(inconsistent(event, "its grant chain loops".to_string()));
        }
        let Some(mut ancestor) = tx.grant(&parent_id)? else {
            break;
        };
        if let Some(left) = ancestor.uses_left {
            ancestor.uses_left = Some(left.saturating_sub(1));
            if left <= 1 && ancestor.state == GrantState::Active {
                ancestor.state = GrantState::Exhausted;
            }
            tx.put_grant(&ancestor)?;
        }
        parent = ancestor.parent_grant_id.clone();
    }
    Ok(())
}

fn set_state(tx: &mut dyn Tx, event: &Event, state: GrantState) -> Result<(), LedgerError> {
    let mut grant = grant_of(tx, event)?;
    grant.state = state;
    tx.put_grant(&grant)?;
    Ok(())
}

fn task_of(tx: &mut dyn Tx, event: &Event) -> Result<Task, LedgerError> {
    let id = event
        .task_id
        .as_deref()
        .ok_or_else(|| missing(event, "task_id"))?;
    tx.task(id)?
        .ok_or_else(|| inconsistent(event, format!("its task `{id}` is unknown")))
}

fn grant_of(tx: &mut dyn Tx, event: &Event) -> Result<Grant, LedgerError> {
    let id = event
        .grant_id
        .as_deref()
        .ok_or_else(|| missing(event, "grant_id"))?;
    tx.grant(id)?
        .ok_or_else(|| inconsistent(event, format!("its grant `{id}` is unknown")))
}

fn decision_id(event: &Event) -> Option<String> {
    event
        .decision
        .as_ref()?
        .get("decision_id")?
        .as_str()
        .map(str::to_string)
}

fn missing(event: &Event, field: &str) -> LedgerError {
    inconsistent(event, format!("it has no `{field}`"))
}

fn inconsistent(event: &Event, why: String) -> LedgerError {
    LedgerError::Internal(format!(
        "event {} ({}) cannot be applied: {why}",
        event.seq,
        event.kind.as_str()
    ))
}
