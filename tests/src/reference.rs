//! A reference evaluator: the spec's decision procedure ("Requests and
//! decisions"), written as directly as possible over the **syntax tree**. It
//! shares nothing with the checker (it resolves names and reads types
//! itself), the compiler, the rule index or the VM, so it is an oracle for
//! all of them: the differential tests compare it with the engine. Short and
//! slow on purpose. It assumes a policy the checker accepts (the generator
//! writes only those) and panics on anything else: in a test, a loud
//! failure.
//!
//! - Names: a path is an attribute when the policy declares it; otherwise a
//!   bare name is a variant of the enum on the other side of its comparison
//!   (or of the needle of `in`, or of the set it is looked for in).
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
//!   ttls (a rule without one takes `default ttl`) and the requested ttl, the
//!   smallest of their `uses` and the union of their approval groups; else
//!   deny.
//! - Degraded ([`decide_degraded`]): the same, but an allow rule whose
//!   condition does not name the declared attribute `ledger.degraded` is
//!   passed over as if its patterns did not match.

use std::collections::{BTreeMap, BTreeSet};

use grant_syntax::FileId;
use grant_syntax::ast::{CompareOp, Effect, Expr, ExprKind, Item, ToolPattern, TypeExpr};
use grant_syntax::parser::parse_file;

/// An attribute's value in a request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// Seconds.
    Duration(u64),
    /// A variant's ordinal in its enum: its position in the declaration.
    Enum(u32),
    Set(BTreeSet<RefValue>),
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
    /// On allow: the smallest `uses` of the applying allow rules.
    pub uses: Option<u64>,
    /// On allow: the applying allow rules' approval groups, sorted, once each.
    pub approvals: Vec<String>,
}

/// A declared type, as the reference reads it from the declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RefType {
    Scalar,
    /// An enum, by name.
    Enum(String),
    /// A set of enums, by name, or of scalars (`None`).
    Set(Option<String>),
}

#[derive(Debug)]
struct RefRule {
    id: String,
    effect: Effect,
    /// `None` for `tool *`.
    patterns: Option<Vec<String>>,
    condition: Option<Expr>,
    ttl: Option<u64>,
    uses: Option<u64>,
    approval: Option<String>,
}

/// A policy as the reference reads it: declarations and rules, straight
/// from the syntax tree of one file named `policy.grant`.
#[derive(Debug)]
pub struct RefPolicy {
    /// Enum name → variants in declaration order (the ordinal is the index).
    enums: BTreeMap<String, Vec<String>>,
    attrs: BTreeMap<String, RefType>,
    rules: Vec<RefRule>,
}

impl RefPolicy {
    /// Reads `text` (the file `policy.grant`). Panics if it does not parse.
    pub fn read(text: &str) -> RefPolicy {
        let parsed = parse_file(FileId(0), text);
        assert!(
            parsed.diagnostics.iter().all(|d| !d.is_error()),
            "the reference reads only valid policies"
        );
        let mut enums = BTreeMap::new();
        let mut declared = Vec::new();
        let mut default_ttl = None;
        for item in &parsed.file.items {
            match item {
                Item::Type(decl) => {
                    let variants = decl.variants.iter().map(|v| v.value.clone()).collect();
                    enums.insert(decl.name.value.clone(), variants);
                }
                Item::Attr(decl) => declared.push((decl.path.name.clone(), decl.ty.clone())),
                Item::DefaultTtl(setting) => default_ttl = Some(setting.ttl.value),
                Item::MaxTtl(_) | Item::Rule(_) => {}
            }
        }
        let type_of = |ty: &TypeExpr| match ty {
            TypeExpr::Named(name) if enums.contains_key(&name.value) => {
                RefType::Enum(name.value.clone())
            }
            TypeExpr::Named(_) => RefType::Scalar,
            TypeExpr::Set(element, _) => RefType::Set(match element.as_ref() {
                TypeExpr::Named(name) if enums.contains_key(&name.value) => {
                    Some(name.value.clone())
                }
                _ => None,
            }),
        };
        let attrs = declared
            .iter()
            .map(|(path, ty)| (path.clone(), type_of(ty)))
            .collect();
        let rules = parsed
            .file
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Rule(rule) => Some(rule),
                _ => None,
            })
            .map(|rule| {
                let line = 1 + text[..rule.effect.span.start as usize]
                    .matches('\n')
                    .count();
                let id = rule
                    .annotations
                    .iter()
                    .find(|a| a.name.value == "id")
                    .map_or_else(|| format!("policy.grant:{line}"), |a| a.value.value.clone());
                let allow = rule.effect.value == Effect::Allow;
                RefRule {
                    id,
                    effect: rule.effect.value,
                    patterns: match &rule.pattern {
                        ToolPattern::Any(_) => None,
                        ToolPattern::One(p) => Some(vec![p.value.clone()]),
                        ToolPattern::List(list, _) => {
                            Some(list.iter().map(|p| p.value.clone()).collect())
                        }
                    },
                    condition: rule.condition.clone(),
                    ttl: if allow {
                        rule.ttl.as_ref().map(|t| t.value).or(default_ttl)
                    } else {
                        None
                    },
                    uses: rule.uses.as_ref().map(|u| u.value as u64),
                    approval: rule.approval.as_ref().map(|a| a.value.clone()),
                }
            })
            .collect();
        RefPolicy {
            enums,
            attrs,
            rules,
        }
    }

    /// The ordinal of `variant` in enum `ty`.
    fn ordinal(&self, ty: &str, variant: &str) -> u32 {
        let variants = &self.enums[ty];
        variants
            .iter()
            .position(|v| v == variant)
            .unwrap_or_else(|| panic!("`{variant}` is not a variant of `{ty}`")) as u32
    }
}

/// Three-valued truth; `None` is unknown.
type Tri = Option<bool>;

/// Decides a request for `tool` with attribute values `attrs` (by path; an
/// absent path is missing), the caller asking for at most `requested_ttl`.
pub fn decide(
    policy: &RefPolicy,
    tool: &str,
    attrs: &BTreeMap<String, RefValue>,
    requested_ttl: Option<u64>,
) -> RefDecision {
    decide_as(policy, tool, attrs, requested_ttl, false)
}

/// [`decide`] while the ledger is degraded: only the allow rules whose
/// condition names `ledger.degraded` may apply.
pub fn decide_degraded(
    policy: &RefPolicy,
    tool: &str,
    attrs: &BTreeMap<String, RefValue>,
    requested_ttl: Option<u64>,
) -> RefDecision {
    decide_as(policy, tool, attrs, requested_ttl, true)
}

/// Whether `expr` names the attribute `path` anywhere.
fn names(expr: &Expr, path: &str) -> bool {
    match &expr.kind {
        ExprKind::Path(p) => p.name == path,
        ExprKind::Not(inner) => names(inner, path),
        ExprKind::And(items) | ExprKind::Or(items) | ExprKind::List(items) => {
            items.iter().any(|e| names(e, path))
        }
        ExprKind::Compare { lhs, rhs, .. } => names(lhs, path) || names(rhs, path),
        ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Duration(_)
        | ExprKind::Variant { .. } => false,
    }
}

fn decide_as(
    policy: &RefPolicy,
    tool: &str,
    attrs: &BTreeMap<String, RefValue>,
    requested_ttl: Option<u64>,
    degraded: bool,
) -> RefDecision {
    const DEGRADED: &str = "ledger.degraded";
    let declared = policy.attrs.contains_key(DEGRADED);
    let mut eval = Eval {
        policy,
        attrs,
        read_missing: BTreeSet::new(),
    };
    let mut missing = BTreeSet::new();
    let mut outcome = |effect: Effect, eval: &mut Eval| -> Vec<&RefRule> {
        let mut applying = Vec::new();
        for rule in &policy.rules {
            if rule.effect != effect || !patterns_match(rule.patterns.as_deref(), tool) {
                continue;
            }
            let reads_degraded =
                declared && rule.condition.as_ref().is_some_and(|c| names(c, DEGRADED));
            if degraded && effect == Effect::Allow && !reads_degraded {
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
            if result.unwrap_or(effect == Effect::Deny) {
                applying.push(rule);
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
    let (ttl, uses, approvals) = if allow {
        (
            deciding
                .iter()
                .filter_map(|r| r.ttl)
                .chain(requested_ttl)
                .min(),
            deciding.iter().filter_map(|r| r.uses).min(),
            deciding
                .iter()
                .filter_map(|r| r.approval.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        )
    } else {
        (None, None, Vec::new())
    };
    RefDecision {
        allow,
        ttl,
        rules: deciding.iter().map(|r| r.id.clone()).collect(),
        missing: missing.into_iter().collect(),
        uses,
        approvals,
    }
}

fn patterns_match(patterns: Option<&[String]>, tool: &str) -> bool {
    match patterns {
        None => true,
        Some(list) => list.iter().any(|p| glob_match(p, tool)),
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
    policy: &'a RefPolicy,
    attrs: &'a BTreeMap<String, RefValue>,
    /// Paths read while absent, during the current condition.
    read_missing: BTreeSet<String>,
}

impl Eval<'_> {
    /// The enum an operand belongs to, if it says so itself: an enum
    /// attribute, a set of enums, or a qualified variant.
    fn enum_of(&self, expr: &Expr) -> Option<String> {
        match &expr.kind {
            ExprKind::Path(path) => match self.policy.attrs.get(&path.name)? {
                RefType::Enum(ty) => Some(ty.clone()),
                RefType::Set(ty) => ty.clone(),
                RefType::Scalar => None,
            },
            ExprKind::Variant { ty, .. } => Some(ty.value.clone()),
            ExprKind::List(items) => items.iter().find_map(|item| self.enum_of(item)),
            _ => None,
        }
    }

    /// The value of an operand; `None` when unknown. `context` is the enum
    /// a bare variant belongs to here.
    fn value(&mut self, expr: &Expr, context: Option<&str>) -> Option<RefValue> {
        match &expr.kind {
            ExprKind::Bool(b) => Some(RefValue::Bool(*b)),
            ExprKind::Int(i) => Some(RefValue::Int(*i)),
            ExprKind::Str(s) => Some(RefValue::Str(s.clone())),
            ExprKind::Duration(d) => Some(RefValue::Duration(*d)),
            ExprKind::Variant { ty, variant } => Some(RefValue::Enum(
                self.policy.ordinal(&ty.value, &variant.value),
            )),
            ExprKind::Path(path) if self.policy.attrs.contains_key(&path.name) => {
                let value = self.attrs.get(&path.name).cloned();
                if value.is_none() {
                    self.read_missing.insert(path.name.clone());
                }
                value
            }
            ExprKind::Path(path) => {
                let ty = context
                    .unwrap_or_else(|| panic!("`{}` is neither attribute nor variant", path.name));
                Some(RefValue::Enum(self.policy.ordinal(ty, &path.name)))
            }
            // A set literal, compared with a set attribute (`== []`).
            ExprKind::List(items) => items
                .iter()
                .map(|item| self.value(item, context))
                .collect::<Option<BTreeSet<_>>>()
                .map(RefValue::Set),
            // Any other operand is a condition.
            _ => self.truth(expr).map(RefValue::Bool),
        }
    }

    fn truth(&mut self, expr: &Expr) -> Tri {
        match &expr.kind {
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
            ExprKind::Compare { op, lhs, rhs } => self.compare(op.value, lhs, rhs),
            _ => match self.value(expr, None)? {
                RefValue::Bool(b) => Some(b),
                other => panic!("a condition of value {other:?}"),
            },
        }
    }

    fn compare(&mut self, op: CompareOp, lhs: &Expr, rhs: &Expr) -> Tri {
        let context = self.enum_of(lhs).or_else(|| self.enum_of(rhs));
        let context = context.as_deref();
        match op {
            CompareOp::Matches => {
                let ExprKind::Str(glob) = &rhs.kind else {
                    panic!("`matches` takes a string literal");
                };
                match self.value(lhs, context)? {
                    RefValue::Str(s) => Some(glob_match(glob, &s)),
                    other => panic!("`matches` on {other:?}"),
                }
            }
            CompareOp::In => {
                let needle = self.value(lhs, context);
                let haystack: Option<BTreeSet<RefValue>> = match &rhs.kind {
                    ExprKind::List(items) => {
                        items.iter().map(|item| self.value(item, context)).collect()
                    }
                    _ => match self.value(rhs, context)? {
                        RefValue::Set(items) => Some(items),
                        other => panic!("`in` a {other:?}"),
                    },
                };
                Some(haystack?.contains(&needle?))
            }
            _ => {
                let (a, b) = (self.value(lhs, context), self.value(rhs, context));
                let ordering = a?.cmp(&b?);
                Some(match op {
                    CompareOp::Eq => ordering.is_eq(),
                    CompareOp::Ne => ordering.is_ne(),
                    CompareOp::Lt => ordering.is_lt(),
                    CompareOp::Le => ordering.is_le(),
                    CompareOp::Gt => ordering.is_gt(),
                    CompareOp::Ge => ordering.is_ge(),
                    CompareOp::In | CompareOp::Matches => return None,
                })
            }
        }
    }
}
