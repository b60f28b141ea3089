//! Decisions as issuers receive them: effect, ttl, obligations, the
//! deciding rules with their annotations, reasons, missing attributes,
//! errors, policy hash; and [`Verdict`], the same in reused buffers.

use std::sync::Arc;

use grant_check::ledger;
use grant_compile::Program;
use grant_compile::program::{RuleId, Tri};
use grant_syntax::ast::Effect;
use grant_vm::Outcome;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::Inner;
use crate::limits::{EXCERPT_CHARS, excerpt};
use crate::request::{NO_TOOL, RequestError};

/// `"allow"` or `"deny"`.
///
/// ```
/// use grant_engine::DecisionEffect;
/// assert_eq!(serde_json::to_string(&DecisionEffect::Allow).ok().as_deref(), Some("\"allow\""));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionEffect {
    /// The tool may be called, for the decision's ttl and under its
    /// obligations.
    Allow,
    /// The tool may not be called.
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
///
/// ```
/// # let engine = grant_engine::Engine::from_text("p.grant", "@id(\"reads\") @owner(\"data\")\nallow tool \"db.read\" ttl 5m")?;
/// let decision = engine.decide_json(r#"{"tool": "db.read"}"#);
/// assert_eq!(decision.rules[0].id, "reads");
/// assert_eq!(decision.rules[0].annotations["owner"], "data");
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidingRule {
    /// The rule's `@id`, or `<file>:<line>` without one.
    pub id: String,
    /// The rule's effect (the decision's).
    pub effect: DecisionEffect,
    /// Every annotation, `id` included, in source order.
    pub annotations: IndexMap<String, String>,
}

/// What an allow binds its caller to (language 0.2): at most `uses` calls,
/// and an approval from every group in `approvals`. A caller that cannot
/// honour an obligation must treat the allow as a deny.
///
/// In JSON a key with nothing in it is left out: `{}` for an allow without
/// obligations. A deny has none ([`Decision::obligations`] is `None`).
///
/// ```
/// # let engine = grant_engine::Engine::from_text("p.grant", r#"
/// #     allow tool "payments.payout" ttl 2m uses 1 approval "payments-oncall"
/// #     allow tool "payments.*" ttl 5m uses 3
/// # "#)?;
/// let decision = engine.decide_json(r#"{"tool": "payments.payout"}"#);
/// let obligations = decision.obligations.expect("an allow");
/// assert_eq!(obligations.uses, Some(1));
/// assert_eq!(obligations.approvals, ["payments-oncall"]);
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligations {
    /// The least `uses` of the applying allow rules that state one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
    /// The `approval` groups of the applying allow rules, sorted, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<String>,
}

impl Obligations {
    /// The largest `uses` a policy may state: 2^53 - 1, the largest
    /// integer every JSON reader holds exactly.
    ///
    /// ```
    /// assert_eq!(grant_engine::Obligations::MAX_USES, 9_007_199_254_740_991);
    /// ```
    pub const MAX_USES: u64 = grant_check::MAX_USES;

    /// Whether the allow binds its caller to nothing.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let decision = engine.decide_json(r#"{"tool": "t", "attrs": {"env": "dev"}}"#);
    /// assert!(!decision.obligations.expect("an allow").is_empty());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.uses.is_none() && self.approvals.is_empty()
    }
}

/// The answer to one request, in the JSON shape of the spec (what `grant
/// eval` prints). It carries no decision id: the ledger and the service
/// assign those, so that the same request under the same policy always gets
/// the same decision.
///
/// ```
/// # let engine = grant_engine::Engine::from_text("p.grant", "allow tool \"db.read\" ttl 5m")?;
/// let decision = engine.decide_json(r#"{"tool": "db.read"}"#);
/// assert!(decision.is_allow());
/// let json = serde_json::to_value(&decision).expect("serializable");
/// assert_eq!(json["ttl_seconds"], 300);
/// assert_eq!(json["obligations"], serde_json::json!({}));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow or deny.
    pub effect: DecisionEffect,
    /// Seconds the credential may live; `null` on deny.
    pub ttl_seconds: Option<u64>,
    /// On allow every applying allow rule; on deny every applying deny rule;
    /// none for a default deny or an invalid request. In policy order.
    pub rules: Vec<DecidingRule>,
    /// Why, in sentences for people.
    pub reasons: Vec<String>,
    /// Attributes the request did not give that made a condition unknown.
    pub missing: Vec<String>,
    /// What made the request invalid (it was then denied unevaluated).
    pub errors: Vec<String>,
    /// On allow, what the caller must honour; on deny `None`, and no
    /// `obligations` key in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obligations: Option<Obligations>,
    /// Which policy text decided: `sha256:<hex>`.
    pub policy_hash: String,
}

impl Decision {
    /// Whether the effect is allow.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// assert!(engine.decide_json(r#"{"tool": "t", "attrs": {"env": "dev"}}"#).is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn is_allow(&self) -> bool {
        self.effect == DecisionEffect::Allow
    }

    /// A deny without evaluation: the request was invalid.
    fn invalid(errors: &[RequestError], policy_hash: &str) -> Decision {
        Decision {
            effect: DecisionEffect::Deny,
            ttl_seconds: None,
            obligations: None,
            rules: Vec::new(),
            reasons: vec!["the request is invalid, so it is denied without evaluation".to_string()],
            missing: Vec::new(),
            errors: errors.iter().map(|e| e.message().to_string()).collect(),
            policy_hash: policy_hash.to_string(),
        }
    }

    fn from_outcome(
        program: &Program,
        tool: &str,
        requested_ttl: Option<u64>,
        outcome: &Outcome,
        obligations: Option<Obligations>,
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
            let tool = excerpt(tool, EXCERPT_CHARS);
            reasons.push(if outcome.skipped.is_empty() {
                format!("no rule allows tool `{tool}`, so it is denied by default")
            } else {
                // A degraded decision left out allow rules that matched: the
                // reader must learn the deny comes from that, not the policy.
                format!(
                    "no rule allows tool `{tool}` while the ledger is degraded (allow rules apply then only if their condition reads `{}`)",
                    ledger::DEGRADED
                )
            });
        }
        if let (Some(asked), Some(granted)) = (requested_ttl, outcome.ttl)
            && asked == granted
        {
            reasons.push(format!("the ttl is the {asked}s the request asked for"));
        }
        Decision {
            effect,
            ttl_seconds: if effect == DecisionEffect::Allow {
                outcome.ttl
            } else {
                None
            },
            obligations,
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

/// A decision in buffers that are reused from one decision to the next:
/// [`crate::Engine::decide_into`] fills it without allocating once its
/// buffers have grown (for valid requests; an invalid one copies its
/// errors). Read the effect, ttl and obligations from it, or make the full
/// [`Decision`] with [`Verdict::to_decision`].
///
/// ```
/// use grant_engine::{DecisionEffect, Engine, Value};
/// let engine = Engine::from_text("p.grant", r#"
///     attr env: string
///     allow tool "db.read" when env == "dev" ttl 5m uses 10
/// "#)?;
/// let env = engine.attr("env").expect("declared");
/// let (mut request, mut verdict) = (engine.request(), engine.verdict());
/// for value in ["dev", "prod"] {
///     request.clear().set_tool("db.read").set(env, Value::Str(value));
///     engine.decide_into(&request, &mut verdict);
///     if verdict.is_allow() {
///         assert_eq!(verdict.ttl_seconds(), Some(300));
///         assert_eq!(verdict.uses(), Some(10));
///         assert_eq!(verdict.rules().collect::<Vec<_>>(), ["p.grant:3"]);
///     } else {
///         assert_eq!(verdict.effect(), DecisionEffect::Deny);
///     }
/// }
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The engine that decided last (or made the verdict).
    pub(crate) inner: Arc<Inner>,
    pub(crate) outcome: Outcome,
    /// The request's tool and ttl, for the reasons of the decision.
    tool: String,
    requested_ttl: Option<u64>,
    /// An invalid request's errors; empty when it was evaluated.
    errors: Vec<RequestError>,
    uses: Option<u64>,
    /// The deciding rules that name an approval group, one per group, in
    /// the byte order of the groups.
    approvals: Vec<RuleId>,
}

impl Verdict {
    /// As if an empty request had been decided: deny, no tool.
    pub(crate) fn new(inner: &Arc<Inner>) -> Verdict {
        let mut verdict = Verdict {
            inner: Arc::clone(inner),
            outcome: Outcome::default(),
            tool: String::new(),
            requested_ttl: None,
            errors: Vec::new(),
            uses: None,
            approvals: Vec::new(),
        };
        verdict.refuse(&[]);
        verdict
    }

    /// Starts a decision of `inner` on a request for `tool`.
    pub(crate) fn start(&mut self, inner: &Arc<Inner>, tool: &str, requested_ttl: Option<u64>) {
        // Swapped only when another engine decides: the hot path touches no
        // reference count.
        if self.inner.id != inner.id {
            self.inner = Arc::clone(inner);
        }
        self.tool.clear();
        self.tool.push_str(tool);
        self.requested_ttl = requested_ttl;
        self.errors.clear();
        self.uses = None;
        self.approvals.clear();
    }

    /// A deny without evaluation, for `errors` (none: the request has no
    /// tool).
    pub(crate) fn refuse(&mut self, errors: &[RequestError]) {
        let outcome = &mut self.outcome;
        outcome.effect = Some(Effect::Deny);
        outcome.ttl = None;
        outcome.deciding.clear();
        outcome.considered.clear();
        outcome.missing.clear();
        outcome.skipped.clear();
        if errors.is_empty() {
            self.errors.push(NO_TOOL.clone());
        } else {
            self.errors.extend_from_slice(errors);
        }
    }

    /// Collects the obligations of an allow from its deciding rules.
    pub(crate) fn oblige(&mut self) {
        if !self.inner.has_obligations || !self.outcome.is_allow() {
            return;
        }
        let program = &self.inner.program;
        for &id in &self.outcome.deciding {
            let Some(rule) = program.rule(id) else {
                continue;
            };
            if let Some(uses) = rule.uses {
                self.uses = Some(self.uses.map_or(uses, |least| least.min(uses)));
            }
            if rule.approval.is_some() {
                self.approvals.push(id);
            }
        }
        if self.approvals.len() > 1 {
            let group = |id: &RuleId| program.rule(*id).and_then(|r| r.approval.as_deref());
            self.approvals
                .sort_unstable_by(|a, b| group(a).cmp(&group(b)));
            self.approvals.dedup_by(|a, b| group(a) == group(b));
        }
    }

    /// Allow or deny.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// assert_eq!(verdict.effect(), grant_engine::DecisionEffect::Allow);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn effect(&self) -> DecisionEffect {
        if self.is_allow() {
            DecisionEffect::Allow
        } else {
            DecisionEffect::Deny
        }
    }

    /// Whether the effect is allow.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// assert!(verdict.is_allow());
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn is_allow(&self) -> bool {
        self.errors.is_empty() && self.outcome.is_allow()
    }

    /// Seconds the credential may live; `None` on deny.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// assert_eq!(verdict.ttl_seconds(), Some(60));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn ttl_seconds(&self) -> Option<u64> {
        self.outcome.ttl.filter(|_| self.is_allow())
    }

    /// What made the request invalid; empty when it was evaluated.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let (request, mut verdict) = (engine.request(), engine.verdict());
    /// engine.decide_into(&request, &mut verdict); // no tool
    /// assert_eq!(verdict.errors()[0].message(), "request has no `tool`");
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn errors(&self) -> &[RequestError] {
        &self.errors
    }

    /// The ids of the rules that decided, in policy order: the applying
    /// allow rules on allow, the applying deny rules on deny.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// assert_eq!(verdict.rules().collect::<Vec<_>>(), ["p.grant:2"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        self.outcome
            .deciding
            .iter()
            .filter_map(|id| self.inner.program.rule(*id))
            .map(|rule| &*rule.id)
    }

    /// The attributes whose absence made a condition unknown, by path.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// request.set_tool("t");
    /// engine.decide_into(&request, &mut verdict);
    /// assert_eq!(verdict.missing().collect::<Vec<_>>(), ["env"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        self.outcome
            .missing
            .iter()
            .filter_map(|slot| self.inner.attr_path(*slot))
    }

    /// On allow, the least `uses` of the applying allow rules that state one.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// assert_eq!(verdict.uses(), Some(2));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn uses(&self) -> Option<u64> {
        self.uses.filter(|_| self.is_allow())
    }

    /// On allow, the approval groups of the applying allow rules, sorted,
    /// each once: every one must approve.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// assert_eq!(verdict.approvals().collect::<Vec<_>>(), ["ops"]);
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn approvals(&self) -> impl Iterator<Item = &str> {
        let allow = self.is_allow();
        self.approvals
            .iter()
            .filter(move |_| allow)
            .filter_map(|id| self.inner.program.rule(*id)?.approval.as_deref())
    }

    /// The full decision, in the JSON shape of the spec.
    ///
    /// ```
    /// # let engine = grant_engine::Engine::from_text("p.grant", "attr env: string\nallow tool \"t\" when env == \"dev\" ttl 1m uses 2 approval \"ops\"")?;
    /// # let env = engine.attr("env").expect("declared");
    /// # let (mut request, mut verdict) = (engine.request(), engine.verdict());
    /// # request.set_tool("t").set(env, grant_engine::Value::Str("dev"));
    /// engine.decide_into(&request, &mut verdict);
    /// let decision = verdict.to_decision();
    /// assert_eq!(decision, engine.decide(&request));
    /// # Ok::<(), grant_engine::PolicyError>(())
    /// ```
    pub fn to_decision(&self) -> Decision {
        let hash = &self.inner.policy_hash;
        if !self.errors.is_empty() {
            return Decision::invalid(&self.errors, hash);
        }
        let obligations = self.is_allow().then(|| Obligations {
            uses: self.uses(),
            approvals: self.approvals().map(str::to_string).collect(),
        });
        Decision::from_outcome(
            &self.inner.program,
            &self.tool,
            self.requested_ttl,
            &self.outcome,
            obligations,
            hash,
        )
    }

    /// The tool and ttl the decided request asked for.
    pub(crate) fn asked(&self) -> (&str, Option<u64>) {
        (&self.tool, self.requested_ttl)
    }
}
