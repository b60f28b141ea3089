//! Parser tests: every example parses cleanly, and every construct of the
//! language lowers to the expected AST (snapshotted, spans left out).

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_syntax::FileId;
use grant_syntax::parser::parse_file;
use grant_syntax::source::grant_files_under;
use grant_tests::{root, sexpr};

#[test]
fn every_example_parses_without_diagnostics() {
    let files = grant_files_under(&root().join("examples")).unwrap();
    assert!(files.len() >= 3, "expected the bundled examples");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse_file(FileId(0), &text);
        assert!(
            parsed.diagnostics.is_empty(),
            "{}: {:?}",
            path.display(),
            parsed.diagnostics
        );
        assert!(
            !parsed.file.items.is_empty(),
            "{} has no items",
            path.display()
        );
    }
}

#[test]
fn every_construct() {
    let text = std::fs::read_to_string(root().join("tests/parser/constructs.grant")).unwrap();
    let parsed = parse_file(FileId(0), &text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    insta::assert_snapshot!(sexpr(&parsed.file));
}

#[test]
fn spans_cover_the_source_they_came_from() {
    let text = "allow tool \"db.read\"\n  when sensitivity <= internal ttl 5m";
    let parsed = parse_file(FileId(3), text);
    let grant_syntax::ast::Item::Rule(rule) = &parsed.file.items[0] else {
        panic!("not a rule")
    };
    assert_eq!(rule.span.file, FileId(3));
    assert_eq!(&text[rule.effect.span.range()], "allow");
    assert_eq!(&text[rule.pattern.span().range()], "\"db.read\"");
    assert_eq!(
        &text[rule.condition.as_ref().unwrap().span.range()],
        "sensitivity <= internal"
    );
    assert_eq!(&text[rule.ttl.as_ref().unwrap().span.range()], "5m");
    assert_eq!(&text[rule.span.range()], text);
}

#[test]
fn not_binds_looser_than_comparison_and_tighter_than_and() {
    let parsed = parse_file(FileId(0), "deny tool * when not a == b and c or d");
    assert_eq!(
        sexpr(&parsed.file),
        "(deny * (or (and (not (== a b)) c) d))\n"
    );
}

#[test]
fn long_chains_stay_flat() {
    let chain = (0..5000)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join(" and ");
    let parsed = parse_file(FileId(0), &format!("deny tool * when {chain}"));
    assert!(parsed.diagnostics.is_empty());
    let grant_syntax::ast::Item::Rule(rule) = &parsed.file.items[0] else {
        panic!("not a rule")
    };
    let grant_syntax::ast::ExprKind::And(operands) = &rule.condition.as_ref().unwrap().kind else {
        panic!("not and")
    };
    assert_eq!(operands.len(), 5000);
}

#[test]
fn literal_values() {
    let parsed = parse_file(
        FileId(0),
        "deny tool * when a == 9223372036854775807 or a == -9223372036854775808 or d == 1d1h1m1s",
    );
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(
        sexpr(&parsed.file),
        "(deny * (or (== a 9223372036854775807) (== a -9223372036854775808) (== d 90061s)))\n"
    );
}
