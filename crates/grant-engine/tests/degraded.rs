//! Degraded decisions (the spec's "Failure behaviour", store unavailable):
//! `decide_degraded` applies every deny rule as usual but only the allow
//! rules whose condition reads `ledger.degraded`; ttl and obligations
//! combine over those. `tests/degraded/` holds the policy and the requests;
//! the snapshot shows each request decided normally and degraded (or that
//! the two are the same). Review changes with `cargo insta review`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::fmt::Write;
use std::path::{Path, PathBuf};

use grant_engine::{Decision, DecisionEffect, Engine, Obligations, Value};

const DEGRADED_REASON: &str = "while the ledger is degraded (allow rules apply then only if their condition reads `ledger.degraded`)";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/degraded")
}

fn engine() -> Engine {
    Engine::from_path(dir().join("policy.grant")).unwrap()
}

/// One JSON request, decided normally and degraded.
fn both(engine: &Engine, json: &str) -> (Decision, Decision) {
    let mut request = engine.request();
    engine.read_json(json, &mut request);
    (engine.decide(&request), engine.decide_degraded(&request))
}

fn rule_ids(decision: &Decision) -> Vec<&str> {
    decision.rules.iter().map(|r| r.id.as_str()).collect()
}

fn pretty(engine: &Engine, decision: &Decision) -> String {
    serde_json::to_string_pretty(decision)
        .unwrap()
        .replace(engine.policy_hash(), "<policy_hash>")
}

#[test]
fn degraded_decisions() {
    let engine = engine();
    let requests = std::fs::read_to_string(dir().join("requests.jsonl")).unwrap();
    let mut out = String::new();
    let mut in_comment = false;
    for line in requests.lines() {
        if line.trim().is_empty() {
            in_comment = false;
            continue;
        }
        if line.starts_with('#') {
            // A comment's lines stay together.
            let gap = if in_comment { "" } else { "\n" };
            writeln!(out, "{gap}{line}").unwrap();
            in_comment = true;
            continue;
        }
        in_comment = false;
        let (normal, degraded) = both(&engine, line);
        // The normal path is the one it was: `decide_json` decides alone.
        assert_eq!(normal, engine.decide_json(line), "{line}");
        // What the mode changes stands out: the same decision is not repeated.
        let degraded = if degraded == normal {
            "the same".to_string()
        } else {
            pretty(&engine, &degraded)
        };
        writeln!(
            out,
            "\n> {line}\nnormal: {}\ndegraded: {degraded}",
            pretty(&engine, &normal),
        )
        .unwrap();
    }
    insta::assert_snapshot!(out);
}

#[test]
fn an_allow_that_reads_ledger_degraded_applies() {
    let (normal, degraded) = both(
        &engine(),
        r#"{"tool": "db.read", "attrs": {"sensitivity": "public", "ledger": {"degraded": true}}}"#,
    );
    assert!(degraded.is_allow());
    assert_eq!(rule_ids(&degraded), ["read-degraded"]);
    assert_eq!(degraded.ttl_seconds, Some(30));
    // The normal decision reads the same value: the caller sets it, not the
    // mode.
    assert_eq!(normal, degraded);

    let (normal, degraded) = both(
        &engine(),
        r#"{"tool": "db.read", "attrs": {"sensitivity": "internal", "ledger": {"degraded": false}}}"#,
    );
    assert_eq!(rule_ids(&normal), ["read-normal"]);
    assert_eq!(
        normal, degraded,
        "`read-normal` reads `ledger.degraded` too"
    );
}

#[test]
fn an_allow_whose_condition_does_not_read_it_is_left_out() {
    let (normal, degraded) = both(
        &engine(),
        r#"{"tool": "db.write", "attrs": {"task": {"approved": true}, "ledger": {"degraded": true}}}"#,
    );
    assert_eq!(rule_ids(&normal), ["write-approved"]);
    assert_eq!(degraded.effect, DecisionEffect::Deny);
    assert!(degraded.rules.is_empty());
    assert_eq!(degraded.obligations, None);
    assert_eq!(
        degraded.reasons,
        [format!("no rule allows tool `db.write` {DEGRADED_REASON}")]
    );
}

#[test]
fn an_allow_without_condition_is_left_out() {
    let (normal, degraded) = both(
        &engine(),
        r#"{"tool": "db.list", "attrs": {"ledger": {"degraded": true}}}"#,
    );
    assert_eq!(rule_ids(&normal), ["list-always"]);
    assert!(!degraded.is_allow());
    assert_eq!(
        degraded.reasons,
        [format!("no rule allows tool `db.list` {DEGRADED_REASON}")]
    );
}

#[test]
fn deny_rules_apply_as_usual() {
    let engine = engine();
    for json in [
        r#"{"tool": "payments.refund", "attrs": {"amount": 5000, "ledger": {"degraded": true}}}"#,
        r#"{"tool": "db.read", "attrs": {"sensitivity": "confidential", "ledger": {"degraded": true}}}"#,
    ] {
        let (normal, degraded) = both(&engine, json);
        assert_eq!(degraded.effect, DecisionEffect::Deny, "{json}");
        assert_eq!(degraded.rules.len(), 1, "{json}");
        assert_eq!(normal, degraded, "{json}");
    }
    // An unknown deny applies: fail closed.
    let (normal, degraded) = both(
        &engine,
        r#"{"tool": "payments.refund", "attrs": {"ledger": {"degraded": true}}}"#,
    );
    assert_eq!(rule_ids(&degraded), ["big-refunds"]);
    assert_eq!(degraded.missing, ["amount"]);
    assert_eq!(normal, degraded);
}

#[test]
fn obligations_combine_over_the_remaining_allows() {
    let engine = engine();
    let approved = r#""amount": 20, "task": {"approved": true}"#;
    let (normal, _) = both(
        &engine,
        &format!(
            r#"{{"tool": "payments.refund", "attrs": {{{approved}, "ledger": {{"degraded": false}}}}}}"#
        ),
    );
    assert_eq!(rule_ids(&normal), ["refund-small", "refund-capped"]);
    assert_eq!(normal.ttl_seconds, Some(30));
    assert_eq!(
        normal.obligations,
        Some(Obligations {
            uses: Some(1),
            approvals: vec!["finance".to_string()],
        })
    );

    let json = format!(
        r#"{{"tool": "payments.refund", "attrs": {{{approved}, "ledger": {{"degraded": true}}}}}}"#
    );
    let (normal, degraded) = both(&engine, &json);
    assert_eq!(
        rule_ids(&normal),
        ["refund-small", "refund-degraded", "refund-capped"]
    );
    assert_eq!(normal.ttl_seconds, Some(30));
    // `refund-small` is left out: its 30s, `uses 1` and group go with it.
    assert_eq!(rule_ids(&degraded), ["refund-degraded", "refund-capped"]);
    assert_eq!(degraded.ttl_seconds, Some(120));
    assert_eq!(
        degraded.obligations,
        Some(Obligations {
            uses: Some(2),
            approvals: vec!["oncall".to_string()],
        })
    );

    // The typed path says the same.
    let mut request = engine.request();
    engine.read_json(&json, &mut request);
    let mut verdict = engine.verdict();
    engine.decide_degraded_into(&request, &mut verdict);
    assert_eq!(verdict.ttl_seconds(), Some(120));
    assert_eq!(verdict.uses(), Some(2));
    assert_eq!(verdict.approvals().collect::<Vec<_>>(), ["oncall"]);
    assert_eq!(verdict.to_decision(), degraded);
}

/// A verdict decided degraded and then normally holds the normal decision
/// alone, and the other way round.
#[test]
fn a_reused_verdict_keeps_nothing_of_the_other_mode() {
    let engine = engine();
    let mut verdict = engine.verdict();
    let mut request = engine.request();
    for json in [
        r#"{"tool": "db.list", "attrs": {"ledger": {"degraded": true}}}"#,
        r#"{"tool": "fs.read", "attrs": {"ledger": {"degraded": true}}}"#,
        r#"{"tool": "db.write", "attrs": {"task": {"approved": false}, "ledger": {"degraded": true}}}"#,
    ] {
        engine.read_json(json, &mut request);
        let (normal, degraded) = (engine.decide(&request), engine.decide_degraded(&request));
        engine.decide_degraded_into(&request, &mut verdict);
        engine.decide_into(&request, &mut verdict);
        assert_eq!(verdict.to_decision(), normal, "{json}");
        engine.decide_degraded_into(&request, &mut verdict);
        assert_eq!(verdict.to_decision(), degraded, "{json}");
    }
}

#[test]
fn a_tool_without_allow_rules_and_an_invalid_request_are_denied_as_usual() {
    let engine = engine();
    let (normal, degraded) = both(
        &engine,
        r#"{"tool": "fs.read", "attrs": {"ledger": {"degraded": true}}}"#,
    );
    assert_eq!(normal, degraded);
    assert_eq!(
        degraded.reasons,
        ["no rule allows tool `fs.read`, so it is denied by default"]
    );
    let (normal, degraded) = both(
        &engine,
        r#"{"tool": "db.read", "attrs": {"sensitivity": "secret"}}"#,
    );
    assert!(!degraded.errors.is_empty());
    assert_eq!(normal, degraded);
}

/// A policy that does not declare `ledger.degraded` has no allow rule that
/// reads it: while degraded it only denies.
#[test]
fn a_policy_without_ledger_degraded_only_denies() {
    let engine = Engine::from_text(
        "policy.grant",
        "attr n: int\nallow tool \"t\" when n < 5 ttl 1m\nallow tool \"t\" ttl 1m\ndeny tool \"t\" when n > 9\n",
    )
    .unwrap();
    let n = engine.attr("n").unwrap();
    let mut request = engine.request();
    request.set_tool("t").set(n, Value::Int(1));
    assert!(engine.decide(&request).is_allow());
    let degraded = engine.decide_degraded(&request);
    assert!(!degraded.is_allow());
    assert_eq!(
        degraded.reasons,
        [format!("no rule allows tool `t` {DEGRADED_REASON}")]
    );
    request.clear().set_tool("t").set(n, Value::Int(10));
    let degraded = engine.decide_degraded(&request);
    assert_eq!(rule_ids(&degraded), ["policy.grant:4"]);
}
