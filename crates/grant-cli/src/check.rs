//! `grant check PATH...`: every policy under the paths, all diagnostics.

use std::io::Write;
use std::path::PathBuf;

use grant_syntax::chars::printable;
use grant_syntax::render::{self, JsonDiagnostic};
use grant_syntax::source::discover_policies;
use grant_syntax::{Diagnostic, SourceMap};
use serde::Serialize;

use crate::Exit;
use crate::output::{ColorChoice, count};
use crate::report::{self, Finding, Tool};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policy files or directories. A directory that directly holds
    /// `.grant` files is one policy; one that holds none holds the
    /// policies below it, and each is checked on its own.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    format: CheckFormat,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

/// `grant check --format`: the shared formats, and two for CI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    /// Rendered for people.
    Human,
    /// One JSON document.
    Json,
    /// A SARIF 2.1.0 log, for code scanning (docs/ci.md).
    Sarif,
    /// GitHub Actions workflow commands: an annotation per diagnostic.
    Github,
}

/// One checked policy.
struct Report {
    path: PathBuf,
    sources: SourceMap,
    diagnostics: Vec<Diagnostic>,
}

#[derive(Serialize)]
struct JsonPolicy {
    path: String,
    files: Vec<String>,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

#[derive(Serialize)]
struct JsonOutput {
    errors: usize,
    warnings: usize,
    policies: Vec<JsonPolicy>,
    /// How many hidden entries were skipped, and which.
    skipped_hidden: usize,
    skipped_hidden_paths: Vec<String>,
}

pub fn run(args: &CheckArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let mut policies = Vec::new();
    let mut hidden = Vec::new();
    for path in &args.paths {
        match discover_policies(path) {
            Ok(found) => {
                policies.extend(found.policies);
                hidden.extend(found.hidden);
            }
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                return Exit::Usage;
            }
        }
    }
    let mut reports = Vec::with_capacity(policies.len());
    for policy in policies {
        let sources = match SourceMap::read(&policy) {
            Ok(sources) => sources,
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                return Exit::Usage;
            }
        };
        // Compiling too: a rule over the cost budget is a policy error.
        let built = grant_compile::build(&sources);
        reports.push(Report {
            path: policy.path,
            sources,
            diagnostics: built.diagnostics,
        });
    }
    let errors: usize = reports
        .iter()
        .map(|r| r.diagnostics.iter().filter(|d| d.is_error()).count())
        .sum();
    let warnings: usize = reports
        .iter()
        .map(|r| r.diagnostics.iter().filter(|d| !d.is_error()).count())
        .sum();
    let note = hidden_note(&hidden);
    let written = match args.format {
        CheckFormat::Human => {
            let color = args.color.enabled();
            write_human(stdout, &reports, errors, warnings, note.as_deref(), color)
        }
        CheckFormat::Json => write_json(stdout, &reports, errors, warnings, &hidden),
        CheckFormat::Sarif => {
            // The log on stdout stays a SARIF document; the note is for
            // whoever reads the run.
            if let Some(note) = &note {
                let _ = writeln!(stderr, "{note}");
            }
            report::sarif::write(
                stdout,
                &Tool::grant(),
                &report::diagnostics::rules(),
                &findings(&reports),
            )
        }
        // Plain lines are valid beside workflow commands (the summary is
        // one already).
        CheckFormat::Github => report::github::write(stdout, &findings(&reports))
            .and_then(|()| {
                note.as_ref()
                    .map_or(Ok(()), |note| writeln!(stdout, "{note}"))
            })
            .and_then(|()| writeln!(stdout, "{}", summary(&reports, errors, warnings))),
    };
    if let Err(error) = written {
        let _ = writeln!(stderr, "error: cannot write output: {error}");
        return Exit::Usage;
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        Exit::PolicyErrors
    } else {
        Exit::Ok
    }
}

fn write_human(
    out: &mut dyn Write,
    reports: &[Report],
    errors: usize,
    warnings: usize,
    note: Option<&str>,
    color: bool,
) -> std::io::Result<()> {
    // One budget for the run: a tree of many policies prints no more than
    // one policy would, and the note counts the rest.
    let mut renderer = render::Human::new(color);
    for report in reports {
        write!(
            out,
            "{}",
            renderer.render(&report.sources, &report.diagnostics)
        )?;
    }
    if let Some(omitted) = renderer.omitted_note() {
        writeln!(out, "{omitted}")?;
    }
    if let Some(note) = note {
        writeln!(out, "{note}")?;
    }
    writeln!(out, "{}", summary(reports, errors, warnings))
}

/// `note: skipped 2 hidden entries ...`, when any were skipped: hidden
/// files and directories hold no rules, and the user should know that.
fn hidden_note(hidden: &[PathBuf]) -> Option<String> {
    const SHOWN: usize = 5;
    if hidden.is_empty() {
        return None;
    }
    let mut names: Vec<String> = hidden
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{}`", printable(&p.display().to_string())))
        .collect();
    if hidden.len() > SHOWN {
        names.push(format!("and {} more", hidden.len() - SHOWN));
    }
    Some(format!(
        "note: skipped {} (names starting with `.` are not read): {}",
        count(hidden.len(), "hidden entry", "hidden entries"),
        names.join(", ")
    ))
}

/// `checked 3 policies (4 files): 0 errors, 0 warnings`
fn summary(reports: &[Report], errors: usize, warnings: usize) -> String {
    let files: usize = reports.iter().map(|r| r.sources.len()).sum();
    format!(
        "checked {} ({}): {}, {}",
        count(reports.len(), "policy", "policies"),
        count(files, "file", "files"),
        count(errors, "error", "errors"),
        count(warnings, "warning", "warnings")
    )
}

/// Every diagnostic of every policy, for the CI formats.
fn findings(reports: &[Report]) -> Vec<Finding> {
    reports
        .iter()
        .flat_map(|r| {
            r.diagnostics
                .iter()
                .map(|d| report::diagnostics::finding(&r.sources, d))
        })
        .collect()
}

fn write_json(
    out: &mut dyn Write,
    reports: &[Report],
    errors: usize,
    warnings: usize,
    hidden: &[PathBuf],
) -> std::io::Result<()> {
    let policies = reports
        .iter()
        .map(|report| JsonPolicy {
            path: report.path.display().to_string(),
            files: report
                .sources
                .files()
                .map(|(_, f)| f.display.clone())
                .collect(),
            errors: report.diagnostics.iter().filter(|d| d.is_error()).count(),
            warnings: report.diagnostics.iter().filter(|d| !d.is_error()).count(),
            diagnostics: report
                .diagnostics
                .iter()
                .map(|d| JsonDiagnostic::of(&report.sources, d))
                .collect(),
        })
        .collect();
    serde_json::to_writer_pretty(
        &mut *out,
        &JsonOutput {
            errors,
            warnings,
            policies,
            skipped_hidden: hidden.len(),
            skipped_hidden_paths: hidden.iter().map(|p| p.display().to_string()).collect(),
        },
    )?;
    writeln!(out)
}
