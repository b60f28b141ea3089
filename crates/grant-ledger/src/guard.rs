//! Guarding an agent's tool calls in one task: the first allowed call of a
//! tool requests a grant and uses it, later calls use that grant while it
//! lasts (each use decided again with the call's attributes), and a grant
//! that has expired, is used up or was revoked gives way to a new request.
//! The MCP gateway decides every `tools/call` this way, and the Python and
//! Node.js bindings' `guard` wrap tool functions with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::api::{RequestGrant, UseGrant};
use crate::error::LedgerError;
use crate::ledger::{Ledger, lock};
use crate::model::{Grant, GrantState};
use crate::policy::LedgerDecision;
use crate::time::Timestamp;

/// The grants one agent holds in one task, one per tool, with the one
/// waiting for an approval. Cheap to share (`Arc`) across threads: calls
/// of the same tool are decided one at a time, so a grant is never
/// requested twice by a race; calls of different tools run side by side.
#[derive(Debug)]
pub struct Guard {
    ledger: Ledger,
    task_id: String,
    agent: String,
    actor: String,
    /// Attributes every call carries (an MCP session's, say).
    attrs: Map<String, Value>,
    /// Declared `args.*` attributes: the path, and the keys under a call's
    /// arguments it reads (`args.a.b` reads `arguments.a.b`).
    arg_paths: Vec<(String, Vec<String>)>,
    tools: Mutex<HashMap<String, Arc<Mutex<ToolGrants>>>>,
}

/// The grants held for one tool: the one calls use, and one waiting for an
/// approval.
#[derive(Debug, Default)]
struct ToolGrants {
    active: Option<Held>,
    pending: Option<Held>,
}

/// What a guard knows of a grant it holds, so that a use it knows to fail
/// is not attempted.
#[derive(Clone, Debug)]
struct Held {
    grant_id: String,
    expires_at: Timestamp,
    uses_left: Option<u64>,
    /// Approval groups, while pending.
    waiting_for: Vec<String>,
}

impl Held {
    fn of(grant: &Grant) -> Held {
        Held {
            grant_id: grant.grant_id.clone(),
            expires_at: grant.expires_at,
            uses_left: grant.uses_left,
            waiting_for: grant.approvals.missing().map(str::to_string).collect(),
        }
    }

    fn usable_at(&self, now: Timestamp) -> bool {
        now < self.expires_at && self.uses_left != Some(0)
    }
}

/// Whether one call may go ahead, and under which grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Allowed and recorded as a use of `grant_id`: make the call.
    Allowed {
        grant_id: String,
        /// Uses left after this one; `None` when unlimited.
        uses_left: Option<u64>,
        expires_at: Timestamp,
        /// Whether this call requested the grant (else it reused one).
        issued: bool,
    },
    /// The policy (or a ledger rule) denies the call. `grant_id` names the
    /// grant whose use was denied, which stays as it was.
    Denied {
        decision: LedgerDecision,
        grant_id: Option<String>,
    },
    /// The call needs approvals: `grant_id` waits for them (until
    /// `expires_at`). Call again once a person has approved.
    Pending {
        grant_id: String,
        approvals: Vec<String>,
        expires_at: Timestamp,
    },
    /// The ledger refused the use of a grant just issued (its task ended
    /// meanwhile, say).
    UseRefused { grant_id: String, reason: String },
}

impl Admission {
    /// Whether the call may be made.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Admission::Allowed { .. })
    }
}

impl Guard {
    /// Guards `agent`'s calls in task `task_id` (which must be open);
    /// events name `actor`.
    pub fn new(ledger: Ledger, task_id: &str, agent: &str, actor: &str) -> Guard {
        let arg_paths = ledger
            .engine()
            .attr_paths()
            .filter_map(|path| {
                let rest = path.strip_prefix("args.")?;
                Some((
                    path.to_string(),
                    rest.split('.').map(str::to_string).collect(),
                ))
            })
            .collect();
        Guard {
            ledger,
            task_id: task_id.to_string(),
            agent: agent.to_string(),
            actor: actor.to_string(),
            attrs: Map::new(),
            arg_paths,
            tools: Mutex::new(HashMap::new()),
        }
    }

    /// The attributes every call carries, beside its arguments'.
    pub fn with_attrs(mut self, attrs: Map<String, Value>) -> Guard {
        self.attrs = attrs;
        self
    }

    /// The request attributes of a call with `arguments`: the guard's,
    /// then each `args.*` attribute the policy declares that the arguments
    /// give (as given: the engine types them, and a wrong type denies the
    /// call). Arguments the policy does not declare are not read.
    pub fn call_attrs(&self, arguments: Option<&Map<String, Value>>) -> Map<String, Value> {
        let mut attrs = self.attrs.clone();
        let Some(arguments) = arguments else {
            return attrs;
        };
        for (path, keys) in &self.arg_paths {
            let mut value = None;
            let mut at = arguments;
            for (i, key) in keys.iter().enumerate() {
                match at.get(key) {
                    Some(Value::Object(inner)) if i + 1 < keys.len() => at = inner,
                    Some(found) if i + 1 == keys.len() => value = Some(found),
                    _ => break,
                }
            }
            if let Some(value) = value.filter(|v| !v.is_null()) {
                attrs.insert(path.clone(), value.clone());
            }
        }
        attrs
    }

    /// [`Guard::admit`] with the attributes of a call with `arguments`
    /// ([`Guard::call_attrs`]).
    pub fn admit_call(
        &self,
        tool: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<Admission, LedgerError> {
        self.admit_with(tool, self.call_attrs(arguments))
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Forgets every grant held (the task ended): the next call requests.
    pub fn forget(&self) {
        lock(&self.tools).clear();
    }

    /// Decides one call of `tool` with the guard's attributes and `attrs`
    /// (which win over the guard's), and records it: a use of a held
    /// grant, or a request and the new grant's first use. A deny leaves the
    /// held grants as they were. Errors (the store down, the task unknown)
    /// record nothing; the caller must not make the call.
    pub fn admit(&self, tool: &str, attrs: Map<String, Value>) -> Result<Admission, LedgerError> {
        let mut all = self.attrs.clone();
        all.extend(attrs);
        self.admit_with(tool, all)
    }

    /// Decides one call with exactly `attrs`.
    fn admit_with(&self, tool: &str, attrs: Map<String, Value>) -> Result<Admission, LedgerError> {
        let grants = Arc::clone(lock(&self.tools).entry(tool.to_string()).or_default());
        let mut held = lock(&grants);
        self.admit_locked(&mut held, tool, attrs)
    }

    fn admit_locked(
        &self,
        held: &mut ToolGrants,
        tool: &str,
        attrs: Map<String, Value>,
    ) -> Result<Admission, LedgerError> {
        let ledger = &self.ledger;
        let now = ledger.clock().now();

        // A grant that waited for approval may have been approved since.
        if let Some(pending) = held.pending.clone() {
            let grant = ledger.grant(&pending.grant_id)?;
            match grant.state_at(now) {
                GrantState::Active => {
                    held.active = Some(Held::of(&grant));
                    held.pending = None;
                }
                GrantState::Pending => held.pending = Some(Held::of(&grant)),
                _ => held.pending = None,
            }
        }

        let mut approval_needed = false;
        if let Some(active) = held.active.clone().filter(|a| a.usable_at(now)) {
            let answer = ledger.use_grant(
                &self.actor,
                UseGrant {
                    grant_id: active.grant_id.clone(),
                    agent: self.agent.clone(),
                    tool: tool.to_string(),
                    attrs: Some(attrs.clone()),
                },
            )?;
            if answer.ok {
                if let Some(active) = &mut held.active {
                    active.uses_left = answer.uses_left;
                }
                return Ok(Admission::Allowed {
                    grant_id: active.grant_id,
                    uses_left: answer.uses_left,
                    expires_at: answer.expires_at.unwrap_or(active.expires_at),
                    issued: false,
                });
            }
            match answer.decision {
                // The policy denies this call: the grant stays as it was.
                Some(decision) if !decision.is_allow() => {
                    return Ok(Admission::Denied {
                        decision,
                        grant_id: Some(active.grant_id),
                    });
                }
                // Allowed, but with an approval this grant lacks.
                Some(_) => approval_needed = true,
                // The grant is no longer usable (revoked, expired, used up).
                None => held.active = None,
            }
        } else {
            held.active = None;
        }

        let request = RequestGrant {
            task_id: self.task_id.clone(),
            agent: self.agent.clone(),
            tool: tool.to_string(),
            attrs,
            ttl: None,
        };
        // One grant waits for approval at a time: while it waits, a call
        // that needs the approval points at it instead of asking again.
        if let Some(pending) = &held.pending {
            let needs_approval = approval_needed || {
                let decision = ledger.preview(&request)?;
                decision.is_allow()
                    && decision
                        .decision
                        .obligations
                        .as_ref()
                        .is_some_and(|o| !o.approvals.is_empty())
            };
            if needs_approval {
                return Ok(pending_admission(pending));
            }
        }

        let answer = ledger.request_grant(&self.actor, request)?;
        let Some(grant) = answer.grant else {
            return Ok(Admission::Denied {
                decision: answer.decision,
                grant_id: None,
            });
        };
        if grant.state == GrantState::Pending {
            let pending = Held::of(&grant);
            let admission = pending_admission(&pending);
            held.pending = Some(pending);
            return Ok(admission);
        }
        // Issued: this call is its first use.
        let used = ledger.use_grant(
            &self.actor,
            UseGrant {
                grant_id: grant.grant_id.clone(),
                agent: self.agent.clone(),
                tool: tool.to_string(),
                attrs: None,
            },
        )?;
        let mut active = Held::of(&grant);
        active.uses_left = used.uses_left;
        held.active = Some(active);
        if !used.ok {
            return Ok(Admission::UseRefused {
                grant_id: grant.grant_id,
                reason: used.reason.unwrap_or_default(),
            });
        }
        Ok(Admission::Allowed {
            grant_id: grant.grant_id,
            uses_left: used.uses_left,
            expires_at: used.expires_at.unwrap_or(grant.expires_at),
            issued: true,
        })
    }
}

fn pending_admission(pending: &Held) -> Admission {
    Admission::Pending {
        grant_id: pending.grant_id.clone(),
        approvals: pending.waiting_for.clone(),
        expires_at: pending.expires_at,
    }
}
