//! The built `grant` binary exits with the codes the library returns.

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
