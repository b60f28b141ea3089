//! Decisions as issuers receive them: effect, ttl, the deciding rules with
//! their annotations, reasons, missing attributes, errors, policy hash.

use grant_compile::Program;
use grant_compile::program::Tri;
use grant_syntax::ast::Effect;
use grant_vm::Outcome;
use indexmap::IndexMap;
use serde::Serialize;

use crate::limits::{EXCERPT_CHARS, excerpt};
use crate::request::RequestError;

/// `"allow"` or `"deny"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionEffect {
    Allow,
    Deny,
}

impl From<Effect> for DecisionEffect {
    fn from(effect: Effect) -> DecisionEffect {
        match effect {
            Effect::Allow => DecisionEffect::Allow,
            Effect::Deny => DecisionEffect::Deny,
        }
    }
}

/// A rule that decided, with every annotation (`id` included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecidingRule {
    pub id: String,
    pub effect: DecisionEffect,
    pub annotations: IndexMap<String, String>,
}

/// The answer to one request (the JSON that `grant eval` prints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub effect: DecisionEffect,
    /// Seconds the credential may live; `null` on deny.
    pub ttl_seconds: Option<u64>,
    /// On allow every applying allow rule; on deny every applying deny rule;
    /// none for a default deny or an invalid request. In policy order.
    pub rules: Vec<DecidingRule>,
    pub reasons: Vec<String>,
    /// Attributes the request did not give that made a condition unknown.
    pub missing: Vec<String>,
    pub errors: Vec<String>,
    pub policy_hash: String,
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        self.effect == DecisionEffect::Allow
    }

    /// A deny without evaluation: the request was invalid.
    pub(crate) fn invalid(errors: &[RequestError], policy_hash: &str) -> Decision {
        Decision {
            effect: DecisionEffect::Deny,
            ttl_seconds: None,
            rules: Vec::new(),
            reasons: vec!["the request is invalid, so it is denied without evaluation".to_string()],
            missing: Vec::new(),
            errors: errors.iter().map(|e| e.message.to_string()).collect(),
            policy_hash: policy_hash.to_string(),
        }
    }

    pub(crate) fn from_outcome(
        program: &Program,
        tool: &str,
        requested_ttl: Option<u64>,
        outcome: &Outcome,
        policy_hash: &str,
    ) -> Decision {
        let effect = outcome
            .effect
            .map_or(DecisionEffect::Deny, DecisionEffect::from);
        let missing: Vec<String> = outcome
            .missing
            .iter()
            .filter_map(|slot| program.attrs.get(slot.0 as usize).map(|a| a.path.clone()))
            .collect();
        let rules: Vec<DecidingRule> = outcome
            .deciding
            .iter()
            .filter_map(|id| program.rule(*id))
            .map(|rule| DecidingRule {
                id: rule.id.to_string(),
                effect: rule.effect.into(),
                annotations: rule
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
            .collect();
        let mut reasons = Vec::new();
        for considered in &outcome.considered {
            let Some(rule) = program.rule(considered.rule) else {
                continue;
            };
            // Deciding rules are in policy order: a search, not a scan per
            // rule, when thousands of rules match one tool.
            let applied = outcome.deciding.binary_search(&considered.rule).is_ok();
            let missing_here: Vec<String> = outcome
                .missing_of(considered)
                .iter()
                .filter_map(|slot| program.attrs.get(slot.0 as usize).map(|a| a.path.clone()))
                .collect();
            let reason = match (rule.effect, considered.result) {
                (Effect::Deny, Tri::True) => format!("deny rule `{}` applies", rule.id),
                (Effect::Deny, Tri::Unknown) => format!(
                    "deny rule `{}` applies: its condition is unknown without {}, and an unknown deny fails closed",
                    rule.id,
                    list(&missing_here)
                ),
                (Effect::Allow, Tri::True) if applied => match (rule.ttl, outcome.ttl) {
                    (Some(rule_ttl), Some(granted)) if granted < rule_ttl => format!(
                        "allow rule `{}` applies with ttl {}s, lowered to {}s",
                        rule.id, rule_ttl, granted
                    ),
                    (Some(rule_ttl), _) => {
                        format!("allow rule `{}` applies with ttl {rule_ttl}s", rule.id)
                    }
                    (None, _) => format!("allow rule `{}` applies", rule.id),
                },
                (Effect::Allow, Tri::Unknown) => format!(
                    "allow rule `{}` does not apply: its condition is unknown without {}",
                    rule.id,
                    list(&missing_here)
                ),
                _ => continue,
            };
            reasons.push(reason);
        }
        if outcome.deciding.is_empty() {
            // The tool comes from the request: shortened and escaped, so
            // that neither its length nor its characters reach the reader.
            reasons.push(format!(
                "no rule allows tool `{}`, so it is denied by default",
                excerpt(tool, EXCERPT_CHARS)
            ));
        }
        if let (Some(asked), Some(granted)) = (requested_ttl, outcome.ttl) {
            if asked == granted {
                reasons.push(format!("the ttl is the {asked}s the request asked for"));
            }
        }
        Decision {
            effect,
            ttl_seconds: if effect == DecisionEffect::Allow {
                outcome.ttl
            } else {
                None
            },
            rules,
            reasons,
            missing,
            errors: Vec::new(),
            policy_hash: policy_hash.to_string(),
        }
    }
}

fn list(paths: &[String]) -> String {
    if paths.is_empty() {
        return "some attributes".to_string();
    }
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
