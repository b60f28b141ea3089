//! Fail safe when the store is unavailable: deny, or, when the policy
//! declares `ledger.degraded` and a spool is configured, degraded issuance
//! into the fsynced spool, replayed in order when the store returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::Fixture;
use grant_ledger::store::faulty::FaultyStore;
use grant_ledger::store::memory::MemoryStore;
use grant_ledger::{GrantState, LedgerConfig, LedgerError, Revoke, RevokeTarget};
use serde_json::json;

struct Degradable {
    f: Fixture,
    store: Arc<FaultyStore>,
    spool: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn degradable(policy: &str, with_spool: bool) -> Degradable {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool.ndjson");
    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let config = LedgerConfig {
        spool: with_spool.then(|| spool.clone()),
        ..LedgerConfig::default()
    };
    let f = Fixture::with(store.clone(), policy, config);
    Degradable {
        f,
        store,
        spool,
        _dir: dir,
    }
}

#[test]
fn without_a_degraded_policy_grant_requests_are_denied() {
    let d = degradable("delegation.grant", true);
    let task = d.f.open("agent", None);
    let grant = d.f.issue(&task, "tool.b", json!({}));
    d.store.faults().set_down(true);
    let answer = d.f.request(&task, "tool.b", json!({}));
    assert!(answer.grant.is_none());
    let errors = &answer.decision.decision.errors;
    assert!(
        errors[0].starts_with("ledger store unavailable: "),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with("(the policy does not declare `ledger.degraded`)"),
        "{errors:?}"
    );
    let used = d.f.ledger.use_grant(
        "gateway",
        grant_ledger::UseGrant {
            grant_id: grant.grant_id,
            agent: "agent".into(),
            tool: "tool.b".into(),
            attrs: None,
        },
    );
    assert!(matches!(used, Err(LedgerError::Store(_))), "{used:?}");
    assert!(!d.f.ledger.is_degraded());
}

#[test]
fn without_a_spool_grant_requests_are_denied() {
    let d = degradable("degraded.grant", false);
    let task = d.f.open("agent", None);
    d.store.faults().set_down(true);
    let answer =
        d.f.request(&task, "db.read", json!({"sensitivity": "public"}));
    assert!(answer.grant.is_none());
    assert!(answer.decision.decision.errors[0].ends_with("(no degraded spool is configured)"));
}

#[test]
fn degraded_issuance_is_spooled_and_replayed_in_order() {
    let d = degradable("degraded.grant", true);
    let task = d.f.open("agent", None);
    let normal =
        d.f.issue(&task, "db.read", json!({"sensitivity": "internal"}));
    let unseen_before = d.f.head_seq();
    d.store.faults().set_down(true);

    // Only allow rules that read `ledger.degraded` apply.
    let internal =
        d.f.request(&task, "db.read", json!({"sensitivity": "internal"}));
    assert!(internal.grant.is_none());
    let refund =
        d.f.request(&task, "payments.refund", json!({"amount_cents": 1}));
    assert!(
        refund.grant.is_none(),
        "an allow rule that does not read ledger.degraded applies not: {refund:?}"
    );
    let answer =
        d.f.request(&task, "db.read", json!({"sensitivity": "public"}));
    let local = answer.grant.expect("the degraded rule allows");
    assert!(local.degraded);
    assert_eq!(local.ttl_seconds, 30);
    assert_eq!(answer.decision.decision.rules[0].id, "db-read-degraded");
    assert!(d.f.ledger.is_degraded());

    // Uses: only grants issued here while degraded.
    assert!(d.f.use_(&local).ok);
    let refused = d.f.use_(&normal);
    assert!(!refused.ok);
    assert!(
        refused
            .reason
            .unwrap()
            .contains("was not issued by this process while degraded")
    );
    // Revocations apply at once, locally, and are spooled.
    let revoked =
        d.f.ledger
            .revoke(
                "security",
                Revoke {
                    target: RevokeTarget::Grant(normal.grant_id.clone()),
                    reason: "r".into(),
                    block: false,
                },
            )
            .unwrap();
    assert_eq!(revoked.revoked, std::slice::from_ref(&normal.grant_id));
    assert!(std::fs::metadata(&d.spool).unwrap().len() > 0);
    // Nothing reached the store.
    d.store.faults().set_down(false);
    assert_eq!(d.f.head_seq(), unseen_before);

    assert!(d.f.ledger.recover().unwrap());
    assert!(!d.f.ledger.is_degraded());
    assert_eq!(
        std::fs::metadata(&d.spool).unwrap().len(),
        0,
        "the spool is emptied once replayed"
    );
    let types = d.f.event_types();
    let replayed: Vec<&str> = types[unseen_before as usize..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        replayed,
        [
            "ledger.degraded",
            "grant.denied",
            "grant.denied",
            "grant.issued",
            "grant.used",
            "grant.use_refused",
            "grant.revoked",
            "ledger.recovered"
        ]
    );
    assert_eq!(
        d.f.ledger.grant(&normal.grant_id).unwrap().state,
        GrantState::Revoked
    );
    let stored = d.f.ledger.grant(&local.grant_id).unwrap();
    assert!(stored.degraded);
    assert_eq!(stored.expires_at, local.expires_at);
    // Every replayed event says so.
    for event in d.f.ledger.events_after(unseen_before, 100).unwrap() {
        let value: serde_json::Value = serde_json::from_str(&event.json).unwrap();
        if value["type"] != "ledger.recovered" {
            assert_eq!(value["degraded"], true, "{value}");
        }
    }
    // Back to normal decisions.
    assert!(
        d.f.request(&task, "db.read", json!({"sensitivity": "internal"}))
            .grant
            .is_some()
    );
}

#[test]
fn a_spool_left_by_a_crash_is_replayed_at_the_next_start() {
    let d = degradable("degraded.grant", true);
    let task = d.f.open("agent", None);
    d.store.faults().set_down(true);
    let local =
        d.f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    // The process dies here: the ledger is dropped with its spool unreplayed.
    let Degradable {
        f,
        store,
        spool,
        _dir,
    } = d;
    drop(f);
    store.faults().set_down(false);
    let config = LedgerConfig {
        spool: Some(spool.clone()),
        ..LedgerConfig::default()
    };
    let f = Fixture::with(store.clone(), "degraded.grant", config);
    assert!(!f.ledger.is_degraded());
    assert!(f.ledger.grant(&local.grant_id).unwrap().degraded);
    // Replayed once: a third start replays nothing.
    let seq = f.head_seq();
    drop(f);
    let config = LedgerConfig {
        spool: Some(spool),
        ..LedgerConfig::default()
    };
    let f = Fixture::with(store, "degraded.grant", config);
    assert_eq!(f.head_seq(), seq);
}

#[test]
fn a_task_unseen_by_this_process_cannot_be_decided_degraded() {
    let d = degradable("degraded.grant", true);
    let task = d.f.open("agent", None);
    // Another process's ledger, on the same store, opened this one.
    let other =
        grant_ledger::Ledger::open(d.store.clone(), common::policy("degraded.grant")).unwrap();
    let theirs = other
        .open_task(
            "issuer",
            grant_ledger::OpenTask {
                agent: "agent".into(),
                ..Default::default()
            },
        )
        .unwrap();
    d.store.faults().set_down(true);
    let answer =
        d.f.request(&theirs, "db.read", json!({"sensitivity": "public"}));
    assert!(answer.grant.is_none());
    assert!(answer.decision.decision.errors[0].contains("is unknown to this process"));
    let _ = task;
}

#[test]
fn ledger_attributes_the_process_cannot_know_fail_closed() {
    // lifecycle.grant caps a task with `ledger.task_grants`: unknown while
    // degraded (other replicas may have issued), so that deny applies.
    let d = degradable("lifecycle.grant", true);
    let task = d.f.open("agent", None);
    d.store.faults().set_down(true);
    let answer =
        d.f.request(&task, "db.read", json!({"sensitivity": "public"}));
    assert!(answer.grant.is_none());
    assert_eq!(answer.decision.decision.rules[0].id, "task-cap");
    assert_eq!(answer.decision.decision.missing, ["ledger.task_grants"]);
}

#[test]
fn a_torn_last_spool_line_is_cut_off_and_the_rest_replayed() {
    let d = degradable("degraded.grant", true);
    let task = d.f.open("agent", None);
    d.store.faults().set_down(true);
    let local =
        d.f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    let Degradable {
        f,
        store,
        spool,
        _dir,
    } = d;
    drop(f);
    // A crash mid-write leaves half a line, never fsynced nor answered.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&spool)
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"spool_id\":\"spool_x\",\"spooled\":\"ev").unwrap();
    drop(file);
    store.faults().set_down(false);
    let config = LedgerConfig {
        spool: Some(spool),
        ..LedgerConfig::default()
    };
    let f = Fixture::with(store, "degraded.grant", config);
    assert!(!f.ledger.is_degraded());
    assert!(f.ledger.grant(&local.grant_id).unwrap().degraded);
}

#[test]
fn nothing_reaches_the_store_before_a_waiting_spool() {
    let d = degradable("degraded.grant", true);
    let task = d.f.open("agent", None);
    d.store.faults().set_down(true);
    let local =
        d.f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    d.store.faults().set_down(false);
    // Within a second of the last try, the ledger stays degraded: an
    // operation without a degraded form fails rather than jump the spool.
    let early = d.f.ledger.open_task(
        "issuer",
        grant_ledger::OpenTask {
            agent: "b".into(),
            ..Default::default()
        },
    );
    assert!(matches!(early, Err(LedgerError::Store(_))), "{early:?}");
    // A second later the next operation replays the spool first.
    d.f.clock.advance_secs(1);
    let other = d.f.open("b", None);
    assert!(!d.f.ledger.is_degraded());
    let types = d.f.event_types();
    let issued = types.iter().position(|t| t == "grant.issued").unwrap();
    let recovered = types.iter().position(|t| t == "ledger.recovered").unwrap();
    let opened = types.iter().rposition(|t| t == "task.opened").unwrap();
    assert!(issued < recovered && recovered < opened, "{types:?}");
    assert!(d.f.ledger.grant(&local.grant_id).is_ok());
    let _ = other;
}

#[test]
fn a_commit_whose_answer_is_lost_fails_safe() {
    // The store commits, then the answer is lost (a dropped connection):
    // the caller is told no, so it holds nothing; what the store kept is
    // an orphan that expires on its own, and the chain stays whole.
    let d = degradable("delegation.grant", false);
    let task = d.f.open("agent", None);
    d.store.faults().fail_after_commit(1);
    let answer = d.f.request(&task, "tool.b", json!({}));
    assert!(answer.grant.is_none());
    assert!(answer.decision.decision.errors[0].starts_with("ledger store unavailable"));
    let orphans = d.f.ledger.task(&task.task_id).unwrap().grants;
    assert_eq!(orphans.len(), 1, "committed before the failure");
    d.f.clock.advance_secs(121);
    assert_eq!(
        d.f.ledger.sweep().unwrap().expired,
        [orphans[0].grant_id.clone()]
    );
    common::assert_chain_intact(&d.f.ledger);
}
