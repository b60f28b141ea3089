//! Lints about whole rules: allow rules that a deny always overrides (G0903),
//! duplicate rules (G0904), allow rules that take `default ttl` (G0906).

use std::hash::{Hash, Hasher};

use grant_syntax::Span;
use grant_syntax::ast::Effect;
use grant_syntax::diagnostic::{Code, Diagnostic};

use super::constant::{constant, same_shape};
use crate::Checker;
use crate::fnv::{Fnv, FnvMap};
use crate::glob::{Glob, GlobScratch, GlobSetBuilder, Member};
use crate::ir::{Expr, ExprKind, Policy, Rule, ToolPatterns};
use grant_syntax::parser::format_duration;

impl Checker<'_> {
    /// G0903: an allow rule each of whose patterns is covered by a pattern of
    /// a deny rule that always applies (no condition, or one that is always
    /// true). Whatever the request, the deny wins, so the allow never takes
    /// effect.
    pub(crate) fn lint_overridden_allows(&mut self, policy: &Policy) {
        let denies: Vec<&Rule> = policy
            .rules
            .iter()
            .filter(|r| r.effect == Effect::Deny && always_applies(r))
            .collect();
        if denies.is_empty() {
            return;
        }
        // Each distinct deny pattern once, with the denies that have it, in
        // rule order: a thousand denies of one pattern cost one test.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut group_of: FnvMap<&str, usize> = FnvMap::default();
        for (index, deny) in denies.iter().enumerate() {
            for pattern in patterns(&deny.patterns) {
                let group = *group_of.entry(pattern).or_insert_with(|| {
                    groups.push((pattern, Vec::new()));
                    groups.len() - 1
                });
                if let Some((_, list)) = groups.get_mut(group)
                    && list.last() != Some(&index)
                {
                    list.push(index);
                }
            }
        }
        // Patterns without `*` cover only themselves: look them up. Globs
        // go in a glob set, so that each allow pattern meets only the deny
        // globs whose literal pieces it has where they must be (a cover's
        // prefix starts the covered pattern, its suffix ends it, its middle
        // pieces occur in it; a piece never matches across a `*`, see
        // `glob::covers`), and those are confirmed by matching. For allow
        // patterns P and deny patterns D, the lint costs
        // O(ΣP + ΣD + o + Σ(|P| + |D|)) over the pairs whose pieces agree,
        // `o` the occurrences of deny middle pieces in allow patterns: no
        // longer every allow against every deny.
        let mut exact: FnvMap<&str, usize> = FnvMap::default();
        let mut globs: Vec<(usize, Glob)> = Vec::new();
        let mut builder = GlobSetBuilder::default();
        for (group, (pattern, _)) in groups.iter().enumerate() {
            if pattern.contains('*') {
                let glob = Glob::new(pattern);
                builder.insert(&glob);
                globs.push((group, glob));
            } else {
                exact.insert(pattern, group);
            }
        }
        let set = builder.build();
        let mut scratch = GlobScratch::default();
        let mut candidates: Vec<Member> = Vec::new();
        let mut covering_groups: Vec<usize> = Vec::new();
        let denies_of = |group: usize| groups.get(group).map_or(&[][..], |(_, d)| d.as_slice());
        for allow in policy.rules.iter().filter(|r| r.effect == Effect::Allow) {
            // The denies that cover the allow's patterns, and where each
            // stands in that list.
            let mut covering: Vec<usize> = Vec::new();
            let mut position: FnvMap<usize, usize> = FnvMap::default();
            let mut all_covered = true;
            for pattern in patterns(&allow.patterns) {
                covering_groups.clear();
                covering_groups.extend(exact.get(pattern).copied());
                candidates.clear();
                set.candidates(pattern, &mut scratch, &mut candidates);
                covering_groups.extend(candidates.iter().filter_map(|&member| {
                    let (group, glob) = globs.get(member as usize)?;
                    glob.matches(pattern).then_some(*group)
                }));
                // Prefer a deny already named (the first named), then the
                // first in rule order.
                let named = covering_groups
                    .iter()
                    .filter_map(|&g| earliest_named(denies_of(g), &covering, &position))
                    .min()
                    .and_then(|at| covering.get(at).copied());
                let found = named.or_else(|| {
                    covering_groups
                        .iter()
                        .filter_map(|&g| denies_of(g).first().copied())
                        .min()
                });
                match found {
                    Some(index) if !position.contains_key(&index) => {
                        position.insert(index, covering.len());
                        covering.push(index);
                    }
                    Some(_) => {}
                    None => {
                        all_covered = false;
                        break;
                    }
                }
            }
            if !all_covered {
                continue;
            }
            covering.sort_unstable();
            let covering: Vec<&Rule> = covering
                .iter()
                .filter_map(|&i| denies.get(i).copied())
                .collect();
            self.report(overridden(allow, &covering));
        }
    }

    /// G0904: a rule with the same effect, tools, condition, ttl and
    /// obligations as an earlier one.
    pub(crate) fn lint_duplicate_rules(&mut self, policy: &Policy) {
        // Rules grouped by a hash of what makes them equal; equal hashes are
        // then compared for real.
        let mut seen: FnvMap<u64, Vec<&Rule>> = FnvMap::default();
        seen.reserve(policy.rules.len());
        for rule in &policy.rules {
            let key = rule_key(rule);
            let earlier = seen.entry(key).or_default();
            if let Some(first) = earlier.iter().find(|first| same_rule(first, rule)) {
                self.report(duplicate(rule, first));
            } else {
                earlier.push(rule);
            }
        }
    }

    /// G0906: an allow rule without a `ttl` of its own.
    pub(crate) fn lint_default_ttl(&mut self, policy: &Policy) {
        let Some(default) = self.scope.default_ttl.as_ref().map(|d| (d.value, d.span)) else {
            return;
        };
        for rule in &policy.rules {
            if rule.effect != Effect::Allow || rule.ttl_span.is_some() {
                continue;
            }
            let ttl = format_duration(default.0);
            self.report(
                Diagnostic::new(
                    Code::DefaultTtlUsed,
                    head(rule),
                    format!("allow rule `{}` takes `default ttl` ({ttl})", rule.id),
                )
                .label("no `ttl` of its own")
                .secondary(default.1, "`default ttl` is set here")
                .help(format!(
                    "write the ttl on the rule so readers see it: `ttl {ttl}`"
                )),
            );
        }
    }
}

/// The earliest place in `covering` of one of `denies` (ascending), by
/// whichever is shorter to walk: an allow with many patterns, or a pattern
/// that many denies share, stays linear.
fn earliest_named(
    denies: &[usize],
    covering: &[usize],
    position: &FnvMap<usize, usize>,
) -> Option<usize> {
    if denies.len() <= covering.len() {
        denies.iter().filter_map(|d| position.get(d).copied()).min()
    } else {
        covering
            .iter()
            .position(|d| denies.binary_search(d).is_ok())
    }
}

/// A deny rule without a condition, or with one that is always true.
fn always_applies(rule: &Rule) -> bool {
    rule.condition
        .as_ref()
        .is_none_or(|c| constant(c) == Some(true))
}

/// A rule's patterns; `tool *` is the pattern `*`.
fn patterns(patterns: &ToolPatterns) -> Vec<&str> {
    match patterns {
        ToolPatterns::Any => vec!["*"],
        ToolPatterns::List(list) => list.iter().map(String::as_str).collect(),
    }
}

/// From the `allow`/`deny` keyword through the tool patterns: where rule
/// lints point.
fn head(rule: &Rule) -> Span {
    Span {
        file: rule.span.file,
        start: rule.span.start,
        end: rule.pattern_span.end.max(rule.span.start),
    }
}

fn overridden(allow: &Rule, denies: &[&Rule]) -> Diagnostic {
    let names: Vec<String> = denies.iter().map(|d| format!("`{}`", d.id)).collect();
    let who = match names.as_slice() {
        [one] => format!("deny rule {one} always overrides it"),
        [init @ .., last] => format!(
            "deny rules {} and {last} always override it",
            init.join(", ")
        ),
        [] => "a deny rule always overrides it".to_string(),
    };
    let mut diagnostic = Diagnostic::new(
        Code::OverriddenAllow,
        allow.pattern_span,
        format!("allow rule `{}` never takes effect: {who}", allow.id),
    )
    .label("every tool here is always denied")
    .help("remove the allow rule; or, if it is meant to apply, give the deny a `when` or narrower tool patterns");
    for deny in denies {
        let label = if deny.condition.is_some() {
            "denies these tools whatever the request: its condition is always true"
        } else {
            "denies these tools whatever the request"
        };
        diagnostic = diagnostic.secondary(deny.pattern_span, label);
    }
    diagnostic
}

fn duplicate(rule: &Rule, first: &Rule) -> Diagnostic {
    let what = match rule.effect {
        Effect::Allow => "same effect, tools, condition and ttl",
        Effect::Deny => "same effect, tools and condition",
    };
    Diagnostic::new(
        Code::DuplicateRule,
        head(rule),
        format!("rule `{}` repeats rule `{}`", rule.id, first.id),
    )
    .label(format!("{what} as an earlier rule"))
    .secondary(head(first), "first written here")
    .help("remove one of them; if they were meant to differ, change the tools or the condition")
}

/// Patterns as a set: sorted, without duplicates, runs of `*` as one `*`.
/// The patterns as written, `*` for `tool *`.
fn pattern_iter(patterns: &ToolPatterns) -> impl Iterator<Item = &str> {
    let list = match patterns {
        ToolPatterns::Any => &[][..],
        ToolPatterns::List(list) => list.as_slice(),
    };
    let any = matches!(patterns, ToolPatterns::Any).then_some("*");
    any.into_iter().chain(list.iter().map(String::as_str))
}

fn pattern_set(rule: &Rule) -> Vec<String> {
    let mut set: Vec<String> = patterns(&rule.patterns)
        .into_iter()
        .map(|p| {
            let mut out = String::with_capacity(p.len());
            for c in p.chars() {
                if !(c == '*' && out.ends_with('*')) {
                    out.push(c);
                }
            }
            out
        })
        .collect();
    set.sort();
    set.dedup();
    set
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.effect == b.effect
        && a.ttl == b.ttl
        && a.uses == b.uses
        && a.approval == b.approval
        && pattern_set(a) == pattern_set(b)
        && match (&a.condition, &b.condition) {
            (None, None) => true,
            (Some(x), Some(y)) => same_shape(x, y),
            _ => false,
        }
}

fn rule_key(rule: &Rule) -> u64 {
    // FNV, not SipHash: the keys come from the policy, and SipHash was
    // most of this lint's cost.
    let mut hasher = Fnv::default();
    matches!(rule.effect, Effect::Allow).hash(&mut hasher);
    rule.ttl.hash(&mut hasher);
    rule.uses.hash(&mut hasher);
    rule.approval.hash(&mut hasher);
    // The least and greatest hash of the normalised patterns: equal sets
    // give equal keys, without building the set for every rule (unequal
    // sets that share both are told apart by `same_rule`).
    let (mut least, mut greatest) = (u64::MAX, 0u64);
    for pattern in pattern_iter(&rule.patterns) {
        let mut hash = crate::fnv::START;
        let mut star = false;
        for byte in pattern.bytes() {
            if !(byte == b'*' && star) {
                hash = crate::fnv::step(hash, byte);
            }
            star = byte == b'*';
        }
        least = least.min(hash);
        greatest = greatest.max(hash);
    }
    (least, greatest).hash(&mut hasher);
    if let Some(condition) = &rule.condition {
        hash_shape(condition, &mut hasher);
    }
    hasher.finish()
}

/// Hashes an expression without its spans, consistently with [`same_shape`].
fn hash_shape(expr: &Expr, hasher: &mut Fnv) {
    std::mem::discriminant(&expr.kind).hash(hasher);
    match &expr.kind {
        ExprKind::Const(value) => value.hash(hasher),
        ExprKind::Attr(id) => id.hash(hasher),
        ExprKind::Not(operand) => hash_shape(operand, hasher),
        ExprKind::And(operands) | ExprKind::Or(operands) => {
            operands.len().hash(hasher);
            for operand in operands {
                hash_shape(operand, hasher);
            }
        }
        ExprKind::Compare {
            op,
            lhs,
            rhs,
            operand_type,
        } => {
            op.hash(hasher);
            operand_type.hash(hasher);
            hash_shape(lhs, hasher);
            hash_shape(rhs, hasher);
        }
        ExprKind::InList { needle, list } => {
            list.hash(hasher);
            hash_shape(needle, hasher);
        }
        ExprKind::InSet { needle, set } => {
            hash_shape(needle, hasher);
            hash_shape(set, hasher);
        }
        ExprKind::Matches { subject, glob } => {
            glob.hash(hasher);
            hash_shape(subject, hasher);
        }
    }
}
