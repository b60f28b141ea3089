//! The lifecycle of the spec, operation by operation, on the memory store
//! (the conformance suite runs the same ledger over every store).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use common::Fixture;
use grant_ledger::{
    Approve, BindCredential, GrantState, LedgerError, OpenTask, Renew, Revoke, RevokeTarget,
    TaskState, UseGrant,
};
use serde_json::json;

#[test]
fn issue_use_and_end_read_as_one_lifecycle() {
    let f = Fixture::memory();
    let task = f.open("spiffe://prod/support", None);
    assert_eq!(task.depth, 0);
    let answer = f.request(&task, "db.read", json!({"sensitivity": "internal"}));
    let grant = answer.grant.unwrap();
    assert_eq!(grant.state, GrantState::Active);
    assert_eq!(grant.expires_at, common::START.plus_secs(300));
    assert_eq!(grant.ttl_seconds, 300);
    assert_eq!(answer.decision.decision.rules[0].id, "db-read");
    assert!(answer.decision.decision_id.starts_with("dec_"));
    assert!(f.use_(&grant).ok);
    let ended = f.ledger.end_task("issuer", &task.task_id).unwrap();
    assert_eq!(ended.revoked, std::slice::from_ref(&grant.grant_id));
    assert_eq!(ended.ended, std::slice::from_ref(&task.task_id));
    assert_eq!(
        f.event_types(),
        [
            "policy.activated",
            "task.opened",
            "grant.issued",
            "grant.used",
            "grant.revoked",
            "task.ended"
        ]
    );
    let timeline = f.ledger.timeline(&task.task_id).unwrap();
    assert_eq!(timeline.len(), 5);
    assert!(
        timeline
            .iter()
            .all(|e| e.task_id.as_deref() == Some(task.task_id.as_str()))
    );
    // Ending again changes nothing and writes nothing.
    let before = f.head_seq();
    assert_eq!(
        f.ledger.end_task("issuer", &task.task_id).unwrap(),
        Default::default()
    );
    assert_eq!(f.head_seq(), before);
    assert_eq!(
        f.ledger.grant(&grant.grant_id).unwrap().state,
        GrantState::Revoked
    );
    assert!(!f.use_(&grant).ok);
}

#[test]
fn a_use_once_grant_is_used_once() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let grant = f.issue(&task, "payments.refund", json!({"amount_cents": 1200}));
    assert_eq!(grant.uses_left, Some(1));
    let first = f.use_(&grant);
    assert!(first.ok);
    assert_eq!(first.uses_left, Some(0));
    let second = f.use_(&grant);
    assert!(!second.ok);
    assert_eq!(
        second.reason.as_deref(),
        Some(format!("grant `{}` is used up", grant.grant_id).as_str())
    );
    assert_eq!(
        f.ledger.grant(&grant.grant_id).unwrap().state,
        GrantState::Exhausted
    );
    assert_eq!(
        f.event_types().last().map(String::as_str),
        Some("grant.use_refused")
    );
}

#[test]
fn denies_are_recorded_with_their_decision() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let answer = f.request(&task, "payments.refund", json!({"amount_cents": 900_000}));
    assert!(answer.grant.is_none());
    assert_eq!(
        answer.decision.decision.reasons,
        ["no rule allows tool `payments.refund`, so it is denied by default"]
    );
    let events = f.ledger.events_after(0, 100).unwrap();
    let denied: serde_json::Value = serde_json::from_str(&events.last().unwrap().json).unwrap();
    assert_eq!(denied["type"], "grant.denied");
    assert_eq!(
        denied["decision"]["decision_id"],
        json!(answer.decision.decision_id)
    );
    assert_eq!(denied["attrs"], json!({"amount_cents": 900_000}));
}

#[test]
fn ledger_attributes_cannot_be_given() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    for attrs in [
        json!({"sensitivity": "public", "ledger.depth": 0}),
        json!({"sensitivity": "public", "ledger": {"degraded": false}}),
        json!({"sensitivity": "public", "ledger.unknown": 1}),
    ] {
        let answer = f.request(&task, "db.read", attrs.clone());
        assert!(answer.grant.is_none(), "{attrs}");
        let errors = &answer.decision.decision.errors;
        assert!(
            errors
                .iter()
                .any(|e| e.contains("is set by the ledger; a request cannot give it")),
            "{errors:?}"
        );
    }
    assert_eq!(
        f.event_types()
            .iter()
            .filter(|t| *t == "grant.denied")
            .count(),
        3
    );
}

#[test]
fn the_ledger_refuses_what_the_policy_would_allow() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let wrong_agent = f.request_as(
        &task,
        "intruder",
        "db.read",
        json!({"sensitivity": "public"}),
    );
    assert!(wrong_agent.grant.is_none());
    assert!(wrong_agent.decision.decision.rules.is_empty());
    assert_eq!(
        wrong_agent.decision.decision.errors,
        [format!(
            "agent `intruder` is not the agent of task `{}`",
            task.task_id
        )]
    );
    f.ledger.end_task("issuer", &task.task_id).unwrap();
    let closed = f.request(&task, "db.read", json!({"sensitivity": "public"}));
    assert_eq!(
        closed.decision.decision.reasons,
        [format!("task `{}` has ended", task.task_id)]
    );
}

#[test]
fn ledger_attributes_are_set_from_the_task() {
    let f = Fixture::memory();
    let root = f.open("root-agent", None);
    let child = f.open("child-agent", Some(&root.task_id));
    let grandchild = f.open("grandchild-agent", Some(&child.task_id));
    assert_eq!(grandchild.depth, 2);
    assert_eq!(grandchild.chain, ["root-agent", "child-agent"]);
    // deploy.* is denied below depth 1 ...
    let root_grant = f.issue(&root, "deploy.apply", json!({}));
    let child_grant = f.issue(&child, "deploy.apply", json!({}));
    assert_eq!(
        child_grant.parent_grant_id.as_deref(),
        Some(root_grant.grant_id.as_str())
    );
    let deep = f.request(&grandchild, "deploy.apply", json!({}));
    assert_eq!(deep.decision.decision.rules[0].id, "deploy-depth");
    // ... an agent already in its chain is refused ...
    let looped = f.open("root-agent", Some(&root.task_id));
    assert_eq!(
        f.request(&looped, "deploy.apply", json!({}))
            .decision
            .decision
            .rules[0]
            .id,
        "no-self-chain"
    );
    // ... and payments stop once the task is over an hour old.
    f.clock.advance_secs(3601);
    let late = f.request(&root, "payments.refund", json!({"amount_cents": 1}));
    assert_eq!(late.decision.decision.rules[0].id, "stale-task");
}

#[test]
fn task_grants_counts_pending_grants_and_caps_a_task() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    f.issue(&task, "payments.payout", json!({"amount_cents": 60_000}));
    for _ in 0..19 {
        f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    }
    assert_eq!(f.ledger.task(&task.task_id).unwrap().task.grants_issued, 20);
    let capped = f.request(&task, "db.read", json!({"sensitivity": "public"}));
    assert_eq!(capped.decision.decision.rules[0].id, "task-cap");
}

#[test]
fn approvals_start_the_lifetime_and_bind_the_approver() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let pending = f.issue(&task, "payments.payout", json!({"amount_cents": 70_000}));
    assert_eq!(pending.state, GrantState::Pending);
    assert_eq!(pending.approvals.required, ["payments-oncall"]);
    assert!(!f.use_(&pending).ok);
    let approve = |approver: &str, group: &str| {
        f.ledger.approve(
            "console",
            Approve {
                grant_id: pending.grant_id.clone(),
                approver: approver.into(),
                group: group.into(),
                reason: None,
            },
        )
    };
    assert!(matches!(
        approve("agent", "payments-oncall"),
        Err(LedgerError::Forbidden(_))
    ));
    assert!(matches!(
        approve("alice", "dba-oncall"),
        Err(LedgerError::Forbidden(_))
    ));
    f.clock.advance_secs(60);
    let active = approve("alice", "payments-oncall").unwrap();
    assert_eq!(active.state, GrantState::Active);
    assert_eq!(active.expires_at, common::START.plus_secs(60 + 120));
    assert!(matches!(
        approve("bob", "payments-oncall"),
        Err(LedgerError::Conflict(_))
    ));
    assert!(f.use_(&active).ok);
}

#[test]
fn an_unapproved_grant_expires_at_the_approval_timeout() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let pending = f.issue(&task, "payments.payout", json!({"amount_cents": 70_000}));
    f.clock.advance_secs(15 * 60);
    assert_eq!(
        f.ledger.grant(&pending.grant_id).unwrap().state,
        GrantState::Expired
    );
    let swept = f.ledger.sweep().unwrap();
    assert_eq!(swept.expired, std::slice::from_ref(&pending.grant_id));
    assert!(f.ledger.sweep().unwrap().expired.is_empty(), "expired once");
    let reject = f.ledger.reject(
        "console",
        Approve {
            grant_id: pending.grant_id.clone(),
            approver: "alice".into(),
            group: "payments-oncall".into(),
            reason: None,
        },
    );
    assert!(matches!(reject, Err(LedgerError::Conflict(_))));
}

#[test]
fn rejection_revokes_a_pending_grant() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let pending = f.issue(&task, "payments.payout", json!({"amount_cents": 70_000}));
    let rejected = f
        .ledger
        .reject(
            "console",
            Approve {
                grant_id: pending.grant_id.clone(),
                approver: "alice".into(),
                group: "payments-oncall".into(),
                reason: Some("not this customer".into()),
            },
        )
        .unwrap();
    assert_eq!(rejected.state, GrantState::Revoked);
    assert_eq!(
        f.event_types().last().map(String::as_str),
        Some("grant.rejected")
    );
}

#[test]
fn a_child_grant_needs_and_is_capped_by_its_parents() {
    let f = Fixture::memory();
    let root = f.open("planner", None);
    let child = f.open("executor", Some(&root.task_id));
    let orphan = f.request(&child, "deploy.plan", json!({}));
    assert_eq!(
        orphan.decision.decision.errors,
        [format!(
            "parent task `{}` holds no active grant for `deploy.plan`",
            root.task_id
        )]
    );
    let parent = f.issue(&root, "deploy.plan", json!({}));
    f.clock.advance_secs(300);
    let grant = f.issue(&child, "deploy.plan", json!({}));
    // 10m asked, but the parent ends 5m from now.
    assert_eq!(grant.expires_at, parent.expires_at);
    assert_eq!(grant.uses_left, Some(3));
    // Uses are one budget: two by the child, one by the parent: all gone.
    assert!(f.use_(&grant).ok);
    assert!(f.use_(&grant).ok);
    assert_eq!(f.ledger.grant(&parent.grant_id).unwrap().uses_left, Some(1));
    assert!(f.use_(&parent).ok);
    let refused = f.use_(&grant);
    assert!(!refused.ok);
    assert_eq!(
        refused.reason,
        Some(format!("ancestor grant `{}` is used up", parent.grant_id))
    );
    // A new child grant gets no more than the parent has left.
    let none_left = f.request(&child, "deploy.plan", json!({}));
    assert!(none_left.grant.is_none());
}

#[test]
fn revocation_cascades_down_the_tree() {
    let f = Fixture::memory();
    let root = f.open("planner", None);
    let child = f.open("executor", Some(&root.task_id));
    let grandchild = f.open("helper", Some(&child.task_id));
    let g0 = f.issue(&root, "db.read", json!({"sensitivity": "public"}));
    let g1 = f.issue(&child, "db.read", json!({"sensitivity": "public"}));
    let g2 = f.issue(&grandchild, "db.read", json!({"sensitivity": "public"}));
    let revoked = f
        .ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Grant(g0.grant_id.clone()),
                reason: "leak".into(),
                block: false,
            },
        )
        .unwrap();
    let mut ids = revoked.revoked.clone();
    ids.sort();
    let mut expected = vec![
        g0.grant_id.clone(),
        g1.grant_id.clone(),
        g2.grant_id.clone(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(!f.use_(&g2).ok);
    // Repeating writes nothing.
    let before = f.head_seq();
    let again = f
        .ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Grant(g0.grant_id.clone()),
                reason: "leak".into(),
                block: false,
            },
        )
        .unwrap();
    assert!(again.revoked.is_empty());
    assert_eq!(f.head_seq(), before);
    // Ending the root ends the whole tree.
    let ended = f.ledger.end_task("issuer", &root.task_id).unwrap();
    assert_eq!(ended.ended.len(), 3);
    assert_eq!(
        f.ledger.task(&grandchild.task_id).unwrap().task.state,
        TaskState::Ended
    );
}

#[test]
fn revoking_an_agent_blocks_it_until_unblocked() {
    let f = Fixture::memory();
    let a = f.open("rogue", None);
    let b = f.open("rogue", None);
    let grant = f.issue(&a, "db.read", json!({"sensitivity": "public"}));
    let done = f
        .ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Agent("rogue".into()),
                reason: "compromised".into(),
                block: true,
            },
        )
        .unwrap();
    assert_eq!(done.revoked, [grant.grant_id]);
    assert_eq!(done.ended.len(), 2);
    assert!(done.ended.contains(&b.task_id));
    let refused = f.ledger.open_task(
        "issuer",
        OpenTask {
            agent: "rogue".into(),
            ..OpenTask::default()
        },
    );
    assert!(
        matches!(refused, Err(LedgerError::Forbidden(_))),
        "{refused:?}"
    );
    assert!(f.ledger.unblock("admin", "rogue").unwrap());
    assert!(!f.ledger.unblock("admin", "rogue").unwrap());
    f.open("rogue", None);
}

#[test]
fn renewal_is_decided_again_and_capped() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let grant = f.issue(&task, "db.read", json!({"sensitivity": "internal"}));
    let renew = |attrs: serde_json::Value| {
        f.ledger.renew(
            "issuer",
            Renew {
                grant_id: grant.grant_id.clone(),
                agent: "agent".into(),
                attrs: attrs.as_object().cloned().unwrap_or_default(),
                ttl: None,
            },
        )
    };
    for n in 1..=2u64 {
        f.clock.advance_secs(240);
        let renewed = renew(json!({"sensitivity": "internal"})).unwrap();
        let renewed = renewed.grant.unwrap();
        assert_eq!(renewed.renewals, n);
        assert_eq!(renewed.expires_at, f.clock_now().plus_secs(300));
    }
    // A deny leaves the old expiry.
    let before = f.ledger.grant(&grant.grant_id).unwrap().expires_at;
    let denied = renew(json!({"sensitivity": "confidential"})).unwrap();
    assert!(denied.grant.is_none());
    assert_eq!(f.ledger.grant(&grant.grant_id).unwrap().expires_at, before);
    // The third renewal is ledger.renewals = 3: denied by policy.
    let third = renew(json!({"sensitivity": "internal"})).unwrap();
    assert_eq!(third.decision.decision.rules[0].id, "no-renewal-spree");
    assert_eq!(
        f.event_types()
            .iter()
            .filter(|t| *t == "grant.renew_denied")
            .count(),
        2
    );
}

#[test]
fn no_grant_outlives_the_maximum_lifetime() {
    let config = grant_ledger::LedgerConfig {
        max_grant_lifetime: 600,
        ..Default::default()
    };
    let f = Fixture::with(
        std::sync::Arc::new(grant_ledger::store::memory::MemoryStore::new()),
        "lifecycle.grant",
        config,
    );
    let task = f.open("agent", None);
    let grant = f.issue(&task, "deploy.plan", json!({}));
    f.clock.advance_secs(500);
    let renewed = f
        .ledger
        .renew(
            "issuer",
            Renew {
                grant_id: grant.grant_id.clone(),
                agent: "agent".into(),
                ..Renew::default()
            },
        )
        .unwrap()
        .grant
        .unwrap();
    assert_eq!(renewed.expires_at, grant.issued_at.plus_secs(600));
}

#[test]
fn credentials_are_bound_and_reported_on_revocation() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let grant = f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    let bind = |expires_at| {
        f.ledger.bind_credential(
            "issuer",
            BindCredential {
                grant_id: grant.grant_id.clone(),
                issuer: "sts".into(),
                credential_ref: "ASIA-123".into(),
                expires_at: Some(expires_at),
            },
        )
    };
    assert!(matches!(
        bind(grant.expires_at.plus_secs(1)),
        Err(LedgerError::Conflict(_))
    ));
    let bound = bind(grant.expires_at).unwrap();
    assert_eq!(bound.credential_refs(), ["ASIA-123"]);
    f.ledger.end_task("issuer", &task.task_id).unwrap();
    let events = f.ledger.timeline(&task.task_id).unwrap();
    let revoked = events
        .iter()
        .find(|e| e.kind == grant_ledger::EventType::GrantRevoked)
        .unwrap();
    assert_eq!(
        revoked.credential_refs.as_deref(),
        Some(&["ASIA-123".to_string()][..])
    );
}

#[test]
fn expiry_is_swept_once_and_never_after_revocation() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let short = f.issue(&task, "payments.refund", json!({"amount_cents": 1}));
    let revoked = f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    f.ledger
        .revoke(
            "security",
            Revoke {
                target: RevokeTarget::Grant(revoked.grant_id.clone()),
                reason: "x".into(),
                block: false,
            },
        )
        .unwrap();
    f.clock.advance_secs(400);
    let swept = f.ledger.sweep().unwrap();
    assert_eq!(swept.expired, std::slice::from_ref(&short.grant_id));
    assert!(f.ledger.sweep().unwrap().expired.is_empty());
    assert_eq!(
        f.event_types()
            .iter()
            .filter(|t| *t == "grant.expired")
            .count(),
        1
    );
}

#[test]
fn a_task_past_its_deadline_is_ended_by_the_sweep() {
    let f = Fixture::memory();
    let task = f
        .ledger
        .open_task(
            "issuer",
            OpenTask {
                agent: "agent".into(),
                deadline: Some(common::START.plus_secs(60)),
                ..OpenTask::default()
            },
        )
        .unwrap();
    let grant = f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    assert_eq!(
        grant.expires_at,
        common::START.plus_secs(60),
        "capped by the deadline"
    );
    let child = f
        .ledger
        .open_task(
            "issuer",
            OpenTask {
                agent: "sub".into(),
                parent_task_id: Some(task.task_id.clone()),
                deadline: Some(common::START.plus_secs(3600)),
                ..OpenTask::default()
            },
        )
        .unwrap();
    assert_eq!(
        child.deadline, task.deadline,
        "a sub-task's deadline is capped at its parent's"
    );
    f.clock.advance_secs(61);
    let swept = f.ledger.sweep().unwrap();
    assert_eq!(swept.expired, [grant.grant_id]);
    assert_eq!(swept.ended.len(), 2);
    let ended = f.ledger.task(&task.task_id).unwrap().task;
    assert_eq!(ended.end_reason.as_deref(), Some("deadline"));
}

#[test]
fn bad_input_is_an_error_and_writes_nothing() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let before = f.head_seq();
    let open = |o: OpenTask| f.ledger.open_task("issuer", o);
    let cases = [
        // A task cannot be its own parent (nor any task opened after it).
        open(OpenTask {
            agent: "a".into(),
            task_id: Some("loop".into()),
            parent_task_id: Some("loop".into()),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a".into(),
            task_id: Some(task.task_id.clone()),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a".into(),
            parent_task_id: Some("nope".into()),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a".into(),
            deadline: Some(common::START),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "".into(),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a\u{7}".into(),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a".repeat(300),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a".into(),
            labels: (0..65).map(|i| (i.to_string(), String::new())).collect(),
            ..OpenTask::default()
        }),
        open(OpenTask {
            agent: "a".into(),
            labels: [("k".into(), "v".repeat(2000))].into(),
            ..OpenTask::default()
        }),
    ];
    let kinds: Vec<String> = cases
        .iter()
        .map(|c| format!("{:?}", c.as_ref().err().map(std::mem::discriminant)))
        .collect();
    assert!(cases.iter().all(Result::is_err), "{cases:?}");
    assert!(
        matches!(cases[0], Err(LedgerError::NotFound { .. })),
        "{kinds:?}"
    );
    assert!(
        matches!(cases[1], Err(LedgerError::Conflict(_))),
        "{kinds:?}"
    );
    assert!(matches!(cases[2], Err(LedgerError::NotFound { .. })));
    assert!(matches!(cases[3], Err(LedgerError::Invalid(_))));
    let unknown_grant = f.ledger.use_grant(
        "gateway",
        UseGrant {
            grant_id: "grant_nope".into(),
            agent: "agent".into(),
            tool: "db.read".into(),
            attrs: None,
        },
    );
    assert_eq!(
        unknown_grant.unwrap_err().to_string(),
        "no grant `grant_nope`"
    );
    let huge = serde_json::json!({"sensitivity": "x".repeat(2 << 20)});
    let oversized = f.ledger.request_grant(
        "issuer",
        grant_ledger::RequestGrant {
            task_id: task.task_id.clone(),
            agent: "agent".into(),
            tool: "db.read".into(),
            attrs: huge.as_object().cloned().unwrap(),
            ttl: None,
        },
    );
    assert!(
        matches!(oversized, Err(LedgerError::Invalid(_))),
        "{oversized:?}"
    );
    assert_eq!(f.head_seq(), before);
}

#[test]
fn a_new_policy_is_recorded_and_decides_from_then_on() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let old_hash = f.ledger.engine().policy_hash().to_string();
    let engine =
        grant_engine::Engine::from_text("p.grant", "allow tool \"db.read\" ttl 1m").unwrap();
    let new_hash = engine.policy_hash().to_string();
    f.ledger.set_policy(engine, "admin").unwrap();
    let grant = f.issue(&task, "db.read", json!({}));
    assert_eq!(grant.ttl_seconds, 60);
    assert_eq!(grant.policy_hash, new_hash);
    let events = f.ledger.events_after(0, 100).unwrap();
    let parsed: Vec<grant_ledger::Event> = events
        .iter()
        .map(|e| serde_json::from_str(&e.json).unwrap())
        .collect();
    assert_eq!(parsed[1].policy_hash, old_hash);
    assert_eq!(parsed[2].kind, grant_ledger::EventType::PolicyActivated);
    assert_eq!(parsed[3].policy_hash, new_hash);
}

#[test]
fn the_chain_links_every_event() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    let events = f.ledger.events_after(0, 100).unwrap();
    let mut prev = grant_ledger::chain::GENESIS.to_string();
    for (i, stored) in events.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(&stored.json).unwrap();
        assert_eq!(stored.seq, i as u64 + 1);
        assert_eq!(value["prev_hash"], json!(prev));
        assert_eq!(grant_ledger::chain::event_hash(&value), stored.hash);
        assert_eq!(
            grant_ledger::jcs::to_string(&value),
            stored.json,
            "stored canonical"
        );
        prev = stored.hash.clone();
    }
}

trait ClockNow {
    fn clock_now(&self) -> grant_ledger::Timestamp;
}

impl ClockNow for Fixture {
    fn clock_now(&self) -> grant_ledger::Timestamp {
        use grant_ledger::Clock;
        self.clock.now()
    }
}

#[test]
fn a_use_with_attributes_is_decided_again() {
    let f = Fixture::memory();
    let task = f.open("agent", None);
    let grant = f.issue(&task, "db.read", json!({"sensitivity": "public"}));
    let use_with = |attrs: serde_json::Value| {
        f.ledger
            .use_grant(
                "gateway",
                UseGrant {
                    grant_id: grant.grant_id.clone(),
                    agent: "agent".into(),
                    tool: "db.read".into(),
                    attrs: attrs.as_object().cloned(),
                },
            )
            .unwrap()
    };
    let refused = use_with(json!({"sensitivity": "confidential"}));
    assert!(!refused.ok);
    assert_eq!(refused.decision.as_ref().map(|d| d.is_allow()), Some(false));
    let allowed = use_with(json!({"sensitivity": "internal"}));
    assert!(allowed.ok);
    assert_eq!(allowed.decision.unwrap().decision.rules[0].id, "db-read");
    let forged = use_with(json!({"sensitivity": "public", "ledger.degraded": true}));
    assert!(!forged.ok);
    // The grant stays as it was after a refused use.
    assert_eq!(
        f.ledger.grant(&grant.grant_id).unwrap().state,
        GrantState::Active
    );
    let types = f.event_types();
    assert_eq!(
        &types[types.len() - 3..],
        ["grant.use_refused", "grant.used", "grant.use_refused"]
    );
}

#[test]
fn a_preview_decides_as_the_request_would_and_writes_nothing() {
    let f = Fixture::memory();
    let root = f.open("planner", None);
    let child = f.open("executor", Some(&root.task_id));
    let ask = |task: &grant_ledger::Task, tool: &str, attrs: serde_json::Value| {
        grant_ledger::RequestGrant {
            task_id: task.task_id.clone(),
            agent: task.agent.clone(),
            tool: tool.into(),
            attrs: attrs.as_object().cloned().unwrap_or_default(),
            ttl: None,
        }
    };
    let cases = [
        ask(&root, "db.read", json!({"sensitivity": "internal"})),
        ask(&root, "db.read", json!({"sensitivity": "confidential"})),
        ask(&child, "deploy.plan", json!({})),
        ask(&root, "payments.payout", json!({"amount_cents": 90_000})),
        ask(&root, "db.read", json!({"ledger.depth": 0})),
    ];
    for request in cases {
        let before = f.head_seq();
        let preview = f.ledger.preview(&request).unwrap();
        assert_eq!(f.head_seq(), before, "a preview records nothing");
        let answer = f.ledger.request_grant("issuer", request.clone()).unwrap();
        let strip = |d: &grant_ledger::LedgerDecision| d.decision.clone();
        assert_eq!(strip(&preview), strip(&answer.decision), "{request:?}");
    }
}

#[test]
fn ending_a_task_records_an_unswept_expired_grant_as_expired_not_revoked() {
    let f = Fixture::memory();
    let task = f.open("spiffe://prod/support", None);
    let expired = f.issue(&task, "db.read", json!({"sensitivity": "internal"}));
    f.clock.advance_secs(expired.ttl_seconds);
    let live = f.issue(&task, "db.read", json!({"sensitivity": "internal"}));
    let ended = f.ledger.end_task("issuer", &task.task_id).unwrap();
    assert_eq!(ended.revoked, std::slice::from_ref(&live.grant_id));
    let mut trail: Vec<(String, Option<String>)> = f
        .ledger
        .timeline(&task.task_id)
        .unwrap()
        .into_iter()
        .skip(3)
        .map(|e| (e.kind.as_str().to_string(), e.grant_id))
        .collect();
    // The task's grants are visited in the store's order.
    trail[..2].sort();
    assert_eq!(
        trail,
        [
            ("grant.expired".to_string(), Some(expired.grant_id.clone())),
            ("grant.revoked".to_string(), Some(live.grant_id.clone())),
            ("task.ended".to_string(), None),
        ]
    );
    assert_eq!(
        f.ledger.grant(&expired.grant_id).unwrap().state,
        GrantState::Expired
    );
    // The sweep finds nothing left to expire: one `grant.expired` per grant.
    assert!(f.ledger.sweep().unwrap().expired.is_empty());
}
