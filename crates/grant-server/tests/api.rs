//! Every native route and every status it answers, over real HTTP on
//! loopback (tests/policies/service.grant).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use grant_ledger::store::faulty::FaultyStore;
use grant_server::{PolicySource, Server, Settings};
use serde_json::{Value, json};

fn open_task(server: &TestServer, agent: &str) -> Value {
    let (status, task) = post(server, "/v1/tasks", &json!({ "agent": agent }));
    assert_eq!(status, 201, "{task}");
    task
}

fn request_grant(server: &TestServer, task: &Value, tool: &str, attrs: Value) -> (u16, Value) {
    post(
        server,
        "/v1/grants",
        &json!({ "task_id": task["task_id"], "agent": task["agent"], "tool": tool, "attrs": attrs }),
    )
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[test]
fn decide_answers_allow_deny_and_invalid_requests_with_200() {
    let server = TestServer::start("service.grant");
    let (status, allow) = post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "internal"}}),
    );
    assert_eq!((status, allow["effect"].as_str()), (200, Some("allow")));
    assert_eq!(allow["ttl_seconds"], 300);
    let (status, deny) = post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "secret"}}),
    );
    assert_eq!((status, deny["effect"].as_str()), (200, Some("deny")));
    assert_eq!(deny["rules"][0]["id"], "no-secret");
    let (status, invalid) = post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"colour": "red"}}),
    );
    assert_eq!((status, invalid["effect"].as_str()), (200, Some("deny")));
    assert!(
        !invalid["errors"].as_array().unwrap().is_empty(),
        "{invalid}"
    );
    // A ledger attribute is the ledger's to set, flat or nested.
    for attrs in [json!({"ledger.depth": 0}), json!({"ledger": {"depth": 0}})] {
        let (status, forged) = post(
            &server,
            "/v1/decide",
            &json!({"tool": "delegated.x", "attrs": attrs}),
        );
        assert_eq!(
            (status, forged["effect"].as_str()),
            (200, Some("deny")),
            "{forged}"
        );
        assert!(
            forged["errors"].to_string().contains("set by the ledger"),
            "{forged}"
        );
    }
}

#[test]
fn decide_refuses_bodies_that_are_not_one_json_object() {
    let server = TestServer::start_with("service.grant", |s| s.limits.max_body_bytes = 4096);
    let json_type = Some("application/json");
    for (content_type, body, status) in [
        (json_type, b"[]".to_vec(), 400),
        (json_type, b"".to_vec(), 400),
        (json_type, b"   ".to_vec(), 400),
        (json_type, b"{\"tool\": ".to_vec(), 400),
        (Some("text/plain"), b"{\"tool\": \"db.read\"}".to_vec(), 400),
        (None, b"{\"tool\": \"db.read\"}".to_vec(), 400),
        (json_type, vec![b' '; 5000], 413),
        (
            Some("application/json; charset=utf-8"),
            b"{\"tool\": \"db.read\"}".to_vec(),
            200,
        ),
    ] {
        let (got, answer) = post_raw(&server, "/v1/decide", content_type, body.clone());
        assert_eq!(
            got,
            status,
            "{content_type:?} {}: {answer}",
            String::from_utf8_lossy(&body[..body.len().min(20)])
        );
        if status != 200 {
            assert!(!error_of(&answer).is_empty());
        }
    }
}

#[test]
fn batch_decides_in_order_and_explain_explains() {
    let server = TestServer::start("service.grant");
    let (status, batch) = post(
        &server,
        "/v1/decide/batch",
        &json!({"requests": [
            {"tool": "db.read", "attrs": {"sensitivity": "public"}},
            {"tool": "db.read", "attrs": {"sensitivity": "secret"}},
            "not an object",
            {"tool": "db.write", "attrs": {"env": "dev"}}
        ]}),
    );
    assert_eq!(status, 200, "{batch}");
    let effects: Vec<&str> = batch["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["effect"].as_str().unwrap())
        .collect();
    assert_eq!(effects, ["allow", "deny", "deny", "allow"]);
    assert!(
        !batch["decisions"][2]["errors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(batch["decisions"][3]["obligations"]["uses"], 1);
    let (status, missing) = post(&server, "/v1/decide/batch", &json!({"request": []}));
    assert_eq!(status, 400, "{missing}");

    let (status, explained) = post(
        &server,
        "/v1/explain",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "secret"}}),
    );
    assert_eq!(status, 200, "{explained}");
    assert_eq!(explained["decision"]["effect"], "deny");
    assert!(explained["explanation"].is_object(), "{explained}");
    // A request the service refuses (a `ledger.*` attribute) is explained
    // as refused: the explanation's decision is the answer's.
    let (status, forged) = post(
        &server,
        "/v1/explain",
        &json!({"tool": "delegated.x", "attrs": {"ledger.depth": 0}}),
    );
    assert_eq!(status, 200, "{forged}");
    assert_eq!(forged["decision"]["effect"], "deny");
    assert_eq!(
        forged["explanation"]["decision"]["effect"], "deny",
        "{forged}"
    );
    assert_eq!(
        forged["explanation"]["decision"]["errors"],
        forged["decision"]["errors"]
    );
}

#[test]
fn tasks_open_conflict_unknown_parent_blocked_agent() {
    let server = TestServer::start("service.grant");
    let (status, task) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "a1", "task_id": "task-1", "labels": {"ticket": "T-1"}}),
    );
    assert_eq!(status, 201, "{task}");
    for field in [
        "task_id",
        "agent",
        "parent_task_id",
        "depth",
        "opened_at",
        "deadline",
        "state",
        "labels",
    ] {
        assert!(task.get(field).is_some(), "{field} missing from {task}");
    }
    assert_eq!(task["state"], "open");
    assert!(task["opened_at"].as_str().unwrap().ends_with('Z'));
    let (status, taken) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "a1", "task_id": "task-1"}),
    );
    assert_eq!(status, 409, "{taken}");
    let (status, orphan) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "a2", "parent_task_id": "nope"}),
    );
    assert_eq!(status, 404, "{orphan}");
    let (status, revoked) = post(
        &server,
        "/v1/revoke",
        &json!({"agent": "bad", "reason": "compromised", "block": true}),
    );
    assert_eq!(status, 200, "{revoked}");
    let (status, blocked) = post(&server, "/v1/tasks", &json!({"agent": "bad"}));
    assert_eq!(status, 403, "{blocked}");
    let (status, unblocked) = post(&server, "/v1/agents/bad/unblock", &json!({}));
    assert_eq!(
        (status, &unblocked["unblocked"]),
        (200, &json!(true)),
        "{unblocked}"
    );
    let (status, _) = post(&server, "/v1/tasks", &json!({"agent": "bad"}));
    assert_eq!(status, 201);
    // Strict bodies: a missing or unknown field is a 400.
    let (status, body) = post(&server, "/v1/tasks", &json!({"task_id": "x"}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "a", "colour": "red"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("colour"), "{body}");
    let (status, body) = post(&server, "/v1/tasks", &json!({"agent": 7}));
    assert_eq!(status, 400, "{body}");

    let (status, read) = get(&server, "/v1/tasks/task-1");
    assert_eq!((status, &read["task_id"]), (200, &json!("task-1")));
    let (status, body) = get(&server, "/v1/tasks/nope");
    assert_eq!(status, 404, "{body}");
    assert!(!error_of(&body).is_empty());
}

#[test]
fn grants_issue_pend_deny_and_404() {
    let server = TestServer::start("service.grant");
    let task = open_task(&server, "a1");
    let (status, issued) =
        request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["grant"]["state"], "active");
    assert_eq!(issued["decision"]["effect"], "allow");
    let (status, pending) = request_grant(&server, &task, "deploy.prod", json!({}));
    assert_eq!(status, 201, "{pending}");
    assert_eq!(pending["grant"]["state"], "pending");
    let (status, denied) =
        request_grant(&server, &task, "db.read", json!({"sensitivity": "secret"}));
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["grant"], Value::Null);
    assert_eq!(denied["decision"]["effect"], "deny");
    let (status, body) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": "nope", "agent": "a1", "tool": "db.read"}),
    );
    assert_eq!(status, 404, "{body}");
    let (status, read) = get(
        &server,
        &format!(
            "/v1/grants/{}",
            issued["grant"]["grant_id"].as_str().unwrap()
        ),
    );
    assert_eq!((status, &read["state"]), (200, &json!("active")));
    let (status, body) = get(&server, "/v1/grants/grant_nope");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn uses_count_down_and_refuse_with_403() {
    let server = TestServer::start("service.grant");
    let task = open_task(&server, "a1");
    let (_, once) = request_grant(&server, &task, "db.write", json!({"env": "dev"}));
    let id = once["grant"]["grant_id"].as_str().unwrap().to_string();
    let path = format!("/v1/grants/{id}/use");
    let (status, used) = post(&server, &path, &json!({"agent": "a1", "tool": "db.write"}));
    assert_eq!(status, 200, "{used}");
    assert_eq!(used["ok"], true);
    assert_eq!(used["uses_left"], 0);
    assert!(used["expires_at"].as_str().unwrap().ends_with('Z'));
    let (status, refused) = post(&server, &path, &json!({"agent": "a1", "tool": "db.write"}));
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["ok"], false);
    assert!(!refused["reason"].as_str().unwrap().is_empty());
    let (status, body) = post(
        &server,
        "/v1/grants/grant_nope/use",
        &json!({"agent": "a1", "tool": "db.write"}),
    );
    assert_eq!(status, 404, "{body}");
    // Unlimited: `uses_left` is null.
    let (_, read) = request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    let id = read["grant"]["grant_id"].as_str().unwrap();
    let (status, used) = post(
        &server,
        &format!("/v1/grants/{id}/use"),
        &json!({"agent": "a1", "tool": "db.read", "attrs": {"sensitivity": "public"}}),
    );
    assert_eq!(status, 200, "{used}");
    assert_eq!(used["uses_left"], Value::Null);
    // A use decided again with attributes the policy denies.
    let (status, refused) = post(
        &server,
        &format!("/v1/grants/{id}/use"),
        &json!({"agent": "a1", "tool": "db.read", "attrs": {"sensitivity": "secret"}}),
    );
    assert_eq!(status, 403, "{refused}");
}

#[test]
fn renew_approve_reject_and_credentials() {
    let server = TestServer::start("service.grant");
    let task = open_task(&server, "a1");
    let (_, read) = request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    let id = read["grant"]["grant_id"].as_str().unwrap().to_string();
    let (status, renewed) = post(
        &server,
        &format!("/v1/grants/{id}/renew"),
        &json!({"agent": "a1", "attrs": {"sensitivity": "public"}}),
    );
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["grant"]["renewals"], 1);
    let (status, denied) = post(
        &server,
        &format!("/v1/grants/{id}/renew"),
        &json!({"agent": "a1", "attrs": {"sensitivity": "secret"}}),
    );
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["grant"], Value::Null);
    assert_eq!(denied["decision"]["effect"], "deny");

    // Approval: not pending is a conflict; pending is approved.
    let (status, body) = post(
        &server,
        &format!("/v1/grants/{id}/approve"),
        &json!({"group": "sre", "approver": "carol"}),
    );
    assert_eq!(status, 409, "{body}");
    let (_, pending) = request_grant(&server, &task, "deploy.prod", json!({}));
    let pending_id = pending["grant"]["grant_id"].as_str().unwrap().to_string();
    let (status, body) = post(
        &server,
        &format!("/v1/grants/{pending_id}/approve"),
        &json!({"group": "sre"}),
    );
    assert_eq!(status, 400, "without tokens the approver is named: {body}");
    let (status, approved) = post(
        &server,
        &format!("/v1/grants/{pending_id}/approve"),
        &json!({"group": "sre", "approver": "carol"}),
    );
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["grant"]["state"], "active");
    let (_, pending) = request_grant(&server, &task, "deploy.staging", json!({}));
    let rejected_id = pending["grant"]["grant_id"].as_str().unwrap();
    let (status, rejected) = post(
        &server,
        &format!("/v1/grants/{rejected_id}/reject"),
        &json!({"group": "sre", "approver": "carol", "reason": "not today"}),
    );
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["grant"]["state"], "revoked");

    let (status, bound) = post(
        &server,
        &format!("/v1/grants/{id}/credential"),
        &json!({"issuer": "vault", "credential_ref": "lease/abc"}),
    );
    assert_eq!(status, 200, "{bound}");
    assert_eq!(
        bound["grant"]["credentials"][0]["credential_ref"],
        "lease/abc"
    );
    let (status, body) = post(
        &server,
        &format!("/v1/grants/{id}/credential"),
        &json!({"issuer": "vault", "credential_ref": "lease/def", "expires_at": "2999-01-01T00:00:00Z"}),
    );
    assert_eq!(
        status, 409,
        "a credential may not outlive its grant: {body}"
    );
}

#[test]
fn revoke_and_end_report_what_changed() {
    let server = TestServer::start("service.grant");
    let task = open_task(&server, "a1");
    let (_, read) = request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    let id = read["grant"]["grant_id"].as_str().unwrap().to_string();
    let (status, revoked) = post(
        &server,
        "/v1/revoke",
        &json!({"grant_id": id, "reason": "done"}),
    );
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked, json!({"revoked": [id], "ended": []}));
    let (status, again) = post(
        &server,
        "/v1/revoke",
        &json!({"grant_id": id, "reason": "done"}),
    );
    assert_eq!((status, again), (200, json!({"revoked": [], "ended": []})));
    let (status, body) = post(
        &server,
        "/v1/revoke",
        &json!({"grant_id": id, "task_id": "x", "reason": "r"}),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&server, "/v1/revoke", &json!({"reason": "r"}));
    assert_eq!(status, 400, "{body}");

    let task_id = task["task_id"].as_str().unwrap();
    let (_, other) = request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    let (status, ended) = post(&server, &format!("/v1/tasks/{task_id}/end"), &json!({}));
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["revoked"], json!([other["grant"]["grant_id"]]));
    assert_eq!(ended["ended"], json!([task_id]));
    let (status, again) = post_raw(
        &server,
        &format!("/v1/tasks/{task_id}/end"),
        None,
        Vec::new(),
    );
    assert_eq!((status, again), (200, json!({"revoked": [], "ended": []})));
}

#[test]
fn timeline_and_events_are_in_seq_order_and_events_long_poll() {
    let server = TestServer::start("service.grant");
    let task = open_task(&server, "a1");
    request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    let task_id = task["task_id"].as_str().unwrap();
    let (status, timeline) = get(&server, &format!("/v1/tasks/{task_id}/timeline"));
    assert_eq!(status, 200, "{timeline}");
    let types: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["task.opened", "grant.issued"]);
    let (status, body) = get(&server, "/v1/tasks/nope/timeline");
    assert_eq!(status, 404, "{body}");

    let (status, all) = get(&server, "/v1/events?after=0&limit=1000");
    assert_eq!(status, 200);
    let seqs: Vec<u64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let last = *seqs.last().unwrap();
    let (status, page) = get(&server, "/v1/events?after=0&limit=1");
    assert_eq!((status, page["events"].as_array().unwrap().len()), (200, 1));
    for bad in [
        "/v1/events?limit=0",
        "/v1/events?after=x",
        "/v1/events?wait=forever",
        "/v1/events?colour=1",
    ] {
        let (status, body) = get(&server, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // A long poll returns as soon as an event arrives.
    let base = server.base.clone();
    let waiter = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let answer = client()
            .get(format!("{base}/v1/events?after={last}&wait=5s"))
            .send()
            .unwrap();
        (answer.json::<Value>().unwrap(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    open_task(&server, "a2");
    let (events, waited) = waiter.join().unwrap();
    assert_eq!(events["events"][0]["type"], "task.opened", "{events}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[test]
fn tokens_authenticate_and_scope_every_route() {
    let server = TestServer::start_with("service.grant", |s| {
        s.tokens = Some(tokens_file(
            &s.state_dir,
            &[
                ("decider", &["decide"], None, None),
                (
                    "issuer",
                    &["issue", "use", "read"],
                    Some(&["agent-*"]),
                    None,
                ),
                ("approver", &["approve"], None, Some(&["sre"])),
                ("admin", &["admin", "revoke", "read"], None, None),
            ],
        ));
    });
    let decide = json!({"tool": "db.read", "attrs": {"sensitivity": "public"}});
    let (status, body) = post(&server, "/v1/decide", &decide);
    assert_eq!(status, 401, "{body}");
    let (status, body) = post_as(&server, "/v1/decide", &decide, Some("wrong"));
    assert_eq!(status, 401, "{body}");
    let (status, _) = post_as(&server, "/v1/decide", &decide, Some(&secret("decider")));
    assert_eq!(status, 200);
    let (status, body) = post_as(&server, "/v1/decide", &decide, Some(&secret("issuer")));
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("decide"));

    let issuer = Some(secret("issuer"));
    let (status, body) = post_as(
        &server,
        "/v1/tasks",
        &json!({"agent": "other"}),
        issuer.as_deref(),
    );
    assert_eq!(status, 403, "agent scope: {body}");
    let (status, task) = post_as(
        &server,
        "/v1/tasks",
        &json!({"agent": "agent-7"}),
        issuer.as_deref(),
    );
    assert_eq!(status, 201, "{task}");
    let (status, pending) = post_as(
        &server,
        "/v1/grants",
        &json!({"task_id": task["task_id"], "agent": "agent-7", "tool": "deploy.prod"}),
        issuer.as_deref(),
    );
    assert_eq!(status, 201, "{pending}");
    let approve = format!(
        "/v1/grants/{}/approve",
        pending["grant"]["grant_id"].as_str().unwrap()
    );
    let approver = Some(secret("approver"));
    let (status, body) = post_as(
        &server,
        &approve,
        &json!({"group": "sre"}),
        issuer.as_deref(),
    );
    assert_eq!(status, 403, "role: {body}");
    let (status, body) = post_as(
        &server,
        &approve,
        &json!({"group": "dba"}),
        approver.as_deref(),
    );
    assert_eq!(status, 403, "group: {body}");
    let (status, body) = post_as(
        &server,
        &approve,
        &json!({"group": "sre", "approver": "mallory"}),
        approver.as_deref(),
    );
    assert_eq!(status, 403, "approver is the token: {body}");
    let (status, approved) = post_as(
        &server,
        &approve,
        &json!({"group": "sre"}),
        approver.as_deref(),
    );
    assert_eq!(status, 200, "{approved}");
    assert_eq!(
        approved["grant"]["approvals"]["granted"][0]["approver"], "approver",
        "{approved}"
    );

    let (status, body) = post_as(
        &server,
        "/v1/revoke",
        &json!({"agent": "agent-7", "reason": "r"}),
        issuer.as_deref(),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = post_as(&server, "/v1/policy/reload", &json!({}), issuer.as_deref());
    assert_eq!(status, 403, "{body}");
    let (status, body) = post_as(
        &server,
        "/v1/policy/reload",
        &json!({}),
        Some(&secret("admin")),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false);

    // Events name the token as the actor.
    let (status, timeline) = get_as(
        &server,
        &format!("/v1/tasks/{}/timeline", task["task_id"].as_str().unwrap()),
        issuer.as_deref(),
    );
    assert_eq!(status, 200, "{timeline}");
    let actors: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["issuer", "issuer", "approver"], "{timeline}");
    // Operations routes need no token; health says auth is on.
    let (status, health) = get(&server, "/health");
    assert_eq!((status, &health["auth"]), (200, &json!("tokens")));
}

#[test]
fn unknown_routes_methods_and_an_unavailable_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(
        grant_ledger::store::open("memory").unwrap(),
    ));
    let settings = Settings::new(
        PolicySource::Files(policy("service.grant")),
        "memory",
        dir.path(),
    );
    let server =
        Server::with_store(settings, store.clone(), Arc::new(grant_ledger::SystemClock)).unwrap();
    let server = TestServer::run(server, dir);
    let (status, body) = get(&server, "/v1/nothing");
    assert_eq!(status, 404, "{body}");
    assert!(!error_of(&body).is_empty());
    let (status, body) = get(&server, "/v1/decide");
    assert_eq!(status, 405, "{body}");
    // Path ids that are not UTF-8 once decoded: a JSON 400 too.
    let (status, body) = get(&server, "/v1/tasks/%FF");
    assert_eq!(status, 400, "{body}");
    assert!(!error_of(&body).is_empty());
    // An instant an offset carries past year 9999 cannot be written back.
    let (status, body) = post(
        &server,
        "/v1/tasks",
        &json!({"agent": "a", "deadline": "9999-12-31T23:59:59-23:59"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(!error_of(&body).is_empty());

    let task = open_task(&server, "a1");
    store.faults().set_down(true);
    let (status, body) = post(&server, "/v1/tasks", &json!({"agent": "a1"}));
    assert_eq!(status, 503, "{body}");
    assert!(error_of(&body).contains("unavailable"), "{body}");
    // The policy declares no `ledger.degraded`: grant requests are denied
    // (or fail) while the store is down, never issued.
    let (status, body) = request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["decision"]["reasons"]
            .to_string()
            .contains("unavailable"),
        "{body}"
    );
    let (status, health) = get(&server, "/health");
    assert_eq!(
        (status, &health["status"]),
        (200, &json!("degraded")),
        "{health}"
    );
    assert_eq!(health["store"]["state"], "down");
    // Decisions need no store.
    let (status, _) = post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "public"}}),
    );
    assert_eq!(status, 200);
    store.faults().set_down(false);
    let (status, health) = get(&server, "/health");
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");
}

#[test]
fn panics_timeouts_and_overload_are_json_errors_and_the_server_serves_on() {
    use axum::routing::get as route_get;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(
        PolicySource::Files(policy("service.grant")),
        "memory",
        dir.path(),
    );
    settings.limits.request_timeout = Duration::from_millis(500);
    settings.limits.max_concurrency = 2;
    let server = Server::new(settings).unwrap();
    let extra = axum::Router::new()
        .route(
            "/test/panic",
            route_get(|| async {
                if true {
                    panic!("boom")
                }
                "never"
            }),
        )
        .route(
            "/test/slow",
            route_get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late"
            }),
        );
    let server = TestServer::run_routes(server, dir, Some(extra));
    let (status, body) = get(&server, "/test/panic");
    assert_eq!(status, 500, "{body}");
    assert!(
        !error_of(&body).contains("boom"),
        "internals stay in the log: {body}"
    );
    let (status, body) = get(&server, "/test/slow");
    assert_eq!(status, 503, "{body}");
    assert!(error_of(&body).contains("time limit"), "{body}");
    // Two slow requests hold both slots; a third is shed at once.
    let base = server.base.clone();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let url = format!("{base}/test/slow");
            std::thread::spawn(move || client().get(url).send().map(|r| r.status().as_u16()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let (status, body) = get(&server, "/health");
    assert_eq!(status, 503, "{body}");
    assert!(error_of(&body).contains("concurrent"), "{body}");
    for holder in holders {
        assert_eq!(holder.join().unwrap().unwrap(), 503);
    }
    let (status, _) = get(&server, "/health");
    assert_eq!(status, 200, "the server serves on");
}

#[test]
fn request_ids_are_echoed() {
    let server = TestServer::start("service.grant");
    let answer = client()
        .post(server.url("/v1/decide"))
        .header("x-request-id", "req-42")
        .json(&json!({"tool": "db.read"}))
        .send()
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "req-42");
}

#[test]
fn metrics_count_decisions_grants_and_requests() {
    let server = TestServer::start("service.grant");
    post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "public"}}),
    );
    post(&server, "/v1/decide", &json!({"tool": "nothing"}));
    let task = open_task(&server, "a1");
    request_grant(&server, &task, "db.read", json!({"sensitivity": "public"}));
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "grant_decisions_total{effect=\"allow\"} 2",
        "grant_decisions_total{effect=\"deny\"} 1",
        "grant_grants_total{event=\"issued\"} 1",
        "grant_http_requests_total{route=\"/v1/decide\",status=\"200\"} 2",
        "grant_http_requests_total{route=\"/v1/tasks\",status=\"201\"} 1",
        "grant_decision_log_dropped_total 0",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(
        text.contains("grant_decision_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("grant_policy_seconds_since_last_load"),
        "{text}"
    );
}

#[test]
fn the_decision_log_has_one_redacted_line_per_decision() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.ndjson");
    let server = TestServer::start_with("service.grant", |s| {
        s.decision_log = Some(log.display().to_string());
        s.ledger.redactor =
            Some(grant_ledger::Redactor::new([0xab; 32], vec!["env".to_string()]).unwrap());
    });
    let (_, first) = post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.write", "attrs": {"env": "dev"}}),
    );
    post(
        &server,
        "/v1/decide/batch",
        &json!({"requests": [{"tool": "db.read"}, {"tool": "x"}]}),
    );
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["decision_id"], first["decision_id"]);
    assert_eq!(lines[0]["decision"]["effect"], "allow");
    assert_ne!(
        lines[0]["request"]["attrs"]["env"], "dev",
        "redacted: {}",
        lines[0]
    );
    let expected = grant_ledger::Redactor::new([0xab; 32], vec!["env".to_string()])
        .unwrap()
        .hash(&json!("dev"));
    assert_eq!(lines[0]["request"]["attrs"]["env"], expected.as_str());
    for line in &lines {
        for field in [
            "decision_id",
            "time",
            "request",
            "decision",
            "policy_hash",
            "latency_us",
        ] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
    }
}
