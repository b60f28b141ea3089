//! `grant check` end to end: exit codes, formats, directories, I/O errors.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_tests::{grant, path};

#[test]
fn examples_are_clean() {
    let run = grant(&["check", &path("examples"), "--deny-warnings"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("checked 3 policies"), "{}", run.stdout);
    assert!(
        run.stdout.ends_with("0 errors, 0 warnings\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn errors_exit_1_and_all_files_are_reported() {
    let run = grant(&[
        "check",
        &path("tests/ui/two_files_with_errors"),
        "--color",
        "never",
    ]);
    assert_eq!(run.code, 1);
    // Each file's error is reported with file:line:col.
    assert!(
        run.stdout.contains("two_files_with_errors/a.grant:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("two_files_with_errors/b.grant:"),
        "{}",
        run.stdout
    );
}

#[test]
fn warnings_pass_unless_denied() {
    let file = path("tests/cli/warning_only.grant");
    let run = grant(&["check", &file]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("G0901"), "{}", run.stdout);
    assert_eq!(grant(&["check", &file, "--deny-warnings"]).code, 1);
}

#[test]
fn json_format() {
    let run = grant(&[
        "check",
        &path("tests/ui/two_files_with_errors"),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let policy = &json["policies"][0];
    assert_eq!(json["errors"], policy["errors"]);
    let diagnostics = policy["diagnostics"].as_array().unwrap();
    assert!(diagnostics.len() >= 2);
    for d in diagnostics {
        assert!(d["code"].as_str().unwrap().starts_with('G'));
        assert!(d["line"].as_u64().unwrap() >= 1);
        assert!(d["column"].as_u64().unwrap() >= 1);
        assert!(d["file"].as_str().unwrap().ends_with(".grant"));
    }
    let files: Vec<&str> = diagnostics
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("a.grant"))
            && files.iter().any(|f| f.ends_with("b.grant"))
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let file = path("tests/cli/warning_only.grant");
    // Tests do not run on a terminal: `auto` means no colour.
    assert!(!grant(&["check", &file]).stdout.contains('\u{1b}'));
    assert!(
        grant(&["check", &file, "--color", "always"])
            .stdout
            .contains('\u{1b}')
    );
}

#[test]
fn missing_path_is_a_usage_error() {
    let run = grant(&["check", "/definitely/not/here.grant"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: cannot read `/definitely/not/here.grant`: no such file or directory\n"
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn directory_without_policies_is_a_usage_error() {
    let run = grant(&["check", &path("docs")]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no `.grant` files under"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    assert_eq!(grant(&[]).code, 2);
    assert_eq!(grant(&["check"]).code, 2);
    assert_eq!(grant(&["check", "x", "--format", "yaml"]).code, 2);
    assert_eq!(grant(&["frobnicate"]).code, 2);
    assert_eq!(grant(&["--help"]).code, 0);
}
