//! `grant check`'s diagnostics as findings, and its diagnostic codes as rules.

use grant_syntax::diagnostic::{Code, Label, Severity};
use grant_syntax::render::Location;
use grant_syntax::{Diagnostic, SourceMap};

use super::{Finding, Level, Place, Region, RuleInfo};

/// docs/diagnostics.md, where each code has an entry.
const DIAGNOSTICS_DOCS: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/docs/diagnostics.md"
);

/// Every diagnostic code, as a rule documented in docs/diagnostics.md.
pub fn rules() -> Vec<RuleInfo> {
    Code::ALL
        .iter()
        .map(|&code| RuleInfo {
            id: code.as_str().to_string(),
            name: code.name().to_string(),
            title: code.title().to_string(),
            help_uri: Some(format!("{DIAGNOSTICS_DOCS}#{}", code.docs_anchor())),
            level: level(code.severity()),
        })
        .collect()
}

/// One diagnostic of a policy whose files are `sources`.
pub fn finding(sources: &SourceMap, diagnostic: &Diagnostic) -> Finding {
    Finding {
        rule_id: diagnostic.code.as_str().to_string(),
        level: level(diagnostic.severity),
        message: diagnostic.message.clone(),
        location: place(sources, &diagnostic.primary),
        related: diagnostic
            .secondary
            .iter()
            .filter_map(|label| place(sources, label))
            .collect(),
        help: diagnostic.help.clone(),
    }
}

fn level(severity: Severity) -> Level {
    match severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
    }
}

/// A label's place; `None` when its span lies in no file of `sources`.
fn place(sources: &SourceMap, label: &Label) -> Option<Place> {
    sources.get(label.span.file)?;
    let location = Location::of(sources, label.span);
    Some(Place {
        file: location.file,
        region: Some(Region {
            line: location.line,
            column: location.column,
            end_line: location.end_line,
            end_column: location.end_column,
        }),
        message: label.message.clone(),
    })
}
