//! Explanations: how a decision came out, rule by rule, for the people who
//! review policies (`grant eval --explain` renders them) and, as JSON, for
//! machines. The bytecode is read here, privately: what leaves is the
//! policy's own text (conditions as written, values as the policy language
//! writes them), never the program.

use grant_compile::program::{CompiledRule, Op, Operand, SlotId, Tri};
use grant_syntax::ast::Effect;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::Inner;
use crate::decision::{Decision, DecisionEffect, Verdict};
use crate::request::Request;

/// How a request was decided, and why: the decision, then every rule whose
/// pattern matches the tool, in the order they were evaluated (deny rules
/// first), with the allow rules a deny kept from being evaluated last.
/// Rules whose pattern does not match are counted in `policy_rules`, not
/// listed. Made by [`crate::Engine::explain`].
///
/// ```
/// use grant_engine::{ConditionResult, Engine, RuleStatus};
/// let engine = Engine::from_text("p.grant", r#"
///     attr task.approved: bool
///     deny tool "db.*" when not task.approved
///     allow tool "db.read" ttl 5m
/// "#)?;
/// let mut request = engine.request();
/// engine.read_json(r#"{"tool": "db.read"}"#, &mut request);
/// let explanation = engine.explain(&request);
/// assert_eq!(explanation.tool.as_deref(), Some("db.read"));
/// assert_eq!(explanation.policy_rules, 2);
/// let [deny, allow] = &explanation.rules[..] else { panic!("two rules match") };
/// assert_eq!((deny.status, deny.result), (RuleStatus::Applies, Some(ConditionResult::Unknown)));
/// assert_eq!(deny.missing, ["task.approved"]);
/// assert_eq!(allow.status, RuleStatus::NotEvaluated);
/// let json = serde_json::to_string(&explanation).expect("serializable");
/// assert_eq!(serde_json::from_str::<grant_engine::Explanation>(&json).ok(), Some(explanation));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The decision, as [`crate::Engine::decide`] makes it.
    pub decision: Decision,
    /// The tool asked for; `None` when the request was invalid and nothing
    /// was evaluated.
    pub tool: Option<String>,
    /// The ttl the request asked for, in seconds.
    pub requested_ttl: Option<u64>,
    /// How many rules the policy has.
    pub policy_rules: usize,
    /// The rules whose pattern matches the tool (none when nothing was
    /// evaluated).
    pub rules: Vec<ExplainedRule>,
}

/// A rule of the policy, as written: where it is, what it says.
///
/// ```
/// # let engine = grant_engine::Engine::from_text("p.grant", "@owner(\"data\")\nallow tool [\"db.read\", \"db.list\"] ttl 5m uses 3")?;
/// let rule = &engine.rules()[0];
/// assert_eq!((rule.file.as_str(), rule.line), ("p.grant", 2));
/// assert_eq!(rule.tools.as_deref(), Some(&["db.read".to_string(), "db.list".to_string()][..]));
/// assert_eq!(rule.annotations["owner"], "data");
/// assert_eq!((rule.ttl, rule.uses, rule.condition.as_deref()), (Some(300), Some(3), None));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// The rule's `@id`, or `<file>:<line>` without one.
    pub id: String,
    /// Allow or deny.
    pub effect: DecisionEffect,
    /// The file, as the policy was loaded from it.
    pub file: String,
    /// The 1-based line the rule starts on.
    pub line: usize,
    /// The tool patterns as written; `None` for `tool *`.
    pub tools: Option<Vec<String>>,
    /// The annotations other than `id`, in source order.
    pub annotations: IndexMap<String, String>,
    /// The condition as written, its continuation lines re-indented under
    /// the first, without comments; `None` when the rule has none (always
    /// true).
    pub condition: Option<String>,
    /// The ttl an allow rule grants, in seconds.
    pub ttl: Option<u64>,
    /// `uses N`: the most uses a grant of this allow rule may have.
    pub uses: Option<u64>,
    /// `approval "GROUP"`: the group that must approve a grant of this rule.
    pub approval: Option<String>,
}

/// How one matching rule fared.
///
/// ```
/// use grant_engine::RuleStatus;
/// assert_eq!(serde_json::to_string(&RuleStatus::NotEvaluated).ok().as_deref(), Some("\"not_evaluated\""));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// It applies: its condition is true, or unknown for a deny rule.
    Applies,
    /// It does not apply.
    DoesNotApply,
    /// An allow rule not evaluated, because a deny rule applied.
    NotEvaluated,
}

/// How a condition came out, in three-valued logic.
///
/// ```
/// use grant_engine::ConditionResult;
/// assert_eq!(serde_json::to_string(&ConditionResult::Unknown).ok().as_deref(), Some("\"unknown\""));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionResult {
    /// True.
    True,
    /// False.
    False,
    /// Unknown: it read an attribute the request did not give.
    Unknown,
}

/// A matching rule in an [`Explanation`]: the rule, and how it fared.
///
/// ```
/// # let engine = grant_engine::Engine::from_text("p.grant", "attr n: int\nallow tool \"t\" when n > 1 ttl 1m")?;
/// # let mut request = engine.request();
/// # engine.read_json(r#"{"tool": "t", "attrs": {"n": 2}}"#, &mut request);
/// let rule = &engine.explain(&request).rules[0];
/// assert_eq!(rule.rule.id, "p.grant:2");
/// assert_eq!((rule.given[0].path.as_str(), rule.given[0].value.as_deref()), ("n", Some("2")));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainedRule {
    /// The rule as written.
    #[serde(flatten)]
    pub rule: RuleInfo,
    /// Whether it applied.
    pub status: RuleStatus,
    /// How its condition came out; `None` when it was not evaluated.
    pub result: Option<ConditionResult>,
    /// The attributes its condition reads, in the order it reads them, with
    /// the request's values (empty when it was not evaluated).
    pub given: Vec<GivenValue>,
    /// The attributes whose absence made the condition unknown.
    pub missing: Vec<String>,
}

/// An attribute a condition reads, and the request's value for it.
///
/// ```
/// use grant_engine::GivenValue;
/// let given = GivenValue { path: "env".to_string(), value: None };
/// assert!(given.value.is_none()); // missing
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenValue {
    /// The attribute's path.
    pub path: String,
    /// The value as the policy language writes it (strings quoted, enum
    /// variants bare, durations with units, sets in brackets); `None` when
    /// the request does not give it.
    pub value: Option<String>,
}

pub(crate) fn explain(inner: &Inner, request: &Request, verdict: &Verdict) -> Explanation {
    let program = &inner.program;
    let decision = verdict.to_decision();
    let (tool, requested_ttl) = verdict.asked();
    let mut explanation = Explanation {
        decision,
        tool: None,
        requested_ttl,
        policy_rules: program.rules.len(),
        rules: Vec::new(),
    };
    if !verdict.errors().is_empty() {
        return explanation;
    }
    explanation.tool = Some(tool.to_string());
    let outcome = &verdict.outcome;
    for considered in &outcome.considered {
        let Some(rule) = program.rule(considered.rule) else {
            continue;
        };
        let applied = outcome.deciding.contains(&considered.rule);
        let given = slots_read(program.code_of(rule))
            .into_iter()
            .filter_map(|slot| {
                Some(GivenValue {
                    path: inner.attr_path(slot)?.to_string(),
                    value: request.given_at(slot).map(|v| v.to_string()),
                })
            })
            .collect();
        explanation.rules.push(ExplainedRule {
            rule: rule_info(inner, rule),
            status: if applied {
                RuleStatus::Applies
            } else {
                RuleStatus::DoesNotApply
            },
            result: Some(match considered.result {
                Tri::True => ConditionResult::True,
                Tri::False => ConditionResult::False,
                Tri::Unknown => ConditionResult::Unknown,
            }),
            given,
            missing: outcome
                .missing_of(considered)
                .iter()
                .filter_map(|slot| inner.attr_path(*slot).map(str::to_string))
                .collect(),
        });
    }
    // The matching allow rules a deny kept from being evaluated.
    let mut candidates = Vec::new();
    program
        .index
        .candidates(tool, &program.globs, &mut candidates);
    for id in candidates {
        let Some(rule) = program.rule(id) else {
            continue;
        };
        if rule.effect == Effect::Allow && !outcome.considered.iter().any(|c| c.rule == id) {
            explanation.rules.push(ExplainedRule {
                rule: rule_info(inner, rule),
                status: RuleStatus::NotEvaluated,
                result: None,
                given: Vec::new(),
                missing: Vec::new(),
            });
        }
    }
    explanation
}

pub(crate) fn rule_info(inner: &Inner, rule: &CompiledRule) -> RuleInfo {
    let sources = &inner.sources;
    let (file, line) = sources.get(rule.span.file).map_or_else(
        || (String::new(), 0),
        |file| (file.display.clone(), file.line_col(rule.span.start).0),
    );
    RuleInfo {
        id: rule.id.to_string(),
        effect: rule.effect.into(),
        file,
        line,
        tools: rule
            .patterns
            .as_ref()
            .map(|patterns| patterns.iter().map(|p| p.to_string()).collect()),
        annotations: rule
            .annotations
            .iter()
            .filter(|(name, _)| &**name != "id")
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        condition: rule
            .condition_span
            .map(|span| condition_lines(sources.snippet(span)).join("\n")),
        ttl: rule.ttl,
        uses: rule.uses,
        approval: rule.approval.as_deref().map(str::to_string),
    }
}

/// A condition as written, its continuation lines re-indented under the
/// first. The condition's span ends at its last token, so comments after
/// it are not in the text; comments inside it are, as written.
fn condition_lines(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim_end().to_string();
    let rest: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let margin = rest
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    std::iter::once(first)
        .chain(
            rest.iter()
                .map(|l| format!("  {}", l.get(margin..).unwrap_or(l).trim_end())),
        )
        .collect()
}

/// The attributes a rule's code reads, in the order it reads them.
fn slots_read(code: &[Op]) -> Vec<SlotId> {
    let mut slots = Vec::new();
    let mut add = |operand: Operand| {
        if let Operand::Slot(slot) = operand
            && !slots.contains(&slot)
        {
            slots.push(slot);
        }
    };
    for op in code {
        match *op {
            Op::LoadBool(slot) => add(Operand::Slot(slot)),
            Op::Compare { lhs, rhs, .. } | Op::CompareSet { lhs, rhs, .. } => {
                add(lhs);
                add(rhs);
            }
            Op::InList { needle, .. } => add(needle),
            Op::InSet { needle, set } => {
                add(needle);
                add(Operand::Slot(set));
            }
            Op::Matches { subject, .. } => add(subject),
            Op::Push(_) | Op::Not | Op::And | Op::Or | Op::JumpIfFalse(_) | Op::JumpIfTrue(_) => {}
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::condition_lines;

    #[test]
    fn continuation_lines_are_reindented() {
        let text = "task.approved\n        and a == 1\n        and b";
        assert_eq!(
            condition_lines(text),
            ["task.approved", "  and a == 1", "  and b"]
        );
    }
}
