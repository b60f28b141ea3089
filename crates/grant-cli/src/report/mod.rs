//! Findings for CI systems: SARIF 2.1.0 for code scanning ([`sarif`]) and
//! GitHub Actions workflow commands for annotations ([`github`]).
//!
//! The writers know nothing of Grant's diagnostics: they take generic
//! [`Finding`]s (a rule id, a level, a message, a place in a file), so that
//! any command can report through them. [`diagnostics`] turns `grant check`'s
//! diagnostics into findings.

pub mod diagnostics;
pub mod github;
pub mod sarif;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Note,
}

/// A range of text in a file: 1-based lines and columns, columns counted in
/// characters (Unicode code points), the end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// A place a finding points at, with what it says about that place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The file's path as shown to the user, relative to where the command
    /// ran (CI systems resolve it against the repository root).
    pub file: String,
    /// `None` when the finding is about the whole file.
    pub region: Option<Region>,
    /// What is there; may be empty.
    pub message: String,
}

/// One problem found: a diagnostic, a failed test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The id of the rule that found it: a diagnostic code such as `G0201`.
    pub rule_id: String,
    pub level: Level,
    /// What is wrong, in one line.
    pub message: String,
    /// Where; `None` for a finding about no file in particular.
    pub location: Option<Place>,
    /// Related places: the first declaration of a duplicate, say.
    pub related: Vec<Place>,
    /// How to fix it.
    pub help: Option<String>,
}

/// What a rule checks: the SARIF `reportingDescriptor` of a rule id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// `G0201`
    pub id: String,
    /// An identifier-like name: `DuplicateType`.
    pub name: String,
    /// One line: `type declared twice`.
    pub title: String,
    /// Where the rule is documented.
    pub help_uri: Option<String>,
    pub level: Level,
}

/// The tool that ran: SARIF's `tool.driver`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub information_uri: String,
}

impl Tool {
    /// This `grant`.
    pub fn grant() -> Tool {
        Tool {
            name: "grant".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            information_uri: env!("CARGO_PKG_REPOSITORY").to_string(),
        }
    }
}
