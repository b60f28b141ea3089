//! The policy hash: which policy text a decision was made under.

use grant_syntax::SourceMap;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of the policy's files in path order, each as its name
/// relative to the policy root, a NUL, its length in bytes as decimal
/// digits, a NUL, and its text. Names and lengths are included so that
/// moving text between files changes the hash.
pub(crate) fn policy_hash(sources: &SourceMap) -> String {
    let mut hasher = Sha256::new();
    for (_, file) in sources.files() {
        hasher.update(file.name.as_bytes());
        hasher.update([0]);
        hasher.update(file.text.len().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
