//! Rendering diagnostics: ariadne reports for people, a JSON shape for
//! machines. The only place that knows how a diagnostic looks.

use ariadne::{Color, Config, IndexType, Label as AriadneLabel, Report, ReportKind};
use serde::Serialize;

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::SourceMap;
use crate::span::Span;

/// Renders diagnostics as ariadne reports; `color` adds ANSI colours.
pub fn human(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut cache = ariadne::sources(
        sources
            .files()
            .filter(|(id, _)| diagnostics.iter().any(|d| mentions_file(d, *id)))
            .map(|(_, file)| (file.display.clone(), file.text.clone())),
    );
    let config = Config::default()
        .with_color(color)
        .with_index_type(IndexType::Byte);
    let mut out = Vec::new();
    for diagnostic in diagnostics {
        let name = |span: Span| {
            sources
                .get(span.file)
                .map_or_else(String::new, |f| f.display.clone())
        };
        let primary = diagnostic.primary.span;
        let kind = match diagnostic.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let (primary_color, secondary_color) = match diagnostic.severity {
            Severity::Error => (Color::Red, Color::Blue),
            Severity::Warning => (Color::Yellow, Color::Blue),
        };
        let mut report = Report::build(kind, (name(primary), primary.range()))
            .with_config(config)
            .with_code(diagnostic.code.as_str())
            .with_message(&diagnostic.message);
        // ariadne puts consecutive labels of one file under one header only
        // when they come in line order: add them sorted by position.
        let mut labels: Vec<(&crate::diagnostic::Label, bool)> =
            std::iter::once((&diagnostic.primary, true))
                .chain(diagnostic.secondary.iter().map(|l| (l, false)))
                .collect();
        labels.sort_by_key(|(l, _)| (l.span.file, l.span.start));
        for (label, is_primary) in labels {
            let mut ariadne_label = AriadneLabel::new((name(label.span), label.span.range()));
            if !label.message.is_empty() {
                ariadne_label = ariadne_label.with_message(&label.message);
            }
            if color {
                ariadne_label = ariadne_label.with_color(if is_primary {
                    primary_color
                } else {
                    secondary_color
                });
            }
            report = report.with_label(ariadne_label);
        }
        if let Some(help) = &diagnostic.help {
            report = report.with_help(help);
        }
        // Writing to a Vec cannot fail for I/O reasons; a source the cache
        // lacks would, and then the plain one-line form stands in.
        if report.finish().write(&mut cache, &mut out).is_err() {
            out.extend_from_slice(short(sources, diagnostic).as_bytes());
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mentions_file(diagnostic: &Diagnostic, file: crate::span::FileId) -> bool {
    diagnostic.primary.span.file == file || diagnostic.secondary.iter().any(|l| l.span.file == file)
}

/// `file:line:col: error[G0101]: message`, one line.
pub fn short(sources: &SourceMap, diagnostic: &Diagnostic) -> String {
    format!(
        "{}: {}[{}]: {}",
        sources.location(diagnostic.primary.span),
        diagnostic.severity.as_str(),
        diagnostic.code.as_str(),
        diagnostic.message
    )
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
