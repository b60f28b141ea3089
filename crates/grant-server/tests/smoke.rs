#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn decides_and_issues() {
    let server = TestServer::start("service.grant");
    let (status, body) = post(
        &server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "public"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["effect"], "allow", "{body}");
    assert!(body["decision_id"].as_str().unwrap().starts_with("dec_"));
    let (status, task) = post(&server, "/v1/tasks", &json!({"agent": "a1"}));
    assert_eq!(status, 201, "{task}");
    let (status, grant) = post(
        &server,
        "/v1/grants",
        &json!({"task_id": task["task_id"], "agent": "a1", "tool": "db.read", "attrs": {"sensitivity": "internal"}}),
    );
    assert_eq!(status, 201, "{grant}");
    let (status, health) = get(&server, "/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
}
