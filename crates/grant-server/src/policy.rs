//! The policy the service serves: loaded from its source at start, reloaded
//! on demand, kept when a reload fails (last-known-good), and refused once
//! it is older than `max_staleness` without a successful load.
//!
//! A bundle source (docs/bundles.md) also keeps, in the state directory,
//! the last bundle that verified (`grant-bundle.lkg.json`, its bytes as
//! read) and a small state file (`grant-bundle.state.json`: its revision,
//! policy hash, and when a bundle from the source last verified). A
//! restart without a usable source serves that bundle, its staleness
//! counted from the persisted time; the persisted revision is the floor
//! below which no bundle is accepted (no rollback).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grant_engine::Engine;
use grant_ledger::Ledger;
use serde::{Deserialize, Serialize};

use crate::bundle::{self, VerifiedBundle};
use crate::config::{PolicySource, Settings};

/// `max_staleness` of a bundle source when none is given.
pub const DEFAULT_BUNDLE_STALENESS: Duration = Duration::from_secs(24 * 3600);

/// The last-known-good bundle, in the state directory.
pub const LKG_BUNDLE_FILE: &str = "grant-bundle.lkg.json";
/// Its revision, policy hash and verification time, beside it.
pub const LKG_STATE_FILE: &str = "grant-bundle.state.json";

/// Where the served policy stands; `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyStatus {
    /// The hash of the policy being served.
    pub hash: String,
    /// When the served policy was last loaded (or, from a bundle, last
    /// verified) successfully; for a bundle, persisted across restarts.
    pub loaded_at: SystemTime,
    /// Why the last reload failed, rendered; `None` after a good one.
    pub last_error: Option<String>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// The served bundle's revision (`None` for policy files).
    pub revision: Option<u64>,
}

/// The outcome of a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// A new policy is served (its hash).
    Activated(String),
    /// The source holds the policy already served.
    Unchanged(String),
    /// The source is bad; the old policy is still served.
    Failed(String),
}

/// The served policy's source and state.
#[derive(Debug)]
pub struct Policies {
    source: PolicySource,
    state_dir: PathBuf,
    max_staleness: Option<Duration>,
    status: Mutex<PolicyStatus>,
    /// The last-known-good bundle (bundle sources only).
    lkg: Mutex<Option<Mark>>,
    /// One reload at a time (SIGHUP, the route and the watcher may race).
    reloading: Mutex<()>,
}

/// What is remembered of the last-known-good bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mark {
    revision: u64,
    policy_hash: String,
    /// `sha256:` of the bundle's bytes: whether the file must be rewritten.
    bytes_hash: String,
}

/// `grant-bundle.state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LkgState {
    revision: u64,
    policy_hash: String,
    /// Unix seconds of the last successful verification of a bundle read
    /// from the source (not of the last-known-good copy).
    verified_at: u64,
}

impl Policies {
    /// Loads the policy at start; an error names what is wrong. A bundle
    /// source that is missing or bad falls back to the last-known-good
    /// bundle (the service then starts degraded).
    pub fn load(settings: &Settings) -> Result<(Policies, Engine), String> {
        let mut max_staleness = settings.max_staleness;
        let (engine, status, lkg) = match &settings.policy {
            PolicySource::Files(path) => {
                let engine = load_files(path)?;
                let status = PolicyStatus {
                    hash: engine.policy_hash().to_string(),
                    loaded_at: SystemTime::now(),
                    last_error: None,
                    reloads_ok: 0,
                    reloads_failed: 0,
                    revision: None,
                };
                (engine, status, None)
            }
            PolicySource::Bundle { path, key } => {
                max_staleness = max_staleness.or(Some(DEFAULT_BUNDLE_STALENESS));
                start_bundle(&settings.state_dir, path, key.as_deref())?
            }
        };
        Ok((
            Policies {
                source: settings.policy.clone(),
                state_dir: settings.state_dir.clone(),
                max_staleness,
                status: Mutex::new(status),
                lkg: Mutex::new(lkg),
                reloading: Mutex::new(()),
            },
            engine,
        ))
    }

    /// The source, as configured.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The staleness limit in force (24 h for a bundle unless set).
    pub fn max_staleness(&self) -> Option<Duration> {
        self.max_staleness
    }

    /// How often the source is checked again while nothing changes, so
    /// that a good source keeps the policy fresh: a quarter of the
    /// staleness limit, between 250 ms and a minute; `None` without a limit.
    pub fn refresh_interval(&self) -> Option<Duration> {
        self.max_staleness
            .map(|limit| (limit / 4).clamp(Duration::from_millis(250), Duration::from_secs(60)))
    }

    /// Loads the source again and, when it is good and new, makes the
    /// ledger decide under it (atomically: a request in flight finishes
    /// under the policy it started with).
    pub fn reload(&self, ledger: &Ledger, actor: &str) -> Reload {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let loaded = match &self.source {
            PolicySource::Files(path) => load_files(path).map(|engine| (engine, None)),
            PolicySource::Bundle { path, key } => self.reload_bundle(path, key.as_deref()),
        };
        match loaded {
            Ok((engine, revision)) => {
                let hash = engine.policy_hash().to_string();
                let unchanged = hash == ledger.engine().policy_hash();
                if !unchanged {
                    // The swap happens first and cannot fail; recording
                    // `policy.activated` can (store down), and is retried
                    // by the ledger at its next activation.
                    if let Err(e) = ledger.set_policy(engine, actor) {
                        tracing::warn!(
                            "policy {hash} is served; recording its activation failed: {e}"
                        );
                    }
                }
                let mut status = self.lock();
                status.hash = hash.clone();
                status.loaded_at = SystemTime::now();
                status.last_error = None;
                status.reloads_ok += 1;
                status.revision = revision;
                if unchanged {
                    Reload::Unchanged(hash)
                } else {
                    Reload::Activated(hash)
                }
            }
            Err(error) => {
                let mut status = self.lock();
                status.last_error = Some(error.clone());
                status.reloads_failed += 1;
                Reload::Failed(error)
            }
        }
    }

    /// Verifies the bundle at `path` against the last-known-good one and,
    /// when it is good, persists it as the new last-known-good (before it
    /// is served: a policy a restart would not find again is not served).
    fn reload_bundle(
        &self,
        path: &Path,
        key: Option<&Path>,
    ) -> Result<(Engine, Option<u64>), String> {
        let mark = self
            .lkg
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (bytes, verified) = read_source_bundle(path, key, mark.as_ref())?;
        let mark = persist(
            &self.state_dir,
            &bytes,
            &verified,
            mark.as_ref(),
            SystemTime::now(),
        )?;
        *self.lkg.lock().unwrap_or_else(PoisonError::into_inner) = Some(mark);
        Ok((verified.engine, Some(verified.revision)))
    }

    /// The current status.
    pub fn status(&self) -> PolicyStatus {
        self.lock().clone()
    }

    /// `Err` with the reason when the served policy may not decide: older
    /// than `max_staleness` since its last successful load.
    pub fn check_fresh(&self) -> Result<(), String> {
        let Some(limit) = self.max_staleness else {
            return Ok(());
        };
        let status = self.lock();
        let age = status.loaded_at.elapsed().unwrap_or_default();
        if age <= limit {
            return Ok(());
        }
        let why = status
            .last_error
            .as_deref()
            .unwrap_or("no successful load since");
        Err(format!(
            "the policy is stale: last loaded {} ago, past max staleness {}; {why}",
            grant_engine::format_duration(age.as_secs()),
            grant_engine::format_duration(limit.as_secs()),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PolicyStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Loads and compiles a policy file or directory; the error is the
/// rendered diagnostics (or the I/O error).
fn load_files(path: &Path) -> Result<Engine, String> {
    Engine::from_path(path).map_err(|e| e.report(false))
}

/// A bundle source at start: the source when it verifies, else the
/// last-known-good bundle (with the source's error as `last_error`, and
/// the persisted verification time as `loaded_at`).
fn start_bundle(
    state_dir: &Path,
    path: &Path,
    key: Option<&Path>,
) -> Result<(Engine, PolicyStatus, Option<Mark>), String> {
    let state = read_state(state_dir)?;
    let lkg_path = state_dir.join(LKG_BUNDLE_FILE);
    // The floor: the persisted state's revision. Without state (a first
    // start) there is none; a copy left by a crash before its state was
    // written is still verified before it is served.
    let copy = bundle::read(&lkg_path).ok();
    let mark = match (&state, &copy) {
        (Some(state), copy) => Some(Mark {
            revision: state.revision,
            policy_hash: state.policy_hash.clone(),
            bytes_hash: copy.as_deref().map(bundle::sha256).unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let source_error = match read_source_bundle(path, key, mark.as_ref()) {
        Ok((bytes, verified)) => {
            let now = SystemTime::now();
            let mark = persist(state_dir, &bytes, &verified, mark.as_ref(), now)?;
            let status = fresh_status(&verified, now, None);
            return Ok((verified.engine, status, Some(mark)));
        }
        Err(error) => error,
    };
    let Some(copy) = copy else {
        return Err(format!(
            "{source_error}\nand there is no last-known-good bundle `{}` to serve instead",
            shown(&lkg_path)
        ));
    };
    let verified = keys(key)
        .and_then(|keys| {
            bundle::verify(&copy, &keys, mark.as_ref().map_or(0, |m| m.revision))
                .map_err(|e| e.to_string())
        })
        .and_then(|verified| same_revision(&verified, mark.as_ref()).map(|()| verified))
        .map_err(|e| {
            format!(
                "{source_error}\nand the last-known-good bundle `{}` cannot be served: {e}",
                shown(&lkg_path)
            )
        })?;
    // Not a verification of the source: the clock keeps running from the
    // last one. A copy without state was never recorded as verified.
    let now = SystemTime::now();
    let verified_at = state
        .as_ref()
        .map_or(UNIX_EPOCH, |s| {
            UNIX_EPOCH + Duration::from_secs(s.verified_at)
        })
        .min(now);
    tracing::warn!(
        "the policy source is unusable; serving the last-known-good bundle (revision {}, {}):\n{source_error}",
        verified.revision,
        verified.policy_hash
    );
    let mark = Mark {
        revision: verified.revision,
        policy_hash: verified.policy_hash.clone(),
        bytes_hash: bundle::sha256(&copy),
    };
    let status = fresh_status(&verified, verified_at, Some(source_error));
    Ok((verified.engine, status, Some(mark)))
}

fn fresh_status(verified: &VerifiedBundle, at: SystemTime, error: Option<String>) -> PolicyStatus {
    PolicyStatus {
        hash: verified.policy_hash.clone(),
        loaded_at: at,
        last_error: error,
        reloads_ok: 0,
        reloads_failed: 0,
        revision: Some(verified.revision),
    }
}

/// Reads and verifies the source bundle, against the last-known-good one
/// when there is one. The error names the file.
fn read_source_bundle(
    path: &Path,
    key: Option<&Path>,
    mark: Option<&Mark>,
) -> Result<(Vec<u8>, VerifiedBundle), String> {
    let keys = keys(key)?;
    let bytes = bundle::read(path).map_err(|e| e.to_string())?;
    let verified = bundle::verify(&bytes, &keys, mark.map_or(0, |m| m.revision))
        .map_err(|e| format!("bundle `{}`: {e}", shown(path)))?;
    same_revision(&verified, mark).map_err(|e| format!("bundle `{}`: {e}", shown(path)))?;
    Ok((bytes, verified))
}

/// The configured keys, read again at each load (a rotated key file is
/// picked up by a reload); none when no key is configured.
fn keys(key: Option<&Path>) -> Result<Vec<grant_ledger::VerifyingKey>, String> {
    match key {
        Some(path) => bundle::load_keys(path).map_err(|e| e.to_string()),
        None => Ok(Vec::new()),
    }
}

/// One revision is one policy: the last-known-good revision with another
/// policy is refused (a new policy needs a higher revision).
fn same_revision(verified: &VerifiedBundle, mark: Option<&Mark>) -> Result<(), String> {
    match mark {
        Some(mark)
            if mark.revision == verified.revision && mark.policy_hash != verified.policy_hash =>
        {
            Err(format!(
                "revision {} is the last-known-good revision, with policy {}, but holds policy {}: a changed policy needs a higher revision",
                verified.revision, mark.policy_hash, verified.policy_hash
            ))
        }
        _ => Ok(()),
    }
}

/// Makes `bytes` the last-known-good bundle, verified at `at`: the bundle
/// file (when its bytes changed) then the state, each written whole
/// (temporary file, flush, rename, mode 0600 when new).
fn persist(
    state_dir: &Path,
    bytes: &[u8],
    verified: &VerifiedBundle,
    previous: Option<&Mark>,
    at: SystemTime,
) -> Result<Mark, String> {
    let bytes_hash = bundle::sha256(bytes);
    std::fs::create_dir_all(state_dir).map_err(|e| {
        format!(
            "cannot create the state directory `{}`: {}",
            shown(state_dir),
            grant_syntax::source::describe_io(&e)
        )
    })?;
    let write = |name: &str, data: &[u8]| {
        grant_syntax::durable::write(&state_dir.join(name), data)
            .map_err(|e| format!("cannot keep the last-known-good bundle: {e}"))
    };
    if previous.is_none_or(|m| m.bytes_hash != bytes_hash)
        || !state_dir.join(LKG_BUNDLE_FILE).exists()
    {
        write(LKG_BUNDLE_FILE, bytes)?;
    }
    let state = LkgState {
        revision: verified.revision,
        policy_hash: verified.policy_hash.clone(),
        verified_at: at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    let mut text = serde_json::to_vec_pretty(&state)
        .map_err(|e| format!("cannot encode the bundle state: {e}"))?;
    text.push(b'\n');
    write(LKG_STATE_FILE, &text)?;
    Ok(Mark {
        revision: verified.revision,
        policy_hash: verified.policy_hash.clone(),
        bytes_hash,
    })
}

/// The persisted state; `None` when there is none yet. A state file that
/// cannot be read is an error, not a fresh start: it holds the rollback
/// floor.
fn read_state(state_dir: &Path) -> Result<Option<LkgState>, String> {
    let path = state_dir.join(LKG_STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read `{}`: {}",
                shown(&path),
                grant_syntax::source::describe_io(&e)
            ));
        }
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        format!(
            "`{}` is not a bundle state file ({e}); it holds the last-known-good revision (the rollback floor): repair or remove it",
            shown(&path)
        )
    })
}

fn shown(path: &Path) -> String {
    grant_syntax::chars::printable(&path.display().to_string()).into_owned()
}
