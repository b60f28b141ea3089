//! Grant's evaluator. It runs a [`Program`]'s bytecode over the values of one
//! request in three-valued logic, and decides: deny if any deny rule applies
//! (an unknown deny condition applies: fail closed), else allow if any allow
//! rule applies (an unknown allow condition does not), else deny. A
//! degraded decision ([`decide_degraded`]) is the same over fewer allow rules.
//!
//! It never panics and never allocates once an [`Outcome`] has warmed up:
//! every buffer it writes lives in the outcome and is reused.

mod eval;
mod input;

use grant_compile::Program;
use grant_compile::index::IndexScratch;
use grant_compile::plan::Shape;
use grant_compile::program::{RuleId, SlotId, Tri};
use grant_syntax::ast::Effect;

pub use eval::{eval_rule, eval_tests};
pub use input::{Input, Slot, SlotRange, cmp_items};

/// How a decision came out, and why, in buffers reused across decisions.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub effect: Option<Effect>,
    /// Granted seconds, on allow.
    pub ttl: Option<u64>,
    /// The rules that decided: applying denies on deny, applying allows on
    /// allow, none for a default deny. In policy order.
    pub deciding: Vec<RuleId>,
    /// Every rule whose pattern matched, with how its condition came out, in
    /// the order evaluated (deny rules first). Allow rules are not evaluated
    /// once a deny applies.
    pub considered: Vec<Considered>,
    /// Attributes whose absence made an evaluated condition unknown,
    /// ascending, without duplicates.
    pub missing: Vec<SlotId>,
    /// In a degraded decision, the allow rules whose pattern matched but
    /// which were left out, their conditions not reading `ledger.degraded`.
    /// In policy order; empty in a normal decision.
    pub skipped: Vec<RuleId>,
    candidates: Vec<RuleId>,
    /// The rule index's buffers.
    index_scratch: IndexScratch,
    /// The missing attributes of each unknown condition, one run per
    /// [`Considered`] entry.
    missing_log: Vec<SlotId>,
}

/// A rule whose pattern matched, and how its condition came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Considered {
    pub rule: RuleId,
    pub result: Tri,
    missing_start: u32,
    missing_end: u32,
}

impl Outcome {
    pub fn is_allow(&self) -> bool {
        self.effect == Some(Effect::Allow)
    }

    /// The attributes whose absence made this rule's condition unknown
    /// (empty unless its result is unknown), ascending.
    pub fn missing_of(&self, considered: &Considered) -> &[SlotId] {
        self.missing_log
            .get(considered.missing_start as usize..considered.missing_end as usize)
            .unwrap_or(&[])
    }

    fn reset(&mut self) {
        self.effect = None;
        self.ttl = None;
        self.deciding.clear();
        self.considered.clear();
        self.missing.clear();
        self.skipped.clear();
        self.candidates.clear();
        self.missing_log.clear();
    }
}

/// Decides a request for `tool` with the attribute values in `input`, the
/// caller asking for at most `requested_ttl` seconds.
pub fn decide(
    program: &Program,
    tool: &str,
    input: &Input<'_>,
    requested_ttl: Option<u64>,
    out: &mut Outcome,
) {
    decide_as::<false>(program, tool, input, requested_ttl, out);
}

/// [`decide`] as the ledger does while its store is unavailable: every deny
/// rule, but only the allow rules whose condition reads `ledger.degraded`
/// ([`grant_compile::program::CompiledRule::reads_degraded`]); the others
/// are left out as if their patterns did not match, and listed in
/// [`Outcome::skipped`]. The caller sets `ledger.degraded` in `input`.
pub fn decide_degraded(
    program: &Program,
    tool: &str,
    input: &Input<'_>,
    requested_ttl: Option<u64>,
    out: &mut Outcome,
) {
    decide_as::<true>(program, tool, input, requested_ttl, out);
}

/// The body of [`decide`] and [`decide_degraded`]. A constant, not an
/// argument, and inlined into each: the normal decision does not pass,
/// test or branch on a mode.
#[inline(always)]
fn decide_as<const DEGRADED: bool>(
    program: &Program,
    tool: &str,
    input: &Input<'_>,
    requested_ttl: Option<u64>,
    out: &mut Outcome,
) {
    out.reset();
    let mut candidates = std::mem::take(&mut out.candidates);
    program.index.candidates_with(
        tool,
        &program.globs,
        &mut out.index_scratch,
        &mut candidates,
    );
    // Once per decision, before the passes: the evaluation loop stays the
    // normal one, and what is left out is neither evaluated nor combined.
    if DEGRADED {
        skip_unread_allows(program, &mut candidates, &mut out.skipped);
    }
    // Deny rules first: any that applies decides. A pass is skipped when
    // it has nothing to evaluate (most policies allow far more than they
    // deny).
    let allows = if program.has_deny {
        evaluate(program, &candidates, Effect::Deny, input, out)
    } else {
        true
    };
    if out.deciding.is_empty() {
        if allows {
            evaluate(program, &candidates, Effect::Allow, input, out);
        }
        if !out.deciding.is_empty() {
            out.effect = Some(Effect::Allow);
            let rules_ttl = out
                .deciding
                .iter()
                .filter_map(|id| program.rule(*id)?.ttl)
                .min();
            out.ttl = match (rules_ttl, requested_ttl) {
                (Some(rule), Some(asked)) => Some(rule.min(asked)),
                (ttl, None) | (None, ttl) => ttl,
            };
        } else {
            out.effect = Some(Effect::Deny);
        }
    } else {
        out.effect = Some(Effect::Deny);
    }
    out.candidates = candidates;
    if !out.missing_log.is_empty() {
        out.missing.extend_from_slice(&out.missing_log);
        out.missing.sort_unstable();
        out.missing.dedup();
    }
}

/// Moves the allow rules whose condition does not read `ledger.degraded`
/// from `candidates` to `skipped`, both keeping policy order.
fn skip_unread_allows(program: &Program, candidates: &mut Vec<RuleId>, skipped: &mut Vec<RuleId>) {
    candidates.retain(|&id| {
        // The heads say what the passes evaluate as an allow. One whose
        // rule cannot be read is not known to read `ledger.degraded`: left
        // out, failing closed on malformed state.
        let allow = program
            .heads
            .get(id.0 as usize)
            .is_some_and(|head| head.effect == Effect::Allow);
        let skip = allow && !program.rule(id).is_some_and(|rule| rule.reads_degraded);
        if skip {
            skipped.push(id);
        }
        !skip
    });
}

/// Evaluates the candidates of `effect`; whether there were candidates of
/// the other effect.
fn evaluate(
    program: &Program,
    candidates: &[RuleId],
    effect: Effect,
    input: &Input<'_>,
    out: &mut Outcome,
) -> bool {
    let mut others = false;
    for &id in candidates {
        // The packed heads, not the rules: this loop runs for every
        // candidate, twice.
        let Some(head) = program.heads.get(id.0 as usize) else {
            continue;
        };
        if head.effect != effect {
            others = true;
            continue;
        }
        let start = out.missing_log.len();
        let result = match head.shape {
            Shape::Always => Tri::True,
            Shape::AllOf | Shape::AnyOf => {
                let tests = program
                    .tests
                    .get(head.start as usize..head.end as usize)
                    .unwrap_or(&[]);
                eval_tests(
                    program,
                    tests,
                    head.shape == Shape::AnyOf,
                    input,
                    &mut out.missing_log,
                )
            }
            Shape::Code => match program.rule(id) {
                Some(rule) => eval_rule(program, rule, input, &mut out.missing_log),
                None => Tri::Unknown,
            },
        };
        let mut end = start;
        if result == Tri::Unknown {
            // Only unknown conditions name their missing attributes.
            let run = out.missing_log.get_mut(start..).unwrap_or(&mut []);
            run.sort_unstable();
            end += dedup_sorted(run);
        }
        out.missing_log.truncate(end);
        out.considered.push(Considered {
            rule: id,
            result,
            missing_start: start as u32,
            missing_end: end as u32,
        });
        let applies = match result {
            Tri::True => true,
            Tri::False => false,
            Tri::Unknown => effect == Effect::Deny,
        };
        if applies {
            out.deciding.push(id);
        }
    }
    others
}

/// Moves the distinct values of a sorted slice to its front; their count.
fn dedup_sorted(items: &mut [SlotId]) -> usize {
    let mut kept = 0usize;
    for i in 0..items.len() {
        if kept == 0 || items[kept - 1] != items[i] {
            items[kept] = items[i];
            kept += 1;
        }
    }
    kept
}
