//! G0905: conditions, and operands of `and`/`or`, whose value does not depend
//! on the request: they read no attribute (`when true`, `1 < 2`), or compare
//! an attribute with itself (`x == x`).

use grant_syntax::diagnostic::{Code, Diagnostic};

use crate::Checker;
use crate::glob::Glob;
use crate::ir::{Expr, ExprKind, Ordering, Policy, Value};

/// Where a constant expression stands, which decides what removing it means.
#[derive(Clone, Copy)]
enum Place {
    /// The whole condition of a rule.
    Condition,
    /// One operand of an `and`.
    And,
    /// One operand of an `or`.
    Or,
    /// Under a `not`: only self-comparisons are reported there.
    Other,
}

impl Checker<'_> {
    pub(crate) fn lint_constant_conditions(&mut self, policy: &Policy) {
        for rule in &policy.rules {
            if let Some(condition) = &rule.condition {
                self.constant_in(policy, condition, Place::Condition);
            }
        }
    }

    fn constant_in(&mut self, policy: &Policy, expr: &Expr, place: Place) {
        if !matches!(place, Place::Other)
            && let Some(value) = constant(expr)
        {
            self.report(constant_operand(expr, place, value));
            return;
        }
        match &expr.kind {
            ExprKind::Not(operand) => self.constant_in(policy, operand, Place::Other),
            ExprKind::And(operands) => {
                for operand in operands {
                    self.constant_in(policy, operand, Place::And);
                }
            }
            ExprKind::Or(operands) => {
                for operand in operands {
                    self.constant_in(policy, operand, Place::Or);
                }
            }
            ExprKind::Compare { op, lhs, rhs, .. } if same_shape(lhs, rhs) => {
                if let ExprKind::Attr(id) = lhs.kind {
                    let path = policy.attr(id).map_or("?", |a| a.path.as_str());
                    self.report(self_comparison(expr, *op, path));
                }
            }
            _ => {}
        }
    }
}

fn constant_operand(expr: &Expr, place: Place, value: bool) -> Diagnostic {
    let (subject, help) = match (place, value) {
        (Place::And, true) => (
            "this operand of `and` is",
            "remove it: a true operand does not change an `and`",
        ),
        (Place::And, false) => (
            "this operand of `and` is",
            "it makes the whole `and` always false: remove it, or the rule if it is meant never to apply",
        ),
        (Place::Or, false) => (
            "this operand of `or` is",
            "remove it: a false operand does not change an `or`",
        ),
        (Place::Or, true) => (
            "this operand of `or` is",
            "it makes the whole `or` always true: remove it, or the `or`",
        ),
        (_, true) => (
            "the condition is",
            "remove the condition: a rule without `when` applies whenever one of its tools is called",
        ),
        (_, false) => (
            "the condition is",
            "the rule never applies: remove it, or write the condition it was meant to have",
        ),
    };
    Diagnostic::new(
        Code::ConstantCondition,
        expr.span,
        format!("{subject} always {value}, whatever the request"),
    )
    .label(format!("always {value}: reads no attribute"))
    .help(help)
}

fn self_comparison(expr: &Expr, op: Ordering, path: &str) -> Diagnostic {
    let op_str = op.as_str();
    let (outcome, never) = match op {
        Ordering::Eq | Ordering::Le | Ordering::Ge => ("true or unknown", "false"),
        Ordering::Ne | Ordering::Lt | Ordering::Gt => ("false or unknown", "true"),
    };
    let when = if never == "false" { "true" } else { "false" };
    Diagnostic::new(
        Code::ConstantCondition,
        expr.span,
        format!("`{path} {op_str} {path}` is {outcome}, never {never}"),
    )
    .label(format!(
        "compares `{path}` with itself: {when} when the request gives it, unknown when it does not"
    ))
    .help(format!(
        "compare `{path}` with another value, or remove the comparison"
    ))
}

/// The value of a boolean expression that reads no attribute; `None` when it
/// reads one.
pub(crate) fn constant(expr: &Expr) -> Option<bool> {
    match value(expr)? {
        Value::Bool(b) => Some(b),
        _ => None,
    }
}

/// The value of an expression that reads no attribute, evaluated as the
/// engine would. Constants never make a comparison unknown.
fn value(expr: &Expr) -> Option<Value> {
    let bool = |b: bool| Some(Value::Bool(b));
    match &expr.kind {
        ExprKind::Const(value) => Some(value.clone()),
        ExprKind::Attr(_) => None,
        ExprKind::Not(operand) => bool(!constant(operand)?),
        // Every operand must be constant for the whole to be: a `false and x`
        // is constant too, but the operand is what gets reported.
        ExprKind::And(operands) => {
            let values: Option<Vec<bool>> = operands.iter().map(constant).collect();
            bool(values?.into_iter().all(|b| b))
        }
        ExprKind::Or(operands) => {
            let values: Option<Vec<bool>> = operands.iter().map(constant).collect();
            bool(values?.into_iter().any(|b| b))
        }
        ExprKind::Compare { op, lhs, rhs, .. } => {
            let (lhs, rhs) = (value(lhs)?, value(rhs)?);
            bool(match op {
                Ordering::Eq => lhs == rhs,
                Ordering::Ne => lhs != rhs,
                // The checker only lets ints, durations and ordered enums be
                // ordered; `Value`'s order is theirs within one kind.
                Ordering::Lt => lhs < rhs,
                Ordering::Le => lhs <= rhs,
                Ordering::Gt => lhs > rhs,
                Ordering::Ge => lhs >= rhs,
            })
        }
        ExprKind::InList { needle, list } => {
            let needle = value(needle)?;
            bool(list.contains(&needle))
        }
        ExprKind::InSet { needle, set } => {
            let (needle, set) = (value(needle)?, value(set)?);
            match set {
                Value::Set(values) => bool(values.contains(&needle)),
                _ => None,
            }
        }
        ExprKind::Matches { subject, glob } => match value(subject)? {
            Value::String(text) => bool(Glob::new(glob).matches(&text)),
            _ => None,
        },
    }
}

/// Whether two expressions are the same but for their spans.
pub(crate) fn same_shape(a: &Expr, b: &Expr) -> bool {
    match (&a.kind, &b.kind) {
        (ExprKind::Const(x), ExprKind::Const(y)) => x == y,
        (ExprKind::Attr(x), ExprKind::Attr(y)) => x == y,
        (ExprKind::Not(x), ExprKind::Not(y)) => same_shape(x, y),
        (ExprKind::And(xs), ExprKind::And(ys)) | (ExprKind::Or(xs), ExprKind::Or(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_shape(x, y))
        }
        (
            ExprKind::Compare {
                op: op_a,
                lhs: lhs_a,
                rhs: rhs_a,
                operand_type: type_a,
            },
            ExprKind::Compare {
                op: op_b,
                lhs: lhs_b,
                rhs: rhs_b,
                operand_type: type_b,
            },
        ) => {
            op_a == op_b && type_a == type_b && same_shape(lhs_a, lhs_b) && same_shape(rhs_a, rhs_b)
        }
        (
            ExprKind::InList {
                needle: needle_a,
                list: list_a,
            },
            ExprKind::InList {
                needle: needle_b,
                list: list_b,
            },
        ) => list_a == list_b && same_shape(needle_a, needle_b),
        (
            ExprKind::InSet {
                needle: needle_a,
                set: set_a,
            },
            ExprKind::InSet {
                needle: needle_b,
                set: set_b,
            },
        ) => same_shape(needle_a, needle_b) && same_shape(set_a, set_b),
        (
            ExprKind::Matches {
                subject: subject_a,
                glob: glob_a,
            },
            ExprKind::Matches {
                subject: subject_b,
                glob: glob_b,
            },
        ) => glob_a == glob_b && same_shape(subject_a, subject_b),
        _ => false,
    }
}
