//! Grant's checker: from parsed files to a [`Policy`] whose names are resolved
//! and whose expressions are typed, with every problem of every file reported
//! in one run.
//!
//! ```
//! use grant_syntax::SourceMap;
//!
//! let mut sources = SourceMap::new();
//! sources.add("policy.grant", r#"
//!     type env = dev | prod
//!     attr env: env
//!     allow tool "db.read" when env == dev ttl 5m
//! "#);
//! let checked = grant_check::check(&sources);
//! assert!(!checked.has_errors());
//! assert_eq!(checked.policy.rules[0].id, "policy.grant:4");
//! ```

mod declarations;
mod expr;
pub mod fnv;
pub mod glob;
pub mod ir;
pub mod ledger;
mod lints;
mod rules;
mod suggest;

use std::borrow::Cow;

use grant_syntax::ast;
use grant_syntax::diagnostic::{self, Diagnostic};
use grant_syntax::parser::parse_file;
use grant_syntax::{FileId, SourceMap};

pub use ir::Policy;
pub use rules::MAX_USES;

/// The result of checking a policy: the policy (complete when there are no
/// errors) and every diagnostic, sorted by file and position.
#[derive(Debug, Clone)]
pub struct Checked {
    pub policy: Policy,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Parses and checks every file of a policy.
pub fn check(sources: &SourceMap) -> Checked {
    let mut diagnostics = Vec::new();
    let mut files = Vec::with_capacity(sources.len());
    for (id, file) in sources.files() {
        let mut parsed = parse_file(id, &file.text);
        diagnostics.append(&mut parsed.diagnostics);
        files.push((id, parsed.file));
    }
    let syntax_errors = diagnostics.iter().any(Diagnostic::is_error);
    // The files are ours: each rule's text moves into the checked policy,
    // and the rest of its syntax tree is dropped once the rule is checked.
    let mut checked = check_files(sources, Files::Owned(files));
    if syntax_errors {
        // Items lost to syntax errors would make their names look unused.
        checked.diagnostics.retain(Diagnostic::is_error);
    }
    diagnostics.append(&mut checked.diagnostics);
    diagnostic::sort(&mut diagnostics);
    checked.diagnostics = diagnostics;
    checked
}

/// Checks files that are already parsed.
pub fn check_parsed(sources: &SourceMap, files: &[(FileId, ast::File)]) -> Checked {
    check_files(sources, Files::Borrowed(files))
}

/// Parsed files, lent or given to the checker.
enum Files<'a> {
    Borrowed(&'a [(FileId, ast::File)]),
    Owned(Vec<(FileId, ast::File)>),
}

impl Files<'_> {
    fn as_slice(&self) -> &[(FileId, ast::File)] {
        match self {
            Files::Borrowed(files) => files,
            Files::Owned(files) => files,
        }
    }
}

fn check_files(sources: &SourceMap, files: Files<'_>) -> Checked {
    let mut checker = Checker {
        sources,
        diagnostics: Vec::new(),
        errors: 0,
        scope: declarations::Scope::default(),
        suggester: suggest::Suggester::default(),
        variant_owners: std::cell::OnceCell::new(),
    };
    let scope = checker.declare(files.as_slice());
    checker.scope = scope;
    let mut policy = checker.scope.to_policy();
    let items = files
        .as_slice()
        .iter()
        .map(|(_, parsed)| parsed.items.len())
        .sum();
    policy.rules = match files {
        Files::Borrowed(files) => checker.rules(
            items,
            files.iter().flat_map(|(file, parsed)| {
                parsed.items.iter().filter_map(move |item| match item {
                    ast::Item::Rule(rule) => Some((*file, Cow::Borrowed(rule))),
                    _ => None,
                })
            }),
        ),
        Files::Owned(files) => checker.rules(
            items,
            files.into_iter().flat_map(|(file, parsed)| {
                parsed.items.into_iter().filter_map(move |item| match item {
                    ast::Item::Rule(rule) => Some((file, Cow::Owned(rule))),
                    _ => None,
                })
            }),
        ),
    };
    // A rule with errors may not have marked all it uses: lint only clean policies.
    if checker.errors == 0 {
        checker.lint(&policy);
    }
    let mut diagnostics = checker.diagnostics;
    diagnostic::sort(&mut diagnostics);
    Checked {
        policy,
        diagnostics,
    }
}

struct Checker<'a> {
    sources: &'a SourceMap,
    diagnostics: Vec<Diagnostic>,
    /// How many of `diagnostics` are errors: kept as they are reported, so
    /// that asking costs nothing (rules ask before and after each rule).
    errors: usize,
    scope: declarations::Scope,
    suggester: suggest::Suggester,
    /// Variant name to the enums that list it (see `expr.rs`).
    variant_owners: std::cell::OnceCell<fnv::FnvMap<Box<str>, Vec<ir::TypeId>>>,
}

impl Checker<'_> {
    fn report(&mut self, diagnostic: Diagnostic) {
        self.errors += usize::from(diagnostic.is_error());
        self.diagnostics.push(diagnostic);
    }
}
