//! The human renderer on inputs built to stress it: long lines, labels far
//! apart, many labels, many diagnostics, wide and hostile characters. What
//! it prints must stay bounded by what a person can read, and nothing from
//! a source may reach the terminal raw.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_syntax::diagnostic::{Code, Diagnostic};
use grant_syntax::limits::shown;
use grant_syntax::render::{self, Human};
use grant_syntax::{SourceMap, Span};

fn one_file(text: &str) -> SourceMap {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text);
    sources
}

fn at(start: usize, end: usize) -> Span {
    Span::new(grant_syntax::FileId(0), start, end)
}

fn render(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    render::human(sources, diagnostics, false)
}

#[test]
fn a_long_line_is_cut_around_its_label() {
    // One 103 KB line, an error near its end.
    let text = format!("allow tool \"x\" when {} ttl 5m\n", "a and ".repeat(17_000));
    let at_error = text.rfind("ttl").unwrap();
    let sources = one_file(&text);
    let diagnostic = Diagnostic::new(Code::Syntax, at(at_error, at_error + 3), "unexpected `ttl`")
        .label("not expected here");
    let out = render(&sources, &[diagnostic]);
    insta::assert_snapshot!(out);
    let longest = out.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(longest < shown::LINE_CHARS + 20, "{longest}");
}

#[test]
fn many_diagnostics_on_one_long_line_stay_bounded() {
    let text = "a ".repeat(60_000);
    let sources = one_file(&text);
    let diagnostics: Vec<_> = (0..5_000)
        .map(|i| Diagnostic::new(Code::Syntax, at(i * 20, i * 20 + 1), "unexpected `a`"))
        .collect();
    let out = render(&sources, &diagnostics);
    // Each shown diagnostic is a few short lines; the rest are counted.
    assert!(
        out.len() < shown::DIAGNOSTICS * 1_000,
        "{} bytes",
        out.len()
    );
    let omitted = diagnostics.len() - shown::DIAGNOSTICS;
    assert!(
        out.ends_with(&format!(
            "note: {omitted} more diagnostics ({omitted} errors, 0 warnings) not shown; `--format json` lists every one\n"
        )),
        "{}",
        &out[out.len() - 300..]
    );
}

#[test]
fn the_budget_is_shared_by_the_policies_of_a_run() {
    let sources = one_file("allow tool \"x\" ttl 5m\n");
    let warning = Diagnostic::new(Code::UnusedAttribute, at(0, 5), "unused");
    let mut renderer = Human::new(false);
    for _ in 0..shown::DIAGNOSTICS + 3 {
        renderer.render(&sources, std::slice::from_ref(&warning));
    }
    assert_eq!(
        renderer.omitted_note().unwrap(),
        "note: 3 more diagnostics (0 errors, 3 warnings) not shown; `--format json` lists every one"
    );
}

#[test]
fn labels_far_apart_print_their_lines_only() {
    let mut text = String::from("type env = dev | prod\n");
    for _ in 0..50_000 {
        text.push_str("# filler\n");
    }
    let second = text.len() + 5;
    text.push_str("type env = a | b\n");
    let sources = one_file(&text);
    let diagnostic = Diagnostic::new(
        Code::DuplicateType,
        at(second, second + 3),
        "type `env` is declared twice",
    )
    .label("declared again here")
    .secondary(at(5, 8), "first declared here")
    .help("each type is declared once across all files of the policy");
    let out = render(&sources, &[diagnostic]);
    insta::assert_snapshot!(out);
    assert!(!out.contains("filler"));
}

#[test]
fn labels_past_the_cap_are_counted() {
    let text = "deny tool \"a\"\n".repeat(20);
    let sources = one_file(&text);
    let mut diagnostic = Diagnostic::new(Code::DuplicateRule, at(0, 4), "many duplicates");
    for i in 1..20 {
        diagnostic = diagnostic.secondary(at(i * 14, i * 14 + 4), "again");
    }
    let out = render(&sources, &[diagnostic]);
    insta::assert_snapshot!(out);
}

#[test]
fn hostile_characters_are_shown_escaped() {
    // An escape sequence and a bidi override inside a string, a NUL in the
    // message: all shown as escapes, and the underline still lines up.
    let text = "allow tool \"x\u{1b}[2J\u{202e}y\" when z ttl 5m\n";
    let sources = one_file(text);
    let z = text.find(" z ").unwrap() + 1;
    let diagnostic = Diagnostic::new(
        Code::UnknownAttribute,
        at(z, z + 1),
        "attribute `z\u{0}\u{1b}[31m` is not declared",
    )
    .label("undeclared \u{2028} attribute")
    .help("\u{1b}]0;title\u{7}");
    let out = render(&sources, &[diagnostic]);
    insta::assert_snapshot!(out);
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(!out.contains('\u{202e}') && !out.contains('\u{2028}'));
}

#[test]
fn wide_characters_and_tabs_keep_underlines_aligned() {
    let text = "allow tool \"数据.读\"\twhen z ttl 5m\n";
    let sources = one_file(text);
    let z = text.find(" z ").unwrap() + 1;
    let diagnostic = Diagnostic::new(
        Code::UnknownAttribute,
        at(z, z + 1),
        "attribute `z` is not declared",
    )
    .label("undeclared");
    insta::assert_snapshot!(render(&sources, &[diagnostic]));
}

#[test]
fn points_at_the_end_of_a_line_and_of_the_file() {
    let text = "allow tool \"x\" when\nallow tool";
    let sources = one_file(text);
    let diagnostics = [
        Diagnostic::new(
            Code::Syntax,
            at(19, 20),
            "expected an expression, found end of line",
        ),
        Diagnostic::new(
            Code::Syntax,
            at(text.len(), text.len()),
            "expected a tool pattern, found end of file",
        ),
    ];
    insta::assert_snapshot!(render(&sources, &diagnostics));
}

#[test]
fn a_label_over_many_lines_shows_its_first_and_last() {
    let text = "deny tool \"x\"\n    when a\n    or b\n    or c\n";
    let sources = one_file(text);
    let diagnostic = Diagnostic::new(
        Code::RuleTooCostly,
        at(0, text.len() - 1),
        "rule too costly",
    )
    .label("here");
    insta::assert_snapshot!(render(&sources, &[diagnostic]));
}

#[test]
fn colour_codes_come_from_the_renderer_only() {
    let text = "allow tool \"\u{1b}[31m\" when z ttl 5m\n";
    let sources = one_file(text);
    let z = text.find(" z ").unwrap() + 1;
    let diagnostic = Diagnostic::new(Code::UnknownAttribute, at(z, z + 1), "unknown");
    let out = render::human(&sources, &[diagnostic], true);
    // Every ESC starts one of the renderer's own SGR sequences.
    for (i, _) in out.match_indices('\u{1b}') {
        let rest = &out[i..];
        assert!(
            [
                "\u{1b}[0m",
                "\u{1b}[1m",
                "\u{1b}[1;31m",
                "\u{1b}[1;33m",
                "\u{1b}[1;34m"
            ]
            .iter()
            .any(|sgr| rest.starts_with(sgr)),
            "{rest:?}"
        );
    }
    assert!(out.contains("\\u{1b}[31m"));
}
