//! `grant fmt`: one canonical layout for Grant policies.
//!
//! [`format`] takes the text of a `.grant` file and returns it laid out the
//! one way Grant lays policies out, with every comment kept where it was.
//! It works from the trivia-keeping token stream of
//! [`grant_syntax::lexer`], guided by the grammar; a file that does not
//! parse is refused, never guessed at.
//!
//! ```
//! let messy = "attr task.approved:bool   # set by the ticketing system\n\n\n\
//!              @id( \"gh-push\" ) allow tool[ \"github.push_files\" ]when task.approved ttl 15m";
//! assert_eq!(
//!     grant_fmt::format(messy).unwrap(),
//!     "attr task.approved: bool  # set by the ticketing system\n\
//!      \n\
//!      @id(\"gh-push\")\n\
//!      allow tool [\"github.push_files\"] when task.approved ttl 15m\n"
//! );
//! ```
//!
//! The layout, in short (docs/language.md, "Formatting", has it in full):
//!
//! - one item per line: declarations always on one line; annotations each on
//!   a line of their own before their rule;
//! - a rule on one line when it fits in [`MAX_WIDTH`] columns; otherwise
//!   `when` and `ttl` on continuation lines indented four spaces, a pattern
//!   list that does not fit one string per line (each with a comma), and a
//!   `when` line that does not fit broken before each top-level `or` (or,
//!   failing that, `and`), the operator leading a line indented eight;
//! - single spaces between tokens, none inside `()` and `[]`, around `.`,
//!   `::`, after `@`, before `,` and `:`, nor inside `set<...>`; no trailing
//!   comma in a list on one line, one after every string of a broken pattern
//!   list, and a pattern list written with a trailing comma kept broken;
//! - at most one blank line between items, none at the start, one newline at
//!   the end;
//! - own-line comments keep their line, indented like the code they precede;
//!   trailing comments stay after their code, two spaces after it, or aligned
//!   across consecutive one-line items.
//!
//! Architecture invariant: formatting never changes meaning. Before
//! returning, [`format`] parses its own output and compares it with the
//! input: the same AST (spans aside) and the same comments in the same
//! order, or a [`FormatError::Internal`] instead of the text.

mod items;
mod layout;
mod trivia;
mod verify;

use grant_syntax::parser::parse_file;
use grant_syntax::{Diagnostic, FileId};

pub use layout::MAX_WIDTH;

/// Why a text was not formatted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The text does not parse; it is left as it is.
    #[error("the file does not parse")]
    Parse(ParseError),
    /// The formatter would have changed the policy: a bug in the formatter,
    /// caught before any text is returned.
    #[error("the formatter failed on this file: {}", .0.reason)]
    Internal(InternalError),
}

/// The diagnostics of a text that does not parse. Their spans are in
/// [`FileId`] `0`.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub diagnostics: Vec<Diagnostic>,
}

/// A formatter bug, described.
#[derive(Debug, Clone)]
pub struct InternalError {
    pub reason: &'static str,
}

/// The comment that exempts a file from formatting, on a line of its own
/// among the comments before its first item: for generated files, and for
/// test inputs whose layout (or brokenness) is the point. (The parser
/// warns of near misses, G0910.)
pub use grant_syntax::parser::SKIP_DIRECTIVE;

/// Whether `text` carries [`SKIP_DIRECTIVE`] before its first item.
pub fn is_exempt(text: &str) -> bool {
    without_bom(text)
        .1
        .lines()
        .map(str::trim)
        .take_while(|line| line.is_empty() || line.starts_with('#'))
        .any(|line| line == SKIP_DIRECTIVE)
}

/// Formats one file: the text in canonical layout, or why it cannot be.
/// Formatting is idempotent: `format(format(x)) == format(x)`. A file
/// exempt by [`SKIP_DIRECTIVE`] comes back unchanged, parsed or not.
/// A byte-order mark opening the file is kept as it is.
pub fn format(text: &str) -> Result<String, FormatError> {
    if is_exempt(text) {
        return Ok(text.to_string());
    }
    let parsed = parse_file(FileId(0), text);
    if parsed.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(FormatError::Parse(ParseError {
            diagnostics: parsed.diagnostics,
        }));
    }
    let (bom, body) = without_bom(text);
    let internal = |reason| FormatError::Internal(InternalError { reason });
    let tokens = trivia::attach(body).ok_or(internal("a character the lexer does not know"))?;
    let items = items::split(&tokens.toks).ok_or(internal("tokens not shaped like items"))?;
    let formatted = layout::layout(&tokens, &items);
    verify::check(body, &parsed.file, &formatted).map_err(internal)?;
    Ok(format!("{bom}{formatted}"))
}

/// The byte-order mark opening `text` (or "") and the text after it.
fn without_bom(text: &str) -> (&str, &str) {
    let bom = grant_syntax::chars::BYTE_ORDER_MARK;
    match text.strip_prefix(bom) {
        Some(body) => (text.get(..bom.len_utf8()).unwrap_or(""), body),
        None => ("", text),
    }
}
