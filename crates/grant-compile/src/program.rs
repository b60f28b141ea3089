//! The compiled form of a policy: bytecode, constant pool, rule table and
//! rule index. Read by the VM; built by [`crate::compile`].

use grant_check::ir::{Attribute, EnumType, Scalar, Type};
use grant_syntax::Span;
use grant_syntax::ast::Effect;

use crate::glob::Glob;
use crate::index::RuleIndex;
use crate::plan::{RuleHead, Test};

/// Index of an attribute's value in a request: the attribute's declaration
/// order in the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(pub u32);

/// Index into [`Program::consts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConstId(pub u32);

/// Index into [`Program::globs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GlobId(pub u32);

/// Index into [`Program::rules`]: rules keep their policy order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// Three-valued truth: a condition that reads a missing attribute may be
/// neither true nor false.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tri {
    False,
    True,
    Unknown,
}

impl Tri {
    pub fn from_bool(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }

    /// False if either is false; true if both are true; else unknown.
    pub fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Unknown,
        }
    }

    /// True if either is true; false if both are false; else unknown.
    pub fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, Tri::False) => Tri::False,
            _ => Tri::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tri::False => "false",
            Tri::True => "true",
            Tri::Unknown => "unknown",
        }
    }
}

impl std::ops::Not for Tri {
    type Output = Tri;

    fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::True => Tri::False,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// A constant of the pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Const {
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    Duration(u64),
    Enum(u32),
    /// Sorted, without duplicates (the order of [`Const`]'s `Ord`, which the
    /// VM's set values share).
    Set(Box<[Const]>),
}

/// Where a comparison operand comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Slot(SlotId),
    Const(ConstId),
    /// The truth value on top of the stack, popped: a condition used as a
    /// `bool` operand, as in `(a and b) == c`. When both operands of an
    /// instruction are `Top`, the right one is on top.
    Top,
}

/// The scalar kind both sides of a comparison share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Bool,
    Int,
    Str,
    Duration,
    Enum,
}

impl Kind {
    pub fn of(scalar: Scalar) -> Kind {
        match scalar {
            Scalar::Bool => Kind::Bool,
            Scalar::Int => Kind::Int,
            Scalar::String => Kind::Str,
            Scalar::Duration => Kind::Duration,
            Scalar::Enum(_) => Kind::Enum,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Str => "str",
            Kind::Duration => "dur",
            Kind::Enum => "enum",
        }
    }
}

/// `==` `!=` `<` `<=` `>` `>=`.
pub use grant_check::ir::Ordering as CompareOp;

/// One instruction. Conditions are evaluated on a small stack of [`Tri`]:
/// each test pushes one, `Not`/`And`/`Or` combine them, jumps skip what
/// cannot change the outcome. There are no backward jumps: every rule runs
/// in time bounded by its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Push a constant truth value (a condition folded at compile time).
    Push(Tri),
    /// Push a `bool` attribute's value.
    LoadBool(SlotId),
    /// Compare two scalars of one kind.
    Compare {
        kind: Kind,
        op: CompareOp,
        lhs: Operand,
        rhs: Operand,
    },
    /// `==`/`!=` of two sets.
    CompareSet {
        op: CompareOp,
        lhs: Operand,
        rhs: Operand,
    },
    /// `x in [..]`: the list is a set constant.
    InList {
        needle: Operand,
        list: ConstId,
    },
    /// `x in set_attr`.
    InSet {
        needle: Operand,
        set: SlotId,
    },
    /// `s matches "glob"`.
    Matches {
        subject: Operand,
        glob: GlobId,
    },
    Not,
    /// Combine the top two values.
    And,
    Or,
    /// If the top is false, jump to the target (the `and` is decided).
    JumpIfFalse(u32),
    /// If the top is true, jump to the target (the `or` is decided).
    JumpIfTrue(u32),
}

/// A rule as the VM and the decision API see it.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub id: Box<str>,
    pub effect: Effect,
    /// Granted ttl in seconds (allow rules).
    pub ttl: Option<u64>,
    /// `uses N` (allow rules).
    pub uses: Option<u64>,
    /// `approval "GROUP"` (allow rules).
    pub approval: Option<Box<str>>,
    /// Every annotation, in source order, keyed by name without `@`.
    pub annotations: Box<[(Box<str>, Box<str>)]>,
    /// `None` for `tool *`.
    pub patterns: Option<Box<[Box<str>]>>,
    /// The rule's instructions: `code[start..end]`; empty when it has no
    /// condition (always true).
    pub code_start: u32,
    pub code_end: u32,
    /// Worst-case cost in budget units (see docs/bytecode.md).
    pub cost: u32,
    /// Deepest the evaluation stack gets.
    pub max_stack: u32,
    pub span: Span,
    pub condition_span: Option<Span>,
    /// Whether the condition reads `ledger.degraded`
    /// (`grant_check::ledger::DEGRADED`): in a degraded decision only the
    /// allow rules that do apply.
    pub reads_degraded: bool,
}

impl CompiledRule {
    /// The rule's tool patterns as written: `*`, or `"db.*", "db.read"`.
    pub fn patterns_text(&self) -> String {
        patterns_text(self.patterns.as_deref())
    }
}

/// Tool patterns as a rule writes them: `*` for `None`, else each quoted,
/// `"db.*", "db.read"` (for `grant inspect` and `--explain`).
pub fn patterns_text<S: AsRef<str>>(patterns: Option<&[S]>) -> String {
    match patterns {
        None => "*".to_string(),
        Some(patterns) => patterns
            .iter()
            .map(|p| format!("{:?}", p.as_ref()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A compiled policy.
#[derive(Clone, Debug)]
pub struct Program {
    pub types: Vec<EnumType>,
    /// One slot per declared attribute, in declaration order.
    pub attrs: Vec<Attribute>,
    pub consts: Vec<Const>,
    pub globs: Vec<Glob>,
    pub code: Vec<Op>,
    /// The source of each instruction, beside `code`.
    pub spans: Vec<Span>,
    pub rules: Vec<CompiledRule>,
    /// Beside `rules`: how the evaluator runs each rule (`crate::plan`).
    pub heads: Vec<RuleHead>,
    /// The tests of the rules whose heads list tests.
    pub tests: Vec<Test>,
    /// Whether any rule denies: when none does, deciding skips the deny pass.
    pub has_deny: bool,
    pub index: RuleIndex,
    pub default_ttl: Option<u64>,
    pub max_ttl: Option<u64>,
}

impl Program {
    pub fn rule(&self, id: RuleId) -> Option<&CompiledRule> {
        self.rules.get(id.0 as usize)
    }

    pub fn code_of(&self, rule: &CompiledRule) -> &[Op] {
        self.code
            .get(rule.code_start as usize..rule.code_end as usize)
            .unwrap_or(&[])
    }

    pub fn attr_type(&self, slot: SlotId) -> Option<Type> {
        self.attrs.get(slot.0 as usize).map(|a| a.ty)
    }

    /// The variant name of an enum value, for messages.
    pub fn variant_name(&self, ty: Type, ordinal: u32) -> Option<&str> {
        let (Type::Scalar(Scalar::Enum(id)) | Type::Set(Scalar::Enum(id))) = ty else {
            return None;
        };
        self.types
            .get(id.0 as usize)?
            .variants
            .get(ordinal as usize)
            .map(String::as_str)
    }
}
