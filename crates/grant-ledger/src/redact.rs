//! Redaction of attribute values before they reach the audit chain: each
//! configured attribute path has its value replaced by
//! `hmac-sha256:<hex>`, a keyed hash of the value's canonical JSON. The
//! value cannot be read back (or guessed by hashing candidates) without
//! the key, yet equal values give equal hashes, so events stay joinable
//! (the same customer across tasks).
//!
//! Paths are dotted, as in policies (`args.password`). A request may give
//! attributes flat (`{"args.password": …}`), nested (`{"args":
//! {"password": …}}`) or mixed, so every way of splitting the path into
//! keys is looked for. A path that ends at an object redacts the whole
//! object. Arrays are not looked into: attribute paths do not index.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::LedgerError;

/// The prefix of a redacted value.
pub const PREFIX: &str = "hmac-sha256:";

/// Replaces configured attribute values by their keyed hash.
#[derive(Clone)]
pub struct Redactor {
    mac: Hmac<Sha256>,
    /// Each path split at its dots.
    paths: Vec<Vec<String>>,
}

impl std::fmt::Debug for Redactor {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor hashing with `key` (32 bytes from a CSPRNG, kept secret:
    /// whoever holds it can test guesses) the values at `paths`. A path
    /// that is empty or has an empty segment (`a..b`, `.a`) is refused.
    pub fn new(key: [u8; 32], paths: Vec<String>) -> Result<Redactor, LedgerError> {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|e| LedgerError::Internal(format!("cannot key HMAC-SHA256: {e}")))?;
        let paths = paths
            .iter()
            .map(|path| {
                let segments: Vec<String> = path.split('.').map(str::to_string).collect();
                if segments.iter().any(String::is_empty) {
                    Err(LedgerError::Invalid(format!(
                        "redacted attribute path `{path}` is not a dotted path such as `args.password`"
                    )))
                } else {
                    Ok(segments)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Redactor { mac, paths })
    }

    /// The redacted form of `value`: `hmac-sha256:` and the hex of
    /// HMAC-SHA256(key, canonical JSON of `value`).
    pub fn hash(&self, value: &serde_json::Value) -> String {
        let mut mac = self.mac.clone();
        mac.update(crate::jcs::to_string(value).as_bytes());
        let mut out = String::from(PREFIX);
        crate::hex::push(&mut out, &mac.finalize().into_bytes());
        out
    }

    /// Replaces, in `attrs`, the value at every configured path, however
    /// the path is split between flat and nested keys. Apply it once: a
    /// second pass would hash the hashes.
    pub fn redact(&self, attrs: &mut serde_json::Value) {
        for path in &self.paths {
            self.redact_path(attrs, path);
        }
    }

    fn redact_path(&self, value: &mut serde_json::Value, path: &[String]) {
        let Some(object) = value.as_object_mut() else {
            return;
        };
        // The key may hold the first 1, 2, … segments of the path,
        // joined with dots; the rest is looked for inside its value.
        for taken in 1..=path.len() {
            let (head, rest) = path.split_at(taken);
            let Some(inner) = object.get_mut(&head.join(".")) else {
                continue;
            };
            if rest.is_empty() {
                *inner = serde_json::Value::String(self.hash(inner));
            } else {
                self.redact_path(inner, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn redactor(key: u8, paths: &[&str]) -> Redactor {
        Redactor::new([key; 32], paths.iter().map(|p| p.to_string()).collect()).unwrap()
    }

    /// HMAC-SHA256 over the canonical JSON, against a value computed
    /// independently (Python's hmac module).
    #[test]
    fn the_hash_is_hmac_sha256_of_the_canonical_json() {
        let r = redactor(0x0b, &[]);
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"\x0b"*32,
        //   b"{\"a\":1,\"b\":\"x\"}",hashlib.sha256).hexdigest())'
        assert_eq!(
            r.hash(&json!({"b": "x", "a": 1})),
            "hmac-sha256:38f06096c4133f3b9d997ec913d5e959f2bdd4ac3f6265a47b11d3f623989fa0"
        );
    }

    #[test]
    fn flat_nested_and_mixed_paths() {
        let r = redactor(1, &["args.password", "user.email", "a.b.c"]);
        let secret = r.hash(&json!("hunter2"));
        let email = r.hash(&json!("ann@example.com"));
        let deep = r.hash(&json!(42));

        let mut flat = json!({"args.password": "hunter2", "user.email": "ann@example.com", "a.b.c": 42, "keep": 1});
        r.redact(&mut flat);
        assert_eq!(
            flat,
            json!({"args.password": secret, "user.email": email, "a.b.c": deep, "keep": 1})
        );

        let mut nested = json!({"args": {"password": "hunter2", "n": 2}, "user": {"email": "ann@example.com"}, "a": {"b": {"c": 42}}});
        r.redact(&mut nested);
        assert_eq!(
            nested,
            json!({"args": {"password": secret, "n": 2}, "user": {"email": email}, "a": {"b": {"c": deep}}})
        );

        let mut mixed = json!({"a.b": {"c": 42}, "a": {"b.c": 42}});
        r.redact(&mut mixed);
        assert_eq!(mixed, json!({"a.b": {"c": deep}, "a": {"b.c": deep}}));
    }

    #[test]
    fn whole_objects_arrays_and_absent_paths() {
        let r = redactor(1, &["args", "list.x", "missing.path"]);
        let mut attrs = json!({"args": {"password": "p"}, "list": [{"x": 1}], "other": "o"});
        let args = r.hash(&json!({"password": "p"}));
        r.redact(&mut attrs);
        assert_eq!(
            attrs,
            json!({"args": args, "list": [{"x": 1}], "other": "o"})
        );
        // Not an object at all: nothing to do.
        let mut scalar = json!("args");
        r.redact(&mut scalar);
        assert_eq!(scalar, json!("args"));
    }

    #[test]
    fn equal_values_join_and_keys_differ() {
        let a = redactor(1, &["x"]);
        let b = redactor(2, &["x"]);
        assert_eq!(a.hash(&json!("v")), a.hash(&json!("v")));
        assert_ne!(a.hash(&json!("v")), a.hash(&json!("w")));
        assert_ne!(a.hash(&json!("v")), b.hash(&json!("v")));
        // The canonical form decides, not the key order or spelling.
        assert_eq!(
            a.hash(&serde_json::from_str("{\"b\":1.0,\"a\":2}").unwrap()),
            a.hash(&json!({"a": 2, "b": 1}))
        );
        // A string and a number of the same digits differ.
        assert_ne!(a.hash(&json!("1")), a.hash(&json!(1)));
    }

    #[test]
    fn bad_paths_are_refused_and_the_key_is_not_shown() {
        for bad in ["", "a..b", ".a", "a."] {
            let error = Redactor::new([0; 32], vec![bad.to_string()]).unwrap_err();
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
        assert_eq!(
            format!("{:?}", redactor(7, &["a.b"])),
            r#"Redactor { paths: [["a", "b"]], .. }"#
        );
    }
}
