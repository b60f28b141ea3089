//! `grant check` end to end: exit codes, formats, directories, I/O errors.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_tests::{grant, path};

#[test]
fn examples_are_clean() {
    let run = grant(&["check", &path("examples"), "--deny-warnings"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("checked 8 policies"), "{}", run.stdout);
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

/// The renderer's budget is the run's, not each policy's: thirty policies
/// of ten errors print 200 diagnostics and count the other 100.
#[test]
fn many_policies_share_one_budget_of_shown_diagnostics() {
    let dir = std::env::temp_dir().join(format!("grant-budget-{}", std::process::id()));
    for i in 0..30 {
        let policy = dir.join(format!("p{i:02}"));
        std::fs::create_dir_all(&policy).unwrap();
        let rules: String = (0..10)
            .map(|j| format!("allow tool \"x\" when q{j} ttl 5m\n"))
            .collect();
        std::fs::write(policy.join("a.grant"), rules).unwrap();
    }
    let run = grant(&["check", dir.to_str().unwrap(), "--color", "never"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout.matches("\nerror[G").count() + 1, 200);
    assert!(
        run.stdout.ends_with(
            "note: 100 more diagnostics (100 errors, 0 warnings) not shown; `--format json` lists every one\n\
             checked 30 policies (30 files): 300 errors, 0 warnings\n"
        ),
        "{}",
        &run.stdout[run.stdout.len() - 400..]
    );
}
