//! Handles and requests belong to the engine that made them: after a hot
//! reload swaps in a new engine, the old ones are refused (the request is
//! denied with the error), never read into the new layout. A verdict only
//! holds the last decision, so it moves between engines.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_engine::{Engine, RequestErrorKind, Value};

const POLICY: &str = r#"
type sensitivity = public < internal < confidential
attr sensitivity: sensitivity
attr env: string
allow tool "db.read" when sensitivity <= internal and env == "dev" ttl 5m
"#;

/// The same attributes, declared in another order: another slot layout.
const REORDERED: &str = r#"
type sensitivity = public < internal < confidential
attr env: string
attr sensitivity: sensitivity
allow tool "db.read" when sensitivity <= internal and env == "dev" ttl 5m
"#;

fn engine(text: &str) -> Engine {
    Engine::from_text("policy.grant", text).unwrap()
}

fn refused_with_cached_handles(old: &Engine, new: &Engine) {
    let cached = old.attr("sensitivity").unwrap();
    let env = new.attr("env").unwrap();
    let mut request = new.request();
    request.set_tool("db.read").set(env, Value::Str("dev"));
    let error = request.try_set(cached, Value::Str("public")).unwrap_err();
    assert_eq!(error.kind(), RequestErrorKind::WrongEngine);
    // Recorded, not written into a slot: the request is denied with it, and
    // reads back no value for either layout's slot.
    assert!(!request.is_valid());
    assert_eq!(request.given().count(), 1, "only `env` was taken");
    assert_eq!(request.get(cached), None);
    let decision = new.decide(&request);
    assert!(!decision.is_allow());
    assert!(
        decision.rules.is_empty(),
        "invalid requests are not evaluated"
    );
    assert_eq!(decision.errors.len(), 1);
    assert!(
        decision.errors[0].contains("another engine"),
        "{decision:?}"
    );

    // `set` records the same error.
    let mut request = new.request();
    request
        .set_tool("db.read")
        .set(env, Value::Str("dev"))
        .set(cached, Value::Str("public"));
    assert_eq!(request.errors()[0].kind(), RequestErrorKind::WrongEngine);
    let mut verdict = new.verdict();
    new.decide_into(&request, &mut verdict);
    assert!(!verdict.is_allow());
    assert_eq!(verdict.errors()[0].kind(), RequestErrorKind::WrongEngine);

    // Handles fetched again from the new engine work.
    let fresh = new.attr("sensitivity").unwrap();
    let mut request = new.request();
    request
        .set_tool("db.read")
        .set(env, Value::Str("dev"))
        .set(fresh, Value::Str("public"));
    assert!(new.decide(&request).is_allow());
}

#[test]
fn a_cached_handle_is_refused_after_a_reload_of_the_same_policy() {
    refused_with_cached_handles(&engine(POLICY), &engine(POLICY));
}

#[test]
fn a_cached_handle_is_refused_after_a_reload_with_another_layout() {
    refused_with_cached_handles(&engine(POLICY), &engine(REORDERED));
}

#[test]
fn a_request_of_the_old_engine_is_refused_by_the_new_one() {
    let (old, new) = (engine(POLICY), engine(POLICY));
    let mut request = old.request();
    request
        .set_tool("db.read")
        .set(old.attr("env").unwrap(), Value::Str("dev"))
        .set(old.attr("sensitivity").unwrap(), Value::Str("public"));
    assert!(old.decide(&request).is_allow());
    let mut verdict = new.verdict();
    new.decide_into(&request, &mut verdict);
    assert!(!verdict.is_allow());
    assert_eq!(verdict.errors()[0].kind(), RequestErrorKind::WrongEngine);
    // A verdict moves between engines freely: it holds the last decision.
    old.decide_into(&request, &mut verdict);
    assert!(verdict.is_allow());
    // Reading JSON with the new engine replaces the old engine's request.
    new.read_json(
        r#"{"tool": "db.read", "attrs": {"env": "dev", "sensitivity": "public"}}"#,
        &mut request,
    );
    new.decide_into(&request, &mut verdict);
    assert!(verdict.is_allow(), "{:?}", verdict.errors());
    // Clones with other limits share the engine: their handles work.
    let limited = new
        .clone()
        .with_limits(grant_engine::RequestLimits::default());
    let mut request = limited.request();
    request
        .set_tool("db.read")
        .set(new.attr("env").unwrap(), Value::Str("dev"))
        .set(new.attr("sensitivity").unwrap(), Value::Str("public"));
    assert!(limited.decide(&request).is_allow());
}

#[test]
fn request_getters_read_back_what_was_given() {
    let engine = engine(POLICY);
    let mut request = engine.request();
    assert_eq!(request.tool(), None);
    engine.read_json(
        r#"{"tool": "db.read", "attrs": {"sensitivity": "internal", "env": null}, "ttl": "1m"}"#,
        &mut request,
    );
    assert_eq!(request.tool(), Some("db.read"));
    assert_eq!(request.ttl(), Some(60));
    let given: Vec<String> = request
        .given()
        .map(|(path, value)| format!("{path}={value}"))
        .collect();
    assert_eq!(given, ["sensitivity=internal"]);
    engine.read_json(&b"{\"tool\": \"\xff\"}"[..], &mut request);
    assert_eq!(request.errors()[0].kind(), RequestErrorKind::Malformed);
    assert_eq!(
        request.errors()[0].message(),
        "the request is not valid UTF-8 (first invalid byte at offset 10)"
    );
}

#[test]
fn decisions_carry_no_decision_id_and_are_deterministic() {
    let engine = engine(POLICY);
    let json = r#"{"tool": "db.read", "attrs": {"sensitivity": "internal", "env": "dev"}}"#;
    let (a, b) = (engine.decide_json(json), engine.decide_json(json));
    assert_eq!(a, b);
    let text = serde_json::to_string(&a).unwrap();
    assert!(
        text.starts_with(r#"{"effect":"allow","ttl_seconds":300,"rules":["#)
            && text.contains(r#""errors":[],"obligations":{},"policy_hash":"#),
        "{text}"
    );
    assert!(!text.contains("decision_id"), "{text}");
    // A deny has no `obligations` key at all.
    let deny = serde_json::to_value(engine.decide_json(r#"{"tool": "db.write"}"#)).unwrap();
    assert!(deny.get("obligations").is_none());
    assert!(deny.get("decision_id").is_none());
}
