//! Fixtures: chains built the way the ledger builds them (events sealed
//! with `chain::seal` inside `Store::write`), and a store of raw rows that
//! tests may tamper with.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::sync::Mutex;

use grant_ledger::store::memory::MemoryStore;
use grant_ledger::store::{Head, StoredEvent, Tx, Work};
use grant_ledger::{Event, EventType, Grant, Store, StoreError, Task, TaskState, Timestamp, chain};
use serde_json::json;

pub const POLICY: &str = "sha256:5f1e0c2a9b7d4e3f8a6c1b0d2e4f6a8c9b7d5e3f1a2c4b6d8e0f1a3c5b7d9e2f";
pub const T0: i64 = 1_796_000_000; // 2026-11-29T...

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_secs(T0 + seconds)
}

/// Seals `event` after the head and appends it, in one write.
pub fn append(store: &dyn Store, mut event: Event) -> StoredEvent {
    let mut stored = None;
    store
        .write(&mut |tx| {
            let head = tx.head()?;
            let sealed = chain::seal(&mut event, head.as_ref())
                .map_err(|e| StoreError::corrupt(e.to_string()))?;
            tx.append(&sealed)?;
            stored = Some(sealed);
            Ok(())
        })
        .unwrap();
    stored.unwrap()
}

pub fn put_task(store: &dyn Store, task: &Task) {
    store.write(&mut |tx| tx.put_task(task)).unwrap();
}

/// `n` simple events, one task each time.
pub fn chain_of(store: &dyn Store, n: u64) -> Vec<StoredEvent> {
    (0..n)
        .map(|i| {
            let mut e = Event::new(
                EventType::TaskOpened,
                "issuer",
                POLICY,
                at(i64::try_from(i).unwrap()),
            );
            e.event_id = format!("evt_{i:032x}");
            e.task_id = Some(format!("task_{i}"));
            e.agent = Some("agent".to_string());
            append(store, e)
        })
        .collect()
}

fn task(id: &str, agent: &str, parent: Option<&str>, depth: u32, opened: i64) -> Task {
    Task {
        task_id: id.to_string(),
        agent: agent.to_string(),
        parent_task_id: parent.map(str::to_string),
        depth,
        chain: Vec::new(),
        opened_at: at(opened),
        deadline: Some(at(1800)),
        state: TaskState::Ended,
        labels: BTreeMap::new(),
        grants_issued: 1,
        ended_at: Some(at(600)),
        end_reason: Some("task ended".to_string()),
    }
}

fn decision(effect: &str, rules: &[&str], id: &str, ttl: Option<u64>) -> serde_json::Value {
    let mut d = json!({
        "decision_id": id,
        "effect": effect,
        "ttl_seconds": ttl,
        "rules": rules.iter().map(|r| json!({"id": r, "effect": effect, "annotations": {"id": r}})).collect::<Vec<_>>(),
        "reasons": [],
        "missing": [],
        "errors": [],
        "policy_hash": POLICY,
    });
    if effect == "allow" {
        d["obligations"] = json!({"uses": 3});
    }
    d
}

pub const ROOT: &str = "task_7c1e4a2b9d3f4e5a8b6c0d1e2f3a4b5c";
pub const CHILD: &str = "task_2f9d8c7b6a5e4d3c2b1a0f9e8d7c6b5a";
pub const OTHER: &str = "task_0000aaaa1111bbbb2222cccc3333dddd";
pub const ROOT_GRANT: &str = "grant_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";
pub const CHILD_GRANT: &str = "grant_1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e";
pub const ORCHESTRATOR: &str = "spiffe://prod/ops/orchestrator";
pub const SUPPORT: &str = "spiffe://prod/payments/support-agent";

/// A root task and its sub-task, each with one lifecycle: opened, a grant
/// issued, used, renewed or refused, revoked, ended; and events of an
/// unrelated task in between.
pub fn lifecycle(store: &dyn Store) {
    put_task(store, &task(ROOT, ORCHESTRATOR, None, 0, 0));
    put_task(store, &task(CHILD, SUPPORT, Some(ROOT), 1, 20));
    put_task(store, &task(OTHER, "spiffe://prod/other", None, 0, 5));
    let mut n = 0;
    let mut event = |kind: EventType, actor: &str, seconds: i64| {
        n += 1;
        let mut e = Event::new(kind, actor, POLICY, at(seconds));
        e.event_id = format!("evt_{n:032x}");
        e
    };

    let mut e = event(EventType::TaskOpened, "issuer-1", 0);
    e.task_id = Some(ROOT.into());
    e.agent = Some(ORCHESTRATOR.into());
    e.deadline = Some(at(1800));
    e.labels = Some(BTreeMap::from([(
        "ticket".to_string(),
        "OPS-1234".to_string(),
    )]));
    append(store, e);

    let mut e = event(EventType::TaskOpened, "issuer-2", 5);
    e.task_id = Some(OTHER.into());
    e.agent = Some("spiffe://prod/other".into());
    append(store, e);

    let mut e = event(EventType::GrantIssued, "issuer-1", 10);
    e.task_id = Some(ROOT.into());
    e.grant_id = Some(ROOT_GRANT.into());
    e.agent = Some(ORCHESTRATOR.into());
    e.tool = Some("payments.refund".into());
    e.decision = Some(decision(
        "allow",
        &["refunds-small", "payments-hours"],
        "dec_01",
        Some(300),
    ));
    e.attrs = Some(json!({"amount_cents": 4200, "customer": "hmac-sha256:3f2a"}));
    e.expires_at = Some(at(310));
    e.uses_left = Some(3);
    e.ttl_seconds = Some(300);
    append(store, e);

    let mut e = event(EventType::TaskOpened, "issuer-1", 20);
    e.task_id = Some(CHILD.into());
    e.parent_task_id = Some(ROOT.into());
    e.agent = Some(SUPPORT.into());
    e.deadline = Some(at(1800));
    append(store, e);

    let mut e = event(EventType::GrantIssued, "issuer-1", 25);
    e.task_id = Some(CHILD.into());
    e.parent_task_id = Some(ROOT.into());
    e.grant_id = Some(CHILD_GRANT.into());
    e.parent_grant_id = Some(ROOT_GRANT.into());
    e.agent = Some(SUPPORT.into());
    e.tool = Some("payments.refund".into());
    e.decision = Some(decision("allow", &["refunds-small"], "dec_02", Some(120)));
    e.expires_at = Some(at(145));
    e.uses_left = Some(1);
    e.ttl_seconds = Some(120);
    append(store, e);

    let mut e = event(EventType::GrantUsed, "gateway", 30);
    e.task_id = Some(CHILD.into());
    e.grant_id = Some(CHILD_GRANT.into());
    e.agent = Some(SUPPORT.into());
    e.tool = Some("payments.refund".into());
    e.uses_left = Some(0);
    append(store, e);

    let mut e = event(EventType::GrantDenied, "issuer-1", 40);
    e.task_id = Some(CHILD.into());
    e.agent = Some(SUPPORT.into());
    e.tool = Some("deploy.prod".into());
    e.decision = Some(decision("deny", &["no-deploy-in-subtasks"], "dec_03", None));
    e.reason = Some("sub-tasks never deploy".into());
    append(store, e);

    let mut e = event(EventType::TaskOpened, "issuer-2", 45);
    e.task_id = Some("task_elsewhere".into());
    e.agent = Some("spiffe://prod/other".into());
    append(store, e);

    let mut e = event(EventType::TaskEnded, "issuer-1", 50);
    e.task_id = Some(CHILD.into());
    e.agent = Some(SUPPORT.into());
    e.reason = Some("task ended".into());
    append(store, e);

    let mut e = event(EventType::GrantRenewed, "issuer-1", 200);
    e.task_id = Some(ROOT.into());
    e.grant_id = Some(ROOT_GRANT.into());
    e.agent = Some(ORCHESTRATOR.into());
    e.tool = Some("payments.refund".into());
    e.decision = Some(decision("allow", &["refunds-small"], "dec_04", Some(300)));
    e.expires_at = Some(at(500));
    e.uses_left = Some(3);
    append(store, e);

    let mut e = event(EventType::GrantUsed, "gateway", 210);
    e.task_id = Some(ROOT.into());
    e.grant_id = Some(ROOT_GRANT.into());
    e.agent = Some(ORCHESTRATOR.into());
    e.tool = Some("payments.refund".into());
    e.uses_left = Some(2);
    append(store, e);

    let mut e = event(EventType::GrantRevoked, "security-bot", 400);
    e.task_id = Some(ROOT.into());
    e.grant_id = Some(ROOT_GRANT.into());
    e.agent = Some(ORCHESTRATOR.into());
    e.tool = Some("payments.refund".into());
    e.credential_refs = Some(vec!["sts:ASIA4EXAMPLE".into()]);
    e.reason = Some("suspicious \u{1b}[31mrefund\u{1b}[0m pattern".into());
    append(store, e);

    let mut e = event(EventType::TaskEnded, "issuer-1", 600);
    e.task_id = Some(ROOT.into());
    e.agent = Some(ORCHESTRATOR.into());
    e.reason = Some("task ended".into());
    append(store, e);
}

pub fn memory() -> MemoryStore {
    MemoryStore::new()
}

/// A store of raw event rows, for tampering: only reads of events work.
#[derive(Debug, Default)]
pub struct RawStore {
    pub events: Mutex<Vec<StoredEvent>>,
}

impl RawStore {
    /// The events of `store`, as rows.
    pub fn copy_of(store: &dyn Store) -> RawStore {
        let mut events = Vec::new();
        store
            .read(&mut |tx| {
                events = tx.events_after(0, usize::MAX)?;
                Ok(())
            })
            .unwrap();
        RawStore {
            events: Mutex::new(events),
        }
    }

    /// Changes row `seq` (1-based position) with `change`.
    pub fn tamper(&self, seq: usize, change: impl FnOnce(&mut StoredEvent)) {
        change(&mut self.events.lock().unwrap()[seq - 1]);
    }

    /// Changes the JSON of row `seq`: `change` edits the parsed object,
    /// and the row keeps its canonical form (the hash is not recomputed).
    pub fn edit(&self, seq: usize, change: impl FnOnce(&mut serde_json::Value)) {
        self.tamper(seq, |row| {
            let mut value: serde_json::Value = serde_json::from_str(&row.json).unwrap();
            change(&mut value);
            row.json = grant_ledger::jcs::to_string(&value);
        });
    }
}

struct RawTx<'a>(&'a [StoredEvent]);

fn refused<T>() -> Result<T, StoreError> {
    Err(StoreError::unavailable("a raw store only reads events"))
}

impl Tx for RawTx<'_> {
    fn head(&mut self) -> Result<Option<Head>, StoreError> {
        Ok(self.0.last().map(|e| Head {
            seq: e.seq,
            hash: e.hash.clone(),
        }))
    }
    fn append(&mut self, _: &StoredEvent) -> Result<(), StoreError> {
        refused()
    }
    fn events_after(&mut self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .0
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }
    fn events_of_tasks(&mut self, _: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        refused()
    }
    fn task(&mut self, _: &str) -> Result<Option<Task>, StoreError> {
        refused()
    }
    fn put_task(&mut self, _: &Task) -> Result<(), StoreError> {
        refused()
    }
    fn subtasks(&mut self, _: &str) -> Result<Vec<Task>, StoreError> {
        refused()
    }
    fn open_tasks_of_agent(&mut self, _: &str) -> Result<Vec<Task>, StoreError> {
        refused()
    }
    fn due_tasks(&mut self, _: Timestamp, _: usize) -> Result<Vec<Task>, StoreError> {
        refused()
    }
    fn grant(&mut self, _: &str) -> Result<Option<Grant>, StoreError> {
        refused()
    }
    fn put_grant(&mut self, _: &Grant) -> Result<(), StoreError> {
        refused()
    }
    fn grants_of_task(&mut self, _: &str) -> Result<Vec<Grant>, StoreError> {
        refused()
    }
    fn child_grants(&mut self, _: &str) -> Result<Vec<Grant>, StoreError> {
        refused()
    }
    fn due_grants(&mut self, _: Timestamp, _: usize) -> Result<Vec<Grant>, StoreError> {
        refused()
    }
    fn is_blocked(&mut self, _: &str) -> Result<bool, StoreError> {
        refused()
    }
    fn set_blocked(&mut self, _: &str, _: bool) -> Result<(), StoreError> {
        refused()
    }
    fn meta(&mut self, _: &str) -> Result<Option<String>, StoreError> {
        refused()
    }
    fn set_meta(&mut self, _: &str, _: &str) -> Result<(), StoreError> {
        refused()
    }
}

impl Store for RawStore {
    fn write(&self, _: &mut Work<'_>) -> Result<(), StoreError> {
        refused()
    }
    fn read(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        let events = self.events.lock().unwrap();
        work(&mut RawTx(&events))
    }
    fn describe(&self) -> String {
        "raw".to_string()
    }
}

/// A store whose every read fails.
#[derive(Debug)]
pub struct DownStore;

impl Store for DownStore {
    fn write(&self, _: &mut Work<'_>) -> Result<(), StoreError> {
        Err(StoreError::unavailable("the store is down"))
    }
    fn read(&self, _: &mut Work<'_>) -> Result<(), StoreError> {
        Err(StoreError::unavailable("the store is down"))
    }
    fn describe(&self) -> String {
        "down".to_string()
    }
}
