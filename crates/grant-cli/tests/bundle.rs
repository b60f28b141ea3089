//! `grant bundle build` and `grant bundle verify`: a signed bundle that
//! verifies with its key and with no other, each rejection named with
//! exit 1, unreadable files with exit 2.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};

use grant_cli::Exit;
use grant_ledger::checkpoint;
use serde_json::Value;
use support::{grant, scratch};

/// A scratch directory with a key pair (`k.key`, `k.pub`) and a
/// two-file policy in `policy/`.
fn setup(name: &str) -> PathBuf {
    let dir = scratch(name);
    let run = grant(&["keygen", "--out", dir.join("k").to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    std::fs::create_dir_all(dir.join("policy/rules")).unwrap();
    std::fs::write(dir.join("policy/attrs.grant"), "attr env: string\n").unwrap();
    std::fs::write(
        dir.join("policy/rules/deploy.grant"),
        "allow tool \"deploy\" when env == \"dev\" ttl 10m\n",
    )
    .unwrap();
    dir
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `text` without what changes from run to run: the directory, the key.
fn redact(text: &str, dir: &Path) -> String {
    let key = checkpoint::load_public_key(&dir.join("k.pub")).unwrap();
    text.replace(p(dir), "[dir]")
        .replace(&checkpoint::key_hex(&key), "[key]")
}

fn build(dir: &Path, revision: &str) -> support::Run {
    grant(&[
        "bundle",
        "build",
        p(&dir.join("policy")),
        "--sign",
        p(&dir.join("k.key")),
        "--out",
        p(&dir.join("policy.bundle")),
        "--revision",
        revision,
    ])
}

fn verify(dir: &Path, key: &str, extra: &[&str]) -> support::Run {
    let bundle = dir.join("policy.bundle");
    let key = dir.join(key);
    let mut args = vec!["bundle", "verify", p(&bundle), "--key", p(&key)];
    args.extend_from_slice(extra);
    grant(&args)
}

#[test]
fn builds_a_bundle_that_verifies() {
    let dir = setup("bundle-ok");
    let run = build(&dir, "3");
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout, &dir), @"wrote `[dir]/policy.bundle`: revision 3, policy sha256:34c76268702590a4155a66dfbe95b329d9976b43477134834ca1fa558bc4af1c, 2 files, signed by key [key]");

    let run = verify(&dir, "k.pub", &[]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    insta::assert_snapshot!(redact(&run.stdout, &dir), @"
ok: `[dir]/policy.bundle`: revision 3, policy sha256:34c76268702590a4155a66dfbe95b329d9976b43477134834ca1fa558bc4af1c, signed by key [key]
  attrs.grant
  rules/deploy.grant
");

    let run = verify(&dir, "k.pub", &["--format", "json"]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["revision"], 3);
    assert_eq!(
        json["policy_hash"],
        grant_engine::Engine::from_path(dir.join("policy"))
            .unwrap()
            .policy_hash()
    );
    assert_eq!(json["files"][0], "attrs.grant");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_default_revision_is_the_time() {
    let dir = setup("bundle-time");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let run = grant(&[
        "bundle",
        "build",
        p(&dir.join("policy")),
        "--sign",
        p(&dir.join("k.key")),
        "--out",
        p(&dir.join("policy.bundle")),
    ]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let run = verify(&dir, "k.pub", &["--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let revision = json["revision"].as_u64().unwrap();
    assert!(revision >= before && revision <= before + 60, "{revision}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_a_bundle_signed_by_another_key() {
    let dir = setup("bundle-other-key");
    assert_eq!(build(&dir, "1").exit, Exit::Ok);
    let run = grant(&["keygen", "--out", p(&dir.join("other"))]);
    assert_eq!(run.exit, Exit::Ok);
    let run = verify(&dir, "other.pub", &[]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert_eq!(run.stdout, "");
    insta::assert_snapshot!(redact(&run.stderr, &dir), @"error: `[dir]/policy.bundle`: the bundle is signed by key [key], which is not a configured key");

    let run = verify(&dir, "other.pub", &["--format", "json"]);
    assert_eq!(run.exit, Exit::BROKEN);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("not a configured key"),
        "{json}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_tampered_bundles() {
    let dir = setup("bundle-tampered");
    assert_eq!(build(&dir, "1").exit, Exit::Ok);
    let path = dir.join("policy.bundle");
    let original: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();

    let mut doc = original.clone();
    doc["files"]["extra.grant"] = Value::from("allow tool \"*\" ttl 1h\n");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let run = verify(&dir, "k.pub", &[]);
    assert_eq!(run.exit, Exit::BROKEN);
    insta::assert_snapshot!(redact(&run.stderr, &dir), @"error: `[dir]/policy.bundle`: the bundle holds `extra.grant`, which the manifest does not list");

    let mut doc = original.clone();
    doc.as_object_mut().unwrap().remove("signature");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let run = verify(&dir, "k.pub", &[]);
    assert_eq!(run.exit, Exit::BROKEN);
    insta::assert_snapshot!(redact(&run.stderr, &dir), @"error: `[dir]/policy.bundle`: the bundle is unsigned; only bundles signed by a configured key are accepted");

    let mut doc = original;
    doc["files"]["attrs.grant"] = Value::from("attr env: int\n");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let run = verify(&dir, "k.pub", &[]);
    assert_eq!(run.exit, Exit::BROKEN);
    assert!(
        run.stderr.contains("does not match its hash"),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_a_revision_below_the_minimum() {
    let dir = setup("bundle-rollback");
    assert_eq!(build(&dir, "4").exit, Exit::Ok);
    let run = verify(&dir, "k.pub", &["--min-revision", "5"]);
    assert_eq!(run.exit, Exit::BROKEN);
    insta::assert_snapshot!(redact(&run.stderr, &dir), @"error: `[dir]/policy.bundle`: revision 4 is below 5, the lowest revision accepted (the last-known-good one): rollback refused");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn signs_nothing_broken() {
    let dir = setup("bundle-broken");
    std::fs::write(dir.join("policy/attrs.grant"), "attr env: strin\n").unwrap();
    let run = build(&dir, "1");
    assert_eq!(run.exit, Exit::PolicyErrors);
    assert!(
        run.stderr.ends_with("has errors: nothing was signed\n"),
        "{}",
        run.stderr
    );
    assert!(!dir.join("policy.bundle").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreadable_files_are_usage_errors() {
    let dir = setup("bundle-io");
    let run = verify(&dir, "k.pub", &[]);
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
    assert_eq!(build(&dir, "1").exit, Exit::Ok);
    let run = verify(&dir, "missing.pub", &[]);
    assert_eq!(run.exit, Exit::Usage);
    let run = grant(&[
        "bundle",
        "build",
        p(&dir.join("policy")),
        "--sign",
        p(&dir.join("missing.key")),
        "--out",
        p(&dir.join("x.bundle")),
    ]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(build(&dir, "0").exit, Exit::Usage);
    std::fs::remove_dir_all(dir).unwrap();
}
