//! The policy the service serves: loaded from its source at start, reloaded
//! on demand, kept when a reload fails (last-known-good), and refused once
//! it is older than `max_staleness` without a successful load.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use grant_engine::Engine;
use grant_ledger::Ledger;

use crate::config::{PolicySource, Settings};

/// Where the served policy stands; `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyStatus {
    /// The hash of the policy being served.
    pub hash: String,
    /// When the served policy was last loaded (or, from a bundle, last
    /// verified) successfully.
    pub loaded_at: SystemTime,
    /// Why the last reload failed, rendered; `None` after a good one.
    pub last_error: Option<String>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
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
    max_staleness: Option<Duration>,
    status: Mutex<PolicyStatus>,
    /// One reload at a time (SIGHUP, the route and the watcher may race).
    reloading: Mutex<()>,
}

impl Policies {
    /// Loads the policy at start; an error names what is wrong.
    pub fn load(settings: &Settings) -> Result<(Policies, Engine), String> {
        let engine = load_source(&settings.policy)?;
        let status = PolicyStatus {
            hash: engine.policy_hash().to_string(),
            loaded_at: SystemTime::now(),
            last_error: None,
            reloads_ok: 0,
            reloads_failed: 0,
        };
        Ok((
            Policies {
                source: settings.policy.clone(),
                max_staleness: settings.max_staleness,
                status: Mutex::new(status),
                reloading: Mutex::new(()),
            },
            engine,
        ))
    }

    /// The source, as configured.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// Loads the source again and, when it is good and new, makes the
    /// ledger decide under it (atomically: a request in flight finishes
    /// under the policy it started with).
    pub fn reload(&self, ledger: &Ledger, actor: &str) -> Reload {
        let _one_at_a_time = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match load_source(&self.source) {
            Ok(engine) => {
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

/// Loads and compiles the policy of `source`; the error is the rendered
/// diagnostics (or the I/O error).
fn load_source(source: &PolicySource) -> Result<Engine, String> {
    match source {
        PolicySource::Files(path) => Engine::from_path(path).map_err(|e| e.report(false)),
        PolicySource::Bundle { path, .. } => {
            Err(format!("{}: bundles are not supported yet", path.display()))
        }
    }
}
