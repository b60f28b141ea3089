//! Policies built from grammar-ish tokens: the fuzzer's bytes choose a list of
//! keywords, names, strings, numbers, durations, operators and brackets, and
//! whether a prelude of declarations comes first. Raw bytes mostly stop at
//! the first syntax error; token sequences get through the parser and, with
//! the prelude declaring the names they use, into name resolution, typing and
//! the ttl and lint passes. Parse, check and render must never panic.

#![no_main]

use std::fmt::Write;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
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

#[rustfmt::skip]
const OPERATORS: &[&str] = &[
    "==", "!=", "<", "<=", ">", ">=", "=", "|", ":", "::", ".", ",", "*", "-", "@", "#",
];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Unit {
    S,
    M,
    H,
    D,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::S => "s",
            Unit::M => "m",
            Unit::H => "h",
            Unit::D => "d",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Bracket {
    Paren,
    Square,
    Angle,
}

#[derive(Arbitrary, Debug)]
enum Token {
    Keyword(u8),
    Name(u8),
    /// `a.b`, with a keyword or name as the second segment.
    Path(u8, u8),
    /// `type::variant`.
    Variant(u8, u8),
    Str(u8),
    /// An unterminated string, to the end of the line.
    OpenStr(u8),
    Int(i64),
    /// Small numbers, with `_` separators when the flag is set.
    SmallInt(u16, bool),
    /// Out of i64 range.
    HugeInt,
    /// `1h30m`-style: one to three groups, units in any order.
    Duration(u32, Unit, Option<(u16, Unit)>, Option<(u8, Unit)>),
    Operator(u8),
    Open(Bracket),
    Close(Bracket),
    Annotation(u8, u8),
    /// `set<T>`, nested `depth % 40` times: around the nesting limit.
    SetType(u8, u8),
    /// `(((` ... `)))` or `not not ...` runs around the nesting limit.
    Nested(u8, bool),
    Newline,
    Comment,
    /// A single character, ASCII or not.
    Char(char),
}

#[derive(Arbitrary, Debug)]
struct Input {
    prelude: bool,
    /// Join tokens with nothing between them instead of spaces.
    glued: bool,
    tokens: Vec<Token>,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn render(input: &Input) -> String {
    let mut out = String::new();
    if input.prelude {
        out.push_str(PRELUDE);
    }
    for token in &input.tokens {
        match token {
            Token::Keyword(i) => out.push_str(pick(KEYWORDS, *i)),
            Token::Name(i) => out.push_str(pick(NAMES, *i)),
            Token::Path(a, b) => {
                let second = if b % 2 == 0 {
                    pick(KEYWORDS, b / 2)
                } else {
                    pick(NAMES, b / 2)
                };
                let _ = write!(out, "{}.{second}", pick(NAMES, *a));
            }
            Token::Variant(t, v) => {
                let _ = write!(out, "{}::{}", pick(NAMES, *t), pick(NAMES, *v));
            }
            Token::Str(i) => {
                let _ = write!(out, "\"{}\"", pick(STRINGS, *i));
            }
            Token::OpenStr(i) => {
                let _ = writeln!(out, "\"{}", pick(STRINGS, *i));
            }
            Token::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Token::SmallInt(n, underscores) => {
                if *underscores {
                    let digits = n.to_string();
                    for (k, c) in digits.chars().enumerate() {
                        if k > 0 && (digits.len() - k) % 3 == 0 {
                            out.push('_');
                        }
                        out.push(c);
                    }
                } else {
                    let _ = write!(out, "{n}");
                }
            }
            Token::HugeInt => out.push_str("99999999999999999999"),
            Token::Duration(n, unit, second, third) => {
                let _ = write!(out, "{n}{}", unit.as_str());
                if let Some((n, unit)) = second {
                    let _ = write!(out, "{n}{}", unit.as_str());
                }
                if let Some((n, unit)) = third {
                    let _ = write!(out, "{n}{}", unit.as_str());
                }
            }
            Token::Operator(i) => out.push_str(pick(OPERATORS, *i)),
            Token::Open(b) => out.push(match b {
                Bracket::Paren => '(',
                Bracket::Square => '[',
                Bracket::Angle => '<',
            }),
            Token::Close(b) => out.push(match b {
                Bracket::Paren => ')',
                Bracket::Square => ']',
                Bracket::Angle => '>',
            }),
            Token::Annotation(name, value) => {
                let _ = write!(
                    out,
                    "@{}(\"{}\")",
                    pick(NAMES, *name),
                    pick(STRINGS, *value)
                );
            }
            Token::SetType(depth, inner) => {
                let depth = usize::from(depth % 40);
                out.push_str(&"set<".repeat(depth));
                out.push_str(pick(NAMES, *inner));
                out.push_str(&">".repeat(depth));
            }
            Token::Nested(depth, parens) => {
                let depth = usize::from(*depth % 40);
                if *parens {
                    let _ = write!(out, "{}true{}", "(".repeat(depth), ")".repeat(depth));
                } else {
                    let _ = write!(out, "{}true", "not ".repeat(depth));
                }
            }
            Token::Newline => out.push('\n'),
            Token::Comment => out.push_str("# comment\n"),
            Token::Char(c) => out.push(*c),
        }
        if !input.glued {
            out.push(' ');
        }
    }
    out
}

fuzz_target!(|input: Input| {
    common::parse_check_render(&render(&input));
});
