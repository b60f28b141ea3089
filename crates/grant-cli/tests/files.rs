//! Which files make a policy, for every command: directory links followed
//! (with loops refused), hidden entries skipped and counted, FIFOs and
//! devices refused without blocking, and the directory rule (a directory
//! of several policies is checked, tested and formatted policy by policy,
//! and refused where one policy is needed). Each test builds its files in
//! its own scratch directory.

// Symbolic links, FIFOs, sockets and devices as Unix has them.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use grant_cli::Exit;
use serde_json::Value;
use support::{binary, grant};

const ALLOW_ALL: &str = "allow tool * ttl 5m\n";
const DENY_PAYMENTS: &str = "deny tool \"payments.*\"\n";

/// A fresh directory holding `files`.
fn scratch(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("files")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn at(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// `text` with the scratch directory written as `<dir>`.
fn redact(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "<dir>")
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn effect(dir: &Path, policy: &str, request: &str) -> (Exit, Value) {
    let run = grant(&[
        "eval",
        "--policy",
        &at(dir, policy),
        "--request",
        &at(dir, request),
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    (run.exit, serde_json::from_str(&run.stdout).unwrap())
}

/// The regression: a shared deny pulled in through a directory link was
/// skipped, and the policy allowed what it should deny.
#[test]
fn a_deny_through_a_directory_link_is_enforced() {
    let dir = scratch(
        "dir-link",
        &[
            ("shared/deny.grant", DENY_PAYMENTS),
            ("policy/allow.grant", ALLOW_ALL),
            ("payout.json", r#"{"tool": "payments.payout"}"#),
            (
                "shared-tests/deny.test.toml",
                "[[case]]\nname = \"payouts are denied\"\ntool = \"payments.payout\"\nexpect.effect = \"deny\"\n",
            ),
        ],
    );
    symlink("../shared", dir.join("policy/shared")).unwrap();
    let (_, decision) = effect(&dir, "policy", "payout.json");
    assert_eq!(decision["effect"], "deny", "{decision:#}");
    assert_eq!(decision["rules"][0]["id"], "shared/deny.grant:1");

    let run = grant(&["check", &at(&dir, "policy")]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with("checked 1 policy (2 files): 0 errors, 0 warnings\n")
    );

    // Test files come through directory links too.
    symlink("../shared-tests", dir.join("policy/tests")).unwrap();
    let run = grant(&["test", &at(&dir, "policy")]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("ok    payouts are denied"),
        "{}",
        run.stdout
    );
}

/// A directory of several policies: `check`, `test` and `fmt` take each;
/// `eval`, `inspect` and the engine refuse it, naming them. Nothing merges
/// them: `b`'s deny never decides under `a`.
#[test]
fn separate_policies_are_never_merged() {
    let dir = scratch(
        "several",
        &[
            ("all/a/policy.grant", ALLOW_ALL),
            (
                "all/a/policy.test.toml",
                "[[case]]\nname = \"payouts are allowed\"\ntool = \"payments.payout\"\nexpect.effect = \"allow\"\n",
            ),
            ("all/b/policy.grant", DENY_PAYMENTS),
            ("all/b/more/rules.grant", "allow tool  \"x\" ttl 1m\n"),
            ("payout.json", r#"{"tool": "payments.payout"}"#),
        ],
    );
    let expected = format!(
        "error: `{0}/all` holds 2 separate policies, not one: `{0}/all/a` and `{0}/all/b`; \
         pass one of them\n",
        dir.display()
    );
    let request = at(&dir, "payout.json");
    let run = grant(&["eval", "--policy", &at(&dir, "all"), "--request", &request]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("", expected.as_str())
    );
    let run = grant(&["inspect", "--bytecode", &at(&dir, "all")]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(run.stderr, expected);
    let error = grant_engine::Engine::from_path(dir.join("all")).unwrap_err();
    assert!(
        matches!(
            error,
            grant_engine::PolicyError::Load(grant_syntax::LoadError::SeveralPolicies { .. })
        ),
        "{error:?}"
    );

    // Each on its own is fine, and decides by its own rules.
    let (_, decision) = effect(&dir, "all/a", "payout.json");
    assert_eq!(decision["effect"], "allow");
    let (_, decision) = effect(&dir, "all/b", "payout.json");
    assert_eq!(decision["effect"], "deny");

    let run = grant(&["check", &at(&dir, "all")]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with("checked 2 policies (3 files): 0 errors, 0 warnings\n"),
        "{}",
        run.stdout
    );
    // `a`'s test runs against `a` alone: `b`'s deny is not in it.
    let run = grant(&["test", &at(&dir, "all"), "--format", "json"]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    let (a, b) = (at(&dir, "all/a"), at(&dir, "all/b"));
    assert_eq!(statuses, [(a.as_str(), "passed"), (b.as_str(), "no_tests")]);

    let run = grant(&["fmt", "--check", &at(&dir, "all")]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(redact(&run.stdout, &dir), "<dir>/all/b/more/rules.grant\n");
}

/// A test file is its policy's by the same rule: under a directory policy,
/// or beside a one-file policy; one under no policy is an error; a hidden
/// one is not read.
#[test]
fn test_files_follow_the_directory_rule() {
    let case = "[[case]]\nname = \"n\"\ntool = \"payments.payout\"\nexpect.effect = \"deny\"\n";
    let dir = scratch(
        "test-files",
        &[
            ("all/b/policy.grant", DENY_PAYMENTS),
            ("all/b/sub/deep.test.toml", case),
            ("all/b/.draft.test.toml", "not even TOML ["),
        ],
    );
    let run = grant(&["test", &at(&dir, "all")]);
    assert_eq!(run.exit, Exit::Ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("1 passed, 0 failed\n"),
        "{}",
        run.stdout
    );

    std::fs::write(dir.join("all/orphan.test.toml"), case).unwrap();
    let run = grant(&["test", &at(&dir, "all")]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        redact(&run.stderr, &dir),
        "error: `<dir>/all/orphan.test.toml` is not inside any policy under `<dir>/all`, so its \
         cases would never run\n  = help: put a policy's tests in its directory, or \
         `x.test.toml` beside a one-file policy `x.grant`\n"
    );
}

/// Hidden entries are skipped, and `check` says how many, in every format.
#[test]
fn check_counts_hidden_entries() {
    let dir = scratch(
        "hidden",
        &[
            ("p/rules.grant", ALLOW_ALL),
            ("p/.#rules.grant", "this is an editor lock file"),
            ("p/.old/deny.grant", DENY_PAYMENTS),
            ("p/.gitignore", "*.tmp"),
        ],
    );
    let path = at(&dir, "p");
    let run = grant(&["check", &path]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout, &dir), @r"
    note: skipped 2 hidden entries (names starting with `.` are not read): `<dir>/p/.#rules.grant`, `<dir>/p/.old`
    checked 1 policy (1 file): 0 errors, 0 warnings
    ");

    let run = grant(&["check", &path, "--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["skipped_hidden"], 2);
    assert_eq!(
        json["skipped_hidden_paths"],
        serde_json::json!([at(&dir, "p/.#rules.grant"), at(&dir, "p/.old")])
    );

    // SARIF stays one JSON document; the note goes to stderr.
    let run = grant(&["check", &path, "--format", "sarif"]);
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(
        run.stderr.starts_with("note: skipped 2 hidden entries"),
        "{}",
        run.stderr
    );

    let run = grant(&["check", &path, "--format", "github"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("note: skipped 2 hidden entries"),
        "{}",
        run.stdout
    );
    assert!(lines[1].starts_with("checked 1 policy"), "{}", run.stdout);

    // Without hidden entries, no note and an empty field.
    std::fs::remove_file(dir.join("p/.#rules.grant")).unwrap();
    std::fs::remove_dir_all(dir.join("p/.old")).unwrap();
    let run = grant(&["check", &path]);
    assert!(!run.stdout.contains("note:"), "{}", run.stdout);
    let run = grant(&["check", &path, "--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["skipped_hidden"], 0);
}

/// A FIFO named like a policy or test file is an error naming it, from
/// every command, never a hang (the binary runs with a deadline).
#[test]
fn a_fifo_is_an_error_never_a_hang() {
    let dir = scratch(
        "fifo",
        &[("p/rules.grant", ALLOW_ALL), ("r.json", r#"{"tool": "x"}"#)],
    );
    mkfifo(&dir.join("p/x.grant"));
    let fifo = at(&dir, "p/x.grant");
    let expected = format!("error: `{fifo}` is a FIFO (named pipe), not a regular file\n");
    let policy = at(&dir, "p");
    let request = at(&dir, "r.json");
    for args in [
        vec!["check", policy.as_str()],
        vec!["check", fifo.as_str()],
        vec!["eval", "--policy", policy.as_str(), "--request", &request],
        vec!["eval", "--policy", fifo.as_str(), "--request", &request],
        vec!["inspect", "--bytecode", policy.as_str()],
        vec!["fmt", policy.as_str()],
        vec!["fmt", fifo.as_str()],
        vec!["test", policy.as_str()],
    ] {
        let (code, stdout, stderr) = binary(&args);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr, expected, "{args:?}");
    }

    // A test file too.
    std::fs::remove_file(dir.join("p/x.grant")).unwrap();
    mkfifo(&dir.join("p/x.test.toml"));
    let (code, _, stderr) = binary(&["test", &policy]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        format!(
            "error: `{}` is a FIFO (named pipe), not a regular file\n",
            at(&dir, "p/x.test.toml")
        )
    );
    // Beside a one-file policy, it is read like a test file, and refused.
    std::fs::rename(dir.join("p/x.test.toml"), dir.join("p/rules.test.toml")).unwrap();
    let (code, _, stderr) = binary(&["test", &at(&dir, "p/rules.grant")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("rules.test.toml` is a FIFO"), "{stderr}");
}

/// A device given as a policy is refused; so is a link to one.
#[test]
fn a_device_is_an_error() {
    let (code, _, stderr) = binary(&["check", "/dev/null"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "error: `/dev/null` is a character device, not a regular file\n"
    );
    let dir = scratch("device", &[("p/rules.grant", ALLOW_ALL)]);
    symlink("/dev/zero", dir.join("p/zero.grant")).unwrap();
    let (code, _, stderr) = binary(&["check", &at(&dir, "p")]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.ends_with("p/zero.grant` is a character device, not a regular file\n"),
        "{stderr}"
    );
}

/// A directory loop and a broken link are errors naming them.
#[test]
fn loops_and_broken_links_are_errors() {
    let dir = scratch("loop", &[("p/a/rules.grant", ALLOW_ALL)]);
    symlink("..", dir.join("p/a/loop")).unwrap();
    let run = grant(&["check", &at(&dir, "p")]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        redact(&run.stderr, &dir),
        "error: `<dir>/p/a/loop` (a symbolic link to `..`) leads back to `<dir>/p`, a directory \
         that contains it: a directory loop\n"
    );

    let dir = scratch("broken", &[("p/rules.grant", ALLOW_ALL)]);
    symlink("../gone", dir.join("p/shared")).unwrap();
    let run = grant(&["eval", "--policy", &at(&dir, "p"), "--request", "-"]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        redact(&run.stderr, &dir),
        "error: `<dir>/p/shared` is a broken symbolic link: its target `../gone` does not exist\n"
    );
}
