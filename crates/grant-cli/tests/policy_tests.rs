//! `grant test` end to end: the examples' own tests, failures shown side by
//! side, JSON and JUnit output, `--run`, coverage and its exact minimum,
//! malformed test files, policies with errors, and exit codes.
//!
//! Inputs are in `tests/inputs/policy_tests/`. Each malformed test file in
//! `malformed/cases/` is run against `malformed/policy.grant`, copied into a
//! scratch directory together, and its snapshot holds the file and the error.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};

use grant_cli::Exit;
use serde_json::Value;
use support::{example_dirs, grant, policy_hash, redact_hash, relative};

const INPUTS: &str = "tests/inputs/policy_tests";
const BROKEN: &str = "tests/inputs/policy_tests/broken";
const COVERAGE: &str = "tests/inputs/policy_tests/coverage";

/// The last line of `text`.
fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

/// A fresh, empty scratch directory for this process.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("grant-policy-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The examples ship with tests that pass and make every rule apply.
#[test]
fn examples_pass_with_full_coverage() {
    let run = grant(&[
        "test",
        "../../examples",
        "--coverage",
        "--coverage-min",
        "100",
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    assert!(!run.stdout.contains("no tests"), "{}", run.stdout);
    assert!(!run.stdout.contains("not covered"), "{}", run.stdout);
    for example in example_dirs() {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("coverage of {}: ", relative(&example))))
            .unwrap_or_else(|| panic!("no coverage line for {}", example.display()));
        assert!(line.ends_with("(100.0%)"), "{line}");
    }
    let summary = last_line(&run.stdout);
    let passed: usize = summary
        .strip_suffix(" passed, 0 failed")
        .unwrap_or_else(|| panic!("{summary}"))
        .parse()
        .unwrap();
    assert!(passed >= 50, "{summary}");
}

/// A one-file policy's tests are `x.test.toml` beside `x.grant`, found when
/// the policy is given as a file too.
#[test]
fn a_one_file_policy_has_its_tests_beside_it() {
    let run = grant(&["test", "../../examples/github-coding-agent/policy.grant"]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("../../examples/github-coding-agent/policy.test.toml\n"),
        "{}",
        run.stdout
    );
    assert!(last_line(&run.stdout).ends_with(" passed, 0 failed"));
}

/// Failures: the case's place, then expected beside actual for the rows it
/// checks (and errors, for an invalid request), the rows that differ marked.
#[test]
fn a_broken_expectation_fails_side_by_side() {
    let run = grant(&["test", BROKEN, "--color", "never"]);
    assert_eq!(run.exit, Exit::TestFailed, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(last_line(&run.stdout), "2 passed, 4 failed");
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn json_has_every_case_result() {
    let run = grant(&["test", BROKEN, "--format", "json", "--coverage"]);
    assert_eq!(run.exit, Exit::TestFailed, "{}", run.stderr);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["passed"], 2);
    assert_eq!(document["failed"], 4);
    let cases = document["policies"][0]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    assert_eq!(
        cases.iter().filter(|c| c["passed"] == false).count(),
        4,
        "{document:#}"
    );
    insta::assert_snapshot!(redact_hash(&run.stdout, &policy_hash(BROKEN)));
}

#[test]
fn junit_has_a_testcase_per_case() {
    let run = grant(&["test", BROKEN, "--format", "junit", "--coverage-min", "50"]);
    assert_eq!(run.exit, Exit::TestFailed, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
    );
    // The case name with markup in it is escaped, in the attribute.
    assert!(
        run.stdout
            .contains("name=\"names with &lt;xml&gt; &amp; &quot;quotes&quot; are escaped\""),
        "{}",
        run.stdout
    );
    insta::assert_snapshot!(run.stdout);
}

/// `--run` selects cases by a regex search in their names.
#[test]
fn run_filters_cases_by_name() {
    let run = grant(&["test", BROKEN, "--run", "^internal|escaped"]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "tests/inputs/policy_tests/broken/policy.test.toml\n  ok    internal reads are allowed\n  ok    names with <xml> & \"quotes\" are escaped\n4 cases filtered out by --run\n2 passed, 0 failed\n"
    );

    let run = grant(&["test", BROKEN, "--run", r"\(wrong\)$"]);
    assert_eq!(run.exit, Exit::TestFailed);
    assert!(
        run.stdout
            .ends_with("3 cases filtered out by --run\n0 passed, 3 failed\n")
    );

    let run = grant(&["test", BROKEN, "--run", "("]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.contains("--run"), "{}", run.stderr);
}

/// 2 of 3 rules is 66.66...%: enough for 66.6, not for 66.7. The figure
/// shown is rounded down, so it always passes as a minimum.
#[test]
fn coverage_minimum_is_exact() {
    let run = grant(&["test", COVERAGE, "--coverage-min", "66.6"]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(": 2 of 3 rules (66.6%)\n"),
        "{}",
        run.stdout
    );

    let run = grant(&[
        "test",
        COVERAGE,
        "--coverage-min",
        "66.7",
        "--color",
        "never",
    ]);
    assert_eq!(run.exit, Exit::TestFailed);
    insta::assert_snapshot!(run.stdout);

    for passes in ["0", "66", "66.666", "66.6666666666666666"] {
        let run = grant(&["test", COVERAGE, "--coverage-min", passes]);
        assert_eq!(run.exit, Exit::Ok, "{passes}");
    }
    for fails in ["66.67", "66.6666666666666667", "100"] {
        let run = grant(&["test", COVERAGE, "--coverage-min", fails]);
        assert_eq!(run.exit, Exit::TestFailed, "{fails}");
    }
    for bad in ["101", "100.01", "-1", "abc", "66.", ".5", "1e2", "50%", ""] {
        let run = grant(&["test", COVERAGE, &format!("--coverage-min={bad}")]);
        assert_eq!(run.exit, Exit::Usage, "{bad}");
        assert!(
            run.stderr.contains("--coverage-min"),
            "{bad}: {}",
            run.stderr
        );
    }
}

/// 999 of 1000 rules is exactly 99.9%.
#[test]
fn coverage_of_999_in_1000_rules() {
    let dir = scratch("thousand");
    let mut policy = String::new();
    let mut tests = String::new();
    for i in 0..1000 {
        policy.push_str(&format!("@id(\"r{i}\")\nallow tool \"t{i}\" ttl 1m\n"));
        if i > 0 {
            tests.push_str(&format!(
                "[[case]]\nname = \"t{i}\"\ntool = \"t{i}\"\nexpect.effect = \"allow\"\n\n"
            ));
        }
    }
    std::fs::write(dir.join("policy.grant"), policy).unwrap();
    std::fs::write(dir.join("policy.test.toml"), tests).unwrap();
    let dir_text = dir.to_str().unwrap();
    let run = grant(&["test", dir_text, "--coverage-min", "99.9"]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(": 999 of 1000 rules (99.9%)\n  not covered: `r0` at "),
        "{}",
        run.stdout
    );
    assert_eq!(last_line(&run.stdout), "999 passed, 0 failed");
    for fails in ["100", "99.91", "99.900000000000000001"] {
        let run = grant(&["test", dir_text, "--coverage-min", fails]);
        assert_eq!(run.exit, Exit::TestFailed, "{fails}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A policy without tests is reported and passes, at 0% coverage.
#[test]
fn a_policy_without_tests() {
    let path = format!("{INPUTS}/no_tests");
    let run = grant(&["test", &path, "--coverage"]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "tests/inputs/policy_tests/no_tests: no tests\ncoverage of tests/inputs/policy_tests/no_tests: 0 of 1 rule (0.0%)\n  not covered: `policy.grant:2` at tests/inputs/policy_tests/no_tests/policy.grant:2\n0 passed, 0 failed\n"
    );
    let run = grant(&["test", &path, "--coverage-min", "0.1"]);
    assert_eq!(run.exit, Exit::TestFailed);
}

/// A policy with errors: its diagnostics on stderr, as `grant check` shows
/// them, no case run, exit 1, and the other policies still tested.
#[test]
fn a_policy_with_errors() {
    let path = format!("{INPUTS}/policy_errors");
    let run = grant(&["test", &path, BROKEN]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert!(
        run.stderr
            .contains("error[G0205]: attribute `task.aproved` is not declared"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("error: the policy `tests/inputs/policy_tests/policy_errors` has 1 error\n"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.starts_with(
        "tests/inputs/policy_tests/policy_errors: the policy has 1 error; no case ran (diagnostics are on stderr)\n"
    ));
    assert_eq!(last_line(&run.stdout), "2 passed, 4 failed");

    let run = grant(&["test", &path, "--format", "junit"]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert!(
        run.stdout
            .contains("<error message=\"the policy has 1 error\" type=\"policy errors\">")
    );
    let run = grant(&["test", &path, "--format", "json"]);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["policies"][0]["status"], "policy_errors");
    assert_eq!(document["policies"][0]["diagnostics"][0]["code"], "G0205");
}

/// Each malformed test file: exit 2, nothing on stdout, and the error with
/// its place (snapshotted with the file).
#[test]
fn malformed_test_files() {
    let policy = std::fs::read_to_string(format!("{INPUTS}/malformed/policy.grant")).unwrap();
    insta::glob!(
        "inputs/policy_tests/malformed/cases",
        "*.test.toml",
        |path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            let dir = scratch(name.trim_end_matches(".test.toml"));
            std::fs::write(dir.join("policy.grant"), &policy).unwrap();
            let source = std::fs::read_to_string(path).unwrap();
            std::fs::write(dir.join(name), &source).unwrap();
            let run = grant(&["test", dir.to_str().unwrap()]);
            assert_eq!(
                run.exit,
                Exit::Usage,
                "{name}: {}{}",
                run.stdout,
                run.stderr
            );
            assert_eq!(run.stdout, "", "{name}");
            let stderr = run.stderr.replace(dir.to_str().unwrap(), "[dir]");
            assert!(
                stderr.contains(&format!("--> [dir]/{name}:")),
                "{name}: no place in {stderr}"
            );
            insta::assert_snapshot!(format!("{source}\n---\n{stderr}"));
            std::fs::remove_dir_all(&dir).unwrap();
        }
    );
}

/// Several problems in several files are all reported.
#[test]
fn every_malformed_file_is_reported() {
    let dir = scratch("several");
    let cases = Path::new(INPUTS).join("malformed/cases");
    std::fs::copy(
        Path::new(INPUTS).join("malformed/policy.grant"),
        dir.join("policy.grant"),
    )
    .unwrap();
    for name in ["unknown_case_key.test.toml", "bad_effect.test.toml"] {
        std::fs::copy(cases.join(name), dir.join(name)).unwrap();
    }
    let run = grant(&["test", dir.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(run.stderr.matches("error: ").count(), 2, "{}", run.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A test file no policy claims would never run: an error, not a pass.
#[test]
fn a_test_file_outside_every_policy() {
    let run = grant(&["test", &format!("{INPUTS}/orphan")]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        "error: `tests/inputs/policy_tests/orphan/stray.test.toml` is not inside any policy under `tests/inputs/policy_tests/orphan`, so its cases would never run\n  = help: put a policy's tests in its directory, or `x.test.toml` beside a one-file policy `x.grant`\n"
    );
}

#[test]
fn usage_errors() {
    let run = grant(&["test", &format!("{BROKEN}/policy.test.toml")]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.contains("is a test file"), "{}", run.stderr);

    let run = grant(&["test", "tests/inputs/policy_tests/nope"]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr.contains("no such file or directory"),
        "{}",
        run.stderr
    );

    let run = grant(&["test"]);
    assert_eq!(run.exit, Exit::Usage);

    let run = grant(&["test", BROKEN, "--format", "xml"]);
    assert_eq!(run.exit, Exit::Usage);
}

/// The process exits with the codes the library returns.
#[test]
fn binary_exit_codes() {
    let status = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_grant"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(status(&["test", "examples"]), Some(0));
    assert_eq!(
        status(&["test", "crates/grant-cli/tests/inputs/policy_tests/broken"]),
        Some(4)
    );
    assert_eq!(
        status(&[
            "test",
            "crates/grant-cli/tests/inputs/policy_tests/policy_errors"
        ]),
        Some(1)
    );
    assert_eq!(
        status(&["test", "crates/grant-cli/tests/inputs/policy_tests/orphan"]),
        Some(2)
    );
}
