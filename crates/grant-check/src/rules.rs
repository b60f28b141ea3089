//! The second pass: rules. Annotations and ids, tool patterns, ttls, and the
//! typing of each condition (in [`crate::expr`]).

use std::borrow::Cow;

use grant_syntax::ast::{self, Effect, ToolPattern};
use grant_syntax::diagnostic::{Code, Diagnostic};
use grant_syntax::{FileId, Span};
use indexmap::IndexMap;

use crate::Checker;
use crate::declarations::zero_ttl;
use crate::fnv::FnvMap;
use crate::ir::{Rule, ToolPatterns, Type};
use grant_syntax::parser::format_duration;

/// The largest `uses`: 2^53 - 1, the largest integer every JSON reader
/// holds exactly.
pub const MAX_USES: u64 = (1 << 53) - 1;

impl Checker<'_> {
    /// Checks the rules `items` yields (about `count` of them), each
    /// borrowed, or owned: an owned rule's text moves into the checked
    /// rule, and the rest of it is dropped as soon as it is checked.
    pub(crate) fn rules<'r>(
        &mut self,
        count: usize,
        items: impl Iterator<Item = (FileId, Cow<'r, ast::Rule>)>,
    ) -> Vec<Rule> {
        let mut rules = Vec::with_capacity(count);
        // Beside `rules`: where each rule's id was given, and whether it was
        // generated.
        let mut given: Vec<(Span, bool)> = Vec::with_capacity(count);
        for (file, rule) in items {
            let explicit = rule.annotations.iter().find(|a| a.name.value == "id");
            let id_span = explicit.map_or(rule.effect.span, |a| a.value.span);
            let generated = explicit.is_none();
            if let Some(checked) = self.rule(file, rule) {
                given.push((id_span, generated));
                rules.push(checked);
            }
        }
        // Ids are unique: a rule that repeats an earlier rule's id is
        // reported and left out. The map borrows the ids, copying none.
        let mut first: FnvMap<&str, usize> = FnvMap::default();
        first.reserve(rules.len());
        let mut repeated = Vec::new();
        for (at, rule) in rules.iter().enumerate() {
            let earlier = *first.entry(rule.id.as_str()).or_insert(at);
            if earlier != at {
                repeated.push((at, earlier));
            }
        }
        drop(first);
        if repeated.is_empty() {
            return rules;
        }
        let mut keep = vec![true; rules.len()];
        for &(at, earlier) in &repeated {
            let (Some(rule), Some(&(span, _)), Some(&(first, first_generated))) =
                (rules.get(at), given.get(at), given.get(earlier))
            else {
                continue;
            };
            let diagnostic = duplicate_id(&rule.id, span, first, first_generated);
            self.report(diagnostic);
            if let Some(kept) = keep.get_mut(at) {
                *kept = false;
            }
        }
        let mut kept = keep.into_iter();
        rules.retain(|_| kept.next().unwrap_or(true));
        rules
    }

    /// A checked rule, or `None` when the rule had errors.
    fn rule(&mut self, file: FileId, rule: Cow<'_, ast::Rule>) -> Option<Rule> {
        let errors_before = self.error_count();
        let (mut annotations, firsts) = self.annotations(&rule);
        if let ToolPattern::List(patterns, span) = &rule.pattern
            && patterns.is_empty()
        {
            self.report(
                Diagnostic::new(Code::EmptyPatternList, *span, "empty list of tool patterns")
                    .label("matches no tool")
                    .help("name at least one tool, or write `*` for every tool"),
            );
        }
        let ttl = self.rule_ttl(&rule);
        let (uses, approval) = self.obligations(&rule);
        let condition = rule.condition.as_ref().and_then(|c| self.condition(c));
        if self.error_count() > errors_before {
            return None;
        }
        let (effect, effect_span) = (rule.effect.value, rule.effect.span);
        let (span, pattern_span) = (rule.span, rule.pattern.span());
        let ttl_span = match effect {
            Effect::Allow => rule.ttl.as_ref().map(|t| t.span),
            Effect::Deny => None,
        };
        // The text the checked rule keeps: moved out of an owned rule,
        // copied from a borrowed one.
        let patterns = match rule {
            Cow::Owned(rule) => {
                let mut given = rule.annotations.into_iter();
                let mut at = 0;
                for (slot, &index) in annotations.values_mut().zip(&firsts) {
                    if let Some(annotation) = given.nth(index - at) {
                        *slot = annotation.value.value;
                    }
                    at = index + 1;
                }
                match rule.pattern {
                    ToolPattern::Any(_) => ToolPatterns::Any,
                    ToolPattern::One(pattern) => ToolPatterns::List(vec![pattern.value]),
                    ToolPattern::List(patterns, _) => {
                        ToolPatterns::List(patterns.into_iter().map(|p| p.value).collect())
                    }
                }
            }
            Cow::Borrowed(rule) => {
                for (slot, &index) in annotations.values_mut().zip(&firsts) {
                    if let Some(annotation) = rule.annotations.get(index) {
                        slot.clone_from(&annotation.value.value);
                    }
                }
                match &rule.pattern {
                    ToolPattern::Any(_) => ToolPatterns::Any,
                    ToolPattern::One(pattern) => ToolPatterns::List(vec![pattern.value.clone()]),
                    ToolPattern::List(patterns, _) => {
                        ToolPatterns::List(patterns.iter().map(|p| p.value.clone()).collect())
                    }
                }
            }
        };
        let id = match annotations.get("id") {
            Some(id) => id.clone(),
            None => self.generated_id(file, effect_span),
        };
        Some(Rule {
            id,
            annotations,
            effect,
            patterns,
            condition,
            ttl,
            ttl_span,
            uses,
            approval,
            span,
            pattern_span,
        })
    }

    fn error_count(&self) -> usize {
        self.errors
    }

    /// The rule's annotations by name, checked, their values left empty,
    /// and the index in `rule.annotations` of each (the first given of a
    /// name; a repeated name is reported).
    fn annotations(&mut self, rule: &ast::Rule) -> (IndexMap<String, String>, Vec<usize>) {
        let mut annotations: IndexMap<String, String> = IndexMap::new();
        if rule.annotations.is_empty() {
            return (annotations, Vec::new());
        }
        // Beside `annotations`, by index: where each was given.
        let mut spans: Vec<Span> = Vec::new();
        let mut firsts: Vec<usize> = Vec::new();
        for (index, annotation) in rule.annotations.iter().enumerate() {
            let name = annotation.name.value.as_str();
            if let Some(first) = annotations.get_index_of(name).and_then(|i| spans.get(i)) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateAnnotation,
                        annotation.span,
                        format!("annotation `@{name}` is given twice on one rule"),
                    )
                    .label("given again here")
                    .secondary(*first, "first given here")
                    .help("decisions key annotations by name: keep one, or merge their text"),
                );
                continue;
            }
            if name == "id" && annotation.value.value.trim().is_empty() {
                self.report(
                    Diagnostic::new(Code::EmptyRuleId, annotation.value.span, "`@id` is empty")
                        .label("empty id")
                        .help("give the rule a name that audit logs can show, like `@id(\"deploy-prod\")`"),
                );
            }
            spans.push(annotation.span);
            firsts.push(index);
            annotations.insert(name.to_string(), String::new());
        }
        (annotations, firsts)
    }

    /// `<file>:<line>` of the rule's `allow` or `deny` keyword.
    fn generated_id(&self, file: FileId, keyword: Span) -> String {
        let Some(source) = self.sources.get(file) else {
            return String::from("<unknown>");
        };
        let mut id = String::with_capacity(source.name.len() + 8);
        id.push_str(&source.name);
        id.push(':');
        push_decimal(&mut id, source.line_index(keyword.start) + 1);
        id
    }

    /// The ttl an allow rule grants, checked against `max ttl`.
    fn rule_ttl(&mut self, rule: &ast::Rule) -> Option<u64> {
        if rule.effect.value == Effect::Deny {
            if let Some(ttl) = &rule.ttl {
                self.report(
                    Diagnostic::new(Code::TtlOnDeny, ttl.span, "a deny rule has no ttl")
                        .label("ttl on a deny rule")
                        .secondary(rule.effect.span, "this rule denies")
                        .help("remove the ttl; only allow rules grant access for a time"),
                );
            }
            return None;
        }
        let Some(ttl) = &rule.ttl else {
            if let Some(default) = &self.scope.default_ttl {
                return Some(default.value);
            }
            self.report(
                Diagnostic::new(
                    Code::MissingTtl,
                    rule.effect.span,
                    "allow rule has no ttl and the policy has no `default ttl`",
                )
                .label("grants access for how long?")
                .help("add `ttl 5m` (say) to the rule, or declare `default ttl 5m` in the policy"),
            );
            return None;
        };
        if ttl.value == 0 {
            self.report(zero_ttl(ttl.span));
            return None;
        }
        if let Some(max) = &self.scope.max_ttl
            && ttl.value > max.value
        {
            let (max_value, max_span) = (max.value, max.span);
            self.report(
                Diagnostic::new(
                    Code::TtlAboveMax,
                    ttl.span,
                    format!(
                        "ttl {} is above `max ttl` of {}",
                        format_duration(ttl.value),
                        format_duration(max_value)
                    ),
                )
                .label("above the maximum")
                .secondary(max_span, "the maximum is set here")
                .help(format!("grant at most {}", format_duration(max_value))),
            );
        }
        Some(ttl.value)
    }

    /// `uses N` and `approval "GROUP"`: allow rules only; `uses` from 1 to
    /// 2^53 - 1 (JSON readers holding numbers as doubles read it exactly).
    fn obligations(&mut self, rule: &ast::Rule) -> (Option<u64>, Option<String>) {
        if rule.effect.value == Effect::Deny {
            let clauses = [
                rule.uses.as_ref().map(|u| (u.span, "uses")),
                rule.approval.as_ref().map(|a| (a.span, "approval")),
            ];
            for (span, clause) in clauses.into_iter().flatten() {
                self.report(
                    Diagnostic::new(
                        Code::ObligationOnDeny,
                        span,
                        format!("a deny rule has no `{clause}`"),
                    )
                    .label(format!("`{clause}` on a deny rule"))
                    .secondary(rule.effect.span, "this rule denies")
                    .help(format!(
                        "remove `{clause}`; it limits what an allow grants, and a deny grants nothing"
                    )),
                );
            }
            return (None, None);
        }
        let uses = rule.uses.as_ref().and_then(|uses| {
            let fits = (1..=MAX_USES as i64).contains(&uses.value);
            if !fits {
                self.report(
                    Diagnostic::new(
                        Code::UsesOutOfRange,
                        uses.span,
                        format!("`uses {}` is out of range", uses.value),
                    )
                    .label(if uses.value < 1 {
                        "a grant is used at least once"
                    } else {
                        "above 2^53 - 1"
                    })
                    .help(if uses.value < 1 {
                        "write `uses 1` or more; to grant nothing, write a deny rule"
                    } else {
                        "`uses` ranges from 1 to 9007199254740991 (2^53 - 1); leave it out for no limit"
                    }),
                );
            }
            fits.then_some(uses.value as u64)
        });
        let approval = rule.approval.as_ref().and_then(|group| {
            if group.value.trim().is_empty() {
                self.report(
                    Diagnostic::new(Code::EmptyApprovalGroup, group.span, "the approval group is empty")
                        .label("names no group")
                        .help("name the group whose member must approve, like `approval \"payments-oncall\"`"),
                );
                return None;
            }
            Some(group.value.clone())
        });
        (uses, approval)
    }

    /// A rule's `when`: a typed boolean expression.
    fn condition(&mut self, condition: &ast::Expr) -> Option<crate::ir::Expr> {
        self.expect(condition, Type::BOOL)
    }
}

/// Appends `n` in decimal (what `format!("{n}")` writes, without the
/// formatting machinery: every rule without `@id` needs one).
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(digit) = digits.get_mut(at) {
            *digit = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    for &digit in digits.get(at..).unwrap_or(&[]) {
        out.push(char::from(digit));
    }
}

fn duplicate_id(id: &str, span: Span, first: Span, first_generated: bool) -> Diagnostic {
    let first_label = if first_generated {
        format!("this rule has no `@id`, so its id is `{id}`, from its file and line")
    } else {
        "first used here".to_string()
    };
    Diagnostic::new(Code::DuplicateRuleId, span, format!("rule id `{id}` is used twice"))
        .label("used again here")
        .secondary(first, first_label)
        .help("rule ids name rules in decisions and audit logs: give one rule another `@id`, or put rules without `@id` on lines of their own")
}
