//! The abstract syntax tree: what the parser produces and every later layer
//! reads. No pest type appears here; every node carries a [`Span`].

use crate::span::{Span, Spanned};

/// One parsed file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

// Most items are rules: boxing the largest variant would cost an
// allocation per rule to save space on the few declarations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Type(TypeDecl),
    Attr(AttrDecl),
    DefaultTtl(TtlSetting),
    MaxTtl(TtlSetting),
    Rule(Rule),
}

/// `name` with its span.
pub type Ident = Spanned<String>;

/// `type sensitivity = public < internal`
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDecl {
    pub name: Ident,
    pub ordered: bool,
    pub variants: Vec<Ident>,
    pub span: Span,
}

/// `attr task.approved: bool`
#[derive(Clone, Debug, PartialEq)]
pub struct AttrDecl {
    pub path: Path,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `bool`, `int`, `string`, `duration` or a declared enum.
    Named(Ident),
    /// `set<T>`
    Set(Box<TypeExpr>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(name) => name.span,
            TypeExpr::Set(_, span) => *span,
        }
    }
}

/// `default ttl 5m` / `max ttl 1h`
#[derive(Clone, Debug, PartialEq)]
pub struct TtlSetting {
    pub ttl: Spanned<u64>,
    pub span: Span,
}

/// A dotted attribute path, or a bare identifier (a path of one segment).
/// Segments are written without space around their dots, so the path is
/// its text: one string, its segments found in it ([`Path::segments`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// The segments joined by `.`, as written.
    pub name: String,
    pub span: Span,
}

impl Path {
    /// Each segment with its span.
    pub fn segments(&self) -> impl Iterator<Item = Spanned<&str>> + '_ {
        let mut offset = self.span.start;
        self.name.split('.').map(move |segment| {
            let start = offset;
            offset += segment.len() as u32 + 1;
            Spanned::new(
                segment,
                Span {
                    start,
                    end: start + segment.len() as u32,
                    ..self.span
                },
            )
        })
    }

    /// Whether the path is one bare name (that may be an enum variant).
    pub fn is_bare(&self) -> bool {
        !self.name.contains('.')
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// `@name("text")`
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// Without the `@`.
    pub name: Ident,
    pub value: Spanned<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub annotations: Vec<Annotation>,
    pub effect: Spanned<Effect>,
    pub pattern: ToolPattern,
    pub condition: Option<Expr>,
    pub ttl: Option<Spanned<u64>>,
    /// `uses N` (language 0.2): the literal as written; the checker holds
    /// it to 1..=2^53-1 and to allow rules.
    pub uses: Option<Spanned<i64>>,
    /// `approval "GROUP"` (language 0.2): the decoded group name.
    pub approval: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ToolPattern {
    /// `*`
    Any(Span),
    /// `"db.*"`: a decoded string, `*` being the wildcard.
    One(Spanned<String>),
    /// `["a", "b.*"]`
    List(Vec<Spanned<String>>, Span),
}

impl ToolPattern {
    pub fn span(&self) -> Span {
        match self {
            ToolPattern::Any(span) | ToolPattern::List(_, span) => *span,
            ToolPattern::One(s) => s.span,
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
    Bool(bool),
    Int(i64),
    /// A decoded string literal.
    Str(String),
    /// Seconds.
    Duration(u64),
    /// `[a, b]`: literals and variants.
    List(Vec<Expr>),
    /// An attribute path, or a bare identifier that may be an enum variant.
    Path(Path),
    /// `type::variant`
    Variant {
        ty: Ident,
        variant: Ident,
    },
    Not(Box<Expr>),
    /// Two or more operands, flat: long chains do not deepen the tree.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare {
        op: Spanned<CompareOp>,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Matches,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::In => "in",
            CompareOp::Matches => "matches",
        }
    }
}
