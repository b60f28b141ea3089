//! Running one rule's bytecode.

use std::cmp::Ordering;

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
