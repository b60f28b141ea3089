//! Properties of `grant_fmt::format`, on every policy in the repository and
//! on generated ones: (a) the formatted text parses to the same AST, spans
//! aside; (b) formatting is idempotent; (c) every comment survives, in
//! order. Plus the layout's global rules (see `common::check_properties`).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use common::{ast, check_properties, corpus};
use grant_syntax::lexer::{Token, tokens};
use proptest::prelude::*;
use proptest::sample::select;

#[test]
fn every_policy_in_the_repository() {
    let mut formatted = 0;
    for path in corpus() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if ast(&text).is_none() {
            // Deliberately broken UI cases: refused, never rewritten.
            let refused = grant_fmt::format(&text);
            assert!(
                matches!(refused, Err(grant_fmt::FormatError::Parse(_))),
                "{}: {refused:?}",
                path.display()
            );
            continue;
        }
        check_properties(&path.display().to_string(), &text);
        formatted += 1;
    }
    assert!(formatted > 40, "only {formatted} files formatted");
}

#[test]
fn exempt_files_come_back_unchanged() {
    for text in [
        "# grant-fmt: skip\nallow tool \"x\" when a = = 1\n",
        "# why this file is odd\n\n# grant-fmt: skip\nattr a: bool\nallow  tool   \"x\"  when a ttl 5m\n",
    ] {
        assert!(grant_fmt::is_exempt(text));
        assert_eq!(grant_fmt::format(text).unwrap(), text);
    }
    // Only before the first item, and only as a whole comment line.
    for text in [
        "attr a: bool\n# grant-fmt: skip\nallow  tool \"x\" when a ttl 5m\n",
        "# grant-fmt: skip please\nattr  a: bool\n",
    ] {
        assert!(!grant_fmt::is_exempt(text));
        assert_ne!(grant_fmt::format(text).unwrap(), text);
    }
}

#[test]
fn refuses_what_does_not_parse() {
    for text in [
        "allow tool when",
        "attr a: int\nallow tool \"x\" when a = 1 ttl 5m\n",
        "deny tool \"x\" when \"open\n",
        "deny tool \"x\" when a == \"\\q\"\n",
        &format!("deny tool * when {}a{}", "(".repeat(70), ")".repeat(70)),
    ] {
        let Err(grant_fmt::FormatError::Parse(error)) = grant_fmt::format(text) else {
            panic!("formatted {text:?}")
        };
        assert!(!error.diagnostics.is_empty());
    }
}

#[test]
fn edge_cases() {
    for (input, expected) in [
        ("", ""),
        ("\n\n  \n", ""),
        ("# only a comment", "# only a comment\n"),
        ("\n\n# a\n\n\n\n# b  \n\n", "# a\n\n# b\n"),
        (
            "max ttl 1h\r\ndefault ttl 5m # why\r\n",
            "max ttl 1h\ndefault ttl 5m  # why\n",
        ),
        (
            "attr a : set < set < string > >",
            "attr a: set<set<string>>\n",
        ),
        (
            "type t=a<b<c type u=x|y",
            "type t = a < b < c\ntype u = x | y\n",
        ),
        (
            "deny tool*when not(a.b==t::v)and x in[1,-2,]",
            "deny tool * when not (a.b == t::v) and x in [1, -2]\n",
        ),
        (
            "@id ( \"x\" )@reason(\"y\")deny tool \"a\"",
            "@id(\"x\")\n@reason(\"y\")\ndeny tool \"a\"\n",
        ),
    ] {
        assert_eq!(check_properties(input, input), expected, "{input:?}");
    }
}

// ------------------------------------------------------------ perturbation

/// `text` with each run of whitespace replaced by another, chosen by
/// `choices`: newlines stay where a comment needs one, and may appear or
/// go elsewhere.
fn perturb(text: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let mut after_comment = false;
    let mut k = 0;
    let mut next_choice = || {
        k += 1;
        choices.get(k % choices.len().max(1)).copied().unwrap_or(0)
    };
    let mut flush = |run: &mut String, out: &mut String, after_comment: bool| {
        if run.is_empty() {
            return;
        }
        let needs_newline = after_comment;
        let replacement = match (needs_newline, next_choice() % 6) {
            (true, 0) => "\n\n\n",
            (true, 1) => "\n\t ",
            (true, _) => "\n",
            (false, 0) => "\n",
            (false, 1) => "\n\n",
            (false, 2) => " \t ",
            (false, 3) if !run.contains('\n') => "   ",
            _ => " ",
        };
        out.push_str(replacement);
        run.clear();
    };
    for (token, range) in tokens(text) {
        match token {
            Some(Token::Whitespace | Token::Newline) => run.push_str(&text[range]),
            _ => {
                flush(&mut run, &mut out, after_comment);
                after_comment = token == Some(Token::Comment);
                out.push_str(&text[range]);
            }
        }
    }
    if !run.is_empty() || after_comment {
        out.push('\n');
    }
    out
}

/// The files of the corpus that parse, read once.
fn parsing_corpus() -> &'static [(String, String)] {
    static CORPUS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        corpus()
            .into_iter()
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(p).unwrap_or_default(),
                )
            })
            // The 4,000-operand rule is slow to re-lay out 256 times.
            .filter(|(_, text)| text.len() < 20_000 && ast(text).is_some())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every file of the corpus, its whitespace shuffled: the same properties.
    #[test]
    fn corpus_with_other_whitespace(
        index in any::<prop::sample::Index>(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let corpus = parsing_corpus();
        let (name, text) = index.get(corpus);
        let perturbed = perturb(text, &choices);
        prop_assume!(ast(&perturbed).is_some());
        check_properties(name, &perturbed);
    }

    /// Generated policies with comments and odd whitespace between tokens.
    #[test]
    fn generated_policies(policy in policy()) {
        prop_assert!(ast(&policy).is_some(), "the generator made a bad policy:\n{policy}");
        check_properties("generated", &policy);
    }
}

// ------------------------------------------------------------ generator

/// Tokens of some items of the grammar, then joined with random trivia.
fn policy() -> impl Strategy<Value = String> {
    let items = prop::collection::vec(item(), 0..8)
        .prop_map(|items| items.into_iter().flatten().collect::<Vec<String>>());
    (
        items,
        prop::collection::vec(separator(), 64),
        select(vec!["", "\n", "\n\n", " # end\n", "# end"]),
        select(vec!["", "\n\n", "# head\n\n", "  "]),
    )
        .prop_map(|(tokens, separators, suffix, prefix)| {
            let mut text = prefix.to_string();
            let mut comment = 0;
            for (i, token) in tokens.iter().enumerate() {
                text.push_str(token);
                let Some(next) = tokens.get(i + 1) else { break };
                let mut separator = separators[i % separators.len()];
                if separator.is_empty() && wordish(token.chars().last(), next.chars().next()) {
                    separator = " ";
                }
                comment += 1;
                text.push_str(&separator.replace("{n}", &comment.to_string()));
            }
            text.push_str(suffix);
            text
        })
}

fn wordish(left: Option<char>, right: Option<char>) -> bool {
    let word =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    word(left) && word(right)
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just(" "),
        2 => Just(""),
        2 => Just("\n"),
        1 => Just("\n\n\n"),
        1 => Just(" \t "),
        2 => Just("  # c{n}\n"),
        1 => Just("#c{n}   \n"),
        2 => Just("\n# c{n}\n"),
        1 => Just("\n\n# c{n}\n\n#\n"),
    ]
}

fn tokens_of(text: &str) -> Vec<String> {
    text.split(' ').map(str::to_string).collect()
}

fn item() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        1 => type_decl(),
        1 => attr_decl(),
        1 => (select(vec!["default", "max"]), duration()).prop_map(|(w, d)| tokens_of(&format!("{w} ttl {d}"))),
        4 => rule(),
    ]
}

fn ident() -> impl Strategy<Value = &'static str> {
    select(vec![
        "a", "b", "env", "prod", "risk", "x_1", "_y", "tasks", "set",
    ])
}

fn duration() -> impl Strategy<Value = &'static str> {
    select(vec!["5m", "30s", "1h30m", "2d12h", "1d1h1m1s", "90m"])
}

fn type_decl() -> impl Strategy<Value = Vec<String>> {
    (ident(), prop::collection::vec(ident(), 1..5), any::<bool>()).prop_map(
        |(name, variants, ordered)| {
            let mut tokens = vec!["type".to_string(), name.to_string(), "=".to_string()];
            for (i, v) in variants.iter().enumerate() {
                if i > 0 {
                    tokens.push(if ordered { "<" } else { "|" }.to_string());
                }
                tokens.push(v.to_string());
            }
            tokens
        },
    )
}

fn path() -> impl Strategy<Value = &'static str> {
    select(vec![
        "task.approved",
        "a.b.c",
        "task.type",
        "change.max",
        "env",
        "x",
        "agent.delegation_depth",
        "t.when",
        "uses",
        "approval",
        "task.uses",
    ])
}

fn attr_decl() -> impl Strategy<Value = Vec<String>> {
    (path(), ident(), 0..3usize).prop_map(|(path, ty, sets)| {
        let mut tokens = vec!["attr".to_string(), path.to_string(), ":".to_string()];
        tokens.extend(std::iter::repeat_n(["set".to_string(), "<".to_string()], sets).flatten());
        tokens.push(ty.to_string());
        tokens.extend(std::iter::repeat_n(">".to_string(), sets));
        tokens
    })
}

fn string() -> impl Strategy<Value = &'static str> {
    select(vec![
        r#""db.read""#,
        r#""github.*""#,
        r#""a\"b""#,
        r#""\u{e9} # not a comment""#,
        r#""""#,
        r#""spiffe://prod/*""#,
    ])
}

fn rule() -> impl Strategy<Value = Vec<String>> {
    let annotation = (
        select(vec!["@id", "@reason", "@owner", "@max", "@type"]),
        string(),
    )
        .prop_map(|(name, value)| {
            vec![
                name.to_string(),
                "(".to_string(),
                value.to_string(),
                ")".to_string(),
            ]
        });
    let pattern = prop_oneof![
        Just(vec!["*".to_string()]),
        string().prop_map(|s| vec![s.to_string()]),
        (prop::collection::vec(string(), 0..6), any::<bool>())
            .prop_map(|(strings, comma)| list(strings, comma)),
    ];
    (
        prop::collection::vec(annotation, 0..3),
        select(vec!["allow", "deny"]),
        pattern,
        prop::option::of(expr()),
        prop::option::of(duration()),
        prop::option::of(select(vec!["1", "3", "10_000"])),
        prop::option::of(string()),
    )
        .prop_map(
            |(annotations, effect, pattern, when, ttl, uses, approval)| {
                let mut tokens: Vec<String> = annotations.into_iter().flatten().collect();
                tokens.push(effect.to_string());
                tokens.push("tool".to_string());
                tokens.extend(pattern);
                if let Some(when) = when {
                    tokens.push("when".to_string());
                    tokens.extend(when);
                }
                if let Some(ttl) = ttl {
                    tokens.push("ttl".to_string());
                    tokens.push(ttl.to_string());
                }
                if let Some(uses) = uses {
                    tokens.push("uses".to_string());
                    tokens.push(uses.to_string());
                }
                if let Some(group) = approval {
                    tokens.push("approval".to_string());
                    tokens.push(group.to_string());
                }
                tokens
            },
        )
}

/// `[a, b]`, with a trailing comma if `comma` and the list is not empty.
fn list<S: ToString>(items: Vec<S>, comma: bool) -> Vec<String> {
    let mut tokens = vec!["[".to_string()];
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            tokens.push(",".to_string());
        }
        tokens.push(item.to_string());
    }
    if comma && !items.is_empty() {
        tokens.push(",".to_string());
    }
    tokens.push("]".to_string());
    tokens
}

fn literal() -> impl Strategy<Value = &'static str> {
    select(vec![
        "true",
        "false",
        "0",
        "-3",
        "10_000",
        "9223372036854775807",
        "5m",
        "1h30m",
        "env::prod",
        "risk::high",
        r#""x""#,
        r#""a\\b""#,
    ])
}

fn primary() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        3 => path().prop_map(|p| vec![p.to_string()]),
        2 => literal().prop_map(|l| vec![l.to_string()]),
        1 => (prop::collection::vec(literal(), 0..4), any::<bool>()).prop_map(|(items, comma)| list(items, comma)),
    ]
    .boxed()
}

fn expr() -> impl Strategy<Value = Vec<String>> {
    primary().prop_recursive(3, 64, 4, |inner| {
        let primary = prop_oneof![
            3 => primary(),
            1 => inner.prop_map(|e| {
                let mut tokens = vec!["(".to_string()];
                tokens.extend(e);
                tokens.push(")".to_string());
                tokens
            }),
        ];
        let op = select(vec!["==", "!=", "<", "<=", ">", ">=", "in", "matches"]);
        let comparison =
            (primary.clone(), prop::option::of((op, primary))).prop_map(|(lhs, rest)| {
                let mut tokens = lhs;
                if let Some((op, rhs)) = rest {
                    tokens.push(op.to_string());
                    tokens.extend(rhs);
                }
                tokens
            });
        let not = (0..3usize, comparison).prop_map(|(nots, c)| {
            let mut tokens = vec!["not".to_string(); nots];
            tokens.extend(c);
            tokens
        });
        let and = prop::collection::vec(not, 1..4).prop_map(|operands| join(operands, "and"));
        prop::collection::vec(and, 1..4).prop_map(|operands| join(operands, "or"))
    })
}

fn join(operands: Vec<Vec<String>>, operator: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for (i, operand) in operands.into_iter().enumerate() {
        if i > 0 {
            tokens.push(operator.to_string());
        }
        tokens.extend(operand);
    }
    tokens
}
