//! `grant fmt`: rewriting in place, `--check`, `--diff`, `--stdin`, and the
//! refusal to touch a file that does not parse. Each test works on copies in
//! its own temporary directory.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use grant_cli::Exit;
use support::grant;

const MESSY: &str =
    "attr task.approved:bool\nallow tool \"db.read\"  when task.approved ttl 5m # ok\n";
const TIDY: &str =
    "attr task.approved: bool\nallow tool \"db.read\" when task.approved ttl 5m  # ok\n";
const BROKEN: &str =
    "attr task.approved: bool\nallow tool \"db.read\" when task.approved = true ttl 5m\n";

/// A fresh directory for one test, with `files` written into it.
fn scratch(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fmt")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// `text` with the scratch directory written as `<dir>`.
fn redact(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "<dir>")
}

#[test]
fn rewrites_in_place() {
    let dir = scratch(
        "rewrites_in_place",
        &[
            ("a.grant", MESSY),
            ("sub/b.grant", TIDY),
            ("notes.txt", MESSY),
        ],
    );
    let run = grant(&["fmt", dir.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert_eq!(read(&dir, "a.grant"), TIDY);
    assert_eq!(read(&dir, "sub/b.grant"), TIDY);
    // Only `.grant` files under a directory.
    assert_eq!(read(&dir, "notes.txt"), MESSY);
    // A file named on its own is formatted whatever its name.
    let run = grant(&["fmt", dir.join("notes.txt").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok);
    assert_eq!(read(&dir, "notes.txt"), TIDY);
}

#[test]
fn check_lists_the_files_that_are_not_formatted() {
    let dir = scratch(
        "check",
        &[("a.grant", MESSY), ("b.grant", TIDY), ("c/d.grant", MESSY)],
    );
    let run = grant(&["fmt", "--check", dir.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(
        redact(&run.stdout, &dir),
        "<dir>/a.grant\n<dir>/c/d.grant\n"
    );
    assert_eq!(run.stderr, "");
    // Nothing was written.
    assert_eq!(read(&dir, "a.grant"), MESSY);

    let run = grant(&["fmt", "--check", dir.join("b.grant").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok);
    assert_eq!(run.stdout, "");
}

#[test]
fn diff_shows_the_change_and_writes_nothing() {
    let dir = scratch("diff", &[("a.grant", MESSY), ("b.grant", TIDY)]);
    let run = grant(&["fmt", "--diff", dir.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(read(&dir, "a.grant"), MESSY);
    insta::assert_snapshot!(redact(&run.stdout, &dir), @r#"
    --- <dir>/a.grant
    +++ <dir>/a.grant
    @@ -1,2 +1,2 @@
    -attr task.approved:bool
    -allow tool "db.read"  when task.approved ttl 5m # ok
    +attr task.approved: bool
    +allow tool "db.read" when task.approved ttl 5m  # ok
    "#);
}

#[test]
fn a_file_that_does_not_parse_is_reported_and_left_alone() {
    let dir = scratch("broken", &[("a.grant", MESSY), ("broken.grant", BROKEN)]);
    let run = grant(&["fmt", "--color", "never", dir.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(read(&dir, "broken.grant"), BROKEN);
    // The other file is formatted all the same.
    assert_eq!(read(&dir, "a.grant"), TIDY);
    let stderr = redact(&run.stderr, &dir);
    assert!(stderr.contains("error[G0101]"), "{stderr}");
    assert!(stderr.contains("<dir>/broken.grant:2:"), "{stderr}");
    assert!(
        stderr.ends_with("error: `<dir>/broken.grant` does not parse, so it was not formatted\n"),
        "{stderr}"
    );

    let run = grant(&["fmt", "--check", dir.join("broken.grant").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(run.stdout, "");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = scratch("usage", &[("notes.txt", "")]);
    let run = grant(&["fmt", dir.join("missing.grant").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(
        run.stderr.contains("no such file or directory"),
        "{}",
        run.stderr
    );
    let run = grant(&["fmt", dir.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.contains("no `.grant` files"), "{}", run.stderr);
    assert_eq!(grant(&["fmt"]).exit, Exit::Usage);
    assert_eq!(grant(&["fmt", "--stdin", "x.grant"]).exit, Exit::Usage);
}

/// The built binary with `input` on stdin: exit code and stdout.
fn with_stdin(args: &[&str], input: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grant"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn stdin_to_stdout() {
    assert_eq!(
        with_stdin(&["fmt", "--stdin"], MESSY),
        (Some(0), TIDY.to_string())
    );
    assert_eq!(
        with_stdin(&["fmt", "--stdin"], TIDY),
        (Some(0), TIDY.to_string())
    );
    assert_eq!(
        with_stdin(&["fmt", "--stdin", "--check"], MESSY),
        (Some(1), "<stdin>\n".to_string())
    );
    assert_eq!(
        with_stdin(&["fmt", "--stdin", "--check"], TIDY),
        (Some(0), String::new())
    );
    // Nothing on stdout for text that does not parse.
    assert_eq!(
        with_stdin(&["fmt", "--stdin"], BROKEN),
        (Some(1), String::new())
    );
}
