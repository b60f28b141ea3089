//! Conformance: the hand-written parser accepts exactly what the normative
//! grammar (`grammar/grant.pest`, through pest, from rule `policy`) accepts,
//! and builds the same tree, spans included, compared as S-expressions.
//!
//! Inputs: every example, UI case and formatter input; those mutated (a
//! token deleted, duplicated, or swapped with the next); and generated
//! inputs (token soup, and policies from a small generator, mutated).
//! Inputs that the character rules refuse (`check_characters`, stated in
//! the grammar too) or that go past the nesting limit (which the grammar
//! does not state) are left out. Integer range, escapes and durations are
//! checked while lowering: there the contract is the same accept/reject,
//! with the pest side's literals decoded by the same functions.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // tests

use std::fmt::Write as _;
use std::path::{Path as FsPath, PathBuf};

use grant_syntax::ast::{Expr, ExprKind, File, Ident, Item, Path, ToolPattern, TypeExpr};
use grant_syntax::lexer::{self, Keyword, Token};
use grant_syntax::literal;
use grant_syntax::parser::parse_file;
use grant_syntax::{Code, FileId, Span, Spanned};
use pest::Parser as _;
use pest::iterators::Pair;
use proptest::prelude::*;

#[derive(pest_derive::Parser)]
#[grammar = "../../../grammar/grant.pest"]
struct Grammar;

// ------------------------------------------------------------ the AST side

fn span(out: &mut String, span: Span) {
    let _ = write!(out, "@{}..{}", span.start, span.end);
}

fn ident(out: &mut String, ident: &Ident) {
    out.push_str(&ident.value);
    span(out, ident.span);
}

fn path(out: &mut String, path: &Path) {
    let _ = write!(out, "(path {}", path.name);
    // The segments' spans are derived from the path's (`Path::segments`);
    // pest's side gives each its own, so they are compared for real.
    for segment in path.segments() {
        out.push(' ');
        ident(out, &Spanned::new(segment.value.to_string(), segment.span));
    }
    span(out, path.span);
    out.push(')');
}

fn type_expr(out: &mut String, ty: &TypeExpr) {
    match ty {
        TypeExpr::Named(name) => ident(out, name),
        TypeExpr::Set(element, at) => {
            out.push_str("(set ");
            type_expr(out, element);
            span(out, *at);
            out.push(')');
        }
    }
}

fn string(out: &mut String, value: &str, at: Span) {
    let _ = write!(out, "{value:?}");
    span(out, at);
}

fn expr(out: &mut String, e: &Expr) {
    out.push('(');
    match &e.kind {
        ExprKind::Bool(b) => {
            let _ = write!(out, "bool {b}");
        }
        ExprKind::Int(i) => {
            let _ = write!(out, "int {i}");
        }
        ExprKind::Str(s) => {
            let _ = write!(out, "str {s:?}");
        }
        ExprKind::Duration(d) => {
            let _ = write!(out, "duration {d}");
        }
        ExprKind::List(items) | ExprKind::And(items) | ExprKind::Or(items) => {
            out.push_str(match &e.kind {
                ExprKind::List(_) => "list",
                ExprKind::And(_) => "and",
                _ => "or",
            });
            for item in items {
                out.push(' ');
                expr(out, item);
            }
        }
        ExprKind::Path(p) => path(out, p),
        ExprKind::Variant { ty, variant } => {
            out.push_str("variant ");
            ident(out, ty);
            out.push(' ');
            ident(out, variant);
        }
        ExprKind::Not(inner) => {
            out.push_str("not ");
            expr(out, inner);
        }
        ExprKind::Compare { op, lhs, rhs } => {
            let _ = write!(out, "{}", op.value.as_str());
            span(out, op.span);
            out.push(' ');
            expr(out, lhs);
            out.push(' ');
            expr(out, rhs);
        }
    }
    span(out, e.span);
    out.push(')');
}

fn ast_sexpr(file: &File) -> String {
    let mut out = String::new();
    for item in &file.items {
        match item {
            Item::Type(t) => {
                out.push_str("(type ");
                ident(&mut out, &t.name);
                out.push_str(if t.ordered { " <" } else { " |" });
                for variant in &t.variants {
                    out.push(' ');
                    ident(&mut out, variant);
                }
                span(&mut out, t.span);
            }
            Item::Attr(a) => {
                out.push_str("(attr ");
                path(&mut out, &a.path);
                out.push(' ');
                type_expr(&mut out, &a.ty);
                span(&mut out, a.span);
            }
            Item::DefaultTtl(t) | Item::MaxTtl(t) => {
                let which = if matches!(item, Item::DefaultTtl(_)) {
                    "default"
                } else {
                    "max"
                };
                let _ = write!(out, "({which}-ttl {}", t.ttl.value);
                span(&mut out, t.ttl.span);
                span(&mut out, t.span);
            }
            Item::Rule(r) => {
                out.push_str("(rule");
                for a in &r.annotations {
                    out.push_str(" (@");
                    ident(&mut out, &a.name);
                    out.push(' ');
                    string(&mut out, &a.value.value, a.value.span);
                    span(&mut out, a.span);
                    out.push(')');
                }
                let _ = write!(out, " {}", r.effect.value.as_str());
                span(&mut out, r.effect.span);
                match &r.pattern {
                    ToolPattern::Any(at) => {
                        out.push_str(" *");
                        span(&mut out, *at);
                    }
                    ToolPattern::One(s) => {
                        out.push(' ');
                        string(&mut out, &s.value, s.span);
                    }
                    ToolPattern::List(items, at) => {
                        out.push_str(" [");
                        for s in items {
                            out.push(' ');
                            string(&mut out, &s.value, s.span);
                        }
                        out.push_str(" ]");
                        span(&mut out, *at);
                    }
                }
                if let Some(condition) = &r.condition {
                    out.push_str(" when ");
                    expr(&mut out, condition);
                }
                if let Some(ttl) = &r.ttl {
                    let _ = write!(out, " ttl {}", ttl.value);
                    span(&mut out, ttl.span);
                }
                if let Some(uses) = &r.uses {
                    let _ = write!(out, " uses {}", uses.value);
                    span(&mut out, uses.span);
                }
                if let Some(approval) = &r.approval {
                    out.push_str(" approval ");
                    string(&mut out, &approval.value, approval.span);
                }
                span(&mut out, r.span);
            }
        }
        out.push_str(")\n");
    }
    out
}

// ------------------------------------------------------------ the pest side

/// A literal the grammar takes and lowering refuses.
struct Refused;

/// The pair's span without trailing whitespace and comments: pest takes
/// them into a rule that ends in a repetition or option that matched
/// nothing (`a ~ (op ~ a)*`), and so did the pest-built AST in places (a
/// one-variant `type`, a `not` at the end of a condition); the spans meant
/// are those of the tokens.
fn pspan(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    let end = lexer::tokens(s.as_str())
        .filter(|(t, _)| !t.is_some_and(Token::is_trivia))
        .last()
        .map_or(0, |(_, r)| r.end);
    Span::new(FileId(0), s.start(), s.start() + end)
}

fn pident(out: &mut String, pair: &Pair<'_, Rule>) {
    out.push_str(pair.as_str());
    span(out, pspan(pair));
}

fn pstring(pair: &Pair<'_, Rule>) -> Result<String, Refused> {
    let raw = pair.as_str();
    literal::decode_string(&raw[1..raw.len() - 1]).map_err(|_| Refused)
}

fn pduration(pair: &Pair<'_, Rule>) -> Result<u64, Refused> {
    literal::parse_duration(pair.as_str()).map_err(|_| Refused)
}

fn pinteger(pair: &Pair<'_, Rule>) -> Result<i64, Refused> {
    literal::parse_integer(pair.as_str()).ok_or(Refused)
}

fn ppath(out: &mut String, pair: Pair<'_, Rule>) {
    let at = pspan(&pair);
    let words: Vec<_> = pair.into_inner().collect();
    let name: Vec<&str> = words.iter().map(|w| w.as_str()).collect();
    let _ = write!(out, "(path {}", name.join("."));
    for word in &words {
        out.push(' ');
        pident(out, word);
    }
    span(out, at);
    out.push(')');
}

fn ptype(out: &mut String, pair: Pair<'_, Rule>) {
    let at = pspan(&pair);
    let inner = pair.into_inner().next().unwrap();
    if inner.as_rule() == Rule::set_type {
        out.push_str("(set ");
        ptype(out, inner.into_inner().next().unwrap());
        span(out, at);
        out.push(')');
    } else {
        pident(out, &inner);
    }
}

/// An expression's text and span.
fn pexpr(pair: Pair<'_, Rule>) -> Result<(String, Span), Refused> {
    let at = pspan(&pair);
    let node = |body: String| (format!("({body}@{}..{})", at.start, at.end), at);
    Ok(match pair.as_rule() {
        Rule::expr | Rule::and_expr => {
            let name = if pair.as_rule() == Rule::expr {
                "or"
            } else {
                "and"
            };
            let mut operands = Vec::new();
            for part in pair.into_inner() {
                if !matches!(part.as_rule(), Rule::kw_or | Rule::kw_and) {
                    operands.push(pexpr(part)?);
                }
            }
            if operands.len() == 1 {
                return Ok(operands.pop().unwrap());
            }
            let mut body = name.to_string();
            for (text, _) in operands {
                body.push(' ');
                body.push_str(&text);
            }
            node(body)
        }
        Rule::not_expr => {
            let mut nots = Vec::new();
            let mut operand = None;
            for part in pair.into_inner() {
                if part.as_rule() == Rule::kw_not {
                    nots.push(part.as_span().start());
                } else {
                    operand = Some(pexpr(part)?);
                }
            }
            let (mut text, mut inner) = operand.unwrap();
            for start in nots.into_iter().rev() {
                inner = Span::new(FileId(0), start, inner.end.max(at.end) as usize);
                text = format!("(not {text}@{}..{})", inner.start, inner.end);
            }
            (text, inner)
        }
        Rule::comparison => {
            let mut inner = pair.into_inner();
            let lhs = pexpr(inner.next().unwrap())?;
            let Some(op) = inner.next() else {
                return Ok(lhs);
            };
            let rhs = pexpr(inner.next().unwrap())?;
            let op_at = pspan(&op);
            node(format!(
                "{}@{}..{} {} {}",
                op.as_str(),
                op_at.start,
                op_at.end,
                lhs.0,
                rhs.0
            ))
        }
        Rule::primary | Rule::literal | Rule::list_item => {
            return pexpr(pair.into_inner().next().unwrap());
        }
        Rule::list => {
            let mut body = "list".to_string();
            for item in pair.into_inner() {
                body.push(' ');
                body.push_str(&pexpr(item)?.0);
            }
            node(body)
        }
        Rule::kw_true => node("bool true".to_string()),
        Rule::kw_false => node("bool false".to_string()),
        Rule::integer => node(format!("int {}", pinteger(&pair)?)),
        Rule::duration => node(format!("duration {}", pduration(&pair)?)),
        Rule::string => node(format!("str {:?}", pstring(&pair)?)),
        Rule::reference => {
            let parts: Vec<_> = pair.into_inner().collect();
            if let [ty, suffix] = parts.as_slice()
                && suffix.as_rule() == Rule::variant_suffix
            {
                let mut body = "variant ".to_string();
                pident(&mut body, ty);
                body.push(' ');
                pident(&mut body, &suffix.clone().into_inner().next().unwrap());
                return Ok(node(body));
            }
            let name: Vec<&str> = parts.iter().map(|w| w.as_str()).collect();
            let mut body = format!("path {}", name.join("."));
            for word in &parts {
                body.push(' ');
                pident(&mut body, word);
            }
            let _ = write!(body, "@{}..{})", at.start, at.end);
            node(format!("({body}"))
        }
        other => panic!("unexpected {other:?}"),
    })
}

fn pest_sexpr(text: &str) -> Option<Result<String, Refused>> {
    let policy = Grammar::parse(Rule::policy, text).ok()?.next()?;
    Some(pest_items(policy))
}

fn pest_items(policy: Pair<'_, Rule>) -> Result<String, Refused> {
    let mut out = String::new();
    for item in policy.into_inner() {
        if item.as_rule() != Rule::item {
            continue;
        }
        let item = item.into_inner().next().unwrap();
        let at = pspan(&item);
        let kind = item.as_rule();
        let mut inner = item.into_inner();
        match kind {
            Rule::type_decl => {
                inner.next();
                out.push_str("(type ");
                pident(&mut out, &inner.next().unwrap());
                let variants = inner.next().unwrap();
                out.push_str(if variants.as_rule() == Rule::ordered_variants {
                    " <"
                } else {
                    " |"
                });
                for variant in variants.into_inner() {
                    out.push(' ');
                    pident(&mut out, &variant);
                }
                span(&mut out, at);
            }
            Rule::attr_decl => {
                inner.next();
                out.push_str("(attr ");
                ppath(&mut out, inner.next().unwrap());
                out.push(' ');
                ptype(&mut out, inner.next().unwrap());
                span(&mut out, at);
            }
            Rule::default_ttl | Rule::max_ttl => {
                let which = if kind == Rule::default_ttl {
                    "default"
                } else {
                    "max"
                };
                let duration = inner.find(|p| p.as_rule() == Rule::duration).unwrap();
                let _ = write!(out, "({which}-ttl {}", pduration(&duration)?);
                span(&mut out, pspan(&duration));
                span(&mut out, at);
            }
            Rule::rule => {
                out.push_str("(rule");
                let mut effect_start = 0;
                for part in inner {
                    let part_at = pspan(&part);
                    match part.as_rule() {
                        Rule::annotation => {
                            let mut a = part.into_inner();
                            let name = a.next().unwrap().into_inner().next().unwrap();
                            let value = a.next().unwrap();
                            out.push_str(" (@");
                            pident(&mut out, &name);
                            out.push(' ');
                            string(&mut out, &pstring(&value)?, pspan(&value));
                            span(&mut out, part_at);
                            out.push(')');
                        }
                        Rule::effect => {
                            effect_start = part_at.start;
                            let _ = write!(out, " {}", part.as_str());
                            span(&mut out, part_at);
                        }
                        Rule::tool_pattern => {
                            let p = part.into_inner().next().unwrap();
                            match p.as_rule() {
                                Rule::any_tool => {
                                    out.push_str(" *");
                                    span(&mut out, part_at);
                                }
                                Rule::string => {
                                    out.push(' ');
                                    string(&mut out, &pstring(&p)?, pspan(&p));
                                }
                                _ => {
                                    out.push_str(" [");
                                    for s in p.into_inner() {
                                        out.push(' ');
                                        string(&mut out, &pstring(&s)?, pspan(&s));
                                    }
                                    out.push_str(" ]");
                                    span(&mut out, part_at);
                                }
                            }
                        }
                        Rule::expr => {
                            out.push_str(" when ");
                            out.push_str(&pexpr(part)?.0);
                        }
                        Rule::duration => {
                            let _ = write!(out, " ttl {}", pduration(&part)?);
                            span(&mut out, part_at);
                        }
                        Rule::integer => {
                            let _ = write!(out, " uses {}", pinteger(&part)?);
                            span(&mut out, part_at);
                        }
                        Rule::string => {
                            out.push_str(" approval ");
                            string(&mut out, &pstring(&part)?, part_at);
                        }
                        _ => {}
                    }
                }
                span(
                    &mut out,
                    Span {
                        start: effect_start,
                        ..at
                    },
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        out.push_str(")\n");
    }
    Ok(out)
}

// ------------------------------------------------------------ comparing

/// What became of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Both parsers accept it, and build the same tree.
    Accepted,
    /// Both refuse it.
    Refused,
    /// Outside the contract: refused by the character rules, or too deep.
    Skipped,
}

/// Parses `text` both ways and asserts they agree.
fn conforms(text: &str) -> Outcome {
    if lexer::check_characters(text).iter().any(|p| p.is_error()) {
        return Outcome::Skipped;
    }
    let parsed = parse_file(FileId(0), text);
    if parsed
        .diagnostics
        .iter()
        .any(|d| d.code == Code::NestingTooDeep)
    {
        return Outcome::Skipped;
    }
    let hand = if parsed.diagnostics.iter().any(|d| d.is_error()) {
        None
    } else {
        Some(ast_sexpr(&parsed.file))
    };
    let oracle = match pest_sexpr(text) {
        Some(Ok(sexpr)) => Some(sexpr),
        Some(Err(Refused)) | None => None,
    };
    match (&hand, &oracle) {
        (Some(hand), Some(oracle)) => {
            assert_eq!(hand, oracle, "different trees for {text:?}");
            Outcome::Accepted
        }
        (None, None) => Outcome::Refused,
        (Some(_), None) => panic!("the parser accepts what the grammar refuses: {text:?}"),
        (None, Some(_)) => panic!(
            "the parser refuses what the grammar accepts: {text:?}\n{:#?}",
            parsed.diagnostics
        ),
    }
}

/// Counts of each outcome.
#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, text: &str) {
        match conforms(text) {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }
}

fn root() -> PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/ui", "crates/grant-fmt/tests/inputs"] {
        files.extend(grant_syntax::source::grant_files_under(&root().join(dir)).unwrap());
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// The code tokens of `text` (trivia kept between them, as written).
fn token_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    lexer::tokens(text)
        .filter(|(t, _)| !t.is_some_and(Token::is_trivia))
        .map(|(_, r)| r)
        .collect()
}

/// `text` with token `i` deleted, duplicated, and swapped with the next.
fn mutations(text: &str, tokens: &[std::ops::Range<usize>], i: usize) -> Vec<String> {
    let t = tokens[i].clone();
    let mut out = vec![
        format!("{}{}", &text[..t.start], &text[t.end..]),
        format!("{}{}", &text[..t.end], &text[t.start..]),
    ];
    if let Some(u) = tokens.get(i + 1) {
        out.push(format!(
            "{}{}{}{}{}",
            &text[..t.start],
            &text[u.clone()],
            &text[t.end..u.start],
            &text[t.clone()],
            &text[u.end..]
        ));
    }
    out
}

#[test]
fn every_file_and_its_mutations_parse_as_the_grammar_says() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 60,
        "expected examples, UI cases and fmt inputs"
    );
    let mut files = Tally::default();
    let mut mutated = Tally::default();
    for (_, text) in &corpus {
        files.add(text);
        let tokens = token_ranges(text);
        // Up to 60 places per file, spread over it.
        let step = (tokens.len() / 60).max(1);
        for i in (0..tokens.len()).step_by(step) {
            for text in mutations(text, &tokens, i) {
                mutated.add(&text);
            }
        }
    }
    eprintln!("files: {files:?}; mutated: {mutated:?}");
    assert!(files.accepted >= 50 && files.refused >= 10, "{files:?}");
    assert!(
        mutated.accepted >= 1_000 && mutated.refused >= 3_000,
        "{mutated:?}"
    );
}

/// Policies from [`Gen`], each also with one token deleted, duplicated and
/// swapped: about 16,000 inputs, on both sides of the grammar's edge.
#[test]
fn generated_policies_and_mutations_parse_as_the_grammar_says() {
    let mut tally = Tally::default();
    for seed in 1..=4_000u64 {
        let text = Gen(seed).policy();
        tally.add(&text);
        let tokens = token_ranges(&text);
        let at = Gen(seed ^ 0x9E37_79B9).next(tokens.len());
        for text in mutations(&text, &tokens, at) {
            tally.add(&text);
        }
    }
    eprintln!("generated: {tally:?}");
    assert!(
        tally.accepted >= 4_000 && tally.refused >= 8_000,
        "{tally:?}"
    );
}

/// Pieces of Grant text for token soup: every keyword and contextual
/// keyword, punctuation, names, literals good and bad, and trivia.
/// Every keyword, from the lexer's table, then the other pieces.
fn pieces() -> Vec<&'static str> {
    let others = [
        "uses",
        "approval",
        "set",
        "\"db.*\"",
        "\"a\\u{e9}\"",
        "\"\\q\"",
        "*",
        "[",
        "]",
        "(",
        ")",
        ",",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "|",
        ":",
        "::",
        ".",
        "@",
        "@id",
        "5m",
        "1h30m",
        "30m1h",
        "0s",
        "-3",
        "10_000",
        "1_0",
        "3",
        "99999999999999999999",
        "x",
        "a.b",
        "task.type",
        "t::v",
        "env",
        "int",
        " ",
        "\n",
        "#c\n",
        "&&",
        "!",
    ];
    Keyword::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(others)
        .collect()
}

/// A small random generator of policies, from a seed: valid items, so that
/// mutations of them land near the grammar's edges.
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }

    fn name(&mut self) -> String {
        let mut name = self
            .pick(&["a", "env", "uses", "approval", "set", "x_1"])
            .to_string();
        for _ in 0..self.next(3) {
            name.push('.');
            name.push_str(self.pick(&["b", "type", "max", "in", "c"]));
        }
        name
    }

    fn operand(&mut self, depth: usize) -> String {
        match self.next(if depth > 3 { 6 } else { 8 }) {
            0 => self.name(),
            1 => self
                .pick(&["true", "false", "-3", "10_000", "5m", "1h30m", "\"s\""])
                .to_string(),
            2 => format!(
                "{}::{}",
                self.pick(&["t", "level"]),
                self.pick(&["v", "high"])
            ),
            3 => {
                let items: Vec<String> = (0..self.next(3)).map(|_| self.name()).collect();
                format!("[{}{}]", items.join(", "), self.pick(&["", ","]))
            }
            4 | 5 => self.name(),
            6 => format!("({})", self.expr(depth + 1)),
            _ => format!("not {}", self.operand(depth + 1)),
        }
    }

    fn expr(&mut self, depth: usize) -> String {
        let mut out = self.operand(depth);
        if self.next(2) == 0 {
            let op = self.pick(&["==", "!=", "<", "<=", ">", ">=", "in", "matches"]);
            out = format!("{out} {op} {}", self.operand(depth));
        }
        for _ in 0..self.next(3) {
            let op = self.pick(&["and", "or"]);
            out = format!("{out} {op} {}", self.operand(depth));
        }
        out
    }

    fn item(&mut self) -> String {
        match self.next(6) {
            0 => {
                let sep = self.pick(&[" < ", " | "]);
                let n = 1 + self.next(3);
                let variants: Vec<&str> = (0..n).map(|_| self.pick(&["a", "b", "c"])).collect();
                format!("type t = {}", variants.join(sep))
            }
            1 => {
                let ty = self.pick(&["int", "set<string>", "set < set<x> >", "bool"]);
                format!("attr {}: {ty}", self.name())
            }
            2 => format!(
                "{} ttl {}",
                self.pick(&["default", "max"]),
                self.pick(&["5m", "1d"])
            ),
            _ => {
                let mut rule = String::new();
                for _ in 0..self.next(3) {
                    rule.push_str(&format!("@{}(\"x\")\n", self.pick(&["id", "deny", "why"])));
                }
                rule.push_str(self.pick(&["allow", "deny"]));
                rule.push_str(" tool ");
                rule.push_str(self.pick(&["*", "\"db.*\"", "[\"a\", \"b\",]", "[]"]));
                if self.next(3) > 0 {
                    rule.push_str(" when ");
                    let e = self.expr(0);
                    rule.push_str(&e);
                }
                for (clause, value) in [("ttl", "5m"), ("uses", "3"), ("approval", "\"ops\"")] {
                    if self.next(2) == 0 {
                        rule.push_str(&format!(" {clause} {value}"));
                    }
                }
                rule
            }
        }
    }

    fn policy(&mut self) -> String {
        let n = 1 + self.next(4);
        let mut out = String::new();
        for _ in 0..n {
            out.push_str(&self.item());
            out.push_str(self.pick(&["\n", "\n\n", " "]));
        }
        out
    }
}

proptest! {
    // Ten thousand inputs a run; a failure is shrunk and printed, not saved.
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_parses_as_the_grammar_says(
        pieces in prop::collection::vec(prop::sample::select(pieces()), 0..40),
        glue in prop::sample::select(&[" ", "", "\n"][..]),
    ) {
        conforms(&pieces.join(glue));
    }
}

/// The keyword rule of the grammar lists exactly the lexer's keywords.
#[test]
fn the_grammar_and_the_lexer_have_one_keyword_list() {
    let grammar = std::fs::read_to_string(root().join("grammar/grant.pest")).unwrap();
    let rule = grammar.split("keyword    = @{").nth(1).unwrap();
    let rule = rule.split("~ !ident_char").next().unwrap();
    let words: Vec<&str> = rule.split('"').skip(1).step_by(2).collect();
    let keywords: Vec<&str> = lexer::Keyword::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(words, keywords);
}
