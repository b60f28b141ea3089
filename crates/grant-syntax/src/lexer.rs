//! A trivia-keeping lexer (logos), beside the pest parser. The parser does
//! not use it; it serves the checks that must run before pest sees a file
//! (nesting depth, unterminated strings, characters that can hide code) and
//! tools that need comments and layout, such as a formatter.
//!
//! Lines end at LF or CRLF and nowhere else ([`crate::chars`]): a comment
//! runs to the next LF whatever it holds, and [`check_characters`] reports
//! the characters that would make it look shorter.

use logos::Logos;

use crate::chars;

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    #[regex(r"[ \t]+")]
    Whitespace,
    /// LF or CRLF.
    #[regex(r"\r?\n")]
    Newline,
    /// A byte-order mark: trivia as a file's first character, an error
    /// anywhere else.
    #[token("\u{FEFF}")]
    Bom,
    /// To the next LF, whatever comes before it (a CR of a CRLF included).
    #[regex(r"#[^\n]*", allow_greedy = true)]
    Comment,
    #[regex(r#""([^"\\\n]|\\[^\n])*""#)]
    String,
    /// A string that reaches the end of its line (or file) without `"`.
    #[regex(r#""([^"\\\n]|\\[^\n])*\\?"#, priority = 1)]
    UnterminatedString,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Word,
    /// Integers and durations; the parser tells them apart.
    #[regex(r"-?[0-9][0-9_]*[smhdA-Za-z0-9_]*")]
    Number,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("=")]
    Eq,
    #[token("|")]
    Pipe,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("::")]
    ColonColon,
    #[token(".")]
    Dot,
    #[token("*")]
    Star,
    #[token("@")]
    At,
}

/// A token and its byte range; `None` for a character no token starts with.
pub fn tokens(text: &str) -> impl Iterator<Item = (Option<Token>, std::ops::Range<usize>)> + '_ {
    let mut lexer = Token::lexer(text);
    std::iter::from_fn(move || {
        let token = lexer.next()?;
        Some((token.ok(), lexer.span()))
    })
}

/// The problems found before parsing: the parser would fail on them with a
/// worse message, or (nesting) exhaust the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexProblem {
    UnterminatedString(std::ops::Range<usize>),
    /// The opening token that went past [`crate::limits::MAX_NESTING`].
    TooDeep(std::ops::Range<usize>),
}

/// Scans for unterminated strings and excessive nesting of parentheses,
/// `set<..>` and `not`. Stops at the first nesting problem: the rest of such
/// a file is not parsed.
pub fn prescan(text: &str, max_nesting: usize) -> Vec<LexProblem> {
    let mut problems = Vec::new();
    let mut parens = 0usize;
    let mut sets = 0usize;
    // `not` runs are flat in the grammar, but each adds a level to the AST.
    let mut nots = 0usize;
    let mut after_set = false;
    for (token, range) in tokens(text) {
        let word = text.get(range.clone()).unwrap_or("");
        let is_trivia = matches!(
            token,
            Some(Token::Whitespace | Token::Newline | Token::Comment | Token::Bom)
        );
        match token {
            Some(Token::UnterminatedString) => {
                problems.push(LexProblem::UnterminatedString(range.clone()))
            }
            Some(Token::LParen) => parens += 1,
            Some(Token::RParen) => parens = parens.saturating_sub(1),
            Some(Token::Lt) if after_set => sets += 1,
            Some(Token::Gt) if sets > 0 => sets -= 1,
            _ => {}
        }
        if token == Some(Token::Word) && word == "not" {
            nots += 1;
        } else if !is_trivia {
            nots = 0;
        }
        if !is_trivia {
            after_set = token == Some(Token::Word) && word == "set";
        }
        if parens + sets + nots > max_nesting {
            problems.push(LexProblem::TooDeep(range));
            break;
        }
    }
    problems
}

/// Where a character stands: it decides what the character may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Code,
    Comment,
    String,
}

/// What is wrong with a character ([`crate::chars`] has the classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharKind {
    /// Lone CR, VT, FF, NEL, LS or PS: shown as a line break by some
    /// editors and terminals, not one in Grant.
    HiddenLineBreak,
    /// Reorders displayed text.
    Bidi,
    /// A control character other than tab and the line ending.
    Control,
    /// Zero-width, or otherwise invisible.
    Invisible,
}

/// A character that can hide code or mislead a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharProblem {
    /// Byte offset of the character.
    pub at: usize,
    pub c: char,
    pub kind: CharKind,
    pub place: Place,
}

impl CharProblem {
    /// Only an invisible character inside a string literal may stand (a
    /// lint warns of it); every other problem is an error.
    pub fn is_error(&self) -> bool {
        !(self.kind == CharKind::Invisible && self.place == Place::String)
    }
}

/// Every character that can hide code, in text order: hidden line breaks,
/// bidi controls and control characters anywhere; zero-width characters
/// outside string literals (a byte-order mark opening the file excepted),
/// other invisible characters in code; and, for a lint, invisible
/// characters inside string literals. One pass over the text; a file of
/// printable ASCII, tabs and line endings costs one scan of its bytes.
pub fn check_characters(text: &str) -> Vec<CharProblem> {
    let bytes = text.as_bytes();
    let plain = bytes.iter().enumerate().all(|(i, &b)| {
        matches!(b, b' '..=b'~' | b'\t' | b'\n') || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n'))
    });
    if plain {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (token, range) in tokens(text) {
        let place = match token {
            Some(Token::Comment) => Place::Comment,
            Some(Token::String | Token::UnterminatedString) => Place::String,
            Some(Token::Bom) if range.start == 0 => continue,
            None | Some(Token::Bom) => Place::Code,
            // The other tokens are ASCII without control characters.
            Some(_) => continue,
        };
        let Some(slice) = text.get(range.clone()) else {
            continue;
        };
        let mut chars = slice.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let before_lf = chars.peek().map(|&(_, next)| next) == Some('\n')
                || (i + c.len_utf8() == slice.len()
                    && text.as_bytes().get(range.end) == Some(&b'\n'));
            let kind = if c == '\r' && before_lf {
                continue;
            } else if chars::is_hidden_line_break(c) {
                CharKind::HiddenLineBreak
            } else if chars::is_bidi_control(c) {
                CharKind::Bidi
            } else if c.is_control() && c != '\t' {
                CharKind::Control
            } else if chars::is_zero_width(c) || (chars::is_invisible(c) && place != Place::Comment)
            {
                CharKind::Invisible
            } else {
                continue;
            };
            problems.push(CharProblem {
                at: range.start + i,
                c,
                kind,
                place,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_unterminated_strings() {
        let kinds: Vec<_> = tokens(r#""a\"b" "open"#).map(|(t, _)| t).collect();
        assert_eq!(
            kinds,
            vec![
                Some(Token::String),
                Some(Token::Whitespace),
                Some(Token::UnterminatedString)
            ]
        );
    }

    fn kinds(text: &str) -> Vec<(usize, CharKind, Place, bool)> {
        check_characters(text)
            .into_iter()
            .map(|p| (p.at, p.kind, p.place, p.is_error()))
            .collect()
    }

    #[test]
    fn a_comment_runs_to_lf_whatever_it_holds() {
        let text = "# guard:\rdeny tool \"payments.*\"\nallow";
        let kinds: Vec<_> = tokens(text).map(|(t, _)| t).collect();
        assert_eq!(
            kinds,
            vec![
                Some(Token::Comment),
                Some(Token::Newline),
                Some(Token::Word)
            ]
        );
        assert_eq!(
            self::kinds(text),
            vec![(8, CharKind::HiddenLineBreak, Place::Comment, true)]
        );
    }

    #[test]
    fn crlf_is_a_line_ending_and_a_lone_cr_is_not() {
        assert!(check_characters("allow # x\r\ndeny\r\n").is_empty());
        assert_eq!(
            kinds("allow\rdeny"),
            vec![(5, CharKind::HiddenLineBreak, Place::Code, true)]
        );
        assert_eq!(
            kinds("\"a\rb\""),
            vec![(2, CharKind::HiddenLineBreak, Place::String, true)]
        );
    }

    #[test]
    fn where_each_class_is_refused() {
        // Bidi: everywhere.
        for text in ["# \u{202e}", "\"\u{2066}\"", "a \u{200f} b"] {
            assert_eq!(kinds(text).len(), 1, "{text:?}");
            assert_eq!(kinds(text)[0].1, CharKind::Bidi);
        }
        // Zero width: an error in comments and code, a lint in strings.
        assert_eq!(
            kinds("# a\u{200b}b"),
            vec![(3, CharKind::Invisible, Place::Comment, true)]
        );
        assert_eq!(
            kinds("\"a\u{200d}b\""),
            vec![(2, CharKind::Invisible, Place::String, false)]
        );
        // Other invisible characters may stand in comments (an emoji's
        // variation selector), not in code.
        assert!(kinds("# ok \u{26a0}\u{fe0f}").is_empty());
        assert_eq!(kinds("a\u{ad}")[0].1, CharKind::Invisible);
        // Control characters: everywhere but tab.
        assert_eq!(kinds("# \u{1b}[2K")[0].1, CharKind::Control);
        assert_eq!(kinds("\"\u{0}\"")[0].1, CharKind::Control);
        assert!(kinds("\t# \t").is_empty());
        // A byte-order mark: fine first, invisible anywhere else.
        assert!(kinds("\u{feff}allow").is_empty());
        assert_eq!(
            kinds("allow\u{feff}"),
            vec![(5, CharKind::Invisible, Place::Code, true)]
        );
    }

    #[test]
    fn prescan_finds_deep_nesting_and_stops() {
        let text = "(".repeat(100);
        assert_eq!(prescan(&text, 64), vec![LexProblem::TooDeep(64..65)]);
        assert!(prescan(&"(".repeat(64), 64).is_empty());
    }

    #[test]
    fn prescan_counts_not_runs_and_sets() {
        assert_eq!(prescan(&"not ".repeat(70), 64).len(), 1);
        assert!(prescan(&"not a and ".repeat(70), 64).is_empty());
        assert_eq!(prescan(&"set<".repeat(70), 64).len(), 1);
        // `<` as a comparison does not nest.
        assert!(prescan(&"a < b and ".repeat(70), 64).is_empty());
    }
}
