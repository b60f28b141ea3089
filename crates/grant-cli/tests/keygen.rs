//! `grant keygen --out PREFIX`: a key pair that signs and verifies
//! checkpoints, a private key only its owner may read, no overwriting
//! unless told.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use grant_cli::Exit;
use grant_ledger::checkpoint::{self, Signer};
use support::{grant, scratch};

#[test]
fn writes_a_pair_that_signs_and_verifies() {
    let dir = scratch("keygen");
    let prefix = dir.join("ledger");
    let run = grant(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let private = dir.join("ledger.key");
    let public = dir.join("ledger.pub");
    let signer = Signer::load(&private).unwrap();
    let key = checkpoint::load_public_key(&public).unwrap();
    assert_eq!(signer.verifying_key(), key);
    assert_eq!(
        run.stdout,
        format!(
            "wrote `{}` (private key: keep it secret) and `{}` (public key {})\n",
            private.display(),
            public.display(),
            checkpoint::key_hex(&key)
        )
    );
    let text = std::fs::read_to_string(&private).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    let text = std::fs::read_to_string(&public).unwrap();
    assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&private), 0o600);
        assert_eq!(mode(&public) & 0o600, 0o600);
        assert_eq!(mode(&public) & 0o022, 0);
    }
    let checkpoint = signer.sign(1, &"ab".repeat(32), grant_ledger::Timestamp::from_secs(0));
    checkpoint.verify(Some(&key)).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refuses_to_overwrite_unless_forced() {
    let dir = scratch("keygen-force");
    let prefix = dir.join("k");
    let prefix = prefix.to_str().unwrap();
    assert_eq!(grant(&["keygen", "--out", prefix]).exit, Exit::Ok);
    let before = std::fs::read_to_string(dir.join("k.key")).unwrap();

    let run = grant(&["keygen", "--out", prefix]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        format!(
            "error: `{prefix}.key` and `{prefix}.pub` already exist; pass --force to replace them\n"
        )
    );
    assert_eq!(std::fs::read_to_string(dir.join("k.key")).unwrap(), before);

    // One of the two is enough to refuse, and nothing is written.
    std::fs::remove_file(dir.join("k.key")).unwrap();
    let run = grant(&["keygen", "--out", prefix]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        format!("error: `{prefix}.pub` already exists; pass --force to replace it\n")
    );
    assert!(!dir.join("k.key").exists());

    // Forced: both replaced, the private key owner-only even if it was not.
    std::fs::write(dir.join("k.key"), "old").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("k.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    let run = grant(&["keygen", "--out", prefix, "--force"]);
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let signer = Signer::load(&dir.join("k.key")).unwrap();
    assert_eq!(
        signer.verifying_key(),
        checkpoint::load_public_key(&dir.join("k.pub")).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("k.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_directory_that_does_not_exist_exits_2() {
    let dir = scratch("keygen-missing");
    let prefix = dir.join("no/such/dir/k");
    let run = grant(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(run.exit, Exit::Usage);
    assert_eq!(
        run.stderr,
        format!(
            "error: cannot create `{}.key`: no such file or directory\n",
            prefix.display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}
