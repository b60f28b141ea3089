//! The built `grant` binary: the exit codes the library returns, and
//! requests read from stdin.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

fn status(args: &[&str]) -> Option<i32> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_grant"))
        .current_dir(root)
        .args(args)
        .output()
        .unwrap()
        .status
        .code()
}

#[test]
fn exit_codes() {
    assert_eq!(status(&["check", "examples"]), Some(0));
    assert_eq!(
        status(&["check", "tests/ui/two_files_with_errors"]),
        Some(1)
    );
    assert_eq!(status(&["check", "/nope"]), Some(2));
    assert_eq!(status(&[]), Some(2));
}

/// Runs the binary from the repository root with `input` on its stdin.
fn piped(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_grant"))
        .current_dir(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// `--request -` and `--requests -` read stdin.
#[test]
fn requests_from_stdin() {
    let policy = "examples/github-coding-agent";
    let request =
        std::fs::read("../../examples/github-coding-agent/requests/read-public-file-allowed.json")
            .unwrap();
    let output = piped(&["eval", "--policy", policy, "--request", "-"], &request);
    assert_eq!(output.status.code(), Some(0));
    let decision: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decision["effect"], "allow");
    assert_eq!(decision["ttl_seconds"], 600);

    let lines = std::fs::read("tests/inputs/mixed.jsonl").unwrap();
    let policy = "examples/deploy-payments-agent";
    let args = [
        "eval",
        "--policy",
        policy,
        "--requests",
        "-",
        "--fail-on-deny",
    ];
    let output = piped(&args, &lines);
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let effects: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["effect"].to_string())
        .collect();
    assert_eq!(
        effects,
        [
            r#""allow""#,
            r#""deny""#,
            r#""deny""#,
            r#""deny""#,
            r#""allow""#
        ]
    );

    // Explained, stdin is named as the source.
    let output = piped(
        &["eval", "--policy", policy, "--request", "-", "--explain"],
        &request,
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("request   stdin\n"), "{stdout}");
}

/// A byte-order mark before a request, from a file or stdin, one request
/// or NDJSON, is ignored: the engine's JSON reader drops it.
#[test]
fn byte_order_mark_before_requests() {
    let policy = "examples/github-coding-agent";
    let request =
        std::fs::read("../../examples/github-coding-agent/requests/read-public-file-allowed.json")
            .unwrap();
    let line: Vec<u8> = request.iter().copied().filter(|&b| b != b'\n').collect();
    let with_mark = |text: &[u8]| [b"\xEF\xBB\xBF".as_slice(), text].concat();
    let output = piped(
        &["eval", "--policy", policy, "--request", "-"],
        &with_mark(&request),
    );
    let decision: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decision["effect"], "allow", "{decision}");
    let lines = [with_mark(&line), b"\n".to_vec(), line, b"\n".to_vec()].concat();
    let output = piped(&["eval", "--policy", policy, "--requests", "-"], &lines);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let effects: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["effect"].to_string())
        .collect();
    assert_eq!(effects, [r#""allow""#, r#""allow""#], "{stdout}");
}
