//! The three reports of a run: for people, JSON for machines, JUnit XML for
//! CI test views. All say the same thing; the failure table is rendered in
//! one place ([`Outcome::table`]) and shared by the human and JUnit forms.

use crate::report::{Finding, Level, Place, Region, RuleInfo, Tool};
use std::io::{self, Write};

use grant_syntax::chars::printable;
use grant_syntax::render::{JsonDiagnostic, Paint, Style};
use serde::Serialize;
use serde_json::Value;

use super::case::{Outcome, Row};
use super::coverage::Coverage;
use super::{PolicyResult, Run};
use crate::output::count;

const INDENT: &str = "        ";

/// A line per case, the side-by-side table under each failure, coverage,
/// and last the line `N passed, M failed`. What the test files and the
/// requests say (names, tools, errors, paths) is shown [`printable`].
pub fn human(out: &mut dyn Write, run: &Run<'_>, color: bool) -> io::Result<()> {
    let paint = Paint(color);
    for policy in &run.policies {
        let path = printable(&policy.path);
        match &policy.result {
            PolicyResult::Errors { count: errors, .. } => writeln!(
                out,
                "{path}: the policy has {}; no case ran (diagnostics are on stderr)",
                count(*errors, "error", "errors")
            )?,
            PolicyResult::Tested {
                files, has_tests, ..
            } => {
                if !has_tests {
                    writeln!(out, "{path}: no tests")?;
                }
                for file in files.iter().filter(|f| !f.outcomes.is_empty()) {
                    let display = printable(&file.file.display);
                    writeln!(out, "{display}")?;
                    for outcome in &file.outcomes {
                        write_case(out, paint, &display, outcome)?;
                    }
                }
            }
        }
    }
    if run.coverage {
        for policy in &run.policies {
            if let PolicyResult::Tested { coverage, .. } = &policy.result {
                write_coverage(out, paint, run, &policy.path, coverage)?;
            }
        }
    }
    if run.filtered_out > 0 {
        writeln!(
            out,
            "{} filtered out by --run",
            count(run.filtered_out, "case", "cases")
        )?;
    }
    writeln!(out, "{} passed, {} failed", run.passed(), run.failed())
}

fn write_case(
    out: &mut dyn Write,
    paint: Paint,
    file: &str,
    outcome: &Outcome<'_>,
) -> io::Result<()> {
    let name = printable(&outcome.case.name);
    if outcome.passed() {
        return writeln!(out, "  {}    {name}", paint.paint(Style::Success, "ok"));
    }
    writeln!(out, "  {}  {name}", paint.paint(Style::Error, "FAIL"))?;
    writeln!(
        out,
        "{INDENT}at {file}:{}:{}",
        outcome.case.line, outcome.case.column
    )?;
    for line in outcome.table(INDENT, true) {
        match line.strip_suffix("<- differs") {
            Some(start) => writeln!(out, "{start}{}", paint.paint(Style::Differs, "<- differs"))?,
            None => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}

fn write_coverage(
    out: &mut dyn Write,
    paint: Paint,
    run: &Run<'_>,
    path: &str,
    coverage: &Coverage,
) -> io::Result<()> {
    let below = match run.coverage_min {
        Some(min) if run.below_min(coverage) => {
            paint.paint(Style::Differs, &format!(", below the minimum of {min}"))
        }
        _ => String::new(),
    };
    writeln!(
        out,
        "coverage of {}: {} of {} ({}){below}",
        printable(path),
        coverage.covered(),
        count(coverage.total, "rule", "rules"),
        coverage.shown()
    )?;
    for rule in &coverage.uncovered {
        writeln!(
            out,
            "  not covered: `{}` at {}:{}",
            printable(&rule.id),
            printable(&rule.file),
            rule.line
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonRun<'a> {
    passed: usize,
    failed: usize,
    filtered_out: usize,
    /// The minimum as given, `"87.5%"`, or null.
    coverage_min: Option<String>,
    policies: Vec<JsonPolicy<'a>>,
}

#[derive(Serialize)]
struct JsonPolicy<'a> {
    path: &'a str,
    /// `passed`, `failed`, `no_tests` or `policy_errors`.
    status: &'static str,
    policy_hash: Option<&'a str>,
    /// The policy's diagnostics, when it has errors.
    diagnostics: &'a [JsonDiagnostic],
    test_files: Vec<&'a str>,
    cases: Vec<JsonCase<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<JsonCoverage<'a>>,
}

#[derive(Serialize)]
struct JsonCase<'a> {
    name: &'a str,
    file: &'a str,
    line: usize,
    column: usize,
    passed: bool,
    /// The rows whose actual value differs from the expected one.
    differ: Vec<&'static str>,
    request: &'a Value,
    expected: JsonExpected<'a>,
    actual: JsonActual<'a>,
}

/// What the case checks; `errors` is always checked.
#[derive(Serialize)]
struct JsonExpected<'a> {
    effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<&'a [String]>,
    errors: bool,
}

#[derive(Serialize)]
struct JsonActual<'a> {
    effect: &'static str,
    ttl_seconds: Option<u64>,
    rules: Vec<String>,
    missing: &'a [String],
    errors: &'a [String],
    reasons: &'a [String],
}

#[derive(Serialize)]
struct JsonCoverage<'a> {
    rules: usize,
    covered: usize,
    percent: f64,
    /// Null without `--coverage-min`.
    minimum_met: Option<bool>,
    uncovered: Vec<JsonRule<'a>>,
}

#[derive(Serialize)]
struct JsonRule<'a> {
    id: &'a str,
    file: &'a str,
    line: usize,
}

/// One JSON document with every case's result.
pub fn json(out: &mut dyn Write, run: &Run<'_>) -> io::Result<()> {
    let policies = run
        .policies
        .iter()
        .map(|policy| match &policy.result {
            PolicyResult::Errors { diagnostics, .. } => JsonPolicy {
                path: &policy.path,
                status: "policy_errors",
                policy_hash: None,
                diagnostics,
                test_files: Vec::new(),
                cases: Vec::new(),
                coverage: None,
            },
            PolicyResult::Tested {
                policy_hash,
                files,
                has_tests,
                coverage,
            } => {
                let cases: Vec<JsonCase> = files
                    .iter()
                    .flat_map(|f| f.outcomes.iter().map(|o| json_case(&f.file.display, o)))
                    .collect();
                let status = if !has_tests {
                    "no_tests"
                } else if cases.iter().all(|c| c.passed) {
                    "passed"
                } else {
                    "failed"
                };
                JsonPolicy {
                    path: &policy.path,
                    status,
                    policy_hash: Some(policy_hash),
                    diagnostics: &[],
                    test_files: files.iter().map(|f| f.file.display.as_str()).collect(),
                    cases,
                    coverage: run.coverage.then(|| JsonCoverage {
                        rules: coverage.total,
                        covered: coverage.covered(),
                        percent: coverage.percent(),
                        minimum_met: run.coverage_min.map(|_| !run.below_min(coverage)),
                        uncovered: coverage
                            .uncovered
                            .iter()
                            .map(|r| JsonRule {
                                id: &r.id,
                                file: &r.file,
                                line: r.line,
                            })
                            .collect(),
                    }),
                }
            }
        })
        .collect();
    let document = JsonRun {
        passed: run.passed(),
        failed: run.failed(),
        filtered_out: run.filtered_out,
        coverage_min: run.coverage_min.map(|m| m.to_string()),
        policies,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

fn json_case<'a>(file: &'a str, outcome: &'a Outcome<'a>) -> JsonCase<'a> {
    let case = outcome.case;
    let decision = &outcome.decision;
    JsonCase {
        name: &case.name,
        file,
        line: case.line,
        column: case.column,
        passed: outcome.passed(),
        differ: outcome.differ.iter().map(|r| r.as_str()).collect(),
        request: &case.request,
        expected: JsonExpected {
            effect: super::case::effect(case.expect.effect),
            ttl_seconds: case.expect.ttl,
            rules: case.expect.rules.as_deref(),
            missing: case.expect.missing.as_deref(),
            errors: case.expect.errors.unwrap_or(false),
        },
        actual: JsonActual {
            effect: super::case::effect(decision.effect),
            ttl_seconds: decision.ttl_seconds,
            rules: super::case::rule_ids(decision),
            missing: &decision.missing,
            errors: &decision.errors,
            reasons: &decision.reasons,
        },
    }
}

/// JUnit XML: a `testsuite` per policy, a `testcase` per case (its
/// `classname` the test file), failures carrying the side-by-side table.
/// A policy with errors gets one `testcase` with an `error`; with
/// `--coverage-min`, each policy gets a `coverage` testcase that fails below
/// the minimum.
pub fn junit(out: &mut dyn Write, run: &Run<'_>) -> io::Result<()> {
    let mut suites = String::new();
    let (mut total_tests, mut total_failures, mut total_errors) = (0, 0, 0);
    for policy in &run.policies {
        let path = &policy.path;
        let mut body = String::new();
        let (mut tests, mut failures, mut errors) = (0, 0, 0);
        match &policy.result {
            PolicyResult::Errors {
                count: n, rendered, ..
            } => {
                tests += 1;
                errors += 1;
                body.push_str(&format!(
                    "    <testcase name=\"policy\" classname=\"{}\">\n      <error message=\"{}\" type=\"policy errors\">{}</error>\n    </testcase>\n",
                    attr(path),
                    attr(&format!("the policy has {}", count(*n, "error", "errors"))),
                    text(rendered)
                ));
            }
            PolicyResult::Tested {
                files, coverage, ..
            } => {
                if run.coverage {
                    body.push_str(&format!(
                        "    <properties>\n      <property name=\"coverage\" value=\"{}\"/>\n      <property name=\"rules\" value=\"{}\"/>\n      <property name=\"rules_covered\" value=\"{}\"/>\n    </properties>\n",
                        coverage.shown(),
                        coverage.total,
                        coverage.covered()
                    ));
                }
                for file in files {
                    for outcome in &file.outcomes {
                        tests += 1;
                        body.push_str(&format!(
                            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                            attr(&outcome.case.name),
                            attr(&file.file.display),
                            attr(&file.file.display),
                            outcome.case.line
                        ));
                        if outcome.passed() {
                            body.push_str("/>\n");
                            continue;
                        }
                        failures += 1;
                        let mut table = format!(
                            "at {}:{}:{}\n",
                            file.file.display, outcome.case.line, outcome.case.column
                        );
                        for line in outcome.table("", false) {
                            table.push_str(&line);
                            table.push('\n');
                        }
                        body.push_str(&format!(
                            ">\n      <failure message=\"{}\" type=\"decision\">{}</failure>\n    </testcase>\n",
                            attr(&failure_message(outcome)),
                            text(&table)
                        ));
                    }
                }
                if let Some(min) = run.coverage_min {
                    tests += 1;
                    body.push_str(&format!(
                        "    <testcase name=\"{}\" classname=\"{}\"",
                        attr(&format!("rule coverage is at least {min}")),
                        attr(path)
                    ));
                    if run.below_min(coverage) {
                        failures += 1;
                        let mut listing = String::new();
                        for rule in &coverage.uncovered {
                            listing.push_str(&format!(
                                "not covered: `{}` at {}:{}\n",
                                rule.id, rule.file, rule.line
                            ));
                        }
                        body.push_str(&format!(
                            ">\n      <failure message=\"{}\" type=\"coverage\">{}</failure>\n    </testcase>\n",
                            attr(&format!(
                                "{} of {} covered ({}), below the minimum of {min}",
                                coverage.covered(),
                                count(coverage.total, "rule", "rules"),
                                coverage.shown()
                            )),
                            text(&listing)
                        ));
                    } else {
                        body.push_str("/>\n");
                    }
                }
            }
        }
        total_tests += tests;
        total_failures += failures;
        total_errors += errors;
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\">\n{body}  </testsuite>\n",
            attr(path)
        ));
    }
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"grant test\" tests=\"{total_tests}\" failures=\"{total_failures}\" errors=\"{total_errors}\">\n{suites}</testsuites>\n"
    )
}

/// `effect: expected allow, actual deny; ...`, one clause per differing row.
fn failure_message(outcome: &Outcome<'_>) -> String {
    outcome
        .differ
        .iter()
        .map(|&row: &Row| {
            format!(
                "{}: expected {}, actual {}",
                row.as_str(),
                outcome.expected(row),
                outcome.actual(row)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Escapes text content for XML.
fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value for XML (line breaks and tabs kept as
/// character references, which attribute normalisation would otherwise turn
/// into spaces).
fn attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            // Not allowed in XML 1.0 at all, not even as references: shown
            // as Rust-style escapes instead.
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            _ => out.push(c),
        }
    }
    out
}

/// The rule ids of `grant test`'s own findings, beside the diagnostic codes
/// of policies with errors.
const TEST_FAILED: &str = "test-failed";
const COVERAGE_BELOW_MINIMUM: &str = "coverage-below-minimum";

/// Every failed case, policy error and coverage shortfall, as findings for
/// CI systems: a failed case points at its `[[case]]` header.
fn findings(run: &Run<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for policy in &run.policies {
        match &policy.result {
            PolicyResult::Errors {
                findings: errors, ..
            } => findings.extend(errors.iter().cloned()),
            PolicyResult::Tested {
                files, coverage, ..
            } => {
                for file in files {
                    for outcome in file.outcomes.iter().filter(|o| !o.passed()) {
                        let case = outcome.case;
                        let first = outcome.differ.first().map(|&row| {
                            format!(
                                ": expected {} {}, got {}",
                                row.as_str(),
                                outcome.expected(row),
                                outcome.actual(row)
                            )
                        });
                        let more = match outcome.differ.len() {
                            0 | 1 => String::new(),
                            n => format!(" (and {} more)", n - 1),
                        };
                        findings.push(Finding {
                            rule_id: TEST_FAILED.to_string(),
                            level: Level::Error,
                            message: format!(
                                "test `{}` failed{}{more}",
                                case.name,
                                first.unwrap_or_default()
                            ),
                            location: Some(Place {
                                file: file.file.display.clone(),
                                region: Some(Region {
                                    line: case.line,
                                    column: case.column,
                                    end_line: case.line,
                                    end_column: case.column,
                                }),
                                message: String::new(),
                            }),
                            related: Vec::new(),
                            help: Some(outcome.table("", false).join("\n")),
                        });
                    }
                }
                if run.below_min(coverage) {
                    let minimum = run.coverage_min.map(|m| m.to_string()).unwrap_or_default();
                    findings.push(Finding {
                        rule_id: COVERAGE_BELOW_MINIMUM.to_string(),
                        level: Level::Error,
                        message: format!(
                            "`{}`: tests make {} of {} rules apply, below the minimum of {minimum}",
                            policy.path,
                            coverage.covered(),
                            coverage.total
                        ),
                        location: None,
                        related: coverage
                            .uncovered
                            .iter()
                            .map(|rule| Place {
                                file: rule.file.clone(),
                                region: Some(Region {
                                    line: rule.line,
                                    column: 1,
                                    end_line: rule.line,
                                    end_column: 1,
                                }),
                                message: format!("no test makes rule `{}` apply", rule.id),
                            })
                            .collect(),
                        help: Some("add cases whose decision this rule decides".to_string()),
                    });
                }
            }
        }
    }
    findings
}

/// SARIF 2.1.0: `grant test`'s rules are `test-failed`,
/// `coverage-below-minimum` and every diagnostic code.
pub fn sarif(out: &mut dyn Write, run: &Run<'_>) -> io::Result<()> {
    let mut rules = vec![
        RuleInfo {
            id: TEST_FAILED.to_string(),
            name: "TestFailed".to_string(),
            title: "a policy test case's decision differs from its expectation".to_string(),
            help_uri: None,
            level: Level::Error,
        },
        RuleInfo {
            id: COVERAGE_BELOW_MINIMUM.to_string(),
            name: "CoverageBelowMinimum".to_string(),
            title: "fewer rules are made to apply by tests than --coverage-min asks".to_string(),
            help_uri: None,
            level: Level::Error,
        },
    ];
    rules.extend(crate::report::diagnostics::rules());
    crate::report::sarif::write(out, &Tool::grant(), &rules, &findings(run))
}

/// GitHub Actions annotations.
pub fn github(out: &mut dyn Write, run: &Run<'_>) -> io::Result<()> {
    crate::report::github::write(out, &findings(run))
}

#[cfg(test)]
mod tests {
    use super::{attr, text};

    #[test]
    fn xml_is_escaped() {
        assert_eq!(
            attr("a<b & \"c\" 'd'\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&#10;"
        );
        assert_eq!(text("]]> <x>\n\u{1}"), "]]&gt; &lt;x&gt;\n\\u{1}");
    }
}
