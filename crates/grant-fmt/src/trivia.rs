//! The lexer's tokens with their trivia folded in: each code token carries
//! the own-line comments before it and the comment after it on its line, and
//! whether a blank line separated it from what came before.

use grant_syntax::lexer::{self, Keyword, Token};

/// A `#` comment on a line of its own.
#[derive(Clone, Debug)]
pub(crate) struct Comment<'a> {
    /// The comment, `#` included, trailing whitespace removed.
    pub text: &'a str,
    /// A blank line came between it and the token or comment before it.
    pub blank_before: bool,
}

/// A code token (anything but whitespace, newlines and comments).
#[derive(Clone, Debug)]
pub(crate) struct Tok<'a> {
    pub kind: Token,
    pub text: &'a str,
    /// Own-line comments between the previous token and this one.
    pub leading: Vec<Comment<'a>>,
    /// The comment after this token on the same line.
    pub trailing: Option<&'a str>,
    /// A blank line came between this token and the comment or token before it.
    pub blank_before: bool,
}

impl Tok<'_> {
    pub fn has_comments(&self) -> bool {
        !self.leading.is_empty() || self.trailing.is_some()
    }
}

/// The code tokens of a file, and the comments after the last of them.
#[derive(Debug)]
pub(crate) struct Tokens<'a> {
    pub toks: Vec<Tok<'a>>,
    pub dangling: Vec<Comment<'a>>,
}

/// Folds comments onto tokens. `None` when some text is not a token, which
/// cannot happen in a file that parses.
pub(crate) fn attach(text: &str) -> Option<Tokens<'_>> {
    let mut toks: Vec<Tok<'_>> = Vec::new();
    let mut pending = Vec::new();
    // Newlines since the last token or comment.
    let mut newlines = 0usize;
    // The last token is on the current line, with no comment after it yet.
    let mut after_token_on_line = false;
    for (kind, range) in lexer::tokens(text) {
        let kind = kind?;
        let slice = text.get(range)?;
        match kind {
            Token::Whitespace => {}
            Token::Newline => {
                newlines += 1;
                after_token_on_line = false;
            }
            Token::Comment => {
                let comment = slice.trim_end();
                match toks.last_mut() {
                    Some(last) if after_token_on_line => last.trailing = Some(comment),
                    _ => pending.push(Comment {
                        text: comment,
                        blank_before: newlines >= 2,
                    }),
                }
                newlines = 0;
                after_token_on_line = false;
            }
            _ => {
                toks.push(Tok {
                    kind,
                    text: slice,
                    leading: std::mem::take(&mut pending),
                    trailing: None,
                    blank_before: newlines >= 2,
                });
                newlines = 0;
                after_token_on_line = true;
            }
        }
    }
    Some(Tokens {
        toks,
        dangling: pending,
    })
}

/// Whether the token at `i` is the keyword `keyword` (and not a path
/// segment after `.`, a variant after `::` or an annotation name after `@`).
pub(crate) fn is_keyword(toks: &[Tok<'_>], i: usize, keyword: Keyword) -> bool {
    toks.get(i)
        .is_some_and(|tok| tok.kind == Token::Keyword(keyword))
        && !after_joiner(toks, i)
}

/// Whether the token at `i` is the word `word` standing alone (not a path
/// segment after a dot): where a contextual keyword (`uses`, `approval`)
/// means itself.
pub(crate) fn is_word(toks: &[Tok<'_>], i: usize, word: &str) -> bool {
    toks.get(i)
        .is_some_and(|tok| tok.kind == Token::Word && tok.text == word)
        && !after_joiner(toks, i)
}

/// Whether the token at `i` follows `.`, `::` or `@`: a word there is a
/// path segment, a variant or an annotation name, never a keyword.
fn after_joiner(toks: &[Tok<'_>], i: usize) -> bool {
    i.checked_sub(1)
        .and_then(|p| toks.get(p))
        .is_some_and(|prev| matches!(prev.kind, Token::Dot | Token::ColonColon | Token::At))
}

/// Whether the token at `i` starts an item: `@`, or a keyword that starts
/// one ([`Keyword::starts_item`]).
pub(crate) fn starts_item(toks: &[Tok<'_>], i: usize) -> bool {
    match toks.get(i).map(|t| t.kind) {
        Some(Token::At) => true,
        Some(Token::Keyword(keyword)) => keyword.starts_item() && is_keyword(toks, i, keyword),
        _ => false,
    }
}
