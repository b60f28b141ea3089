//! `Ledger::administer`: a handle without a policy, for approvals out of
//! band (`grant approve`). It approves what a deciding ledger made pending,
//! stamps the store's policy hash, records no `policy.activated`, and
//! refuses to decide.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::{Fixture, assert_chain_intact};
use grant_ledger::store::memory::MemoryStore;
use grant_ledger::{
    Approve, GrantState, Ledger, LedgerConfig, LedgerError, RequestGrant, Revoke, RevokeTarget,
    UseGrant, store,
};
use serde_json::json;

const REFUSED: &str = "this ledger handle administers (approve, reject, revoke, end_task, reads); it does not decide: open it with a policy";

fn administer(f: &Fixture, store: Arc<dyn grant_ledger::Store>) -> Ledger {
    Ledger::administer_with(store, Arc::new(f.clock.clone()), LedgerConfig::default()).unwrap()
}

fn approval(grant_id: &str, approver: &str) -> Approve {
    Approve {
        grant_id: grant_id.into(),
        approver: approver.into(),
        group: "payments-oncall".into(),
        reason: Some("checked the ticket".into()),
    }
}

/// Every event's `type` and `policy_hash`, in order.
fn stamps(ledger: &Ledger) -> Vec<(String, String)> {
    ledger
        .events_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| {
            let event: serde_json::Value = serde_json::from_str(&e.json).unwrap();
            (e.kind, event["policy_hash"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn approves_a_grant_a_deciding_ledger_made_pending_in_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("ledger.db").display());
    let f = Fixture::new(store::open(&url).unwrap());
    let task = f.open("agent", None);
    let pending = f.issue(&task, "payments.payout", json!({"amount_cents": 70_000}));
    assert_eq!(pending.state, GrantState::Pending);

    // Another connection, as another process would open it.
    let admin = administer(&f, store::open(&url).unwrap());
    assert!(admin.administers());
    f.clock.advance_secs(30);
    let active = admin
        .approve("alice", approval(&pending.grant_id, "alice"))
        .unwrap();
    assert_eq!(active.state, GrantState::Active);
    assert_eq!(active.expires_at, common::START.plus_secs(30 + 120));
    assert_eq!(active.approvals.granted[0].approver, "alice");

    // The deciding ledger sees it and may use it.
    assert!(f.use_(&active).ok);

    let hash = f.ledger.engine().policy_hash().to_string();
    let events = stamps(&f.ledger);
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "policy.activated",
            "task.opened",
            "grant.pending",
            "grant.approved",
            "grant.used"
        ]
    );
    assert!(events.iter().all(|(_, h)| *h == hash), "{events:?}");
    let approved: serde_json::Value =
        serde_json::from_str(&f.ledger.events_after(3, 1).unwrap()[0].json).unwrap();
    assert_eq!(approved["actor"], "alice");
    assert_eq!(approved["approver"], "alice");
    assert_eq!(approved["reason"], "checked the ticket");
    assert_chain_intact(&f.ledger);
}

#[test]
fn stamps_the_policy_the_store_records_when_the_event_is_written() {
    let store: Arc<dyn grant_ledger::Store> = Arc::new(MemoryStore::new());
    let f = Fixture::new(Arc::clone(&store));
    let admin = administer(&f, Arc::clone(&store));
    let task = f.open("agent", None);
    let pending = f.issue(&task, "payments.payout", json!({"amount_cents": 70_000}));
    // Another process activates another policy after the handle opened.
    let text = std::fs::read_to_string(format!(
        "{}/tests/policies/lifecycle.grant",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let next =
        grant_engine::Engine::from_text("lifecycle.grant", &format!("{text}\n# v2\n")).unwrap();
    let next_hash = next.policy_hash().to_string();
    f.ledger.set_policy(next, "deployer").unwrap();
    admin
        .approve("alice", approval(&pending.grant_id, "alice"))
        .unwrap();
    let events = stamps(&f.ledger);
    let last = events.last().unwrap();
    assert_eq!(*last, ("grant.approved".to_string(), next_hash));
    assert_eq!(
        events
            .iter()
            .filter(|(k, _)| k == "policy.activated")
            .count(),
        2,
        "the first policy and the deployer's, none for the handle"
    );
    assert_chain_intact(&f.ledger);
}

#[test]
fn administers_without_deciding() {
    let store: Arc<dyn grant_ledger::Store> = Arc::new(MemoryStore::new());
    let f = Fixture::new(Arc::clone(&store));
    let admin = administer(&f, Arc::clone(&store));
    let task = f.open("agent", None);
    let pending = f.issue(&task, "payments.payout", json!({"amount_cents": 70_000}));
    let request = RequestGrant {
        task_id: task.task_id.clone(),
        agent: "agent".into(),
        tool: "db.read".into(),
        attrs: json!({"sensitivity": "public"})
            .as_object()
            .cloned()
            .unwrap(),
        ttl: None,
    };
    let refused = |result: Result<(), LedgerError>| match result {
        Err(LedgerError::Invalid(message)) => assert_eq!(message, REFUSED),
        other => panic!("not refused: {other:?}"),
    };
    let before = f.head_seq();
    refused(admin.request_grant("alice", request.clone()).map(|_| ()));
    refused(admin.preview(&request).map(|_| ()));
    refused(
        admin
            .renew(
                "alice",
                grant_ledger::Renew {
                    grant_id: pending.grant_id.clone(),
                    agent: "agent".into(),
                    attrs: Default::default(),
                    ttl: None,
                },
            )
            .map(|_| ()),
    );
    let use_ = UseGrant {
        grant_id: pending.grant_id.clone(),
        agent: "agent".into(),
        tool: "payments.payout".into(),
        attrs: Some(Default::default()),
    };
    refused(admin.use_grant("alice", use_.clone()).map(|_| ()));
    refused(admin.set_policy(common::policy("lifecycle.grant"), "alice"));
    assert_eq!(f.head_seq(), before, "a refusal writes nothing");

    // What does not decide works: reject, a use without attributes, revoke,
    // end a task, unblock, reads.
    let rejected = admin
        .reject("alice", approval(&pending.grant_id, "alice"))
        .unwrap();
    assert_eq!(rejected.state, GrantState::Revoked);
    let refused_use = admin
        .use_grant(
            "gateway",
            UseGrant {
                attrs: None,
                ..use_
            },
        )
        .unwrap();
    assert!(!refused_use.ok);
    let grant = f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    let revoked = admin
        .revoke(
            "alice",
            Revoke {
                target: RevokeTarget::Grant(grant.grant_id.clone()),
                reason: "out of band".into(),
                block: false,
            },
        )
        .unwrap();
    assert_eq!(revoked.revoked, std::slice::from_ref(&grant.grant_id));
    let blocked = f.open("blocked-agent", None);
    admin
        .revoke(
            "alice",
            Revoke {
                target: RevokeTarget::Agent("blocked-agent".into()),
                reason: "compromised".into(),
                block: true,
            },
        )
        .unwrap();
    assert!(admin.unblock("alice", "blocked-agent").unwrap());
    assert_eq!(
        admin.end_task("alice", &task.task_id).unwrap().ended,
        std::slice::from_ref(&task.task_id)
    );
    assert_eq!(
        admin.grant(&grant.grant_id).unwrap().state,
        GrantState::Revoked
    );
    assert_eq!(
        admin.task(&blocked.task_id).unwrap().task.agent,
        "blocked-agent"
    );
    assert!(!admin.timeline(&task.task_id).unwrap().is_empty());

    let hash = f.ledger.engine().policy_hash().to_string();
    let events = stamps(&f.ledger);
    assert!(events.iter().all(|(_, h)| *h == hash), "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|(k, _)| k == "policy.activated")
            .count(),
        1
    );
    assert_chain_intact(&f.ledger);
}

#[test]
fn a_store_that_recorded_no_policy_is_refused() {
    let store: Arc<dyn grant_ledger::Store> = Arc::new(MemoryStore::new());
    let error = Ledger::administer(Arc::clone(&store)).unwrap_err();
    assert_eq!(
        error,
        LedgerError::Invalid(
            "the store `memory` has recorded no policy: nothing can be pending in it".into()
        )
    );
    assert!(store_is_empty(&store), "nothing written");
}

#[test]
fn a_spool_is_refused() {
    let store: Arc<dyn grant_ledger::Store> = Arc::new(MemoryStore::new());
    let f = Fixture::new(Arc::clone(&store));
    let config = LedgerConfig {
        spool: Some("spool.ndjson".into()),
        ..LedgerConfig::default()
    };
    let error = Ledger::administer_with(store, Arc::new(f.clock.clone()), config).unwrap_err();
    assert!(matches!(error, LedgerError::Invalid(_)), "{error}");
}

fn store_is_empty(store: &Arc<dyn grant_ledger::Store>) -> bool {
    let mut head = None;
    store
        .read(&mut |tx| {
            head = tx.head()?;
            Ok(())
        })
        .unwrap();
    head.is_none()
}
