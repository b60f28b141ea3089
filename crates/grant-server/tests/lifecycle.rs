//! A grant's whole life over HTTP: a two-level multi-agent chain, a
//! `uses 1` grant raced from 32 connections, approval, renewal, a
//! revocation cascade, expiry, and the timeline that records it all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn id(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_string()
}

#[test]
fn a_two_level_chain_is_capped_and_revoked_as_one() {
    let server = TestServer::start("service.grant");
    let (_, root) = post(&server, "/v1/tasks", &json!({"agent": "planner"}));
    let (status, root_grant) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": root["task_id"], "agent": "planner", "tool": "delegated.search", "ttl": "1m"}),
    );
    assert_eq!(status, 201, "{root_grant}");
    let (status, child) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "worker", "parent_task_id": root["task_id"]}),
    );
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["depth"], 1);
    let (status, child_grant) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": child["task_id"], "agent": "worker", "tool": "delegated.search"}),
    );
    assert_eq!(status, 201, "{child_grant}");
    let child_grant = &child_grant["grant"];
    assert_eq!(
        child_grant["parent_grant_id"],
        root_grant["grant"]["grant_id"]
    );
    // Capped by its parent: asked 5m by the policy, the parent lives 1m.
    assert!(
        child_grant["expires_at"].as_str().unwrap()
            <= root_grant["grant"]["expires_at"].as_str().unwrap(),
        "{child_grant}"
    );
    // A third level is denied by policy (`ledger.depth > 1`).
    let (_, grandchild) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "helper", "parent_task_id": child["task_id"]}),
    );
    let (status, denied) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": grandchild["task_id"], "agent": "helper", "tool": "delegated.search"}),
    );
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["decision"]["rules"][0]["id"], "deep");

    // Revoking the root grant revokes the child's.
    let (status, revoked) = post(
        &server,
        "/v1/revoke",
        &json!({"grant_id": root_grant["grant"]["grant_id"], "reason": "task done"}),
    );
    assert_eq!(status, 200, "{revoked}");
    let revoked: Vec<&str> = revoked["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        revoked.contains(&child_grant["grant_id"].as_str().unwrap()),
        "{revoked:?}"
    );
    let (_, read) = get(
        &server,
        &format!("/v1/grants/{}", id(child_grant, "grant_id")),
    );
    assert_eq!(read["state"], "revoked");
    let (status, refused) = post(
        &server,
        &format!("/v1/grants/{}/use", id(child_grant, "grant_id")),
        &json!({"agent": "worker", "tool": "delegated.search"}),
    );
    assert_eq!(status, 403, "{refused}");

    // The root's timeline holds the sub-tasks' events too, in order.
    let (_, timeline) = get(
        &server,
        &format!("/v1/tasks/{}/timeline", id(&root, "task_id")),
    );
    let types: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "task.opened",
            "grant.issued",
            "task.opened",
            "grant.issued",
            "task.opened",
            "grant.denied",
            "grant.revoked",
            "grant.revoked",
            "grant.use_refused"
        ],
        "{timeline}"
    );
    let seqs: Vec<u64> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_uses_1_grant_raced_from_32_connections_is_used_once() {
    let server = TestServer::start_with("service.grant", |s| s.store = "memory".to_string());
    let (_, task) = post(&server, "/v1/tasks", &json!({"agent": "a1"}));
    let (_, grant) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": task["task_id"], "agent": "a1", "tool": "db.write", "attrs": {"env": "dev"}}),
    );
    let url = server.url(&format!(
        "/v1/grants/{}/use",
        id(&grant["grant"], "grant_id")
    ));
    let barrier = Arc::new(Barrier::new(32));
    let racers: Vec<_> = (0..32)
        .map(|_| {
            let url = url.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                // One connection each, all made before the race starts.
                let client = client();
                barrier.wait();
                client
                    .post(url)
                    .json(&json!({"agent": "a1", "tool": "db.write"}))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        31,
        "{statuses:?}"
    );
}

#[test]
fn approval_renewal_and_expiry() {
    let server = TestServer::start_with("service.grant", |s| {
        s.sweep_interval = Duration::from_millis(100);
    });
    let (_, task) = post(&server, "/v1/tasks", &json!({"agent": "a1"}));
    let task_id = id(&task, "task_id");
    let (_, pending) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": task_id, "agent": "a1", "tool": "deploy.web"}),
    );
    let pending_id = id(&pending["grant"], "grant_id");
    let use_path = format!("/v1/grants/{pending_id}/use");
    let (status, refused) = post(
        &server,
        &use_path,
        &json!({"agent": "a1", "tool": "deploy.web"}),
    );
    assert_eq!(status, 403, "a pending grant is not usable: {refused}");
    let (status, _) = post(
        &server,
        &format!("/v1/grants/{pending_id}/approve"),
        &json!({"group": "sre", "approver": "carol"}),
    );
    assert_eq!(status, 200);
    let (status, used) = post(
        &server,
        &use_path,
        &json!({"agent": "a1", "tool": "deploy.web"}),
    );
    assert_eq!(status, 200, "{used}");

    let (status, renewed) = post(
        &server,
        &format!("/v1/grants/{pending_id}/renew"),
        &json!({"agent": "a1"}),
    );
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["grant"]["renewals"], 1);

    // A 2 s grant expires, and the sweep records it.
    let (_, short) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": task_id, "agent": "a1", "tool": "short.lived"}),
    );
    let short_id = id(&short["grant"], "grant_id");
    assert_eq!(short["grant"]["ttl_seconds"], 2);
    std::thread::sleep(Duration::from_millis(2300));
    let (status, refused) = post(
        &server,
        &format!("/v1/grants/{short_id}/use"),
        &json!({"agent": "a1", "tool": "short.lived"}),
    );
    assert_eq!(status, 403, "{refused}");
    let (_, read) = get(&server, &format!("/v1/grants/{short_id}"));
    assert_eq!(read["state"], "expired");
    let mut expired_recorded = false;
    for _ in 0..50 {
        let (_, timeline) = get(&server, &format!("/v1/tasks/{task_id}/timeline"));
        if timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "grant.expired" && e["grant_id"] == short_id.as_str())
        {
            expired_recorded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(expired_recorded, "the sweep records grant.expired");

    let (_, timeline) = get(&server, &format!("/v1/tasks/{task_id}/timeline"));
    let types: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &types[..7],
        [
            "task.opened",
            "grant.pending",
            "grant.use_refused",
            "grant.approved",
            "grant.used",
            "grant.renewed",
            "grant.issued"
        ],
        "{types:?}"
    );
}
