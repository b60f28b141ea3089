//! The ledger's scenarios, run against every store (tests/conformance.rs).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use grant_ledger::store::Store;
use grant_ledger::{Approve, BindCredential, Ledger, Renew, Revoke, RevokeTarget, UseGrant};
use serde_json::json;

use super::Fixture;

/// A ledger that went through every kind of event.
pub fn busy_ledger(store: Arc<dyn Store>) -> Fixture {
    let f = Fixture::new(store);
    let root = f.open("planner", None);
    let child = f.open("executor", Some(&root.task_id));
    let read = f.issue(&root, "db.read", json!({"sensitivity": "internal"}));
    let deploy = f.issue(&root, "deploy.plan", json!({}));
    let child_deploy = f.issue(&child, "deploy.plan", json!({}));
    f.use_(&child_deploy);
    f.use_(&read);
    f.request(
        &root,
        "payments.refund",
        json!({"amount_cents": 10_000_000}),
    );
    let payout = f.issue(&root, "payments.payout", json!({"amount_cents": 70_000}));
    f.ledger
        .approve(
            "console",
            Approve {
                grant_id: payout.grant_id.clone(),
                approver: "alice".into(),
                group: "payments-oncall".into(),
                reason: None,
            },
        )
        .unwrap();
    f.ledger
        .bind_credential(
            "issuer",
            BindCredential {
                grant_id: read.grant_id.clone(),
                issuer: "sts".into(),
                credential_ref: "ASIA1".into(),
                expires_at: None,
            },
        )
        .unwrap();
    f.clock.advance_secs(60);
    f.ledger
        .renew(
            "issuer",
            Renew {
                grant_id: read.grant_id.clone(),
                agent: "planner".into(),
                attrs: json!({"sensitivity": "public"})
                    .as_object()
                    .cloned()
                    .unwrap(),
                ttl: None,
            },
        )
        .unwrap();
    f.ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Grant(deploy.grant_id.clone()),
                reason: "oops".into(),
                block: false,
            },
        )
        .unwrap();
    let other = f.open("rogue", None);
    f.ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Agent("rogue".into()),
                reason: "x".into(),
                block: true,
            },
        )
        .unwrap();
    f.ledger.unblock("admin", "rogue").unwrap();
    let _ = other;
    f.clock.advance_secs(600);
    f.ledger.sweep().unwrap();
    f
}

/// A `uses 1` grant used by 64 threads at once succeeds exactly once.
pub fn last_use_is_won_once(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let task = f.open("agent", None);
    let grant = f.issue(&task, "payments.refund", json!({"amount_cents": 5}));
    let barrier = Arc::new(Barrier::new(64));
    let wins = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (ledger, barrier, wins, grant) = (
                f.ledger.clone(),
                Arc::clone(&barrier),
                Arc::clone(&wins),
                grant.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let answer = use_once(&ledger, &grant.grant_id, &grant.agent, &grant.tool);
                if answer {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(wins.load(Ordering::SeqCst), 1);
    let refused = f
        .event_types()
        .iter()
        .filter(|t| *t == "grant.use_refused")
        .count();
    assert_eq!(refused, 63, "every refusal is recorded");
}

fn use_once(ledger: &Ledger, grant_id: &str, agent: &str, tool: &str) -> bool {
    ledger
        .use_grant(
            "gateway",
            UseGrant {
                grant_id: grant_id.into(),
                agent: agent.into(),
                tool: tool.into(),
                attrs: None,
            },
        )
        .unwrap()
        .ok
}

/// Uses racing a revocation: no use that starts after the revocation has
/// answered goes through.
pub fn no_use_after_revocation(store: Arc<dyn Store>) {
    let f = Fixture::new(store);
    let task = f.open("agent", None);
    let grant = f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    let revoked = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicUsize::new(0));
    let users: Vec<_> = (0..8)
        .map(|_| {
            let (ledger, revoked, violations, grant) = (
                f.ledger.clone(),
                Arc::clone(&revoked),
                Arc::clone(&violations),
                grant.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..40 {
                    let started_after = revoked.load(Ordering::SeqCst);
                    if use_once(&ledger, &grant.grant_id, &grant.agent, &grant.tool)
                        && started_after
                    {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(5));
    f.ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Grant(grant.grant_id.clone()),
                reason: "race".into(),
                block: false,
            },
        )
        .unwrap();
    revoked.store(true, Ordering::SeqCst);
    for user in users {
        user.join().unwrap();
    }
    assert_eq!(violations.load(Ordering::SeqCst), 0);
}

/// Replaying the chain into an empty store rebuilds the same tasks, grants
/// and events (hashes included); the chain is intact.
pub fn replay_rebuilds_everything(store: Arc<dyn Store>) {
    let f = busy_ledger(Arc::clone(&store));
    super::assert_chain_intact(&f.ledger);
    let copy = grant_ledger::store::memory::MemoryStore::new();
    let copied = grant_ledger::replay::replay(store.as_ref(), &copy).unwrap();
    assert_eq!(copied, f.head_seq());
    let (tasks, grants, events) = everything(store.as_ref());
    assert_eq!((tasks.len(), grants.len()), (3, 4));
    assert_eq!(everything(&copy), (tasks, grants, events));
    assert!(
        grant_ledger::replay::replay(store.as_ref(), &copy).is_err(),
        "only into an empty store"
    );
}

type Everything = (
    Vec<Option<grant_ledger::Task>>,
    Vec<grant_ledger::Grant>,
    Vec<grant_ledger::store::StoredEvent>,
);

fn everything(store: &dyn Store) -> Everything {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    store
        .read(&mut |tx| {
            let events = tx.events_after(0, usize::MAX)?;
            let mut task_ids: Vec<String> =
                events.iter().filter_map(|e| e.task_id.clone()).collect();
            task_ids.sort();
            task_ids.dedup();
            for id in &task_ids {
                out.0.push(tx.task(id)?);
                out.1.extend(tx.grants_of_task(id)?);
            }
            out.2 = events;
            Ok(())
        })
        .unwrap();
    out
}

/// Two ledgers on one store (two replicas): a revocation answered by one
/// is seen by the other's next use, and a grant expires once whoever sweeps.
pub fn replicas_share_revocations_and_sweeps(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let a = Fixture::new(first);
    let b = Fixture::new(second);
    let task = a.open("agent", None);
    let grant = a.issue(&task, "db.read", json!({"sensitivity": "public"}));
    assert!(b.use_(&grant).ok, "replica b sees replica a's grant");
    b.ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Grant(grant.grant_id.clone()),
                reason: "r".into(),
                block: false,
            },
        )
        .unwrap();
    assert!(!a.use_(&grant).ok, "replica a sees replica b's revocation");
    let short = a.issue(&task, "payments.refund", json!({"amount_cents": 3}));
    a.clock.advance_secs(600);
    b.clock.advance_secs(600);
    let swept_a = a.ledger.sweep().unwrap();
    let swept_b = b.ledger.sweep().unwrap();
    let mut expired = swept_a.expired;
    expired.extend(swept_b.expired);
    assert_eq!(expired, [short.grant_id]);
    super::assert_chain_intact(&a.ledger);
}
