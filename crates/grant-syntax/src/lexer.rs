//! A trivia-keeping lexer (logos), beside the pest parser. The parser does
//! not use it; it serves the checks that must run before pest sees a file
//! (nesting depth, unterminated strings) and tools that need comments and
//! layout, such as a formatter.

use logos::Logos;

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    #[regex(r"[ \t\r]+")]
    Whitespace,
    #[token("\n")]
    Newline,
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
            Some(Token::Whitespace | Token::Newline | Token::Comment)
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
