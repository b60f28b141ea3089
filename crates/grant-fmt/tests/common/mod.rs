//! What every formatted text must satisfy, checked independently of the
//! formatter's own safety net.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use grant_syntax::FileId;
use grant_syntax::lexer::{Token, tokens};
use grant_syntax::parser::parse_file;

/// The AST of `text` as a string with every span left out, or `None` if the
/// text does not parse.
pub fn ast(text: &str) -> Option<String> {
    let parsed = parse_file(FileId(0), text);
    if parsed.diagnostics.iter().any(|d| d.is_error()) {
        return None;
    }
    Some(without_spans(&format!("{:#?}", parsed.file)))
}

/// `Debug` output with each `Span { file: .., start: .., end: .. }` made `_`.
fn without_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(at) = rest.find("Span {") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after.find('}').unwrap();
        out.push('_');
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The comments of `text`, in order, without trailing whitespace.
pub fn comments(text: &str) -> Vec<String> {
    tokens(text)
        .filter(|(t, _)| *t == Some(Token::Comment))
        .map(|(_, r)| text[r].trim_end().to_string())
        .collect()
}

/// Formats `text` (which must parse) and checks the properties: the same
/// AST, idempotence, the same comments in order, and the layout's global
/// rules. Returns the formatted text.
pub fn check_properties(name: &str, text: &str) -> String {
    let before = ast(text).unwrap_or_else(|| panic!("{name}: the input does not parse"));
    let formatted = grant_fmt::format(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let after = ast(&formatted)
        .unwrap_or_else(|| panic!("{name}: the output does not parse:\n{formatted}"));
    assert_eq!(before, after, "{name}: the AST changed:\n{formatted}");
    assert_eq!(
        comments(text),
        comments(&formatted),
        "{name}: comments changed:\n{formatted}"
    );
    let again = grant_fmt::format(&formatted).unwrap();
    assert_eq!(
        formatted, again,
        "{name}: not idempotent; first:\n{formatted}"
    );
    layout_rules(name, &formatted);
    formatted
}

/// No trailing whitespace, no tabs, no blank line at the start or two in a
/// row, one newline at the end.
fn layout_rules(name: &str, formatted: &str) {
    if formatted.is_empty() {
        return;
    }
    assert!(
        formatted.ends_with('\n') && !formatted.ends_with("\n\n"),
        "{name}: end of file"
    );
    assert!(
        !formatted.starts_with('\n'),
        "{name}: blank line at the start"
    );
    assert!(
        !formatted.contains("\n\n\n"),
        "{name}: two blank lines in a row"
    );
    for line in formatted.lines() {
        assert_eq!(line, line.trim_end(), "{name}: trailing whitespace");
        let indent = line.len() - line.trim_start().len();
        assert!(
            !line[..indent].contains('\t') && indent % 4 == 0,
            "{name}: odd indentation in {line:?}"
        );
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `.grant` files of the examples, the UI cases, the parser test and
/// this crate's inputs, sorted.
/// Every `.grant` file in the repository that is not exempt from formatting
/// (`# grant-fmt: skip`, which deliberately broken or oddly laid out test
/// inputs carry).
pub fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "examples",
        "tests/ui",
        "tests/parser",
        "crates/grant-fmt/tests/inputs",
    ] {
        files.extend(grant_syntax::source::grant_files_under(&root().join(dir)).unwrap());
    }
    files.retain(|path| !grant_fmt::is_exempt(&std::fs::read_to_string(path).unwrap_or_default()));
    files.sort();
    files
}
