//! The parser: hand-written recursive descent over the logos tokens of
//! [`crate::lexer`], building the AST at once. `grammar/grant.pest` is the
//! normative grammar; a conformance test (`tests/conformance.rs`) parses
//! with both and compares the trees.
//!
//! A file is parsed item by item (a declaration or a rule at a time): after a
//! syntax error the parser resumes at the next line that starts an item, so
//! one mistake does not hide the rest of the file.

use crate::ast::{
    Annotation, AttrDecl, CompareOp, Effect, Expr, ExprKind, File, Ident, Item, Path,
    Rule as AstRule, ToolPattern, TtlSetting, TypeDecl, TypeExpr,
};
use crate::chars;
use crate::diagnostic::{Code, Diagnostic};

use crate::lexer::{self, CharKind, CharProblem, Keyword, Place, Token};
use crate::limits::{MAX_FILE_BYTES, MAX_NESTING};
use crate::literal::{self, EscapeError};
use crate::span::{FileId, Span, Spanned};

pub use crate::literal::{format_duration, parse_duration};

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

    // Characters that can hide code are reported here, each where it
    // stands; the parser reads a copy with spaces in their place (offsets
    // unchanged), so that they cost no item and comments keep running to
    // their line feed, as the lexer reads them.
    let mut lexical_errors = Vec::new();
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

    let code = sanitized.as_deref().unwrap_or(text);
    let mut parser = Parser {
        file,
        text: code,
        original: text,
        lexer: lexer::Lexer::new(code),
        cur: None,
        at_line_start: true,
        after_annotation_line: false,
        before_first_item: true,
        lexer_diagnostics: Vec::new(),
        string_errors: Vec::new(),
        prev_end: 0,
        expected: Expected::NONE,
        depth: 0,
        literal_errors: Vec::new(),
        poisoned: false,
    };
    parser.advance();
    let mut syntax_errors = Vec::new();
    let items = parser.items(&lexical_errors, &mut syntax_errors);
    diagnostics.append(&mut parser.lexer_diagnostics);
    diagnostics.append(&mut syntax_errors);
    diagnostics.append(&mut parser.literal_errors);
    Parsed {
        file: File { items },
        diagnostics,
    }
}

/// A code token: trivia dropped, offsets kept.
#[derive(Clone, Copy, Debug)]
struct Tok {
    /// `None` for a character no token starts with.
    kind: Option<Token>,
    start: u32,
    end: u32,
    /// An item boundary: where parsing resumes after a syntax error.
    boundary: bool,
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

/// A comment that looks like [`SKIP_DIRECTIVE`] but is not it, or stands
/// where the formatter does not look (after the first item): the file
/// would be formatted after all.
fn skip_directive_lint(
    file: FileId,
    at: usize,
    comment: &str,
    before_first_item: bool,
    diagnostics: &mut Vec<Diagnostic>,
) {
    // Most comments do not mention `skip`: no allocation for them.
    let mentions_skip = comment
        .as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"skip"));
    if !mentions_skip {
        return;
    }
    let comment = comment.trim_end();
    let squeezed: String = comment
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if !squeezed.starts_with("#grant-fmt") || !squeezed.contains("skip") {
        return;
    }
    let span = Span::new(file, at, at + comment.len());
    if comment != SKIP_DIRECTIVE {
        diagnostics.push(
            Diagnostic::new(
                Code::MalformedSkipDirective,
                span,
                format!("`{comment}` is not the directive `{SKIP_DIRECTIVE}`"),
            )
            .label("the formatter ignores this comment")
            .help(format!(
                "write it exactly `{SKIP_DIRECTIVE}`, on a line of its own before the first item"
            )),
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

/// The comment that exempts a file from `grant fmt`, on a line of its own
/// before the file's first item. Here, so that the parser can warn of
/// near misses; `grant_fmt` acts on it.
pub const SKIP_DIRECTIVE: &str = "# grant-fmt: skip";

/// What the parser looked for at the next token and did not find: every
/// alternative tried since the last token it took, as a set, so that a
/// syntax error can list them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expected(u32);

macro_rules! expectations {
    ($($name:ident = $bit:literal, $text:literal;)*) => {
        impl Expected {
            const NONE: Expected = Expected(0);
            $(const $name: Expected = Expected(1 << $bit);)*
            /// How each alternative reads in "expected ...".
            const TEXTS: &'static [(Expected, &'static str)] = &[$((Expected::$name, $text),)*];
        }
    };
}

expectations! {
    ITEM = 0, "a rule or declaration";
    NEW_RULE = 1, "a new rule";
    AT = 2, "`@`";
    ALLOW = 3, "`allow`";
    DENY = 4, "`deny`";
    TOOL = 5, "`tool`";
    WHEN = 6, "`when`";
    TTL = 7, "`ttl`";
    USES = 8, "`uses`";
    APPROVAL = 9, "`approval`";
    AND = 10, "`and`";
    OR = 11, "`or`";
    COMPARISON = 12, "a comparison operator";
    EXPRESSION = 13, "an expression";
    NAME = 14, "a name";
    TYPE = 15, "a type";
    DURATION = 16, "a duration";
    INTEGER = 17, "an integer";
    STRING = 18, "a string";
    TOOL_PATTERN = 19, "a tool pattern";
    LITERAL = 20, "a literal";
    EQ = 21, "`=`";
    LT = 22, "`<`";
    GT = 23, "`>`";
    PIPE = 24, "`|`";
    COLON = 25, "`:`";
    LPAREN = 26, "`(`";
    RPAREN = 27, "`)`";
    RBRACKET = 28, "`]`";
    COMMA = 29, "`,`";
}

impl Expected {
    fn has(self, other: Expected) -> bool {
        self.0 & other.0 != 0
    }

    /// The alternatives as a person reads them, sorted, "a new rule" last
    /// ("a rule or declaration" when nothing else could come).
    fn describe(self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Expected::TEXTS
            .iter()
            .filter(|(e, _)| self.has(*e) && !e.has(Expected::NEW_RULE))
            .map(|&(_, text)| text)
            .collect();
        out.sort_unstable();
        if self.has(Expected::NEW_RULE) {
            out.push(if out.is_empty() {
                "a rule or declaration"
            } else {
                "a new rule"
            });
        }
        out
    }
}

impl std::ops::BitOrAssign for Expected {
    fn bitor_assign(&mut self, other: Expected) {
        self.0 |= other.0;
    }
}

/// Why an item could not be parsed; the diagnostic is made where the item
/// is given up, from the parser's position and [`Expected`].
#[derive(Debug)]
enum Failure {
    Syntax,
    /// The token that went past [`MAX_NESTING`].
    TooDeep(Tok),
}

type Parse<T> = Result<T, Failure>;

struct Parser<'t> {
    file: FileId,
    /// The text as parsed: hidden characters blanked.
    text: &'t str,
    /// The text as written, for the skip-directive lint.
    original: &'t str,
    /// Tokens are read as the parser goes, one ahead: no token buffer.
    lexer: lexer::Lexer<'t>,
    /// The next code token; `None` at the end of the text.
    cur: Option<Tok>,
    at_line_start: bool,
    after_annotation_line: bool,
    before_first_item: bool,
    /// Unterminated strings and skip-directive lints, found while lexing.
    lexer_diagnostics: Vec<Diagnostic>,
    /// Where unterminated strings start, in text order.
    string_errors: Vec<usize>,
    /// End of the last token taken.
    prev_end: u32,
    expected: Expected,
    /// Parentheses, `not` and `set<` open around the next token.
    depth: usize,
    /// Bad literals of the items so far; those of an item with a syntax
    /// error are dropped with it.
    literal_errors: Vec<Diagnostic>,
    /// The current item had a bad literal: it is left out of the AST, so
    /// that no placeholder value leads to follow-on errors.
    poisoned: bool,
}

impl Parser<'_> {
    /// Reads the next code token into `cur`. On the way it reports
    /// unterminated strings and near misses of the skip directive, and marks
    /// item boundaries: the first tokens of lines that start an item (`@`,
    /// `allow`, `deny`, `type`, `attr`, `default`, `max`), except where lines
    /// of annotations go on into their rule. No valid item contains a
    /// boundary (these words cannot continue an item, and paths have no
    /// spaces), so after a syntax error parsing resumes at the next one.
    fn advance(&mut self) {
        self.cur = None;
        while let Some(token) = self.lexer.next() {
            let token = token.ok();
            let range = self.lexer.span();
            match token {
                Some(Token::Newline) => {
                    self.at_line_start = true;
                    continue;
                }
                Some(Token::Whitespace | Token::Bom) => continue,
                Some(Token::Comment) => {
                    let comment = self.original.get(range.clone()).unwrap_or("");
                    skip_directive_lint(
                        self.file,
                        range.start,
                        comment,
                        self.before_first_item,
                        &mut self.lexer_diagnostics,
                    );
                    continue;
                }
                Some(Token::UnterminatedString) => {
                    self.string_errors.push(range.start);
                    self.lexer_diagnostics.push(
                        Diagnostic::new(
                            Code::UnterminatedString,
                            Span::new(self.file, range.start, range.end),
                            "unterminated string",
                        )
                        .label("this string has no closing `\"`")
                        .help("close the string on the same line; write a line break as `\\n`"),
                    );
                }
                _ => {}
            }
            self.before_first_item = false;
            let starts_item = match token {
                Some(Token::At) => true,
                Some(Token::Keyword(keyword)) => keyword.starts_item(),
                _ => false,
            };
            let mut boundary = false;
            if self.at_line_start && starts_item {
                let continues_annotations = self.after_annotation_line
                    && matches!(
                        token,
                        Some(Token::At | Token::Keyword(Keyword::Allow | Keyword::Deny))
                    );
                boundary = !continues_annotations;
                self.after_annotation_line = token == Some(Token::At);
            }
            self.at_line_start = false;
            self.cur = Some(Tok {
                kind: token,
                start: crate::span::clamp_u32(range.start),
                end: crate::span::clamp_u32(range.end),
                boundary,
            });
            return;
        }
    }

    fn items(&mut self, char_errors: &[usize], diagnostics: &mut Vec<Diagnostic>) -> Vec<Item> {
        // Policies average a hundred bytes per item.
        let mut items = Vec::with_capacity(self.text.len() / 100 + 1);
        while let Some(first) = self.cur {
            let literal_errors = self.literal_errors.len();
            self.poisoned = false;
            self.depth = 0;
            self.expected = Expected::NONE;
            let failure = match self.item() {
                // After an item only another item or the end may come.
                Ok(item) if self.at_item_start() => {
                    if !self.poisoned {
                        items.push(item);
                    }
                    continue;
                }
                Ok(_) => {
                    self.expected |= Expected::NEW_RULE;
                    Failure::Syntax
                }
                Err(failure) => failure,
            };
            self.literal_errors.truncate(literal_errors);
            let diagnostic = match failure {
                Failure::TooDeep(tok) => Some(
                    Diagnostic::new(
                        Code::NestingTooDeep,
                        Span::new(self.file, tok.start as usize, tok.end as usize),
                        format!("expression nested more than {MAX_NESTING} levels deep"),
                    )
                    .label("too deep here")
                    .help("simplify the expression; the rest of this item is not checked"),
                ),
                Failure::Syntax => None,
            };
            let syntax = diagnostic.is_none().then(|| self.syntax_error());
            // Resume at the next boundary after the item's first token, at
            // or after the error.
            if self.cur.is_some_and(|t| t.start == first.start) {
                self.bump();
            }
            while self.cur.is_some_and(|t| !t.boundary) {
                self.bump();
            }
            let item_start = first.start as usize;
            let item_end = self.cur.map_or(self.text.len(), |t| t.start as usize);
            // A lexical error inside this item was already reported better.
            let lexical = |errors: &[usize]| {
                let i = errors.partition_point(|&e| e < item_start);
                errors.get(i).is_some_and(|&e| e <= item_end)
            };
            if let Some(diagnostic) = diagnostic {
                diagnostics.push(diagnostic);
            } else if let Some(syntax) = syntax
                && !lexical(char_errors)
                && !lexical(&self.string_errors)
            {
                diagnostics.push(syntax);
            }
        }
        items
    }

    fn peek(&self) -> Option<Token> {
        self.cur.and_then(|t| t.kind)
    }

    /// Where the next token starts (the end of the text at its end).
    fn next_start(&self) -> u32 {
        self.cur
            .map_or(crate::span::clamp_u32(self.text.len()), |t| t.start)
    }

    /// Whether the next token touches the last one taken (no space or
    /// comment between): paths, variants and annotation names are written
    /// without spaces.
    fn next_is_adjacent(&self) -> bool {
        self.cur.is_some_and(|t| t.start == self.prev_end)
    }

    /// Takes the next token.
    fn bump(&mut self) -> Tok {
        let tok = self.cur.unwrap_or(Tok {
            kind: None,
            start: self.prev_end,
            end: self.prev_end,
            boundary: false,
        });
        self.advance();
        self.prev_end = tok.end;
        self.expected = Expected::NONE;
        tok
    }

    /// Takes the next token if it is `token`; notes `expected` if not.
    fn eat(&mut self, token: Token, expected: Expected) -> Option<Tok> {
        if self.peek() == Some(token) {
            Some(self.bump())
        } else {
            self.expected |= expected;
            None
        }
    }

    fn eat_keyword(&mut self, keyword: Keyword, expected: Expected) -> Option<Tok> {
        self.eat(Token::Keyword(keyword), expected)
    }

    /// Takes the next token if it is the contextual keyword `word` (`uses`,
    /// `approval`: names anywhere else).
    fn eat_contextual(&mut self, word: &str, expected: Expected) -> Option<Tok> {
        if self.peek() == Some(Token::Word) && self.next_text() == word {
            Some(self.bump())
        } else {
            self.expected |= expected;
            None
        }
    }

    fn expect(&mut self, token: Token, expected: Expected) -> Parse<Tok> {
        self.eat(token, expected).ok_or(Failure::Syntax)
    }

    fn fail<T>(&mut self, expected: Expected) -> Parse<T> {
        self.expected |= expected;
        Err(Failure::Syntax)
    }

    fn next_text(&self) -> &str {
        self.cur
            .and_then(|t| self.text.get(t.start as usize..t.end as usize))
            .unwrap_or("")
    }

    fn tok_text(&self, tok: Tok) -> &str {
        self.text
            .get(tok.start as usize..tok.end as usize)
            .unwrap_or("")
    }

    fn span(&self, start: u32, end: u32) -> Span {
        Span {
            file: self.file,
            start,
            end,
        }
    }

    fn tok_span(&self, tok: Tok) -> Span {
        self.span(tok.start, tok.end)
    }

    /// From `start` to the end of the last token taken.
    fn span_from(&self, start: u32) -> Span {
        self.span(start, self.prev_end)
    }

    fn at_item_start(&self) -> bool {
        match self.cur {
            None => true,
            Some(tok) => match tok.kind {
                Some(Token::At) => true,
                Some(Token::Keyword(keyword)) => keyword.starts_item(),
                _ => false,
            },
        }
    }

    /// Opens a level of nesting at the token about to be taken.
    fn deeper(&mut self) -> Parse<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let tok = self.cur.unwrap_or(Tok {
                kind: None,
                start: self.prev_end,
                end: self.prev_end,
                boundary: false,
            });
            return Err(Failure::TooDeep(tok));
        }
        Ok(())
    }

    // ------------------------------------------------------------ items

    fn item(&mut self) -> Parse<Item> {
        match self.peek() {
            Some(Token::Keyword(Keyword::Type)) => self.type_decl().map(Item::Type),
            Some(Token::Keyword(Keyword::Attr)) => self.attr_decl().map(Item::Attr),
            Some(Token::Keyword(Keyword::Default)) => self.ttl_setting().map(Item::DefaultTtl),
            Some(Token::Keyword(Keyword::Max)) => self.ttl_setting().map(Item::MaxTtl),
            Some(Token::At | Token::Keyword(Keyword::Allow | Keyword::Deny)) => {
                self.rule().map(Item::Rule)
            }
            _ => self.fail(Expected::ITEM),
        }
    }

    /// A name that is not a keyword.
    fn ident(&mut self) -> Parse<Ident> {
        let tok = self.expect(Token::Word, Expected::NAME)?;
        Ok(Spanned::new(
            self.tok_text(tok).to_string(),
            self.tok_span(tok),
        ))
    }

    fn type_decl(&mut self) -> Parse<TypeDecl> {
        let start = self.bump().start;
        let name = self.ident()?;
        self.expect(Token::Eq, Expected::EQ)?;
        let mut variants = vec![self.ident()?];
        let separator = match self.peek() {
            Some(Token::Lt) => Token::Lt,
            Some(Token::Pipe) => Token::Pipe,
            _ => {
                self.expected |= Expected::LT;
                self.expected |= Expected::PIPE;
                Token::Pipe
            }
        };
        let expected = if separator == Token::Lt {
            Expected::LT
        } else {
            Expected::PIPE
        };
        while self.eat(separator, expected).is_some() {
            variants.push(self.ident()?);
        }
        Ok(TypeDecl {
            name,
            ordered: separator == Token::Lt,
            variants,
            span: self.span_from(start),
        })
    }

    fn attr_decl(&mut self) -> Parse<AttrDecl> {
        let start = self.bump().start;
        let path = self.path(None)?;
        self.expect(Token::Colon, Expected::COLON)?;
        let ty = self.type_expr()?;
        Ok(AttrDecl {
            path,
            ty,
            span: self.span_from(start),
        })
    }

    fn type_expr(&mut self) -> Parse<TypeExpr> {
        if self.peek() != Some(Token::Word) {
            return self.fail(Expected::TYPE);
        }
        let name = self.ident()?;
        if name.value != "set" {
            return Ok(TypeExpr::Named(name));
        }
        if self.peek() != Some(Token::Lt) {
            // `set` alone is a name (an undeclared type, for the checker).
            self.expected |= Expected::LT;
            return Ok(TypeExpr::Named(name));
        }
        self.deeper()?;
        self.bump();
        let element = self.type_expr()?;
        self.expect(Token::Gt, Expected::GT)?;
        self.depth -= 1;
        Ok(TypeExpr::Set(
            Box::new(element),
            self.span_from(name.span.start),
        ))
    }

    fn ttl_setting(&mut self) -> Parse<TtlSetting> {
        let start = self.bump().start;
        self.expect(Token::Keyword(Keyword::Ttl), Expected::TTL)?;
        let ttl = self.duration()?;
        Ok(TtlSetting {
            ttl,
            span: self.span_from(start),
        })
    }

    /// `a.b.c`: a name, then `.` and any word (keywords included), with no
    /// space between. `first` is the first segment when already taken.
    fn path(&mut self, first: Option<Ident>) -> Parse<Path> {
        let first = match first {
            Some(first) => first,
            None => self.ident()?,
        };
        let start = first.span.start;
        let mut dotted = false;
        while self.peek() == Some(Token::Dot) && self.next_is_adjacent() {
            self.bump();
            match self.cur {
                Some(tok) if tok.kind.is_some_and(Token::is_word) && self.next_is_adjacent() => {
                    self.bump();
                    dotted = true;
                }
                _ => return self.fail(Expected::NAME),
            }
        }
        let span = self.span_from(start);
        // The path is its text: segments and dots are adjacent.
        let name = if dotted {
            self.text.get(span.range()).unwrap_or_default().to_string()
        } else {
            first.value
        };
        Ok(Path { name, span })
    }

    fn rule(&mut self) -> Parse<AstRule> {
        let mut annotations = Vec::new();
        while self.peek() == Some(Token::At) {
            annotations.push(self.annotation()?);
        }
        let effect = match self.peek() {
            Some(Token::Keyword(Keyword::Allow)) => Effect::Allow,
            Some(Token::Keyword(Keyword::Deny)) => Effect::Deny,
            _ => {
                self.expected |= Expected::AT;
                self.expected |= Expected::DENY;
                return self.fail(Expected::ALLOW);
            }
        };
        let effect_tok = self.bump();
        let effect = Spanned::new(effect, self.tok_span(effect_tok));
        self.expect(Token::Keyword(Keyword::Tool), Expected::TOOL)?;
        let pattern = self.tool_pattern()?;
        let condition = match self.eat_keyword(Keyword::When, Expected::WHEN) {
            Some(_) => Some(self.expr()?),
            None => None,
        };
        let ttl = match self.eat_keyword(Keyword::Ttl, Expected::TTL) {
            Some(_) => Some(self.duration()?),
            None => None,
        };
        let uses = match self.eat_contextual("uses", Expected::USES) {
            Some(_) => Some(self.integer()?),
            None => None,
        };
        let approval = match self.eat_contextual("approval", Expected::APPROVAL) {
            Some(_) => Some(self.string()?),
            None => None,
        };
        Ok(AstRule {
            annotations,
            effect,
            pattern,
            condition,
            ttl,
            uses,
            approval,
            // Annotations are attached to the rule; its span starts at its effect.
            span: self.span_from(effect_tok.start),
        })
    }

    /// `@name("text")`: no space between `@` and the name, which may be
    /// any word.
    fn annotation(&mut self) -> Parse<Annotation> {
        let start = self.bump().start;
        let name = match self.cur {
            Some(tok) if tok.kind.is_some_and(Token::is_word) && self.next_is_adjacent() => {
                self.bump();
                Spanned::new(self.tok_text(tok).to_string(), self.tok_span(tok))
            }
            _ => return self.fail(Expected::NAME),
        };
        self.expect(Token::LParen, Expected::LPAREN)?;
        let value = self.string()?;
        self.expect(Token::RParen, Expected::RPAREN)?;
        Ok(Annotation {
            name,
            value,
            span: self.span_from(start),
        })
    }

    fn tool_pattern(&mut self) -> Parse<ToolPattern> {
        match self.peek() {
            Some(Token::Star) => {
                let tok = self.bump();
                Ok(ToolPattern::Any(self.tok_span(tok)))
            }
            Some(Token::String) => Ok(ToolPattern::One(self.string()?)),
            Some(Token::LBracket) => {
                let start = self.bump().start;
                let mut patterns = Vec::new();
                while self.eat(Token::RBracket, Expected::RBRACKET).is_none() {
                    patterns.push(self.string()?);
                    if self.eat(Token::Comma, Expected::COMMA).is_none() {
                        self.expect(Token::RBracket, Expected::RBRACKET)?;
                        break;
                    }
                }
                Ok(ToolPattern::List(patterns, self.span_from(start)))
            }
            _ => self.fail(Expected::TOOL_PATTERN),
        }
    }

    // ------------------------------------------------------------ expressions
    //
    // Precedence, loosest first: `or`, `and`, `not`, comparison, primary.
    // Each level parses operands of the next tighter one; `and` and `or`
    // chains stay flat, and a comparison takes one operator at most.

    fn expr(&mut self) -> Parse<Expr> {
        self.logical(Keyword::Or)
    }

    /// A chain of `or` (of `and` chains), or of `and` (of `not` operands).
    fn logical(&mut self, op: Keyword) -> Parse<Expr> {
        let (expected, tighter) = match op {
            Keyword::Or => (Expected::OR, Keyword::And),
            _ => (Expected::AND, Keyword::Not),
        };
        let start = self.next_start();
        let operand = |parser: &mut Self| {
            if tighter == Keyword::And {
                parser.logical(Keyword::And)
            } else {
                parser.not_expr()
            }
        };
        let first = operand(self)?;
        if self.eat_keyword(op, expected).is_none() {
            return Ok(first);
        }
        let mut operands = vec![first];
        loop {
            operands.push(operand(self)?);
            if self.eat_keyword(op, expected).is_none() {
                break;
            }
        }
        let kind = if op == Keyword::Or {
            ExprKind::Or(operands)
        } else {
            ExprKind::And(operands)
        };
        Ok(Expr {
            kind,
            span: self.span_from(start),
        })
    }

    /// `not not x`: each `not` a node, spanning from itself to the end of
    /// the comparison, and a level of nesting (so this recursion is bounded).
    fn not_expr(&mut self) -> Parse<Expr> {
        if self.peek() != Some(Token::Keyword(Keyword::Not)) {
            return self.comparison();
        }
        self.deeper()?;
        let start = self.bump().start;
        let inner = self.not_expr()?;
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::Not(Box::new(inner)),
            span: self.span_from(start),
        })
    }

    fn comparison(&mut self) -> Parse<Expr> {
        let start = self.next_start();
        let lhs = self.primary()?;
        let op = match self.peek() {
            Some(Token::EqEq) => CompareOp::Eq,
            Some(Token::Ne) => CompareOp::Ne,
            Some(Token::Lt) => CompareOp::Lt,
            Some(Token::Le) => CompareOp::Le,
            Some(Token::Gt) => CompareOp::Gt,
            Some(Token::Ge) => CompareOp::Ge,
            Some(Token::Keyword(Keyword::In)) => CompareOp::In,
            Some(Token::Keyword(Keyword::Matches)) => CompareOp::Matches,
            _ => {
                self.expected |= Expected::COMPARISON;
                return Ok(lhs);
            }
        };
        let op_tok = self.bump();
        let op = Spanned::new(op, self.tok_span(op_tok));
        let rhs = self.primary()?;
        Ok(Expr {
            kind: ExprKind::Compare {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span: self.span_from(start),
        })
    }

    /// A parenthesized expression (its node keeps the span inside the
    /// parentheses), a list, a literal or a reference.
    fn primary(&mut self) -> Parse<Expr> {
        match self.peek() {
            Some(Token::LParen) => {
                self.deeper()?;
                self.bump();
                let inner = self.expr()?;
                self.expect(Token::RParen, Expected::RPAREN)?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Token::LBracket) => {
                let start = self.bump().start;
                let mut items = Vec::new();
                while self.eat(Token::RBracket, Expected::RBRACKET).is_none() {
                    items.push(self.list_item()?);
                    if self.eat(Token::Comma, Expected::COMMA).is_none() {
                        self.expect(Token::RBracket, Expected::RBRACKET)?;
                        break;
                    }
                }
                Ok(Expr {
                    kind: ExprKind::List(items),
                    span: self.span_from(start),
                })
            }
            _ => match self.literal_or_reference()? {
                Some(expr) => Ok(expr),
                None => self.fail(Expected::EXPRESSION),
            },
        }
    }

    fn list_item(&mut self) -> Parse<Expr> {
        match self.literal_or_reference()? {
            Some(expr) => Ok(expr),
            None => {
                self.expected |= Expected::LITERAL;
                self.fail(Expected::NAME)
            }
        }
    }

    /// A literal or a reference, or `None` (nothing taken) if the next
    /// token starts neither.
    fn literal_or_reference(&mut self) -> Parse<Option<Expr>> {
        let Some(tok) = self.cur else {
            return Ok(None);
        };
        let span = self.tok_span(tok);
        let kind = match tok.kind {
            Some(Token::Keyword(Keyword::True)) => ExprKind::Bool(true),
            Some(Token::Keyword(Keyword::False)) => ExprKind::Bool(false),
            Some(Token::String) => return Ok(Some(self.string_expr()?)),
            Some(Token::Number) => {
                let text = self.tok_text(tok);
                let kind = if literal::is_duration(text) {
                    ExprKind::Duration(self.duration()?.value)
                } else if literal::is_integer(text) {
                    ExprKind::Int(self.integer()?.value)
                } else {
                    return Ok(None);
                };
                return Ok(Some(Expr { kind, span }));
            }
            Some(Token::Word) => return self.reference().map(Some),
            _ => return Ok(None),
        };
        self.bump();
        Ok(Some(Expr { kind, span }))
    }

    fn string_expr(&mut self) -> Parse<Expr> {
        let string = self.string()?;
        Ok(Expr {
            kind: ExprKind::Str(string.value),
            span: string.span,
        })
    }

    /// `a.b.c`, a bare name, or `ty::variant`.
    fn reference(&mut self) -> Parse<Expr> {
        let first = self.ident()?;
        if self.peek() == Some(Token::ColonColon) && self.next_is_adjacent() {
            self.bump();
            if !self.next_is_adjacent() {
                return self.fail(Expected::NAME);
            }
            let variant = self.ident()?;
            let span = self.span_from(first.span.start);
            return Ok(Expr {
                kind: ExprKind::Variant { ty: first, variant },
                span,
            });
        }
        let path = self.path(Some(first))?;
        Ok(Expr {
            span: path.span,
            kind: ExprKind::Path(path),
        })
    }

    // ------------------------------------------------------------ literals

    /// Reports a bad literal and marks the item to be left out; parsing
    /// goes on, so that a syntax error after it is still found.
    fn literal_error(&mut self, diagnostic: Diagnostic) {
        self.literal_errors.push(diagnostic);
        self.poisoned = true;
    }

    fn duration(&mut self) -> Parse<Spanned<u64>> {
        let tok = match self.cur {
            Some(tok)
                if tok.kind == Some(Token::Number) && literal::is_duration(self.tok_text(tok)) =>
            {
                tok
            }
            _ => return self.fail(Expected::DURATION),
        };
        self.bump();
        let span = self.tok_span(tok);
        let text = self.tok_text(tok);
        let seconds = match literal::parse_duration(text) {
            Ok(seconds) => seconds,
            Err(problem) => {
                let diagnostic = Diagnostic::new(
                    Code::InvalidDuration,
                    span,
                    format!("invalid duration `{text}`: {problem}"),
                )
                .help(if problem.is_overflow() {
                    "a duration is at most 2^63 - 1 seconds"
                } else {
                    "write units from largest to smallest, each once: `1d12h`, `1h30m`, `90s`"
                })
                .label(problem.to_string());
                self.literal_error(diagnostic);
                0
            }
        };
        Ok(Spanned::new(seconds, span))
    }

    fn integer(&mut self) -> Parse<Spanned<i64>> {
        let tok = match self.cur {
            Some(tok)
                if tok.kind == Some(Token::Number) && literal::is_integer(self.tok_text(tok)) =>
            {
                tok
            }
            _ => return self.fail(Expected::INTEGER),
        };
        self.bump();
        let span = self.tok_span(tok);
        let text = self.tok_text(tok);
        let value = match literal::parse_integer(text) {
            Some(value) => value,
            None => {
                let diagnostic = Diagnostic::new(
                    Code::IntegerOutOfRange,
                    span,
                    format!("integer `{text}` does not fit in 64 bits"),
                )
                .label("out of range")
                .help(format!("integers range from {} to {}", i64::MIN, i64::MAX));
                self.literal_error(diagnostic);
                0
            }
        };
        Ok(Spanned::new(value, span))
    }

    /// A string literal, decoded; its span covers the quotes.
    fn string(&mut self) -> Parse<Spanned<String>> {
        let tok = self.expect(Token::String, Expected::STRING)?;
        let span = self.tok_span(tok);
        let raw = self.tok_text(tok);
        let body = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        match literal::decode_string(body) {
            Ok(value) => Ok(Spanned::new(value, span)),
            Err(error) => {
                let diagnostic = self.escape_diagnostic(tok.start as usize + 1, &error);
                self.literal_error(diagnostic);
                Ok(Spanned::new(String::new(), span))
            }
        }
    }

    fn escape_diagnostic(&self, body_start: usize, error: &EscapeError) -> Diagnostic {
        let span = Span::new(
            self.file,
            body_start + error.range.start,
            body_start + error.range.end,
        );
        let help = if error.is_unicode() {
            "`\\u{HEX}` takes 1 to 6 hex digits naming a Unicode scalar value: not a surrogate (D800 to DFFF), at most 10FFFF"
        } else {
            r#"valid escapes are `\"`, `\\`, `\n`, `\t` and `\u{HEX}`"#
        };
        Diagnostic::new(Code::InvalidEscape, span, error.to_string())
            .label("invalid escape")
            .help(help)
    }

    // ------------------------------------------------------------ errors

    /// The diagnostic for a syntax error at the next token: what was
    /// expected there, what was found, and a hint for common slips.
    fn syntax_error(&self) -> Diagnostic {
        let text = self.text;
        let tok = self.cur;
        let at = tok.map_or(text.len(), |t| t.start as usize);
        let end = tok.map_or(at, |t| t.end as usize);
        let snippet = text.get(at..end).unwrap_or("");
        let found_token = tok.and_then(|t| t.kind);
        let found = match (tok, found_token) {
            (None, _) => "end of file".to_string(),
            (Some(_), Some(Token::String)) => "a string".to_string(),
            (Some(_), Some(Token::Keyword(keyword))) => format!("keyword `{}`", keyword.as_str()),
            (Some(_), Some(_)) => format!("`{}`", snippet.chars().take(40).collect::<String>()),
            (Some(_), None) => match snippet.chars().next() {
                Some(c) if c.is_control() || c.is_whitespace() => {
                    format!("character U+{:04X}", c as u32)
                }
                Some(c) => format!("character `{c}`"),
                None => "end of file".to_string(),
            },
        };
        let expected = self.expected.describe();
        let message = if expected.is_empty() {
            format!("unexpected {found}")
        } else {
            format!("expected {}, found {found}", join_alternatives(&expected))
        };
        let mut diagnostic = Diagnostic::new(Code::Syntax, Span::new(self.file, at, end), message)
            .label("not expected here");
        let rest = text.get(at..).unwrap_or("");
        if rest.starts_with('=') && !rest.starts_with("==") {
            diagnostic = diagnostic.help("compare with `==`");
        } else if ["<", ">", "==", "!="].iter().any(|op| rest.starts_with(op))
            && self.expected.has(Expected::AND)
            && !self.expected.has(Expected::COMPARISON)
        {
            // Right after a comparison: an operand could have gone on with
            // `and`, but not with another operator.
            diagnostic = diagnostic.help("comparisons do not chain: write `a < b and b < c`");
        }
        if (rest.starts_with('|') && self.expected.has(Expected::LT))
            || (rest.starts_with('<') && self.expected.has(Expected::PIPE))
        {
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
        // A rule part after one it must precede: `approval "g" uses 1`.
        let rule_part = matches!(
            found_token,
            Some(Token::Keyword(Keyword::When | Keyword::Ttl))
        ) || (found_token == Some(Token::Word)
            && matches!(snippet, "uses" | "approval"));
        if rule_part && self.expected.has(Expected::NEW_RULE) {
            diagnostic = diagnostic.help(
                "a rule's parts come in this order: `when ...`, `ttl ...`, `uses ...`, `approval ...`, each at most once",
            );
        }
        if found_token == Some(Token::Number) {
            diagnostic = diagnostic.help(
                "integers are digits with `_` only between two digits (`10_000`); durations are digits and units, largest first, without `_` (`1h30m`)",
            );
        }
        diagnostic
    }
}

fn join_alternatives(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
