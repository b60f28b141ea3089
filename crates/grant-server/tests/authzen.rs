#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The AuthZEN API against the interop Todo scenario
//! (examples/authzen-todo): the certification requests at the Basic
//! (evaluation), Batch (evaluations) and Discovery (metadata) levels, then
//! the mapping, the refusals and the transport.
//!
//! Request/answer pairs live in tests/authzen/*.json; decision ids and
//! policy hashes are redacted before comparing. `GRANT_BLESS=1` rewrites the
//! answers from what the server says (review the diff).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use grant_server::{PolicySource, Role, TokenEntry};
use serde_json::{Value, json};

fn todo_server() -> TestServer {
    let policy =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/authzen-todo/policy.grant");
    TestServer::start_with("authzen.grant", |settings| {
        settings.policy = PolicySource::Files(policy);
    })
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authzen")
}

/// `value` with every `decision_id` and `policy_hash` replaced by a
/// placeholder, after checking its form.
fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                match key.as_str() {
                    "decision_id" => {
                        assert!(member.as_str().unwrap().starts_with("dec_"), "{member}");
                        *member = json!("[decision id]");
                    }
                    "policy_hash" => {
                        assert!(member.as_str().unwrap().starts_with("sha256:"), "{member}");
                        *member = json!("[policy hash]");
                    }
                    _ => redact(member),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn decisions(answer: &Value) -> Vec<bool> {
    answer["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["decision"].as_bool().unwrap())
        .collect()
}

// ----- Basic: the interop's evaluation decisions ---------------------------

#[test]
fn basic_todo_interop_decisions() {
    let server = todo_server();
    let text = std::fs::read_to_string(cases_dir().join("todo-evaluation.json")).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["evaluation"].as_array().unwrap();
    assert_eq!(cases.len(), 40);
    for case in cases {
        let (status, answer) = post(&server, "/access/v1/evaluation", &case["request"]);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["decision"], case["expected"],
            "{}\n{answer}",
            case["request"]
        );
        assert!(answer["context"].get("error").is_none(), "{answer}");
    }
}

// ----- request/answer files -----------------------------------------------

#[test]
fn request_answer_files() {
    let server = todo_server();
    let bless = std::env::var_os("GRANT_BLESS").is_some();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter(|path| !path.ends_with("todo-evaluation.json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "{paths:?}");
    let mut failures = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut case: Value = serde_json::from_str(&text).unwrap();
        let route = case["route"].as_str().unwrap().to_string();
        let (status, mut answer) = post(&server, &route, &case["request"]);
        assert_eq!(status, 200, "{}: {answer}", path.display());
        redact(&mut answer);
        if answer != case["answer"] {
            if bless {
                case["answer"] = answer;
                let text = serde_json::to_string_pretty(&case).unwrap() + "\n";
                std::fs::write(&path, text).unwrap();
            } else {
                failures.push(format!(
                    "{}: expected\n{}\nfound\n{}",
                    path.display(),
                    serde_json::to_string_pretty(&case["answer"]).unwrap(),
                    serde_json::to_string_pretty(&answer).unwrap()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ----- Batch: the semantics, in brief ---------------------------------------

#[test]
fn batch_semantics_stop_after_the_deciding_item() {
    let server = todo_server();
    let batch = |semantic: &str| {
        json!({
            "subject": {"type": "user", "id": "beth@the-smiths.com"},
            "resource": {"type": "todo", "id": "todo-1"},
            "options": {"evaluations_semantic": semantic},
            "evaluations": [
                {"action": {"name": "can_read_todos"}},
                {"action": {"name": "can_create_todo"}},
                {"action": {"name": "can_read_todos"}}
            ]
        })
    };
    let run = |semantic: &str| {
        let (status, answer) = post(&server, "/access/v1/evaluations", &batch(semantic));
        assert_eq!(status, 200, "{answer}");
        decisions(&answer)
    };
    assert_eq!(run("execute_all"), [true, false, true]);
    assert_eq!(run("deny_on_first_deny"), [true, false]);
    assert_eq!(run("permit_on_first_permit"), [true]);
    // An unknown semantic, or options of the wrong shape, is the whole
    // request's error.
    for bad in [
        json!({"evaluations_semantic": "first"}),
        json!({"evaluations_semantic": 1}),
        json!([]),
    ] {
        let mut request = batch("execute_all");
        request["options"] = bad;
        let (status, answer) = post(&server, "/access/v1/evaluations", &request);
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("options"),
            "{answer}"
        );
    }
    // Unknown options are ignored.
    let mut request = batch("deny_on_first_deny");
    request["options"]["page_size"] = json!(10);
    let (_, answer) = post(&server, "/access/v1/evaluations", &request);
    assert_eq!(decisions(&answer), [true, false]);
}

#[test]
fn batch_items_are_decided_under_one_policy_each_with_its_id() {
    let server = todo_server();
    let (_, answer) = post(
        &server,
        "/access/v1/evaluations",
        &json!({
            "subject": {"type": "user", "id": "rick@the-citadel.com"},
            "resource": {"type": "todo", "id": "todo-1"},
            "evaluations": [{"action": {"name": "can_read_todos"}}, {"action": {"name": "can_create_todo"}}]
        }),
    );
    let items = answer["evaluations"].as_array().unwrap();
    assert_eq!(
        items[0]["context"]["policy_hash"],
        items[1]["context"]["policy_hash"]
    );
    assert_ne!(
        items[0]["context"]["decision_id"],
        items[1]["context"]["decision_id"]
    );
    assert_eq!(items[0]["context"]["ttl_seconds"], 60);
}

// ----- Discovery ------------------------------------------------------------

#[test]
fn metadata_from_the_host_header() {
    let server = todo_server();
    let (status, metadata) = get(&server, "/.well-known/authzen-configuration");
    assert_eq!(status, 200, "{metadata}");
    let base = server.base.clone();
    assert_eq!(
        metadata,
        json!({
            "policy_decision_point": base,
            "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
            "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        })
    );
    // A Host header that is not a plain host[:port] is not echoed into
    // URLs: the listen address is used instead.
    let response = client()
        .get(server.url("/.well-known/authzen-configuration"))
        .header("host", "evil.example/phish?")
        .send()
        .unwrap();
    let (status, metadata) = read(response);
    if status == 200 {
        assert!(!metadata.to_string().contains("evil"), "{metadata}");
    } else {
        // hyper may refuse the header itself, which is as good.
        assert_eq!(status, 400);
    }
}

#[test]
fn metadata_from_the_public_url_and_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, _) = tokens_file(dir.path(), &[("pep", vec![Role::Decide])]);
    let server = TestServer::start_with("authzen.grant", |settings| {
        settings.public_url = Some("https://pdp.example.com/".to_string());
        settings.tokens = Some(tokens);
    });
    let (status, metadata) = get(&server, "/.well-known/authzen-configuration");
    assert_eq!(status, 200, "{metadata}");
    assert_eq!(
        metadata,
        json!({
            "policy_decision_point": "https://pdp.example.com",
            "access_evaluation_endpoint": "https://pdp.example.com/access/v1/evaluation",
            "access_evaluations_endpoint": "https://pdp.example.com/access/v1/evaluations",
        })
    );
}

// ----- the mapping ------------------------------------------------------------

fn authzen_server() -> TestServer {
    TestServer::start("authzen.grant")
}

fn evaluate(server: &TestServer, request: &Value) -> Value {
    let (status, answer) = post(server, "/access/v1/evaluation", request);
    assert_eq!(status, 200, "{answer}");
    answer
}

fn doc(action: &str) -> Value {
    json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": action},
        "resource": {"type": "doc", "id": "d1"}
    })
}

#[test]
fn properties_nest_context_maps_and_undeclared_attributes_are_ignored() {
    let server = authzen_server();
    let mut request = doc("doc.write");
    request["subject"]["properties"] = json!({
        "clearance": "high",
        "org": {"name": "acme", "country": "fr"},
        "email": "alice@example.com"
    });
    request["context"] = json!({"time": "now", "unknown": {"deep": [1, 2]}});
    let answer = evaluate(&server, &request);
    assert_eq!(answer["decision"], true, "{answer}");
    assert_eq!(answer["context"]["rules"][0]["id"], "write");
    // A dotted property key names the same path.
    request["subject"]["properties"] = json!({"clearance": "high", "org.name": "acme"});
    assert_eq!(evaluate(&server, &request)["decision"], true);
    // Giving it both ways is an invalid request.
    request["subject"]["properties"] =
        json!({"clearance": "high", "org.name": "acme", "org": {"name": "acme"}});
    let answer = evaluate(&server, &request);
    assert_eq!(answer["decision"], false);
    assert!(
        answer["context"]["error"]
            .as_str()
            .unwrap()
            .contains("given twice"),
        "{answer}"
    );

    // action.properties and context map under `action.` and `context.`.
    let mut request = doc("doc.delete");
    request["action"]["properties"] = json!({"dry_run": true});
    request["context"] = json!({"ip": "10.0.0.1"});
    assert_eq!(evaluate(&server, &request)["decision"], true);
    request["context"] = json!({"ip": "10.0.0.2"});
    assert_eq!(evaluate(&server, &request)["decision"], false);
}

#[test]
fn context_ttl_is_the_asked_ttl() {
    let server = authzen_server();
    let mut request = doc("doc.read");
    request["resource"]["properties"] = json!({"size": 3});
    assert_eq!(evaluate(&server, &request)["context"]["ttl_seconds"], 300);
    request["context"] = json!({"ttl": "1m"});
    assert_eq!(evaluate(&server, &request)["context"]["ttl_seconds"], 60);
    request["context"] = json!({"ttl": 30});
    assert_eq!(evaluate(&server, &request)["context"]["ttl_seconds"], 30);
    request["context"] = json!({"ttl": "soon"});
    let answer = evaluate(&server, &request);
    assert_eq!(answer["decision"], false);
    assert!(
        answer["context"]["error"].as_str().unwrap().contains("ttl"),
        "{answer}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_an_invalid_request() {
    let server = authzen_server();
    let mut request = doc("doc.read");
    request["resource"]["properties"] = json!({"size": "big"});
    let answer = evaluate(&server, &request);
    assert_eq!(answer["decision"], false);
    let error = answer["context"]["error"].as_str().unwrap();
    assert!(error.contains("resource.size"), "{answer}");
    assert!(
        answer["context"]["decision_id"]
            .as_str()
            .unwrap()
            .starts_with("dec_")
    );
    request["resource"]["properties"] = json!({"size": 1.5});
    assert_eq!(evaluate(&server, &request)["decision"], false);
    // Of the right type, the value decides.
    let mut request = doc("doc.archive");
    request["resource"]["properties"] = json!({"size": 200});
    let answer = evaluate(&server, &request);
    assert_eq!(answer["decision"], false);
    assert_eq!(answer["context"]["rules"][0]["id"], "big", "{answer}");
    request["resource"]["properties"] = json!({"size": 3});
    assert_eq!(evaluate(&server, &request)["decision"], true);
}

#[test]
fn a_property_named_like_a_field_is_an_invalid_request() {
    let server = authzen_server();
    for (entity, key) in [
        ("subject", "id"),
        ("subject", "type"),
        ("resource", "id"),
        ("resource", "type"),
        ("action", "name"),
    ] {
        let mut request = doc("doc.read");
        request[entity]["properties"] = json!({ key: "x" });
        let answer = evaluate(&server, &request);
        assert_eq!(answer["decision"], false, "{entity}.{key}: {answer}");
        assert!(
            answer["context"]["error"]
                .as_str()
                .unwrap()
                .contains(&format!("`{entity}.properties.{key}`")),
            "{answer}"
        );
    }
    // `id` and `type` under action, and anything under context, collide
    // with nothing.
    let mut request = doc("doc.read");
    request["action"]["properties"] = json!({"id": "x", "type": "y"});
    request["context"] = json!({"id": "x", "type": "y", "name": "z"});
    assert_eq!(evaluate(&server, &request)["decision"], true);
}

#[test]
fn an_allow_with_obligations_is_answered_false_with_a_reason() {
    let server = authzen_server();
    for (tool, obligations, words) in [
        ("doc.share", json!({"uses": 1}), "uses 1"),
        (
            "doc.publish",
            json!({"approvals": ["editors"]}),
            "approval \"editors\"",
        ),
    ] {
        let answer = evaluate(&server, &doc(tool));
        assert_eq!(answer["decision"], false, "{answer}");
        let context = &answer["context"];
        let reason = context["reason"].as_str().unwrap();
        assert!(
            reason.contains("ledger") && reason.contains(words),
            "{reason}"
        );
        assert_eq!(context["obligations"], obligations);
        assert_eq!(context["ttl_seconds"], Value::Null);
        assert!(context.get("error").is_none());
    }
    // The native API still answers the allow and its obligations.
    let (_, native) = post(&server, "/v1/decide", &json!({"tool": "doc.share"}));
    assert_eq!(native["effect"], "allow", "{native}");
}

#[test]
fn a_stale_policy_denies_with_its_error() {
    let server = TestServer::start_with("authzen.grant", |settings| {
        settings.max_staleness = Some(Duration::from_nanos(1));
    });
    std::thread::sleep(Duration::from_millis(5));
    let answer = evaluate(&server, &doc("doc.read"));
    assert_eq!(answer["decision"], false);
    assert!(
        answer["context"]["error"]
            .as_str()
            .unwrap()
            .contains("stale"),
        "{answer}"
    );
    let (_, answer) = post(
        &server,
        "/access/v1/evaluations",
        &json!({"subject": {"type": "user", "id": "a"}, "resource": {"type": "doc", "id": "d"},
                "evaluations": [{"action": {"name": "doc.read"}}, {"action": {"name": "doc.read"}}]}),
    );
    for item in answer["evaluations"].as_array().unwrap() {
        assert!(
            item["context"]["error"].as_str().unwrap().contains("stale"),
            "{item}"
        );
    }
}

// ----- transport ---------------------------------------------------------------

#[test]
fn bad_bodies_are_400() {
    let server = authzen_server();
    for route in ["/access/v1/evaluation", "/access/v1/evaluations"] {
        let good = serde_json::to_vec(&doc("doc.read")).unwrap();
        let cases: Vec<(Option<&str>, Vec<u8>, &str)> = vec![
            (
                Some("application/json"),
                b"{\"subject\":".to_vec(),
                "not well-formed JSON",
            ),
            (Some("text/plain"), good.clone(), "Content-Type"),
            (None, good.clone(), "Content-Type"),
            (Some("application/json"), Vec::new(), "empty"),
            (Some("application/json"), b"[]".to_vec(), "object"),
        ];
        for (content_type, body, words) in cases {
            let (status, answer) = post_raw(&server, route, content_type, body);
            assert_eq!(status, 400, "{route} {content_type:?}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().contains(words),
                "{answer}"
            );
        }
        let (status, _) = post_raw(
            &server,
            route,
            Some("application/json; charset=utf-8"),
            good,
        );
        assert_eq!(status, 200);
    }
    // A missing or mistyped required field of a single evaluation.
    let mut no_name = doc("doc.read");
    no_name["action"] = json!({});
    let mut numeric_id = doc("doc.read");
    numeric_id["subject"]["id"] = json!(7);
    let mut no_resource = doc("doc.read");
    no_resource.as_object_mut().unwrap().remove("resource");
    let mut bad_properties = doc("doc.read");
    bad_properties["resource"]["properties"] = json!("size=3");
    let mut bad_context = doc("doc.read");
    bad_context["context"] = json!([]);
    for (request, words) in [
        (no_name, "`action.name` is required"),
        (numeric_id, "`subject.id` must be a string, found a number"),
        (no_resource, "`resource` is required"),
        (bad_properties, "`resource.properties` must be an object"),
        (bad_context, "`context` must be an object"),
    ] {
        for route in ["/access/v1/evaluation", "/access/v1/evaluations"] {
            let (status, answer) = post(&server, route, &request);
            assert_eq!(status, 400, "{route} {request}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().starts_with(words),
                "{answer}"
            );
        }
    }
    // In a batch, the top level's shape is the request's; `evaluations`
    // must be an array.
    let (status, answer) = post(
        &server,
        "/access/v1/evaluations",
        &json!({"subject": {"type": "user", "id": 1}, "evaluations": [doc("doc.read")]}),
    );
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(
        &server,
        "/access/v1/evaluations",
        &json!({"evaluations": {}}),
    );
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (400, "`evaluations` must be an array, found an object")
    );
}

#[test]
fn the_request_id_is_echoed() {
    let server = authzen_server();
    for route in ["/access/v1/evaluation", "/access/v1/evaluations"] {
        let response = client()
            .post(server.url(route))
            .header("x-request-id", "bfe9eb29-ab87-4ca3-be83-a1d5d8305716")
            .json(&doc("doc.read"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("x-request-id").unwrap(),
            "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
        );
    }
    // On a 400 too.
    let response = client()
        .post(server.url("/access/v1/evaluation"))
        .header("x-request-id", "r-400")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers().get("x-request-id").unwrap(), "r-400");
}

/// A tokens file in `dir` with one token per `(name, roles)`; returns its
/// path and the secrets, in order.
fn tokens_file(dir: &Path, tokens: &[(&str, Vec<Role>)]) -> (PathBuf, Vec<String>) {
    use sha2::Digest;
    let mut entries = Vec::new();
    let mut secrets = Vec::new();
    for (name, roles) in tokens {
        let secret = format!("secret-of-{name}-0123456789abcdef");
        let sha256 = sha2::Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        entries.push(TokenEntry {
            name: (*name).to_string(),
            sha256,
            roles: roles.clone(),
            agents: None,
            groups: None,
        });
        secrets.push(secret);
    }
    #[derive(serde::Serialize)]
    struct File {
        token: Vec<TokenEntry>,
    }
    let path = dir.join("tokens.toml");
    std::fs::write(&path, toml::to_string(&File { token: entries }).unwrap()).unwrap();
    (path, secrets)
}

#[test]
fn tokens_401_and_403() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, secrets) = tokens_file(
        dir.path(),
        &[("pep", vec![Role::Decide]), ("reader", vec![Role::Read])],
    );
    let server = TestServer::start_with("authzen.grant", |settings| {
        settings.tokens = Some(tokens);
    });
    for route in ["/access/v1/evaluation", "/access/v1/evaluations"] {
        let (status, answer) = post(&server, route, &doc("doc.read"));
        assert_eq!(status, 401, "{answer}");
        let (status, answer) = post_as(&server, route, &doc("doc.read"), Some("not-a-token"));
        assert_eq!(status, 401, "{answer}");
        let (status, answer) = post_as(&server, route, &doc("doc.read"), Some(&secrets[1]));
        assert_eq!(status, 403, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("decide"),
            "{answer}"
        );
        let (status, answer) = post_as(&server, route, &doc("doc.read"), Some(&secrets[0]));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["decision"], true, "{answer}");
        // The caller is checked before the body is read.
        let (status, _) = post_raw(&server, route, Some("text/plain"), b"x".to_vec());
        assert_eq!(status, 401);
    }
}

#[test]
fn decisions_are_logged_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.ndjson");
    let server = TestServer::start_with("authzen.grant", |settings| {
        settings.decision_log = Some(log.display().to_string());
    });
    let mut request = doc("doc.read");
    request["subject"]["properties"] = json!({"email": "alice@example.com"});
    let answer = evaluate(&server, &request);
    let id = answer["context"]["decision_id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = evaluate(&server, &doc("doc.share"));
    assert_eq!(answer["decision"], false);
    server.server.close();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["decision_id"], id.as_str());
    assert_eq!(
        lines[0]["request"],
        json!({"api": "authzen", "tool": "doc.read", "ttl": null,
               "attrs": {"subject.type": "user", "subject.id": "alice", "resource.type": "doc"}})
    );
    // The log holds the engine's decision: the allow and its obligations.
    assert_eq!(lines[1]["decision"]["effect"], "allow");
    assert_eq!(lines[1]["decision"]["obligations"]["uses"], 1);
    // An allow with obligations is counted as a deny: it was not granted.
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("grant_decisions_total{effect=\"allow\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("grant_decisions_total{effect=\"deny\"} 1"),
        "{metrics}"
    );
}
