//! Language 0.2 obligations: on allow, the least `uses` of the applying
//! allow rules that state one and the sorted union of their approval
//! groups, each key left out when empty; a deny has none.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use grant_engine::{Engine, Obligations};

const POLICY: &str = r#"
attr amount: int
allow tool "payments.*" when amount < 100 ttl 5m uses 5 approval "finance"
allow tool "payments.payout" ttl 2m uses 1 approval "payments-oncall"
allow tool "payments.payout" ttl 2m approval "finance"
allow tool "payments.refund" ttl 1m
deny tool "payments.*" when amount > 1000
"#;

#[test]
fn an_allow_carries_the_least_uses_and_every_group_once() {
    let engine = Engine::from_text("policy.grant", POLICY).unwrap();
    let decision = engine.decide_json(r#"{"tool": "payments.payout", "attrs": {"amount": 50}}"#);
    assert_eq!(
        decision.obligations,
        Some(Obligations {
            uses: Some(1),
            approvals: vec!["finance".to_string(), "payments-oncall".to_string()],
        })
    );
    let mut request = engine.request();
    engine.read_json(
        r#"{"tool": "payments.payout", "attrs": {"amount": 50}}"#,
        &mut request,
    );
    let mut verdict = engine.verdict();
    engine.decide_into(&request, &mut verdict);
    assert_eq!(verdict.uses(), Some(1));
    assert_eq!(
        verdict.approvals().collect::<Vec<_>>(),
        ["finance", "payments-oncall"]
    );
    let explanation = engine.explain(&request);
    assert_eq!(explanation.decision, decision);
    assert!(explanation.rules.iter().any(|r| r.rule.uses == Some(1)));
}

#[test]
fn empty_keys_are_left_out_and_a_deny_has_no_obligations() {
    let engine = Engine::from_text("policy.grant", POLICY).unwrap();
    let allow = engine.decide_json(r#"{"tool": "payments.refund", "attrs": {"amount": 500}}"#);
    assert_eq!(allow.obligations, Some(Obligations::default()));
    let json = serde_json::to_string(&allow).unwrap();
    assert!(json.contains(r#""obligations":{}"#), "{json}");
    // Approvals only, no uses.
    let engine_b =
        Engine::from_text("policy.grant", r#"allow tool "t" ttl 1m approval "ops""#).unwrap();
    let json = serde_json::to_string(&engine_b.decide_json(r#"{"tool": "t"}"#)).unwrap();
    assert!(
        json.contains(r#""obligations":{"approvals":["ops"]}"#),
        "{json}"
    );

    let deny = engine.decide_json(r#"{"tool": "payments.refund", "attrs": {"amount": 5000}}"#);
    assert_eq!(deny.obligations, None);
    let json = serde_json::to_string(&deny).unwrap();
    assert!(!json.contains("obligations"), "{json}");
    let mut verdict = engine.verdict();
    let mut request = engine.request();
    engine.read_json(
        r#"{"tool": "payments.refund", "attrs": {"amount": 5000}}"#,
        &mut request,
    );
    engine.decide_into(&request, &mut verdict);
    assert_eq!(verdict.uses(), None);
    assert_eq!(verdict.approvals().count(), 0);
}
