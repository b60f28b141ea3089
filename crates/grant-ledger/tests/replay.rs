//! Replaying a ledger's events into an empty store rebuilds the same tasks,
//! grants and event hashes.

mod common;

use std::sync::Arc;

use common::Fixture;
use grant_ledger::store::Store;
use grant_ledger::store::memory::MemoryStore;
use grant_ledger::{Approve, BindCredential, Renew, Revoke, RevokeTarget};
use serde_json::json;

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

#[test]
fn replay_rebuilds_the_same_state_and_hashes() {
    let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let f = busy_ledger(Arc::clone(&source));
    let copy = MemoryStore::new();
    let copied = grant_ledger::replay::replay(source.as_ref(), &copy).unwrap();
    assert_eq!(copied, f.head_seq());
    let all = |store: &dyn Store| {
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
    };
    let (tasks, grants, events) = all(source.as_ref());
    assert_eq!((tasks.len(), grants.len()), (3, 4));
    assert_eq!(all(&copy), (tasks, grants, events));
    // Not into a store that has events.
    assert!(grant_ledger::replay::replay(source.as_ref(), &copy).is_err());
}
