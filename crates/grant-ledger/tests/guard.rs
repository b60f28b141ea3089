//! `Guard`: an agent's tool calls in one task, each decided with its
//! arguments, grants requested once and reused while they last.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::Fixture;
use grant_ledger::{Admission, Approve, EventType, Guard, LedgerConfig, Revoke, RevokeTarget};
use serde_json::{Map, Value, json};

fn fixture() -> Fixture {
    Fixture::with(
        Arc::new(grant_ledger::store::memory::MemoryStore::new()),
        "guard.grant",
        LedgerConfig::default(),
    )
}

fn guard(f: &Fixture) -> Guard {
    let task = f.open("agent-1", None);
    let mut attrs = Map::new();
    attrs.insert("env".into(), json!("staging"));
    Guard::new(f.ledger.clone(), &task.task_id, "agent-1", "runtime").with_attrs(attrs)
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn allowed(admission: &Admission) -> (String, bool) {
    match admission {
        Admission::Allowed {
            grant_id, issued, ..
        } => (grant_id.clone(), *issued),
        other => panic!("not allowed: {other:?}"),
    }
}

#[test]
fn the_first_call_issues_and_later_calls_reuse_until_the_grant_expires() {
    let f = fixture();
    let guard = guard(&f);
    let search = args(json!({"sensitivity": "internal", "query": {"limit": 100}, "text": "5xx"}));
    let (first, issued) = allowed(&guard.admit_call("logs.search", Some(&search)).unwrap());
    assert!(issued);
    f.clock.advance_secs(1);
    let (second, issued) = allowed(&guard.admit_call("logs.search", Some(&search)).unwrap());
    assert_eq!((second.as_str(), issued), (first.as_str(), false));
    // Past its 2 s ttl the grant gives way to a new one.
    f.clock.advance_secs(1);
    let (third, issued) = allowed(&guard.admit_call("logs.search", Some(&search)).unwrap());
    assert!(issued);
    assert_ne!(third, first);
    // Only declared arguments are read: `text` is not an attribute.
    let timeline = f.ledger.timeline(guard.task_id()).unwrap();
    let issued_event = timeline
        .iter()
        .find(|e| e.kind == EventType::GrantIssued)
        .unwrap();
    let attrs = serde_json::to_value(&issued_event.attrs).unwrap();
    assert_eq!(attrs["env"], "staging");
    assert_eq!(attrs["args.query.limit"], 100);
    assert_eq!(attrs.as_object().unwrap().len(), 3, "{attrs}");
}

#[test]
fn a_denied_use_leaves_the_grant_for_the_next_allowed_call() {
    let f = fixture();
    let guard = guard(&f);
    let internal = args(json!({"sensitivity": "internal", "query": {"limit": 10}}));
    let confidential = args(json!({"sensitivity": "confidential", "query": {"limit": 10}}));
    let (grant, _) = allowed(&guard.admit_call("logs.search", Some(&internal)).unwrap());
    match guard
        .admit_call("logs.search", Some(&confidential))
        .unwrap()
    {
        Admission::Denied { decision, grant_id } => {
            assert_eq!(decision.decision.rules[0].id, "no-confidential");
            assert_eq!(grant_id.as_deref(), Some(grant.as_str()));
        }
        other => panic!("not denied: {other:?}"),
    }
    let (again, issued) = allowed(&guard.admit_call("logs.search", Some(&internal)).unwrap());
    assert_eq!((again, issued), (grant, false));
}

#[test]
fn a_used_up_grant_gives_way_to_a_new_request() {
    let f = fixture();
    let guard = guard(&f);
    let mut grants = Vec::new();
    for _ in 0..4 {
        grants.push(allowed(
            &guard.admit("tickets.comment", Map::new()).unwrap(),
        ));
    }
    assert!(grants[0].1 && !grants[1].1 && !grants[2].1 && grants[3].1);
    assert_eq!(grants[0].0, grants[2].0);
    assert_ne!(grants[0].0, grants[3].0);
}

#[test]
fn a_call_needing_approval_waits_on_one_pending_grant_then_goes_through() {
    let f = fixture();
    let guard = guard(&f);
    let Admission::Pending {
        grant_id,
        approvals,
        ..
    } = guard.admit("deploy.rollback", Map::new()).unwrap()
    else {
        panic!(
            "not pending: {:?}",
            guard.admit("deploy.rollback", Map::new())
        )
    };
    assert_eq!(approvals, ["oncall"]);
    // Asked again while it waits: the same pending grant, no new request.
    let Admission::Pending { grant_id: same, .. } =
        guard.admit("deploy.rollback", Map::new()).unwrap()
    else {
        panic!("not pending")
    };
    assert_eq!(same, grant_id);
    f.ledger
        .approve(
            "alice",
            Approve {
                grant_id: grant_id.clone(),
                approver: "alice".into(),
                group: "oncall".into(),
                reason: None,
            },
        )
        .unwrap();
    let (used, issued) = allowed(&guard.admit("deploy.rollback", Map::new()).unwrap());
    assert_eq!((used.as_str(), issued), (grant_id.as_str(), false));
    assert_eq!(
        f.event_types(),
        [
            "policy.activated",
            "task.opened",
            "grant.pending",
            "grant.approved",
            "grant.used"
        ]
    );
}

#[test]
fn a_revoked_grant_is_requested_again_and_an_ended_task_refuses() {
    let f = fixture();
    let guard = guard(&f);
    let (grant, _) = allowed(&guard.admit("tickets.comment", Map::new()).unwrap());
    let revoke = |target| Revoke {
        target,
        reason: "test".into(),
        block: false,
    };
    f.ledger
        .revoke("admin", revoke(RevokeTarget::Grant(grant.clone())))
        .unwrap();
    let (next, issued) = allowed(&guard.admit("tickets.comment", Map::new()).unwrap());
    assert!(issued && next != grant);
    f.ledger
        .revoke("admin", revoke(RevokeTarget::Task(guard.task_id().into())))
        .unwrap();
    guard.forget();
    match guard.admit("tickets.comment", Map::new()).unwrap() {
        Admission::Denied { decision, .. } => assert!(!decision.is_allow()),
        other => panic!("not denied: {other:?}"),
    }
}

#[test]
fn threads_calling_one_tool_share_one_grant() {
    let f = fixture();
    let guard = Arc::new(guard(&f));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let guard = Arc::clone(&guard);
            std::thread::spawn(move || guard.admit("tickets.comment", Map::new()).unwrap())
        })
        .collect();
    let admissions: Vec<Admission> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // 8 calls of a `uses 3` tool: three grants, never two requested at once.
    let issued = admissions.iter().filter(|a| allowed(a).1).count();
    assert_eq!(issued, 3);
    let verification = grant_ledger::chain::verify(f.ledger.store().as_ref(), &[], None).unwrap();
    assert!(verification.is_intact(), "{:?}", verification.problem);
}
