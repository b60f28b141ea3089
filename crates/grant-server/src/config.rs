//! The service's settings: the `--config` TOML file and the command's
//! flags set the same fields ([`ServeConfig`], every field optional; flags
//! win), which resolve into the [`Settings`] a [`crate::Server`] runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Settings as written: a TOML file, or flags. Every field optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<String>,
    pub policy: Option<PathBuf>,
    pub bundle: Option<PathBuf>,
    pub bundle_key: Option<PathBuf>,
    pub store: Option<String>,
    pub tokens: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: Option<bool>,
    /// A file, or `-` for stdout.
    pub decision_log: Option<String>,
    /// A duration (`24h`).
    pub max_staleness: Option<String>,
    pub public_url: Option<String>,
    /// Where the last-known-good bundle, its verification time and the
    /// degraded spool are kept; default: the SQLite file's directory, else
    /// the working directory.
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub ledger: grant_ledger::LedgerSettings,
    #[serde(default)]
    pub redact: Option<grant_ledger::RedactSettings>,
}

/// `[limits]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: Option<usize>,
    /// A duration (`10s`).
    pub request_timeout: Option<String>,
    pub max_concurrency: Option<usize>,
}

impl ServeConfig {
    /// Reads a TOML settings file.
    pub fn load(path: &Path) -> Result<ServeConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `self` with every field `flags` sets replaced by the flag's value.
    pub fn overridden_by(self, flags: ServeConfig) -> ServeConfig {
        ServeConfig {
            listen: flags.listen.or(self.listen),
            policy: flags.policy.or(self.policy),
            bundle: flags.bundle.or(self.bundle),
            bundle_key: flags.bundle_key.or(self.bundle_key),
            store: flags.store.or(self.store),
            tokens: flags.tokens.or(self.tokens),
            tls_cert: flags.tls_cert.or(self.tls_cert),
            tls_key: flags.tls_key.or(self.tls_key),
            insecure_http: flags.insecure_http.or(self.insecure_http),
            decision_log: flags.decision_log.or(self.decision_log),
            max_staleness: flags.max_staleness.or(self.max_staleness),
            public_url: flags.public_url.or(self.public_url),
            state_dir: flags.state_dir.or(self.state_dir),
            limits: LimitsConfig {
                max_body_bytes: flags.limits.max_body_bytes.or(self.limits.max_body_bytes),
                request_timeout: flags.limits.request_timeout.or(self.limits.request_timeout),
                max_concurrency: flags.limits.max_concurrency.or(self.limits.max_concurrency),
            },
            ledger: grant_ledger::LedgerSettings {
                max_grant_lifetime: flags
                    .ledger
                    .max_grant_lifetime
                    .or(self.ledger.max_grant_lifetime),
                approval_timeout: flags
                    .ledger
                    .approval_timeout
                    .or(self.ledger.approval_timeout),
                spool: flags.ledger.spool.or(self.ledger.spool),
                sweep_interval: flags.ledger.sweep_interval.or(self.ledger.sweep_interval),
            },
            redact: flags.redact.or(self.redact),
        }
    }

    /// The settings to run with, every default applied and every value
    /// checked.
    pub fn resolve(self) -> Result<Settings, String> {
        let listen_text = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!(
                "--listen `{listen_text}` is not an address such as 127.0.0.1:8181 or [::1]:8181"
            )
        })?;
        let policy = match (self.policy, self.bundle, self.bundle_key) {
            (Some(_), Some(_), _) => {
                return Err("give --policy or --bundle, not both".to_string());
            }
            (Some(path), None, None) => PolicySource::Files(path),
            (Some(_), None, Some(_)) => {
                return Err("--bundle-key goes with --bundle, not --policy".to_string());
            }
            (None, Some(_), None) => {
                return Err(
                    "--bundle needs --bundle-key: every bundle is verified (docs/bundles.md)"
                        .to_string(),
                );
            }
            (None, Some(path), key) => PolicySource::Bundle { path, key },
            (None, None, _) => {
                return Err("give the policy to serve: --policy PATH or --bundle FILE".to_string());
            }
        };
        let store = self.store.unwrap_or_else(|| DEFAULT_STORE.to_string());
        let state_dir = match self.state_dir {
            Some(dir) => dir,
            None => default_state_dir(&store),
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".to_string()),
        };
        let duration = |what: &str, text: Option<String>| {
            grant_ledger::settings::duration(what, text.as_deref())
        };
        let max_staleness = duration("max_staleness", self.max_staleness)?;
        let limits = Limits {
            max_body_bytes: self
                .limits
                .max_body_bytes
                .unwrap_or(Limits::DEFAULT.max_body_bytes),
            request_timeout: duration("request_timeout", self.limits.request_timeout)?
                .unwrap_or(Limits::DEFAULT.request_timeout),
            max_concurrency: self
                .limits
                .max_concurrency
                .unwrap_or(Limits::DEFAULT.max_concurrency),
        };
        if limits.max_concurrency == 0 || limits.max_body_bytes == 0 {
            return Err("limits must be greater than zero".to_string());
        }
        let ledger = self.ledger.resolve(
            self.redact.as_ref(),
            Some(state_dir.join("grant-spool.ndjson")),
        )?;
        let sweep_interval = self.ledger.sweep_interval()?;
        Ok(Settings {
            listen,
            policy,
            store,
            tokens: self.tokens,
            tls,
            insecure_http: self.insecure_http.unwrap_or(false),
            decision_log: self.decision_log,
            max_staleness,
            public_url: self.public_url,
            state_dir,
            limits,
            ledger,
            sweep_interval,
        })
    }
}

/// `--listen` when not given: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8181";
/// `--store` when not given: a SQLite file in the working directory.
pub const DEFAULT_STORE: &str = "sqlite:grant-ledger.db";

/// Where the policy comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// A policy file or a directory of them (`--policy`).
    Files(PathBuf),
    /// A bundle (`--bundle`), verified with `key` when given.
    Bundle { path: PathBuf, key: Option<PathBuf> },
}

/// The TLS certificate chain and key, PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Limits on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Larger bodies are answered 413.
    pub max_body_bytes: usize,
    /// A request not answered in this time is answered 503.
    pub request_timeout: Duration,
    /// Requests beyond this many at once are answered 503.
    pub max_concurrency: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 1 << 20,
        request_timeout: Duration::from_secs(10),
        max_concurrency: 1024,
    };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Resolved settings of a server.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub policy: PolicySource,
    pub store: String,
    pub tokens: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
    pub insecure_http: bool,
    pub decision_log: Option<String>,
    pub max_staleness: Option<Duration>,
    pub public_url: Option<String>,
    pub state_dir: PathBuf,
    pub limits: Limits,
    pub ledger: grant_ledger::LedgerConfig,
    pub sweep_interval: Duration,
}

impl Settings {
    /// Settings for a server of `policy` on `store`, everything else by
    /// default (tests and embedders).
    pub fn new(policy: PolicySource, store: &str, state_dir: &Path) -> Settings {
        let ledger = grant_ledger::LedgerConfig {
            spool: Some(state_dir.join("grant-spool.ndjson")),
            ..Default::default()
        };
        Settings {
            listen: ([127, 0, 0, 1], 0).into(),
            policy,
            store: store.to_string(),
            tokens: None,
            tls: None,
            insecure_http: false,
            decision_log: None,
            max_staleness: None,
            public_url: None,
            state_dir: state_dir.to_path_buf(),
            limits: Limits::DEFAULT,
            ledger,
            sweep_interval: Duration::from_secs(1),
        }
    }

    /// Refuses settings that would expose the service: a non-loopback
    /// address without tokens, or without TLS unless `insecure_http`.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback() {
            return Ok(());
        }
        if self.tokens.is_none() {
            return Err(format!(
                "refusing to listen on {} without --tokens: anyone who can reach it could issue grants",
                self.listen
            ));
        }
        if self.tls.is_none() && !self.insecure_http {
            return Err(format!(
                "refusing to listen on {} without TLS: give --tls-cert and --tls-key, or --insecure-http if a proxy terminates TLS",
                self.listen
            ));
        }
        Ok(())
    }
}

fn default_state_dir(store: &str) -> PathBuf {
    let here = PathBuf::from(".");
    match store.strip_prefix("sqlite:") {
        Some(path) => Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or(here),
        None => here,
    }
}
