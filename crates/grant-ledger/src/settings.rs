//! The ledger's settings as written in a TOML file (`[ledger]`, `[redact]`),
//! shared by every command that opens a ledger (`grant serve`, `grant mcp`),
//! so the same names mean the same thing everywhere.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::{LedgerConfig, Redactor};

/// `[ledger]`. Every field optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    /// A duration (`12h`).
    pub max_grant_lifetime: Option<String>,
    /// A duration (`15m`).
    pub approval_timeout: Option<String>,
    /// The degraded-mode spool file; an empty path disables it.
    pub spool: Option<PathBuf>,
    /// How often expired grants and overdue tasks are swept (`1s`).
    pub sweep_interval: Option<String>,
}

/// `[redact]`: attribute paths kept only as keyed hashes.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedactSettings {
    /// A file holding the 32-byte HMAC key as 64 hex digits.
    pub key_file: PathBuf,
    pub paths: Vec<String>,
}

impl LedgerSettings {
    /// The ledger configuration these settings and `redact` give; the spool
    /// is `default_spool` unless the settings name one (or disable it).
    pub fn resolve(
        &self,
        redact: Option<&RedactSettings>,
        default_spool: Option<PathBuf>,
    ) -> Result<LedgerConfig, String> {
        let mut config = LedgerConfig::default();
        if let Some(d) = duration("max_grant_lifetime", self.max_grant_lifetime.as_deref())? {
            config.max_grant_lifetime = d.as_secs();
        }
        if let Some(d) = duration("approval_timeout", self.approval_timeout.as_deref())? {
            config.approval_timeout = d.as_secs();
        }
        config.spool = match &self.spool {
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(path.clone()),
            None => default_spool,
        };
        if let Some(redact) = redact {
            config.redactor = Some(redact.redactor()?);
        }
        Ok(config)
    }

    /// `sweep_interval`, 1 s when not given.
    pub fn sweep_interval(&self) -> Result<Duration, String> {
        Ok(duration("sweep_interval", self.sweep_interval.as_deref())?
            .unwrap_or(Duration::from_secs(1)))
    }
}

impl RedactSettings {
    /// Reads the key file and checks the paths.
    pub fn redactor(&self) -> Result<Redactor, String> {
        let text = std::fs::read_to_string(&self.key_file)
            .map_err(|e| format!("{}: cannot read: {e}", self.key_file.display()))?;
        let key: [u8; 32] = crate::hex::decode(text.trim())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "{}: the redaction key must be 64 hexadecimal digits (32 bytes)",
                    self.key_file.display()
                )
            })?;
        Redactor::new(key, self.paths.clone()).map_err(|e| e.to_string())
    }
}

/// A duration setting (`5m`), named in its error.
pub fn duration(what: &str, text: Option<&str>) -> Result<Option<Duration>, String> {
    text.map(|t| {
        grant_engine::parse_duration(t)
            .map(Duration::from_secs)
            .map_err(|e| format!("{what} `{t}`: {e}"))
    })
    .transpose()
}
