//! The policy behind the ledger, and how the ledger asks it: the caller's
//! attributes, refused if they name a `ledger.*` attribute, plus the ledger
//! attributes the policy declares, computed at that moment.

use std::sync::{Arc, RwLock};

use grant_engine::{Decision, DecisionEffect, Engine, RequestError, RequestErrorKind, Value};
use serde::{Deserialize, Serialize};
use serde_json::Map;

/// The engine in force, swapped atomically: an operation takes the current
/// engine once and decides everything under it.
#[derive(Debug)]
pub(crate) struct PolicyHandle(RwLock<Arc<Engine>>);

impl PolicyHandle {
    pub(crate) fn new(engine: Engine) -> PolicyHandle {
        PolicyHandle(RwLock::new(Arc::new(engine)))
    }

    pub(crate) fn current(&self) -> Arc<Engine> {
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn swap(&self, engine: Engine) -> Arc<Engine> {
        let engine = Arc::new(engine);
        match self.0.write() {
            Ok(mut guard) => *guard = Arc::clone(&engine),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&engine),
        }
        engine
    }
}

/// The values of the ledger attributes for one decision.
#[derive(Debug)]
pub(crate) struct LedgerFacts<'a> {
    pub agent: &'a str,
    pub depth: u32,
    /// `None` when the process cannot know it (degraded, unseen task):
    /// the attribute is then missing and conditions on it fail closed.
    pub chain: Option<&'a [String]>,
    pub task_age_seconds: u64,
    pub task_grants: Option<u64>,
    pub renewals: u64,
    pub degraded: bool,
}

/// A decision as the ledger answers and records it: the engine's decision
/// with the id the ledger gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDecision {
    pub decision_id: String,
    #[serde(flatten)]
    pub decision: Decision,
}

impl LedgerDecision {
    pub fn is_allow(&self) -> bool {
        self.decision.is_allow()
    }

    /// The first reason, the one a refusal records.
    pub fn reason(&self) -> String {
        self.decision.reasons.first().cloned().unwrap_or_default()
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads the caller's part of a request: `tool`, `attrs` and the asked
/// `ttl` (a duration string or seconds), checked by the engine's rules. A
/// request over the engine's size limit is an error (nothing is decided or
/// recorded); any `ledger.*` key in `attrs` makes the request invalid.
pub(crate) fn read(
    engine: &Engine,
    tool: &str,
    attrs: &Map<String, serde_json::Value>,
    ttl: Option<&serde_json::Value>,
) -> Result<grant_engine::Request, crate::LedgerError> {
    let mut request = engine.request();
    engine.read_parts(tool, attrs, ttl, &mut request);
    if let Some(error) = request
        .errors()
        .iter()
        .find(|e| e.kind() == RequestErrorKind::TooLarge)
    {
        return Err(crate::LedgerError::Invalid(format!(
            "the request is too large: {error}"
        )));
    }
    refuse_forged_keys(attrs, &mut request);
    Ok(request)
}

/// Decides a request [`read`] made, with the ledger attributes the policy
/// declares set from `facts`.
pub(crate) fn decide(
    engine: &Engine,
    request: &mut grant_engine::Request,
    facts: &LedgerFacts<'_>,
) -> Decision {
    set_facts(engine, request, facts);
    if facts.degraded {
        engine.decide_degraded(request)
    } else {
        engine.decide(request)
    }
}

/// Makes `request` invalid for every `ledger.*` attribute `attrs` tries to
/// give: those are the ledger's to set, whoever decides the request.
pub fn refuse_forged_keys(
    attrs: &Map<String, serde_json::Value>,
    request: &mut grant_engine::Request,
) {
    for key in forged_ledger_keys(attrs) {
        request.refuse(RequestError::new(
            RequestErrorKind::Refused,
            format!("`{key}` is set by the ledger; a request cannot give it"),
        ));
    }
}

/// The `ledger.*` attributes `attrs` tries to give, flat or nested.
pub fn forged_ledger_keys(attrs: &Map<String, serde_json::Value>) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, value) in attrs {
        if key == grant_check::ledger::GROUP {
            match value.as_object() {
                Some(nested) if !nested.is_empty() => {
                    keys.extend(nested.keys().map(|k| format!("{key}.{k}")));
                }
                _ => keys.push(key.clone()),
            }
        } else if grant_check::ledger::is_reserved(key) {
            keys.push(key.clone());
        }
    }
    keys
}

fn set_facts(engine: &Engine, request: &mut grant_engine::Request, facts: &LedgerFacts<'_>) {
    let mut set = |path: &str, value: Value<'_>| {
        if let Some(attr) = engine.attr(path) {
            request.set(attr, value);
        }
    };
    set("ledger.agent", Value::Str(facts.agent));
    set("ledger.depth", Value::Int(i64::from(facts.depth)));
    set("ledger.task_age", Value::Duration(facts.task_age_seconds));
    set(
        "ledger.renewals",
        Value::Int(i64::try_from(facts.renewals).unwrap_or(i64::MAX)),
    );
    set("ledger.degraded", Value::Bool(facts.degraded));
    if let Some(count) = facts.task_grants {
        set(
            "ledger.task_grants",
            Value::Int(i64::try_from(count).unwrap_or(i64::MAX)),
        );
    }
    if let Some(chain) = facts.chain {
        let agents: Vec<Value<'_>> = chain.iter().map(|a| Value::Str(a)).collect();
        set("ledger.chain", Value::Set(&agents));
    }
}

/// The deny the ledger answers when the policy allows but the ledger's own
/// rules refuse: no deciding rule, the reason in `reasons` and `errors`.
pub(crate) fn refusal(policy_hash: &str, reason: &str) -> Decision {
    Decision {
        effect: DecisionEffect::Deny,
        ttl_seconds: None,
        rules: Vec::new(),
        reasons: vec![reason.to_string()],
        missing: Vec::new(),
        errors: vec![reason.to_string()],
        obligations: None,
        policy_hash: policy_hash.to_string(),
    }
}
