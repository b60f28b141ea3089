//! Signed checkpoints of the audit chain. A chain alone does not stop
//! someone who can write the store from rewriting it or cutting its tail;
//! an ed25519 signature over (`seq`, `hash`, `time`), kept outside the
//! store, does: `chain::verify` finds the event at each checkpoint's `seq`
//! and compares hashes.
//!
//! The signed message is the canonical JSON (RFC 8785) of
//! `{"hash", "public_key", "seq", "time"}`. Keys are PEM files: the private
//! key PKCS#8, the public key SPKI (what `grant keygen` and openssl write).
//! Checkpoint files are NDJSON, one checkpoint a line, appended and flushed.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, SigningKey};
use serde::{Deserialize, Serialize};

pub use ed25519_dalek::VerifyingKey;

use grant_syntax::source::describe_io;

use crate::time::Timestamp;

/// A signed statement that the chain's event `seq` has `hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub time: Timestamp,
    /// The signer's public key: its 32 raw bytes in lowercase hex.
    pub public_key: String,
    /// The ed25519 signature of the message: 64 bytes in lowercase hex.
    pub signature: String,
}

/// Why a checkpoint, a key or a checkpoint file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("cannot {action} `{path}`: {message}")]
    Io {
        action: &'static str,
        path: String,
        message: String,
    },
    /// A key file holds no ed25519 key of the expected kind.
    #[error("`{path}` is not an ed25519 {what} key in PEM: {message}")]
    Key {
        path: String,
        what: &'static str,
        message: String,
    },
    /// A line of a checkpoint file is not a checkpoint.
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    /// The signature does not verify, or not with the pinned key.
    #[error("{0}")]
    Signature(String),
    /// Encoding a key failed, or the random source did.
    #[error("{0}")]
    Internal(String),
}

/// Signs checkpoints with one private key.
pub struct Signer {
    key: SigningKey,
    public_key: String,
}

impl fmt::Debug for Signer {
    // Never the private key, not even in a debug print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a PKCS#8 PEM private key file (as `grant keygen` writes).
    pub fn load(path: &Path) -> Result<Signer, CheckpointError> {
        let text = read_text(path)?;
        Signer::from_pem(&text).map_err(|message| CheckpointError::Key {
            path: shown(path),
            what: "private",
            message,
        })
    }

    /// A signer from the text of a PKCS#8 PEM private key.
    pub fn from_pem(text: &str) -> Result<Signer, String> {
        let key = SigningKey::from_pkcs8_pem(text).map_err(|e| lowercase(&e.to_string()))?;
        Ok(Signer::from_key(key))
    }

    fn from_key(key: SigningKey) -> Signer {
        let public_key = crate::hex::encode(key.verifying_key().as_bytes());
        Signer { key, public_key }
    }

    /// The public key that verifies this signer's checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A checkpoint stating that event `seq` has `hash`, at `time`.
    pub fn sign(&self, seq: u64, hash: &str, time: Timestamp) -> Checkpoint {
        use ed25519_dalek::Signer as _;
        let message = message(seq, hash, time, &self.public_key);
        let signature = self.key.sign(message.as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_string(),
            time,
            public_key: self.public_key.clone(),
            signature: crate::hex::encode(&signature.to_bytes()),
        }
    }
}

impl Signer {
    /// Signs `message` for the purpose `domain` (a fixed label such as
    /// `grant-bundle-v1`): the ed25519 signature, 64 bytes in lowercase hex,
    /// of `domain`, a NUL byte, then `message`. The label keeps a signature
    /// made for one purpose from being valid for another (a checkpoint's
    /// signed message starts with `{`, never with a label).
    pub fn sign_message(&self, domain: &str, message: &[u8]) -> String {
        use ed25519_dalek::Signer as _;
        let signature = self.key.sign(&labelled(domain, message));
        crate::hex::encode(&signature.to_bytes())
    }
}

/// Checks a signature [`Signer::sign_message`] made: `signature` (hex)
/// over `message` for `domain`, by `key`.
pub fn verify_message(
    key: &VerifyingKey,
    domain: &str,
    message: &[u8],
    signature: &str,
) -> Result<(), CheckpointError> {
    let Some(signature) = crate::hex::decode(signature)
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .map(|bytes| Signature::from_bytes(&bytes))
    else {
        return Err(CheckpointError::Signature(
            "the signature is not 64 bytes in hexadecimal".to_string(),
        ));
    };
    // verify_strict: no malleable signatures, no weak keys.
    key.verify_strict(&labelled(domain, message), &signature)
        .map_err(|_| CheckpointError::Signature("the signature does not verify".to_string()))
}

/// A public key from its 32 raw bytes in hex, as checkpoints (and
/// [`key_hex`]) name it.
pub fn key_from_hex(hex: &str) -> Option<VerifyingKey> {
    crate::hex::decode(hex)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
}

fn labelled(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 1 + message.len());
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

/// The bytes a checkpoint's signature covers.
fn message(seq: u64, hash: &str, time: Timestamp, public_key: &str) -> String {
    crate::jcs::to_string(&serde_json::json!({
        "seq": seq,
        "hash": hash,
        "time": time.to_string(),
        "public_key": public_key,
    }))
}

impl Checkpoint {
    /// Checks the signature: with `pinned`, against that key (and the
    /// checkpoint must name it); without, against the key the checkpoint
    /// names, which proves only that whoever held that key signed it.
    pub fn verify(&self, pinned: Option<&VerifyingKey>) -> Result<(), CheckpointError> {
        let bad = |what: String| Err(CheckpointError::Signature(what));
        let Some(named) = crate::hex::decode(&self.public_key)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        else {
            return bad(format!(
                "the checkpoint at seq {} names a malformed public key",
                self.seq
            ));
        };
        if let Some(pinned) = pinned
            && *pinned != named
        {
            return bad(format!(
                "the checkpoint at seq {} is signed by key `{}`, not by the pinned key `{}`",
                self.seq,
                self.public_key,
                crate::hex::encode(pinned.as_bytes())
            ));
        }
        let Some(signature) = crate::hex::decode(&self.signature)
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .map(|bytes| Signature::from_bytes(&bytes))
        else {
            return bad(format!(
                "the checkpoint at seq {} has a malformed signature",
                self.seq
            ));
        };
        let message = message(self.seq, &self.hash, self.time, &self.public_key);
        // verify_strict: no malleable signatures, no weak keys.
        named
            .verify_strict(message.as_bytes(), &signature)
            .or_else(|_| {
                bad(format!(
                    "the signature of the checkpoint at seq {} does not verify",
                    self.seq
                ))
            })
    }
}

/// Appends `checkpoint` to the NDJSON file at `path` as one line, and
/// flushes it to disk before returning. A new file is created with mode
/// 0600 (and its directory flushed, so that the file itself survives a
/// crash).
pub fn append(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let io = |action: &'static str| {
        move |e: std::io::Error| CheckpointError::Io {
            action,
            path: shown(path),
            message: describe_io(&e),
        }
    };
    let mut line = serde_json::to_string(checkpoint)
        .map_err(|e| CheckpointError::Internal(format!("cannot encode a checkpoint: {e}")))?;
    line.push('\n');
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let (mut file, created) = match options.clone().create_new(true).open(path) {
        Ok(file) => (file, true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            (options.open(path).map_err(io("open"))?, false)
        }
        Err(e) => return Err(io("create")(e)),
    };
    // A line cut short by a crash was never acknowledged (append returns
    // once the whole line is flushed): drop it, so this line neither joins
    // it nor follows a malformed one.
    if !created {
        let length = file.metadata().map_err(io("read"))?.len();
        let keep = complete_length(&mut file, length).map_err(io("read"))?;
        if keep < length {
            file.set_len(keep)
                .map_err(io("cut the torn last line of"))?;
        }
    }
    file.write_all(line.as_bytes()).map_err(io("append to"))?;
    file.sync_data().map_err(io("flush"))?;
    if created {
        sync_parent(path).map_err(io("flush the directory of"))?;
    }
    Ok(())
}

/// The length of `file` up to and including its last line break: the
/// whole file when it ends with one (or is empty).
fn complete_length(file: &mut File, length: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 4096;
    let mut end = length;
    let mut buffer = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = buffer
            .get_mut(..usize::try_from(end - start).unwrap_or(0))
            .unwrap_or_default();
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(unix)]
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> std::io::Result<()> {
    // Windows cannot open a directory to flush it; its file systems
    // journal the directory entry.
    Ok(())
}

/// The longest line a checkpoint file may hold (a checkpoint is about
/// 350 bytes).
const MAX_LINE: u64 = 64 * 1024;

/// Reads every checkpoint of an NDJSON checkpoint file, in file order.
/// Blank lines are skipped, and so is a last line cut short by a crash
/// (no line break, not a checkpoint), which [`append`] never acknowledged;
/// any other line that is not a checkpoint is an error naming its line
/// number.
pub fn read_file(path: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let shown = shown(path);
    let file = File::open(path).map_err(|e| CheckpointError::Io {
        action: "read",
        path: shown.clone(),
        message: describe_io(&e),
    })?;
    let mut reader = BufReader::new(file);
    let mut checkpoints = Vec::new();
    let mut bytes = Vec::new();
    for number in 1.. {
        let line_error = |message: String| CheckpointError::Line {
            path: shown.clone(),
            line: number,
            message,
        };
        bytes.clear();
        let read = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| line_error(describe_io(&e)))?;
        if read == 0 {
            break;
        }
        let complete = bytes.last() == Some(&b'\n');
        if !complete && read as u64 > MAX_LINE {
            return Err(line_error(format!("longer than {MAX_LINE} bytes")));
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            return Err(line_error("not UTF-8 text".to_string()));
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(checkpoint) => checkpoints.push(checkpoint),
            Err(_) if !complete => break,
            Err(e) => return Err(line_error(format!("not a checkpoint: {e}"))),
        }
    }
    Ok(checkpoints)
}

/// A fresh key pair from the operating system's CSPRNG: the private key
/// as PKCS#8 PEM, the public key as SPKI PEM.
pub fn generate_key_pair() -> Result<(String, String), CheckpointError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| {
        CheckpointError::Internal(format!("the operating system's random source failed: {e}"))
    })?;
    let key = SigningKey::from_bytes(&secret);
    // PKCS#8 v1, the secret alone: ed25519-dalek would write v2 (RFC 5958,
    // with the public key), which OpenSSL 3 refuses to read.
    let bytes = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: secret,
        public_key: None,
    };
    secret.fill(0);
    let private = bytes
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| CheckpointError::Internal(format!("cannot encode the private key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| CheckpointError::Internal(format!("cannot encode the public key: {e}")))?;
    Ok((private.to_string(), public))
}

/// Loads an SPKI PEM public key file (as `grant keygen` writes).
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, CheckpointError> {
    let text = read_text(path)?;
    public_key_from_pem(&text).map_err(|message| CheckpointError::Key {
        path: shown(path),
        what: "public",
        message,
    })
}

/// A public key from the text of an SPKI PEM file.
pub fn public_key_from_pem(text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(text).map_err(|e| lowercase(&e.to_string()))
}

/// A public key as checkpoints name it: 32 bytes in lowercase hex.
pub fn key_hex(key: &VerifyingKey) -> String {
    crate::hex::encode(key.as_bytes())
}

/// Key files are small: anything past 64 KiB is not one.
const MAX_KEY_FILE: u64 = 64 * 1024;

fn read_text(path: &Path) -> Result<String, CheckpointError> {
    let io = |e: std::io::Error| CheckpointError::Io {
        action: "read",
        path: shown(path),
        message: describe_io(&e),
    };
    let mut text = String::new();
    File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(io)?;
    Ok(text)
}

/// A path for a message: escaped, so that a file name cannot write to
/// the terminal.
fn shown(path: &Path) -> String {
    grant_syntax::chars::printable(&path.display().to_string()).into_owned()
}

/// Messages start in lowercase, as every message of Grant does.
fn lowercase(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn signer() -> Signer {
        let (private, _) = generate_key_pair().unwrap();
        Signer::from_pem(&private).unwrap()
    }

    #[test]
    fn signs_labelled_messages() {
        let signer = signer();
        let key = signer.verifying_key();
        let signature = signer.sign_message("grant-test-v1", b"hello");
        verify_message(&key, "grant-test-v1", b"hello", &signature).unwrap();
        assert!(verify_message(&key, "grant-test-v2", b"hello", &signature).is_err());
        assert!(verify_message(&key, "grant-test-v1", b"hellO", &signature).is_err());
        assert!(verify_message(&key, "grant-test-v1", b"hello", "00").is_err());
        assert_eq!(key_from_hex(&key_hex(&key)), Some(key));
        assert_eq!(key_from_hex("zz"), None);
    }

    #[test]
    fn signs_and_verifies() {
        let signer = signer();
        let cp = signer.sign(7, &"ab".repeat(32), Timestamp::from_secs(1_800_000_000));
        assert_eq!(cp.public_key.len(), 64);
        assert_eq!(cp.signature.len(), 128);
        cp.verify(None).unwrap();
        cp.verify(Some(&signer.verifying_key())).unwrap();
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let signer = signer();
        let cp = signer.sign(7, &"ab".repeat(32), Timestamp::from_secs(1_800_000_000));
        let mut changed = cp.clone();
        changed.seq = 8;
        assert!(changed.verify(None).is_err());
        let mut changed = cp.clone();
        changed.hash = "cd".repeat(32);
        assert!(changed.verify(None).is_err());
        let mut changed = cp.clone();
        changed.time = Timestamp::from_secs(1_800_000_001);
        assert!(changed.verify(None).is_err());
        let mut changed = cp.clone();
        changed.signature = "00".repeat(64);
        assert!(changed.verify(None).is_err());
        let mut changed = cp.clone();
        changed.signature = "zz".to_string();
        assert!(changed.verify(None).is_err());
        // Another key re-signing it is caught only by pinning.
        let other = self::signer();
        let forged = other.sign(cp.seq, &cp.hash, cp.time);
        forged.verify(None).unwrap();
        let error = forged.verify(Some(&signer.verifying_key())).unwrap_err();
        assert!(
            error.to_string().contains("not by the pinned key"),
            "{error}"
        );
        // Naming the pinned key without its signature does not help.
        let mut claimed = forged.clone();
        claimed.public_key = cp.public_key.clone();
        assert!(claimed.verify(Some(&signer.verifying_key())).is_err());
    }

    #[test]
    fn the_message_is_canonical_json() {
        assert_eq!(
            message(3, "h", Timestamp::from_secs(0), "k"),
            r#"{"hash":"h","public_key":"k","seq":3,"time":"1970-01-01T00:00:00.000000Z"}"#
        );
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let (private, public) = generate_key_pair().unwrap();
        assert!(
            private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{private}"
        );
        assert!(
            public.starts_with("-----BEGIN PUBLIC KEY-----\n"),
            "{public}"
        );
        let signer = Signer::from_pem(&private).unwrap();
        assert_eq!(
            public_key_from_pem(&public).unwrap(),
            signer.verifying_key()
        );
        assert!(Signer::from_pem(&public).is_err());
        assert!(public_key_from_pem(&private).is_err());
        assert!(!format!("{signer:?}").contains(&private));
    }
}
