//! Requests at and over their limits, and the request choices of
//! docs/language.md that the decision snapshots do not show: a byte-order
//! mark, `-0`, a request that breaks off, groups given `null` twice.

#![allow(clippy::unwrap_used, clippy::panic)] // tests: a failed unwrap is a failed test

use grant_engine::{Decision, Engine, RequestLimits, Value};
use grant_syntax::SourceMap;

const POLICY: &str = r#"
type env = dev | prod
attr env: env
attr depth: int
attr name: string
attr labels: set<string>
attr task.approved: bool
attr task.approver: string
attr taskforce.size: int

allow tool "db.*" when depth == 0 and env == dev ttl 5m
allow tool "*" when name == "x" or "pci" in labels or task.approved or task.approver == "x" or taskforce.size > 1 ttl 1m
"#;

fn engine() -> Engine {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", POLICY);
    Engine::from_sources(sources).unwrap()
}

fn denied_with(decision: &Decision, fragment: &str) {
    assert!(!decision.is_allow(), "{decision:?}");
    assert!(
        decision.rules.is_empty(),
        "invalid requests are not evaluated"
    );
    assert!(
        decision.errors.iter().any(|e| e.contains(fragment)),
        "no error with {fragment:?} in {:?}",
        decision.errors
    );
    for error in &decision.errors {
        assert!(error.len() < 400, "an error quotes too much: {error}");
    }
}

#[test]
fn engines_stay_shareable() {
    fn shareable<T: Clone + Send + Sync>() {}
    shareable::<Engine>();
    shareable::<RequestLimits>();
}

#[test]
fn default_limits() {
    let limits = RequestLimits::default();
    assert_eq!(limits.tool_bytes, 4096);
    assert_eq!(limits.string_bytes, 65_536);
    assert_eq!(limits.set_elements, 10_000);
    assert_eq!(limits.json_bytes, 1_048_576);
    assert_eq!(engine().limits(), &limits);
}

#[test]
fn a_tool_name_over_the_limit_is_refused_without_being_echoed() {
    let engine = engine();
    let at_limit = format!("db.{}", "r".repeat(4093));
    let decision = engine.decide_json(format!(
        r#"{{"tool": "{at_limit}", "attrs": {{"depth": 0, "env": "dev"}}}}"#
    ));
    assert!(decision.is_allow(), "{:?}", decision.errors);

    let over = format!("{at_limit}r");
    let json = format!(r#"{{"tool": "{over}", "attrs": {{"depth": 0, "env": "dev"}}}}"#);
    let decision = engine.decide_json(&json);
    denied_with(&decision, "`tool` has 4097 bytes, over the limit of 4096");
    // The typed setter says the same.
    let mut request = engine.request();
    request.set_tool(&over);
    let decision = engine.decide(&request);
    denied_with(&decision, "`tool` has 4097 bytes, over the limit of 4096");
    assert!(decision.errors[0].contains("(it begins `db.rrr"));
}

#[test]
fn strings_and_sets_over_the_limits_are_refused() {
    let engine = engine();
    let long = "s".repeat(65_537);
    let decision = engine.decide_json(format!(r#"{{"tool": "t", "attrs": {{"name": "{long}"}}}}"#));
    denied_with(
        &decision,
        "attribute `name` has a string of 65537 bytes, over the limit of 65536",
    );
    let decision = engine.decide_json(format!(
        r#"{{"tool": "t", "attrs": {{"labels": ["a", "{long}"]}}}}"#
    ));
    denied_with(&decision, "attribute `labels` has a string of 65537 bytes");
    // Enum variants are strings too.
    let decision = engine.decide_json(format!(r#"{{"tool": "t", "attrs": {{"env": "{long}"}}}}"#));
    denied_with(&decision, "attribute `env` has a string of 65537 bytes");

    let elements: Vec<String> = (0..10_001).map(|i| format!("\"{i}\"")).collect();
    let decision = engine.decide_json(format!(
        r#"{{"tool": "t", "attrs": {{"labels": [{}]}}}}"#,
        elements.join(",")
    ));
    denied_with(
        &decision,
        "attribute `labels` has a set of 10001 elements, over the limit of 10000",
    );
    let decision = engine.decide_json(format!(
        r#"{{"tool": "t", "attrs": {{"labels": [{}]}}}}"#,
        elements.get(..10_000).unwrap().join(",")
    ));
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);

    let labels = engine.attr("labels").unwrap();
    let name = engine.attr("name").unwrap();
    let items: Vec<Value> = (0..10_001).map(|_| Value::Str("x")).collect();
    let mut request = engine.request();
    request.set_tool("t").set(labels, Value::Set(&items));
    denied_with(&engine.decide(&request), "has a set of 10001 elements");
    request.clear().set_tool("t").set(name, Value::Str(&long));
    denied_with(&engine.decide(&request), "has a string of 65537 bytes");
}

#[test]
fn request_json_over_the_limit_is_refused_unread() {
    let engine = engine();
    let padding = " ".repeat(1024 * 1024);
    let decision = engine.decide_json(format!(r#"{{"tool": "t"}}{padding}"#));
    denied_with(&decision, "bytes of JSON, over the limit of 1048576");
    assert_eq!(decision.errors.len(), 1);
}

#[test]
fn an_embedder_sets_the_limits() {
    let limits = RequestLimits {
        tool_bytes: 8,
        string_bytes: 4,
        set_elements: 2,
        json_bytes: 200,
    };
    let engine = engine().with_limits(limits);
    assert_eq!(engine.limits(), &limits);
    denied_with(
        &engine.decide_json(r#"{"tool": "db.read.x"}"#),
        "over the limit of 8",
    );
    denied_with(
        &engine.decide_json(r#"{"tool": "db", "attrs": {"name": "12345"}}"#),
        "over the limit of 4",
    );
    denied_with(
        &engine.decide_json(r#"{"tool": "db", "attrs": {"labels": ["a", "b", "c"]}}"#),
        "has a set of 3 elements, over the limit of 2",
    );
    denied_with(
        &engine.decide_json(format!(r#"{{"tool": "db"}}{}"#, " ".repeat(200))),
        "over the limit of 200",
    );
    // Requests the engine makes carry its limits; another engine's defaults
    // are untouched.
    let mut request = engine.request();
    assert_eq!(request.limits(), &limits);
    request.set_tool("db.read.x");
    assert!(!request.is_valid());
    let mut request = self::engine().request();
    request.set_tool("db.read.x");
    assert!(request.is_valid());
}

#[test]
fn reasons_quote_the_tool_short_and_escaped() {
    let engine = engine();
    let tool = format!("\u{1b}[31m{}", "y".repeat(4000));
    let mut request = engine.request();
    request.set_tool(&tool);
    let decision = engine.decide(&request);
    assert!(decision.errors.is_empty());
    let reason = decision
        .reasons
        .iter()
        .find(|r| r.starts_with("no rule allows tool"))
        .unwrap();
    assert!(
        reason.starts_with("no rule allows tool `\\u{1b}[31myyy"),
        "{reason}"
    );
    assert!(reason.contains("y…`"), "{reason}");
    assert!(reason.len() < 200, "{reason}");
    assert!(!reason.contains('\u{1b}'));
}

#[test]
fn a_byte_order_mark_before_a_request_is_ignored() {
    let engine = engine();
    let decision = engine.decide_json(
        "\u{feff}{\"tool\": \"db.read\", \"attrs\": {\"depth\": 0, \"env\": \"dev\"}}",
    );
    assert!(decision.is_allow(), "{:?}", decision.errors);
    // Only first: anywhere else it is not JSON.
    let decision = engine.decide_json("{\"tool\": \"db.read\"}\u{feff}");
    denied_with(&decision, "malformed request JSON");
}

#[test]
fn minus_zero_is_zero() {
    let engine = engine();
    let decision =
        engine.decide_json(r#"{"tool": "db.read", "attrs": {"depth": -0, "env": "dev"}}"#);
    assert!(decision.is_allow(), "{:?}", decision.errors);
    // In a string it is text, and `-0.0` is a fraction.
    let decision = engine.decide_json(r#"{"tool": "q", "attrs": {"name": "-0", "depth": -0.0}}"#);
    denied_with(&decision, "-0.0 is a fraction");
    assert_eq!(decision.errors.len(), 1, "{:?}", decision.errors);
    // A `-0` after an escaped quote in a string is still inside the string.
    let decision = engine.decide_json(r#"{"tool": "q", "attrs": {"name": "a\"-0", "depth": -0}}"#);
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
}

#[test]
fn json_that_breaks_off_gives_one_error() {
    let engine = engine();
    // A hundred undeclared attributes, then the JSON ends.
    let attrs: Vec<String> = (0..100).map(|i| format!("\"x{i}\": 1")).collect();
    let decision = engine.decide_json(format!(r#"{{"tool": "t", "attrs": {{{}"#, attrs.join(", ")));
    assert_eq!(decision.errors.len(), 1, "{:?}", decision.errors);
    denied_with(
        &decision,
        "malformed request JSON: EOF while parsing an object at line 1 column",
    );
    // Nested deeper than the JSON reader goes: one error, not one per level.
    let json = format!(
        r#"{{"tool": "t", "attrs": {}{}"#,
        r#"{"a": "#.repeat(300),
        "}".repeat(301)
    );
    let decision = engine.decide_json(&json);
    assert_eq!(decision.errors.len(), 1, "{:?}", decision.errors);
    denied_with(
        &decision,
        "malformed request JSON: recursion limit exceeded",
    );
    // The malformed error quotes the request only briefly.
    let decision = engine.decide_json(format!("\"{}\"", "z".repeat(100_000)));
    denied_with(&decision, "malformed request JSON: invalid type: string");
}

#[test]
fn groups_given_null() {
    let engine = engine();
    // `task` holds `task.approved` and `task.approver`, not `taskforce.size`.
    let decision =
        engine.decide_json(r#"{"tool": "t", "attrs": {"task": null, "taskforce": {"size": 2}}}"#);
    assert!(decision.is_allow(), "{:?}", decision.errors);
    let decision =
        engine.decide_json(r#"{"tool": "t", "attrs": {"task": null, "task.approver": "x"}}"#);
    denied_with(&decision, "attribute `task.approver` is given twice");
    // A group given null again is one error, however many times.
    let json = format!(
        r#"{{"tool": "t", "attrs": {{{}}}}}"#,
        vec![r#""task": null"#; 1000].join(", ")
    );
    let decision = engine.decide_json(&json);
    assert_eq!(
        decision.errors.len(),
        999,
        "one per repeat: {:?}",
        &decision.errors[..3]
    );
    denied_with(&decision, "attribute `task.approved` is given twice");
    let decision = engine.decide_json(r#"{"tool": "t", "attrs": {"tas": null}}"#);
    denied_with(&decision, "attribute `tas` is not declared by the policy");
    let decision = engine.decide_json(r#"{"tool": "t", "attrs": {"task.approved.x": null}}"#);
    denied_with(&decision, "attribute `task.approved.x` is not declared");
}
