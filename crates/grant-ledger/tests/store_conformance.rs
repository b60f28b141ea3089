//! The store conformance suite: one set of tests, each run against every
//! backend (memory, SQLite in a temporary directory, PostgreSQL in a
//! schema of its own), so the backends answer alike; then what only a
//! backend has (files, URLs, schema versions, reconnecting).
//!
//! PostgreSQL: the server URL comes from `GRANT_TEST_PG_URL` (`.ci/run`
//! starts a private server and sets it). Each test creates a schema
//! `grant_t_...`, points its store there with `search_path`, and drops it
//! at the end, so tests run in parallel without meeting. Without the
//! variable, the PostgreSQL tests print a note and pass, unless `CI` is
//! set: then they fail.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use grant_ledger::chain;
use grant_ledger::store::faulty::FaultyStore;
use grant_ledger::store::{self, Head, Store, StoreError, StoreErrorKind, StoredEvent, Tx};
use grant_ledger::{Approvals, Event, Grant, GrantState, Task, TaskState, Timestamp};

// ---------------------------------------------------------------------------
// Backends.

/// A place a store lives, as a URL `store::open` takes, removed when this
/// is dropped.
trait Place {
    fn url(&self) -> String;

    fn open(&self) -> Arc<dyn Store> {
        match store::open(&self.url()) {
            Ok(store) => store,
            Err(e) => panic!("cannot open `{}`: {e}", self.url()),
        }
    }
}

struct SqlitePlace {
    dir: tempfile::TempDir,
}

impl SqlitePlace {
    fn new() -> SqlitePlace {
        SqlitePlace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("ledger.db")
    }
}

impl Place for SqlitePlace {
    fn url(&self) -> String {
        format!("sqlite:{}", self.path().display())
    }
}

/// A fresh schema on the test server.
struct PgPlace {
    server: String,
    schema: String,
}

impl PgPlace {
    /// `None` (after a note) when no server is configured outside CI.
    fn new() -> Option<PgPlace> {
        let Ok(server) = std::env::var("GRANT_TEST_PG_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "GRANT_TEST_PG_URL is not set: CI must run the PostgreSQL store tests \
                     (.ci/run starts a server and sets it)"
                );
            }
            eprintln!("note: GRANT_TEST_PG_URL is not set; skipping a PostgreSQL store test");
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "grant_t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let place = PgPlace { server, schema };
        place
            .admin()
            .batch_execute(&format!("CREATE SCHEMA {}", place.schema))
            .unwrap();
        Some(place)
    }

    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.server, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to GRANT_TEST_PG_URL: {e}"))
    }

    /// The URL with `extra` parameters.
    fn url_with(&self, extra: &str) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-csearch_path%3D{}{extra}",
            self.server, self.schema
        )
    }
}

impl Place for PgPlace {
    fn url(&self) -> String {
        self.url_with("")
    }
}

impl Drop for PgPlace {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// Runs each named test, a `fn(&Arc<dyn Store>)`, on every backend.
macro_rules! every_store {
    ($($test:ident),* $(,)?) => {
        mod on_memory {
            $(#[test]
            fn $test() {
                let store: std::sync::Arc<dyn grant_ledger::Store> =
                    std::sync::Arc::new(grant_ledger::store::memory::MemoryStore::new());
                super::$test(&store);
            })*
        }
        mod on_sqlite {
            use super::Place;
            $(#[test]
            fn $test() {
                let place = super::SqlitePlace::new();
                super::$test(&place.open());
            })*
        }
        mod on_postgres {
            use super::Place;
            $(#[test]
            fn $test() {
                let Some(place) = super::PgPlace::new() else { return };
                super::$test(&place.open());
            })*
        }
    };
}

/// Runs each named test, a `fn(&dyn Place)`, on the backends that keep
/// data beyond one store value (SQLite, PostgreSQL).
macro_rules! every_durable_store {
    ($($test:ident),* $(,)?) => {
        mod durable_on_sqlite {
            $(#[test]
            fn $test() {
                super::$test(&super::SqlitePlace::new());
            })*
        }
        mod durable_on_postgres {
            $(#[test]
            fn $test() {
                let Some(place) = super::PgPlace::new() else { return };
                super::$test(&place);
            })*
        }
    };
}

every_store!(
    an_empty_store_has_nothing,
    appends_chain_gapless_from_one,
    events_after_pages_in_seq_order,
    events_of_tasks_come_in_seq_order,
    tasks_are_put_got_and_replaced,
    task_indexes_follow_replacements,
    due_tasks_are_open_and_due_in_deadline_order,
    grants_are_put_got_and_replaced,
    grant_indexes_follow_replacements,
    due_grants_are_live_and_due_in_expiry_order,
    blocked_agents,
    meta_values,
    a_failed_write_keeps_nothing,
    a_write_reads_its_own_changes,
    read_transactions_refuse_writes,
    many_tasks_in_one_query,
    faulty_fails_before_commit,
    faulty_fails_after_commit,
    faulty_down_fails_reads_and_writes,
);

every_durable_store!(
    reopening_keeps_everything,
    two_stores_on_one_place_share_one_chain,
    reads_run_beside_a_write,
    two_processes_append_one_chain,
);

// ---------------------------------------------------------------------------
// Fixtures.

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_secs(1_796_000_000 + seconds)
}

fn task(id: &str, agent: &str, parent: Option<&str>, open: bool, deadline: Option<i64>) -> Task {
    Task {
        task_id: id.to_string(),
        agent: agent.to_string(),
        parent_task_id: parent.map(str::to_string),
        depth: u32::from(parent.is_some()),
        chain: parent
            .map(|_| vec!["root-agent".to_string()])
            .unwrap_or_default(),
        opened_at: at(0),
        deadline: deadline.map(at),
        state: if open {
            TaskState::Open
        } else {
            TaskState::Ended
        },
        labels: BTreeMap::from([("team".to_string(), "ops".to_string())]),
        grants_issued: 0,
        ended_at: (!open).then(|| at(1)),
        end_reason: (!open).then(|| "task ended".to_string()),
    }
}

fn grant(id: &str, task_id: &str, parent: Option<&str>, state: GrantState, expires: i64) -> Grant {
    Grant {
        grant_id: id.to_string(),
        task_id: task_id.to_string(),
        agent: "agent-1".to_string(),
        tool: "db.read".to_string(),
        state,
        issued_at: at(0),
        expires_at: at(expires),
        ttl_seconds: 600,
        uses_left: Some(3),
        approvals: Approvals {
            required: vec!["ops".to_string()],
            granted: Vec::new(),
        },
        parent_grant_id: parent.map(str::to_string),
        renewals: 0,
        degraded: false,
        credentials: Vec::new(),
        decision_id: "dec-1".to_string(),
        policy_hash: "sha256:0".to_string(),
    }
}

/// A minimal event, as the ledger would write it (Event::new is the
/// crate's own).
fn event(actor: &str, n: u64, task_id: Option<&str>) -> Event {
    serde_json::from_value(serde_json::json!({
        "seq": 0,
        "event_id": format!("ev-{actor}-{n}"),
        "time": "2026-11-29T20:00:00.000000Z",
        "type": "task.opened",
        "actor": actor,
        "policy_hash": "sha256:0",
        "task_id": task_id,
        "prev_hash": "",
    }))
    .unwrap()
}

/// Seals an event after the head and appends it.
fn append_next(
    tx: &mut dyn Tx,
    actor: &str,
    n: u64,
    task_id: Option<&str>,
) -> Result<StoredEvent, StoreError> {
    let head = tx.head()?;
    let stored = chain::seal(&mut event(actor, n, task_id), head.as_ref()).unwrap();
    tx.append(&stored)?;
    Ok(stored)
}

/// Runs a write that must succeed, returning what the closure made.
fn write<T>(
    store: &Arc<dyn Store>,
    mut work: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
) -> T {
    let mut out = None;
    store
        .write(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("write on {} failed: {e}", store.describe()));
    out.unwrap()
}

/// Runs a read that must succeed.
fn read<T>(
    store: &Arc<dyn Store>,
    mut work: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
) -> T {
    let mut out = None;
    store
        .read(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("read on {} failed: {e}", store.describe()));
    out.unwrap()
}

fn ids_of_tasks(tasks: Vec<Task>) -> Vec<String> {
    tasks.into_iter().map(|t| t.task_id).collect()
}

fn ids_of_grants(grants: Vec<Grant>) -> Vec<String> {
    grants.into_iter().map(|g| g.grant_id).collect()
}

fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Appends `n` events, the i-th (from 0) in task `tasks[i % len]`.
fn append_events(store: &Arc<dyn Store>, n: u64, tasks: &[Option<&str>]) -> Vec<StoredEvent> {
    write(store, |tx| {
        (0..n)
            .map(|i| {
                let task = tasks[usize::try_from(i).unwrap() % tasks.len()];
                append_next(tx, "tester", i, task)
            })
            .collect::<Result<Vec<_>, _>>()
    })
}

/// Everything a store holds that the tests put there, read in one
/// snapshot: to compare before and after.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: Option<Head>,
    events: Vec<StoredEvent>,
    tasks: Vec<Option<Task>>,
    subtasks: Vec<Task>,
    open_of_agent: Vec<Task>,
    due_tasks: Vec<Task>,
    grants: Vec<Option<Grant>>,
    grants_of_task: Vec<Grant>,
    child_grants: Vec<Grant>,
    due_grants: Vec<Grant>,
    blocked: Vec<bool>,
    meta: Vec<Option<String>>,
}

fn snapshot(store: &Arc<dyn Store>) -> Snapshot {
    read(store, |tx| {
        Ok(Snapshot {
            head: tx.head()?,
            events: tx.events_after(0, usize::MAX)?,
            tasks: ["t-root", "t-a", "t-b", "t-new"]
                .iter()
                .map(|id| tx.task(id))
                .collect::<Result<_, _>>()?,
            subtasks: tx.subtasks("t-root")?,
            open_of_agent: tx.open_tasks_of_agent("agent-1")?,
            due_tasks: tx.due_tasks(at(1000), 100)?,
            grants: ["g-root", "g-a", "g-new"]
                .iter()
                .map(|id| tx.grant(id))
                .collect::<Result<_, _>>()?,
            grants_of_task: tx.grants_of_task("t-a")?,
            child_grants: tx.child_grants("g-root")?,
            due_grants: tx.due_grants(at(1000), 100)?,
            blocked: ["mallory", "eve"]
                .iter()
                .map(|a| tx.is_blocked(a))
                .collect::<Result<_, _>>()?,
            meta: ["policy", "checkpoint"]
                .iter()
                .map(|k| tx.meta(k))
                .collect::<Result<_, _>>()?,
        })
    })
}

/// A small ledger's worth of everything.
fn populate(store: &Arc<dyn Store>) {
    write(store, |tx| {
        append_next(tx, "tester", 0, Some("t-root"))?;
        append_next(tx, "tester", 1, Some("t-a"))?;
        tx.put_task(&task("t-root", "root-agent", None, true, Some(100)))?;
        tx.put_task(&task("t-a", "agent-1", Some("t-root"), true, Some(50)))?;
        tx.put_task(&task("t-b", "agent-1", Some("t-root"), true, None))?;
        tx.put_grant(&grant("g-root", "t-root", None, GrantState::Active, 100))?;
        tx.put_grant(&grant(
            "g-a",
            "t-a",
            Some("g-root"),
            GrantState::Pending,
            20,
        ))?;
        tx.set_blocked("mallory", true)?;
        tx.set_meta("policy", "sha256:1")?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// The suite.

fn an_empty_store_has_nothing(store: &Arc<dyn Store>) {
    read(store, |tx| {
        assert_eq!(tx.head()?, None);
        assert_eq!(tx.events_after(0, 10)?, Vec::new());
        assert_eq!(tx.events_of_tasks(&["t".to_string()])?, Vec::new());
        assert_eq!(tx.task("t")?, None);
        assert_eq!(tx.grant("g")?, None);
        assert_eq!(tx.subtasks("t")?, Vec::new());
        assert_eq!(tx.open_tasks_of_agent("a")?, Vec::new());
        assert_eq!(tx.due_tasks(at(1_000_000), 10)?, Vec::new());
        assert_eq!(tx.grants_of_task("t")?, Vec::new());
        assert_eq!(tx.child_grants("g")?, Vec::new());
        assert_eq!(tx.due_grants(at(1_000_000), 10)?, Vec::new());
        assert!(!tx.is_blocked("a")?);
        assert_eq!(tx.meta("k")?, None);
        Ok(())
    });
}

fn appends_chain_gapless_from_one(store: &Arc<dyn Store>) {
    let first = write(store, |tx| {
        // The first event must be 1.
        let mut stray = chain::seal(
            &mut event("tester", 0, None),
            Some(&Head {
                seq: 4,
                hash: chain::GENESIS.to_string(),
            }),
        )
        .unwrap();
        assert!(
            tx.append(&stray).is_err(),
            "seq 5 appended to an empty chain"
        );
        stray.seq = 0;
        assert!(tx.append(&stray).is_err(), "seq 0 appended");
        append_next(tx, "tester", 0, None)
    });
    assert_eq!(first.seq, 1);
    let events = append_events(store, 2, &[Some("t-1")]);
    assert_eq!(seqs(&events), [2, 3]);
    let head = read(store, |tx| tx.head());
    assert_eq!(
        head,
        Some(Head {
            seq: 3,
            hash: events[1].hash.clone()
        })
    );
    // A gap, a repeat, or a step back is refused, and the write that tried
    // keeps nothing.
    for seq in [5, 3, 1] {
        let mut stored = events[1].clone();
        stored.seq = seq;
        let result = store.write(&mut |tx| tx.append(&stored));
        let error = result.expect_err("a wrong seq was appended");
        assert_eq!(error.kind, StoreErrorKind::Corrupt, "{error}");
    }
    assert_eq!(read(store, |tx| tx.head()), head);
    let all = read(store, |tx| tx.events_after(0, 100));
    assert_eq!(all[0], first);
    assert_eq!(all[1..], events[..]);
}

fn events_after_pages_in_seq_order(store: &Arc<dyn Store>) {
    let events = append_events(store, 10, &[Some("t-1"), None]);
    read(store, |tx| {
        assert_eq!(tx.events_after(0, 3)?, events[0..3]);
        assert_eq!(tx.events_after(3, 3)?, events[3..6]);
        assert_eq!(tx.events_after(9, 5)?, events[9..]);
        assert_eq!(tx.events_after(10, 5)?, Vec::new());
        assert_eq!(tx.events_after(0, 0)?, Vec::new());
        assert_eq!(tx.events_after(u64::MAX, 5)?, Vec::new());
        assert_eq!(tx.events_after(0, usize::MAX)?, events);
        Ok(())
    });
    // The stored form comes back exactly, keys and JSON text.
    assert_eq!(events[1].task_id, None);
    assert_eq!(events[0].task_id.as_deref(), Some("t-1"));
    assert_eq!(events[0].kind, "task.opened");
}

fn events_of_tasks_come_in_seq_order(store: &Arc<dyn Store>) {
    let tasks = [
        Some("t-a"),
        Some("t-b"),
        Some("t-a"),
        None,
        Some("t-c"),
        Some("t-b"),
    ];
    let events = append_events(store, 6, &tasks);
    let of = |ids: &[&str]| -> Vec<u64> {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        seqs(&read(store, |tx| tx.events_of_tasks(&ids)))
    };
    assert_eq!(of(&["t-b", "t-a"]), [1, 2, 3, 6]);
    assert_eq!(of(&["t-a", "t-a"]), [1, 3]);
    assert_eq!(of(&["t-c"]), [5]);
    assert_eq!(of(&["t-none"]), Vec::<u64>::new());
    assert_eq!(of(&[]), Vec::<u64>::new());
    let full = read(store, |tx| tx.events_of_tasks(&["t-c".to_string()]));
    assert_eq!(full, [events[4].clone()]);
}

fn tasks_are_put_got_and_replaced(store: &Arc<dyn Store>) {
    let open = task("t-1", "agent-1", Some("t-0"), true, Some(60));
    write(store, |tx| tx.put_task(&open));
    assert_eq!(read(store, |tx| tx.task("t-1")), Some(open.clone()));
    let mut ended = open.clone();
    ended.state = TaskState::Ended;
    ended.ended_at = Some(at(5));
    ended.end_reason = Some("revoked".to_string());
    ended.grants_issued = 7;
    ended
        .labels
        .insert("ü".to_string(), "\"quoted\" \u{1F600}".to_string());
    write(store, |tx| tx.put_task(&ended));
    assert_eq!(read(store, |tx| tx.task("t-1")), Some(ended.clone()));
    assert_eq!(read(store, |tx| tx.task("t-2")), None);
}

fn task_indexes_follow_replacements(store: &Arc<dyn Store>) {
    // Ids in byte order: upper case sorts before lower case.
    write(store, |tx| {
        tx.put_task(&task("root", "boss", None, true, None))?;
        tx.put_task(&task("other", "boss", None, true, None))?;
        tx.put_task(&task("t-b", "agent-1", Some("root"), true, None))?;
        tx.put_task(&task("t-B", "agent-1", Some("root"), true, None))?;
        tx.put_task(&task("t-a", "agent-2", Some("root"), true, None))?;
        tx.put_task(&task("t-c", "agent-1", Some("other"), false, None))?;
        Ok(())
    });
    read(store, |tx| {
        assert_eq!(ids_of_tasks(tx.subtasks("root")?), ["t-B", "t-a", "t-b"]);
        assert_eq!(ids_of_tasks(tx.subtasks("other")?), ["t-c"]);
        assert_eq!(ids_of_tasks(tx.subtasks("t-a")?), Vec::<String>::new());
        // Ended tasks are not open.
        assert_eq!(
            ids_of_tasks(tx.open_tasks_of_agent("agent-1")?),
            ["t-B", "t-b"]
        );
        assert_eq!(ids_of_tasks(tx.open_tasks_of_agent("agent-2")?), ["t-a"]);
        assert_eq!(
            ids_of_tasks(tx.open_tasks_of_agent("boss")?),
            ["other", "root"]
        );
        Ok(())
    });
    // Ending a task, moving one to another agent and parent.
    write(store, |tx| {
        tx.put_task(&task("t-b", "agent-1", Some("root"), false, None))?;
        tx.put_task(&task("t-a", "agent-1", Some("other"), true, None))?;
        Ok(())
    });
    read(store, |tx| {
        assert_eq!(ids_of_tasks(tx.subtasks("root")?), ["t-B", "t-b"]);
        assert_eq!(ids_of_tasks(tx.subtasks("other")?), ["t-a", "t-c"]);
        assert_eq!(
            ids_of_tasks(tx.open_tasks_of_agent("agent-1")?),
            ["t-B", "t-a"]
        );
        assert_eq!(
            ids_of_tasks(tx.open_tasks_of_agent("agent-2")?),
            Vec::<String>::new()
        );
        Ok(())
    });
}

fn due_tasks_are_open_and_due_in_deadline_order(store: &Arc<dyn Store>) {
    write(store, |tx| {
        tx.put_task(&task("t-late", "a", None, true, Some(30)))?;
        tx.put_task(&task("t-b", "a", None, true, Some(10)))?;
        tx.put_task(&task("t-a", "a", None, true, Some(10)))?;
        tx.put_task(&task("t-first", "a", None, true, Some(5)))?;
        tx.put_task(&task("t-ended", "a", None, false, Some(1)))?;
        tx.put_task(&task("t-never", "a", None, true, None))?;
        Ok(())
    });
    read(store, |tx| {
        assert_eq!(ids_of_tasks(tx.due_tasks(at(4), 10)?), Vec::<String>::new());
        // At the deadline counts as due.
        assert_eq!(ids_of_tasks(tx.due_tasks(at(5), 10)?), ["t-first"]);
        assert_eq!(
            ids_of_tasks(tx.due_tasks(at(10), 10)?),
            ["t-first", "t-a", "t-b"]
        );
        assert_eq!(ids_of_tasks(tx.due_tasks(at(100), 2)?), ["t-first", "t-a"]);
        assert_eq!(
            ids_of_tasks(tx.due_tasks(at(100), 10)?),
            ["t-first", "t-a", "t-b", "t-late"]
        );
        assert_eq!(
            ids_of_tasks(tx.due_tasks(at(100), 0)?),
            Vec::<String>::new()
        );
        Ok(())
    });
    // Ending a task takes it off; a new deadline moves it.
    write(store, |tx| {
        tx.put_task(&task("t-first", "a", None, false, Some(5)))?;
        tx.put_task(&task("t-late", "a", None, true, Some(7)))?;
        Ok(())
    });
    assert_eq!(
        ids_of_tasks(read(store, |tx| tx.due_tasks(at(100), 10))),
        ["t-late", "t-a", "t-b"]
    );
}

fn grants_are_put_got_and_replaced(store: &Arc<dyn Store>) {
    let pending = grant("g-1", "t-1", Some("g-0"), GrantState::Pending, 60);
    write(store, |tx| tx.put_grant(&pending));
    assert_eq!(read(store, |tx| tx.grant("g-1")), Some(pending.clone()));
    let mut active = pending.clone();
    active.state = GrantState::Active;
    active.uses_left = None;
    active.degraded = true;
    active.renewals = 2;
    active.credentials.push(grant_ledger::Credential {
        issuer: "sts".to_string(),
        credential_ref: "arn:aws:sts::1:assumed-role/x".to_string(),
        expires_at: Some(at(30)),
    });
    active.approvals.granted.push(grant_ledger::Approval {
        group: "ops".to_string(),
        approver: "alice".to_string(),
        at: at(2),
    });
    write(store, |tx| tx.put_grant(&active));
    assert_eq!(read(store, |tx| tx.grant("g-1")), Some(active.clone()));
    assert_eq!(read(store, |tx| tx.grant("g-2")), None);
}

fn grant_indexes_follow_replacements(store: &Arc<dyn Store>) {
    write(store, |tx| {
        tx.put_grant(&grant("g-root", "t-root", None, GrantState::Active, 100))?;
        tx.put_grant(&grant(
            "g-b",
            "t-1",
            Some("g-root"),
            GrantState::Active,
            100,
        ))?;
        tx.put_grant(&grant(
            "g-B",
            "t-1",
            Some("g-root"),
            GrantState::Revoked,
            100,
        ))?;
        tx.put_grant(&grant(
            "g-a",
            "t-2",
            Some("g-root"),
            GrantState::Pending,
            100,
        ))?;
        tx.put_grant(&grant("g-x", "t-1", Some("g-b"), GrantState::Expired, 100))?;
        Ok(())
    });
    read(store, |tx| {
        // Every grant, whatever its state.
        assert_eq!(
            ids_of_grants(tx.grants_of_task("t-1")?),
            ["g-B", "g-b", "g-x"]
        );
        assert_eq!(ids_of_grants(tx.grants_of_task("t-2")?), ["g-a"]);
        assert_eq!(
            ids_of_grants(tx.child_grants("g-root")?),
            ["g-B", "g-a", "g-b"]
        );
        assert_eq!(ids_of_grants(tx.child_grants("g-b")?), ["g-x"]);
        assert_eq!(ids_of_grants(tx.child_grants("g-x")?), Vec::<String>::new());
        Ok(())
    });
    write(store, |tx| {
        tx.put_grant(&grant("g-x", "t-2", Some("g-a"), GrantState::Active, 100))?;
        Ok(())
    });
    read(store, |tx| {
        assert_eq!(ids_of_grants(tx.grants_of_task("t-1")?), ["g-B", "g-b"]);
        assert_eq!(ids_of_grants(tx.grants_of_task("t-2")?), ["g-a", "g-x"]);
        assert_eq!(ids_of_grants(tx.child_grants("g-b")?), Vec::<String>::new());
        assert_eq!(ids_of_grants(tx.child_grants("g-a")?), ["g-x"]);
        Ok(())
    });
}

fn due_grants_are_live_and_due_in_expiry_order(store: &Arc<dyn Store>) {
    write(store, |tx| {
        tx.put_grant(&grant("g-late", "t", None, GrantState::Active, 30))?;
        tx.put_grant(&grant("g-b", "t", None, GrantState::Pending, 10))?;
        tx.put_grant(&grant("g-a", "t", None, GrantState::Active, 10))?;
        tx.put_grant(&grant("g-first", "t", None, GrantState::Active, 5))?;
        for (id, state) in [
            ("g-revoked", GrantState::Revoked),
            ("g-expired", GrantState::Expired),
            ("g-exhausted", GrantState::Exhausted),
        ] {
            tx.put_grant(&grant(id, "t", None, state, 1))?;
        }
        Ok(())
    });
    read(store, |tx| {
        assert_eq!(
            ids_of_grants(tx.due_grants(at(4), 10)?),
            Vec::<String>::new()
        );
        assert_eq!(ids_of_grants(tx.due_grants(at(5), 10)?), ["g-first"]);
        assert_eq!(
            ids_of_grants(tx.due_grants(at(10), 10)?),
            ["g-first", "g-a", "g-b"]
        );
        assert_eq!(
            ids_of_grants(tx.due_grants(at(100), 3)?),
            ["g-first", "g-a", "g-b"]
        );
        assert_eq!(
            ids_of_grants(tx.due_grants(at(100), 10)?),
            ["g-first", "g-a", "g-b", "g-late"]
        );
        Ok(())
    });
    write(store, |tx| {
        tx.put_grant(&grant("g-first", "t", None, GrantState::Expired, 5))?;
        tx.put_grant(&grant("g-late", "t", None, GrantState::Active, 7))?;
        tx.put_grant(&grant("g-revoked", "t", None, GrantState::Active, 200))?;
        Ok(())
    });
    assert_eq!(
        ids_of_grants(read(store, |tx| tx.due_grants(at(100), 10))),
        ["g-late", "g-a", "g-b"]
    );
}

fn blocked_agents(store: &Arc<dyn Store>) {
    write(store, |tx| {
        tx.set_blocked("mallory", true)?;
        tx.set_blocked("mallory", true)?;
        tx.set_blocked("eve", true)?;
        tx.set_blocked("nobody", false)?;
        Ok(())
    });
    assert_eq!(
        read(store, |tx| Ok((
            tx.is_blocked("mallory")?,
            tx.is_blocked("eve")?,
            tx.is_blocked("bob")?
        ))),
        (true, true, false)
    );
    write(store, |tx| tx.set_blocked("mallory", false));
    assert_eq!(
        read(store, |tx| Ok((
            tx.is_blocked("mallory")?,
            tx.is_blocked("eve")?
        ))),
        (false, true)
    );
}

fn meta_values(store: &Arc<dyn Store>) {
    write(store, |tx| {
        tx.set_meta("policy", "sha256:1")?;
        tx.set_meta("checkpoint", "{\"seq\":1}")?;
        Ok(())
    });
    write(store, |tx| tx.set_meta("policy", "sha256:2"));
    read(store, |tx| {
        assert_eq!(tx.meta("policy")?.as_deref(), Some("sha256:2"));
        assert_eq!(tx.meta("checkpoint")?.as_deref(), Some("{\"seq\":1}"));
        assert_eq!(tx.meta("other")?, None);
        Ok(())
    });
}

fn a_failed_write_keeps_nothing(store: &Arc<dyn Store>) {
    populate(store);
    let before = snapshot(store);
    let result = store.write(&mut |tx| {
        append_next(tx, "tester", 9, Some("t-new"))?;
        append_next(tx, "tester", 10, Some("t-a"))?;
        tx.put_task(&task("t-new", "agent-1", Some("t-root"), true, Some(1)))?;
        tx.put_task(&task("t-a", "agent-2", None, false, Some(1)))?;
        tx.put_grant(&grant(
            "g-new",
            "t-a",
            Some("g-root"),
            GrantState::Active,
            1,
        ))?;
        tx.put_grant(&grant("g-a", "t-new", None, GrantState::Revoked, 1))?;
        tx.set_blocked("mallory", false)?;
        tx.set_blocked("eve", true)?;
        tx.set_meta("policy", "sha256:2")?;
        tx.set_meta("checkpoint", "x")?;
        // The closure sees its own changes before it fails.
        assert_eq!(tx.head()?.map(|h| h.seq), Some(4));
        Err(StoreError::unavailable("the closure gave up"))
    });
    let error = result.expect_err("the closure's error is the write's");
    assert_eq!(error.message, "the closure gave up");
    assert_eq!(snapshot(store), before);
    // The chain goes on where it was.
    assert_eq!(append_events(store, 1, &[None])[0].seq, 3);
}

fn a_write_reads_its_own_changes(store: &Arc<dyn Store>) {
    populate(store);
    write(store, |tx| {
        let event = append_next(tx, "tester", 5, Some("t-new"))?;
        assert_eq!(
            tx.head()?,
            Some(Head {
                seq: 3,
                hash: event.hash.clone()
            })
        );
        assert_eq!(seqs(&tx.events_after(2, 10)?), [3]);
        assert_eq!(seqs(&tx.events_of_tasks(&["t-new".to_string()])?), [3]);
        tx.put_task(&task("t-new", "agent-1", Some("t-root"), true, Some(1)))?;
        assert_eq!(
            tx.task("t-new")?.map(|t| t.agent),
            Some("agent-1".to_string())
        );
        assert_eq!(
            ids_of_tasks(tx.subtasks("t-root")?),
            ["t-a", "t-b", "t-new"]
        );
        assert_eq!(ids_of_tasks(tx.due_tasks(at(1), 10)?), ["t-new"]);
        tx.put_grant(&grant(
            "g-new",
            "t-a",
            Some("g-root"),
            GrantState::Active,
            1,
        ))?;
        assert_eq!(ids_of_grants(tx.child_grants("g-root")?), ["g-a", "g-new"]);
        assert_eq!(ids_of_grants(tx.due_grants(at(1), 10)?), ["g-new"]);
        tx.set_blocked("eve", true)?;
        assert!(tx.is_blocked("eve")?);
        tx.set_meta("policy", "sha256:9")?;
        assert_eq!(tx.meta("policy")?.as_deref(), Some("sha256:9"));
        Ok(())
    });
}

fn read_transactions_refuse_writes(store: &Arc<dyn Store>) {
    populate(store);
    let before = snapshot(store);
    let stored = chain::seal(&mut event("tester", 0, None), before.head.as_ref()).unwrap();
    read(store, |tx| {
        assert!(tx.append(&stored).is_err(), "a read appended");
        assert!(tx.put_task(&task("t-new", "a", None, true, None)).is_err());
        assert!(
            tx.put_grant(&grant("g-new", "t", None, GrantState::Active, 1))
                .is_err()
        );
        assert!(tx.set_blocked("eve", true).is_err());
        assert!(tx.set_meta("policy", "x").is_err());
        Ok(())
    });
    assert_eq!(snapshot(store), before);
}

fn many_tasks_in_one_query(store: &Arc<dyn Store>) {
    let names: Vec<String> = (0..400).map(|i| format!("t-{i:04}")).collect();
    let tasks: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    append_events(store, 400, &tasks);
    let asked: Vec<String> = names.iter().rev().step_by(2).cloned().collect();
    let events = read(store, |tx| tx.events_of_tasks(&asked));
    assert_eq!(
        seqs(&events),
        (1..=400).filter(|n| n % 2 == 0).collect::<Vec<u64>>()
    );
}

fn faulty_fails_before_commit(store: &Arc<dyn Store>) {
    let faulty = Arc::new(FaultyStore::new(Arc::clone(store)));
    let faults = faulty.faults();
    let wrapped: Arc<dyn Store> = faulty.clone();
    populate(&wrapped);
    let before = snapshot(&wrapped);
    faults.fail_before_commit(2);
    for _ in 0..2 {
        let mut ran = false;
        let error = wrapped
            .write(&mut |tx| {
                ran = true;
                append_next(tx, "tester", 7, None)?;
                tx.set_meta("policy", "lost")?;
                tx.put_task(&task("t-new", "a", None, true, None))
            })
            .expect_err("an injected fault before commit");
        assert!(ran, "the closure runs before the fault");
        assert_eq!(error.kind, StoreErrorKind::Unavailable);
        assert!(error.message.contains("before commit"), "{error}");
        assert_eq!(snapshot(store), before);
    }
    // The faults are used up.
    assert_eq!(append_events(&wrapped, 1, &[None])[0].seq, 3);
    // A closure's own error is the write's, with or without a fault.
    faults.fail_before_commit(1);
    let error = wrapped
        .write(&mut |_| Err(StoreError::corrupt("own")))
        .expect_err("the closure failed");
    assert_eq!(error.message, "own");
}

fn faulty_fails_after_commit(store: &Arc<dyn Store>) {
    let faulty = Arc::new(FaultyStore::new(Arc::clone(store)));
    let faults = faulty.faults();
    let wrapped: Arc<dyn Store> = faulty.clone();
    faults.fail_after_commit(1);
    let error = wrapped
        .write(&mut |tx| {
            append_next(tx, "tester", 0, None)?;
            tx.set_meta("policy", "kept")
        })
        .expect_err("an injected fault after commit");
    assert_eq!(error.kind, StoreErrorKind::Unavailable);
    assert!(error.message.contains("committed"), "{error}");
    // The write is durable though its answer was lost.
    read(store, |tx| {
        assert_eq!(tx.head()?.map(|h| h.seq), Some(1));
        assert_eq!(tx.meta("policy")?.as_deref(), Some("kept"));
        Ok(())
    });
    write(&wrapped, |tx| tx.set_meta("policy", "next"));
    assert_eq!(read(store, |tx| tx.meta("policy")).as_deref(), Some("next"));
    assert_eq!(wrapped.describe(), store.describe());
}

fn faulty_down_fails_reads_and_writes(store: &Arc<dyn Store>) {
    let faulty = Arc::new(FaultyStore::new(Arc::clone(store)));
    let faults = faulty.faults();
    let wrapped: Arc<dyn Store> = faulty.clone();
    populate(&wrapped);
    let before = snapshot(store);
    faults.set_down(true);
    let mut ran = false;
    let write_error = wrapped
        .write(&mut |tx| {
            ran = true;
            tx.set_meta("policy", "x")
        })
        .expect_err("a write while down");
    let read_error = wrapped
        .read(&mut |_| {
            ran = true;
            Ok(())
        })
        .expect_err("a read while down");
    assert!(!ran, "no closure runs while the store is down");
    for error in [write_error, read_error] {
        assert_eq!(error.kind, StoreErrorKind::Unavailable);
        assert!(error.message.contains("down"), "{error}");
    }
    assert_eq!(snapshot(store), before);
    faults.set_down(false);
    assert_eq!(snapshot(&wrapped), before);
    assert_eq!(append_events(&wrapped, 1, &[None])[0].seq, 3);
}

// ---------------------------------------------------------------------------
// Durable stores: the same place opened again, by another store value or
// another process.

fn reopening_keeps_everything(place: &dyn Place) {
    let store = place.open();
    populate(&store);
    let before = snapshot(&store);
    drop(store);
    let store = place.open();
    assert_eq!(snapshot(&store), before);
    assert_eq!(append_events(&store, 1, &[None])[0].seq, 3);
    drop(store);
    // Opening a current store migrates nothing and loses nothing.
    let store = place.open();
    assert_eq!(read(&store, |tx| tx.head()).map(|h| h.seq), Some(3));
}

fn two_stores_on_one_place_share_one_chain(place: &dyn Place) {
    // Two replicas of a service on one database.
    let one = place.open();
    let two = place.open();
    append_events(&one, 2, &[None]);
    write(&one, |tx| tx.set_blocked("mallory", true));
    // The other sees it at its next read or write.
    assert!(read(&two, |tx| tx.is_blocked("mallory")));
    assert_eq!(append_events(&two, 1, &[None])[0].seq, 3);
    assert_eq!(append_events(&one, 1, &[None])[0].seq, 4);
    // A write that read the head, then lost the race, cannot fork the chain.
    let stale = chain::seal(
        &mut event("tester", 9, None),
        Some(&read(&two, |tx| tx.head()).unwrap()),
    )
    .unwrap();
    append_events(&one, 1, &[None]);
    let error = two
        .write(&mut |tx| tx.append(&stale))
        .expect_err("a forked chain");
    assert_eq!(error.kind, StoreErrorKind::Corrupt);
    assert_chain(&two, 5, &[("tester", 5)]);
}

fn reads_run_beside_a_write(place: &dyn Place) {
    let store = place.open();
    append_events(&store, 1, &[None]);
    write(&store, |tx| {
        append_next(tx, "tester", 1, None)?;
        tx.set_meta("policy", "uncommitted")?;
        // A read meanwhile neither waits for this write nor sees it.
        let seen = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    read(&store, |tx| {
                        Ok((tx.head()?.map(|h| h.seq), tx.meta("policy")?))
                    })
                })
                .join()
                .unwrap()
        });
        assert_eq!(seen, (Some(1), None));
        Ok(())
    });
    assert_eq!(read(&store, |tx| tx.head()).map(|h| h.seq), Some(2));
}

/// Events each child process appends.
const CHILD_EVENTS: u64 = 200;

fn two_processes_append_one_chain(place: &dyn Place) {
    // Created before the children start, so they do not race to create it.
    drop(place.open());
    let started = Instant::now();
    let children: Vec<_> = ["child-1", "child-2"]
        .iter()
        .map(|name| {
            let child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_appends",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("GRANT_CHILD_STORE", place.url())
                .env("GRANT_CHILD_NAME", name)
                // The child's own test report would read as this suite's.
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    for (name, mut child) in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "{name} failed: {status}");
    }
    let store = place.open();
    eprintln!(
        "{}: two processes appended {} events each in {:?}",
        store.describe(),
        CHILD_EVENTS,
        started.elapsed()
    );
    let actors = assert_chain(
        &store,
        2 * CHILD_EVENTS,
        &[("child-1", CHILD_EVENTS), ("child-2", CHILD_EVENTS)],
    );
    let switches = actors.windows(2).filter(|w| w[0] != w[1]).count();
    eprintln!("the children's appends interleaved {switches} times");
}

/// Not a test of its own: the child process of
/// `two_processes_append_one_chain`, which sets `GRANT_CHILD_STORE`.
#[test]
fn child_appends() {
    let (Ok(url), Ok(name)) = (
        std::env::var("GRANT_CHILD_STORE"),
        std::env::var("GRANT_CHILD_NAME"),
    ) else {
        return;
    };
    let store = store::open(&url).unwrap();
    for n in 0..CHILD_EVENTS {
        // One write per event, reading the head then appending after it.
        write(&store, |tx| append_next(tx, &name, n, None));
        // A pause, as a service has between requests, lets the other process
        // in: without it, SQLite's busy handler (which sleeps) rarely wins
        // the lock, and the children would take turns in long runs.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Checks the whole chain: `len` events, seq 1..=len, each `prev_hash` the
/// previous `hash`, each hash right, and so many events of each actor;
/// returns the actors in chain order.
fn assert_chain(store: &Arc<dyn Store>, len: u64, per_actor: &[(&str, u64)]) -> Vec<String> {
    let events = read(store, |tx| tx.events_after(0, usize::MAX));
    assert_eq!(seqs(&events), (1..=len).collect::<Vec<_>>());
    let mut prev = chain::GENESIS.to_string();
    let mut actors = Vec::new();
    for stored in &events {
        let value: serde_json::Value = serde_json::from_str(&stored.json).unwrap();
        assert_eq!(value["seq"], stored.seq);
        assert_eq!(value["prev_hash"], prev.as_str(), "seq {}", stored.seq);
        assert_eq!(value["hash"], stored.hash.as_str());
        assert_eq!(chain::event_hash(&value), stored.hash, "seq {}", stored.seq);
        prev = stored.hash.clone();
        actors.push(value["actor"].as_str().unwrap().to_string());
    }
    for (actor, count) in per_actor {
        let n = actors.iter().filter(|a| a == actor).count();
        assert_eq!(n as u64, *count, "events of {actor}");
    }
    actors
}

// ---------------------------------------------------------------------------
// store::open and what only one backend has.

#[test]
fn open_names_the_forms_it_takes() {
    for url in [
        "",
        "mysql://u:hunter2@db/x",
        "sqlite:",
        "sqlite://",
        "postgres:/x",
        "file:/x",
    ] {
        let error = store::open(url).expect_err(url);
        assert_eq!(error.kind, StoreErrorKind::BadUrl, "{url}: {error}");
        assert!(error.message.contains("sqlite:PATH"), "{error}");
        assert!(error.message.contains("postgres://"), "{error}");
        assert!(!error.message.contains("hunter2"), "{error}");
    }
    assert_eq!(store::open("memory").unwrap().describe(), "memory");
}

#[test]
fn sqlite_urls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let store = store::open(&format!("sqlite:{}", path.display())).unwrap();
    assert_eq!(store.describe(), format!("sqlite:{}", path.display()));
    // sqlite:///abs/path is the same file.
    let again = store::open(&format!("sqlite://{}", path.display())).unwrap();
    append_events(&store, 1, &[None]);
    assert_eq!(read(&again, |tx| tx.head()).map(|h| h.seq), Some(1));
    // A directory that does not exist.
    let error = store::open(&format!("sqlite:{}/no/such/dir/x.db", dir.path().display()))
        .expect_err("a missing directory");
    assert_eq!(error.kind, StoreErrorKind::Unavailable);
    assert!(error.message.contains("no/such/dir/x.db"), "{error}");
}

#[cfg(unix)]
#[test]
fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let place = SqlitePlace::new();
    let store = place.open();
    append_events(&store, 3, &[None]);
    let mode =
        |path: std::path::PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(place.path()), 0o600);
    let wal = place.dir.path().join("ledger.db-wal");
    assert_eq!(mode(wal), 0o600, "the write-ahead log");
    // An empty file someone else made becomes a private ledger.
    let other = place.dir.path().join("empty.db");
    std::fs::write(&other, b"").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    store::open(&format!("sqlite:{}", other.display())).unwrap();
    assert_eq!(mode(other), 0o600);
}

#[test]
fn sqlite_files_say_what_they_are() {
    let place = SqlitePlace::new();
    drop(place.open());
    let conn = rusqlite::Connection::open(place.path()).unwrap();
    let pragma = |name: &str| -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| format!("{v:?}"))
        .unwrap()
    };
    assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
    assert_eq!(
        pragma("application_id"),
        format!("Integer({})", grant_ledger::store::sqlite::APPLICATION_ID)
    );
    assert_eq!(
        pragma("user_version"),
        format!("Integer({})", grant_ledger::store::sqlite::SCHEMA_VERSION)
    );
}

/// Opening `path` fails with NotALedger, a message containing each of
/// `words`, and leaves the file's bytes as they were.
fn assert_refused(path: &std::path::Path, words: &[&str]) {
    let before = std::fs::read(path).unwrap();
    let error = store::open(&format!("sqlite:{}", path.display())).expect_err("opened");
    assert_eq!(error.kind, StoreErrorKind::NotALedger, "{error}");
    for word in words {
        assert!(error.message.contains(word), "`{word}` not in: {error}");
    }
    assert!(
        error.message.contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(std::fs::read(path).unwrap(), before, "the file changed");
}

#[test]
fn sqlite_refuses_a_file_that_is_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").unwrap();
    assert_refused(&text, &["not a SQLite database"]);
    let long = dir.path().join("data.bin");
    std::fs::write(
        &long,
        (0..4096u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    assert_refused(&long, &["not a SQLite database"]);
}

#[test]
fn sqlite_refuses_another_applications_database() {
    let dir = tempfile::tempdir().unwrap();
    let tables = dir.path().join("tables.db");
    rusqlite::Connection::open(&tables)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
        .unwrap();
    assert_refused(&tables, &["another application"]);
    let marked = dir.path().join("marked.db");
    rusqlite::Connection::open(&marked)
        .unwrap()
        .execute_batch("PRAGMA application_id = 1234; CREATE TABLE events (x);")
        .unwrap();
    assert_refused(&marked, &["another application", "0x4d2"]);
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let place = SqlitePlace::new();
    let store = place.open();
    populate(&store);
    drop(store);
    rusqlite::Connection::open(place.path())
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let known = grant_ledger::store::sqlite::SCHEMA_VERSION.to_string();
    assert_refused(
        &place.path(),
        &["schema version 99", &format!("version {known}")],
    );
}

#[test]
fn sqlite_migrates_an_empty_store_once_for_two_openers() {
    // Two stores opening one new file at once both end up on one ledger.
    let place = SqlitePlace::new();
    let stores: Vec<Arc<dyn Store>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2).map(|_| scope.spawn(|| place.open())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    append_events(&stores[0], 1, &[None]);
    assert_eq!(append_events(&stores[1], 1, &[None])[0].seq, 2);
}

#[test]
fn postgres_describe_hides_the_password() {
    let Some(place) = PgPlace::new() else { return };
    // The test server trusts local connections, so any password does.
    let url = place
        .url()
        .replacen("://postgres@", "://postgres:hunter2@", 1);
    assert!(
        url.contains("hunter2"),
        "the URL names user postgres: {url}"
    );
    let store = store::open(&url).unwrap();
    assert!(
        !store.describe().contains("hunter2"),
        "{}",
        store.describe()
    );
    assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
    assert!(
        store.describe().contains("postgres:***@"),
        "{}",
        store.describe()
    );
}

#[test]
fn postgres_unreachable_is_unavailable() {
    let error = store::open("postgres://postgres:hunter2@%2Fnonexistent%2Fgrant-test/ledger")
        .expect_err("no server there");
    assert_eq!(error.kind, StoreErrorKind::Unavailable, "{error}");
    assert!(
        error.message.contains("postgres://postgres:***@"),
        "{error}"
    );
    assert!(!error.message.contains("hunter2"), "{error}");
    assert!(error.message.contains("No such file"), "{error}");
}

#[test]
fn postgres_reconnects_after_losing_its_connection() {
    let Some(place) = PgPlace::new() else { return };
    let name = place.schema.clone();
    let store = store::open(&place.url_with(&format!("&application_name={name}"))).unwrap();
    append_events(&store, 1, &[None]);
    read(&store, |tx| tx.head());
    // The server ends the store's sessions, as a restart would.
    let ended: i64 = place
        .admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 2, "the writer's and the reader's connections");
    // The next calls connect again.
    assert_eq!(append_events(&store, 1, &[None])[0].seq, 2);
    assert_eq!(read(&store, |tx| tx.head()).map(|h| h.seq), Some(2));
}

#[test]
fn postgres_refuses_a_schema_that_is_not_a_ledger() {
    let Some(place) = PgPlace::new() else { return };
    let mut admin = place.admin();
    admin
        .batch_execute(&format!("CREATE TABLE {}.events (x int)", place.schema))
        .unwrap();
    let error = store::open(&place.url()).expect_err("another application's `events`");
    assert_eq!(error.kind, StoreErrorKind::NotALedger, "{error}");
    assert!(error.message.contains("`events`"), "{error}");
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&place.schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was created");
}

#[test]
fn postgres_keeps_tables_of_other_names() {
    let Some(place) = PgPlace::new() else { return };
    place
        .admin()
        .batch_execute(&format!("CREATE TABLE {}.other_app (x int)", place.schema))
        .unwrap();
    append_events(&place.open(), 1, &[None]);
}

#[test]
fn postgres_refuses_a_newer_schema() {
    let Some(place) = PgPlace::new() else { return };
    populate(&place.open());
    let mut admin = place.admin();
    admin
        .batch_execute(&format!(
            "UPDATE {}.grant_ledger SET schema_version = 99",
            place.schema
        ))
        .unwrap();
    let error = store::open(&place.url()).expect_err("a newer schema");
    assert_eq!(error.kind, StoreErrorKind::NotALedger, "{error}");
    let known = grant_ledger::store::postgres::SCHEMA_VERSION;
    assert!(error.message.contains("schema version 99"), "{error}");
    assert!(
        error.message.contains(&format!("version {known}")),
        "{error}"
    );
    let version: i64 = admin
        .query_one(
            &format!("SELECT schema_version FROM {}.grant_ledger", place.schema),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, 99);
}

#[test]
fn postgres_writes_wait_for_the_append_lock() {
    let Some(place) = PgPlace::new() else { return };
    drop(place.open());
    // A short lock timeout of the URL's own, in place of the store's 5 s.
    let separator = if place.server.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}options=-csearch_path%3D{}%20-clock_timeout%3D300",
        place.server, place.schema
    );
    let store = store::open(&url).unwrap();
    // Another replica holds the append lock, mid-write.
    let mut other = place.admin();
    other
        .batch_execute(&format!(
            "SET search_path = {}; BEGIN; SELECT pg_advisory_xact_lock(1198672996, hashtext(current_schema()))",
            place.schema
        ))
        .unwrap();
    let started = Instant::now();
    let error = store
        .write(&mut |tx| tx.set_meta("k", "v"))
        .expect_err("the lock is taken");
    assert_eq!(error.kind, StoreErrorKind::Unavailable, "{error}");
    assert!(error.message.contains("lock timeout"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Reads do not wait for it.
    assert_eq!(read(&store, |tx| tx.meta("k")), None);
    other.batch_execute("COMMIT").unwrap();
    write(&store, |tx| tx.set_meta("k", "v"));
}
