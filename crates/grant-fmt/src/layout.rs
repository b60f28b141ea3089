//! The canonical layout: items one after another, each laid out from its
//! tokens. A rule takes the first of these layouts that fits in
//! [`MAX_WIDTH`] columns with no comment inside a line:
//!
//! 1. the whole rule on one line;
//! 2. `allow tool PATTERN`, then `when ...` and the limits (`ttl ...
//!    uses ... approval ...`, together) on lines of their own, indented by
//!    four spaces; a pattern list that does not fit is
//!    broken one string per line, and a `when` line that does not fit is
//!    broken at its top-level `or`s (or, if none, `and`s), operator first,
//!    indented by eight.
//!
//! A pattern list written with a trailing comma is always broken one string
//! per line (the layout 2), so that an author can keep a short list in the
//! shape that diffs well; every broken list ends with a comma, so this is
//! stable. Other lists on one line lose their trailing comma. After a broken
//! list, `when ...` and the limits follow the `]` when they fit there.
//!
//! Comments never move across code except in two cases: own-line comments
//! between `and`, `or`, `when` or `ttl` and the token after it go before the
//! keyword, and in a broken pattern list a comment after a string goes after
//! the comma that follows it. A comment that falls inside a line forces a
//! break there; the rest continues on a line indented four more.

use std::ops::Range;

use grant_syntax::lexer::{Keyword, Token};

use crate::items::{Item, RuleParts};
use crate::trivia::{Comment, Tok, Tokens, is_keyword};

/// Lines are kept to this many columns where a break is allowed.
pub const MAX_WIDTH: usize = 100;
const INDENT: usize = 4;

/// One token as laid out.
#[derive(Clone, Debug)]
struct Piece<'a> {
    kind: Token,
    text: &'a str,
    /// One space separates it from the token before it on the same line.
    space: bool,
    /// `and`, `or`, `when` or `ttl` used as a keyword.
    keyword: bool,
    leading: Vec<Comment<'a>>,
    trailing: Option<&'a str>,
    blank_before: bool,
}

impl Piece<'_> {
    fn has_comments(&self) -> bool {
        !self.leading.is_empty() || self.trailing.is_some()
    }
}

/// Where a token is: inside an `attr` declaration, `<` and `>` are the
/// brackets of `set<T>` and take no spaces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Attr,
    Other,
}

/// What a trailing comma without comments becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Commas {
    /// Dropped: lists on one line have none.
    Drop,
    Keep,
}

/// Whether one space goes between `prev` and `next` on a line.
fn spaced(prev2: Option<&Tok<'_>>, prev: &Tok<'_>, next: &Tok<'_>, context: Context) -> bool {
    use Token::*;
    if matches!(prev.kind, At | Dot | ColonColon | LParen | LBracket)
        || matches!(
            next.kind,
            Dot | ColonColon | RParen | RBracket | Comma | Colon
        )
    {
        return false;
    }
    if context == Context::Attr && (matches!(next.kind, Lt | Gt) || prev.kind == Lt) {
        return false;
    }
    // `@name(`: an annotation's parenthesis.
    let annotation_name = prev.kind.is_word() && prev2.is_some_and(|t| t.kind == At);
    !(next.kind == LParen && annotation_name)
}

fn pieces<'a>(
    toks: &[Tok<'a>],
    range: Range<usize>,
    context: Context,
    commas: Commas,
) -> Vec<Piece<'a>> {
    let mut out = Vec::with_capacity(range.len());
    for i in range.clone() {
        let Some(tok) = toks.get(i) else { continue };
        let before_bracket = toks.get(i + 1).is_some_and(|t| t.kind == Token::RBracket);
        if commas == Commas::Drop
            && tok.kind == Token::Comma
            && before_bracket
            && !tok.has_comments()
        {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| toks.get(p));
        let prev2 = i.checked_sub(2).and_then(|p| toks.get(p));
        out.push(Piece {
            kind: tok.kind,
            text: tok.text,
            space: prev.is_some_and(|p| spaced(prev2, p, tok, context)),
            keyword: [Keyword::And, Keyword::Or, Keyword::When, Keyword::Ttl]
                .into_iter()
                .any(|k| is_keyword(toks, i, k)),
            leading: tok.leading.clone(),
            trailing: tok.trailing,
            blank_before: tok.blank_before,
        });
    }
    hoist_comments(&mut out);
    out
}

/// Own-line comments between a keyword (`and`, `or`, `when`, `ttl`) and the
/// token after it go before the keyword, which starts a line, instead of
/// breaking the line after it.
fn hoist_comments(pieces: &mut [Piece<'_>]) {
    for k in 1..pieces.len() {
        if let Some([.., keyword, next]) = pieces.get_mut(..=k)
            && keyword.keyword
            && !keyword.has_comments()
            && !next.leading.is_empty()
        {
            keyword.leading = std::mem::take(&mut next.leading);
        }
    }
}

/// Whether `pieces` make one clean line at `indent`: within [`MAX_WIDTH`],
/// with comments only before the first token and after the last.
fn fits(pieces: &[Piece<'_>], indent: usize) -> bool {
    let last = pieces.len().saturating_sub(1);
    let mut width = indent;
    for (k, piece) in pieces.iter().enumerate() {
        if (k > 0 && !piece.leading.is_empty()) || (k < last && piece.trailing.is_some()) {
            return false;
        }
        if k > 0 && piece.space {
            width += 1;
        }
        width += piece.text.chars().count();
    }
    width <= MAX_WIDTH
}

/// A `when` clause cut before each top-level `or`, or if there is none,
/// before each top-level `and`. One part when there is neither.
fn chain<'p, 'a>(pieces: &'p [Piece<'a>]) -> Vec<&'p [Piece<'a>]> {
    let mut depth = 0i64;
    let (mut ors, mut ands) = (Vec::new(), Vec::new());
    for (k, piece) in pieces.iter().enumerate() {
        match piece.kind {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth -= 1,
            _ => {}
        }
        if depth == 0 && piece.keyword && k > 0 {
            match piece.kind {
                Token::Keyword(Keyword::Or) => ors.push(k),
                Token::Keyword(Keyword::And) => ands.push(k),
                _ => {}
            }
        }
    }
    let cuts = if ors.is_empty() { ands } else { ors };
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut rest = pieces;
    let mut taken = 0;
    for cut in cuts {
        let (part, tail) = rest.split_at(cut - taken);
        parts.push(part);
        rest = tail;
        taken = cut;
    }
    parts.push(rest);
    parts
}

/// One output line: indentation, code, and a comment after it (or alone).
#[derive(Debug)]
struct Line<'a> {
    indent: usize,
    code: String,
    comment: Option<&'a str>,
    /// A whole item on one line: trailing comments of consecutive such lines
    /// are aligned.
    align: bool,
}

impl Line<'_> {
    fn is_blank(&self) -> bool {
        self.code.is_empty() && self.comment.is_none()
    }

    fn width(&self) -> usize {
        self.indent + self.code.chars().count()
    }
}

#[derive(Debug, Default)]
struct Printer<'a> {
    lines: Vec<Line<'a>>,
}

impl<'a> Printer<'a> {
    /// A blank line, unless at the start of the file or after another.
    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.is_blank()) {
            self.lines.push(Line {
                indent: 0,
                code: String::new(),
                comment: None,
                align: false,
            });
        }
    }

    fn comment(&mut self, indent: usize, text: &'a str) {
        self.lines.push(Line {
            indent,
            code: String::new(),
            comment: Some(text),
            align: false,
        });
    }

    /// Lays `pieces` out as one line at `indent`, broken where a comment
    /// falls inside it (the rest continues four columns further in). Own-line
    /// comments before the first piece go at `comment_indent`; at the start
    /// of an item, blank lines before them and before the piece are kept.
    /// Returns the number of code lines written.
    fn emit(
        &mut self,
        pieces: &[Piece<'a>],
        indent: usize,
        comment_indent: usize,
        item_start: bool,
    ) -> usize {
        let continued = indent + INDENT;
        let mut open: Option<Line<'a>> = None;
        let mut count = 0;
        for (k, piece) in pieces.iter().enumerate() {
            let first = k == 0;
            if !piece.leading.is_empty() {
                if let Some(line) = open.take() {
                    self.lines.push(line);
                }
                let at = if first { comment_indent } else { continued };
                for comment in &piece.leading {
                    if item_start && first && comment.blank_before {
                        self.blank();
                    }
                    self.comment(at, comment.text);
                }
            }
            if item_start && first && piece.blank_before {
                self.blank();
            }
            match open.as_mut() {
                Some(line) => {
                    if piece.space {
                        line.code.push(' ');
                    }
                    line.code.push_str(piece.text);
                }
                None => {
                    count += 1;
                    open = Some(Line {
                        indent: if first { indent } else { continued },
                        code: piece.text.to_string(),
                        comment: None,
                        align: false,
                    });
                }
            }
            if let Some(comment) = piece.trailing
                && let Some(mut line) = open.take()
            {
                line.comment = Some(comment);
                self.lines.push(line);
            }
        }
        if let Some(line) = open {
            self.lines.push(line);
        }
        count
    }

    /// Marks the last line as a whole item on one line.
    fn mark_aligned(&mut self) {
        if let Some(line) = self.lines.last_mut() {
            line.align = true;
        }
    }

    fn declaration(&mut self, toks: &[Tok<'a>], range: Range<usize>) {
        let context = if is_keyword(toks, range.start, Keyword::Attr) {
            Context::Attr
        } else {
            Context::Other
        };
        if self.emit(&pieces(toks, range, context, Commas::Drop), 0, 0, true) == 1 {
            self.mark_aligned();
        }
    }

    fn rule(&mut self, toks: &[Tok<'a>], rule: &RuleParts) {
        let part = |range: &Range<usize>| pieces(toks, range.clone(), Context::Other, Commas::Drop);
        let mut item_start = true;
        for annotation in &rule.annotations {
            self.emit(&part(annotation), 0, 0, item_start);
            item_start = false;
        }
        let header = part(&rule.header);
        let when = rule.when.as_ref().map(part);
        let limits = rule.limits.as_ref().map(part);

        let is_list = toks
            .get(rule.pattern.start)
            .is_some_and(|t| t.kind == Token::LBracket);
        // A pattern list written with a trailing comma stays one string per
        // line, even when it would fit on one.
        let trailing_comma = rule
            .pattern
            .end
            .checked_sub(2)
            .and_then(|i| toks.get(i))
            .is_some_and(|t| t.kind == Token::Comma);
        let flat: Vec<Piece<'a>> = header
            .iter()
            .chain(when.iter().flatten())
            .chain(limits.iter().flatten())
            .cloned()
            .collect();
        if !trailing_comma && fits(&flat, 0) {
            let lines = self.emit(&flat, 0, 0, item_start);
            if lines == 1 && rule.annotations.is_empty() {
                self.mark_aligned();
            }
            return;
        }

        if is_list && (trailing_comma || !fits(&header, 0)) {
            let header = pieces(toks, rule.header.clone(), Context::Other, Commas::Keep);
            if let Some(closing) = self.broken_list(&header, item_start) {
                // `] when ... ttl ...` when that fits; `]` alone otherwise.
                let rest: Vec<Piece<'a>> = std::iter::once(closing)
                    .chain(when.iter().flatten().cloned())
                    .chain(limits.iter().flatten().cloned())
                    .collect();
                if fits(&rest, 0) {
                    self.emit(&rest, 0, INDENT, false);
                    return;
                }
                self.emit(rest.get(..1).unwrap_or(&[]), 0, INDENT, false);
            }
        } else {
            self.emit(&header, 0, 0, item_start);
        }
        if let Some(when) = when {
            let parts = chain(&when);
            if fits(&when, INDENT) || parts.len() < 2 {
                self.emit(&when, INDENT, INDENT, false);
            } else {
                for (k, part) in parts.into_iter().enumerate() {
                    let indent = if k == 0 { INDENT } else { 2 * INDENT };
                    self.emit(part, indent, indent, false);
                }
            }
        }
        if let Some(limits) = limits {
            self.emit(&limits, INDENT, INDENT, false);
        }
    }

    /// `allow tool [`, then each string on its own line with a comma after
    /// it. Returns the `]`, for the caller to place.
    fn broken_list(&mut self, header: &[Piece<'a>], item_start: bool) -> Option<Piece<'a>> {
        let open = header.iter().position(|p| p.kind == Token::LBracket);
        let Some((opening, rest)) = open.map(|open| header.split_at(open + 1)) else {
            self.emit(header, 0, 0, item_start);
            return None;
        };
        let Some((closing, elements)) = rest.split_last() else {
            self.emit(header, 0, 0, item_start);
            return None;
        };
        self.emit(opening, 0, 0, item_start);
        let mut groups: Vec<Vec<Piece<'a>>> = Vec::new();
        for piece in elements {
            match groups.last_mut() {
                Some(group) if piece.kind != Token::String => group.push(piece.clone()),
                _ => groups.push(vec![piece.clone()]),
            }
        }
        for mut group in groups {
            if !group.iter().any(|p| p.kind == Token::Comma) {
                group.push(Piece {
                    kind: Token::Comma,
                    text: ",",
                    space: false,
                    keyword: false,
                    leading: Vec::new(),
                    trailing: None,
                    blank_before: false,
                });
            }
            // `"a"  # note` then `,`: the note goes after the comma.
            if let [.., string, comma] = group.as_mut_slice()
                && comma.kind == Token::Comma
                && !comma.has_comments()
            {
                comma.trailing = string.trailing.take();
            }
            self.emit(&group, INDENT, INDENT, false);
        }
        Some(closing.clone())
    }

    /// The text: trailing comments of consecutive one-line items aligned one
    /// column apart from the longest of them, others two spaces after code.
    fn finish(self) -> String {
        let mut columns = vec![0usize; self.lines.len()];
        let mut start = 0;
        while start < self.lines.len() {
            let aligned = |l: &Line<'_>| l.align;
            let run = self
                .lines
                .get(start..)
                .map_or(0, |rest| rest.iter().take_while(|l| aligned(l)).count())
                .max(1);
            let end = start + run;
            let lines = self.lines.get(start..end).unwrap_or(&[]);
            let column = lines
                .iter()
                .filter(|l| l.comment.is_some())
                .map(Line::width)
                .max()
                .unwrap_or(0)
                + 2;
            for slot in columns.get_mut(start..end).into_iter().flatten() {
                *slot = column;
            }
            start = end;
        }
        let mut out = String::new();
        for (line, column) in self.lines.iter().zip(columns) {
            if !line.is_blank() {
                out.extend(std::iter::repeat_n(' ', line.indent));
                out.push_str(&line.code);
                if let Some(comment) = line.comment {
                    if !line.code.is_empty() {
                        let pad = column.saturating_sub(line.width()).max(2);
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                    out.push_str(comment);
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Lays out a file whose tokens were split into `items`.
pub(crate) fn layout(tokens: &Tokens<'_>, items: &[Item]) -> String {
    let mut printer = Printer::default();
    for item in items {
        match item {
            Item::Decl(range) => printer.declaration(&tokens.toks, range.clone()),
            Item::Rule(rule) => printer.rule(&tokens.toks, rule),
        }
    }
    for comment in &tokens.dangling {
        if comment.blank_before {
            printer.blank();
        }
        printer.comment(0, comment.text);
    }
    printer.finish()
}
