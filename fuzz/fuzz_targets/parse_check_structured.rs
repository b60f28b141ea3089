//! Policies built from grammar-ish tokens: each fuzzer byte picks a keyword,
//! name, attribute path, variant, string, number, duration, operator,
//! bracket, annotation, deep nesting, stray character or a whole rule
//! snippet, and the first byte whether a prelude of declarations comes
//! first. Raw bytes mostly stop at the first syntax error; token sequences
//! get through the parser and, with the prelude declaring the names they use,
//! into name resolution, typing and the ttl and lint passes. Parse, check and
//! render must never panic.

#![no_main]

use std::fmt::Write;

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// Declarations that the names below refer to, so that conditions type-check
/// often enough for the later passes to run.
const PRELUDE: &str = "\
type sensitivity = public < internal < confidential < restricted
type env = dev | staging | prod
attr sensitivity: sensitivity
attr env: env
attr task.type: string
attr task.labels: set<string>
attr task.levels: set<sensitivity>
attr task.elapsed: duration
attr task.approved: bool
attr agent.delegation_depth: int
default ttl 5m
max ttl 1h
";

#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    "allow", "deny", "tool", "when", "ttl", "and", "or", "not", "in", "matches", "true", "false",
    "type", "attr", "default", "max", "set",
];

/// Declared and undeclared names: types, variants, attributes, builtins, and
/// near misses that exercise did-you-mean suggestions.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "sensitivity", "env", "public", "internal", "confidential", "restricted", "dev", "staging",
    "prod", "task", "agent", "approved", "type", "labels", "levels", "elapsed",
    "delegation_depth", "int", "bool", "string", "duration", "x", "y", "_", "sensitivty", "envv",
    "Prod", "only", "id", "reason", "owner",
];

#[rustfmt::skip]
const STRINGS: &[&str] = &[
    "", "db.read", "db.*", "*", "payments.*", "a", "ci-*", "**", "[", "\\\"", "\\\\", "\\n",
    "\\t", "\\u{e9}", "\\u{D800}", "\\u{110000}", "\\u{}", "\\q", "é", "pci",
];

/// Whole items and rule pieces.
#[rustfmt::skip]
const SNIPPETS: &[&str] = &[
    "allow tool \"db.read\" when sensitivity <= internal ttl 5m\n",
    "deny tool * when env == prod and not task.approved\n",
    "allow tool [\"a\", \"b.*\"] when task.type matches \"ci-*\" ttl 1h30m\n",
    "deny tool \"payments.*\" when agent.delegation_depth > 1\n",
    "allow tool \"x\" when \"pci\" in task.labels ttl 30s\n",
    "allow tool \"x\" when sensitivity::internal in task.levels ttl 1m\n",
    "allow tool \"x\" when task.elapsed < 90s ttl 2h\n",
    "allow tool \"x\" when env in [dev, env::staging] ttl 0s\n",
    "@id(\"r\") ",
    "@reason(\"why\") ",
    "type t = a | b\n",
    "type o = lo < mid < hi\n",
    "attr a: t\n",
    "attr a.b: set<o>\n",
    "attr a: int\n",
    "default ttl 2h\n",
    "max ttl 10m\n",
    "allow tool ",
    "deny tool ",
    " when ",
    " ttl 5m\n",
    "task.labels == [\"x\", \"y\"]",
    "agent.delegation_depth in [0, 1, 10_000, -3]",
    "sensitivity < confidential",
    "env != prod or task.approved",
    "[]",
    "[,]",
    "==",
    "and",
    "or",
    "not",
    "set<string>",
];

#[rustfmt::skip]
const OPERATORS: &[&str] = &[
    "==", "!=", "<", "<=", ">", ">=", "=", "|", ":", "::", ".", ",", "*", "-", "@", "#",
];

/// A policy text decoded from the fuzzer's bytes; its `Debug` is the text,
/// so `cargo fuzz fmt parse_check_structured ARTIFACT` shows the policy.
struct Policy(String);

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}\n--- as text ---\n{}", self.0, self.0)
    }
}

impl<'a> Arbitrary<'a> for Policy {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Policy(decode(u)))
    }
}

/// One byte per token for the common ones (so that short inputs are whole
/// rules, and libFuzzer's byte mutations swap one token for another); a few
/// kinds read their payload from the bytes after them.
fn decode(u: &mut Unstructured<'_>) -> String {
    let mut out = String::new();
    let flags = u.arbitrary::<u8>().unwrap_or(0);
    // Most inputs get the prelude; a few test undeclared everything.
    if flags & 0b11 != 0 {
        out.push_str(PRELUDE);
    }
    let glued = flags & 0b100 != 0;
    let byte = |u: &mut Unstructured<'_>| u.arbitrary::<u8>().unwrap_or(0);
    while !u.is_empty() {
        let b = byte(u);
        match b {
            0..=31 => out.push_str(pick(KEYWORDS, b)),
            32..=79 => out.push_str(pick(NAMES, b - 32)),
            80..=103 => {
                let _ = write!(out, "\"{}\"", pick(STRINGS, b - 80));
            }
            104..=135 => out.push_str(pick(OPERATORS, b - 104)),
            136..=143 => out.push(['(', ')', '[', ']', '<', '>', '(', ')'][usize::from(b - 136)]),
            144..=151 => out.push('\n'),
            152..=159 => {
                // `a.b`: a keyword or name as the second segment.
                let (first, second) = (byte(u), byte(u));
                let second = if second % 2 == 0 {
                    pick(KEYWORDS, second / 2)
                } else {
                    pick(NAMES, second / 2)
                };
                let _ = write!(out, "{}.{second}", pick(NAMES, first));
            }
            160..=167 => {
                let _ = write!(out, "{}::{}", pick(NAMES, byte(u)), pick(NAMES, byte(u)));
            }
            168..=175 => {
                // Durations: one to three groups, units in any order.
                let groups = 1 + b % 3;
                for _ in 0..groups {
                    let n = byte(u);
                    let unit = ["s", "m", "h", "d"][usize::from(n % 4)];
                    let _ = write!(out, "{}{unit}", n / 4);
                }
            }
            176..=183 => {
                // Small integers, some with `_` separators, some negative.
                let n = u.arbitrary::<u16>().unwrap_or(0);
                if b % 2 == 0 {
                    out.push('-');
                }
                let digits = n.to_string();
                for (k, c) in digits.chars().enumerate() {
                    if b % 4 >= 2 && k > 0 && (digits.len() - k).is_multiple_of(3) {
                        out.push('_');
                    }
                    out.push(c);
                }
            }
            184..=187 => {
                let _ = write!(out, "{}", u.arbitrary::<i64>().unwrap_or(0));
            }
            188 => out.push_str("99999999999999999999"),
            189..=195 => {
                let _ = write!(
                    out,
                    "@{}(\"{}\")",
                    pick(NAMES, byte(u)),
                    pick(STRINGS, byte(u))
                );
            }
            196..=203 => {
                // An unterminated string, to the end of the line.
                let _ = writeln!(out, "\"{}", pick(STRINGS, byte(u)));
            }
            204..=211 => {
                // `set<..>`, `(..)` and `not` runs around the nesting limit.
                let depth = usize::from(byte(u) % 40);
                match b % 3 {
                    0 => {
                        let _ = write!(out, "{}int{}", "set<".repeat(depth), ">".repeat(depth));
                    }
                    1 => {
                        let _ = write!(out, "{}true{}", "(".repeat(depth), ")".repeat(depth));
                    }
                    _ => {
                        let _ = write!(out, "{}true", "not ".repeat(depth));
                    }
                }
            }
            212..=215 => out.push_str("# comment\n"),
            216..=223 => {
                // Any one character.
                out.push(u.arbitrary::<char>().unwrap_or('\u{0}'));
            }
            // Whole rules and declarations, so short inputs reach the checker.
            224..=255 => out.push_str(pick(SNIPPETS, b - 224)),
        }
        if !glued {
            out.push(' ');
        }
    }
    out
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fuzz_target!(|policy: Policy| {
    common::parse_check_render(&policy.0);
});
