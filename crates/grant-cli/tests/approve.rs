//! `grant approve` and `grant reject`, the built binary on SQLite ledgers
//! whose pending grants the ledger library made: the grant becomes active
//! (or stays pending for the other groups, or is revoked), the chain stays
//! intact, and every refusal is one line with its exit status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};

use grant_engine::Engine;
use grant_ledger::{GrantState, Ledger, OpenTask, RequestGrant, UseGrant};
use support::{binary, scratch};

const AGENT: &str = "spiffe://prod/payouts";

const POLICY: &str = r#"
attr amount_cents: int
allow tool "payments.payout" when amount_cents > 50_000 ttl 2m uses 1 approval "payments-oncall"
allow tool "deploy.prod" ttl 10m approval "ops"
allow tool "deploy.prod" ttl 10m approval "security"
"#;

fn engine() -> Engine {
    Engine::from_text("approve.grant", POLICY).unwrap()
}

/// A SQLite ledger with a task of `AGENT` and two pending grants: a payout
/// (needs `payments-oncall`) and a deploy (needs `ops` and `security`).
struct Pending {
    dir: PathBuf,
    store: String,
    task: String,
    payout: String,
    deploy: String,
}

impl Pending {
    fn new(name: &str) -> Pending {
        let dir = scratch(&format!("approve-{name}"));
        let store = format!("sqlite:{}", dir.join("ledger.db").display());
        let ledger = Ledger::open(grant_ledger::store::open(&store).unwrap(), engine()).unwrap();
        let task = ledger
            .open_task(
                "issuer",
                OpenTask {
                    agent: AGENT.into(),
                    ..OpenTask::default()
                },
            )
            .unwrap();
        let request = |tool: &str, attrs: serde_json::Value| {
            let grant = ledger
                .request_grant(
                    "issuer",
                    RequestGrant {
                        task_id: task.task_id.clone(),
                        agent: AGENT.into(),
                        tool: tool.into(),
                        attrs: attrs.as_object().cloned().unwrap(),
                        ttl: None,
                    },
                )
                .unwrap()
                .grant
                .unwrap();
            assert_eq!(grant.state, GrantState::Pending);
            grant.grant_id
        };
        let payout = request(
            "payments.payout",
            serde_json::json!({"amount_cents": 70_000}),
        );
        let deploy = request("deploy.prod", serde_json::json!({}));
        Pending {
            dir,
            store,
            task: task.task_id,
            payout,
            deploy,
        }
    }

    /// A deciding ledger on the file again (the same policy: no new
    /// `policy.activated`).
    fn ledger(&self) -> Ledger {
        Ledger::open(grant_ledger::store::open(&self.store).unwrap(), engine()).unwrap()
    }

    /// `grant VERB --store S GRANT --group G --approver A` and `extra`.
    fn run(
        &self,
        verb: &str,
        grant: &str,
        group: &str,
        approver: &str,
        extra: &[&str],
    ) -> (Option<i32>, String, String) {
        let mut args = vec![
            verb,
            "--store",
            &self.store,
            grant,
            "--group",
            group,
            "--approver",
            approver,
        ];
        args.extend_from_slice(extra);
        binary(&args)
    }

    /// Every event's `type`, `actor` and `policy_hash`.
    fn events(&self) -> Vec<serde_json::Value> {
        self.ledger()
            .events_after(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str(&e.json).unwrap())
            .collect()
    }

    fn verify(&self) {
        let (code, stdout, stderr) = binary(&["audit", "verify", "--store", &self.store]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn approve_makes_a_pending_grant_active() {
    let p = Pending::new("active");
    let (code, stdout, stderr) = p.run(
        "approve",
        &p.payout,
        "payments-oncall",
        "alice",
        &["--reason", "ticket 42"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let prefix = format!(
        "approved {} (group payments-oncall, by alice): active until ",
        p.payout
    );
    assert!(
        stdout.starts_with(&prefix) && stdout.ends_with("Z, 1 use\n"),
        "{stdout}"
    );

    let ledger = p.ledger();
    let grant = ledger.grant(&p.payout).unwrap();
    assert_eq!(grant.state, GrantState::Active);
    assert_eq!(grant.approvals.granted[0].approver, "alice");
    let used = ledger
        .use_grant(
            "gateway",
            UseGrant {
                grant_id: p.payout.clone(),
                agent: AGENT.into(),
                tool: "payments.payout".into(),
                attrs: None,
            },
        )
        .unwrap();
    assert!(used.ok, "{used:?}");

    let events = p.events();
    let hash = engine().policy_hash().to_string();
    assert!(events.iter().all(|e| e["policy_hash"] == hash.as_str()));
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "policy.activated",
            "task.opened",
            "grant.pending",
            "grant.pending",
            "grant.approved",
            "grant.used"
        ]
    );
    let approved = &events[4];
    assert_eq!(approved["actor"], "alice");
    assert_eq!(approved["approver"], "alice");
    assert_eq!(approved["group"], "payments-oncall");
    assert_eq!(approved["reason"], "ticket 42");
    p.verify();
}

#[test]
fn a_grant_needing_two_groups_stays_pending_after_one() {
    let p = Pending::new("two-groups");
    let (code, stdout, stderr) = p.run("approve", &p.deploy, "ops", "bob", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "approved {} (group ops, by bob): still pending: needs security\n",
            p.deploy
        )
    );
    let (code, stdout, stderr) = p.run(
        "approve",
        &p.deploy,
        "security",
        "carol",
        &["--format", "json"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let grant: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(grant["grant_id"], p.deploy.as_str());
    assert_eq!(grant["state"], "active");
    assert_eq!(
        grant["approvals"]["required"],
        serde_json::json!(["ops", "security"])
    );
    assert_eq!(grant["approvals"]["granted"][1]["approver"], "carol");
    assert_eq!(
        p.ledger().grant(&p.deploy).unwrap().state,
        GrantState::Active
    );
    p.verify();
}

#[test]
fn reject_revokes_a_pending_grant() {
    let p = Pending::new("reject");
    let (code, stdout, stderr) = p.run(
        "reject",
        &p.payout,
        "payments-oncall",
        "alice",
        &["--reason", "not this customer"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "rejected {} (group payments-oncall, by alice): revoked\n",
            p.payout
        )
    );
    assert_eq!(
        p.ledger().grant(&p.payout).unwrap().state,
        GrantState::Revoked
    );
    let events = p.events();
    let rejected = events.last().unwrap();
    assert_eq!(rejected["type"], "grant.rejected");
    assert_eq!(rejected["reason"], "not this customer");
    p.verify();
}

/// Every refusal and bad input: one `error:` line on stderr, nothing on
/// stdout, nothing written, and its exit status.
#[test]
fn refusals_are_one_line_and_write_nothing() {
    let p = Pending::new("refusals");
    let (code, _, stderr) = p.run("approve", &p.deploy, "ops", "bob", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = p.run("approve", &p.payout, "payments-oncall", "alice", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let before = p.events().len();

    let empty = p.dir.join("empty.db");
    drop(grant_ledger::store::open(&format!("sqlite:{}", empty.display())).unwrap());
    let empty = format!("sqlite:{}", empty.display());
    let missing = format!("sqlite:{}", p.dir.join("missing.db").display());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "unknown grant",
            vec![
                "approve",
                "--store",
                &p.store,
                "grant_unknown",
                "--group",
                "ops",
                "--approver",
                "bob",
            ],
        ),
        (
            "a group the grant does not need",
            vec![
                "approve",
                "--store",
                &p.store,
                &p.deploy,
                "--group",
                "dba",
                "--approver",
                "bob",
            ],
        ),
        (
            "a group that approved already",
            vec![
                "approve",
                "--store",
                &p.store,
                &p.deploy,
                "--group",
                "ops",
                "--approver",
                "dave",
            ],
        ),
        (
            "the approver is the agent",
            vec![
                "approve",
                "--store",
                &p.store,
                &p.deploy,
                "--group",
                "security",
                "--approver",
                AGENT,
            ],
        ),
        (
            "a grant no longer pending",
            vec![
                "reject",
                "--store",
                &p.store,
                &p.payout,
                "--group",
                "payments-oncall",
                "--approver",
                "bob",
            ],
        ),
        (
            "an empty approver",
            vec![
                "approve",
                "--store",
                &p.store,
                &p.deploy,
                "--group",
                "security",
                "--approver",
                "",
            ],
        ),
        (
            "a store that recorded no policy",
            vec![
                "approve",
                "--store",
                &empty,
                &p.deploy,
                "--group",
                "security",
                "--approver",
                "bob",
            ],
        ),
        (
            "no such file",
            vec![
                "approve",
                "--store",
                &missing,
                &p.deploy,
                "--group",
                "security",
                "--approver",
                "bob",
            ],
        ),
        (
            "the memory store",
            vec![
                "approve",
                "--store",
                "memory",
                &p.deploy,
                "--group",
                "security",
                "--approver",
                "bob",
            ],
        ),
    ];
    let mut report = String::new();
    for (what, args) in &cases {
        let (code, stdout, stderr) = binary(args);
        assert_eq!(stdout, "", "{what}");
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
        report.push_str(&format!("{what}: exit {}\n{stderr}\n", code.unwrap()));
    }
    let report = redact(
        &report,
        &p.dir,
        &[(&p.deploy, "[deploy]"), (&p.payout, "[payout]")],
    );
    insta::assert_snapshot!(report);
    assert_eq!(p.events().len(), before, "a refusal writes nothing");
    assert_eq!(
        p.ledger().task(&p.task).unwrap().grants.len(),
        2,
        "the store is as it was"
    );
    p.verify();
}

fn redact(text: &str, dir: &Path, ids: &[(&str, &str)]) -> String {
    let mut text = text.replace(&dir.display().to_string(), "[dir]");
    for (id, name) in ids {
        text = text.replace(id, name);
    }
    text
}
