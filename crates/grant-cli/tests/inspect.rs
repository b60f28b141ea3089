//! `grant inspect --bytecode`: the listing of every example policy.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use grant_cli::Exit;
use support::{ROOT, example_dirs, grant, policy_hash, redact_hash, relative};

#[test]
fn bytecode_of_every_example() {
    let dirs = example_dirs();
    assert!(dirs.len() >= 3);
    for dir in dirs {
        let policy = relative(&dir);
        let run = grant(&["inspect", "--bytecode", &policy]);
        assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
        assert_eq!(run.stderr, "");
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        insta::assert_snapshot!(name, redact_hash(&run.stdout, &policy_hash(&policy)));
    }
}

#[test]
fn policy_with_errors_exits_1() {
    let bad = format!("{ROOT}/tests/ui/g0201_duplicate_type.grant");
    let run = grant(&["inspect", "--bytecode", &bad, "--color", "never"]);
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("G0201"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let run = grant(&["inspect", "--bytecode", "nope"]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        "error: cannot read `nope`: no such file or directory\n"
    );
    // The view is named: later ones will join `--bytecode`.
    let run = grant(&["inspect", &format!("{ROOT}/examples/github-coding-agent")]);
    assert_eq!(run.exit, Exit::Usage);
}
