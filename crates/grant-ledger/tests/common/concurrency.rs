//! Concurrency scenarios, run against every store.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use grant_ledger::{Ledger, Revoke, RevokeTarget, Store, UseGrant};
use serde_json::json;

use super::Fixture;

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
