//! Differential tests: random well-typed policies and random requests,
//! decided by the engine (parser, checker, compiler, rule index, VM,
//! request builders) and by the reference evaluator in
//! `grant_tests::reference`, which reads the syntax tree with its own name resolution. Every
//! request is also decided twice by the engine, once built with the typed
//! setters and once from JSON, and the two decisions must be identical;
//! and all of it again degraded (only allow rules that read
//! `ledger.degraded` apply).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;

use grant_engine::{Decision, Engine, Request, Value};
use grant_syntax::SourceMap;
use grant_syntax::literal::format_duration;
use grant_tests::reference::{self, RefDecision, RefPolicy, RefValue};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

// ---------------------------------------------------------------------------
// The fixed vocabulary: one attribute of every type.

const DECLARATIONS: &str = "\
type level = low < mid < high < top
type env = dev | staging | prod
attr level: level
attr task.type: level
attr env: env
attr flag: bool
attr task.approved: bool
attr agent.depth: int
attr agent.workload: string
attr task.elapsed: duration
attr task.labels: set<string>
attr envs: set<env>
attr nums: set<int>
attr bits: set<bool>
attr ledger.degraded: bool
";

const LEVELS: &[&str] = &["low", "mid", "high", "top"];
const ENVS: &[&str] = &["dev", "staging", "prod"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Int,
    Str,
    Duration,
    Level,
    Env,
    SetStr,
    SetEnv,
    SetInt,
    SetBool,
}

const ATTRS: &[(&str, Kind)] = &[
    ("level", Kind::Level),
    ("task.type", Kind::Level),
    ("env", Kind::Env),
    ("flag", Kind::Bool),
    ("task.approved", Kind::Bool),
    ("agent.depth", Kind::Int),
    ("agent.workload", Kind::Str),
    ("task.elapsed", Kind::Duration),
    ("task.labels", Kind::SetStr),
    ("envs", Kind::SetEnv),
    ("nums", Kind::SetInt),
    ("bits", Kind::SetBool),
    ("ledger.degraded", Kind::Bool),
];

const INTS: &[i64] = &[-1, 0, 1, 2, 5, i64::MAX, i64::MIN];
const DURATIONS: &[u64] = &[0, 30, 60, 90, 3600, 5400];
/// String literals as written in source, and their decoded values.
const STRINGS: &[(&str, &str)] = &[
    ("\"a\"", "a"),
    ("\"b\"", "b"),
    ("\"A\"", "A"),
    ("\"\"", ""),
    ("\"spiffe://prod/billing\"", "spiffe://prod/billing"),
    ("\"\\u{e9}t\\u{e9}\"", "été"),
    ("\"x\\\"y\"", "x\"y"),
    ("\"a b c\"", "a b c"),
];
/// `matches` globs (no escapes).
const GLOBS: &[&str] = &[
    "*",
    "a*",
    "*b",
    "a*b*c",
    "",
    "spiffe://prod/*",
    "é*",
    "A",
    "*.*",
];
const TOOLS: &[&str] = &[
    "db.read",
    "db.write",
    "db.schema.drop",
    "db.",
    "db",
    "fs.read",
    "DB.READ",
    " db.read",
    "abc",
    "aXbYc",
    "a.b.c",
    "ac",
    "é.read",
    "*",
];
const PATTERNS: &[&str] = &[
    "db.read",
    "db.*",
    "*.read",
    "*",
    "**",
    "a*b*c",
    "db.*.drop",
    "*read*",
    "fs.read",
    "é*",
    "db",
    "*.",
];

// ---------------------------------------------------------------------------
// Conditions.

#[derive(Clone, Debug)]
enum Cond {
    /// A comparison or a single token, already well typed; `true` when it
    /// has an operator (and needs parentheses as a comparison operand).
    Atom(String, bool),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Paren(Box<Cond>),
    /// `a == b` / `a != b` of two conditions.
    BoolCompare(Box<Cond>, &'static str, Box<Cond>),
    /// `c in [true, ..]`
    BoolInList(Box<Cond>, Vec<bool>),
    /// `c in bits`
    BoolInSet(Box<Cond>),
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    Top,
    OrOperand,
    AndOperand,
    NotOperand,
    CompareOperand,
}

impl Cond {
    fn render(&self, place: Place) -> String {
        let wrap = |text: String, needs: bool| {
            if needs { format!("({text})") } else { text }
        };
        match self {
            Cond::Atom(text, compound) => {
                wrap(text.clone(), *compound && place == Place::CompareOperand)
            }
            Cond::Not(inner) => wrap(
                format!("not {}", inner.render(Place::NotOperand)),
                place == Place::CompareOperand,
            ),
            Cond::And(items) => wrap(
                items
                    .iter()
                    .map(|c| c.render(Place::AndOperand))
                    .collect::<Vec<_>>()
                    .join(" and "),
                matches!(place, Place::NotOperand | Place::CompareOperand),
            ),
            Cond::Or(items) => wrap(
                items
                    .iter()
                    .map(|c| c.render(Place::OrOperand))
                    .collect::<Vec<_>>()
                    .join(" or "),
                matches!(
                    place,
                    Place::AndOperand | Place::NotOperand | Place::CompareOperand
                ),
            ),
            Cond::Paren(inner) => format!("({})", inner.render(Place::Top)),
            Cond::BoolCompare(a, op, b) => wrap(
                format!(
                    "{} {op} {}",
                    a.render(Place::CompareOperand),
                    b.render(Place::CompareOperand)
                ),
                place == Place::CompareOperand,
            ),
            Cond::BoolInList(c, list) => wrap(
                format!(
                    "{} in [{}]",
                    c.render(Place::CompareOperand),
                    list.iter()
                        .map(bool::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                place == Place::CompareOperand,
            ),
            Cond::BoolInSet(c) => wrap(
                format!("{} in bits", c.render(Place::CompareOperand)),
                place == Place::CompareOperand,
            ),
        }
    }
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> BoxedStrategy<T> {
    select(items).boxed()
}

fn int_lit() -> BoxedStrategy<String> {
    pick(INTS).prop_map(|i| i.to_string()).boxed()
}

fn duration_lit() -> BoxedStrategy<String> {
    pick(DURATIONS).prop_map(format_duration).boxed()
}

fn string_lit() -> BoxedStrategy<String> {
    pick(STRINGS).prop_map(|(src, _)| src.to_string()).boxed()
}

/// A variant of `ty`, bare (`true`) or qualified.
fn variant(
    ty: &'static str,
    variants: &'static [&'static str],
    bare: bool,
) -> BoxedStrategy<String> {
    pick(variants)
        .prop_map(move |v| {
            if bare {
                v.to_string()
            } else {
                format!("{ty}::{v}")
            }
        })
        .boxed()
}

/// Operands of one type: `(text, needs_context)` where a bare variant needs
/// the other side to give its type.
fn operand(kind: Kind) -> BoxedStrategy<(String, bool)> {
    let typed = |s: BoxedStrategy<String>| s.prop_map(|t| (t, false)).boxed();
    match kind {
        Kind::Int => {
            prop_oneof![Just(("agent.depth".to_string(), false)), typed(int_lit())].boxed()
        }
        Kind::Duration => prop_oneof![
            Just(("task.elapsed".to_string(), false)),
            typed(duration_lit())
        ]
        .boxed(),
        Kind::Str => prop_oneof![
            Just(("agent.workload".to_string(), false)),
            typed(string_lit())
        ]
        .boxed(),
        Kind::Bool => select(&["flag", "task.approved", "ledger.degraded", "true", "false"][..])
            .prop_map(|t| (t.to_string(), false))
            .boxed(),
        Kind::Level => prop_oneof![
            select(&["level", "task.type"][..]).prop_map(|t| (t.to_string(), false)),
            variant("level", LEVELS, false).prop_map(|t| (t, false)),
            variant("level", LEVELS, true).prop_map(|t| (t, true)),
        ]
        .boxed(),
        Kind::Env => prop_oneof![
            Just(("env".to_string(), false)),
            variant("env", ENVS, false).prop_map(|t| (t, false)),
            variant("env", ENVS, true).prop_map(|t| (t, true)),
        ]
        .boxed(),
        Kind::SetStr => set_operand("task.labels", string_lit()),
        Kind::SetEnv => set_operand(
            "envs",
            prop_oneof![variant("env", ENVS, true), variant("env", ENVS, false)].boxed(),
        ),
        Kind::SetInt => set_operand("nums", int_lit()),
        Kind::SetBool => set_operand(
            "bits",
            select(&["true", "false"][..])
                .prop_map(str::to_string)
                .boxed(),
        ),
    }
}

/// A set attribute or a list literal standing for a set (the literal needs
/// the attribute on the other side).
fn set_operand(
    attr: &'static str,
    element: BoxedStrategy<String>,
) -> BoxedStrategy<(String, bool)> {
    prop_oneof![
        Just((attr.to_string(), false)),
        prop::collection::vec(element, 0..4)
            .prop_map(|items| (format!("[{}]", items.join(", ")), true)),
    ]
    .boxed()
}

/// `a OP b` of one kind: neither side needing context from the other
/// unless the other gives it.
fn comparison(kind: Kind, ops: &'static [&'static str]) -> BoxedStrategy<String> {
    (operand(kind), select(ops), operand(kind))
        .prop_filter("one side must give the type", |((_, a), _, (_, b))| {
            !(*a && *b)
        })
        .prop_map(|((a, _), op, (b, _))| format!("{a} {op} {b}"))
        .boxed()
}

const ORDERED: &[&str] = &["==", "!=", "<", "<=", ">", ">="];
const EQUALITY: &[&str] = &["==", "!="];

/// `x in [..]`, the needle an attribute or a literal; a bare variant needle
/// gets a qualified element to name its enum.
fn in_list(kind: Kind) -> BoxedStrategy<String> {
    let element = |kind: Kind| -> BoxedStrategy<String> {
        match kind {
            Kind::Int => int_lit(),
            Kind::Duration => duration_lit(),
            Kind::Str => string_lit(),
            Kind::Bool => select(&["true", "false"][..])
                .prop_map(str::to_string)
                .boxed(),
            Kind::Level => prop_oneof![
                variant("level", LEVELS, true),
                variant("level", LEVELS, false)
            ]
            .boxed(),
            Kind::Env => {
                prop_oneof![variant("env", ENVS, true), variant("env", ENVS, false)].boxed()
            }
            _ => Just("0".to_string()).boxed(),
        }
    };
    let qualified = match kind {
        Kind::Level => Some(("level", LEVELS)),
        Kind::Env => Some(("env", ENVS)),
        _ => None,
    };
    (
        operand(kind),
        prop::collection::vec(element(kind), 1..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |((needle, bare), mut items, index)| {
            match qualified {
                Some((ty, variants)) if bare && !items.iter().any(|i| i.contains("::")) => {
                    items.push(format!("{ty}::{}", index.get(variants)));
                }
                _ => {}
            }
            format!("{needle} in [{}]", items.join(", "))
        })
        .boxed()
}

/// `x in set_attr`.
fn in_set() -> BoxedStrategy<String> {
    prop_oneof![
        operand(Kind::Str).prop_map(|(n, _)| format!("{n} in task.labels")),
        operand(Kind::Env).prop_map(|(n, _)| format!("{n} in envs")),
        operand(Kind::Int).prop_map(|(n, _)| format!("{n} in nums")),
        operand(Kind::Bool).prop_map(|(n, _)| format!("{n} in bits")),
    ]
    .boxed()
}

fn matches() -> BoxedStrategy<String> {
    (operand(Kind::Str), pick(GLOBS))
        .prop_map(|((s, _), glob)| format!("{s} matches \"{glob}\""))
        .boxed()
}

fn atom() -> BoxedStrategy<Cond> {
    let compound = |s: BoxedStrategy<String>| s.prop_map(|t| Cond::Atom(t, true)).boxed();
    prop_oneof![
        2 => select(&["true", "false", "flag", "task.approved"][..])
            .prop_map(|t| Cond::Atom(t.to_string(), false)),
        2 => compound(comparison(Kind::Int, ORDERED)),
        2 => compound(comparison(Kind::Duration, ORDERED)),
        2 => compound(comparison(Kind::Level, ORDERED)),
        2 => compound(comparison(Kind::Env, EQUALITY)),
        2 => compound(comparison(Kind::Str, EQUALITY)),
        2 => compound(comparison(Kind::Bool, EQUALITY)),
        1 => compound(comparison(Kind::SetStr, EQUALITY)),
        1 => compound(comparison(Kind::SetEnv, EQUALITY)),
        1 => compound(comparison(Kind::SetInt, EQUALITY)),
        1 => compound(comparison(Kind::SetBool, EQUALITY)),
        1 => compound(in_list(Kind::Int)),
        1 => compound(in_list(Kind::Duration)),
        1 => compound(in_list(Kind::Str)),
        1 => compound(in_list(Kind::Bool)),
        1 => compound(in_list(Kind::Level)),
        1 => compound(in_list(Kind::Env)),
        3 => compound(in_set()),
        2 => compound(matches()),
    ]
    .boxed()
}

fn condition() -> BoxedStrategy<Cond> {
    atom()
        .prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                3 => inner.clone().prop_map(|c| Cond::Not(Box::new(c))),
                4 => prop::collection::vec(inner.clone(), 2..4).prop_map(Cond::And),
                4 => prop::collection::vec(inner.clone(), 2..4).prop_map(Cond::Or),
                1 => inner.clone().prop_map(|c| Cond::Paren(Box::new(c))),
                2 => (inner.clone(), select(EQUALITY), inner.clone())
                    .prop_map(|(a, op, b)| Cond::BoolCompare(Box::new(a), op, Box::new(b))),
                1 => (inner.clone(), prop::collection::vec(any::<bool>(), 1..3))
                    .prop_map(|(c, list)| Cond::BoolInList(Box::new(c), list)),
                1 => inner.prop_map(|c| Cond::BoolInSet(Box::new(c))),
            ]
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Policies.

#[derive(Clone, Debug)]
struct GenRule {
    allow: bool,
    /// `None` for `tool *`; else the patterns, written as a list when
    /// `list` (or when there are several).
    patterns: Option<Vec<&'static str>>,
    list: bool,
    condition: Option<Cond>,
    ttl: Option<u64>,
    uses: Option<u64>,
    approval: Option<&'static str>,
    id: bool,
    reason: bool,
}

#[derive(Clone, Debug)]
struct GenPolicy {
    default_ttl: Option<u64>,
    max_ttl: Option<u64>,
    rules: Vec<GenRule>,
}

fn rule() -> impl Strategy<Value = GenRule> {
    (
        prop::bool::weighted(0.7),
        prop::option::weighted(0.85, prop::collection::vec(pick(PATTERNS), 1..4)),
        any::<bool>(),
        prop::option::weighted(0.85, condition()),
        prop::option::weighted(0.7, select(&[30u64, 60, 120, 300, 3600][..])),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.3, select(&[1u64, 2, 5, 9_007_199_254_740_991][..])),
        prop::option::weighted(0.3, select(&["dba", "oncall", "sre"][..])),
    )
        .prop_map(
            |(allow, patterns, list, condition, ttl, id, reason, uses, approval)| GenRule {
                allow,
                patterns,
                list,
                condition,
                ttl: if allow { ttl } else { None },
                uses: if allow { uses } else { None },
                approval: if allow { approval } else { None },
                id,
                reason,
            },
        )
}

fn policy() -> impl Strategy<Value = GenPolicy> {
    (
        prop::option::of(select(&[60u64, 300][..])),
        prop::option::of(Just(3600u64)),
        prop::collection::vec(rule(), 1..13),
    )
        .prop_map(|(default_ttl, max_ttl, mut rules)| {
            // Without `default ttl`, every allow rule names its ttl.
            if default_ttl.is_none() {
                for rule in rules.iter_mut().filter(|r| r.allow && r.ttl.is_none()) {
                    rule.ttl = Some(90);
                }
            }
            GenPolicy {
                default_ttl,
                max_ttl,
                rules,
            }
        })
}

impl GenPolicy {
    fn text(&self) -> String {
        let mut text = DECLARATIONS.to_string();
        if let Some(ttl) = self.default_ttl {
            text.push_str(&format!("default ttl {}\n", format_duration(ttl)));
        }
        if let Some(ttl) = self.max_ttl {
            text.push_str(&format!("max ttl {}\n", format_duration(ttl)));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            text.push('\n');
            if rule.id {
                text.push_str(&format!("@id(\"rule-{i}\")\n"));
            }
            if rule.reason {
                text.push_str(&format!("@reason(\"reason {i}\")\n"));
            }
            text.push_str(if rule.allow { "allow" } else { "deny" });
            text.push_str(" tool ");
            match &rule.patterns {
                None => text.push('*'),
                Some(patterns) if patterns.len() == 1 && !rule.list => {
                    text.push_str(&format!("{:?}", patterns[0]));
                }
                Some(patterns) => text.push_str(&format!(
                    "[{}]",
                    patterns
                        .iter()
                        .map(|p| format!("{p:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
            if let Some(condition) = &rule.condition {
                text.push_str("\n    when ");
                text.push_str(&condition.render(Place::Top));
            }
            if let Some(ttl) = rule.ttl {
                text.push_str(&format!(" ttl {}", format_duration(ttl)));
            }
            if let Some(uses) = rule.uses {
                text.push_str(&format!(" uses {uses}"));
            }
            if let Some(group) = rule.approval {
                text.push_str(&format!(" approval {group:?}"));
            }
            text.push('\n');
        }
        text
    }
}

// ---------------------------------------------------------------------------
// Requests.

/// How a duration value is sent.
#[derive(Clone, Copy, Debug)]
enum DurationForm {
    Seconds,
    Text,
    Typed,
}

#[derive(Clone, Debug)]
enum ReqValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// Seconds, how they are sent, and their duration text.
    Duration(u64, DurationForm, String),
    Variant(&'static str),
    Set(Vec<ReqValue>),
}

#[derive(Clone, Debug)]
struct GenRequest {
    tool: String,
    /// One per [`ATTRS`] entry; `None` is absent.
    values: Vec<Option<ReqValue>>,
    ttl: Option<u64>,
    ttl_as_text: bool,
    /// Bits choosing, per attribute, the flat dotted key over nesting, and
    /// `null` over leaving an absent attribute out.
    flat: u32,
    nulls: u32,
}

fn string_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(STRINGS).prop_map(|(_, v)| v.to_string()),
        1 => "[a-cé*/:]{0,4}",
    ]
    .boxed()
}

fn int_value() -> BoxedStrategy<i64> {
    prop_oneof![3 => pick(INTS), 1 => any::<i64>()].boxed()
}

fn scalar_value(kind: Kind) -> BoxedStrategy<ReqValue> {
    match kind {
        Kind::Bool | Kind::SetBool => any::<bool>().prop_map(ReqValue::Bool).boxed(),
        Kind::Int | Kind::SetInt => int_value().prop_map(ReqValue::Int).boxed(),
        Kind::Str | Kind::SetStr => string_value().prop_map(ReqValue::Str).boxed(),
        Kind::Duration => (
            prop_oneof![3 => pick(DURATIONS), 1 => 0u64..100_000],
            select(
                &[
                    DurationForm::Seconds,
                    DurationForm::Text,
                    DurationForm::Typed,
                ][..],
            ),
        )
            .prop_map(|(d, form)| ReqValue::Duration(d, form, format_duration(d)))
            .boxed(),
        Kind::Level => pick(LEVELS).prop_map(ReqValue::Variant).boxed(),
        Kind::Env | Kind::SetEnv => pick(ENVS).prop_map(ReqValue::Variant).boxed(),
    }
}

fn value(kind: Kind) -> BoxedStrategy<ReqValue> {
    match kind {
        Kind::SetStr | Kind::SetEnv | Kind::SetInt | Kind::SetBool => {
            prop::collection::vec(scalar_value(kind), 0..4)
                .prop_map(ReqValue::Set)
                .boxed()
        }
        _ => scalar_value(kind),
    }
}

fn request() -> impl Strategy<Value = GenRequest> {
    let values: Vec<_> = ATTRS
        .iter()
        .map(|(_, kind)| prop::option::weighted(0.6, value(*kind)))
        .collect();
    (
        prop_oneof![3 => pick(TOOLS).prop_map(str::to_string), 1 => "[a-dé.*]{1,6}"],
        values,
        prop::option::weighted(0.4, select(&[1u64, 30, 60, 90, 300, 3600, 100_000][..])),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(tool, values, ttl, ttl_as_text, flat, nulls)| GenRequest {
            tool,
            values,
            ttl,
            ttl_as_text,
            flat,
            nulls,
        })
}

fn level_or_env_ordinal(name: &str) -> u32 {
    LEVELS
        .iter()
        .chain(ENVS)
        .position(|v| *v == name)
        .map(|i| {
            if i >= LEVELS.len() {
                i - LEVELS.len()
            } else {
                i
            }
        })
        .unwrap() as u32
}

impl ReqValue {
    fn reference(&self) -> RefValue {
        match self {
            ReqValue::Bool(b) => RefValue::Bool(*b),
            ReqValue::Int(i) => RefValue::Int(*i),
            ReqValue::Str(s) => RefValue::Str(s.clone()),
            ReqValue::Duration(d, _, _) => RefValue::Duration(*d),
            ReqValue::Variant(v) => RefValue::Enum(level_or_env_ordinal(v)),
            ReqValue::Set(items) => RefValue::Set(items.iter().map(ReqValue::reference).collect()),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            ReqValue::Bool(b) => json!(b),
            ReqValue::Int(i) => json!(i),
            ReqValue::Str(s) => json!(s),
            ReqValue::Duration(d, DurationForm::Seconds | DurationForm::Typed, _) => json!(d),
            ReqValue::Duration(_, DurationForm::Text, text) => json!(text),
            ReqValue::Variant(v) => json!(v),
            ReqValue::Set(items) => items.iter().map(ReqValue::json).collect(),
        }
    }

    /// The typed value; set elements are kept in `scratch`.
    fn typed<'a>(&'a self, scratch: &'a mut Vec<Value<'a>>) -> Value<'a> {
        match self {
            ReqValue::Bool(b) => Value::Bool(*b),
            ReqValue::Int(i) => Value::Int(*i),
            ReqValue::Str(s) => Value::Str(s),
            ReqValue::Duration(d, DurationForm::Typed, _) => Value::Duration(*d),
            ReqValue::Duration(d, DurationForm::Seconds, _) => Value::Int(*d as i64),
            // The typed setter takes duration strings too.
            ReqValue::Duration(_, DurationForm::Text, text) => Value::Str(text),
            ReqValue::Variant(v) => Value::Str(v),
            ReqValue::Set(items) => {
                scratch.extend(items.iter().map(|item| match item {
                    ReqValue::Bool(b) => Value::Bool(*b),
                    ReqValue::Int(i) => Value::Int(*i),
                    ReqValue::Str(s) => Value::Str(s),
                    ReqValue::Variant(v) => Value::Str(v),
                    ReqValue::Duration(d, _, _) => Value::Duration(*d),
                    ReqValue::Set(_) => Value::Set(&[]),
                }));
                Value::Set(scratch)
            }
        }
    }
}

impl GenRequest {
    fn reference_attrs(&self) -> BTreeMap<String, RefValue> {
        ATTRS
            .iter()
            .zip(&self.values)
            .filter_map(|((path, _), v)| Some((path.to_string(), v.as_ref()?.reference())))
            .collect()
    }

    fn json(&self) -> String {
        let mut attrs = serde_json::Map::new();
        // A group whose attributes are all absent may be sent as `null`
        // (and then none of them is sent on its own).
        let null_groups: Vec<&str> = [("task", 1 << 30), ("agent", 1 << 29)]
            .into_iter()
            .filter(|(group, bit)| {
                self.nulls & bit != 0
                    && ATTRS.iter().zip(&self.values).all(|((path, _), value)| {
                        value.is_none() || path.split_once('.').is_none_or(|(g, _)| g != *group)
                    })
            })
            .map(|(group, _)| group)
            .collect();
        for group in &null_groups {
            attrs.insert(group.to_string(), serde_json::Value::Null);
        }
        for (i, ((path, _), value)) in ATTRS.iter().zip(&self.values).enumerate() {
            let value = match value {
                Some(value) => value.json(),
                None if path
                    .split_once('.')
                    .is_some_and(|(group, _)| null_groups.contains(&group)) =>
                {
                    continue;
                }
                None if self.nulls & (1 << i) != 0 => serde_json::Value::Null,
                None => continue,
            };
            match path.split_once('.') {
                Some((group, rest)) if self.flat & (1 << i) == 0 => {
                    let object = attrs.entry(group.to_string()).or_insert_with(|| json!({}));
                    object
                        .as_object_mut()
                        .unwrap()
                        .insert(rest.to_string(), value);
                }
                _ => {
                    attrs.insert(path.to_string(), value);
                }
            }
        }
        let mut request = serde_json::Map::new();
        request.insert("tool".into(), json!(self.tool));
        if !attrs.is_empty() || self.flat & (1 << 31) != 0 {
            request.insert("attrs".into(), serde_json::Value::Object(attrs));
        }
        if let Some(ttl) = self.ttl {
            let ttl = if self.ttl_as_text {
                json!(format_duration(ttl))
            } else {
                json!(ttl)
            };
            request.insert("ttl".into(), ttl);
        }
        serde_json::Value::Object(request).to_string()
    }

    fn typed(&self, engine: &Engine) -> Request {
        let mut request = engine.request();
        request.set_tool(&self.tool);
        if let Some(ttl) = self.ttl {
            request.set_ttl(ttl);
        }
        for ((path, _), value) in ATTRS.iter().zip(&self.values) {
            let Some(value) = value else { continue };
            let attr = engine.attr(path).unwrap();
            let mut scratch = Vec::new();
            request.set(attr, value.typed(&mut scratch));
        }
        request
    }
}

// ---------------------------------------------------------------------------
// The comparison.

fn engine_of(text: &str) -> (Engine, RefPolicy) {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text);
    let checked = grant_check::check(&sources);
    assert!(
        !checked.has_errors(),
        "the generator wrote an invalid policy:\n{text}\n{:#?}",
        checked.errors().collect::<Vec<_>>()
    );
    let engine = Engine::from_sources(sources).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (engine, RefPolicy::read(text))
}

/// What the engine decided, in the reference's terms.
fn as_reference(decision: &Decision) -> RefDecision {
    let mut missing = decision.missing.clone();
    missing.sort();
    RefDecision {
        allow: decision.is_allow(),
        ttl: decision.ttl_seconds,
        rules: decision.rules.iter().map(|r| r.id.clone()).collect(),
        missing,
        uses: decision.obligations.as_ref().and_then(|o| o.uses),
        approvals: decision
            .obligations
            .as_ref()
            .map(|o| o.approvals.clone())
            .unwrap_or_default(),
    }
}

/// Decides `request` three ways; `Err` describes a disagreement.
fn compare(
    text: &str,
    engine: &Engine,
    policy: &RefPolicy,
    request: &GenRequest,
) -> Result<(), String> {
    let json = request.json();
    let typed_request = request.typed(engine);
    let mut json_request = engine.request();
    engine.read_json(&json, &mut json_request);
    // Normally, and as the ledger does while its store is unavailable.
    for degraded in [false, true] {
        let attrs = request.reference_attrs();
        let (mode, expected, typed, from_json) = if degraded {
            (
                "degraded",
                reference::decide_degraded(policy, &request.tool, &attrs, request.ttl),
                engine.decide_degraded(&typed_request),
                engine.decide_degraded(&json_request),
            )
        } else {
            (
                "normal",
                reference::decide(policy, &request.tool, &attrs, request.ttl),
                engine.decide(&typed_request),
                engine.decide_json(&json),
            )
        };
        let report = |what: &str| {
            format!(
                "{what} ({mode})\n--- policy ---\n{text}\n--- request ---\n{json}\n--- reference ---\n{expected:#?}\n--- engine (typed) ---\n{}\n--- engine (json) ---\n{}",
                serde_json::to_string_pretty(&typed).unwrap(),
                serde_json::to_string_pretty(&from_json).unwrap(),
            )
        };
        if !typed.errors.is_empty() || !from_json.errors.is_empty() {
            return Err(report("a generated request was invalid"));
        }
        if typed != from_json {
            return Err(report(
                "the typed and JSON requests were decided differently",
            ));
        }
        if typed.is_allow() != typed.obligations.is_some() {
            return Err(report(
                "an allow must carry obligations (maybe empty) and a deny none",
            ));
        }
        if as_reference(&typed) != expected {
            return Err(report("the engine and the reference disagree"));
        }
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("GRANT_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(400),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random policies, each with a batch of random requests.
    #[test]
    fn engine_agrees_with_reference(
        policy in policy(),
        requests in prop::collection::vec(request(), 24),
    ) {
        let text = policy.text();
        let (engine, checked) = engine_of(&text);
        for request in &requests {
            if let Err(message) = compare(&text, &engine, &checked, request) {
                prop_assert!(false, "{}", message);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Regressions and fixed checks of the oracle itself.

fn decide_both(text: &str, json: &str) -> (RefDecision, Decision) {
    let (engine, policy) = engine_of(&format!("{DECLARATIONS}{text}"));
    let request: serde_json::Value = serde_json::from_str(json).unwrap();
    let tool = request["tool"].as_str().unwrap();
    let mut attrs = BTreeMap::new();
    if let Some(given) = request["attrs"].as_object() {
        for (path, value) in given {
            let value = match value {
                serde_json::Value::Bool(b) => RefValue::Bool(*b),
                serde_json::Value::Number(n) => RefValue::Int(n.as_i64().unwrap()),
                serde_json::Value::String(s) => RefValue::Str(s.clone()),
                _ => panic!("flat scalar attrs only in these tests"),
            };
            attrs.insert(path.clone(), value);
        }
    }
    (
        reference::decide(&policy, tool, &attrs, None),
        engine.decide_json(json),
    )
}

/// Found by this test: a condition used as a comparison operand, such as
/// `(flag and task.approved) == true`, was compiled as the constant `false`,
/// so such a deny rule never applied (fail open) and such an allow never did.
#[test]
fn condition_as_comparison_operand() {
    let rules = "
deny tool \"deny.eq\" when (flag and task.approved) == true
deny tool \"deny.ne\" when (flag or task.approved) != false
deny tool \"deny.in\" when (flag or task.approved) in [true]
deny tool \"deny.set\" when (flag or task.approved) in bits
allow tool \"allow.eq\" when (flag and task.approved) == (flag or task.approved) ttl 1m
allow tool \"allow.both\" when (flag == task.approved) in [true, false] ttl 1m
";
    let cases = [
        (
            r#"{"tool":"deny.eq","attrs":{"flag":true,"task.approved":true}}"#,
            false,
        ),
        (
            r#"{"tool":"deny.ne","attrs":{"flag":true,"task.approved":false}}"#,
            false,
        ),
        (
            r#"{"tool":"deny.in","attrs":{"flag":false,"task.approved":true}}"#,
            false,
        ),
        (
            r#"{"tool":"allow.eq","attrs":{"flag":true,"task.approved":true}}"#,
            true,
        ),
        (
            r#"{"tool":"allow.eq","attrs":{"flag":false,"task.approved":false}}"#,
            true,
        ),
        (
            r#"{"tool":"allow.both","attrs":{"flag":false,"task.approved":true}}"#,
            true,
        ),
    ];
    for (json, allow) in cases {
        let (expected, decision) = decide_both(rules, json);
        assert_eq!(expected.allow, allow, "reference, {json}");
        assert_eq!(as_reference(&decision), expected, "{json}");
    }
    // `c in bits`: a deny whose needle is true and set holds true.
    let (engine, _) = engine_of(&format!("{DECLARATIONS}{rules}"));
    let decision = engine.decide_json(
        r#"{"tool":"deny.set","attrs":{"flag":true,"task.approved":false,"bits":[true]}}"#,
    );
    assert!(!decision.is_allow());
    assert_eq!(decision.rules.len(), 1);
    // An unknown needle makes `in` unknown, even in an empty set: the deny
    // applies and names the missing attributes.
    let decision = engine.decide_json(r#"{"tool":"deny.set","attrs":{"bits":[]}}"#);
    assert_eq!(decision.rules.len(), 1);
    assert_eq!(decision.missing, ["flag", "task.approved"]);
}

#[test]
fn reference_glob_matcher() {
    use reference::glob_match as m;
    assert!(m("db.*", "db."));
    assert!(m("db.*", "db.schema.drop"));
    assert!(!m("db.*", "db"));
    assert!(m("*", ""));
    assert!(m("a*b*c", "aXbYc"));
    assert!(!m("a*b*c", "acb"));
    assert!(!m("ab*ba", "aba"));
    assert!(m("é*", "é.read"));
    assert!(!m("db.read", "DB.READ"));
}

#[test]
fn reference_short_circuit_and_missing() {
    // `and` stops at its first false operand: `flag` is not read.
    let (expected, decision) = decide_both(
        "deny tool \"t\" when agent.depth > 1 and flag\nallow tool \"t\" ttl 1m\n",
        r#"{"tool":"t","attrs":{"agent.depth":0}}"#,
    );
    assert!(expected.allow && expected.missing.is_empty());
    assert_eq!(as_reference(&decision), expected);
    // Unknown, then false: false, nothing missing.
    let (expected, decision) = decide_both(
        "deny tool \"t\" when flag and agent.depth > 1\nallow tool \"t\" ttl 1m\n",
        r#"{"tool":"t","attrs":{"agent.depth":0}}"#,
    );
    assert!(expected.allow && expected.missing.is_empty());
    assert_eq!(as_reference(&decision), expected);
    // Comparisons read both sides: both missing attributes are named.
    let (expected, decision) = decide_both(
        "deny tool \"t\" when level > task.type\n",
        r#"{"tool":"t"}"#,
    );
    assert!(!expected.allow);
    assert_eq!(expected.missing, ["level", "task.type"]);
    assert_eq!(as_reference(&decision), expected);
}
