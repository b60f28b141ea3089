//! Rendering diagnostics: a report for people, a JSON shape for machines.
//! The only place that knows how a diagnostic looks.
//!
//! The human form follows rustc's layout:
//!
//! ```text
//! error[G0202]: attribute `task.approved` is declared twice
//!  --> settings.grant:5:6
//!   |
//! 5 | attr task.approved: bool
//!   |      ^^^^^^^^^^^^^ declared again here
//!   |
//!  ::: schema.grant:8:6
//!   |
//! 8 | attr task.approved: bool
//!   |      ------------- first declared here
//!   |
//!   = help: each attribute is declared once across all files of the policy
//! ```
//!
//! Output and time are proportional to what is printed, never to the size
//! of the input: each label shows at most [`shown::LINE_CHARS`] characters
//! of its line, lines between labels are skipped in O(1), columns come from
//! the source's checkpoints, and a run prints at most
//! [`shown::DIAGNOSTICS`] diagnostics, counting the rest. Source text and
//! messages are shown through [`crate::chars`]: nothing in a policy can
//! move the cursor, colour the terminal or hide on screen.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;
use unicode_width::UnicodeWidthChar;

use crate::chars;
use crate::diagnostic::{Diagnostic, Label, Severity};
use crate::limits::shown;
use crate::source::{SourceFile, SourceMap};
use crate::span::{FileId, Span};

/// Renders diagnostics for people; `color` adds ANSI colours. Past
/// [`shown::DIAGNOSTICS`], a closing note counts what was left out.
pub fn human(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut renderer = Human::new(color);
    let mut out = renderer.render(sources, diagnostics);
    if let Some(note) = renderer.omitted_note() {
        out.push_str(&note);
        out.push('\n');
    }
    out
}

/// A human renderer for a whole run: several policies share its budget of
/// [`shown::DIAGNOSTICS`] diagnostics.
#[derive(Debug, Clone)]
pub struct Human {
    color: bool,
    shown: usize,
    omitted_errors: usize,
    omitted_warnings: usize,
}

impl Human {
    pub fn new(color: bool) -> Human {
        Human {
            color,
            shown: 0,
            omitted_errors: 0,
            omitted_warnings: 0,
        }
    }

    /// Renders the diagnostics of one policy while the budget lasts, and
    /// counts the rest.
    pub fn render(&mut self, sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
        let mut out = String::new();
        for diagnostic in diagnostics {
            if self.shown >= shown::DIAGNOSTICS {
                match diagnostic.severity {
                    Severity::Error => self.omitted_errors += 1,
                    Severity::Warning => self.omitted_warnings += 1,
                }
                continue;
            }
            self.shown += 1;
            Report {
                sources,
                diagnostic,
                paint: Paint(self.color),
            }
            .write(&mut out);
        }
        out
    }

    /// `note: 12 more diagnostics (...) not shown`, once the budget ran out.
    pub fn omitted_note(&self) -> Option<String> {
        let omitted = self.omitted_errors + self.omitted_warnings;
        (omitted > 0).then(|| {
            format!(
                "note: {omitted} more diagnostic{} ({} error{}, {} warning{}) not shown; \
                 `--format json` lists every one",
                plural(omitted),
                self.omitted_errors,
                plural(self.omitted_errors),
                self.omitted_warnings,
                plural(self.omitted_warnings),
            )
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `file:line:col: error[G0101]: message`, one line.
pub fn short(sources: &SourceMap, diagnostic: &Diagnostic) -> String {
    format!(
        "{}: {}[{}]: {}",
        chars::printable(&sources.location(diagnostic.primary.span)),
        diagnostic.severity.as_str(),
        diagnostic.code.as_str(),
        shown_text(&diagnostic.message)
    )
}

/// User-facing text, escaped and cut to [`shown::MESSAGE_CHARS`].
fn shown_text(text: &str) -> Cow<'_, str> {
    chars::excerpt(text, shown::MESSAGE_CHARS)
}

/// ANSI colours, or none: the one place Grant's outputs colour text
/// (diagnostics here; `grant test` and `grant eval --explain` too).
#[derive(Clone, Copy, Debug)]
pub struct Paint(pub bool);

/// What a piece of text is, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Bold red: an error, a failed test.
    Error,
    /// Bold yellow: a warning.
    Warning,
    /// Bold blue: the frame of a snippet.
    Secondary,
    Bold,
    /// Green: a passed test.
    Success,
    /// Bold green: an allow.
    Allowed,
    /// Red: a difference.
    Differs,
    /// Yellow: unknown, missing.
    Caution,
    /// Dim: what matters less.
    Dim,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Error => "1;31",
            Style::Warning => "1;33",
            Style::Secondary => "1;34",
            Style::Bold => "1",
            Style::Success => "32",
            Style::Allowed => "1;32",
            Style::Differs => "31",
            Style::Caution => "33",
            Style::Dim => "2",
        }
    }
}

impl Paint {
    /// Appends `text` to `out`, coloured as `style` when colour is on.
    pub fn push(self, out: &mut String, style: Style, text: &str) {
        if !self.0 {
            out.push_str(text);
            return;
        }
        let _ = write!(out, "\x1b[{}m{text}\x1b[0m", style.ansi());
    }

    /// `text` coloured as `style` when colour is on.
    pub fn paint(self, style: Style, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 12);
        self.push(&mut out, style, text);
        out
    }
}

/// One diagnostic being rendered.
struct Report<'a> {
    sources: &'a SourceMap,
    diagnostic: &'a Diagnostic,
    paint: Paint,
}

/// A label resolved to its file and lines.
struct Placed<'a> {
    label: &'a Label,
    primary: bool,
    file: FileId,
    start_line: usize,
    end_line: usize,
}

/// The part of a label drawn under one line: a byte range of that line
/// (empty for a point), and the message when it is the label's last part.
struct Mark<'a> {
    line: usize,
    range: Range<usize>,
    primary: bool,
    message: Option<&'a str>,
}

impl Report<'_> {
    fn severity_style(&self) -> Style {
        match self.diagnostic.severity {
            Severity::Error => Style::Error,
            Severity::Warning => Style::Warning,
        }
    }

    fn write(&self, out: &mut String) {
        let d = self.diagnostic;
        let head = format!("{}[{}]", d.severity.as_str(), d.code.as_str());
        self.paint.push(out, self.severity_style(), &head);
        out.push_str(": ");
        self.paint.push(out, Style::Bold, &shown_text(&d.message));
        out.push('\n');

        let secondary_shown = d.secondary.len().min(shown::LABELS.saturating_sub(1));
        let mut placed: Vec<Placed<'_>> = std::iter::once((&d.primary, true))
            .chain(d.secondary.iter().take(secondary_shown).map(|l| (l, false)))
            .filter_map(|(label, primary)| self.place(label, primary))
            .collect();
        // The primary label's file first, then the others in policy order.
        let primary_file = d.primary.span.file;
        placed.sort_by_key(|p| {
            (
                p.file != primary_file,
                p.file,
                p.start_line,
                p.label.span.start,
            )
        });
        let width = placed
            .iter()
            .map(|p| digits(p.end_line + 1))
            .max()
            .unwrap_or(1);
        let pad = " ".repeat(width);

        if placed.is_empty() {
            // A span that lies in no file: say where it was meant to be.
            let _ = writeln!(
                out,
                "{pad}--> {}",
                chars::printable(&self.sources.location(d.primary.span))
            );
        }
        let mut first_group = true;
        let mut rest = placed.as_slice();
        while let Some(first) = rest.first() {
            let in_group = rest.iter().take_while(|p| p.file == first.file).count();
            let (group, after) = rest.split_at(in_group);
            rest = after;
            let Some(file) = self.sources.get(first.file) else {
                continue;
            };
            let arrow = if first_group { "-->" } else { ":::" };
            let at = if first_group {
                d.primary.span
            } else {
                first.label.span
            };
            let _ = write!(out, "{pad}");
            self.paint.push(out, Style::Secondary, arrow);
            let _ = writeln!(out, " {}", chars::printable(&self.sources.location(at)));
            self.gutter(out, &pad);
            self.lines(out, file, group, &pad);
            let omitted = d.secondary.len() > secondary_shown;
            if !rest.is_empty() || omitted || d.help.is_some() {
                self.gutter(out, &pad);
            }
            first_group = false;
        }
        let omitted = d.secondary.len() - secondary_shown;
        if omitted > 0 {
            self.note(
                out,
                &pad,
                "note",
                &format!(
                    "{omitted} more related place{} not shown; `--format json` lists every one",
                    plural(omitted)
                ),
            );
        }
        if let Some(help) = &d.help {
            self.note(out, &pad, "help", &shown_text(help));
        }
        out.push('\n');
    }

    fn place<'l>(&self, label: &'l Label, primary: bool) -> Option<Placed<'l>> {
        let file = self.sources.get(label.span.file)?;
        let start_line = file.line_index(label.span.start);
        // The line of the last character covered, not of the end offset:
        // a span ending with its line's LF stays on that line.
        let last = if label.span.end > label.span.start {
            label.span.end - 1
        } else {
            label.span.start
        };
        let end_line = file.line_index(last).max(start_line);
        Some(Placed {
            label,
            primary,
            file: label.span.file,
            start_line,
            end_line,
        })
    }

    /// The source lines of one file's labels, in order, `...` between
    /// lines that are not adjacent.
    fn lines(&self, out: &mut String, file: &SourceFile, group: &[Placed<'_>], pad: &str) {
        let mut marks: Vec<Mark<'_>> = Vec::with_capacity(group.len() * 2);
        for p in group {
            let span = p.label.span;
            let message = Some(p.label.message.as_str()).filter(|m| !m.is_empty());
            let (start, end) = (span.start as usize, span.end as usize);
            let first = file.line_range(p.start_line);
            let start = start.clamp(first.start, first.end);
            if p.start_line == p.end_line {
                marks.push(Mark {
                    line: p.start_line,
                    range: start..end.clamp(start, first.end),
                    primary: p.primary,
                    message,
                });
                continue;
            }
            // A label over several lines: its first line from where it
            // starts, its last line up to where it ends.
            marks.push(Mark {
                line: p.start_line,
                range: start..first.end,
                primary: p.primary,
                message: None,
            });
            let last = file.line_range(p.end_line);
            let text = file.text.get(last.clone()).unwrap_or("");
            let indent = text.len() - text.trim_start().len();
            let from = (last.start + indent).min(end);
            marks.push(Mark {
                line: p.end_line,
                range: from..end.min(last.end).max(from),
                primary: p.primary,
                message,
            });
        }
        marks.sort_by_key(|m| (m.line, m.range.start));
        let mut previous: Option<usize> = None;
        let mut rest = marks.as_slice();
        while let Some(first) = rest.first() {
            let on_line = rest.iter().take_while(|m| m.line == first.line).count();
            let (line_marks, after) = rest.split_at(on_line);
            rest = after;
            if previous.is_some_and(|p| first.line > p + 1) {
                self.paint.push(out, Style::Secondary, "...");
                out.push('\n');
            }
            self.line(out, file, first.line, line_marks, pad);
            previous = Some(first.line);
        }
    }

    /// One source line (cut into windows around its marks when long) and
    /// an underline row for each mark.
    fn line(
        &self,
        out: &mut String,
        file: &SourceFile,
        line: usize,
        marks: &[Mark<'_>],
        pad: &str,
    ) {
        let range = file.line_range(line);
        let text = &file.text;
        let mut rest = marks;
        while let Some(first) = rest.first() {
            let window = if range.len() <= shown::LINE_CHARS {
                range.clone()
            } else {
                let start = back_chars(text, range.start, first.range.start, shown::CONTEXT_CHARS);
                start..forward_chars(text, start, range.end, shown::LINE_CHARS)
            };
            let cut_before = window.start > range.start;
            let cut_after = window.end < range.end;
            // The marks that start in this window share it (the first
            // always does); a window reaching the line's end holds the
            // points at its end too.
            let in_window = rest
                .iter()
                .take_while(|m| {
                    m.range.start < window.end || (!cut_after && m.range.start == window.end)
                })
                .count()
                .max(1);
            let (window_marks, after) = rest.split_at(in_window.min(rest.len()));
            rest = after;

            let _ = write!(out, "{:>width$}", line + 1, width = pad.len());
            self.bar(out);
            out.push(' ');
            if cut_before {
                out.push('…');
            }
            out.push_str(&display(text.get(window.clone()).unwrap_or("")));
            if cut_after {
                out.push('…');
            }
            out.push('\n');
            for mark in window_marks {
                let from = mark.range.start.clamp(window.start, window.end);
                let to = mark.range.end.clamp(from, window.end);
                let column =
                    usize::from(cut_before) + width_of(text.get(window.start..from).unwrap_or(""));
                let (style, stroke) = if mark.primary {
                    (self.severity_style(), "^")
                } else {
                    (Style::Secondary, "-")
                };
                let mut strokes = stroke.repeat(width_of(text.get(from..to).unwrap_or("")).max(1));
                if mark.range.end > window.end {
                    strokes.push('…');
                }
                if let Some(message) = mark.message {
                    strokes.push(' ');
                    strokes.push_str(&shown_text(message));
                }
                out.push_str(pad);
                self.bar(out);
                out.push(' ');
                out.push_str(&" ".repeat(column));
                self.paint.push(out, style, &strokes);
                out.push('\n');
            }
        }
    }

    /// ` |` after the gutter's padding.
    fn bar(&self, out: &mut String) {
        out.push(' ');
        self.paint.push(out, Style::Secondary, "|");
    }

    /// An empty gutter line: `  |`.
    fn gutter(&self, out: &mut String, pad: &str) {
        out.push_str(pad);
        self.bar(out);
        out.push('\n');
    }

    /// `  = help: text`
    fn note(&self, out: &mut String, pad: &str, kind: &str, text: &str) {
        let _ = write!(out, "{pad} ");
        self.paint.push(out, Style::Secondary, "=");
        out.push(' ');
        self.paint.push(out, Style::Bold, kind);
        let _ = writeln!(out, ": {text}");
    }
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The byte offset `count` characters before `at`, not before `floor`.
fn back_chars(text: &str, floor: usize, at: usize, count: usize) -> usize {
    let at = floor_boundary(text, at.max(floor));
    text.get(floor..at)
        .and_then(|before| before.char_indices().rev().take(count).last())
        .map_or(at, |(i, _)| floor + i)
}

/// The byte offset `count` characters after `at`, not after `ceiling`.
fn forward_chars(text: &str, at: usize, ceiling: usize, count: usize) -> usize {
    text.get(at..ceiling)
        .and_then(|after| after.char_indices().nth(count))
        .map_or(ceiling, |(i, _)| at + i)
}

/// `at`, moved back to a character boundary.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// How a piece of a source line is shown: tabs as four spaces, and what
/// [`chars::needs_escape`] escaped.
fn display(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\t' {
            out.push_str("    ");
        } else if chars::needs_escape(c) {
            chars::escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// Terminal columns [`display`] takes for `text`.
fn width_of(text: &str) -> usize {
    let mut escaped = String::new();
    text.chars()
        .map(|c| {
            if c == '\t' {
                4
            } else if chars::needs_escape(c) {
                escaped.clear();
                chars::escape(c, &mut escaped);
                escaped.len()
            } else {
                c.width().unwrap_or(0)
            }
        })
        .sum()
}

/// A position for machines: 1-based line and column (in characters).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// Byte offsets, for tools that slice the source.
    pub start: u32,
    pub end: u32,
}

impl Location {
    pub fn of(sources: &SourceMap, span: Span) -> Location {
        let (file, (line, column), (end_line, end_column)) = match sources.get(span.file) {
            Some(f) => (
                f.display.clone(),
                f.line_col(span.start),
                f.line_col(span.end),
            ),
            None => (String::new(), (0, 0), (0, 0)),
        };
        Location {
            file,
            line,
            column,
            end_line,
            end_column,
            start: span.start,
            end: span.end,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonLabel {
    #[serde(flatten)]
    pub location: Location,
    pub message: String,
}

/// The JSON form of a diagnostic (`grant check --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    #[serde(flatten)]
    pub location: Location,
    pub label: String,
    pub related: Vec<JsonLabel>,
    pub help: Option<String>,
}

impl JsonDiagnostic {
    pub fn of(sources: &SourceMap, diagnostic: &Diagnostic) -> JsonDiagnostic {
        JsonDiagnostic {
            code: diagnostic.code.as_str(),
            severity: diagnostic.severity.as_str(),
            message: diagnostic.message.clone(),
            location: Location::of(sources, diagnostic.primary.span),
            label: diagnostic.primary.message.clone(),
            related: diagnostic
                .secondary
                .iter()
                .map(|l| JsonLabel {
                    location: Location::of(sources, l.span),
                    message: l.message.clone(),
                })
                .collect(),
            help: diagnostic.help.clone(),
        }
    }
}
