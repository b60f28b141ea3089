//! `grant bundle`: signed policy bundles for `grant serve --bundle`
//! (docs/bundles.md).
//!
//! - `build` packs a policy (a file or a directory) into one file with a
//!   manifest (revision, policy hash, each file's SHA-256) and an ed25519
//!   signature;
//! - `verify` checks a bundle as the service does: signed by the given
//!   key, every file listed and matching, the policy compiling to the hash
//!   the manifest names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use grant_ledger::checkpoint::Signer;
use grant_server::bundle::{self, BundleError};
use grant_syntax::chars::printable;
use grant_syntax::durable;
use serde_json::json;

use crate::Exit;
use crate::output::{Format, count, write_failed};

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    command: BundleCommand,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Pack a policy into one signed bundle file.
    Build(BuildArgs),
    /// Check a bundle's signature, files and policy, as the service does.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the bundle was written, 1 when the policy has errors \
(nothing broken is signed), 2 on bad arguments, or a policy, key or output file that cannot be \
read or written."
)]
struct BuildArgs {
    /// The policy: a `.grant` file, or a directory holding one policy.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The private key to sign with (PKCS#8 PEM, from `grant keygen`).
    #[arg(long, value_name = "KEYFILE")]
    sign: PathBuf,
    /// Where to write the bundle (replaced whole if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The bundle's revision, from 1 to 2^53-1: a service refuses a
    /// revision lower than the one it serves, and a changed policy under
    /// the same one. Default: the current Unix time in seconds.
    #[arg(long, value_name = "N")]
    revision: Option<u64>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the bundle verifies, 1 when it does not (the reason is \
named), 2 on bad arguments, or a bundle or key file that cannot be read."
)]
struct VerifyArgs {
    /// The bundle file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The public key (SPKI PEM, from `grant keygen`) the bundle must be
    /// signed with; a file of several keys accepts any of them.
    #[arg(long, value_name = "PUBFILE")]
    key: PathBuf,
    /// Refuse a revision lower than this (as a service serving it would).
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_revision: u64,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn run(args: &BundleArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    match &args.command {
        BundleCommand::Build(args) => build(args, stdout, stderr),
        BundleCommand::Verify(args) => verify(args, stdout, stderr),
    }
}

fn build(args: &BuildArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let signer = match Signer::load(&args.sign) {
        Ok(signer) => signer,
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Usage;
        }
    };
    let revision = match args.revision {
        Some(revision) => revision,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let bytes = match bundle::build(&args.path, revision, &signer) {
        Ok(bytes) => bytes,
        Err(BundleError::Policy(report)) => {
            let _ = write!(stderr, "{report}");
            let _ = writeln!(
                stderr,
                "error: `{}` has errors: nothing was signed",
                shown(&args.path)
            );
            return Exit::PolicyErrors;
        }
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Usage;
        }
    };
    if let Err(error) = durable::write(&args.out, &bytes) {
        let _ = writeln!(stderr, "error: {error}");
        return Exit::Usage;
    }
    // What was written, read back as the service will read it.
    let summary = match bundle::verify(&bytes, &[signer.verifying_key()], 0) {
        Ok(verified) => verified,
        Err(error) => {
            let _ = writeln!(stderr, "error: the bundle written does not verify: {error}");
            return Exit::Usage;
        }
    };
    let written = writeln!(
        stdout,
        "wrote `{}`: revision {}, policy {}, {}, signed by key {}",
        shown(&args.out),
        summary.revision,
        summary.policy_hash,
        count(summary.files.len(), "file", "files"),
        summary.public_key,
    );
    match written {
        Ok(()) => Exit::Ok,
        Err(error) => write_failed(&error, stderr),
    }
}

fn verify(args: &VerifyArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let checked = bundle::load_keys(&args.key).and_then(|keys| {
        let bytes = bundle::read(&args.file)?;
        bundle::verify(&bytes, &keys, args.min_revision)
    });
    let file = shown(&args.file);
    let (exit, text) = match (&checked, args.format) {
        (Err(error), _) if error.is_io() => {
            let _ = writeln!(stderr, "error: {error}");
            return Exit::Usage;
        }
        (Ok(verified), Format::Human) => (
            Exit::Ok,
            format!(
                "ok: `{file}`: revision {}, policy {}, signed by key {}\n{}",
                verified.revision,
                verified.policy_hash,
                verified.public_key,
                verified
                    .files
                    .iter()
                    .map(|name| format!("  {}\n", printable(name)))
                    .collect::<String>(),
            ),
        ),
        (Err(error), Format::Human) => {
            let _ = writeln!(stderr, "error: `{file}`: {error}");
            return Exit::BROKEN;
        }
        (Ok(verified), Format::Json) => (
            Exit::Ok,
            json!({
                "ok": true,
                "file": args.file.display().to_string(),
                "revision": verified.revision,
                "policy_hash": verified.policy_hash,
                "public_key": verified.public_key,
                "files": verified.files,
            })
            .to_string(),
        ),
        (Err(error), Format::Json) => (
            Exit::BROKEN,
            json!({
                "ok": false,
                "file": args.file.display().to_string(),
                "error": error.to_string(),
            })
            .to_string(),
        ),
    };
    let text = if args.format == Format::Json {
        format!("{text}\n")
    } else {
        text
    };
    match stdout.write_all(text.as_bytes()) {
        Ok(()) => exit,
        Err(error) => write_failed(&error, stderr),
    }
}

fn shown(path: &Path) -> String {
    printable(&path.display().to_string()).into_owned()
}
