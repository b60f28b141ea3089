//! The items of a file, found in its token stream: where each declaration
//! and rule begins and ends, and the parts of a rule. The file is known to
//! parse, so this only has to find boundaries the grammar already fixes.

use std::ops::Range;

use grant_syntax::lexer::{Keyword, Token};

use crate::trivia::{Tok, is_keyword, is_word, starts_item};

#[derive(Debug)]
pub(crate) enum Item {
    /// `type`, `attr`, `default ttl`, `max ttl`: always one line.
    Decl(Range<usize>),
    Rule(RuleParts),
}

/// Token ranges of a rule's parts.
#[derive(Debug)]
pub(crate) struct RuleParts {
    /// `@name("text")`, five tokens each.
    pub annotations: Vec<Range<usize>>,
    /// `allow tool PATTERN`.
    pub header: Range<usize>,
    /// The pattern alone: `*`, a string, or `[` ... `]`.
    pub pattern: Range<usize>,
    /// `when EXPR`.
    pub when: Option<Range<usize>>,
    /// `ttl DURATION`, `uses N`, `approval "GROUP"`: whichever the rule
    /// has, kept together on one line.
    pub limits: Option<Range<usize>>,
}

/// Whether the token at `i` starts a rule's limits: the keyword `ttl`, or
/// the contextual keywords `uses` (before an integer) and `approval`
/// (before a string). Elsewhere `uses` and `approval` are attribute names,
/// and an attribute is never followed by a literal.
fn starts_limits(toks: &[Tok<'_>], i: usize) -> bool {
    let next = toks.get(i + 1).map(|t| t.kind);
    is_keyword(toks, i, Keyword::Ttl)
        || (is_word(toks, i, "uses") && next == Some(Token::Number))
        || (is_word(toks, i, "approval") && next == Some(Token::String))
}

/// Splits the tokens into items; `None` if they are not shaped like items,
/// which cannot happen in a file that parses.
pub(crate) fn split(toks: &[Tok<'_>]) -> Option<Vec<Item>> {
    let kind = |i: usize| toks.get(i).map(|t| t.kind);
    let mut items = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let is_rule = kind(i) == Some(Token::At)
            || is_keyword(toks, i, Keyword::Allow)
            || is_keyword(toks, i, Keyword::Deny);
        if !is_rule {
            let start = i;
            i += 1;
            while i < toks.len() && !starts_item(toks, i) {
                i += 1;
            }
            items.push(Item::Decl(start..i));
            continue;
        }
        let mut annotations = Vec::new();
        while kind(i) == Some(Token::At) {
            // `@`, a name (any word, keywords included), `(`, a string, `)`.
            let shape = kind(i + 1).is_some_and(Token::is_word)
                && kind(i + 2) == Some(Token::LParen)
                && kind(i + 3) == Some(Token::String)
                && kind(i + 4) == Some(Token::RParen);
            if !shape {
                return None;
            }
            annotations.push(i..i + 5);
            i += 5;
        }
        let effect = i;
        if !(is_keyword(toks, i, Keyword::Allow) || is_keyword(toks, i, Keyword::Deny))
            || !is_keyword(toks, i + 1, Keyword::Tool)
        {
            return None;
        }
        let pattern_start = i + 2;
        let pattern_end = match kind(pattern_start)? {
            Token::Star | Token::String => pattern_start + 1,
            Token::LBracket => {
                let mut j = pattern_start + 1;
                while kind(j)? != Token::RBracket {
                    j += 1;
                }
                j + 1
            }
            _ => return None,
        };
        i = pattern_end;
        let when = if is_keyword(toks, i, Keyword::When) {
            let start = i;
            i += 1;
            while i < toks.len() && !starts_limits(toks, i) && !starts_item(toks, i) {
                i += 1;
            }
            if i == start + 1 {
                return None;
            }
            Some(start..i)
        } else {
            None
        };
        let limits_start = i;
        if is_keyword(toks, i, Keyword::Ttl) {
            kind(i + 1)?;
            i += 2;
        }
        for clause in ["uses", "approval"] {
            if is_word(toks, i, clause) {
                kind(i + 1)?;
                i += 2;
            }
        }
        let limits = (i > limits_start).then_some(limits_start..i);
        items.push(Item::Rule(RuleParts {
            annotations,
            header: effect..pattern_end,
            pattern: pattern_start..pattern_end,
            when,
            limits,
        }));
    }
    Some(items)
}
