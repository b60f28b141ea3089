//! `grant keygen --out PREFIX`: an ed25519 key pair for signed checkpoints
//! of the audit chain: `PREFIX.key` (private, PKCS#8 PEM, mode 0600) and
//! `PREFIX.pub` (public, SPKI PEM).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use grant_ledger::checkpoint;
use grant_syntax::chars::printable;
use grant_syntax::durable;
use grant_syntax::source::describe_io;

use crate::Exit;
use crate::output::write_failed;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when both files were written, 2 when a file exists \
(without --force) or cannot be written."
)]
pub struct KeygenArgs {
    /// Where to write the pair: `PREFIX.key`, the private key (PKCS#8
    /// PEM, readable by its owner only), and `PREFIX.pub`, the public key
    /// (SPKI PEM) that `grant audit verify --key` pins.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    /// Replace existing files (each is replaced whole, and the private key
    /// file is made owner-only first).
    #[arg(long)]
    force: bool,
}

pub fn run(args: &KeygenArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let private_path = with_suffix(&args.out, ".key");
    let public_path = with_suffix(&args.out, ".pub");
    if !args.force {
        let existing: Vec<String> = [&private_path, &public_path]
            .into_iter()
            .filter(|path| path.symlink_metadata().is_ok())
            .map(|path| format!("`{}`", shown(path)))
            .collect();
        if !existing.is_empty() {
            let _ = writeln!(
                stderr,
                "error: {} already {}; pass --force to replace {}",
                existing.join(" and "),
                if existing.len() == 1 {
                    "exists"
                } else {
                    "exist"
                },
                if existing.len() == 1 { "it" } else { "them" },
            );
            return Exit::Usage;
        }
    }
    let (private_pem, public_pem) = match checkpoint::generate_key_pair() {
        Ok(pair) => pair,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Usage;
        }
    };
    if let Err(message) = write_key(&private_path, &private_pem, 0o600, args.force) {
        let _ = writeln!(stderr, "error: {message}");
        return Exit::Usage;
    }
    if let Err(message) = write_key(&public_path, &public_pem, 0o644, args.force) {
        let _ = writeln!(stderr, "error: {message}");
        if !args.force {
            // Not half a pair: the private key was new, made by this run.
            let _ = std::fs::remove_file(&private_path);
        }
        return Exit::Usage;
    }
    let public_hex = checkpoint::public_key_from_pem(&public_pem)
        .map(|key| checkpoint::key_hex(&key))
        .unwrap_or_default();
    let written = writeln!(
        stdout,
        "wrote `{}` (private key: keep it secret) and `{}` (public key {public_hex})",
        shown(&private_path),
        shown(&public_path),
    );
    match written {
        Ok(()) => Exit::Ok,
        Err(error) => write_failed(&error, stderr),
    }
}

/// `PREFIX` with `suffix` added to its file name (`ledger` -> `ledger.key`,
/// `a.b` -> `a.b.key`).
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a key file: a new one exclusively with `mode`, flushed with its
/// directory; an existing one (with `force`) replaced whole by
/// `durable::write`, which keeps the file's mode, so a private key file
/// is made owner-only before.
fn write_key(path: &Path, text: &str, mode: u32, force: bool) -> Result<(), String> {
    let io = |step: &str, e: std::io::Error| {
        format!("cannot {step} `{}`: {}", shown(path), describe_io(&e))
    };
    if force && path.exists() {
        #[cfg(unix)]
        if mode == 0o600 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io("restrict", e))?;
        }
        return durable::write(path, text.as_bytes()).map_err(|e| e.to_string());
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| io("create", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", e))?;
    sync_parent(path).map_err(|e| io("flush the directory of", e))
}

#[cfg(unix)]
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

fn shown(path: &Path) -> String {
    printable(&path.display().to_string()).into_owned()
}
