//! Measures a store's durable commits per second from one thread: each
//! write reads the head, appends one sealed event and puts one task, as a
//! ledger operation does.
//!
//! `cargo run --release -p grant-ledger --example store_commits -- URL [N]`
//! (URL as `store::open` takes it: `sqlite:/tmp/x.db`, `postgres://...`).

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)] // a measuring tool, not the library

use std::collections::BTreeMap;
use std::time::Instant;

use grant_ledger::{Event, Task, TaskState, Timestamp, chain, store};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: store_commits URL [N]  (URL: memory, sqlite:PATH, postgres://...)");
    let n: u64 = args
        .next()
        .map_or(500, |n| n.parse().expect("N is a count"));
    let store = store::open(&url).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    for i in 0..n {
        store
            .write(&mut |tx| {
                let head = tx.head()?;
                let task_id = format!("t-{i}");
                let mut event: Event = serde_json::from_value(serde_json::json!({
                    "seq": 0, "event_id": format!("ev-{i}"), "time": "2026-11-29T20:00:00Z",
                    "type": "task.opened", "actor": "bench", "policy_hash": "sha256:0",
                    "task_id": task_id, "prev_hash": "",
                }))
                .unwrap();
                tx.append(&chain::seal(&mut event, head.as_ref()).unwrap())?;
                tx.put_task(&Task {
                    task_id,
                    agent: "bench".to_string(),
                    parent_task_id: None,
                    depth: 0,
                    chain: Vec::new(),
                    opened_at: Timestamp::from_secs(0),
                    deadline: None,
                    state: TaskState::Open,
                    labels: BTreeMap::new(),
                    grants_issued: 0,
                    ended_at: None,
                    end_reason: None,
                })
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let elapsed = started.elapsed();
    println!(
        "{}: {n} writes in {:.2?}: {:.0} commits/s, {:.2} ms each",
        store.describe(),
        elapsed,
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / n as f64
    );
}
