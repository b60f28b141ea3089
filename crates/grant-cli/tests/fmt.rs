//! `grant fmt`: rewriting in place (whole or not at all, even when a write
//! fails), `--check`, `--diff`, `--stdin`, and the refusal to touch a file
//! that does not parse. Each test works on copies in its own temporary
//! directory.

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

/// A policy of `rules` unformatted rules (two spaces where one belongs),
/// about 50 bytes each.
fn messy_policy(rules: usize) -> String {
    let mut text = String::from("attr task.approved:bool\n");
    for i in 0..rules {
        text.push_str(&format!(
            "allow tool \"db.read{i}\"  when task.approved ttl 5m\n"
        ));
    }
    text
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A real failed write: the file size limit (`ulimit -f`, in 512-byte
/// blocks) stops the write of the formatted text part-way with EFBIG. The
/// file is byte-identical, no temporary file is left, and the error says
/// what failed.
#[test]
#[cfg(unix)]
fn a_write_cut_short_by_the_file_size_limit_leaves_the_file_intact() {
    let text = messy_policy(400);
    assert!(text.len() > 16 * 1024);
    let dir = scratch("efbig", &[("big.grant", &text)]);
    let file = dir.join("big.grant");
    let output = support::bounded(
        Command::new("sh")
            .arg("-c")
            // Ignore SIGXFSZ, so that the write fails rather than the
            // process being killed.
            .arg(r#"trap "" XFSZ; ulimit -f 8; exec "$0" fmt "$1""#)
            .arg(env!("CARGO_BIN_EXE_grant"))
            .arg(&file),
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "error: cannot write `{}`: writing the temporary file `{}/.big.grant.",
        file.display(),
        dir.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.ends_with(".tmp` failed: file too large (os error 27); the file is unchanged\n"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    assert_eq!(names(&dir), ["big.grant"]);
    // Without the limit, the same run formats it.
    let run = grant(&["fmt", file.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_ne!(std::fs::read_to_string(&file).unwrap(), text);
}

/// A full filesystem: a 64 KiB tmpfs with 4 KiB left. It needs a mount
/// namespace (`unshare -rm`); where the system refuses one, the test says
/// so and skips (the `ulimit` test above always runs).
#[test]
#[cfg(unix)]
fn a_full_filesystem_leaves_the_file_intact() {
    let text = messy_policy(400);
    let dir = scratch("tmpfs", &[("original.grant", &text)]);
    std::fs::create_dir(dir.join("mnt")).unwrap();
    // Everything is checked inside the namespace, where the mount is, and
    // written down outside it.
    let script = r#"
        set -u
        mount -t tmpfs -o size=64k tmpfs "$D/mnt" || exit 97
        touch "$D/mounted"
        cp "$D/original.grant" "$D/mnt/p.grant"
        dd if=/dev/zero of="$D/mnt/pad" bs=4096 count=1 2>/dev/null
        dd if=/dev/zero of="$D/mnt/fill" bs=4096 2>/dev/null
        rm "$D/mnt/pad"
        "$GRANT" fmt "$D/mnt/p.grant" 2>"$D/stderr"
        echo $? >"$D/status"
        cmp -s "$D/mnt/p.grant" "$D/original.grant"
        echo $? >"$D/cmp"
        ls -A "$D/mnt" >"$D/ls"
    "#;
    let output = support::bounded(
        Command::new("unshare")
            .args(["-r", "-m", "sh", "-c", script])
            .env("D", &dir)
            .env("GRANT", env!("CARGO_BIN_EXE_grant")),
    );
    if !dir.join("mounted").exists() {
        println!(
            "note: skipped the tmpfs variant: cannot mount a tmpfs here ({:?}: {})",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return;
    }
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let stderr = read("stderr");
    assert_eq!(read("status"), "2\n", "{stderr}");
    assert!(
        stderr.contains("failed: no space left on device (os error 28); the file is unchanged"),
        "{stderr}"
    );
    assert_eq!(read("cmp"), "0\n", "the file changed");
    assert_eq!(read("ls"), "fill\np.grant\n");
}

/// Through a symbolic link, the target is rewritten and the link stays a
/// link; the file's permissions are kept.
#[test]
#[cfg(unix)]
fn through_a_symlink_the_target_is_rewritten_with_its_permissions() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = scratch("symlink", &[("real/p.grant", MESSY)]);
    let target = dir.join("real/p.grant");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.join("link.grant");
    symlink("real/p.grant", &link).unwrap();
    let run = grant(&["fmt", link.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(&dir, "real/p.grant"), TIDY);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o640);
    assert_eq!(names(&dir.join("real")), ["p.grant"]);
}
