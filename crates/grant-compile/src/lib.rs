//! Grant's compiler: a checked policy becomes a [`Program`] of compact
//! bytecode with a constant pool and a rule index, and each rule's
//! worst-case cost is known and bounded.
//!
//! ```
//! use grant_syntax::SourceMap;
//!
//! let mut sources = SourceMap::new();
//! sources.add("policy.grant", r#"
//!     attr task.approved: bool
//!     allow tool "db.*" when task.approved ttl 5m
//! "#);
//! let built = grant_compile::build(&sources);
//! let program = built.program.expect("a clean policy compiles");
//! assert_eq!(program.rules.len(), 1);
//! ```

mod compiler;
pub mod disasm;
pub mod index;
pub mod plan;
pub mod program;

/// The glob matcher, shared with the checker's lints (`grant_check::glob`).
pub use grant_check::glob;

use grant_check::Policy;
use grant_syntax::SourceMap;
use grant_syntax::diagnostic::{self, Diagnostic};

pub use compiler::{MAX_RULE_COST, MAX_STACK, compile, compile_owned};
pub use program::Program;

/// Everything the front end and the compiler say about a policy.
#[derive(Debug)]
pub struct Built {
    /// The checked policy (complete when there are no errors).
    pub policy: Policy,
    /// Present when the policy has no errors.
    pub program: Option<Program>,
    /// Errors and warnings of every stage, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Built {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses, checks and compiles a policy, keeping only the program: the
/// checked policy's text moves into it (what loading a policy needs; see
/// [`build`] for the checked policy too). The program is present when the
/// policy has no errors; the diagnostics are those of [`build`].
pub fn build_program(sources: &SourceMap) -> (Option<Program>, Vec<Diagnostic>) {
    let checked = grant_check::check(sources);
    let mut diagnostics = checked.diagnostics;
    if diagnostics.iter().any(Diagnostic::is_error) {
        return (None, diagnostics);
    }
    match compile_owned(checked.policy) {
        Ok(program) => (Some(program), diagnostics),
        Err(mut errors) => {
            diagnostics.append(&mut errors);
            diagnostic::sort(&mut diagnostics);
            (None, diagnostics)
        }
    }
}

/// Parses, checks and compiles a policy.
pub fn build(sources: &SourceMap) -> Built {
    let checked = grant_check::check(sources);
    let mut diagnostics = checked.diagnostics;
    let program = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        match compile(&checked.policy) {
            Ok(program) => Some(program),
            Err(mut errors) => {
                diagnostics.append(&mut errors);
                diagnostic::sort(&mut diagnostics);
                None
            }
        }
    };
    Built {
        policy: checked.policy,
        program,
        diagnostics,
    }
}
