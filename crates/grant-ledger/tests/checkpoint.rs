//! Checkpoint files and key files: appended lines, mode 0600, errors with
//! line numbers.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;

use grant_ledger::Timestamp;
use grant_ledger::checkpoint::{self, CheckpointError, Signer};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "grant-ledger-checkpoint-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn signer() -> Signer {
    let (private, _) = checkpoint::generate_key_pair().unwrap();
    Signer::from_pem(&private).unwrap()
}

#[test]
fn appended_checkpoints_read_back_in_order() {
    let dir = scratch("append");
    let path = dir.join("checkpoints.ndjson");
    let signer = signer();
    let written: Vec<_> = (1..=3)
        .map(|seq| signer.sign(seq, &format!("{seq:064x}"), Timestamp::from_secs(100)))
        .collect();
    for checkpoint in &written {
        checkpoint::append(&path, checkpoint).unwrap();
    }
    assert_eq!(checkpoint::read_file(&path).unwrap(), written);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with('\n'));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_line_cut_short_is_dropped() {
    let dir = scratch("cut");
    let path = dir.join("checkpoints.ndjson");
    let signer = signer();
    let first = signer.sign(1, &"11".repeat(32), Timestamp::from_secs(1));
    checkpoint::append(&path, &first).unwrap();
    // A crash in the middle of the second line: reading skips it.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":2,\"ha");
    std::fs::write(&path, &text).unwrap();
    assert_eq!(checkpoint::read_file(&path).unwrap(), vec![first.clone()]);
    // The next append cuts it off before writing its own line.
    let third = signer.sign(3, &"33".repeat(32), Timestamp::from_secs(3));
    checkpoint::append(&path, &third).unwrap();
    assert_eq!(
        checkpoint::read_file(&path).unwrap(),
        [first.clone(), third.clone()]
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    // A file holding only a cut line, longer than a read chunk.
    std::fs::write(&path, "x".repeat(10_000)).unwrap();
    assert!(checkpoint::read_file(&path).unwrap().is_empty());
    checkpoint::append(&path, &third).unwrap();
    assert_eq!(checkpoint::read_file(&path).unwrap(), vec![third.clone()]);
    // A malformed line that is not the last is an error.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(0, "{\"seq\":2\n");
    std::fs::write(&path, &text).unwrap();
    let error = checkpoint::read_file(&path).unwrap_err();
    assert!(
        matches!(&error, CheckpointError::Line { line: 1, .. }),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_files_are_named_with_their_line() {
    let dir = scratch("malformed");
    let path = dir.join("checkpoints.ndjson");
    let signer = signer();
    let good =
        serde_json::to_string(&signer.sign(1, &"11".repeat(32), Timestamp::from_secs(1))).unwrap();
    std::fs::write(&path, format!("{good}\n\n{{\"seq\": 2}}\n")).unwrap();
    let error = checkpoint::read_file(&path).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:3: not a checkpoint: missing field",
            path.display()
        )),
        "{error}"
    );
    std::fs::write(&path, format!("{good}\n\n")).unwrap();
    assert_eq!(checkpoint::read_file(&path).unwrap().len(), 1);
    let unknown = good.replacen('{', "{\"extra\":1,", 1);
    std::fs::write(&path, format!("{unknown}\n")).unwrap();
    assert!(checkpoint::read_file(&path).is_err());
    let missing = dir.join("nope");
    assert_eq!(
        checkpoint::read_file(&missing).unwrap_err().to_string(),
        format!(
            "cannot read `{}`: no such file or directory",
            missing.display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn key_files() {
    let dir = scratch("keys");
    let (private, public) = checkpoint::generate_key_pair().unwrap();
    std::fs::write(dir.join("k.key"), &private).unwrap();
    std::fs::write(dir.join("k.pub"), &public).unwrap();
    let signer = Signer::load(&dir.join("k.key")).unwrap();
    let key = checkpoint::load_public_key(&dir.join("k.pub")).unwrap();
    assert_eq!(signer.verifying_key(), key);
    let error = checkpoint::load_public_key(&dir.join("k.key")).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "`{}` is not an ed25519 public key in PEM: ",
            dir.join("k.key").display()
        )),
        "{error}"
    );
    let error = Signer::load(&dir.join("k.pub")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is not an ed25519 private key in PEM"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Keys as `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`
/// write them (a test key, used nowhere else).
const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICuHLckeumigZvopjFW/Mb0A5KT4hmDpGKK7ApKREnmy
-----END PRIVATE KEY-----
";
const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA3tBcUsoqHXmBa1ZhyyljHs3hldP3JriFOg6rzLbURqA=
-----END PUBLIC KEY-----
";

#[test]
fn openssl_keys_work_and_ours_are_alike() {
    let signer = Signer::from_pem(OPENSSL_PRIVATE).unwrap();
    let key = checkpoint::public_key_from_pem(OPENSSL_PUBLIC).unwrap();
    assert_eq!(signer.verifying_key(), key);
    let signed = signer.sign(1, &"11".repeat(32), Timestamp::from_secs(1));
    signed.verify(Some(&key)).unwrap();
    // Ours have the same shape: PKCS#8 v1 (the 32-byte secret alone), which
    // OpenSSL reads, and SPKI.
    let (private, public) = checkpoint::generate_key_pair().unwrap();
    assert_eq!(private.len(), OPENSSL_PRIVATE.len());
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
    assert_eq!(public.len(), OPENSSL_PUBLIC.len());
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
}
