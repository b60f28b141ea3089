//! Bad input gets diagnostics or a clean error, never a panic or a stack
//! overflow: deep nesting, huge files, NUL bytes, broken strings, and random
//! or mutated text (property tests).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_syntax::{Code, SourceMap};
use grant_tests::{grant, root};
use proptest::prelude::*;

/// Checks `text`, and renders what it found for people and for machines:
/// the renderer, too, must take any span over any text.
fn check_text(text: &str) -> grant_check::Checked {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text);
    let checked = grant_check::check(&sources);
    let _ = grant_syntax::render::human(&sources, &checked.diagnostics, true);
    for diagnostic in &checked.diagnostics {
        let _ = grant_syntax::render::JsonDiagnostic::of(&sources, diagnostic);
    }
    checked
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

#[test]
fn every_byte_alone() {
    for byte in 0u8..=127 {
        let text = String::from(byte as char);
        let _ = check_text(&text);
        let _ = check_text(&format!("allow tool \"x\" when a {text} b ttl 5m"));
    }
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
const PIECES: &[&str] = &[
    "allow",
    "deny",
    "tool",
    "when",
    "ttl",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "true",
    "false",
    "type",
    "attr",
    "default",
    "max",
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
    fn random_token_soup_never_panics(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..60)) {
        let _ = check_text(&pieces.join(" "));
        let _ = check_text(&pieces.concat());
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = check_text(&text);
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..64,
        cut in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in prop::sample::select(PIECES),
    ) {
        let texts = example_texts();
        let text = &texts[which % texts.len()];
        let mut start = cut.index(text.len() + 1);
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{insert}{}", &text[..start], &text[end..]);
        let _ = check_text(&mutated);
    }
}

#[test]
fn file_too_large_code_is_stable() {
    assert_eq!(Code::FileTooLarge.as_str(), "G0107");
}

/// Many syntax errors in one file: each is reported, and the work per error
/// stays bounded by its item (pest's error reporting is linear in its input,
/// so the parser never hands it the rest of the file).
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
