//! `grant test PATH...`: policy tests that pin decisions.
//!
//! Policies are found as `grant check` finds them. A directory policy's tests
//! are every `*.test.toml` anywhere under it; a one-file policy `x.grant` has
//! `x.test.toml` beside it. Each case is a request and the decision it must
//! get; the engine decides it exactly as it decides an issuer's request.
//! The run then reports every case (`--format human|json|junit`), and with
//! `--coverage` the rules no case made apply.
//!
//! Exit status: 0 all passed (and coverage met), 1 a policy has errors, 2 bad
//! arguments or a test file that cannot be read or is malformed, 4 a case
//! failed or coverage is below `--coverage-min`.

mod case;
mod coverage;
mod file;
mod report;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use grant_engine::{Engine, PolicyError};
use grant_syntax::SourceMap;
use grant_syntax::render::{self, JsonDiagnostic};
use grant_syntax::source::{FoundPolicy, discover_policies, walk};
use regex::Regex;

use crate::Exit;
use crate::output::ColorChoice;
use case::Outcome;
use coverage::{Coverage, Percent};
use file::{FileError, TestFile};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Test files are TOML, named `*.test.toml`: every one under a policy directory, \
or `x.test.toml` beside a one-file policy `x.grant`. See docs/testing.md.\n\n\
Exit status: 0 when every case passed (and coverage reached --coverage-min), 1 when a policy \
has errors, 2 on bad arguments or a test file that cannot be read or is malformed, 4 when a \
case failed or coverage is below --coverage-min."
)]
pub struct TestArgs {
    /// Policy files or directories, found as `grant check` finds them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    format: TestFormat,
    /// Run only the cases whose name matches this regular expression
    /// (anywhere in the name).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    run: Option<Regex>,
    /// Report, per policy, the rules no case made apply, and the coverage.
    #[arg(long)]
    coverage: bool,
    /// Fail (exit 4) when a policy's rule coverage is below PERCENT (0 to
    /// 100, such as `90` or `87.5`). Implies --coverage.
    #[arg(long, value_name = "PERCENT", value_parser = Percent::parse)]
    coverage_min: Option<Percent>,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// A line per case, a table per failure, a summary.
    Human,
    /// One JSON document with every case's result.
    Json,
    /// JUnit XML, for CI test reports.
    Junit,
    /// SARIF 2.1.0: failed cases, policy errors and coverage shortfalls.
    Sarif,
    /// GitHub Actions annotations for the same.
    Github,
}

fn parse_regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|error| error.to_string())
}

/// One policy of the run, with its test files.
struct Target {
    policy: FoundPolicy,
    files: Vec<TestFile>,
}

/// How one policy's tests went.
pub(crate) struct PolicyRun<'t> {
    pub path: String,
    pub result: PolicyResult<'t>,
}

pub(crate) enum PolicyResult<'t> {
    /// The policy has errors; nothing ran.
    Errors {
        count: usize,
        /// Rendered without colour, for JUnit.
        rendered: String,
        diagnostics: Vec<JsonDiagnostic>,
        /// The same diagnostics, for SARIF and GitHub output.
        findings: Vec<crate::report::Finding>,
    },
    Tested {
        policy_hash: String,
        files: Vec<FileRun<'t>>,
        /// Whether the policy has any case at all (before `--run`).
        has_tests: bool,
        coverage: Coverage,
    },
}

pub(crate) struct FileRun<'t> {
    pub file: &'t TestFile,
    pub outcomes: Vec<Outcome<'t>>,
}

/// The whole run, as the reports see it.
pub(crate) struct Run<'t> {
    pub policies: Vec<PolicyRun<'t>>,
    pub filtered_out: usize,
    /// Whether coverage is reported.
    pub coverage: bool,
    pub coverage_min: Option<Percent>,
}

impl Run<'_> {
    pub fn outcomes(&self) -> impl Iterator<Item = &Outcome<'_>> {
        self.policies
            .iter()
            .flat_map(|p| match &p.result {
                PolicyResult::Tested { files, .. } => files.as_slice(),
                PolicyResult::Errors { .. } => &[],
            })
            .flat_map(|f| f.outcomes.iter())
    }

    pub fn passed(&self) -> usize {
        self.outcomes().filter(|o| o.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.outcomes().filter(|o| !o.passed()).count()
    }

    /// Whether `coverage` is below `--coverage-min`.
    pub fn below_min(&self, coverage: &Coverage) -> bool {
        self.coverage_min
            .is_some_and(|min| !min.reached_by(coverage.covered(), coverage.total))
    }

    fn exit(&self) -> Exit {
        let errors = self
            .policies
            .iter()
            .any(|p| matches!(p.result, PolicyResult::Errors { .. }));
        let below = self.policies.iter().any(|p| match &p.result {
            PolicyResult::Tested { coverage, .. } => self.below_min(coverage),
            PolicyResult::Errors { .. } => false,
        });
        if errors {
            Exit::PolicyErrors
        } else if self.failed() > 0 || below {
            Exit::TestFailed
        } else {
            Exit::Ok
        }
    }
}

pub fn run(args: &TestArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let targets = match targets(&args.paths) {
        Ok(targets) => targets,
        Err(errors) => {
            for error in errors {
                let _ = write!(stderr, "{}", error.render());
            }
            return Exit::Usage;
        }
    };
    let mut policies = Vec::with_capacity(targets.len());
    let mut filtered_out = 0;
    for target in &targets {
        let path = target.policy.path.display().to_string();
        let loaded = SourceMap::read(&target.policy)
            .map_err(PolicyError::from)
            .and_then(Engine::from_sources);
        let engine = match loaded {
            Ok(engine) => engine,
            Err(PolicyError::Invalid {
                sources,
                diagnostics,
            }) => {
                let errors =
                    crate::policy::report_errors(&path, &sources, &diagnostics, args.color, stderr);
                policies.push(PolicyRun {
                    path,
                    result: PolicyResult::Errors {
                        count: errors,
                        rendered: render::human(&sources, &diagnostics, false),
                        diagnostics: diagnostics
                            .iter()
                            .map(|d| JsonDiagnostic::of(&sources, d))
                            .collect(),
                        findings: diagnostics
                            .iter()
                            .map(|d| crate::report::diagnostics::finding(&sources, d))
                            .collect(),
                    },
                });
                continue;
            }
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                return Exit::Usage;
            }
        };
        let mut files = Vec::with_capacity(target.files.len());
        for test_file in &target.files {
            let mut outcomes = Vec::new();
            for case in &test_file.cases {
                if args.run.as_ref().is_some_and(|re| !re.is_match(&case.name)) {
                    filtered_out += 1;
                    continue;
                }
                outcomes.push(case::run(&engine, case));
            }
            files.push(FileRun {
                file: test_file,
                outcomes,
            });
        }
        let coverage = Coverage::of(
            &engine,
            files
                .iter()
                .flat_map(|f| f.outcomes.iter().map(|o| &o.decision)),
        );
        policies.push(PolicyRun {
            path,
            result: PolicyResult::Tested {
                policy_hash: engine.policy_hash().to_string(),
                has_tests: target.files.iter().any(|f| !f.cases.is_empty()),
                files,
                coverage,
            },
        });
    }
    let run = Run {
        policies,
        filtered_out,
        coverage: args.coverage || args.coverage_min.is_some(),
        coverage_min: args.coverage_min,
    };
    let written = match args.format {
        TestFormat::Human => report::human(stdout, &run, args.color.enabled()),
        TestFormat::Json => report::json(stdout, &run),
        TestFormat::Junit => report::junit(stdout, &run),
        TestFormat::Sarif => report::sarif(stdout, &run),
        TestFormat::Github => report::github(stdout, &run),
    };
    if let Err(error) = written {
        return crate::output::write_failed(&error, stderr);
    }
    run.exit()
}

/// The policies under `paths` and their test files, read and checked. Every
/// problem is returned, not only the first.
///
/// Policies are found by the directory rule ([`discover_policies`]), and
/// test files by the same traversal ([`walk`]): a test file belongs to the
/// directory policy it is under, and a one-file policy `x.grant` has
/// `x.test.toml` beside it.
fn targets(paths: &[PathBuf]) -> Result<Vec<Target>, Vec<FileError>> {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if file::is_test_file(path) && !path.is_dir() {
            errors.push(usage(
                format!("`{}` is a test file", path.display()),
                "give the policy it tests: a `.grant` file or the policy's directory",
            ));
            continue;
        }
        let found = match discover_policies(path) {
            Ok(found) => found,
            Err(error) => {
                errors.push(usage(error.to_string(), ""));
                continue;
            }
        };
        let mut tests: Vec<Vec<PathBuf>> = vec![Vec::new(); found.policies.len()];
        if path.is_dir() {
            let under = match walk(path, &file::is_test_file) {
                Ok(under) => under.files,
                Err(error) => {
                    errors.push(usage(error.to_string(), ""));
                    continue;
                }
            };
            let index: HashMap<&Path, usize> = found
                .policies
                .iter()
                .enumerate()
                .map(|(i, policy)| (policy.path.as_path(), i))
                .collect();
            for test in under {
                match test.ancestors().skip(1).find_map(|a| index.get(a)) {
                    Some(&i) => {
                        if let Some(list) = tests.get_mut(i) {
                            list.push(test);
                        }
                    }
                    // A test file that no policy claims would never run:
                    // say so rather than pass without it.
                    None => errors.push(usage(
                        format!(
                            "`{}` is not inside any policy under `{}`, so its cases would never run",
                            test.display(),
                            path.display()
                        ),
                        "put a policy's tests in its directory, or `x.test.toml` beside a one-file policy `x.grant`",
                    )),
                }
            }
        } else if let Some(list) = tests.first_mut() {
            // Anything there is read (and refused if it is no file).
            let beside = file::beside(path);
            if beside.symlink_metadata().is_ok() {
                list.push(beside);
            }
        }
        for (policy, test_paths) in found.policies.into_iter().zip(tests) {
            let mut files = Vec::with_capacity(test_paths.len());
            for test_path in &test_paths {
                match file::load(test_path) {
                    Ok(test_file) => files.push(test_file),
                    Err(error) => errors.push(error),
                }
            }
            targets.push(Target { policy, files });
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(errors)
    }
}

fn usage(message: String, help: &str) -> FileError {
    FileError {
        file: String::new(),
        at: None,
        message,
        help: (!help.is_empty()).then(|| help.to_string()),
    }
}
