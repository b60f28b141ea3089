//! The parser: pest generates it from `grammar/grant.pest`, and this module
//! lowers its pairs to the AST at once. pest types never leave this module.
//!
//! A file is parsed item by item (a declaration or a rule at a time): after a
//! syntax error the parser resumes at the next line that starts an item, so
//! one mistake does not hide the rest of the file.

use std::sync::Once;

use pest::Parser as _;
use pest::iterators::{Pair, Pairs};

use crate::ast::{
    Annotation, AttrDecl, CompareOp, Effect, Expr, ExprKind, File, Ident, Item, Path,
    Rule as AstRule, ToolPattern, TtlSetting, TypeDecl, TypeExpr,
};
use crate::chars;
use crate::diagnostic::{Code, Diagnostic};
use crate::lexer::{self, CharKind, CharProblem, LexProblem, Place, Token};
use crate::limits::{MAX_FILE_BYTES, MAX_NESTING};
use crate::span::{FileId, Span, Spanned};

#[derive(pest_derive::Parser)]
#[grammar = "../../../grammar/grant.pest"]
struct GrantParser;

/// The AST of one file and the problems found while reading it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one file. Never panics; every problem becomes a diagnostic.
pub fn parse_file(file: FileId, text: &str) -> Parsed {
    let mut diagnostics = Vec::new();
    if text.len() > MAX_FILE_BYTES {
        diagnostics.push(
            Diagnostic::new(
                Code::FileTooLarge,
                Span::new(file, 0, 0),
                format!(
                    "file is {} bytes, over the limit of {MAX_FILE_BYTES} bytes",
                    text.len()
                ),
            )
            .help("split the policy into several files in one directory"),
        );
        return Parsed {
            file: File { items: Vec::new() },
            diagnostics,
        };
    }

    let mut lexical_errors = Vec::new();
    let mut parse_end = text.len();
    for problem in lexer::prescan(text, MAX_NESTING) {
        match problem {
            LexProblem::UnterminatedString(range) => {
                lexical_errors.push(range.start);
                diagnostics.push(
                    Diagnostic::new(
                        Code::UnterminatedString,
                        Span::new(file, range.start, range.end),
                        "unterminated string",
                    )
                    .label("this string has no closing `\"`")
                    .help("close the string on the same line; write a line break as `\\n`"),
                );
            }
            LexProblem::TooDeep(range) => {
                lexical_errors.push(range.start);
                parse_end = range.start;
                diagnostics.push(
                    Diagnostic::new(
                        Code::NestingTooDeep,
                        Span::new(file, range.start, range.end),
                        format!("expression nested more than {MAX_NESTING} levels deep"),
                    )
                    .label("too deep here")
                    .help("simplify the expression; the rest of this file is not checked"),
                );
            }
        }
    }

    // The grammar refuses these characters, which would cost the item
    // around each one and report its names as undeclared. Each is reported
    // here; the parser reads a copy with spaces in their place (offsets
    // unchanged), which keeps comments running to their line feed, as the
    // lexer reads them.
    let mut sanitized: Option<String> = None;
    for problem in lexer::check_characters(text) {
        if problem.is_error() {
            lexical_errors.push(problem.at);
            let copy = sanitized.get_or_insert_with(|| text.to_string());
            let range = problem.at..problem.at + problem.c.len_utf8();
            if copy.get(range.clone()).is_some() {
                copy.replace_range(range.clone(), &" ".repeat(range.len()));
            }
        }
        diagnostics.push(character_diagnostic(file, &problem));
    }
    skip_directive_lints(file, text, &mut diagnostics);

    let text = sanitized.as_deref().unwrap_or(text);
    let text = text.get(..parse_end).unwrap_or(text);
    let item_starts = item_starts(text);
    let mut lower = Lower {
        file,
        offset: 0,
        diagnostics: Vec::new(),
    };
    let mut items = Vec::new();
    let mut pos = skip_trivia(text, 0);
    while pos < text.len() {
        // Each parse sees only the text up to the next item boundary: pest
        // does work proportional to its whole input when it reports an
        // error, which would make a file of many errors quadratic.
        let mut chunk_end = next_boundary(&item_starts, pos, text.len());
        let parsed = loop {
            let chunk = text.get(pos..chunk_end).unwrap_or("");
            match GrantParser::parse(Rule::next_item, chunk) {
                Ok(pairs) => break Ok(pairs),
                Err(error) => {
                    // An error at the very end of the chunk may only mean
                    // the item goes on past the boundary (`@id("x")` then
                    // a rule on the next line starting with `allow`):
                    // widen the chunk to the next boundary and try again.
                    let at = error_position(&error);
                    if chunk_end < text.len() && skip_trivia(chunk, at) >= chunk.len() {
                        chunk_end = next_boundary(&item_starts, chunk_end, text.len());
                        continue;
                    }
                    break Err(with_detail(chunk, error));
                }
            }
        };
        match parsed {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let consumed = pair.as_span().end();
                lower.offset = pos;
                if let Ok(item) = lower.item(pair) {
                    items.push(item);
                }
                pos = skip_trivia(text, pos + consumed.max(1));
            }
            Err(error) => {
                let error_at = pos + error_position(&error);
                let resume = item_starts
                    .iter()
                    .copied()
                    .find(|&s| s > pos && s >= error_at);
                let item_end = resume.unwrap_or(text.len());
                // A lexical error inside this item was already reported better.
                if !lexical_errors.iter().any(|&e| e >= pos && e <= item_end) {
                    diagnostics.push(syntax_error(file, text, error_at, &error));
                }
                match resume {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    diagnostics.append(&mut lower.diagnostics);
    Parsed {
        file: File { items },
        diagnostics,
    }
}

/// The diagnostic for a character that can hide code ([`crate::chars`]).
fn character_diagnostic(file: FileId, problem: &CharProblem) -> Diagnostic {
    let span = Span::new(file, problem.at, problem.at + problem.c.len_utf8());
    let c = chars::describe(problem.c);
    let mut escape = String::new();
    chars::escape(problem.c, &mut escape);
    let place = match problem.place {
        Place::Code => "",
        Place::Comment => " in a comment",
        Place::String => " in a string",
    };
    let in_string = problem.place == Place::String;
    let as_escape = format!("write it as an escape, `{escape}`, if it is meant");
    match problem.kind {
        CharKind::HiddenLineBreak => Diagnostic::new(
            Code::HiddenLineBreak,
            span,
            format!("{c}{place}: editors may show a line break here, but Grant's lines end only at a line feed"),
        )
        .label("not a line break")
        .help(match problem.place {
            Place::Comment => "everything after it up to the next line feed is part of the comment: break lines with LF or CRLF only".to_string(),
            Place::Code => "break lines with LF or CRLF only".to_string(),
            Place::String => as_escape,
        }),
        CharKind::Bidi => Diagnostic::new(
            Code::BidiControl,
            span,
            format!("{c}{place}: it reorders how the text around it is displayed, so what a reader sees is not what Grant reads"),
        )
        .label("bidirectional control")
        .help(if in_string {
            as_escape
        } else {
            "remove it".to_string()
        }),
        CharKind::Control => Diagnostic::new(
            Code::InvisibleCharacter,
            span,
            format!("control character {c}{place}"),
        )
        .label("control character")
        .help(if in_string {
            as_escape
        } else {
            "remove it: a terminal may act on it, or show nothing".to_string()
        }),
        CharKind::Invisible if in_string => Diagnostic::new(
            Code::InvisibleInString,
            span,
            format!("string contains {c}, which is invisible"),
        )
        .label("invisible character")
        .help(format!("write it as an escape so that readers see it: `{escape}`")),
        CharKind::Invisible => Diagnostic::new(
            Code::InvisibleCharacter,
            span,
            format!("invisible character {c}{place}"),
        )
        .label("invisible character")
        .help("remove it: a reader cannot see it"),
    }
}

/// Comments that look like [`SKIP_DIRECTIVE`] but are not it, or stand
/// where the formatter does not look (after the first item): the file
/// would be formatted after all.
fn skip_directive_lints(file: FileId, text: &str, diagnostics: &mut Vec<Diagnostic>) {
    let mut before_first_item = true;
    for (token, range) in lexer::tokens(text) {
        match token {
            Some(Token::Comment) => {
                let comment = text.get(range.clone()).unwrap_or("").trim_end();
                let squeezed: String = comment
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase)
                    .collect();
                if !squeezed.starts_with("#grant-fmt") || !squeezed.contains("skip") {
                    continue;
                }
                let span = Span::new(file, range.start, range.start + comment.len());
                if comment != SKIP_DIRECTIVE {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::MalformedSkipDirective,
                            span,
                            format!("`{comment}` is not the directive `{SKIP_DIRECTIVE}`"),
                        )
                        .label("the formatter ignores this comment")
                        .help(format!("write it exactly `{SKIP_DIRECTIVE}`, on a line of its own before the first item")),
                    );
                } else if !before_first_item {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::MalformedSkipDirective,
                            span,
                            format!("`{SKIP_DIRECTIVE}` after the first item has no effect"),
                        )
                        .label("the formatter ignores this comment")
                        .help("move it before the first declaration or rule of the file"),
                    );
                }
            }
            Some(Token::Whitespace | Token::Newline | Token::Bom) => {}
            _ => before_first_item = false,
        }
    }
}

/// The same error, with the expected literal tokens (`=`, `)`) that let a
/// message say what was missing. pest collects them only when told to, at
/// twice the cost of a parse, and the switch is process-wide: it is turned on
/// at the first syntax error and left on, and the failed item is parsed again
/// so that every reported error has the detail.
fn with_detail(rest: &str, error: pest::error::Error<Rule>) -> pest::error::Error<Rule> {
    static ERROR_DETAIL: Once = Once::new();
    ERROR_DETAIL.call_once(|| pest::set_error_detail(true));
    match GrantParser::parse(Rule::next_item, rest) {
        Err(detailed) => detailed,
        Ok(_) => error,
    }
}

/// The first item boundary after `pos`, or the end of the text.
fn next_boundary(item_starts: &[usize], pos: usize, len: usize) -> usize {
    let i = item_starts.partition_point(|&s| s <= pos);
    item_starts.get(i).copied().unwrap_or(len)
}

/// Item boundaries: offsets of the first token of each line that starts an
/// item (`allow`, `deny`, `type`, `attr`, `default`, `max`, `@`), except
/// where lines of annotations go on into their rule. No valid item contains
/// another boundary, since these words cannot continue an item and paths
/// have no spaces; parsing is split at them, and resumes at the next one
/// after a syntax error.
fn item_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at_line_start = true;
    let mut after_annotation_line = false;
    for (token, range) in lexer::tokens(text) {
        match token {
            Some(Token::Newline) => at_line_start = true,
            Some(Token::Whitespace | Token::Comment | Token::Bom) => {}
            Some(token) => {
                let word = text.get(range.clone()).unwrap_or("");
                let starts_item = token == Token::At
                    || (token == Token::Word
                        && matches!(word, "allow" | "deny" | "type" | "attr" | "default" | "max"));
                if at_line_start && starts_item {
                    let continues_annotations = after_annotation_line
                        && (token == Token::At || matches!(word, "allow" | "deny"));
                    if !continues_annotations {
                        starts.push(range.start);
                    }
                    after_annotation_line = token == Token::At;
                }
                at_line_start = false;
            }
            None => at_line_start = false,
        }
    }
    starts
}

/// The comment that exempts a file from `grant fmt`, on a line of its own
/// before the file's first item. Here, so that the parser can warn of
/// near misses; `grant_fmt` acts on it.
pub const SKIP_DIRECTIVE: &str = "# grant-fmt: skip";

/// The first offset from `pos` that is not whitespace, a line ending, a
/// comment, or the byte-order mark opening the file.
fn skip_trivia(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    if pos == 0 && text.starts_with(chars::BYTE_ORDER_MARK) {
        pos = chars::BYTE_ORDER_MARK.len_utf8();
    }
    while let Some(&b) = bytes.get(pos) {
        match b {
            b' ' | b'\t' | b'\n' => pos += 1,
            b'\r' if bytes.get(pos + 1) == Some(&b'\n') => pos += 2,
            b'#' => {
                while bytes.get(pos).is_some_and(|&b| b != b'\n') {
                    pos += 1;
                }
            }
            _ => break,
        }
    }
    pos
}

fn error_position(error: &pest::error::Error<Rule>) -> usize {
    match error.location {
        pest::error::InputLocation::Pos(pos) => pos,
        pest::error::InputLocation::Span((start, _)) => start,
    }
}

fn syntax_error(
    file: FileId,
    text: &str,
    at: usize,
    error: &pest::error::Error<Rule>,
) -> Diagnostic {
    let mut expected: Vec<String> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(
            positives
                .iter()
                .filter_map(|r| describe_rule(*r))
                .map(str::to_string),
        );
    }
    if let Some(attempts) = error.parse_attempts() {
        // Literal tokens are only nameable through their Display text.
        for token in attempts.expected_tokens() {
            let token = token.to_string();
            let is_punctuation = matches!(
                token.as_str(),
                "@" | "="
                    | ":"
                    | "("
                    | ")"
                    | "["
                    | "]"
                    | ","
                    | "<"
                    | ">"
                    | "|"
                    | "::"
                    | "."
                    | "*"
                    | "=="
                    | "!="
                    | "<="
                    | ">="
            );
            if is_punctuation || is_keyword(&token) {
                expected.push(format!("`{token}`"));
            }
        }
    }
    let expected = summarize_expected(expected);
    let found = describe_found(text, at);
    let (end, found_token) = found_extent(text, at);
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_alternatives(&expected))
    };
    let mut diagnostic =
        Diagnostic::new(Code::Syntax, Span::new(file, at, end), message).label("not expected here");
    let rest = text.get(at..).unwrap_or("");
    if rest.starts_with('=') && !rest.starts_with("==") {
        diagnostic = diagnostic.help("compare with `==`");
    } else if ["<", ">", "==", "!="].iter().any(|op| rest.starts_with(op))
        && !expected.iter().any(|e| e == "a comparison operator")
    {
        diagnostic = diagnostic.help("comparisons do not chain: write `a < b and b < c`");
    }
    let expects = |token: &str| expected.iter().any(|e| e == token);
    if (rest.starts_with('|') && expects("`<`")) || (rest.starts_with('<') && expects("`|`")) {
        diagnostic = diagnostic
            .help("an enum is ordered (`low < high`) or unordered (`dev | prod`), not both");
    }
    let after_digit = at > 0 && text.as_bytes().get(at - 1).is_some_and(u8::is_ascii_digit);
    let before_digit = text.as_bytes().get(at + 1).is_some_and(u8::is_ascii_digit);
    if rest.starts_with("&&") {
        diagnostic = diagnostic.help("write `and`: Grant's logical operators are words");
    } else if rest.starts_with("||") {
        diagnostic = diagnostic.help("write `or`: Grant's logical operators are words");
    } else if rest.starts_with('!') && !rest.starts_with("!=") {
        diagnostic = diagnostic.help("write `not`: Grant's logical operators are words");
    } else if rest.starts_with('.') && after_digit && before_digit {
        diagnostic = diagnostic.help(
            "that number is a fraction, and Grant has none: write a whole number (or a duration such as `90s`)",
        );
    }
    if found_token == Some(Token::Number) {
        diagnostic = diagnostic.help(
            "integers are digits with `_` only between two digits (`10_000`); durations are digits and units, largest first, without `_` (`1h30m`)",
        );
    }
    diagnostic
}

/// Folds the raw expected set into what a person wants to read: the tokens
/// that start an item become "a new rule", six comparison operators become
/// "a comparison operator".
fn summarize_expected(mut expected: Vec<String>) -> Vec<String> {
    const ITEM_STARTS: [&str; 9] = [
        "`@`",
        "`allow`",
        "`deny`",
        "`type`",
        "`attr`",
        "`default`",
        "`max`",
        "a declaration or rule",
        "end of file",
    ];
    const COMPARISONS: [&str; 9] = [
        "`==`",
        "`!=`",
        "`<`",
        "`<=`",
        "`>`",
        "`>=`",
        "`in`",
        "`matches`",
        "a comparison operator",
    ];
    expected.sort();
    expected.dedup();
    let mut summary: Vec<String> = Vec::new();
    let starts_item = expected.iter().any(|e| ITEM_STARTS.contains(&e.as_str()));
    let compares = expected
        .iter()
        .filter(|e| COMPARISONS.contains(&e.as_str()))
        .count()
        >= 2;
    let folded = |e: &String| {
        ITEM_STARTS.contains(&e.as_str()) || (compares && COMPARISONS.contains(&e.as_str()))
    };
    expected.retain(|e| !folded(e));
    summary.append(&mut expected);
    if compares {
        summary.push("a comparison operator".to_string());
    }
    if starts_item {
        summary.push(
            if summary.is_empty() {
                "a rule or declaration"
            } else {
                "a new rule"
            }
            .to_string(),
        );
    }
    summary
}

fn join_alternatives(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token at `at`, for "found X"; its end offset.
fn found_extent(text: &str, at: usize) -> (usize, Option<Token>) {
    match lexer::tokens(text.get(at..).unwrap_or("")).next() {
        Some((token, range)) => (at + range.end, token),
        None => (at, None),
    }
}

fn describe_found(text: &str, at: usize) -> String {
    let (end, token) = found_extent(text, at);
    let snippet = text.get(at..end).unwrap_or("");
    match token {
        _ if at >= text.len() => "end of file".to_string(),
        Some(Token::Newline) => "end of line".to_string(),
        Some(Token::String) => "a string".to_string(),
        Some(Token::Word) if is_keyword(snippet) => format!("keyword `{snippet}`"),
        Some(_) => format!("`{}`", snippet.chars().take(40).collect::<String>()),
        None => match snippet.chars().next() {
            Some(c) if c.is_control() || c.is_whitespace() => {
                format!("character U+{:04X}", c as u32)
            }
            Some(c) => format!("character `{c}`"),
            None => "end of file".to_string(),
        },
    }
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "allow"
            | "deny"
            | "tool"
            | "when"
            | "ttl"
            | "and"
            | "or"
            | "not"
            | "in"
            | "matches"
            | "true"
            | "false"
            | "type"
            | "attr"
            | "default"
            | "max"
    )
}

/// How a grammar rule reads in "expected ..."; `None` for rules whose
/// literal tokens already say it.
fn describe_rule(grammar_rule: Rule) -> Option<&'static str> {
    Some(match grammar_rule {
        Rule::kw_allow => "`allow`",
        Rule::kw_deny => "`deny`",
        Rule::kw_tool => "`tool`",
        Rule::kw_when => "`when`",
        Rule::kw_ttl => "`ttl`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::kw_in => "`in`",
        Rule::kw_matches => "`matches`",
        Rule::kw_true => "`true`",
        Rule::kw_false => "`false`",
        Rule::kw_type => "`type`",
        Rule::kw_attr => "`attr`",
        Rule::kw_default => "`default`",
        Rule::kw_max => "`max`",
        Rule::kw_uses => "`uses`",
        Rule::kw_approval => "`approval`",
        Rule::duration => "a duration",
        Rule::integer => "an integer",
        Rule::string => "a string",
        Rule::ident | Rule::word => "a name",
        Rule::path | Rule::reference => "a name",
        Rule::variant_suffix => "`::`",
        Rule::type_expr | Rule::set_type => "a type",
        Rule::annotation | Rule::annotation_name => "an annotation",
        Rule::effect => "`allow` or `deny`",
        Rule::tool_pattern | Rule::any_tool | Rule::pattern_list => "a tool pattern",
        Rule::expr | Rule::and_expr | Rule::not_expr | Rule::comparison | Rule::primary => {
            "an expression"
        }
        Rule::literal => "a literal",
        Rule::list | Rule::list_item => "a list",
        Rule::cmp_op => "a comparison operator",
        Rule::item
        | Rule::rule
        | Rule::type_decl
        | Rule::attr_decl
        | Rule::default_ttl
        | Rule::max_ttl => "a declaration or rule",
        Rule::EOI => "end of file",
        _ => return None,
    })
}

/// The shape of the pest tree was not what the grammar promises: reported as
/// an internal error rather than a panic.
#[derive(Debug)]
struct Malformed;

struct Lower {
    file: FileId,
    /// Where the item being lowered starts in the file.
    offset: usize,
    diagnostics: Vec<Diagnostic>,
}

type Lowered<T> = Result<T, Malformed>;

impl Lower {
    /// The pair's span, without trailing whitespace and comments: pest
    /// includes those when a rule ends in a repetition or option that
    /// matched nothing (`a ~ (op ~ a)*`).
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        let mut end = span.end();
        if let Some(last) = pair.clone().into_inner().next_back() {
            let last_end = last.as_span().end();
            let gap = span.as_str().get(last_end - span.start()..).unwrap_or("");
            if skip_trivia(gap, 0) >= gap.len() {
                end = last_end;
            }
        }
        Span::new(self.file, self.offset + span.start(), self.offset + end)
    }

    fn next<'i>(&mut self, pairs: &mut Pairs<'i, Rule>, parent: Span) -> Lowered<Pair<'i, Rule>> {
        match pairs.next() {
            Some(pair) => Ok(pair),
            None => Err(self.malformed(parent)),
        }
    }

    fn malformed(&mut self, span: Span) -> Malformed {
        self.diagnostics.push(Diagnostic::new(
            Code::Internal,
            span,
            "internal error: the parser produced an unexpected tree here (please report it)",
        ));
        Malformed
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> Lowered<Item> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let pair = self.next(&mut inner, span)?;
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::type_decl => self.type_decl(pair).map(Item::Type),
            Rule::attr_decl => self.attr_decl(pair).map(Item::Attr),
            Rule::default_ttl => self.ttl_setting(pair).map(Item::DefaultTtl),
            Rule::max_ttl => self.ttl_setting(pair).map(Item::MaxTtl),
            Rule::rule => self.rule(pair).map(Item::Rule),
            _ => Err(self.malformed(span)),
        }
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Spanned::new(pair.as_str().to_string(), self.span(pair))
    }

    fn type_decl(&mut self, pair: Pair<'_, Rule>) -> Lowered<TypeDecl> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let _kw = self.next(&mut inner, span)?;
        let name = self.next(&mut inner, span)?;
        let name = self.ident(&name);
        let variants_pair = self.next(&mut inner, span)?;
        let ordered = variants_pair.as_rule() == Rule::ordered_variants;
        let variants = variants_pair.into_inner().map(|p| self.ident(&p)).collect();
        Ok(TypeDecl {
            name,
            ordered,
            variants,
            span,
        })
    }

    fn attr_decl(&mut self, pair: Pair<'_, Rule>) -> Lowered<AttrDecl> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let _kw = self.next(&mut inner, span)?;
        let path = self.next(&mut inner, span)?;
        let path = self.path(path);
        let ty = self.next(&mut inner, span)?;
        let ty = self.type_expr(ty)?;
        Ok(AttrDecl { path, ty, span })
    }

    fn type_expr(&mut self, pair: Pair<'_, Rule>) -> Lowered<TypeExpr> {
        let span = self.span(&pair);
        let inner = self.next(&mut pair.into_inner(), span)?;
        match inner.as_rule() {
            Rule::set_type => {
                let element = self.next(&mut inner.into_inner(), span)?;
                Ok(TypeExpr::Set(Box::new(self.type_expr(element)?), span))
            }
            _ => Ok(TypeExpr::Named(self.ident(&inner))),
        }
    }

    fn ttl_setting(&mut self, pair: Pair<'_, Rule>) -> Lowered<TtlSetting> {
        let span = self.span(&pair);
        let duration = pair.into_inner().find(|p| p.as_rule() == Rule::duration);
        let Some(duration) = duration else {
            return Err(self.malformed(span));
        };
        Ok(TtlSetting {
            ttl: self.duration(&duration)?,
            span,
        })
    }

    fn path(&self, pair: Pair<'_, Rule>) -> Path {
        let span = self.span(&pair);
        let segments: Vec<Ident> = pair.into_inner().map(|p| self.ident(&p)).collect();
        let name = segments
            .iter()
            .map(|s| s.value.as_str())
            .collect::<Vec<_>>()
            .join(".");
        Path {
            segments,
            name,
            span,
        }
    }

    fn rule(&mut self, pair: Pair<'_, Rule>) -> Lowered<AstRule> {
        let span = self.span(&pair);
        let mut annotations = Vec::new();
        let mut effect = None;
        let mut pattern = None;
        let mut condition = None;
        let mut ttl = None;
        let mut uses = None;
        let mut approval = None;
        for part in pair.into_inner() {
            let part_span = self.span(&part);
            match part.as_rule() {
                Rule::annotation => annotations.push(self.annotation(part)?),
                Rule::effect => {
                    let value = if part.as_str() == "allow" {
                        Effect::Allow
                    } else {
                        Effect::Deny
                    };
                    effect = Some(Spanned::new(value, part_span));
                }
                Rule::tool_pattern => pattern = Some(self.tool_pattern(part)?),
                Rule::expr => condition = Some(self.expr(part)?),
                Rule::duration => ttl = Some(self.duration(&part)?),
                Rule::integer => uses = Some(Spanned::new(self.integer(&part)?, part_span)),
                Rule::string => approval = Some(self.string(part)?),
                Rule::kw_tool
                | Rule::kw_when
                | Rule::kw_ttl
                | Rule::kw_uses
                | Rule::kw_approval => {}
                _ => return Err(self.malformed(part_span)),
            }
        }
        let (Some(effect), Some(pattern)) = (effect, pattern) else {
            return Err(self.malformed(span));
        };
        // The rule's span starts at `allow`/`deny`: annotations are attached to it.
        let span = Span {
            start: effect.span.start,
            ..span
        };
        Ok(AstRule {
            annotations,
            effect,
            pattern,
            condition,
            ttl,
            uses,
            approval,
            span,
        })
    }

    fn annotation(&mut self, pair: Pair<'_, Rule>) -> Lowered<Annotation> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.next(&mut inner, span)?;
        let name_span = self.span(&name);
        // `annotation_name` is `@word`: the name is its inner word.
        let name = match name.into_inner().next() {
            Some(word) => self.ident(&word),
            None => Spanned::new(String::new(), name_span),
        };
        let value = self.next(&mut inner, span)?;
        let value = self.string(value)?;
        Ok(Annotation { name, value, span })
    }

    fn tool_pattern(&mut self, pair: Pair<'_, Rule>) -> Lowered<ToolPattern> {
        let span = self.span(&pair);
        let inner = self.next(&mut pair.into_inner(), span)?;
        match inner.as_rule() {
            Rule::any_tool => Ok(ToolPattern::Any(span)),
            Rule::string => Ok(ToolPattern::One(self.string(inner)?)),
            Rule::pattern_list => {
                let patterns = inner
                    .into_inner()
                    .map(|p| self.string(p))
                    .collect::<Lowered<Vec<_>>>()?;
                Ok(ToolPattern::List(patterns, span))
            }
            _ => Err(self.malformed(span)),
        }
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Lowered<Expr> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::and_expr => {
                let is_or = pair.as_rule() == Rule::expr;
                let mut operands = Vec::new();
                for part in pair.into_inner() {
                    if !matches!(part.as_rule(), Rule::kw_or | Rule::kw_and) {
                        operands.push(self.expr(part)?);
                    }
                }
                if operands.len() == 1 {
                    return operands.pop().ok_or(Malformed);
                }
                let kind = if is_or {
                    ExprKind::Or(operands)
                } else {
                    ExprKind::And(operands)
                };
                Ok(Expr { kind, span })
            }
            Rule::not_expr => {
                let mut nots = Vec::new();
                let mut operand = None;
                for part in pair.into_inner() {
                    if part.as_rule() == Rule::kw_not {
                        nots.push(self.span(&part).start);
                    } else {
                        operand = Some(self.expr(part)?);
                    }
                }
                let Some(mut expr) = operand else {
                    return Err(self.malformed(span));
                };
                for start in nots.into_iter().rev() {
                    let span = Span {
                        start,
                        ..expr.span.to(span)
                    };
                    expr = Expr {
                        kind: ExprKind::Not(Box::new(expr)),
                        span,
                    };
                }
                Ok(expr)
            }
            Rule::comparison => {
                let mut inner = pair.into_inner();
                let lhs = self.next(&mut inner, span)?;
                let lhs = self.expr(lhs)?;
                let Some(op) = inner.next() else {
                    return Ok(lhs);
                };
                let op = self.compare_op(&op)?;
                let rhs = self.next(&mut inner, span)?;
                let rhs = self.expr(rhs)?;
                Ok(Expr {
                    kind: ExprKind::Compare {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    span,
                })
            }
            Rule::primary | Rule::literal | Rule::list_item => {
                let inner = self.next(&mut pair.into_inner(), span)?;
                self.expr(inner)
            }
            Rule::list => {
                let items = pair
                    .into_inner()
                    .map(|p| self.expr(p))
                    .collect::<Lowered<Vec<_>>>()?;
                Ok(Expr {
                    kind: ExprKind::List(items),
                    span,
                })
            }
            Rule::kw_true => Ok(Expr {
                kind: ExprKind::Bool(true),
                span,
            }),
            Rule::kw_false => Ok(Expr {
                kind: ExprKind::Bool(false),
                span,
            }),
            Rule::integer => Ok(Expr {
                kind: ExprKind::Int(self.integer(&pair)?),
                span,
            }),
            Rule::duration => Ok(Expr {
                kind: ExprKind::Duration(self.duration(&pair)?.value),
                span,
            }),
            Rule::string => Ok(Expr {
                kind: ExprKind::Str(self.string(pair)?.value),
                span,
            }),
            Rule::reference => {
                let mut names = Vec::new();
                let mut variant = None;
                for part in pair.into_inner() {
                    if part.as_rule() == Rule::variant_suffix {
                        let name = self.next(&mut part.into_inner(), span)?;
                        variant = Some(self.ident(&name));
                    } else {
                        names.push(self.ident(&part));
                    }
                }
                if let Some(variant) = variant {
                    let Some(ty) = names.pop() else {
                        return Err(self.malformed(span));
                    };
                    return Ok(Expr {
                        kind: ExprKind::Variant { ty, variant },
                        span,
                    });
                }
                let name = names
                    .iter()
                    .map(|s| s.value.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                Ok(Expr {
                    kind: ExprKind::Path(Path {
                        segments: names,
                        name,
                        span,
                    }),
                    span,
                })
            }
            _ => Err(self.malformed(span)),
        }
    }

    fn compare_op(&mut self, pair: &Pair<'_, Rule>) -> Lowered<Spanned<CompareOp>> {
        let span = self.span(pair);
        let op = match pair.as_str() {
            "==" => CompareOp::Eq,
            "!=" => CompareOp::Ne,
            "<" => CompareOp::Lt,
            "<=" => CompareOp::Le,
            ">" => CompareOp::Gt,
            ">=" => CompareOp::Ge,
            "in" => CompareOp::In,
            "matches" => CompareOp::Matches,
            _ => return Err(self.malformed(span)),
        };
        Ok(Spanned::new(op, span))
    }

    /// Reports a bad literal; the item it is in is dropped, so that no
    /// placeholder value leads to follow-on errors.
    fn literal_error(&mut self, diagnostic: Diagnostic) -> Malformed {
        self.diagnostics.push(diagnostic);
        Malformed
    }

    fn integer(&mut self, pair: &Pair<'_, Rule>) -> Lowered<i64> {
        let digits: String = pair.as_str().chars().filter(|&c| c != '_').collect();
        match digits.parse::<i64>() {
            Ok(value) => Ok(value),
            Err(_) => Err(self.literal_error(
                Diagnostic::new(
                    Code::IntegerOutOfRange,
                    self.span(pair),
                    format!("integer `{}` does not fit in 64 bits", pair.as_str()),
                )
                .label("out of range")
                .help(format!("integers range from {} to {}", i64::MIN, i64::MAX)),
            )),
        }
    }

    fn duration(&mut self, pair: &Pair<'_, Rule>) -> Lowered<Spanned<u64>> {
        let span = self.span(pair);
        match parse_duration(pair.as_str()) {
            Ok(seconds) => Ok(Spanned::new(seconds, span)),
            Err(problem) => Err(self.literal_error(
                Diagnostic::new(
                    Code::InvalidDuration,
                    span,
                    format!("invalid duration `{}`: {problem}", pair.as_str()),
                )
                .help(if problem.contains("large") {
                    "a duration is at most 2^63 - 1 seconds"
                } else {
                    "write units from largest to smallest, each once: `1d12h`, `1h30m`, `90s`"
                })
                .label(problem),
            )),
        }
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> Lowered<Spanned<String>> {
        let span = self.span(&pair);
        let raw = pair.as_str();
        let body = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let body_start = span.start as usize + 1;
        match decode_string(body) {
            Ok(value) => Ok(Spanned::new(value, span)),
            Err(EscapeError { range, message }) => {
                let escape_span =
                    Span::new(self.file, body_start + range.start, body_start + range.end);
                let help = if message.contains("\\u") {
                    "`\\u{HEX}` takes 1 to 6 hex digits naming a Unicode scalar value: not a surrogate (D800 to DFFF), at most 10FFFF"
                } else {
                    r#"valid escapes are `\"`, `\\`, `\n`, `\t` and `\u{HEX}`"#
                };
                Err(self.literal_error(
                    Diagnostic::new(Code::InvalidEscape, escape_span, message)
                        .label("invalid escape")
                        .help(help),
                ))
            }
        }
    }
}

/// A number of seconds as a duration literal: `5400` → `1h30m`, `0` → `0s`.
/// The inverse of [`parse_duration`].
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let mut rest = seconds;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Seconds of a duration literal such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let mut total: u64 = 0;
    let mut last_unit_rank = u8::MAX;
    let mut digits_start = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() {
            continue;
        }
        let (rank, seconds_per_unit) = match c {
            'd' => (3, 86_400),
            'h' => (2, 3_600),
            'm' => (1, 60),
            's' => (0, 1),
            _ => return Err(format!("unknown unit `{c}`")),
        };
        if rank >= last_unit_rank {
            return Err(if rank == last_unit_rank {
                format!("unit `{c}` appears twice")
            } else {
                format!("unit `{c}` comes after a smaller unit")
            });
        }
        last_unit_rank = rank;
        let digits = text.get(digits_start..i).unwrap_or("");
        let amount: u64 = digits.parse().map_err(|_| "amount too large".to_string())?;
        total = amount
            .checked_mul(seconds_per_unit)
            .and_then(|s| total.checked_add(s))
            .filter(|&s| s <= i64::MAX as u64)
            .ok_or_else(|| "too large".to_string())?;
        digits_start = i + c.len_utf8();
    }
    if digits_start != text.len() || text.is_empty() {
        return Err("missing unit".to_string());
    }
    Ok(total)
}

struct EscapeError {
    range: std::ops::Range<usize>,
    message: String,
}

/// Decodes the escapes of a string literal's body (without its quotes).
fn decode_string(body: &str) -> Result<String, EscapeError> {
    if !body.contains('\\') {
        return Ok(body.to_string());
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, escaped)) = chars.next() else {
            return Err(EscapeError {
                range: i..i + 1,
                message: "`\\` at the end of a string".to_string(),
            });
        };
        match escaped {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'u' => {
                let rest = body.get(i + 2..).unwrap_or("");
                let hex_end = rest.find('}');
                let (Some(hex_end), true) = (hex_end, rest.starts_with('{')) else {
                    return Err(EscapeError {
                        range: i..i + 2,
                        message: "`\\u` needs a hex value in braces, like `\\u{e9}`".to_string(),
                    });
                };
                let hex = rest.get(1..hex_end).unwrap_or("");
                let range = i..i + 2 + hex_end + 1;
                let value = if hex.is_empty() || hex.len() > 6 {
                    None
                } else {
                    u32::from_str_radix(hex, 16).ok()
                };
                let Some(value) = value else {
                    return Err(EscapeError {
                        range,
                        message: format!("`\\u{{{hex}}}` is not 1 to 6 hex digits"),
                    });
                };
                let Some(decoded) = char::from_u32(value) else {
                    return Err(EscapeError {
                        range,
                        message: format!(
                            "`\\u{{{hex}}}` is not a Unicode scalar value (surrogate or above 10FFFF)"
                        ),
                    });
                };
                out.push(decoded);
                // Skip the consumed `{hex}`.
                while chars.next_if(|&(j, _)| j < range.end).is_some() {}
            }
            other => {
                return Err(EscapeError {
                    range: i..i + 1 + other.len_utf8(),
                    message: format!("unknown escape `\\{other}`"),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for seconds in [0, 1, 59, 60, 90, 3_600, 5_400, 86_400, 90_061, 1_000_000] {
            assert_eq!(parse_duration(&format_duration(seconds)), Ok(seconds));
        }
        assert_eq!(format_duration(5_400), "1h30m");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1m1m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            decode_string(r#"a\"b\\c\n\t\u{e9}\u{1F600}"#).ok(),
            Some("a\"b\\c\n\t\u{e9}\u{1F600}".to_string())
        );
        assert!(decode_string(r"\u{D800}").is_err());
        assert!(decode_string(r"\u{110000}").is_err());
        assert!(decode_string(r"\q").is_err());
        assert!(decode_string(r"\u{}").is_err());
    }
}
