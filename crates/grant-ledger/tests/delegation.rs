//! Delegation, as a property: over random trees of tasks and random
//! sequences of operations and clock steps, no grant is ever active past an
//! ancestor's expiry or revocation, no child holds a tool its parent does
//! not, and no use goes through that its ancestors could not pay for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::Fixture;
use grant_ledger::store::Store;
use grant_ledger::store::memory::MemoryStore;
use grant_ledger::{
    Approve, Grant, GrantState, LedgerConfig, OpenTask, Renew, Revoke, RevokeTarget, Task,
    TaskState,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    OpenRoot,
    OpenSub(usize),
    Request(usize, usize),
    Use(usize),
    Renew(usize),
    Approve(usize),
    RevokeGrant(usize),
    RevokeTask(usize),
    EndTask(usize),
    Advance(u64),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::OpenRoot),
        3 => any::<usize>().prop_map(Op::OpenSub),
        6 => (any::<usize>(), 0..3usize).prop_map(|(t, tool)| Op::Request(t, tool)),
        5 => any::<usize>().prop_map(Op::Use),
        2 => any::<usize>().prop_map(Op::Renew),
        2 => any::<usize>().prop_map(Op::Approve),
        1 => any::<usize>().prop_map(Op::RevokeGrant),
        1 => any::<usize>().prop_map(Op::RevokeTask),
        1 => any::<usize>().prop_map(Op::EndTask),
        3 => (1..200u64).prop_map(Op::Advance),
        1 => Just(Op::Sweep),
    ]
}

const TOOLS: [&str; 3] = ["tool.a", "tool.b", "tool.c"];

fn pick<T: Clone>(items: &[T], at: usize) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        items.get(at % items.len()).cloned()
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let f = Fixture::with(
        Arc::clone(&store),
        "delegation.grant",
        LedgerConfig::default(),
    );
    let mut tasks: Vec<Task> = vec![f.open("agent-0", None)];
    let mut grants: Vec<Grant> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::OpenRoot => tasks.push(f.open(&format!("agent-{step}"), None)),
            Op::OpenSub(at) => {
                let parent = pick(&tasks, *at).unwrap();
                let open = OpenTask {
                    agent: format!("agent-{step}"),
                    parent_task_id: Some(parent.task_id.clone()),
                    ..OpenTask::default()
                };
                if let Ok(task) = f.ledger.open_task("t", open) {
                    tasks.push(task);
                }
            }
            Op::Request(at, tool) => {
                let task = pick(&tasks, *at).unwrap();
                if let Some(grant) = f.request(&task, TOOLS[*tool], serde_json::json!({})).grant {
                    grants.push(grant);
                }
            }
            Op::Use(at) => {
                if let Some(grant) = pick(&grants, *at) {
                    let before = ancestry(&f, &grant);
                    let answer = f.use_(&grant);
                    if answer.ok {
                        // Every grant up the chain was usable when it went through.
                        for g in &before {
                            prop_assert!(
                                g.usable_at(now(&f)),
                                "used through unusable {}",
                                g.grant_id
                            );
                        }
                    }
                }
            }
            Op::Renew(at) => {
                if let Some(grant) = pick(&grants, *at) {
                    let renew = Renew {
                        grant_id: grant.grant_id.clone(),
                        agent: grant.agent.clone(),
                        ..Renew::default()
                    };
                    f.ledger.renew("t", renew).unwrap();
                }
            }
            Op::Approve(at) => {
                if let Some(grant) = pick(&grants, *at) {
                    let approve = Approve {
                        grant_id: grant.grant_id.clone(),
                        approver: "human".into(),
                        group: "ops".into(),
                        reason: None,
                    };
                    let _ = f.ledger.approve("t", approve);
                }
            }
            Op::RevokeGrant(at) => {
                if let Some(grant) = pick(&grants, *at) {
                    let revoke = Revoke {
                        target: RevokeTarget::Grant(grant.grant_id),
                        reason: "p".into(),
                        block: false,
                    };
                    f.ledger.revoke("t", revoke).unwrap();
                }
            }
            Op::RevokeTask(at) => {
                let task = pick(&tasks, *at).unwrap();
                let revoke = Revoke {
                    target: RevokeTarget::Task(task.task_id),
                    reason: "p".into(),
                    block: false,
                };
                f.ledger.revoke("t", revoke).unwrap();
            }
            Op::EndTask(at) => {
                let task = pick(&tasks, *at).unwrap();
                f.ledger.end_task("t", &task.task_id).unwrap();
            }
            Op::Advance(seconds) => f.clock.advance_secs(*seconds),
            Op::Sweep => {
                f.ledger.sweep().unwrap();
            }
        }
        check_invariants(&f, &grants)?;
    }
    Ok(())
}

fn now(f: &Fixture) -> grant_ledger::Timestamp {
    use grant_ledger::Clock;
    f.clock.now()
}

/// `grant` and its ancestors, as stored now.
fn ancestry(f: &Fixture, grant: &Grant) -> Vec<Grant> {
    let mut chain = vec![f.ledger.grant(&grant.grant_id).unwrap()];
    while let Some(parent) = chain.last().and_then(|g| g.parent_grant_id.clone()) {
        chain.push(f.ledger.grant(&parent).unwrap());
    }
    chain
}

fn check_invariants(f: &Fixture, grants: &[Grant]) -> Result<(), TestCaseError> {
    let now = now(f);
    for grant in grants {
        let grant = f.ledger.grant(&grant.grant_id).unwrap();
        let task = f.ledger.task(&grant.task_id).unwrap().task;
        if task.state == TaskState::Ended {
            prop_assert!(
                !grant.state.is_live(),
                "{} is live in ended task {}",
                grant.grant_id,
                task.task_id
            );
        }
        if let Some(deadline) = task.deadline {
            prop_assert!(grant.expires_at <= deadline);
        }
        if grant.state != GrantState::Active {
            continue;
        }
        match &task.parent_task_id {
            None => prop_assert!(grant.parent_grant_id.is_none()),
            Some(parent_task) => {
                let parent_id = grant.parent_grant_id.clone();
                prop_assert!(
                    parent_id.is_some(),
                    "child grant {} has no parent grant",
                    grant.grant_id
                );
                let parent = f.ledger.grant(&parent_id.unwrap_or_default()).unwrap();
                prop_assert_eq!(
                    &parent.task_id,
                    parent_task,
                    "capped by a grant of its parent task"
                );
                prop_assert_eq!(
                    &parent.tool,
                    &grant.tool,
                    "no child holds a tool its parent does not"
                );
                prop_assert!(
                    grant.expires_at <= parent.expires_at,
                    "outlives its parent grant"
                );
                prop_assert!(
                    parent.state != GrantState::Revoked,
                    "{} active under revoked {}",
                    grant.grant_id,
                    parent.grant_id
                );
                prop_assert!(
                    matches!(parent.state, GrantState::Active | GrantState::Exhausted),
                    "{:?}",
                    parent.state
                );
                let _ = now;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn no_grant_outlives_or_outreaches_its_ancestors(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}
