//! Signed policy bundles: one file that carries a policy's files, a
//! manifest and an ed25519 signature (docs/bundles.md is the guide).
//!
//! A bundle is one JSON document:
//!
//! ```json
//! {
//!   "manifest": {
//!     "format": 1,
//!     "revision": 1700000000,
//!     "policy_hash": "sha256:...",
//!     "files": { "rules.grant": "sha256:..." }
//!   },
//!   "files": { "rules.grant": "allow tool \"t\" ttl 1m\n" },
//!   "signature": { "alg": "ed25519", "public_key": "<hex>", "value": "<hex>" }
//! }
//! ```
//!
//! The signature covers the RFC 8785 canonical JSON of the manifest,
//! labelled `grant-bundle-v1` ([`grant_ledger::checkpoint::verify_message`]),
//! so nothing outside the manifest needs canonicalizing: each file is bound
//! to it by its SHA-256, and the policy as a whole by the engine's policy
//! hash. [`verify`] checks, in this order, before compiling anything: the
//! size, the JSON (unknown fields and duplicate keys refused), the format,
//! the signature, the revision, the file names, that the files are exactly
//! those the manifest lists with the hashes it lists; then it compiles the
//! verified text (never files read again) and checks the policy hash.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use grant_engine::{Engine, SourceMap};
use grant_ledger::checkpoint::{self, Signer, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The one format this version reads and writes.
pub const FORMAT: u64 = 1;

/// The label the signature is made under (domain separation).
pub const SIGNATURE_DOMAIN: &str = "grant-bundle-v1";

/// The largest bundle read: far above any real policy (a policy file may
/// hold 16 MiB), small enough that reading one cannot exhaust memory.
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// The largest revision: canonical JSON writes integers beyond 2^53 as
/// strings, so a revision stays a plain number below it.
pub const MAX_REVISION: u64 = (1 << 53) - 1;

/// Why a bundle (or a key for it) cannot be used. Each message says what
/// is wrong; the caller prefixes the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file (the bundle, a key, a policy directory) cannot be read.
    #[error("{0}")]
    Io(String),
    #[error("the bundle is {0} bytes, over the limit of {MAX_BUNDLE_BYTES} bytes")]
    TooLarge(u64),
    /// Not JSON, or not the shape of a bundle.
    #[error("not a bundle: {0}")]
    Malformed(String),
    #[error("bundle format {0} is not supported (this version reads format {FORMAT})")]
    Format(u64),
    #[error("the bundle is unsigned; only bundles signed by a configured key are accepted")]
    Unsigned,
    #[error(
        "the bundle is unsigned, and no key is configured: bundles are served only when signed and verified (give --bundle-key)"
    )]
    UnsignedWithoutKey,
    #[error(
        "the bundle is signed by key {public_key}, but no key is configured to verify it (give --bundle-key)"
    )]
    SignedWithoutKey { public_key: String },
    #[error("the bundle is signed by key {public_key}, which is not a configured key")]
    UnknownKey { public_key: String },
    #[error("signature algorithm `{0}` is not supported (only `ed25519`)")]
    Algorithm(String),
    #[error("the bundle's signature does not verify: {0}")]
    BadSignature(String),
    #[error("revision {0} is out of range (1 to {MAX_REVISION})")]
    RevisionRange(u64),
    #[error(
        "revision {revision} is below {floor}, the lowest revision accepted (the last-known-good one): rollback refused"
    )]
    Rollback { revision: u64, floor: u64 },
    #[error("file name `{name}` is not allowed: {why}")]
    BadName { name: String, why: &'static str },
    #[error("the bundle holds `{0}`, which the manifest does not list")]
    Unlisted(String),
    #[error("the manifest lists `{0}`, which the bundle does not hold")]
    Missing(String),
    #[error("the manifest lists no files")]
    Empty,
    #[error("`{name}` does not match its hash in the manifest (manifest {listed}, file {actual})")]
    FileHash {
        name: String,
        listed: String,
        actual: String,
    },
    /// The policy has errors: the rendered diagnostics.
    #[error("the bundled policy has errors:\n{0}")]
    Policy(String),
    #[error("the policy hash in the manifest is {listed}, but the bundled files hash to {actual}")]
    PolicyHash { listed: String, actual: String },
}

impl BundleError {
    /// Whether the error is a file that could not be read (usage and I/O,
    /// exit 2), not a bad bundle (exit 1).
    pub fn is_io(&self) -> bool {
        matches!(self, BundleError::Io(_))
    }
}

/// The manifest: what the signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u64,
    pub revision: u64,
    pub policy_hash: String,
    /// Each file's name and `sha256:<hex>` of its text.
    #[serde(deserialize_with = "unique_map")]
    pub files: BTreeMap<String, String>,
}

/// The signature block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureBlock {
    pub alg: String,
    /// The signer's public key, 32 bytes in lowercase hex (as checkpoints
    /// name keys): which configured key to verify with.
    pub public_key: String,
    /// The signature, 64 bytes in lowercase hex.
    pub value: String,
}

/// A bundle as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleDoc {
    manifest: Manifest,
    #[serde(deserialize_with = "unique_map")]
    files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<SignatureBlock>,
}

/// A bundle that passed every check, compiled.
#[derive(Clone)]
pub struct VerifiedBundle {
    pub revision: u64,
    pub policy_hash: String,
    /// The key that signed it (hex).
    pub public_key: String,
    /// The file names, in load order.
    pub files: Vec<String>,
    pub engine: Engine,
}

impl fmt::Debug for VerifiedBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedBundle")
            .field("revision", &self.revision)
            .field("policy_hash", &self.policy_hash)
            .field("public_key", &self.public_key)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// Builds a signed bundle of the policy at `path` (a `.grant` file, or a
/// directory holding one policy, as `grant check` loads it). A policy
/// with errors is refused: nothing broken is ever signed.
pub fn build(path: &Path, revision: u64, signer: &Signer) -> Result<Vec<u8>, BundleError> {
    if !(1..=MAX_REVISION).contains(&revision) {
        return Err(BundleError::RevisionRange(revision));
    }
    let sources = SourceMap::load(path).map_err(|e| BundleError::Io(e.to_string()))?;
    let mut files = BTreeMap::new();
    for (_, file) in sources.files() {
        check_name(&file.name)?;
        files.insert(file.name.clone(), file.text.clone());
    }
    // The hash is the one `verify` computes from the bundled text (in its
    // load order); that it is also the hash of the policy on disk is
    // checked, so the manifest names what `grant check` reports.
    let engine = compile(&files)?;
    let on_disk =
        Engine::from_sources(sources).map_err(|e| BundleError::Policy(e.report(false)))?;
    if engine.policy_hash() != on_disk.policy_hash() {
        return Err(BundleError::PolicyHash {
            listed: on_disk.policy_hash().to_string(),
            actual: engine.policy_hash().to_string(),
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        revision,
        policy_hash: engine.policy_hash().to_string(),
        files: files
            .iter()
            .map(|(name, text)| (name.clone(), sha256(text.as_bytes())))
            .collect(),
    };
    let signature = SignatureBlock {
        alg: "ed25519".to_string(),
        public_key: checkpoint::key_hex(&signer.verifying_key()),
        value: signer.sign_message(SIGNATURE_DOMAIN, signed_bytes(&manifest)?.as_bytes()),
    };
    let doc = BundleDoc {
        manifest,
        files,
        signature: Some(signature),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc)
        .map_err(|e| BundleError::Malformed(format!("cannot encode the bundle: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Verifies a bundle: signed by one of `keys`, not older than `floor` (the
/// last-known-good revision; 0 for none), its files exactly those the
/// manifest lists, its policy compiling to the hash the manifest names.
/// Without keys every bundle is refused (unsigned ones as unverifiable,
/// signed ones as unverified).
pub fn verify(
    bytes: &[u8],
    keys: &[VerifyingKey],
    floor: u64,
) -> Result<VerifiedBundle, BundleError> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(bytes.len() as u64));
    }
    let doc: BundleDoc =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
    let manifest = &doc.manifest;
    if manifest.format != FORMAT {
        return Err(BundleError::Format(manifest.format));
    }
    let public_key = check_signature(manifest, doc.signature.as_ref(), keys)?;
    if !(1..=MAX_REVISION).contains(&manifest.revision) {
        return Err(BundleError::RevisionRange(manifest.revision));
    }
    if manifest.revision < floor {
        return Err(BundleError::Rollback {
            revision: manifest.revision,
            floor,
        });
    }
    if manifest.files.is_empty() {
        return Err(BundleError::Empty);
    }
    for name in doc.files.keys() {
        check_name(name)?;
        if !manifest.files.contains_key(name) {
            return Err(BundleError::Unlisted(name.clone()));
        }
    }
    for (name, listed) in &manifest.files {
        let Some(text) = doc.files.get(name) else {
            return Err(BundleError::Missing(name.clone()));
        };
        let actual = sha256(text.as_bytes());
        if actual != *listed {
            return Err(BundleError::FileHash {
                name: name.clone(),
                listed: listed.clone(),
                actual,
            });
        }
    }
    let engine = compile(&doc.files)?;
    if engine.policy_hash() != manifest.policy_hash {
        return Err(BundleError::PolicyHash {
            listed: manifest.policy_hash.clone(),
            actual: engine.policy_hash().to_string(),
        });
    }
    Ok(VerifiedBundle {
        revision: manifest.revision,
        policy_hash: manifest.policy_hash.clone(),
        public_key,
        files: load_order(&doc.files),
        engine,
    })
}

/// Reads a bundle file, at most [`MAX_BUNDLE_BYTES`] of it.
pub fn read(path: &Path) -> Result<Vec<u8>, BundleError> {
    let io = |e: std::io::Error| {
        BundleError::Io(format!(
            "cannot read `{}`: {}",
            shown(path),
            grant_syntax::source::describe_io(&e)
        ))
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Loads the public keys of a key file: one SPKI PEM public key (as
/// `grant keygen` writes), or several concatenated, so that during a key
/// rotation bundles signed by the old key or the new one are accepted.
pub fn load_keys(path: &Path) -> Result<Vec<VerifyingKey>, BundleError> {
    let io = |message: String| BundleError::Io(format!("key `{}`: {message}", shown(path)));
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(1024 * 1024).read_to_string(&mut text))
        .map_err(|e| io(grant_syntax::source::describe_io(&e)))?;
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    let mut keys = Vec::new();
    for block in text.split(BEGIN).skip(1) {
        let pem = format!("{BEGIN}{block}");
        keys.push(checkpoint::public_key_from_pem(pem.trim()).map_err(io)?);
    }
    if keys.is_empty() {
        return Err(io(
            "no ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`)".to_string(),
        ));
    }
    Ok(keys)
}

/// The public key that signed the manifest, when one of `keys` did.
fn check_signature(
    manifest: &Manifest,
    signature: Option<&SignatureBlock>,
    keys: &[VerifyingKey],
) -> Result<String, BundleError> {
    let Some(signature) = signature else {
        return Err(if keys.is_empty() {
            BundleError::UnsignedWithoutKey
        } else {
            BundleError::Unsigned
        });
    };
    if keys.is_empty() {
        return Err(BundleError::SignedWithoutKey {
            public_key: signature.public_key.clone(),
        });
    }
    if signature.alg != "ed25519" {
        return Err(BundleError::Algorithm(signature.alg.clone()));
    }
    // The named key selects among the configured ones; a key the bundle
    // names but the service does not hold proves nothing.
    let Some(key) =
        checkpoint::key_from_hex(&signature.public_key).filter(|named| keys.contains(named))
    else {
        return Err(BundleError::UnknownKey {
            public_key: signature.public_key.clone(),
        });
    };
    let message = signed_bytes(manifest)?;
    checkpoint::verify_message(&key, SIGNATURE_DOMAIN, message.as_bytes(), &signature.value)
        .map_err(|e| BundleError::BadSignature(e.to_string()))?;
    Ok(signature.public_key.clone())
}

/// The bytes the signature covers: the manifest's canonical JSON.
fn signed_bytes(manifest: &Manifest) -> Result<String, BundleError> {
    let value = serde_json::to_value(manifest)
        .map_err(|e| BundleError::Malformed(format!("cannot encode the manifest: {e}")))?;
    Ok(grant_ledger::jcs::to_string(&value))
}

/// Compiles the files in load order.
fn compile(files: &BTreeMap<String, String>) -> Result<Engine, BundleError> {
    let mut sources = SourceMap::new();
    for name in load_order(files) {
        if let Some(text) = files.get(&name) {
            sources.add(name, text.clone());
        }
    }
    Engine::from_sources(sources).map_err(|e| BundleError::Policy(e.report(false)))
}

/// The file names in the order a directory of them loads: by path
/// components, as the directory walk sorts paths (`a/b.grant` before
/// `a.grant`), so that the policy hash and generated rule ids are those of
/// the directory the bundle was built from.
fn load_order(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut names: Vec<String> = files.keys().cloned().collect();
    names.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    names
}

/// A bundled file's name: a relative path of `/`-separated plain
/// components, ending in `.grant`, as a directory load names files.
fn check_name(name: &str) -> Result<(), BundleError> {
    let bad = |why: &'static str| {
        Err(BundleError::BadName {
            name: grant_syntax::chars::printable(name).into_owned(),
            why,
        })
    };
    if !name.ends_with(".grant") {
        return bad("a bundled file's name ends in `.grant`");
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return bad("control characters and backslashes are not allowed");
    }
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("a relative path of plain components is expected");
        }
        if part.starts_with('.') {
            return bad("hidden names are never loaded from a directory");
        }
    }
    Ok(())
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn shown(path: &Path) -> String {
    grant_syntax::chars::printable(&path.display().to_string()).into_owned()
}

/// A JSON object as a map, refusing duplicate keys: a parser that kept the
/// first and one that kept the last would read different bundles.
fn unique_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of strings")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::{Value, json};

    use super::*;

    fn signer() -> Signer {
        let (private, _) = checkpoint::generate_key_pair().unwrap();
        Signer::from_pem(&private).unwrap()
    }

    /// A two-file policy whose names sort differently as strings and as
    /// paths (`a.grant`, `a/b.grant`).
    fn policy_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.grant"), "attr env: string\n").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(
            dir.path().join("a/b.grant"),
            "allow tool \"t\" when env == \"dev\" ttl 1m\n",
        )
        .unwrap();
        dir
    }

    fn built(signer: &Signer, revision: u64) -> (tempfile::TempDir, Vec<u8>) {
        let dir = policy_dir();
        let bytes = build(dir.path(), revision, signer).unwrap();
        (dir, bytes)
    }

    fn doc(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn bytes(doc: &Value) -> Vec<u8> {
        serde_json::to_vec(doc).unwrap()
    }

    /// Signs `doc`'s manifest again, as a signer who made a bad bundle
    /// would: the checks after the signature are then what refuses it.
    fn resign(doc: &mut Value, signer: &Signer) {
        let message = grant_ledger::jcs::to_string(&doc["manifest"]);
        doc["signature"]["value"] =
            json!(signer.sign_message(SIGNATURE_DOMAIN, message.as_bytes()));
    }

    #[test]
    fn builds_and_verifies() {
        let signer = signer();
        let (dir, bytes) = built(&signer, 7);
        let verified = verify(&bytes, &[signer.verifying_key()], 0).unwrap();
        assert_eq!(verified.revision, 7);
        let on_disk = Engine::from_path(dir.path()).unwrap();
        assert_eq!(verified.policy_hash, on_disk.policy_hash());
        assert_eq!(verified.engine.policy_hash(), on_disk.policy_hash());
        assert_eq!(verified.files, ["a/b.grant", "a.grant"]);
        assert_eq!(
            verified.public_key,
            checkpoint::key_hex(&signer.verifying_key())
        );
        // Equal to the floor is not a rollback (the same bundle again).
        verify(&bytes, &[signer.verifying_key()], 7).unwrap();
        // One of several keys (a rotation) is enough.
        verify(
            &bytes,
            &[self::signer().verifying_key(), signer.verifying_key()],
            0,
        )
        .unwrap();
        let manifest = &doc(&bytes)["manifest"];
        assert_eq!(manifest["format"], 1);
        assert_eq!(
            manifest["files"]["a.grant"],
            sha256(b"attr env: string\n").as_str()
        );
    }

    #[test]
    fn refuses_a_broken_policy_or_a_bad_revision_at_build() {
        let signer = signer();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.grant"), "allow tool \"t\" when nope\n").unwrap();
        assert!(matches!(
            build(dir.path(), 1, &signer),
            Err(BundleError::Policy(_))
        ));
        let dir = policy_dir();
        assert_eq!(
            build(dir.path(), 0, &signer),
            Err(BundleError::RevisionRange(0))
        );
        assert!(
            build(&dir.path().join("none"), 1, &signer)
                .unwrap_err()
                .is_io()
        );
    }

    #[test]
    fn refuses_a_bundle_signed_by_another_key() {
        let (_dir, bytes) = built(&signer(), 1);
        let error = verify(&bytes, &[signer().verifying_key()], 0).unwrap_err();
        assert!(matches!(error, BundleError::UnknownKey { .. }), "{error}");
    }

    #[test]
    fn refuses_a_forged_signature() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        let value = doc["signature"]["value"].as_str().unwrap().to_string();
        let flipped = if value.starts_with('0') { "1" } else { "0" };
        doc["signature"]["value"] = json!(format!("{flipped}{}", &value[1..]));
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert!(matches!(error, BundleError::BadSignature(_)), "{error}");
    }

    #[test]
    fn refuses_a_changed_manifest() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["manifest"]["revision"] = json!(2);
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert!(matches!(error, BundleError::BadSignature(_)), "{error}");
    }

    #[test]
    fn refuses_another_algorithm() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["signature"]["alg"] = json!("rsa");
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert_eq!(error, BundleError::Algorithm("rsa".to_string()));
    }

    #[test]
    fn refuses_an_unsigned_bundle_with_or_without_a_key() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc.as_object_mut().unwrap().remove("signature");
        let unsigned = self::bytes(&doc);
        assert_eq!(
            verify(&unsigned, &[signer.verifying_key()], 0).unwrap_err(),
            BundleError::Unsigned
        );
        assert_eq!(
            verify(&unsigned, &[], 0).unwrap_err(),
            BundleError::UnsignedWithoutKey
        );
    }

    #[test]
    fn refuses_a_signed_bundle_without_a_key() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        assert_eq!(
            verify(&bytes, &[], 0).unwrap_err(),
            BundleError::SignedWithoutKey {
                public_key: checkpoint::key_hex(&signer.verifying_key())
            }
        );
    }

    #[test]
    fn refuses_a_file_the_manifest_does_not_list() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["files"]["z.grant"] = json!("allow tool \"*\" ttl 1h\n");
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert_eq!(error, BundleError::Unlisted("z.grant".to_string()));
    }

    #[test]
    fn refuses_a_listed_file_missing() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["files"].as_object_mut().unwrap().remove("a.grant");
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert_eq!(error, BundleError::Missing("a.grant".to_string()));
    }

    #[test]
    fn refuses_a_changed_file() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["files"]["a/b.grant"] = json!("allow tool \"*\" ttl 1h\n");
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert!(
            matches!(&error, BundleError::FileHash { name, .. } if name == "a/b.grant"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_rollback() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 5);
        assert_eq!(
            verify(&bytes, &[signer.verifying_key()], 6).unwrap_err(),
            BundleError::Rollback {
                revision: 5,
                floor: 6
            }
        );
    }

    #[test]
    fn refuses_a_revision_out_of_range() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["manifest"]["revision"] = json!(0);
        resign(&mut doc, &signer);
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert_eq!(error, BundleError::RevisionRange(0));
    }

    #[test]
    fn refuses_a_wrong_policy_hash() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["manifest"]["policy_hash"] = json!(format!("sha256:{}", "0".repeat(64)));
        resign(&mut doc, &signer);
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert!(matches!(error, BundleError::PolicyHash { .. }), "{error}");
    }

    #[test]
    fn refuses_a_policy_with_errors() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        let text = "allow tool \"t\" when nope ttl 1m\n";
        doc["files"]["a/b.grant"] = json!(text);
        doc["manifest"]["files"]["a/b.grant"] = json!(sha256(text.as_bytes()));
        resign(&mut doc, &signer);
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert!(
            matches!(&error, BundleError::Policy(report) if report.contains("nope")),
            "{error}"
        );
    }

    #[test]
    fn refuses_unsafe_file_names() {
        let signer = signer();
        for name in [
            "../x.grant",
            "/x.grant",
            "a//x.grant",
            ".x.grant",
            "x.txt",
            "a\\x.grant",
        ] {
            let (_dir, bytes) = built(&signer, 1);
            let mut doc = doc(&bytes);
            let text = "attr x: string\n";
            doc["files"][name] = json!(text);
            doc["manifest"]["files"][name] = json!(sha256(text.as_bytes()));
            resign(&mut doc, &signer);
            let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
            assert!(
                matches!(error, BundleError::BadName { .. }),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn refuses_an_empty_manifest() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["manifest"]["files"] = json!({});
        doc["files"] = json!({});
        resign(&mut doc, &signer);
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert_eq!(error, BundleError::Empty);
    }

    #[test]
    fn refuses_another_format() {
        let signer = signer();
        let (_dir, bytes) = built(&signer, 1);
        let mut doc = doc(&bytes);
        doc["manifest"]["format"] = json!(2);
        let error = verify(&self::bytes(&doc), &[signer.verifying_key()], 0).unwrap_err();
        assert_eq!(error, BundleError::Format(2));
    }

    #[test]
    fn refuses_what_is_not_a_bundle() {
        let key = signer().verifying_key();
        for text in [
            "",
            "[]",
            "{\"manifest\": {}}",
            // Unknown fields, anywhere.
            "{\"manifest\": {\"format\": 1, \"revision\": 1, \"policy_hash\": \"\", \"files\": {}, \"extra\": 1}, \"files\": {}}",
            // A key twice: which one a reader keeps must not matter.
            "{\"manifest\": {\"format\": 1, \"revision\": 1, \"policy_hash\": \"\", \"files\": {\"a.grant\": \"x\", \"a.grant\": \"y\"}}, \"files\": {}}",
        ] {
            let error = verify(text.as_bytes(), &[key], 0).unwrap_err();
            assert!(
                matches!(error, BundleError::Malformed(_)),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn loads_several_keys_from_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, one) = checkpoint::generate_key_pair().unwrap();
        let (_, two) = checkpoint::generate_key_pair().unwrap();
        let path = dir.path().join("keys.pub");
        std::fs::write(&path, format!("{one}{two}")).unwrap();
        assert_eq!(load_keys(&path).unwrap().len(), 2);
        std::fs::write(&path, "nothing").unwrap();
        assert!(load_keys(&path).unwrap_err().is_io());
    }
}
