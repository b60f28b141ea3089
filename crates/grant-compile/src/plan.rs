//! The evaluator's fast form of each rule, derived from its bytecode when
//! the policy is compiled. Most conditions are a junction of tests of one
//! attribute against a constant (`sensitivity <= internal and depth < 3`);
//! such a rule is evaluated as a flat list of pre-resolved tests, without
//! the stack machine. Anything else runs the bytecode. The fast form is
//! recognised from the emitted code itself, so it decides exactly what the
//! code decides (docs/bytecode.md, "How conditions compile").

use grant_syntax::ast::Effect;

use crate::program::{CompareOp, Const, ConstId, Kind, Op, Operand, SlotId, Tri};

/// What deciding reads for every candidate rule, beside
/// [`crate::Program::rules`]: 12 bytes, not the whole rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleHead {
    pub effect: Effect,
    pub shape: Shape,
    /// `Program::tests[start..end]` for [`Shape::AllOf`] and
    /// [`Shape::AnyOf`]; unused otherwise.
    pub start: u32,
    pub end: u32,
}

/// How a rule's condition is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// No condition: true.
    Always,
    /// `t1 and t2 and ...`: false at the first false test, else unknown if
    /// a test is unknown, else true.
    AllOf,
    /// `t1 or t2 or ...`: true at the first true test, else unknown if a
    /// test is unknown, else false.
    AnyOf,
    /// Run the rule's bytecode.
    Code,
}

/// One attribute against one constant: `slot <op> value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test {
    pub slot: SlotId,
    /// The orderings of (attribute, value) for which the test is true:
    /// bit 0 less, bit 1 equal, bit 2 greater. A negation complements it.
    pub holds: u8,
    pub value: TestValue,
}

/// The constant of a [`Test`], of the kind the attribute must have (an
/// attribute of another kind makes the test unknown, as in the bytecode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestValue {
    Bool(bool),
    Int(i64),
    Duration(u64),
    Enum(u32),
    /// A `Const::Str` of the pool.
    Str(ConstId),
}

impl Test {
    /// The truth of the test for an ordering of (attribute, value).
    #[inline]
    pub fn truth(&self, ordering: std::cmp::Ordering) -> Tri {
        Tri::from_bool(self.holds >> ((ordering as i8 + 1) as u8) & 1 != 0)
    }
}

fn mask(op: CompareOp) -> u8 {
    const LESS: u8 = 1;
    const EQUAL: u8 = 2;
    const GREATER: u8 = 4;
    match op {
        CompareOp::Eq => EQUAL,
        CompareOp::Ne => LESS | GREATER,
        CompareOp::Lt => LESS,
        CompareOp::Le => LESS | EQUAL,
        CompareOp::Gt => GREATER,
        CompareOp::Ge => GREATER | EQUAL,
    }
}

/// The head of a rule whose code is `code` (ending at the absolute
/// position `code_end`), its tests appended to `tests`.
pub(crate) fn plan(
    effect: Effect,
    code: &[Op],
    code_end: u32,
    consts: &[Const],
    tests: &mut Vec<Test>,
) -> RuleHead {
    let start = tests.len();
    let shape = if code.is_empty() {
        Shape::Always
    } else {
        match junction(code, code_end, consts, tests) {
            Some(shape) => shape,
            None => {
                tests.truncate(start);
                Shape::Code
            }
        }
    };
    RuleHead {
        effect,
        shape,
        start: start as u32,
        end: tests.len() as u32,
    }
}

/// Recognises `T (J T C)*`, what the compiler emits for a junction of
/// tests: `J` a jump to the end of the rule, `C` the matching `and`/`or`.
fn junction(code: &[Op], code_end: u32, consts: &[Const], tests: &mut Vec<Test>) -> Option<Shape> {
    let mut ops = code.iter().copied().peekable();
    tests.push(test(&mut ops, consts)?);
    let mut shape = Shape::AllOf;
    let mut first = true;
    while let Some(jump) = ops.next() {
        let is_and = match jump {
            Op::JumpIfFalse(target) if target == code_end => true,
            Op::JumpIfTrue(target) if target == code_end => false,
            _ => return None,
        };
        let this = if is_and { Shape::AllOf } else { Shape::AnyOf };
        if !first && this != shape {
            return None;
        }
        shape = this;
        first = false;
        tests.push(test(&mut ops, consts)?);
        match (ops.next()?, is_and) {
            (Op::And, true) | (Op::Or, false) => {}
            _ => return None,
        }
    }
    Some(shape)
}

/// One test, and the `not`s that follow it.
fn test(ops: &mut std::iter::Peekable<impl Iterator<Item = Op>>, consts: &[Const]) -> Option<Test> {
    let mut test = match ops.next()? {
        Op::LoadBool(slot) => Test {
            slot,
            holds: mask(CompareOp::Eq),
            value: TestValue::Bool(true),
        },
        Op::Compare { kind, op, lhs, rhs } => {
            let (slot, id, holds) = match (lhs, rhs) {
                (Operand::Slot(slot), Operand::Const(id)) => (slot, id, mask(op)),
                // `c < s` is `s > c`: swap the less and greater bits.
                (Operand::Const(id), Operand::Slot(slot)) => {
                    let m = mask(op);
                    (slot, id, (m & 2) | ((m & 1) << 2) | ((m >> 2) & 1))
                }
                _ => return None,
            };
            let value = match (kind, consts.get(id.0 as usize)?) {
                (Kind::Bool, Const::Bool(b)) => TestValue::Bool(*b),
                (Kind::Int, Const::Int(i)) => TestValue::Int(*i),
                (Kind::Duration, Const::Duration(d)) => TestValue::Duration(*d),
                (Kind::Enum, Const::Enum(e)) => TestValue::Enum(*e),
                (Kind::Str, Const::Str(_)) => TestValue::Str(id),
                _ => return None,
            };
            Test { slot, holds, value }
        }
        _ => return None,
    };
    while ops.next_if_eq(&Op::Not).is_some() {
        test.holds ^= 0b111;
    }
    Some(test)
}
