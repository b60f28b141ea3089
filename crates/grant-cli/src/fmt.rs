//! `grant fmt PATH...`: rewrite policy files in the canonical layout of
//! `grant_fmt::format`. `--check` and `--diff` only report; a file that does
//! not parse is reported with its diagnostics and never rewritten, and a
//! file is only ever replaced whole ([`durable::write`]).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::PathBuf;

use grant_fmt::FormatError;
use grant_syntax::chars::printable;
use grant_syntax::source::{discover_policies, read_source};
use grant_syntax::{SourceMap, durable, render};

use crate::Exit;
use crate::output::{ColorChoice, write_failed};

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// Files, or directories: every `.grant` file of every policy under
    /// them (found as `grant check` finds them).
    #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
    paths: Vec<PathBuf>,
    /// Write nothing; list the files that are not formatted, and fail (exit
    /// 1) if there are any.
    #[arg(long)]
    check: bool,
    /// Like `--check`, but print a unified diff of each change instead of
    /// the file name.
    #[arg(long)]
    diff: bool,
    /// Format standard input to standard output.
    #[arg(long)]
    stdin: bool,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

/// What formatting one text came to.
enum Outcome {
    /// Already formatted.
    Same,
    /// Formatted text to write.
    Changed(String),
    /// Not formatted, and listed or diffed (`--check`, `--diff`).
    Reported,
    /// Does not parse, or the formatter failed on it; reported on stderr.
    Failed,
}

pub fn run(args: &FmtArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    if args.stdin {
        return run_stdin(args, &mut std::io::stdin().lock(), stdout, stderr);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut seen = HashSet::new();
    for path in &args.paths {
        match discover_policies(path) {
            Ok(found) => {
                let found = found.policies.into_iter().flat_map(|p| p.files);
                files.extend(found.filter(|file| seen.insert(file.clone())));
            }
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                return Exit::Usage;
            }
        }
    }
    let (mut failed, mut io_error) = (false, false);
    for file in &files {
        let shown = file.display().to_string();
        let text = match read_source(file) {
            Ok(text) => text,
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                io_error = true;
                continue;
            }
        };
        match format_one(args, &shown, &text, stdout, stderr) {
            Ok(Outcome::Same) => {}
            Ok(Outcome::Changed(formatted)) => {
                // Never truncate and write: a write that fails half-way would
                // lose the policy.
                if let Err(error) = durable::write(file, formatted.as_bytes()) {
                    let _ = writeln!(stderr, "error: {error}");
                    io_error = true;
                }
            }
            Ok(Outcome::Reported | Outcome::Failed) => failed = true,
            Err(exit) => return exit,
        }
    }
    if io_error {
        Exit::Usage
    } else if failed {
        Exit::PolicyErrors
    } else {
        Exit::Ok
    }
}

/// Formats standard input to standard output (or, with `--check` or
/// `--diff`, only reports).
fn run_stdin(
    args: &FmtArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Exit {
    let mut text = String::new();
    if let Err(error) = stdin.read_to_string(&mut text) {
        let _ = writeln!(stderr, "error: cannot read standard input: {error}");
        return Exit::Usage;
    }
    let formatted = match format_one(args, "<stdin>", &text, stdout, stderr) {
        Ok(Outcome::Same) if args.check || args.diff => return Exit::Ok,
        Ok(Outcome::Same) => text,
        Ok(Outcome::Changed(formatted)) => formatted,
        Ok(Outcome::Reported | Outcome::Failed) => return Exit::PolicyErrors,
        Err(exit) => return exit,
    };
    match stdout.write_all(formatted.as_bytes()) {
        Ok(()) => Exit::Ok,
        Err(error) => write_failed(&error, stderr),
    }
}

/// Formats one text shown as `shown`: lists or diffs it for `--check` and
/// `--diff`, reports it if it does not parse. `Err` when stdout could not be
/// written.
fn format_one(
    args: &FmtArgs,
    shown: &str,
    text: &str,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Outcome, Exit> {
    let formatted = match grant_fmt::format(text) {
        Ok(formatted) => formatted,
        Err(FormatError::Parse(error)) => {
            let mut sources = SourceMap::new();
            sources.add_with_display(shown, shown, text);
            let color = args.color.enabled_on_stderr();
            let _ = write!(
                stderr,
                "{}",
                render::human(&sources, &error.diagnostics, color)
            );
            let _ = writeln!(
                stderr,
                "error: `{}` does not parse, so it was not formatted",
                printable(shown)
            );
            return Ok(Outcome::Failed);
        }
        Err(error) => {
            let _ = writeln!(
                stderr,
                "error: `{}` was not formatted: {error}",
                printable(shown)
            );
            return Ok(Outcome::Failed);
        }
    };
    if formatted == text {
        return Ok(Outcome::Same);
    }
    let written = if args.diff {
        write!(stdout, "{}", unified_diff(shown, text, &formatted))
    } else if args.check {
        writeln!(stdout, "{shown}")
    } else {
        return Ok(Outcome::Changed(formatted));
    };
    written
        .map(|()| Outcome::Reported)
        .map_err(|error| write_failed(&error, stderr))
}

/// `--- path`, `+++ path`, and hunks with three lines of context.
fn unified_diff(shown: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(shown, shown)
        .to_string()
}
