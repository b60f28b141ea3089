//! One decision on a typed request, the zero-allocation path
//! (`Engine::decide_into` with a reused `Request` and `Verdict`), for
//! policies of 1, 100, 10,000 and 100,000 rules; and JSON request ->
//! decision. Each group has a baseline measured in the same run: a
//! `HashMap<String, bool>` lookup of the tool name (for JSON: serde_json
//! parsing the request into a `serde_json::Value`, then that lookup).
//!
//! Groups (`decide_<policy>/<case>/<rules>`):
//! - `simple_exact`, `simple_glob`, `simple_mixed`: [`simple_policy`], every
//!   rule `allow tool P when sensitivity <= L and agent.delegation_depth < D`.
//!   `hit` asks for the tool of the middle rule, whose condition is evaluated
//!   (true: allow); `miss` asks for a tool no pattern names (default deny;
//!   in `mixed` the policy's `*` rules, at most five, still match, and
//!   allow).
//! - `varied_mixed`: [`policy`], the five condition shapes of the front-end
//!   bench (sets, `matches`, durations, deny rules), every attribute given.
//! - `json`: on `simple_exact`.
//! - `any`: [`any_policy`] of 1 and 6 rules, every rule `tool *` and
//!   evaluated: (6 - 1) / 5 is the cost of one more evaluated rule.
//!
//! Run: `cargo bench -p grant-benches --bench decide`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use grant_benches::{
    Patterns, ToolPattern, UNMATCHED_TOOL, any_policy, mixed_any_rules, policy, simple_policy,
    tool_of_rule, tool_patterns,
};
use grant_engine::{Engine, Request, Value};
use grant_syntax::SourceMap;

const SIZES: [usize; 4] = [1, 100, 10_000, 100_000];

fn engine(text: String) -> Engine {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text);
    Engine::from_sources(sources).expect("the generated policy is valid")
}

/// The baseline's table: every literal tool name or glob piece of the policy.
fn baseline_table(rules: usize, patterns: Patterns) -> HashMap<String, bool> {
    (0..rules)
        .flat_map(|i| tool_patterns(patterns, i))
        .map(|p| match p {
            ToolPattern::Exact(name) => name,
            ToolPattern::Prefix(prefix) => prefix,
            ToolPattern::Suffix(suffix) => suffix,
            ToolPattern::Any => "*".to_string(),
        })
        .map(|name| (name, true))
        .collect()
}

/// The rule a `hit` asks about: the middle one, or for `mixed` the nearest
/// exact-name rule (rules `i % 10 == 0` are exact names).
fn hit_rule(rules: usize, patterns: Patterns) -> usize {
    match patterns {
        Patterns::Mixed => rules / 2 / 10 * 10,
        _ => rules / 2,
    }
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

/// Fills `request` for the simple policy: every condition true.
fn simple_request(engine: &Engine, request: &mut Request, tool: &str) {
    let sensitivity = engine.attr("sensitivity").unwrap();
    let depth = engine.attr("agent.delegation_depth").unwrap();
    request
        .clear()
        .set_tool(tool)
        .set(sensitivity, Value::Str("internal"))
        .set(depth, Value::Int(1));
    assert!(request.is_valid());
}

fn simple(c: &mut Criterion, patterns: Patterns, name: &str) {
    let mut group = configure(c, name);
    for rules in SIZES {
        let engine = engine(simple_policy(rules, patterns));
        let table = baseline_table(rules, patterns);
        let rule = hit_rule(rules, patterns);
        let tool = tool_of_rule(patterns, rule);
        let key = match tool_patterns(patterns, rule).into_iter().next() {
            Some(ToolPattern::Exact(name)) => name,
            Some(ToolPattern::Prefix(p)) => p,
            Some(ToolPattern::Suffix(s)) => s,
            _ => "*".to_string(),
        };
        let mut request = engine.request();
        let mut verdict = engine.verdict();

        simple_request(&engine, &mut request, &tool);
        engine.decide_into(&request, &mut verdict);
        assert!(verdict.is_allow(), "{name} {rules}: the hit is allowed");
        let hit = &engine.rules()[rule].id;
        assert!(
            engine
                .explain(&request)
                .rules
                .iter()
                .any(|r| &r.rule.id == hit && r.result.is_some()),
            "{name} {rules}: the hit rule's condition is evaluated"
        );
        group.bench_with_input(
            BenchmarkId::new("baseline_hashmap", rules),
            &key,
            |b, key| b.iter(|| table.get(black_box(key.as_str())).copied()),
        );
        group.bench_with_input(BenchmarkId::new("hit", rules), &rules, |b, _| {
            b.iter(|| {
                engine.decide_into(black_box(&request), &mut verdict);
                verdict.is_allow()
            })
        });

        simple_request(&engine, &mut request, UNMATCHED_TOOL);
        engine.decide_into(&request, &mut verdict);
        // Only `*` rules (mixed: at most five) match; they allow.
        assert_eq!(
            engine.explain(&request).rules.len(),
            mixed_any_rules(rules) * usize::from(patterns == Patterns::Mixed),
            "{name} {rules}: the miss matches no named rule"
        );
        group.bench_with_input(BenchmarkId::new("miss", rules), &rules, |b, _| {
            b.iter(|| {
                engine.decide_into(black_box(&request), &mut verdict);
                verdict.is_allow()
            })
        });
    }
    group.finish();
}

/// The varied policy, every attribute given, so that no condition is unknown.
fn varied(c: &mut Criterion) {
    let patterns = Patterns::Mixed;
    let mut group = configure(c, "decide_varied_mixed");
    for rules in SIZES {
        let engine = engine(policy(rules, patterns));
        // Rule `i % 10 == 0` has an exact name and the first condition shape:
        // `allow ... when sensitivity <= internal and env != prod ttl 5m`.
        let rule = hit_rule(rules, patterns);
        let tool = tool_of_rule(patterns, rule);
        let attr = |path: &str| engine.attr(path).unwrap();
        let mut request = engine.request();
        let fill = |request: &mut Request, tool: &str| {
            request
                .clear()
                .set_tool(tool)
                .set(attr("sensitivity"), Value::Str("internal"))
                .set(attr("env"), Value::Str("staging"))
                .set(attr("task.approved"), Value::Bool(true))
                .set(
                    attr("task.labels"),
                    Value::Set(&[Value::Str("pci"), Value::Str("eu")]),
                )
                .set(attr("task.elapsed"), Value::Duration(600))
                .set(attr("agent.delegation_depth"), Value::Int(1))
                .set(attr("agent.workload"), Value::Str("spiffe://prod/agent-7"));
            assert!(request.is_valid());
        };
        let mut verdict = engine.verdict();
        fill(&mut request, &tool);
        engine.decide_into(&request, &mut verdict);
        assert!(verdict.is_allow(), "varied {rules}: the hit is allowed");
        group.bench_with_input(BenchmarkId::new("hit", rules), &rules, |b, _| {
            b.iter(|| {
                engine.decide_into(black_box(&request), &mut verdict);
                verdict.is_allow()
            })
        });
        fill(&mut request, UNMATCHED_TOOL);
        group.bench_with_input(BenchmarkId::new("miss", rules), &rules, |b, _| {
            b.iter(|| {
                engine.decide_into(black_box(&request), &mut verdict);
                verdict.is_allow()
            })
        });
    }
    group.finish();
}

fn json(c: &mut Criterion) {
    let patterns = Patterns::Exact;
    let mut group = configure(c, "decide_json");
    for rules in [1, 100_000] {
        let engine = engine(simple_policy(rules, patterns));
        let table = baseline_table(rules, patterns);
        let tool = tool_of_rule(patterns, rules / 2);
        let text = format!(
            r#"{{"tool": "{tool}", "attrs": {{"sensitivity": "internal", "agent": {{"delegation_depth": 1}}}}}}"#
        );
        assert!(engine.decide_json(&text).is_allow());
        group.bench_with_input(
            BenchmarkId::new("baseline_serde_hashmap", rules),
            &text,
            |b, text| {
                b.iter(|| {
                    let value: serde_json::Value = serde_json::from_str(black_box(text)).unwrap();
                    value
                        .get("tool")
                        .and_then(|t| t.as_str())
                        .and_then(|t| table.get(t).copied())
                })
            },
        );
        let mut request = engine.request();
        let mut verdict = engine.verdict();
        group.bench_with_input(
            BenchmarkId::new("read_json_decide_into", rules),
            &text,
            |b, text| {
                b.iter(|| {
                    engine.read_json(black_box(text), &mut request);
                    engine.decide_into(&request, &mut verdict);
                    verdict.is_allow()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("decide_json", rules), &text, |b, text| {
            b.iter(|| engine.decide_json(black_box(text)))
        });
    }
    group.finish();
}

/// Every rule `tool *` (`any_policy`), all evaluated: the difference between
/// 6 rules and 1 is the cost of 5 more evaluated rules.
fn any(c: &mut Criterion) {
    let mut group = configure(c, "decide_any");
    for rules in [1, 6] {
        let engine = engine(any_policy(rules));
        let mut request = engine.request();
        let mut verdict = engine.verdict();
        simple_request(&engine, &mut request, UNMATCHED_TOOL);
        engine.decide_into(&request, &mut verdict);
        assert!(verdict.is_allow() && verdict.rules().count() == rules);
        group.bench_with_input(BenchmarkId::new("hit", rules), &rules, |b, _| {
            b.iter(|| {
                engine.decide_into(black_box(&request), &mut verdict);
                verdict.is_allow()
            })
        });
    }
    group.finish();
}

fn decide(c: &mut Criterion) {
    simple(c, Patterns::Exact, "decide_simple_exact");
    simple(c, Patterns::Glob, "decide_simple_glob");
    simple(c, Patterns::Mixed, "decide_simple_mixed");
    varied(c);
    json(c);
    any(c);
}

criterion_group!(benches, decide);
criterion_main!(benches);
