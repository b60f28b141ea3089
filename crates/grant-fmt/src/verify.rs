//! The formatter's own safety net: the formatted text must parse to the same
//! AST as the original (spans aside) and keep the same comments in the same
//! order. A formatter bug then fails loudly instead of changing a policy.

use grant_syntax::ast::{Annotation, Expr, ExprKind, File, Item, Path, ToolPattern, TypeExpr};
use grant_syntax::lexer::{self, Token};
use grant_syntax::parser::parse_file;
use grant_syntax::{FileId, Span};

/// Why the formatted text was rejected, if it was.
pub(crate) fn check(original: &str, parsed: &File, formatted: &str) -> Result<(), &'static str> {
    let reparsed = parse_file(FileId(0), formatted);
    if reparsed.diagnostics.iter().any(|d| d.is_error()) {
        return Err("the formatted text does not parse");
    }
    if erased(parsed) != erased(&reparsed.file) {
        return Err("the formatted text parses to a different policy");
    }
    if comments(original) != comments(formatted) {
        return Err("the formatted text does not keep the comments in order");
    }
    Ok(())
}

/// The comments of a text, in order, trailing whitespace removed.
fn comments(text: &str) -> Vec<&str> {
    lexer::tokens(text)
        .filter(|(token, _)| *token == Some(Token::Comment))
        .filter_map(|(_, range)| text.get(range))
        .map(str::trim_end)
        .collect()
}

const NOWHERE: Span = Span {
    file: FileId(0),
    start: 0,
    end: 0,
};

/// A copy of `file` with every span set to [`NOWHERE`].
fn erased(file: &File) -> File {
    let mut file = file.clone();
    for item in &mut file.items {
        match item {
            Item::Type(t) => {
                t.span = NOWHERE;
                t.name.span = NOWHERE;
                for variant in &mut t.variants {
                    variant.span = NOWHERE;
                }
            }
            Item::Attr(a) => {
                a.span = NOWHERE;
                path(&mut a.path);
                type_expr(&mut a.ty);
            }
            Item::DefaultTtl(s) | Item::MaxTtl(s) => {
                s.span = NOWHERE;
                s.ttl.span = NOWHERE;
            }
            Item::Rule(r) => {
                r.span = NOWHERE;
                r.effect.span = NOWHERE;
                for Annotation { name, value, span } in &mut r.annotations {
                    name.span = NOWHERE;
                    value.span = NOWHERE;
                    *span = NOWHERE;
                }
                match &mut r.pattern {
                    ToolPattern::Any(span) => *span = NOWHERE,
                    ToolPattern::One(s) => s.span = NOWHERE,
                    ToolPattern::List(strings, span) => {
                        *span = NOWHERE;
                        for s in strings {
                            s.span = NOWHERE;
                        }
                    }
                }
                if let Some(condition) = &mut r.condition {
                    expr(condition);
                }
                if let Some(ttl) = &mut r.ttl {
                    ttl.span = NOWHERE;
                }
                if let Some(uses) = &mut r.uses {
                    uses.span = NOWHERE;
                }
                if let Some(approval) = &mut r.approval {
                    approval.span = NOWHERE;
                }
            }
        }
    }
    file
}

fn path(p: &mut Path) {
    p.span = NOWHERE;
}

fn type_expr(t: &mut TypeExpr) {
    match t {
        TypeExpr::Named(name) => name.span = NOWHERE,
        TypeExpr::Set(inner, span) => {
            *span = NOWHERE;
            type_expr(inner);
        }
    }
}

fn expr(e: &mut Expr) {
    // Iterative: a 5,000-operand chain or deep nesting must not recurse far.
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        e.span = NOWHERE;
        match &mut e.kind {
            ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Str(_) | ExprKind::Duration(_) => {}
            ExprKind::Path(p) => path(p),
            ExprKind::Variant { ty, variant } => {
                ty.span = NOWHERE;
                variant.span = NOWHERE;
            }
            ExprKind::Not(inner) => pending.push(inner),
            ExprKind::List(items) | ExprKind::And(items) | ExprKind::Or(items) => {
                pending.extend(items.iter_mut());
            }
            ExprKind::Compare { op, lhs, rhs } => {
                op.span = NOWHERE;
                pending.push(lhs);
                pending.push(rhs);
            }
        }
    }
}
