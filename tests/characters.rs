//! Lines and characters (docs/language.md, "Lines and characters"): a line
//! ends at LF or CRLF only, and no character may make text look like code
//! that is not, or hide from the reader. The inputs are built here, not
//! checked in: editors and tools mangle files of invisible characters.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_engine::{Engine, PolicyError};
use grant_syntax::{Diagnostic, SourceMap, render};

fn sources(text: &str) -> SourceMap {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text);
    sources
}

fn check(text: &str) -> Vec<Diagnostic> {
    grant_compile::build(&sources(text)).diagnostics
}

fn codes(text: &str) -> Vec<&'static str> {
    codes_of(&check(text))
}

fn codes_of(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code.as_str()).collect()
}

fn rendered(text: &str) -> String {
    render::human(&sources(text), &check(text), false)
}

const HEAD: &str = "attr task.approved: bool\n";

/// The issue's own case: a deny that reads as code and is a comment.
#[test]
fn a_rule_hidden_in_a_comment_by_a_line_break_grant_does_not_see() {
    for (c, name) in [
        ('\r', "U+000D CARRIAGE RETURN"),
        ('\u{0B}', "U+000B LINE TABULATION"),
        ('\u{0C}', "U+000C FORM FEED"),
        ('\u{85}', "U+0085 NEXT LINE"),
        ('\u{2028}', "U+2028 LINE SEPARATOR"),
        ('\u{2029}', "U+2029 PARAGRAPH SEPARATOR"),
    ] {
        let text = format!(
            "{HEAD}# guard:{c}deny tool \"payments.*\"\nallow tool \"payments.refund\" when task.approved ttl 5m\n"
        );
        let diagnostics = check(&text);
        assert_eq!(codes_of(&diagnostics), ["G0108"], "{name}");
        assert!(
            diagnostics[0]
                .message
                .starts_with(&format!("{name} in a comment")),
            "{}",
            diagnostics[0].message
        );
        // The policy is refused: nothing is decided under it.
        let refused = Engine::from_sources(sources(&text));
        assert!(
            matches!(refused, Err(PolicyError::Invalid { .. })),
            "{name}"
        );
    }
    let text = format!("{HEAD}# guard:\u{2028}deny tool \"payments.*\"\n");
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn hidden_line_breaks_in_code_and_strings() {
    // Both rules are on line 1 as Grant reads it, so their generated ids
    // collide too.
    assert_eq!(
        codes("allow tool \"a\" ttl 5m\rdeny tool \"a\"\n"),
        ["G0108", "G0209"]
    );
    let text = "allow tool \"a\u{2028}b\" ttl 5m\n";
    assert_eq!(codes(text), ["G0108"]);
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn crlf_line_endings_are_line_endings() {
    let text = format!("{HEAD}# a comment\r\nallow tool \"a\" when task.approved ttl 5m\r\n");
    assert_eq!(codes(&text), Vec::<&str>::new());
    let lf = text.replace("\r\n", "\n");
    let engine = Engine::from_sources(sources(&text)).unwrap();
    let engine_lf = Engine::from_sources(sources(&lf)).unwrap();
    let request = r#"{"tool": "a", "attrs": {"task": {"approved": true}}}"#;
    let (crlf, lf) = (engine.decide_json(request), engine_lf.decide_json(request));
    assert!(crlf.is_allow());
    // The same rule, on the same line.
    assert_eq!(crlf.rules[0].id, lf.rules[0].id);
}

/// Trojan Source (CVE-2021-42574): bidi controls anywhere.
#[test]
fn bidirectional_controls_are_refused_everywhere() {
    for control in [
        '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
    ] {
        for text in [
            format!("# note {control}\n"),
            format!("allow tool \"a{control}\" ttl 5m\n"),
            format!("allow tool \"a\" ttl 5m {control}\n"),
        ] {
            assert_eq!(codes(&text), ["G0109"], "{text:?}");
        }
    }
    let text =
        format!("{HEAD}deny tool \"payments.*\" when not task.approved # \u{202e} }} \u{2066}\n");
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn zero_width_characters_are_refused_outside_strings_and_linted_inside() {
    for zero_width in ['\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}'] {
        assert_eq!(codes(&format!("# a{zero_width}b\n")), ["G0110"]);
        assert_eq!(
            codes(&format!("allow{zero_width} tool \"a\" ttl 5m\n")),
            ["G0110"]
        );
    }
    // In a string: a warning, and the policy loads.
    let text = "allow tool \"db.re\u{200b}ad\" ttl 5m\n";
    let diagnostics = check(text);
    assert_eq!(codes_of(&diagnostics), ["G0907"]);
    assert!(!diagnostics[0].is_error());
    assert!(Engine::from_sources(sources(text)).is_ok());
    insta::assert_snapshot!(rendered(text));
    // Other invisible characters: in a string too; a comment may hold an
    // emoji's variation selector.
    assert_eq!(codes("allow tool \"a\u{ad}b\" ttl 5m\n"), ["G0907"]);
    assert_eq!(
        codes("# careful \u{26a0}\u{fe0f}\nallow tool \"a\" ttl 5m\n"),
        Vec::<&str>::new()
    );
}

#[test]
fn control_characters_are_refused_with_their_names() {
    let text = "# \u{1b}[1A\u{1b}[2K hidden\nallow tool \"a\" ttl 5m\n";
    let diagnostics = check(text);
    assert_eq!(codes_of(&diagnostics), ["G0110", "G0110"]);
    assert!(
        diagnostics[0].message.contains("U+001B ESCAPE"),
        "{}",
        diagnostics[0].message
    );
    insta::assert_snapshot!(rendered(text));
    assert_eq!(codes("allow tool \"a\" when \0 ttl 5m\n"), ["G0110"]);
    assert_eq!(codes("allow tool \"a\u{7f}\" ttl 5m\n"), ["G0110"]);
    // A tab is whitespace, in code and in strings.
    assert_eq!(codes("allow\ttool \"a\tb\" ttl 5m\n"), Vec::<&str>::new());
}

#[test]
fn a_byte_order_mark_opening_a_file_is_ignored() {
    let text = format!("\u{feff}{HEAD}allow tool \"a\" when task.approved ttl 5m\n");
    assert_eq!(codes(&text), Vec::<&str>::new());
    let engine = Engine::from_sources(sources(&text)).unwrap();
    let decision = engine.decide_json(r#"{"tool": "a", "attrs": {"task.approved": true}}"#);
    assert_eq!(decision.rules[0].id, "policy.grant:2");
    // Columns on the first line do not count it.
    let typo = "\u{feff}atr x: bool\n";
    let diagnostic = &check(typo)[0];
    assert_eq!(
        sources(typo).location(diagnostic.primary.span),
        "policy.grant:1:1"
    );
    // The formatter keeps it.
    let formatted = grant_fmt::format(&format!(
        "\u{feff}{HEAD}allow  tool \"a\" when task.approved ttl 5m"
    ))
    .unwrap();
    assert_eq!(
        formatted,
        format!("\u{feff}{HEAD}allow tool \"a\" when task.approved ttl 5m\n")
    );
    // Anywhere else it is a zero-width character.
    assert_eq!(codes(&format!("{HEAD}\u{feff}\n")), ["G0110"]);
}

/// The same characters that are errors in files are shown escaped when
/// rendered, so that a diagnostic cannot itself hide or reorder text.
#[test]
fn rendered_diagnostics_never_carry_the_characters_raw() {
    let text = "# \u{202e}\u{2028}\u{1b}[2J\u{200b}\nallow tool \"\u{202e}\" when x ttl 5m\n";
    let out = rendered(text);
    assert!(
        !out.chars()
            .any(|c| grant_syntax::chars::needs_escape(c) && c != '\n'),
        "{out:?}"
    );
}
