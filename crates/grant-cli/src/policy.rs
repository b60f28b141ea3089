//! Loading the one policy that `grant eval` and `grant inspect` work on.

use std::io::Write;
use std::path::Path;

use grant_engine::{Engine, PolicyError};
use grant_syntax::chars::printable;
use grant_syntax::{Diagnostic, SourceMap, render};

use crate::Exit;
use crate::output::{ColorChoice, count};

/// Loads the policy at `path` (a file, or a directory that is one policy;
/// a directory of several is refused). A policy with errors gets its diagnostics on `stderr`
/// and [`Exit::PolicyErrors`]; one that cannot be read, [`Exit::Usage`].
pub fn load(path: &Path, color: ColorChoice, stderr: &mut dyn Write) -> Result<Engine, Exit> {
    match Engine::from_path(path) {
        Ok(engine) => Ok(engine),
        Err(PolicyError::Invalid {
            sources,
            diagnostics,
        }) => {
            report_errors(
                &path.display().to_string(),
                &sources,
                &diagnostics,
                color,
                stderr,
            );
            Err(Exit::PolicyErrors)
        }
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            Err(Exit::Usage)
        }
    }
}

/// Writes a policy's diagnostics and a summary line to `stderr`; the number
/// of errors.
pub fn report_errors(
    path: &str,
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
    color: ColorChoice,
    stderr: &mut dyn Write,
) -> usize {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let _ = write!(
        stderr,
        "{}",
        render::human(sources, diagnostics, color.enabled_on_stderr())
    );
    let _ = writeln!(
        stderr,
        "error: the policy `{}` has {}",
        printable(path),
        count(errors, "error", "errors")
    );
    errors
}
