//! Helpers shared by the end-to-end tests: paths, running the CLI in-process.

use std::path::PathBuf;

// The oracle panics on what the generator never writes: a loud failure.
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
pub mod reference;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Output of one `grant` run.
#[derive(Debug)]
pub struct Run {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `grant ARGS...` in-process from the workspace root's point of view:
/// relative paths in `args` are taken from the workspace root.
pub fn grant(args: &[&str]) -> Run {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let argv = std::iter::once("grant".to_string()).chain(args.iter().map(|a| a.to_string()));
    let code = grant_cli::run(argv, &mut stdout, &mut stderr) as u8;
    Run {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A policy path under the workspace root, as a string for `grant` args.
pub fn path(relative: &str) -> String {
    root().join(relative).display().to_string()
}

/// A compact, span-free rendering of an AST, for parser snapshots:
/// `(allow ["db.*"] (and (<= sensitivity internal) task.approved) ttl=120)`.
pub fn sexpr(file: &grant_syntax::ast::File) -> String {
    use grant_syntax::ast::{Item, ToolPattern, TypeExpr};
    fn ty(t: &TypeExpr) -> String {
        match t {
            TypeExpr::Named(n) => n.value.clone(),
            TypeExpr::Set(e, _) => format!("set<{}>", ty(e)),
        }
    }
    let mut out = String::new();
    for item in &file.items {
        let line = match item {
            Item::Type(t) => format!(
                "(type {} {} [{}])",
                t.name.value,
                if t.ordered { "ordered" } else { "unordered" },
                t.variants
                    .iter()
                    .map(|v| v.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Item::Attr(a) => format!("(attr {} {})", a.path.name, ty(&a.ty)),
            Item::DefaultTtl(s) => format!("(default-ttl {})", s.ttl.value),
            Item::MaxTtl(s) => format!("(max-ttl {})", s.ttl.value),
            Item::Rule(r) => {
                let annotations: String = r
                    .annotations
                    .iter()
                    .map(|a| format!("@{}={:?} ", a.name.value, a.value.value))
                    .collect();
                let pattern = match &r.pattern {
                    ToolPattern::Any(_) => "*".to_string(),
                    ToolPattern::One(p) => format!("{:?}", p.value),
                    ToolPattern::List(ps, _) => {
                        format!(
                            "[{}]",
                            ps.iter()
                                .map(|p| format!("{:?}", p.value))
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    }
                };
                let condition = r
                    .condition
                    .as_ref()
                    .map(|c| format!(" {}", expr(c)))
                    .unwrap_or_default();
                let ttl = r
                    .ttl
                    .as_ref()
                    .map(|t| format!(" ttl={}", t.value))
                    .unwrap_or_default();
                format!(
                    "({annotations}{} {pattern}{condition}{ttl})",
                    r.effect.value.as_str()
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn expr(e: &grant_syntax::ast::Expr) -> String {
    use grant_syntax::ast::ExprKind;
    let list = |es: &[grant_syntax::ast::Expr]| es.iter().map(expr).collect::<Vec<_>>().join(" ");
    match &e.kind {
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Duration(d) => format!("{d}s"),
        ExprKind::List(items) => format!("[{}]", list(items)),
        ExprKind::Path(p) => p.name.clone(),
        ExprKind::Variant { ty, variant } => format!("{}::{}", ty.value, variant.value),
        ExprKind::Not(inner) => format!("(not {})", expr(inner)),
        ExprKind::And(es) => format!("(and {})", list(es)),
        ExprKind::Or(es) => format!("(or {})", list(es)),
        ExprKind::Compare { op, lhs, rhs } => {
            format!("({} {} {})", op.value.as_str(), expr(lhs), expr(rhs))
        }
    }
}
