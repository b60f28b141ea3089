//! What the ledger's tests share: a ledger over a store on a manual clock,
//! under a policy file of tests/policies/.
#![allow(dead_code)]

pub mod places;
pub mod scenarios;

use std::sync::Arc;

use grant_engine::Engine;
use grant_ledger::{
    Grant, GrantAnswer, Ledger, LedgerConfig, ManualClock, OpenTask, RequestGrant, Store, Task,
    Timestamp, UseAnswer, UseGrant,
};

/// 2026-11-29T20:00:00Z.
pub const START: Timestamp = Timestamp::from_secs(1_795_982_400);

pub fn policy(name: &str) -> Engine {
    let path = format!("{}/tests/policies/{name}", env!("CARGO_MANIFEST_DIR"));
    Engine::from_path(&path).unwrap_or_else(|e| panic!("{path}: {}", e.report(false)))
}

pub struct Fixture {
    pub ledger: Ledger,
    pub clock: ManualClock,
}

impl Fixture {
    pub fn new(store: Arc<dyn Store>) -> Fixture {
        Fixture::with(store, "lifecycle.grant", LedgerConfig::default())
    }

    pub fn memory() -> Fixture {
        Fixture::new(Arc::new(grant_ledger::store::memory::MemoryStore::new()))
    }

    pub fn with(store: Arc<dyn Store>, policy_file: &str, config: LedgerConfig) -> Fixture {
        let clock = ManualClock::new(START);
        let ledger =
            Ledger::with(store, policy(policy_file), Arc::new(clock.clone()), config).unwrap();
        Fixture { ledger, clock }
    }

    pub fn open(&self, agent: &str, parent: Option<&str>) -> Task {
        self.ledger
            .open_task(
                "issuer",
                OpenTask {
                    agent: agent.into(),
                    parent_task_id: parent.map(Into::into),
                    ..OpenTask::default()
                },
            )
            .unwrap()
    }

    pub fn request(&self, task: &Task, tool: &str, attrs: serde_json::Value) -> GrantAnswer {
        self.request_as(task, &task.agent, tool, attrs)
    }

    pub fn request_as(
        &self,
        task: &Task,
        agent: &str,
        tool: &str,
        attrs: serde_json::Value,
    ) -> GrantAnswer {
        let attrs = attrs.as_object().cloned().unwrap_or_default();
        self.ledger
            .request_grant(
                "issuer",
                RequestGrant {
                    task_id: task.task_id.clone(),
                    agent: agent.into(),
                    tool: tool.into(),
                    attrs,
                    ttl: None,
                },
            )
            .unwrap()
    }

    pub fn issue(&self, task: &Task, tool: &str, attrs: serde_json::Value) -> Grant {
        let answer = self.request(task, tool, attrs);
        answer
            .grant
            .unwrap_or_else(|| panic!("denied: {:?}", answer.decision))
    }

    pub fn use_(&self, grant: &Grant) -> UseAnswer {
        self.ledger
            .use_grant(
                "gateway",
                UseGrant {
                    grant_id: grant.grant_id.clone(),
                    agent: grant.agent.clone(),
                    tool: grant.tool.clone(),
                    attrs: None,
                },
            )
            .unwrap()
    }

    pub fn event_types(&self) -> Vec<String> {
        self.ledger
            .events_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub fn head_seq(&self) -> u64 {
        self.ledger
            .events_after(0, usize::MAX)
            .unwrap()
            .last()
            .map_or(0, |e| e.seq)
    }
}

/// The chain verifies as `grant audit verify` checks it: every event in
/// place, linked, hashing to its `hash`.
pub fn assert_chain_intact(ledger: &Ledger) {
    let verification = grant_ledger::chain::verify(ledger.store().as_ref(), &[], None).unwrap();
    assert!(verification.is_intact(), "{:?}", verification.problem);
    assert!(verification.events > 0);
}
