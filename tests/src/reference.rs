//! A reference evaluator: the spec's decision procedure ("Requests and
//! decisions"), written as directly as possible over the checked policy
//! ([`grant_check::ir`]), sharing nothing with the compiler, the rule index
//! or the VM. It is the oracle of the differential tests: short and slow on
//! purpose.
//!
//! - A rule applies when one of its patterns matches the tool (a naive glob
//!   matcher, every pattern of every rule tried) and its condition is true.
//! - Conditions are three-valued. `and`/`or` evaluate their operands left to
//!   right and stop at the first operand that decides them (false for `and`,
//!   true for `or`); every other expression reads all its operands and is
//!   unknown if any of them is.
//! - The missing attributes of a decision are those read, absent, while
//!   evaluating a condition that came out unknown.
//! - Deny rules are evaluated first; if one applies (true, or unknown: fail
//!   closed) the answer is deny, and allow rules are not evaluated. Else the
//!   answer is allow if an allow rule is true, with the smallest of their
//!   ttls and the requested ttl; else deny.

use std::collections::{BTreeMap, BTreeSet};

use grant_check::Policy;
use grant_check::ir::{Expr, ExprKind, Ordering, ToolPatterns, Value};
use grant_syntax::ast::Effect;

/// An attribute's value in a request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// Seconds.
    Duration(u64),
    /// A variant's ordinal in its enum.
    Enum(u32),
    Set(BTreeSet<RefValue>),
}

impl RefValue {
    fn of(value: &Value) -> RefValue {
        match value {
            Value::Bool(b) => RefValue::Bool(*b),
            Value::Int(i) => RefValue::Int(*i),
            Value::String(s) => RefValue::Str(s.clone()),
            Value::Duration(d) => RefValue::Duration(*d),
            Value::Enum(e) => RefValue::Enum(*e),
            Value::Set(items) => RefValue::Set(items.iter().map(RefValue::of).collect()),
        }
    }
}

/// What the reference decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefDecision {
    pub allow: bool,
    /// Granted seconds, on allow.
    pub ttl: Option<u64>,
    /// Ids of the deciding rules, in policy order.
    pub rules: Vec<String>,
    /// Attribute paths, sorted.
    pub missing: Vec<String>,
}

/// Three-valued truth; `None` is unknown.
type Tri = Option<bool>;

/// Decides a request for `tool` with attribute values `attrs` (by path; an
/// absent path is missing), the caller asking for at most `requested_ttl`.
pub fn decide(
    policy: &Policy,
    tool: &str,
    attrs: &BTreeMap<String, RefValue>,
    requested_ttl: Option<u64>,
) -> RefDecision {
    let mut eval = Eval {
        policy,
        attrs,
        read_missing: BTreeSet::new(),
    };
    let mut missing = BTreeSet::new();
    let mut outcome = |effect: Effect, eval: &mut Eval| -> Vec<usize> {
        let mut applying = Vec::new();
        for (i, rule) in policy.rules.iter().enumerate() {
            if rule.effect != effect || !patterns_match(&rule.patterns, tool) {
                continue;
            }
            eval.read_missing.clear();
            let result = match &rule.condition {
                None => Some(true),
                Some(condition) => eval.truth(condition),
            };
            if result.is_none() {
                missing.extend(eval.read_missing.iter().cloned());
            }
            let applies = match result {
                Some(b) => b,
                None => effect == Effect::Deny,
            };
            if applies {
                applying.push(i);
            }
        }
        applying
    };
    let denies = outcome(Effect::Deny, &mut eval);
    let (allow, deciding) = if !denies.is_empty() {
        (false, denies)
    } else {
        let allows = outcome(Effect::Allow, &mut eval);
        (!allows.is_empty(), allows)
    };
    let ttl = if allow {
        deciding
            .iter()
            .filter_map(|&i| policy.rules[i].ttl)
            .chain(requested_ttl)
            .min()
    } else {
        None
    };
    RefDecision {
        allow,
        ttl,
        rules: deciding
            .iter()
            .map(|&i| policy.rules[i].id.clone())
            .collect(),
        missing: missing.into_iter().collect(),
    }
}

fn patterns_match(patterns: &ToolPatterns, tool: &str) -> bool {
    match patterns {
        ToolPatterns::Any => true,
        ToolPatterns::List(list) => list.iter().any(|p| glob_match(p, tool)),
    }
}

/// Whether `text` matches `pattern` as a whole, `*` matching any run of
/// characters: the textbook recursion, exponential at worst, fine for tests.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|skip| go(rest, &t[skip..])),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

struct Eval<'a> {
    policy: &'a Policy,
    attrs: &'a BTreeMap<String, RefValue>,
    /// Paths read while absent, during the current condition.
    read_missing: BTreeSet<String>,
}

impl Eval<'_> {
    /// The value of an operand; `None` when unknown.
    fn value(&mut self, expr: &Expr) -> Option<RefValue> {
        match &expr.kind {
            ExprKind::Const(value) => Some(RefValue::of(value)),
            ExprKind::Attr(id) => {
                let path = &self.policy.attr(*id)?.path;
                let value = self.attrs.get(path).cloned();
                if value.is_none() {
                    self.read_missing.insert(path.clone());
                }
                value
            }
            // Any other operand is a condition.
            _ => self.truth(expr).map(RefValue::Bool),
        }
    }

    fn truth(&mut self, expr: &Expr) -> Tri {
        match &expr.kind {
            ExprKind::Const(_) | ExprKind::Attr(_) => match self.value(expr)? {
                RefValue::Bool(b) => Some(b),
                _ => None,
            },
            ExprKind::Not(inner) => self.truth(inner).map(|b| !b),
            ExprKind::And(operands) => {
                let mut result = Some(true);
                for operand in operands {
                    match self.truth(operand) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => result = None,
                    }
                }
                result
            }
            ExprKind::Or(operands) => {
                let mut result = Some(false);
                for operand in operands {
                    match self.truth(operand) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => result = None,
                    }
                }
                result
            }
            ExprKind::Compare { op, lhs, rhs, .. } => {
                let (a, b) = (self.value(lhs), self.value(rhs));
                let ordering = a?.cmp(&b?);
                Some(match op {
                    Ordering::Eq => ordering.is_eq(),
                    Ordering::Ne => ordering.is_ne(),
                    Ordering::Lt => ordering.is_lt(),
                    Ordering::Le => ordering.is_le(),
                    Ordering::Gt => ordering.is_gt(),
                    Ordering::Ge => ordering.is_ge(),
                })
            }
            ExprKind::InList { needle, list } => {
                let needle = self.value(needle)?;
                Some(list.iter().any(|v| RefValue::of(v) == needle))
            }
            ExprKind::InSet { needle, set } => {
                let (needle, set) = (self.value(needle), self.value(set));
                match set? {
                    RefValue::Set(items) => Some(items.contains(&needle?)),
                    _ => None,
                }
            }
            ExprKind::Matches { subject, glob } => match self.value(subject)? {
                RefValue::Str(s) => Some(glob_match(glob, &s)),
                _ => None,
            },
        }
    }
}
