//! The logos lexer: the parser's tokens, trivia included, so that the
//! formatter can use the same stream and keep comments.
//!
//! Lines end at LF or CRLF and nowhere else ([`crate::chars`]): a comment
//! runs to the next LF whatever it holds, and [`check_characters`] reports
//! the characters that would make it look shorter.

use logos::Logos;

use crate::chars;

/// Declares [`Keyword`] and [`Token`] from one table, so that the lexer,
/// the parser, the formatter and the messages share one list of reserved
/// words (`grammar/grant.pest` states the same list; a test compares them).
macro_rules! tokens_and_keywords {
    ($($keyword:ident = $text:tt,)*) => {
        /// A reserved word: never an identifier, though it may be a path
        /// segment after the first (`task.type`) or an annotation name.
        /// `uses` and `approval` are contextual, so not here: they stay
        /// names, and the parser knows them by their text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Keyword {
            $($keyword,)*
        }

        impl Keyword {
            /// Every keyword, in the grammar's order.
            pub const ALL: &'static [Keyword] = &[$(Keyword::$keyword,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Keyword::$keyword => $text,)*
                }
            }

            /// The keyword spelled `word`, if it is one.
            pub fn from_word(word: &str) -> Option<Keyword> {
                match word {
                    $($text => Some(Keyword::$keyword),)*
                    _ => None,
                }
            }
        }

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
            #[token("#", comment_end)]
            Comment,
            /// A string, to its closing `"`.
            #[token("\"", string_end)]
            String,
            /// A string that reaches the end of its line (or file) without
            /// `"`: what [`Lexer`] makes of a [`Token::String`] whose
            /// callback found no closing quote.
            UnterminatedString,
            /// A reserved word ([`Keyword`]); the longest match wins, so
            /// `index` is a [`Token::Word`], not `in` and `dex`.
            $(#[token($text, |_| Keyword::$keyword)])*
            Keyword(Keyword),
            /// Any other identifier-shaped word, `uses` and `approval` included.
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
    };
}

tokens_and_keywords! {
    Allow = "allow",
    Deny = "deny",
    Tool = "tool",
    When = "when",
    Ttl = "ttl",
    And = "and",
    Or = "or",
    Not = "not",
    In = "in",
    Matches = "matches",
    True = "true",
    False = "false",
    Type = "type",
    Attr = "attr",
    Default = "default",
    Max = "max",
}

impl Keyword {
    /// Whether an item (declaration or rule) starts with this keyword.
    pub fn starts_item(self) -> bool {
        matches!(
            self,
            Keyword::Allow
                | Keyword::Deny
                | Keyword::Type
                | Keyword::Attr
                | Keyword::Default
                | Keyword::Max
        )
    }
}

impl Token {
    /// Whitespace, line endings, comments and the byte-order mark.
    pub fn is_trivia(self) -> bool {
        matches!(
            self,
            Token::Whitespace | Token::Newline | Token::Comment | Token::Bom
        )
    }

    /// Any identifier-shaped word, keywords included: what a path segment
    /// after the first or an annotation name may be.
    pub fn is_word(self) -> bool {
        matches!(self, Token::Word | Token::Keyword(_))
    }
}

/// A token and its byte range; `None` for a character no token starts with.
pub fn tokens(text: &str) -> impl Iterator<Item = (Option<Token>, std::ops::Range<usize>)> + '_ {
    let mut lexer = Lexer::new(text);
    std::iter::from_fn(move || {
        let token = lexer.next()?;
        Some((token.ok(), lexer.span()))
    })
}

/// The tokens of a text, as logos reads them but for strings: an
/// unterminated one is a [`Token::UnterminatedString`].
///
/// Comments and strings are scanned by hand ([`comment_end`],
/// [`string_end`]), for the bytes they stop at are ASCII: a regex over
/// Unicode classes compiles to code that, unoptimised, recursed once per
/// multi-byte character and overflowed the stack on 200,000 CJK characters
/// in a debug build (an embedder's tests are debug builds).
#[derive(Debug)]
pub struct Lexer<'a> {
    inner: logos::Lexer<'a, Token>,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            inner: Token::lexer(text),
        }
    }

    /// The byte range of the last token.
    pub fn span(&self) -> std::ops::Range<usize> {
        self.inner.span()
    }
}

impl Iterator for Lexer<'_> {
    /// `Err(())` for a character no token starts with.
    type Item = Result<Token, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.inner.next()? {
            Err(()) if self.inner.slice().starts_with('"') => Ok(Token::UnterminatedString),
            token => token,
        })
    }
}

/// After `#`: the comment runs to the next LF, not included.
fn comment_end(lex: &mut logos::Lexer<'_, Token>) {
    let rest = lex.remainder().as_bytes();
    lex.bump(rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len()));
}

/// After `"`: to the closing quote (`true`), or, unterminated, to the end
/// of the line or file (`false`, which [`Lexer`] reports as
/// [`Token::UnterminatedString`]). A backslash escapes the next byte but a
/// line feed; escapes are decoded, and checked, by the parser.
fn string_end(lex: &mut logos::Lexer<'_, Token>) -> bool {
    let rest = lex.remainder().as_bytes();
    let mut at = 0;
    while let Some(&byte) = rest.get(at) {
        match byte {
            b'"' => {
                lex.bump(at + 1);
                return true;
            }
            b'\n' => break,
            b'\\' if rest.get(at + 1).is_some_and(|&next| next != b'\n') => at += 2,
            _ => at += 1,
        }
    }
    lex.bump(at.min(rest.len()));
    false
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

    #[test]
    fn string_and_comment_ends() {
        let lexed = |text: &str| -> Vec<_> { tokens(text).collect() };
        // An escaped quote or backslash does not end a string; a line feed
        // ends an unterminated one, before it, a trailing backslash kept.
        assert_eq!(
            lexed("\"a\\\\\" \"b\\\"c\\\nx"),
            [
                (Some(Token::String), 0..5),
                (Some(Token::Whitespace), 5..6),
                (Some(Token::UnterminatedString), 6..12),
                (Some(Token::Newline), 12..13),
                (Some(Token::Word), 13..14),
            ]
        );
        assert_eq!(lexed("\"é\\"), [(Some(Token::UnterminatedString), 0..4)]);
        assert_eq!(
            lexed("# a \"b\r\nx"),
            [
                // The CR of a CRLF is the comment's, as the grammar says.
                (Some(Token::Comment), 0..7),
                (Some(Token::Newline), 7..8),
                (Some(Token::Word), 8..9),
            ]
        );
    }

    /// Long strings and comments of multi-byte characters lex in a debug
    /// build: a Unicode-class regex recursed per character there, and 200,000
    /// CJK characters overflowed the stack.
    #[test]
    fn long_non_ascii_strings_and_comments() {
        let long = "数据".repeat(100_000);
        let string = format!("\"{long}\"");
        assert_eq!(
            tokens(&string).collect::<Vec<_>>(),
            [(Some(Token::String), 0..string.len())]
        );
        let open = format!("\"{long}");
        assert_eq!(
            tokens(&open).collect::<Vec<_>>(),
            [(Some(Token::UnterminatedString), 0..open.len())]
        );
        let comment = format!("#{long}");
        assert_eq!(
            tokens(&comment).collect::<Vec<_>>(),
            [(Some(Token::Comment), 0..comment.len())]
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
                Some(Token::Keyword(Keyword::Allow))
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
    fn keywords_are_tokens_and_longer_words_are_not() {
        for &keyword in Keyword::ALL {
            let lexed: Vec<_> = tokens(keyword.as_str()).map(|(t, _)| t).collect();
            assert_eq!(lexed, vec![Some(Token::Keyword(keyword))]);
            assert_eq!(Keyword::from_word(keyword.as_str()), Some(keyword));
            let longer = format!("{}_x", keyword.as_str());
            let lexed: Vec<_> = tokens(&longer).map(|(t, _)| t).collect();
            assert_eq!(lexed, vec![Some(Token::Word)], "{longer}");
        }
        for word in ["uses", "approval", "index", "set"] {
            assert_eq!(tokens(word).next().map(|(t, _)| t), Some(Some(Token::Word)));
        }
    }
}
