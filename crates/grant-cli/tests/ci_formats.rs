//! `grant check --format sarif` and `--format github`: the SARIF log is valid
//! against the OASIS SARIF 2.1.0 schema (tests/sarif/), and both outputs are
//! snapshotted. The binary runs from the repository root, so that paths are
//! relative, as in CI.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The inputs: a policy with errors, and one with warnings only.
const INPUTS: &str = "crates/grant-cli/tests/inputs/ci";

struct Output {
    code: Option<i32>,
    stdout: String,
}

fn grant(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_grant"))
        .current_dir(root)
        .args(args)
        .output()
        .unwrap();
    Output {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
    }
}

fn sarif(path: &str) -> Value {
    let run = grant(&["check", "--format", "sarif", path]);
    serde_json::from_str(&run.stdout).unwrap()
}

/// The OASIS schema as bundled, with one known defect mended in memory: the
/// patterns of `run.language` and `toolComponent.language` have a stray `]`,
/// which the meta-schema's `regex` format check refuses. Grant's logs have
/// no `language`.
const BROKEN_LANGUAGE_PATTERN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
const MENDED_LANGUAGE_PATTERN: &str = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$";

fn validator() -> jsonschema::Validator {
    let schema = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sarif/sarif-schema-2.1.0.json"),
    )
    .unwrap();
    assert_eq!(schema.matches(BROKEN_LANGUAGE_PATTERN).count(), 2);
    let schema = schema.replace(BROKEN_LANGUAGE_PATTERN, MENDED_LANGUAGE_PATTERN);
    let schema: Value = serde_json::from_str(&schema).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn assert_valid(log: &Value) {
    let validator = validator();
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid SARIF: {errors:#?}");
}

#[test]
fn sarif_is_valid_against_the_schema() {
    for path in [
        INPUTS,
        "examples",
        "tests/ui/g0202_duplicate_attribute.grant",
    ] {
        assert_valid(&sarif(path));
    }
}

/// The schema does reject what it should: the test above can fail.
#[test]
fn the_schema_catches_a_broken_log() {
    let mut log = sarif(INPUTS);
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    assert!(!validator().is_valid(&log));
    let mut log = sarif(INPUTS);
    log["runs"][0]["columnKind"] = Value::from("bytes");
    assert!(!validator().is_valid(&log));
}

#[test]
fn sarif_rules_are_every_code_with_its_docs_entry() {
    let log = sarif("examples");
    let run = &log["runs"][0];
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "grant");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), grant_syntax::Code::ALL.len());
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagnostics.md"),
    )
    .unwrap();
    for (rule, code) in rules.iter().zip(grant_syntax::Code::ALL) {
        assert_eq!(rule["id"], code.as_str());
        assert_eq!(rule["shortDescription"]["text"], code.title());
        let level = rule["defaultConfiguration"]["level"].as_str().unwrap();
        assert_eq!(level, code.severity().as_str());
        // The anchor is that of the code's heading, which the docs link to.
        let uri = rule["helpUri"].as_str().unwrap();
        let anchor = uri.rsplit_once("docs/diagnostics.md#").unwrap().1;
        assert!(
            docs.contains(&format!("(#{anchor})")),
            "no link to #{anchor}"
        );
        assert!(docs.contains(&format!("## {}: {}", code.as_str(), code.title())));
    }
    // The examples are clean.
    assert_eq!(run["results"], Value::Array(Vec::new()));
}

#[test]
fn sarif_results_point_at_the_source() {
    let log = sarif(INPUTS);
    let results = log["runs"][0]["results"].as_array().unwrap();
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert_eq!(
            result["level"],
            rules[index]["defaultConfiguration"]["level"]
        );
    }
    // `true` after `é`: column 29 in characters (30 in bytes).
    let constant = results.iter().find(|r| r["ruleId"] == "G0905").unwrap();
    let region = &constant["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 11);
    assert_eq!(region["startColumn"], 29);
    assert_eq!(region["endColumn"], 33);
    // A secondary label in another file of the policy.
    let duplicate = results.iter().find(|r| r["ruleId"] == "G0202").unwrap();
    let primary = &duplicate["locations"][0]["physicalLocation"];
    let related = &duplicate["relatedLocations"][0]["physicalLocation"];
    assert_eq!(
        primary["artifactLocation"]["uri"],
        "crates/grant-cli/tests/inputs/ci/errors/schema.grant"
    );
    assert_eq!(
        related["artifactLocation"]["uri"],
        "crates/grant-cli/tests/inputs/ci/errors/rules.grant"
    );
    assert_eq!(
        duplicate["relatedLocations"][0]["message"]["text"],
        "first declared here"
    );
}

#[test]
fn sarif_snapshot() {
    let run = grant(&["check", "--format", "sarif", INPUTS]);
    assert_eq!(run.code, Some(1));
    let shown = run.stdout.replace(
        &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\": \"[version]\"",
    );
    insta::assert_snapshot!(shown);
}

#[test]
fn github_snapshot() {
    let run = grant(&["check", "--format", "github", INPUTS]);
    assert_eq!(run.code, Some(1));
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn exit_codes_do_not_depend_on_the_format() {
    for format in ["human", "json", "sarif", "github"] {
        let warnings = format!("{INPUTS}/warnings");
        assert_eq!(
            grant(&["check", "--format", format, "examples"]).code,
            Some(0)
        );
        assert_eq!(
            grant(&["check", "--format", format, &warnings]).code,
            Some(0)
        );
        assert_eq!(
            grant(&["check", "--format", format, "--deny-warnings", &warnings]).code,
            Some(1),
            "{format}"
        );
        assert_eq!(grant(&["check", "--format", format, INPUTS]).code, Some(1));
    }
}

#[test]
fn github_commands_are_one_line_each() {
    let run = grant(&["check", "--format", "github", INPUTS]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Six diagnostics, then the summary.
    assert_eq!(lines.len(), 7, "{}", run.stdout);
    for line in &lines[..6] {
        assert!(
            line.starts_with("::error file=crates/grant-cli/tests/inputs/ci/")
                || line.starts_with("::warning file=crates/grant-cli/tests/inputs/ci/"),
            "{line}"
        );
    }
    assert_eq!(
        lines[6],
        "checked 2 policies (3 files): 2 errors, 4 warnings"
    );
}

const TEST_INPUTS: &str = "crates/grant-cli/tests/inputs/policy_tests";

/// `grant test` reports failed cases, policy errors and a coverage
/// shortfall through the same writers: valid SARIF, pointing at the case.
#[test]
fn grant_test_sarif_is_valid_and_points_at_failed_cases() {
    let broken = format!("{TEST_INPUTS}/broken");
    let run = grant(&["test", "--format", "sarif", &broken]);
    assert_eq!(run.code, Some(4));
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_valid(&log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        assert_eq!(result["ruleId"], "test-failed");
        let location = &result["locations"][0]["physicalLocation"];
        assert!(
            location["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .ends_with(".test.toml")
        );
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
    }

    let coverage = format!("{TEST_INPUTS}/coverage");
    let run = grant(&[
        "test",
        "--format",
        "sarif",
        "--coverage-min",
        "100",
        &coverage,
    ]);
    assert_eq!(run.code, Some(4));
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_valid(&log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "coverage-below-minimum")
    );

    let errors = format!("{TEST_INPUTS}/policy_errors");
    let run = grant(&["test", "--format", "sarif", &errors]);
    assert_eq!(run.code, Some(1));
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_valid(&log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .all(|r| r["ruleId"].as_str().unwrap().starts_with('G'))
    );
}

#[test]
fn grant_test_github_snapshot() {
    let run = grant(&[
        "test",
        "--format",
        "github",
        &format!("{TEST_INPUTS}/broken"),
    ]);
    assert_eq!(run.code, Some(4));
    insta::assert_snapshot!(run.stdout);
    let passing = grant(&["test", "--format", "github", "examples"]);
    assert_eq!(passing.code, Some(0));
}
