//! Running one rule's bytecode.

use std::cmp::Ordering;

use grant_compile::plan::{Test, TestValue};
use grant_compile::program::{CompareOp, CompiledRule, Const, Kind, Op, Operand, SlotId, Tri};
use grant_compile::{MAX_STACK, Program};

use crate::input::{Input, Scalar, Slot};

/// An operand, with the truth value popped for [`Operand::Top`].
#[derive(Clone, Copy)]
enum Arg {
    Operand(Operand),
    Truth(Tri),
}

/// Pops the values of an instruction's `Top` operands (the last one was
/// pushed last), in operand order; `None` when the stack is too shallow.
fn pop_args<const N: usize>(
    stack: &[Tri],
    depth: &mut usize,
    operands: [Operand; N],
) -> Option<[Arg; N]> {
    let mut args = operands.map(Arg::Operand);
    for arg in args.iter_mut().rev() {
        if let Arg::Operand(Operand::Top) = arg {
            *depth = depth.checked_sub(1)?;
            *arg = Arg::Truth(*stack.get(*depth)?);
        }
    }
    Some(args)
}

/// A value read from an operand: a scalar, a set, or missing.
enum Loaded<'a> {
    Scalar(Scalar<'a>),
    SlotSet(&'a [Slot]),
    ConstSet(&'a [Const]),
    Missing,
}

struct Machine<'p, 'i, 'm> {
    program: &'p Program,
    input: &'i Input<'i>,
    missing: &'m mut Vec<SlotId>,
}

/// Evaluates a rule's condition (true when it has none). Reads of missing
/// attributes are pushed to `missing`. Malformed code, which the compiler
/// does not produce, evaluates to unknown: a deny rule then still applies.
pub fn eval_rule(
    program: &Program,
    rule: &CompiledRule,
    input: &Input<'_>,
    missing: &mut Vec<SlotId>,
) -> Tri {
    let code = program.code_of(rule);
    if code.is_empty() {
        return Tri::True;
    }
    let mut machine = Machine {
        program,
        input,
        missing,
    };
    // Most conditions need a handful of stack slots: a small stack is
    // cheaper to set up than the largest one any rule may need.
    let result = if rule.max_stack as usize <= SMALL_STACK {
        machine.run::<SMALL_STACK>(code, rule.code_start as usize)
    } else {
        machine.run::<MAX_STACK>(code, rule.code_start as usize)
    };
    result.unwrap_or(Tri::Unknown)
}

/// Evaluates a junction of tests (`any`: an `or`, else an `and`) as its
/// bytecode would: the tests in order, stopping at the first that decides
/// the junction; reads of missing attributes are pushed to `missing`.
#[inline]
pub fn eval_tests(
    program: &Program,
    tests: &[Test],
    any: bool,
    input: &Input<'_>,
    missing: &mut Vec<SlotId>,
) -> Tri {
    let decided = Tri::from_bool(any);
    let mut unknown = false;
    for test in tests {
        let result = eval_test(program, test, input, missing);
        if result == decided {
            return decided;
        }
        unknown |= result == Tri::Unknown;
    }
    if unknown { Tri::Unknown } else { !decided }
}

#[inline]
fn eval_test(program: &Program, test: &Test, input: &Input<'_>, missing: &mut Vec<SlotId>) -> Tri {
    let value = input
        .values
        .get(test.slot.0 as usize)
        .copied()
        .unwrap_or(Slot::Missing);
    let ordering = match (value, test.value) {
        (Slot::Missing, _) => {
            missing.push(test.slot);
            return Tri::Unknown;
        }
        (Slot::Int(a), TestValue::Int(b)) => a.cmp(&b),
        (Slot::Enum(a), TestValue::Enum(b)) => a.cmp(&b),
        (Slot::Duration(a), TestValue::Duration(b)) => a.cmp(&b),
        (Slot::Bool(a), TestValue::Bool(b)) => a.cmp(&b),
        (Slot::Str(range), TestValue::Str(id)) => match program.consts.get(id.0 as usize) {
            Some(Const::Str(s)) => input.str(range).cmp(s),
            _ => return Tri::Unknown,
        },
        // An attribute of another kind: bad input.
        _ => return Tri::Unknown,
    };
    test.truth(ordering)
}

/// The stack of rules that need at most this many slots.
const SMALL_STACK: usize = 16;

impl<'p, 'i> Machine<'p, 'i, '_>
where
    'p: 'i,
{
    /// `None` when the code is malformed (stack misuse, bad jump).
    fn run<const N: usize>(&mut self, code: &[Op], base: usize) -> Option<Tri> {
        let mut stack = [Tri::Unknown; N];
        let mut depth = 0usize;
        let mut pc = 0usize;
        while let Some(op) = code.get(pc) {
            pc += 1;
            let pushed = match *op {
                Op::Push(value) => value,
                Op::LoadBool(slot) => match self.slot(slot) {
                    Slot::Bool(b) => Tri::from_bool(b),
                    _ => Tri::Unknown,
                },
                Op::Compare { kind, op, lhs, rhs } => {
                    let [lhs, rhs] = pop_args(&stack, &mut depth, [lhs, rhs])?;
                    self.compare(kind, op, lhs, rhs)
                }
                Op::CompareSet { op, lhs, rhs } => {
                    let [lhs, rhs] = pop_args(&stack, &mut depth, [lhs, rhs])?;
                    self.compare_sets(op, lhs, rhs)
                }
                Op::InList { needle, list } => {
                    let [needle] = pop_args(&stack, &mut depth, [needle])?;
                    match (self.load(needle), self.program.consts.get(list.0 as usize)) {
                        (Loaded::Scalar(x), Some(Const::Set(items))) => Tri::from_bool(
                            items
                                .binary_search_by(|c| {
                                    Scalar::of_const(c).map_or(Ordering::Less, |c| c.cmp(x))
                                })
                                .is_ok(),
                        ),
                        _ => Tri::Unknown,
                    }
                }
                Op::InSet { needle, set } => {
                    let [needle] = pop_args(&stack, &mut depth, [needle])?;
                    match (
                        self.load(needle),
                        self.load(Arg::Operand(Operand::Slot(set))),
                    ) {
                        (Loaded::Scalar(x), Loaded::SlotSet(items)) => Tri::from_bool(
                            items
                                .binary_search_by(|s| {
                                    Scalar::of_slot(*s, self.input)
                                        .map_or(Ordering::Less, |s| s.cmp(x))
                                })
                                .is_ok(),
                        ),
                        _ => Tri::Unknown,
                    }
                }
                Op::Matches { subject, glob } => {
                    let [subject] = pop_args(&stack, &mut depth, [subject])?;
                    match (self.load(subject), self.program.globs.get(glob.0 as usize)) {
                        (Loaded::Scalar(Scalar::Str(s)), Some(glob)) => {
                            Tri::from_bool(glob.matches(s))
                        }
                        _ => Tri::Unknown,
                    }
                }
                Op::Not => {
                    let top = stack.get_mut(depth.checked_sub(1)?)?;
                    *top = !*top;
                    continue;
                }
                Op::And | Op::Or => {
                    let right = *stack.get(depth.checked_sub(1)?)?;
                    depth -= 1;
                    let left = stack.get_mut(depth.checked_sub(1)?)?;
                    *left = if matches!(op, Op::And) {
                        left.and(right)
                    } else {
                        left.or(right)
                    };
                    continue;
                }
                Op::JumpIfFalse(target) | Op::JumpIfTrue(target) => {
                    let top = *stack.get(depth.checked_sub(1)?)?;
                    let decided = if matches!(op, Op::JumpIfFalse(_)) {
                        Tri::False
                    } else {
                        Tri::True
                    };
                    if top == decided {
                        // Jumps go forward only: evaluation always ends.
                        pc = (target as usize)
                            .checked_sub(base)
                            .filter(|&t| t > pc - 1)?;
                    }
                    continue;
                }
            };
            *stack.get_mut(depth)? = pushed;
            depth += 1;
        }
        if depth == 1 {
            stack.first().copied()
        } else {
            None
        }
    }

    #[inline]
    fn slot(&mut self, slot: SlotId) -> Slot {
        let value = self
            .input
            .values
            .get(slot.0 as usize)
            .copied()
            .unwrap_or(Slot::Missing);
        if value == Slot::Missing {
            self.missing.push(slot);
        }
        value
    }

    #[inline]
    fn load(&mut self, arg: Arg) -> Loaded<'i> {
        let operand = match arg {
            Arg::Operand(operand) => operand,
            // A condition's value: its missing attributes were noted when
            // it was evaluated.
            Arg::Truth(Tri::True) => return Loaded::Scalar(Scalar::Bool(true)),
            Arg::Truth(Tri::False) => return Loaded::Scalar(Scalar::Bool(false)),
            Arg::Truth(Tri::Unknown) => return Loaded::Missing,
        };
        match operand {
            Operand::Slot(slot) => match self.slot(slot) {
                Slot::Missing => Loaded::Missing,
                Slot::Set(range) => Loaded::SlotSet(self.input.set(range)),
                scalar => {
                    Scalar::of_slot(scalar, self.input).map_or(Loaded::Missing, Loaded::Scalar)
                }
            },
            Operand::Const(id) => match self.program.consts.get(id.0 as usize) {
                Some(Const::Set(items)) => Loaded::ConstSet(items),
                Some(value) => Scalar::of_const(value).map_or(Loaded::Missing, Loaded::Scalar),
                None => Loaded::Missing,
            },
            // Popped by the instruction: never loaded as such.
            Operand::Top => Loaded::Missing,
        }
    }

    fn compare(&mut self, kind: Kind, op: CompareOp, lhs: Arg, rhs: Arg) -> Tri {
        // The common shape, an attribute against a constant number, enum or
        // bool, compared without going through `Scalar`.
        if let (Arg::Operand(Operand::Slot(slot)), Arg::Operand(Operand::Const(id))) = (lhs, rhs) {
            let value = self.slot(slot);
            let ordering = match (kind, value, self.program.consts.get(id.0 as usize)) {
                (_, Slot::Missing, _) => return Tri::Unknown,
                (Kind::Int, Slot::Int(a), Some(Const::Int(b))) => Some(a.cmp(b)),
                (Kind::Enum, Slot::Enum(a), Some(Const::Enum(b))) => Some(a.cmp(b)),
                (Kind::Duration, Slot::Duration(a), Some(Const::Duration(b))) => Some(a.cmp(b)),
                (Kind::Bool, Slot::Bool(a), Some(Const::Bool(b))) => Some(a.cmp(b)),
                _ => None,
            };
            if let Some(ordering) = ordering {
                return Tri::from_bool(op.holds(ordering));
            }
        }
        // Read both sides, so that both missing attributes are named.
        let (lhs, rhs) = (self.load(lhs), self.load(rhs));
        let (Loaded::Scalar(a), Loaded::Scalar(b)) = (lhs, rhs) else {
            return Tri::Unknown;
        };
        // The checker gave both sides the kind; a mismatch means bad input.
        if !same_kind(kind, a) || !same_kind(kind, b) {
            return Tri::Unknown;
        }
        Tri::from_bool(op.holds(a.cmp(b)))
    }

    fn compare_sets(&mut self, op: CompareOp, lhs: Arg, rhs: Arg) -> Tri {
        let (lhs, rhs) = (self.load(lhs), self.load(rhs));
        let equal = match (&lhs, &rhs) {
            (Loaded::SlotSet(a), Loaded::ConstSet(b)) | (Loaded::ConstSet(b), Loaded::SlotSet(a)) => {
                a.len() == b.len()
                    && a.iter().zip(b.iter()).all(|(x, y)| {
                        matches!((Scalar::of_slot(*x, self.input), Scalar::of_const(y)), (Some(x), Some(y)) if x.cmp(y).is_eq())
                    })
            }
            (Loaded::SlotSet(a), Loaded::SlotSet(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b.iter()).all(|(x, y)| {
                        matches!((Scalar::of_slot(*x, self.input), Scalar::of_slot(*y, self.input)), (Some(x), Some(y)) if x.cmp(y).is_eq())
                    })
            }
            (Loaded::ConstSet(a), Loaded::ConstSet(b)) => a == b,
            _ => return Tri::Unknown,
        };
        match op {
            CompareOp::Eq => Tri::from_bool(equal),
            CompareOp::Ne => Tri::from_bool(!equal),
            _ => Tri::Unknown,
        }
    }
}

fn same_kind(kind: Kind, value: Scalar<'_>) -> bool {
    matches!(
        (kind, value),
        (Kind::Bool, Scalar::Bool(_))
            | (Kind::Int, Scalar::Int(_))
            | (Kind::Str, Scalar::Str(_))
            | (Kind::Duration, Scalar::Duration(_))
            | (Kind::Enum, Scalar::Enum(_))
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use grant_compile::plan::Shape;
    use grant_compile::program::{SlotId, Tri};
    use grant_syntax::SourceMap;

    use super::{eval_rule, eval_tests};
    use crate::input::{Input, Slot, SlotRange};

    /// The tests a rule is planned into decide what its bytecode decides,
    /// and name the same missing attributes, for every combination of
    /// missing and present values.
    #[test]
    fn planned_tests_agree_with_the_bytecode() {
        let conditions = [
            "level <= mid",
            "mid > level",
            "level <= mid and depth < 3",
            "level <= mid and depth < 3 and flag",
            "level == high or depth >= 2",
            "not flag or level != low",
            "not not flag and name == \"b\"",
            "\"b\" != name and 1m < elapsed",
            "flag == false and depth > 1 and elapsed <= 90s",
            // Not planned: run as bytecode.
            "level <= mid and (depth < 3 or flag)",
            "(level <= mid) == flag",
        ];
        let mut text = String::from(
            "type level = low < mid < high\nattr level: level\nattr depth: int\nattr flag: bool\nattr name: string\nattr elapsed: duration\n",
        );
        for c in conditions {
            text.push_str(&format!("allow tool \"t\" when {c} ttl 5m\n"));
        }
        let mut sources = SourceMap::new();
        sources.add("policy.grant", text);
        let built = grant_compile::build(&sources);
        assert!(!built.has_errors(), "{:?}", built.diagnostics);
        let program = built.program.unwrap();
        assert!(program.heads.iter().any(|h| h.shape == Shape::AnyOf));
        assert!(program.heads.iter().any(|h| h.shape == Shape::Code));
        let choices: [&[Slot]; 5] = [
            &[
                Slot::Missing,
                Slot::Enum(0),
                Slot::Enum(1),
                Slot::Enum(2),
                Slot::Int(1),
            ],
            &[Slot::Missing, Slot::Int(1), Slot::Int(2), Slot::Int(3)],
            &[Slot::Missing, Slot::Bool(false), Slot::Bool(true)],
            &[
                Slot::Missing,
                Slot::Str(SlotRange { start: 0, len: 1 }),
                Slot::Str(SlotRange { start: 1, len: 1 }),
                Slot::Str(SlotRange { start: 2, len: 1 }),
            ],
            &[
                Slot::Missing,
                Slot::Duration(60),
                Slot::Duration(90),
                Slot::Duration(91),
            ],
        ];
        let mut values = vec![Slot::Missing; 5];
        let mut compared = 0;
        let total: usize = choices.iter().map(|c| c.len()).product();
        for mut n in 0..total {
            for (value, options) in values.iter_mut().zip(choices.iter()) {
                *value = options[n % options.len()];
                n /= options.len();
            }
            let input = Input {
                values: &values,
                text: "abc",
                set_items: &[],
            };
            for (rule, head) in program.rules.iter().zip(&program.heads) {
                let (mut by_code, mut by_tests) = (Vec::new(), Vec::new());
                let expected = eval_rule(&program, rule, &input, &mut by_code);
                let tests = &program.tests[head.start as usize..head.end as usize];
                let found = match head.shape {
                    Shape::AllOf | Shape::AnyOf => eval_tests(
                        &program,
                        tests,
                        head.shape == Shape::AnyOf,
                        &input,
                        &mut by_tests,
                    ),
                    _ => continue,
                };
                assert_eq!(found, expected, "{:?} with {values:?}", rule.id);
                if expected == Tri::Unknown {
                    let sorted = |mut v: Vec<SlotId>| {
                        v.sort_unstable();
                        v.dedup();
                        v
                    };
                    assert_eq!(sorted(by_tests), sorted(by_code), "{:?}", rule.id);
                }
                compared += 1;
            }
        }
        assert!(compared > 1000);
    }
}
