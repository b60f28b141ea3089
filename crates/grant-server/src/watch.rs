//! Reloading without being asked: the policy source is watched (a
//! `--policy` file or directory, a `--bundle` file and its key file), and
//! reloaded [`DEBOUNCE`] after the last change (an editor or a deploy
//! writes several times in a burst); and, when a staleness limit is set,
//! checked again every [`crate::policy::Policies::refresh_interval`], so a
//! source that stays good keeps the policy fresh and one that went bad is
//! noticed even if no change event came (a watch lost to a directory
//! replaced whole, a network file system that sends none).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::{Instant, Interval};

use crate::config::PolicySource;
use crate::policy::Reload;
use crate::state::AppState;

/// How long after the last change the source is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// What to watch: each directory, recursively or not, and (for a
/// non-recursive one) the names in it that matter; `None`: every entry.
type Targets = BTreeMap<PathBuf, (RecursiveMode, Option<Vec<std::ffi::OsString>>)>;

/// Starts watching `app`'s policy source until `shutdown` resolves. `None`
/// when there is nothing to do: no watch could be set up and no staleness
/// limit asks for periodic checks.
pub(crate) fn spawn(
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = match watch(&targets(app.policies.source()), changed) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!("the policy source is not watched for changes: {error}");
            None
        }
    };
    let refresh = app.policies.refresh_interval();
    if watcher.is_none() && refresh.is_none() {
        return None;
    }
    Some(tokio::spawn(async move {
        // Dropping the watcher stops it: it lives as long as this task.
        let _watcher = watcher;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut ticker = refresh.map(|every| {
            let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        let mut due: Option<Instant> = None;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(()) = changes.recv() => due = Some(Instant::now() + DEBOUNCE),
                () = sleep_until(due) => {
                    due = None;
                    if let Err(error) = app.reload("watcher".to_string()).await {
                        tracing::error!("policy reload: {}", error.message);
                    }
                }
                () = tick(&mut ticker) => refresh_now(&app).await,
            }
        }
    }))
}

/// Checks the source again; logs only what changed (a good source checked
/// every minute is not news, nor is the same failure again).
async fn refresh_now(app: &AppState) {
    let before = app.policies.status().last_error;
    let checking = app.clone();
    let outcome =
        tokio::task::spawn_blocking(move || checking.policies.reload(&checking.ledger, "refresh"))
            .await;
    match outcome {
        Ok(Reload::Unchanged(_)) => {
            if before.is_some() {
                tracing::info!("the policy source is good again");
            }
        }
        Ok(Reload::Failed(error)) if before.as_deref() == Some(error.as_str()) => {
            tracing::debug!("policy source still unusable: {error}");
        }
        Ok(outcome) => app.count_reload(&outcome),
        Err(join) => tracing::error!("checking the policy source failed: {join}"),
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The directories to watch for `source`. A file is watched through its
/// directory: editors and deploys replace files by renaming over them,
/// which a watch on the file itself would not survive.
fn targets(source: &PolicySource) -> Targets {
    let mut targets = Targets::new();
    let mut file = |path: &Path| {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(name) = path.file_name() {
            let entry = targets
                .entry(dir)
                .or_insert((RecursiveMode::NonRecursive, Some(Vec::new())));
            if let Some(names) = &mut entry.1 {
                names.push(name.to_os_string());
            }
        }
    };
    match source {
        PolicySource::Files(path) if path.is_dir() => {
            targets.insert(path.clone(), (RecursiveMode::Recursive, None));
        }
        PolicySource::Files(path) => file(path),
        PolicySource::Bundle { path, key } => {
            file(path);
            if let Some(key) = key {
                file(key);
            }
        }
    }
    targets
}

/// Sets up the watches; each relevant event sends on `changed`.
fn watch(targets: &Targets, changed: UnboundedSender<()>) -> Result<RecommendedWatcher, String> {
    let filters: Vec<(PathBuf, Option<Vec<std::ffi::OsString>>)> = targets
        .iter()
        .map(|(dir, (_, names))| (dir.clone(), names.clone()))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else {
            // An error (a queue overflow) may hide a change: reload.
            let _ = changed.send(());
            return;
        };
        if is_change(&event.kind) && event.paths.iter().any(|path| wanted(&filters, path)) {
            let _ = changed.send(());
        }
    })
    .map_err(|e| e.to_string())?;
    for (dir, (mode, _)) in targets {
        watcher
            .watch(dir, *mode)
            .map_err(|e| format!("`{}`: {e}", dir.display()))?;
    }
    Ok(watcher)
}

/// Whether an event may have changed what a load reads. Reads and
/// metadata (a load itself opens the files, updating access times) are
/// not: reacting to them would reload forever.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

fn wanted(filters: &[(PathBuf, Option<Vec<std::ffi::OsString>>)], path: &Path) -> bool {
    filters.iter().any(|(dir, names)| match names {
        None => true,
        Some(names) => {
            path.parent().is_some_and(|parent| same_dir(parent, dir))
                && path
                    .file_name()
                    .is_some_and(|name| names.iter().any(|n| n == name))
        }
    })
}

/// Event paths are absolute; a configured directory may be relative.
fn same_dir(event_dir: &Path, dir: &Path) -> bool {
    event_dir == dir
        || std::fs::canonicalize(dir).is_ok_and(|dir| {
            std::fs::canonicalize(event_dir).is_ok_and(|event_dir| event_dir == dir)
        })
}
