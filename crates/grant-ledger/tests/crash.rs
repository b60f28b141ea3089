//! Nothing acknowledged is lost: a child process issues grants in a loop on
//! a SQLite ledger and prints each grant id once `request_grant` answered;
//! it is killed with SIGKILL mid-loop. Every printed grant is in the store,
//! and the chain is intact.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grant_ledger::{Ledger, OpenTask, RequestGrant};

const CHILD_ENV: &str = "GRANT_CRASH_CHILD_STORE";

/// The child: not a test of its own (it returns at once without the
/// variable); the parent runs this binary filtered to it.
#[test]
fn crash_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = grant_ledger::store::open(&url).unwrap();
    let ledger = Ledger::open(store, common::policy("lifecycle.grant")).unwrap();
    let mut out = std::io::stdout().lock();
    // Several tasks, as the 20-grant cap per task in the policy requires.
    for round in 0.. {
        let task = ledger
            .open_task(
                "crash",
                OpenTask {
                    agent: format!("agent-{round}"),
                    ..Default::default()
                },
            )
            .unwrap();
        for _ in 0..19 {
            let answer = ledger
                .request_grant(
                    "crash",
                    RequestGrant {
                        task_id: task.task_id.clone(),
                        agent: task.agent.clone(),
                        tool: "db.read".into(),
                        attrs: serde_json::json!({"sensitivity": "public"})
                            .as_object()
                            .cloned()
                            .unwrap(),
                        ttl: None,
                    },
                )
                .unwrap();
            writeln!(out, "{}", answer.grant.unwrap().grant_id).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn every_answered_grant_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("ledger.db").display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answered = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    // Kill it mid-loop: after a few hundred answers, or 20 s at most.
    while answered.len() < 300 && started.elapsed() < Duration::from_secs(20) {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("grant_") => answered.push(line),
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Answers printed after the last read but before the kill count too.
    answered.extend(
        lines
            .map_while(Result::ok)
            .filter(|l| l.starts_with("grant_")),
    );
    assert!(
        answered.len() >= 50,
        "the child answered only {} grants",
        answered.len()
    );

    let store = grant_ledger::store::open(&url).unwrap();
    let ledger = Ledger::open(Arc::clone(&store), common::policy("lifecycle.grant")).unwrap();
    for grant_id in &answered {
        ledger
            .grant(grant_id)
            .unwrap_or_else(|e| panic!("answered grant {grant_id} is lost: {e}"));
    }
    common::assert_chain_intact(&ledger);
}
