//! The checked policy: names resolved, every expression typed. This is what
//! the compiler and the reference evaluator read.

use grant_syntax::Span;
use grant_syntax::ast::Effect;
use indexmap::IndexMap;

use crate::fnv::FnvMap;

/// Index of a declared enum in [`Policy::types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// Index of a declared attribute in [`Policy::attrs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrId(pub u32);

/// A type that is not a set: what a set may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Bool,
    Int,
    String,
    Duration,
    Enum(TypeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Scalar(Scalar),
    Set(Scalar),
}

impl Type {
    pub const BOOL: Type = Type::Scalar(Scalar::Bool);
    pub const INT: Type = Type::Scalar(Scalar::Int);
    pub const STRING: Type = Type::Scalar(Scalar::String);
    pub const DURATION: Type = Type::Scalar(Scalar::Duration);

    /// How the type is written in source, `set<sensitivity>`, with enums
    /// named by `enum_name` (`?` for one it does not know).
    pub fn name<'a>(self, enum_name: impl Fn(TypeId) -> Option<&'a str>) -> String {
        let scalar = |s: Scalar| match s {
            Scalar::Bool => "bool",
            Scalar::Int => "int",
            Scalar::String => "string",
            Scalar::Duration => "duration",
            Scalar::Enum(id) => enum_name(id).unwrap_or("?"),
        };
        match self {
            Type::Scalar(s) => scalar(s).to_string(),
            Type::Set(s) => format!("set<{}>", scalar(s)),
        }
    }
}

/// `type sensitivity = public < internal`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumType {
    pub name: String,
    pub ordered: bool,
    /// In declaration order; a variant's index is its ordinal (and its rank
    /// when `ordered`). Add variants with [`EnumType::add_variant`], which
    /// keeps the index that [`EnumType::ordinal`] reads.
    pub variants: Vec<String>,
    pub span: Span,
    /// Variant name to ordinal: every literal and every request value is
    /// looked up, and an enum may have many variants.
    ordinals: FnvMap<Box<str>, u32>,
}

impl EnumType {
    /// An enum without variants yet.
    pub fn new(name: String, ordered: bool, span: Span) -> EnumType {
        EnumType {
            name,
            ordered,
            variants: Vec::new(),
            span,
            ordinals: FnvMap::default(),
        }
    }

    /// Adds a variant and returns its ordinal, or, if the enum lists it
    /// already, `Err` with the ordinal it has.
    pub fn add_variant(&mut self, variant: &str) -> Result<u32, u32> {
        if let Some(&ordinal) = self.ordinals.get(variant) {
            return Err(ordinal);
        }
        let ordinal = self.variants.len() as u32;
        self.ordinals.insert(variant.into(), ordinal);
        self.variants.push(variant.to_string());
        Ok(ordinal)
    }

    pub fn ordinal(&self, variant: &str) -> Option<u32> {
        self.ordinals.get(variant).copied()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The dotted path: `task.approved`.
    pub path: String,
    pub ty: Type,
    pub span: Span,
}

/// A literal value of a checked expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Bool(bool),
    Int(i64),
    String(String),
    /// Seconds.
    Duration(u64),
    /// A variant, by its ordinal in its enum.
    Enum(u32),
    /// Sorted, without duplicates.
    Set(Vec<Value>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ordering {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Ordering {
    /// Whether `a op b` holds, given how `a` compares to `b`.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        match self {
            Ordering::Eq => ordering.is_eq(),
            Ordering::Ne => ordering.is_ne(),
            Ordering::Lt => ordering.is_lt(),
            Ordering::Le => ordering.is_le(),
            Ordering::Gt => ordering.is_gt(),
            Ordering::Ge => ordering.is_ge(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::Eq => "==",
            Ordering::Ne => "!=",
            Ordering::Lt => "<",
            Ordering::Le => "<=",
            Ordering::Gt => ">",
            Ordering::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Const(Value),
    Attr(AttrId),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// Both operands have type `operand_type`.
    Compare {
        op: Ordering,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        operand_type: Type,
    },
    /// `x in [..]`: the list's values, sorted, without duplicates.
    InList {
        needle: Box<Expr>,
        list: Vec<Value>,
    },
    /// `x in set_attr`
    InSet {
        needle: Box<Expr>,
        set: Box<Expr>,
    },
    /// `s matches "glob"`
    Matches {
        subject: Box<Expr>,
        glob: String,
    },
}

/// Which tools a rule is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolPatterns {
    /// `tool *`
    Any,
    /// One or more patterns, `*` being the wildcard in each.
    List(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// `@id`, or `<file>:<line>`.
    pub id: String,
    /// Every annotation, `id` included, keyed by name without `@`.
    pub annotations: IndexMap<String, String>,
    pub effect: Effect,
    pub patterns: ToolPatterns,
    pub condition: Option<Expr>,
    /// The granted ttl in seconds, for allow rules: the rule's own or
    /// `default ttl`. `None` for deny rules.
    pub ttl: Option<u64>,
    /// The span of the rule's own `ttl` value; `None` for an allow rule that
    /// takes `default ttl`, and for deny rules.
    pub ttl_span: Option<Span>,
    /// `uses N` (allow rules): at most this many uses of the grant.
    pub uses: Option<u64>,
    /// `approval "GROUP"` (allow rules): a group that must approve.
    pub approval: Option<String>,
    /// The span of the `allow`/`deny` keyword through the rule's end.
    pub span: Span,
    pub pattern_span: Span,
}

/// A policy that passed the checker (or, with errors, the parts of it that did).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub types: Vec<EnumType>,
    pub attrs: Vec<Attribute>,
    pub default_ttl: Option<u64>,
    pub max_ttl: Option<u64>,
    pub rules: Vec<Rule>,
    /// Attribute path to id, for [`Policy::attr_by_path`]; built with
    /// `attrs` by the checker.
    attr_ids: FnvMap<Box<str>, AttrId>,
}

impl Policy {
    pub fn enum_type(&self, id: TypeId) -> Option<&EnumType> {
        self.types.get(id.0 as usize)
    }

    pub fn attr(&self, id: AttrId) -> Option<&Attribute> {
        self.attrs.get(id.0 as usize)
    }

    /// The attribute declared at `path`, found by hash.
    pub fn attr_by_path(&self, path: &str) -> Option<(AttrId, &Attribute)> {
        if self.attr_ids.len() != self.attrs.len() {
            // Attributes added by hand, not by the checker: no index.
            return self
                .attrs
                .iter()
                .enumerate()
                .find(|(_, a)| a.path == path)
                .map(|(i, a)| (AttrId(i as u32), a));
        }
        let id = *self.attr_ids.get(path)?;
        self.attr(id)
            .filter(|a| a.path == path)
            .map(|attribute| (id, attribute))
    }

    /// A policy with these declarations and no rules.
    pub(crate) fn declared(
        types: Vec<EnumType>,
        attrs: Vec<Attribute>,
        default_ttl: Option<u64>,
        max_ttl: Option<u64>,
    ) -> Policy {
        let attr_ids = attrs
            .iter()
            .enumerate()
            .map(|(i, a)| (a.path.as_str().into(), AttrId(i as u32)))
            .collect();
        Policy {
            types,
            attrs,
            default_ttl,
            max_ttl,
            rules: Vec::new(),
            attr_ids,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AttrId, Attribute, EnumType, Policy, Type};
    use grant_syntax::{FileId, Span};

    const SPAN: Span = Span {
        file: FileId(0),
        start: 0,
        end: 0,
    };

    #[test]
    fn variants_by_name() {
        let mut levels = EnumType::new("level".into(), true, SPAN);
        assert_eq!(levels.add_variant("low"), Ok(0));
        assert_eq!(levels.add_variant("high"), Ok(1));
        assert_eq!(levels.add_variant("low"), Err(0));
        assert_eq!(levels.variants, ["low", "high"]);
        assert_eq!(levels.ordinal("high"), Some(1));
        assert_eq!(levels.ordinal("medium"), None);
    }

    #[test]
    fn attributes_by_path() {
        let attr = |path: &str| Attribute {
            path: path.into(),
            ty: Type::BOOL,
            span: SPAN,
        };
        let mut policy = Policy::declared(Vec::new(), vec![attr("a"), attr("b.c")], None, None);
        assert_eq!(
            policy.attr_by_path("b.c").map(|(id, _)| id),
            Some(AttrId(1))
        );
        assert!(policy.attr_by_path("b").is_none());
        // Attributes added by hand are still found.
        policy.attrs.push(attr("d"));
        assert_eq!(policy.attr_by_path("d").map(|(id, _)| id), Some(AttrId(2)));
    }
}
