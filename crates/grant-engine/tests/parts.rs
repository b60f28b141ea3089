//! `Engine::read_parts` decides exactly as `Engine::read_json` does on the
//! same request: every example request, and requests with bad values, a bad
//! ttl, and over the size limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::path::Path;

use grant_engine::{Engine, RequestLimits};

fn decide_both(engine: &Engine, json: &str) -> (grant_engine::Decision, grant_engine::Decision) {
    let by_text = engine.decide_json(json);
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let empty = serde_json::Map::new();
    let attrs = value
        .get("attrs")
        .and_then(|a| a.as_object())
        .unwrap_or(&empty);
    let mut request = engine.request();
    engine.read_parts(
        value["tool"].as_str().unwrap_or(""),
        attrs,
        value.get("ttl"),
        &mut request,
    );
    (by_text, engine.decide(&request))
}

#[test]
fn every_example_request_decides_alike() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for example in std::fs::read_dir(&root).unwrap() {
        let dir = example.unwrap().path();
        let Ok(requests) = std::fs::read_dir(dir.join("requests")) else {
            continue;
        };
        let engine = Engine::from_path(&dir).unwrap();
        for request in requests {
            let path = request.unwrap().path();
            let json = std::fs::read_to_string(&path).unwrap();
            let (by_text, by_parts) = decide_both(&engine, &json);
            assert_eq!(by_text, by_parts, "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} example requests");
}

#[test]
fn bad_values_ttls_and_limits_decide_alike() {
    let policy = "type level = low < high\nattr level: level\nattr n: int\nattr tags: set<string>\nallow tool \"t\" when level <= high and n < 3 ttl 5m";
    let engine = Engine::from_text("p.grant", policy).unwrap();
    for json in [
        r#"{"tool": "t", "attrs": {"level": "low", "n": 1}, "ttl": "30s"}"#,
        r#"{"tool": "t", "attrs": {"level": "low", "n": 1}, "ttl": 0}"#,
        r#"{"tool": "t", "attrs": {"level": "low", "n": 1}, "ttl": "soon"}"#,
        r#"{"tool": "t", "attrs": {"level": "low", "n": 1}, "ttl": null}"#,
        r#"{"tool": "t", "attrs": {"level": "medium", "n": 1}}"#,
        r#"{"tool": "t", "attrs": {"level": "low", "n": 1.5}}"#,
        r#"{"tool": "t", "attrs": {"level": "low", "n": "1"}}"#,
        r#"{"tool": "t", "attrs": {"nope": 1}}"#,
        r#"{"tool": "t", "attrs": {"tags": ["a", 1]}}"#,
        r#"{"tool": "", "attrs": {}}"#,
        // (A key given twice in one object cannot be: a parsed map holds
        // each key once. A path given flat and nested can.)
        r#"{"tool": "t", "attrs": {"level": "low", "n": 1, "tags": [], "tags.x": 1}}"#,
    ] {
        let (by_text, by_parts) = decide_both(&engine, json);
        assert_eq!(by_text, by_parts, "{json}");
    }
    let small = engine.clone().with_limits(RequestLimits {
        json_bytes: 64,
        ..RequestLimits::default()
    });
    let big = format!(
        r#"{{"tool": "t", "attrs": {{"level": "{}"}}}}"#,
        "x".repeat(100)
    );
    let (by_text, by_parts) = decide_both(&small, &big);
    assert!(!by_parts.is_allow());
    assert_eq!(by_text.errors.len(), by_parts.errors.len());
    assert!(
        by_parts.errors[0].contains("limit"),
        "{:?}",
        by_parts.errors
    );
}
