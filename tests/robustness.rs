//! Bad input gets diagnostics or a clean error, never a panic or a stack
//! overflow: deep nesting, huge files, NUL bytes, broken strings, and random
//! or mutated text (property tests).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_syntax::ast::{Expr, ExprKind, Item, TypeExpr};
use grant_syntax::lexer::{self, Keyword, Token};
use grant_syntax::parser::parse_file;
use grant_syntax::{FileId, SourceMap, Span};
use grant_tests::{grant, root};
use proptest::prelude::*;

/// Checks `text`, renders what it found for people and for machines (the
/// renderer, too, must take any span over any text), and asserts what the
/// fuzz targets (fuzz/) assert: every span of every diagnostic and of every
/// AST node is a slice of the text, and the parser is never silent about
/// text it did not turn into an item.
fn check_text(text: &str) -> grant_check::Checked {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text);
    let checked = grant_check::check(&sources);
    let human = grant_syntax::render::human(&sources, &checked.diagnostics, true);
    assert!(checked.diagnostics.is_empty() || !human.is_empty());
    for diagnostic in &checked.diagnostics {
        assert_slice(text, diagnostic.primary.span);
        for label in &diagnostic.secondary {
            assert_slice(text, label.span);
        }
        let json = grant_syntax::render::JsonDiagnostic::of(&sources, diagnostic);
        assert!(json.location.line >= 1 && json.location.column >= 1);
    }
    parser_invariants(text);
    checked
}

fn assert_slice(text: &str, span: Span) {
    assert_eq!(span.file, FileId(0), "{span:?}");
    assert!(
        span.start <= span.end && text.get(span.range()).is_some(),
        "span {span:?} is not a slice of the {}-byte text {text:?}",
        text.len()
    );
}

/// Every AST span is a slice of the text; a parse without errors covers
/// every code token with an item (nothing dropped in silence).
fn parser_invariants(text: &str) {
    let parsed = parse_file(FileId(0), text);
    let mut covered: Vec<Span> = Vec::new();
    for item in &parsed.file.items {
        let mut spans = Vec::new();
        match item {
            Item::Type(t) => {
                spans.extend([t.span, t.name.span]);
                spans.extend(t.variants.iter().map(|v| v.span));
            }
            Item::Attr(a) => {
                spans.extend([a.span, a.path.span]);
                spans.extend(a.path.segments().map(|s| s.span));
                type_spans(&a.ty, &mut spans);
            }
            Item::DefaultTtl(t) | Item::MaxTtl(t) => spans.extend([t.span, t.ttl.span]),
            Item::Rule(r) => {
                spans.extend([r.span, r.effect.span, r.pattern.span()]);
                for a in &r.annotations {
                    spans.extend([a.span, a.name.span, a.value.span]);
                    covered.push(a.span);
                }
                if let Some(condition) = &r.condition {
                    expr_spans(condition, &mut spans);
                }
                spans.extend(r.ttl.iter().map(|t| t.span));
                spans.extend(r.uses.iter().map(|t| t.span));
                spans.extend(r.approval.iter().map(|t| t.span));
            }
        }
        for &span in &spans {
            assert_slice(text, span);
        }
        covered.push(spans[0]);
    }
    if parsed.diagnostics.iter().any(|d| d.is_error()) {
        return;
    }
    for (token, range) in lexer::tokens(text) {
        if token.is_some_and(Token::is_trivia) {
            continue;
        }
        let inside = covered
            .iter()
            .any(|s| s.range().start <= range.start && range.end <= s.range().end);
        assert!(
            inside,
            "no error, yet {range:?} ({:?}) is in no item: {text:?}",
            &text[range.clone()]
        );
    }
}

fn type_spans(ty: &TypeExpr, spans: &mut Vec<Span>) {
    spans.push(ty.span());
    if let TypeExpr::Set(element, _) = ty {
        type_spans(element, spans);
    }
}

fn expr_spans(expr: &Expr, spans: &mut Vec<Span>) {
    spans.push(expr.span);
    match &expr.kind {
        ExprKind::List(items) | ExprKind::And(items) | ExprKind::Or(items) => {
            items.iter().for_each(|e| expr_spans(e, spans))
        }
        ExprKind::Not(inner) => expr_spans(inner, spans),
        ExprKind::Compare { op, lhs, rhs } => {
            spans.push(op.span);
            expr_spans(lhs, spans);
            expr_spans(rhs, spans);
        }
        ExprKind::Path(path) => {
            spans.push(path.span);
            spans.extend(path.segments().map(|s| s.span));
        }
        ExprKind::Variant { ty, variant } => spans.extend([ty.span, variant.span]),
        ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Str(_) | ExprKind::Duration(_) => {}
    }
}

fn codes(checked: &grant_check::Checked) -> Vec<&'static str> {
    checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

#[test]
fn hundred_thousand_nested_parentheses() {
    let text = format!(
        "deny tool * when {}true{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert_eq!(codes(&check_text(&text)), vec!["G0106"]);
}

#[test]
fn nesting_at_the_limit_is_accepted() {
    let depth = grant_syntax::limits::MAX_NESTING;
    let text = format!(
        "attr a: bool\ndeny tool * when {}a{}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert!(codes(&check_text(&text)).is_empty());
}

#[test]
fn hundred_thousand_nots_and_set_brackets() {
    let nots = format!("deny tool * when {}true", "not ".repeat(100_000));
    assert_eq!(codes(&check_text(&nots)), vec!["G0106"]);
    let sets = format!(
        "attr a: {}int{}",
        "set<".repeat(100_000),
        ">".repeat(100_000)
    );
    assert_eq!(codes(&check_text(&sets)), vec!["G0106"]);
}

#[test]
fn fifty_megabyte_source_is_refused_with_a_diagnostic() {
    let text = "# padding\n".repeat(5 * 1024 * 1024);
    let checked = check_text(&text);
    assert_eq!(codes(&checked), vec!["G0107"]);
    assert!(checked.diagnostics[0].message.contains("over the limit"));
}

#[test]
fn fifty_megabyte_file_is_refused_by_the_cli() {
    let dir = std::env::temp_dir().join(format!("grant-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.grant");
    std::fs::write(&path, "# padding\n".repeat(5 * 1024 * 1024)).unwrap();
    let run = grant(&["check", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("over the limit"), "{}", run.stderr);
}

#[test]
fn nul_byte() {
    let checked = check_text("allow tool \"a\" when \0 ttl 5m\n");
    assert_eq!(codes(&checked), vec!["G0110"]);
    assert!(
        checked.diagnostics[0].message.contains("U+0000"),
        "{}",
        checked.diagnostics[0].message
    );
}

#[test]
fn unterminated_string_at_end_of_file() {
    let checked = check_text("allow tool \"db.re");
    assert_eq!(codes(&checked), vec!["G0102"]);
    let checked = check_text("allow tool \"db.read\\");
    assert_eq!(codes(&checked), vec!["G0102"]);
}

/// Each ASCII character alone is an error, but for trivia (whitespace, a
/// line feed, an empty comment).
#[test]
fn every_byte_alone() {
    for byte in 0u8..=127 {
        let text = String::from(byte as char);
        let errors = check_text(&text).has_errors();
        assert_eq!(
            errors,
            !matches!(byte, b' ' | b'\t' | b'\n' | b'#'),
            "{text:?}"
        );
        let rule = format!("attr a: int\nattr b: int\ndeny tool \"x\" when a {text} b");
        let errors = check_text(&rule).has_errors();
        // Only a comparison operator (or `=`, a syntax error) fits there.
        assert!(errors || matches!(byte, b'<' | b'>'), "{rule:?}");
    }
}

/// The deepest accepted nesting parses and checks on a 1 MiB stack, in a
/// debug build too: the parser counts levels instead of recursing past
/// the limit.
#[test]
fn nesting_at_the_limit_fits_a_small_stack() {
    let depth = grant_syntax::limits::MAX_NESTING;
    let texts = [
        format!(
            "attr a: bool\ndeny tool * when {}a{}",
            "(".repeat(depth),
            ")".repeat(depth)
        ),
        format!("attr a: bool\ndeny tool * when {}a", "not ".repeat(depth)),
        format!("attr a: {}int{}", "set<".repeat(depth), ">".repeat(depth)),
        format!(
            "deny tool * when {}true{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
    ];
    let run = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            texts
                .iter()
                .map(|t| check_text(t).diagnostics.len())
                .collect::<Vec<_>>()
        })
        .unwrap();
    let counts = run.join().unwrap();
    // The set of sets is refused by the checker (G0212), not the parser.
    assert_eq!(counts[0], 0);
    assert_eq!(counts[1], 0);
    assert_eq!(counts[3], 1);
}

#[test]
fn not_utf8_is_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("grant-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.grant");
    std::fs::write(&path, b"allow tool \"\xff\" ttl 5m").unwrap();
    let run = grant(&["check", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
}

/// Pieces of grant text, so that random sequences get past the lexer and
/// exercise the parser and checker, not only the first-token error.
/// Every keyword, from the lexer's table, then the other pieces.
fn pieces() -> Vec<&'static str> {
    let others = [
        "\"db.*\"",
        "\"",
        "*",
        "[",
        "]",
        "(",
        ")",
        ",",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "|",
        ":",
        "::",
        ".",
        "@id",
        "@",
        "5m",
        "1h30m",
        "0s",
        "-3",
        "10_000",
        "99999999999999999999",
        "x",
        "env",
        "prod",
        "task.approved",
        "set",
        "<string>",
        "\\u{D800}",
        "\n",
        " ",
        "#c\n",
        "\0",
        "é",
        "\r",
        "\r\n",
        "\u{2028}",
        "\u{85}",
        "\u{202e}",
        "\u{200b}",
        "\u{feff}",
        "\u{1b}[2K",
        "\t",
        "数据",
        "sensitivity",
        "internal",
        "int",
        "bool",
        "string",
        "duration",
    ];
    Keyword::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(others)
        .collect()
}

fn example_texts() -> Vec<String> {
    grant_syntax::source::grant_files_under(&root().join("examples"))
        .unwrap()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_token_soup_keeps_the_invariants(pieces in prop::collection::vec(prop::sample::select(pieces()), 0..60)) {
        check_text(&pieces.join(" "));
        check_text(&pieces.concat());
    }

    #[test]
    fn random_text_keeps_the_invariants(text in "\\PC{0,200}") {
        check_text(&text);
    }

    #[test]
    fn mutated_examples_keep_the_invariants(
        which in 0usize..64,
        cut in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in prop::sample::select(pieces()),
    ) {
        let texts = example_texts();
        let text = &texts[which % texts.len()];
        let mut start = cut.index(text.len() + 1);
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{insert}{}", &text[..start], &text[end..]);
        check_text(&mutated);
    }
}

/// Many syntax errors in one file: each is reported, each costs its item.
#[test]
fn thousands_of_syntax_errors() {
    let text = "allow tool \"x\" when a == == b ttl 5m\n".repeat(5_000);
    let checked = check_text(&text);
    assert_eq!(checked.diagnostics.len(), 5_000);
    assert!(
        checked
            .diagnostics
            .iter()
            .all(|d| d.code.as_str() == "G0101")
    );
    let text = "allow tool \"x\" when\n".repeat(5_000);
    assert_eq!(check_text(&text).diagnostics.len(), 5_000);
}

/// Annotations on lines of their own, or after a rule on the same line,
/// belong to the next rule.
#[test]
fn annotations_before_a_rule_on_the_next_lines() {
    let text = "attr a: bool\n@id(\"one\")\n@reason(\n  \"two lines\")\nallow tool \"x\" when a ttl 5m\ndeny tool \"y\" @id(\"three\")\ndeny tool \"z\" when a\n";
    let checked = check_text(text);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let ids: Vec<&str> = checked.policy.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["one", "policy.grant:6", "three"]);
}
