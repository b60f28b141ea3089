//! Running `grant` in-process, from this crate's directory (where cargo
//! runs integration tests), with paths written relative to it.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use grant_cli::Exit;

/// What one run of `grant` printed, and how it exited.
pub struct Run {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

pub fn grant(args: &[&str]) -> Run {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let exit = grant_cli::run(
        std::iter::once("grant").chain(args.iter().copied()),
        &mut stdout,
        &mut stderr,
    );
    Run {
        exit,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// The repository root, as these tests name it: `../..`.
pub const ROOT: &str = "../..";

/// `path` (absolute, under the repository) as `../../<path in repository>`,
/// so that outputs do not depend on where the repository is checked out.
pub fn relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(ROOT)
        .canonicalize()
        .unwrap();
    let inside = path.canonicalize().unwrap();
    let inside = inside.strip_prefix(&root).unwrap();
    format!("{ROOT}/{}", inside.display())
}

/// The example policy directories, sorted.
pub fn example_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The hash of the policy at `path`, as the engine computes it.
pub fn policy_hash(path: &str) -> String {
    grant_engine::Engine::from_path(path)
        .unwrap()
        .policy_hash()
        .to_string()
}

/// `text` with the policy hash replaced: snapshots should not change with
/// every edit of an example's comments. Asserts the hash was there.
pub fn redact_hash(text: &str, hash: &str) -> String {
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    assert!(text.contains(hash), "no policy hash in:\n{text}");
    text.replace(hash, "sha256:[policy hash]")
}

/// Runs `command` to its end, or kills it and fails the test after 30
/// seconds: a command that blocks (on a FIFO, say) must not hang the suite.
pub fn bounded(command: &mut std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after 30 s, killed: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// The built `grant` with `args`, bounded in time: exit code, stdout,
/// stderr.
pub fn binary(args: &[&str]) -> (Option<i32>, String, String) {
    let output = bounded(std::process::Command::new(env!("CARGO_BIN_EXE_grant")).args(args));
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("grant-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A SQLite ledger at `db` holding the events of the NDJSON file `events`
/// (sealed anew, one write, which must give back the very same hashes),
/// and the tasks their `task.opened` events open. Returns the stored
/// events.
pub fn ledger_from(events: &str, db: &Path) -> Vec<grant_ledger::store::StoredEvent> {
    let text = std::fs::read_to_string(events).unwrap();
    let events: Vec<grant_ledger::Event> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stored = seal_into(db, events);
    for (line, row) in text.lines().zip(&stored) {
        assert_eq!(line, row.json, "sealing is deterministic");
    }
    stored
}

/// Seals `events` into a SQLite ledger at `db`, in one write, with the
/// tasks their `task.opened` events open.
pub fn seal_into(
    db: &Path,
    events: Vec<grant_ledger::Event>,
) -> Vec<grant_ledger::store::StoredEvent> {
    use grant_ledger::{EventType, Task, TaskState, chain};
    let store = grant_ledger::store::open(&format!("sqlite:{}", db.display())).unwrap();
    let mut stored = Vec::new();
    store
        .write(&mut |tx| {
            let mut depth = std::collections::BTreeMap::new();
            for event in &events {
                let mut event = event.clone();
                let head = tx.head()?;
                let row = chain::seal(&mut event, head.as_ref()).unwrap();
                tx.append(&row)?;
                stored.push(row);
                if event.kind == EventType::TaskOpened {
                    let task_id = event.task_id.clone().unwrap();
                    let d = event
                        .parent_task_id
                        .as_ref()
                        .and_then(|p| depth.get(p))
                        .map_or(0, |d| d + 1);
                    depth.insert(task_id.clone(), d);
                    tx.put_task(&Task {
                        task_id,
                        agent: event.agent.clone().unwrap(),
                        parent_task_id: event.parent_task_id.clone(),
                        depth: d,
                        chain: Vec::new(),
                        opened_at: event.time,
                        deadline: event.deadline,
                        state: TaskState::Open,
                        labels: event.labels.clone().unwrap_or_default(),
                        grants_issued: 0,
                        ended_at: None,
                        end_reason: None,
                    })?;
                }
            }
            Ok(())
        })
        .unwrap();
    stored
}

/// Runs SQL on the SQLite file at `db`, behind the ledger's back.
pub fn tamper(db: &Path, sql: &str) {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection.execute_batch(sql).unwrap();
}
