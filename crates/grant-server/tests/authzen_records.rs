//! The AuthZEN certification fixture of the service issue (alice and bob,
//! record-1 and record-2, read/write/delete with a `soft` delete:
//! examples/authzen-records) at the Basic (evaluation), Batch (evaluations,
//! the three semantics, overrides and fallbacks) and Discovery (metadata)
//! levels. The cases are tests/authzen/records/cases.json.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use grant_server::PolicySource;
use serde_json::Value;

fn records_server() -> TestServer {
    let policy =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/authzen-records/policy.grant");
    TestServer::start_with("service.grant", |settings| {
        settings.policy = PolicySource::Files(policy);
    })
}

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authzen/records/cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn basic_every_evaluation_decides_as_expected() {
    let server = records_server();
    let fixture = fixture();
    let cases = fixture["evaluation"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for case in cases {
        let (status, answer) = post(&server, "/access/v1/evaluation", &case["request"]);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["decision"], case["expected"],
            "{}\n{answer}",
            case["request"]
        );
        let context = &answer["context"];
        assert!(context["decision_id"].as_str().unwrap().starts_with("dec_"));
        if answer["decision"] == true {
            assert!(context["ttl_seconds"].as_u64().unwrap() > 0, "{answer}");
        }
    }
}

#[test]
fn batch_semantics_overrides_and_fallbacks() {
    let server = records_server();
    for case in fixture()["evaluations"].as_array().unwrap() {
        let (status, answer) = post(&server, "/access/v1/evaluations", &case["request"]);
        assert_eq!(status, 200, "{answer}");
        let got: Vec<&Value> = answer["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["decision"])
            .collect();
        let expected: Vec<&Value> = case["expected"].as_array().unwrap().iter().collect();
        assert_eq!(got, expected, "{}: {answer}", case["name"]);
    }
}

#[test]
fn discovery_names_the_endpoints() {
    let server = records_server();
    let (status, metadata) = get(&server, "/.well-known/authzen-configuration");
    assert_eq!(status, 200, "{metadata}");
    let base = &server.base;
    assert_eq!(metadata["policy_decision_point"], base.as_str());
    assert_eq!(
        metadata["access_evaluation_endpoint"],
        format!("{base}/access/v1/evaluation")
    );
    assert_eq!(
        metadata["access_evaluations_endpoint"],
        format!("{base}/access/v1/evaluations")
    );
}

#[test]
fn malformed_requests_are_400() {
    let server = records_server();
    let json_type = Some("application/json");
    for (content_type, body) in [
        (json_type, &b"{"[..]),
        (json_type, b""),
        (Some("text/plain"), br#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#),
        (json_type, br#"{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}"#),
        (json_type, br#"{"subject": {"type": "user", "id": 7}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#),
    ] {
        let (status, answer) = post_raw(&server, "/access/v1/evaluation", content_type, body.to_vec());
        assert_eq!(status, 400, "{}: {answer}", String::from_utf8_lossy(body));
        assert!(answer["error"].is_string(), "{answer}");
    }
}
