//! End-to-end decision tests for the spec's "Requests and decisions": each
//! `tests/decisions/<case>/` holds a policy (`policy.grant`, or a `policy/`
//! directory) and `requests.jsonl`, one JSON request per line (`#` lines
//! are comments, blank lines are skipped). Every request is decided through
//! the engine's JSON path, and the case's snapshot shows each request line
//! and its decision JSON. Review changes with `cargo insta review`.
//!
//! Key facts are also asserted directly below the snapshot test.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::fmt::Write;
use std::path::{Path, PathBuf};

use grant_engine::{Decision, DecisionEffect, Engine};
use grant_syntax::SourceMap;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("decisions")
}

fn policy_path(case: &str) -> PathBuf {
    let dir = cases_dir().join(case);
    let file = dir.join("policy.grant");
    if file.exists() {
        file
    } else {
        dir.join("policy")
    }
}

fn engine(case: &str) -> Engine {
    Engine::from_path(policy_path(case)).unwrap_or_else(|e| panic!("{case}: {e}"))
}

/// Decides one JSON request under a case's policy.
fn decide(case: &str, json: &str) -> Decision {
    engine(case).decide_json(json)
}

fn rule_ids(decision: &Decision) -> Vec<&str> {
    decision.rules.iter().map(|r| r.id.as_str()).collect()
}

/// The snapshot of one case: the policy hash once, then each request line
/// and its decision (its hash, checked equal to the policy's, elided).
fn render_case(case: &str) -> String {
    let engine = engine(case);
    let requests = std::fs::read_to_string(cases_dir().join(case).join("requests.jsonl")).unwrap();
    let mut out = String::new();
    writeln!(out, "policy_hash: {}", engine.policy_hash()).unwrap();
    for line in requests.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            writeln!(out, "\n{line}").unwrap();
            continue;
        }
        let decision = engine.decide_json(line);
        assert_eq!(decision.policy_hash, engine.policy_hash(), "{case}: {line}");
        // Serialized as the engine does, fields in the spec's order.
        let shown = serde_json::to_string_pretty(&decision)
            .unwrap()
            .replace(engine.policy_hash(), "<policy_hash>");
        writeln!(out, "\n> {line}\n{shown}").unwrap();
    }
    out
}

#[test]
fn decision_cases() {
    let mut cases: Vec<String> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "cases: {cases:?}");
    for case in cases {
        insta::assert_snapshot!(case.as_str(), render_case(&case));
    }
}

// ---------------------------------------------------------------------------
// 1. Invalid requests: deny with the error, nothing evaluated.

#[test]
fn invalid_requests_are_denied_with_their_errors() {
    let case = "invalid_requests";
    let valid = decide(case, r#"{"tool": "db.read", "attrs": {"env": "prod"}}"#);
    assert!(valid.is_allow());
    for json in [
        r#"{"tool": "db.read", "attrs": {"task": {"approved": "true"}}}"#,
        r#"{"tool": "db.read", "attrs": {"env": "production"}}"#,
        r#"{"tool": "db.read", "attrs": {"user": "mallory"}}"#,
        r#"{"tool": "db.read", "attrs": {"user": null}}"#,
        r#"{"tool": "db.read", "attrs": {"task.approved": true, "task": {"approved": true}}}"#,
        r#"{"tool": "db.read", "attrs": {"task.approved": null, "task": {"approved": true}}}"#,
        r#"{"tool": "db.read", "attrs": {"task": {"approved": true}, "task.approved": null}}"#,
        r#"{"tool": "db.read", "ttl": "10 minutes"}"#,
        r#"{"tool": "db.read", "ttl": 0}"#,
        r#"{"tool": "db.read", "ttl": -5}"#,
        r#"{"attrs": {}}"#,
        r#"{"tool": ""}"#,
        r#"{"tool": null}"#,
        r#"{"tool": "db.read""#,
        "not json",
    ] {
        let decision = decide(case, json);
        assert_eq!(decision.effect, DecisionEffect::Deny, "{json}");
        assert_eq!(decision.ttl_seconds, None, "{json}");
        assert!(decision.rules.is_empty(), "{json}");
        assert!(decision.missing.is_empty(), "{json}");
        assert!(!decision.errors.is_empty(), "{json}");
    }
}

#[test]
fn invalid_typed_requests_are_denied_too() {
    use grant_engine::Value;
    let engine = engine("invalid_requests");
    let env = engine.attr("env").unwrap();
    let approved = engine.attr("task.approved").unwrap();
    assert!(engine.attr("user").is_none());

    let mut request = engine.request();
    request.set_tool("db.read").set(env, Value::Str("Prod"));
    assert!(!request.is_valid());
    assert_eq!(engine.decide(&request).effect, DecisionEffect::Deny);

    let mut request = engine.request();
    request.set_tool("db.read").set(approved, Value::Int(1));
    assert_eq!(engine.decide(&request).effect, DecisionEffect::Deny);

    let mut request = engine.request();
    request
        .set_tool("db.read")
        .set(approved, Value::Bool(true))
        .set(approved, Value::Bool(true));
    assert_eq!(engine.decide(&request).effect, DecisionEffect::Deny);

    // No tool, or an empty one.
    let request = engine.request();
    assert_eq!(engine.decide(&request).effect, DecisionEffect::Deny);
    let mut request = engine.request();
    request.set_tool("");
    assert_eq!(engine.decide(&request).effect, DecisionEffect::Deny);

    // A request made for another engine is refused.
    let other = engine_from_text("allow tool * ttl 1m\n");
    let mut request = other.request();
    request.set_tool("db.read");
    let decision = engine.decide(&request);
    assert_eq!(decision.effect, DecisionEffect::Deny);
    assert!(!decision.errors.is_empty());

    let mut request = engine.request();
    request.set_tool("db.read");
    assert!(engine.decide(&request).is_allow());
}

#[test]
fn null_is_missing_and_flat_keys_equal_nested() {
    let case = "null_and_flat_keys";
    let nested = decide(
        case,
        r#"{"tool": "db.read", "attrs": {"task": {"approved": true}, "agent": {"depth": 1}}}"#,
    );
    let flat = decide(
        case,
        r#"{"tool": "db.read", "attrs": {"task.approved": true, "agent.depth": 1}}"#,
    );
    assert!(nested.is_allow());
    assert_eq!(nested, flat);
    let null = decide(
        case,
        r#"{"tool": "db.read", "attrs": {"task.approved": null, "agent.depth": 1}}"#,
    );
    let absent = decide(case, r#"{"tool": "db.read", "attrs": {"agent.depth": 1}}"#);
    assert_eq!(null.effect, DecisionEffect::Deny);
    assert_eq!(null.missing, ["task.approved"]);
    assert_eq!(rule_ids(&null), ["unapproved"]);
    assert_eq!(null, absent);
}

// ---------------------------------------------------------------------------
// 2. A rule applies when its pattern matches the tool and its condition is true.

#[test]
fn patterns_match_whole_names_exactly() {
    let case = "patterns";
    let applying = |tool: &str| {
        let decision = decide(case, &serde_json::json!({ "tool": tool }).to_string());
        rule_ids(&decision)
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(applying("db.read"), ["exact", "db-glob", "any-read"]);
    assert_eq!(applying("db."), ["db-glob"]);
    assert_eq!(applying("db.schema.read"), ["db-glob", "any-read"]);
    assert_eq!(applying("db.schema.drop_table"), ["drop-anything"]);
    assert_eq!(applying("github.search_code"), ["list"]);
    assert_eq!(applying("aXbYc"), ["several-stars"]);
    assert_eq!(applying("café.\"quoted\""), ["escaped"]);
    // No trimming, no case folding, no Unicode normalization.
    assert_eq!(applying(" db.read"), ["any-read"]);
    assert_eq!(applying("db.read "), ["db-glob"]);
    for tool in ["db", "DB.READ", "Db.write", "acb", "cafe\u{301}.\"quoted\""] {
        assert!(applying(tool).is_empty(), "{tool:?}");
    }
}

// ---------------------------------------------------------------------------
// 3. Three-valued logic.

#[test]
fn three_valued_logic() {
    let case = "three_valued";
    let or = decide(case, r#"{"tool": "or", "attrs": {"b": true}}"#);
    assert!(or.is_allow(), "an or with a true side is true");
    assert!(
        or.missing.is_empty(),
        "a condition that came out true names nothing"
    );

    let and = decide(case, r#"{"tool": "and", "attrs": {"b": false}}"#);
    assert!(and.is_allow(), "an and with a false side is false");

    let not = decide(case, r#"{"tool": "not"}"#);
    assert_eq!(not.effect, DecisionEffect::Deny, "not unknown is unknown");
    assert_eq!(rule_ids(&not), ["not-unknown"]);
    assert_eq!(not.missing, ["a"]);

    let allow = decide(case, r#"{"tool": "allow"}"#);
    assert_eq!(allow.effect, DecisionEffect::Deny);
    assert!(allow.rules.is_empty(), "an unknown allow does not apply");
    assert_eq!(allow.missing, ["n"]);

    let compare = decide(case, r#"{"tool": "compare"}"#);
    assert_eq!(compare.effect, DecisionEffect::Deny);
    assert_eq!(compare.missing, ["n", "m"]);
}

// ---------------------------------------------------------------------------
// 4. Deny overrides; default deny.

#[test]
fn deny_overrides_allow() {
    let case = "deny_overrides";
    let decision = decide(
        case,
        r#"{"tool": "db.write", "attrs": {"env": "prod", "task": {"approved": false}}}"#,
    );
    assert_eq!(decision.effect, DecisionEffect::Deny);
    assert_eq!(decision.ttl_seconds, None);
    assert_eq!(
        rule_ids(&decision),
        ["no-unapproved-writes", "no-prod-writes"]
    );
    let allowed = decide(
        case,
        r#"{"tool": "db.write", "attrs": {"env": "dev", "task": {"approved": true}}}"#,
    );
    assert!(allowed.is_allow());
    assert_eq!(rule_ids(&allowed), ["allow-db", "allow-writes"]);
    assert_eq!(allowed.ttl_seconds, Some(60));
}

#[test]
fn default_deny() {
    let decision = decide(
        "default_deny",
        r#"{"tool": "payments.refund", "ttl": "5m"}"#,
    );
    assert_eq!(decision.effect, DecisionEffect::Deny);
    assert_eq!(decision.ttl_seconds, None);
    assert!(decision.rules.is_empty());
    assert!(decision.errors.is_empty());
    // A policy without rules denies everything.
    let empty = engine_from_text("attr x: bool\n");
    assert_eq!(
        empty
            .decide_json(r#"{"tool": "x", "attrs": {"x": true}}"#)
            .effect,
        DecisionEffect::Deny
    );
}

// ---------------------------------------------------------------------------
// 5. The ttl.

#[test]
fn ttl_is_the_minimum() {
    let case = "ttl";
    let ttl = |json: &str| decide(case, json).ttl_seconds;
    assert_eq!(ttl(r#"{"tool": "db.read"}"#), Some(300));
    assert_eq!(ttl(r#"{"tool": "db.write"}"#), Some(300));
    assert_eq!(ttl(r#"{"tool": "db.read", "ttl": "1m"}"#), Some(60));
    assert_eq!(ttl(r#"{"tool": "db.read", "ttl": 61}"#), Some(61));
    assert_eq!(ttl(r#"{"tool": "db.read", "ttl": "2h"}"#), Some(300));
    assert_eq!(ttl(r#"{"tool": "deploy.apply"}"#), Some(30));
    assert_eq!(ttl(r#"{"tool": "deploy.apply", "ttl": "10s"}"#), Some(10));
    assert_eq!(ttl(r#"{"tool": "export.run"}"#), Some(2700));
}

// ---------------------------------------------------------------------------
// 6. The deciding rules, their ids and annotations; the policy hash.

#[test]
fn deciding_rules_carry_ids_and_annotations() {
    let decision = decide(
        "rules_and_annotations",
        r#"{"tool": "db.read", "attrs": {"task.approved": true}}"#,
    );
    assert!(decision.is_allow());
    assert_eq!(decision.ttl_seconds, Some(120));
    assert_eq!(
        rule_ids(&decision),
        ["read-approved", "policy.grant:12", "policy.grant:16"]
    );
    let first = &decision.rules[0];
    assert_eq!(first.annotations["id"], "read-approved");
    assert_eq!(first.annotations["owner"], "data-platform");
    assert_eq!(first.annotations["ticket"], "SEC-1234");
    assert!(decision.rules[2].annotations.is_empty());

    let deny = decide(
        "rules_and_annotations",
        r#"{"tool": "db.drop", "attrs": {"task.approved": true}}"#,
    );
    assert_eq!(rule_ids(&deny), ["policy.grant:19"]);
    assert_eq!(deny.rules[0].annotations["owner"], "security");

    let dir = decide(
        "multi_file",
        r#"{"tool": "db.write", "attrs": {"env": "prod"}}"#,
    );
    assert_eq!(rule_ids(&dir), ["sub/rules.grant:3"]);
}

fn engine_from_text(text: &str) -> Engine {
    engine_from_files(&[("policy.grant", text)])
}

fn engine_from_files(files: &[(&str, &str)]) -> Engine {
    let mut sources = SourceMap::new();
    for (name, text) in files {
        sources.add(*name, *text);
    }
    Engine::from_sources(sources).unwrap()
}

#[test]
fn policy_hash_is_stable_and_follows_the_text() {
    let text = "attr a: bool\nallow tool \"t\" when a ttl 1m\n";
    let hash = engine_from_text(text).policy_hash().to_string();
    assert!(hash.starts_with("sha256:"), "{hash}");
    assert_eq!(hash.len(), "sha256:".len() + 64);
    assert!(
        hash["sha256:".len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    // Stable: the same text, loaded again.
    assert_eq!(engine_from_text(text).policy_hash(), hash);
    // Every decision carries it, invalid ones included.
    let engine = engine_from_text(text);
    assert_eq!(
        engine
            .decide_json(r#"{"tool": "t", "attrs": {"a": true}}"#)
            .policy_hash,
        hash
    );
    assert_eq!(engine.decide_json("not json").policy_hash, hash);
    // Any change of the text changes it, comments and whitespace included.
    let mut seen = vec![hash.clone()];
    for changed in [
        "attr a: bool\nallow tool \"t\" when a ttl 2m\n",
        "attr a: bool\nallow tool \"t\" when a ttl 1m\n# comment\n",
        "attr a: bool\nallow tool \"t\" when a ttl 1m",
        "attr a: bool\nallow tool \"t\"  when a ttl 1m\n",
        "attr a: bool\r\nallow tool \"t\" when a ttl 1m\r\n",
    ] {
        let other = engine_from_text(changed).policy_hash().to_string();
        assert!(!seen.contains(&other), "{changed:?}");
        seen.push(other);
    }
    // The same rules split differently over files, or under another file
    // name, are another policy text.
    let split = engine_from_files(&[
        ("a.grant", "attr a: bool\n"),
        ("b.grant", "allow tool \"t\" when a ttl 1m\n"),
    ]);
    let moved = engine_from_files(&[
        ("a.grant", "attr a: bool\nallow tool \"t\" when a ttl 1m\n"),
        ("b.grant", ""),
    ]);
    let renamed = engine_from_files(&[("other.grant", text)]);
    for engine in [&split, &moved, &renamed] {
        let other = engine.policy_hash().to_string();
        assert!(!seen.contains(&other));
        seen.push(other);
    }
    // Loading from disk hashes the same as the same file in memory.
    let path = policy_path("ttl");
    let from_disk = Engine::from_path(&path).unwrap();
    let in_memory = engine_from_files(&[(
        "policy.grant",
        std::fs::read_to_string(&path).unwrap().as_str(),
    )]);
    assert_eq!(from_disk.policy_hash(), in_memory.policy_hash());
}
