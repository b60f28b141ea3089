//! One decision by Grant, Cedar and regorus (RVM, and its interpreter for
//! reference) on the same generated policy at 1, 100, 1,000 and 10,000 rules,
//! all in one run, next to a baseline: a `HashMap<String, bool>` lookup of the
//! tool name, the cheapest possible "policy".
//!
//! `typed/N`: each engine's request built beforehand from typed values (for
//! Grant, a reused `Request` and `Outcome`: `Engine::decide_into`).
//! `json/N`: request JSON text in, decision out, end to end.
//! `glob_typed/N`: as `typed`, on the policy whose patterns are globs.
//!
//! Run: `cargo bench --manifest-path benches/compare/Cargo.toml`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use grant_benches::{Patterns, ToolPattern, tool_of_rule, tool_patterns};
use grant_compare::{
    CedarSide, DEPTH, GrantSide, InterpreterSide, RvmSide, SENSITIVITY_ORDINAL, flat_json,
    grant_json,
};

const SIZES: [usize; 4] = [1, 100, 1_000, 10_000];

fn configure(
    c: &mut Criterion,
    name: String,
) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

/// The baseline's table: every exact tool name of the policy.
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

/// The RVM side, or `None` (said on stderr) when regorus cannot compile it.
fn rvm_side(rules: usize, patterns: Patterns) -> Option<RvmSide> {
    match RvmSide::new(rules, patterns) {
        Ok(rvm) => Some(rvm),
        Err(error) => {
            eprintln!("regorus_rvm, {patterns:?} patterns, {rules} rules: not measured: {error}");
            None
        }
    }
}

fn typed(c: &mut Criterion, patterns: Patterns, prefix: &str, interpreter: bool) {
    for rules in SIZES {
        let tool = tool_of_rule(patterns, rules / 2);
        let table = baseline_table(rules, patterns);
        let key = match tool_patterns(patterns, rules / 2).first() {
            Some(ToolPattern::Exact(name)) => name.clone(),
            Some(ToolPattern::Prefix(p)) => p.clone(),
            Some(ToolPattern::Suffix(s)) => s.clone(),
            _ => "*".to_string(),
        };
        let mut grant = GrantSide::new(rules, patterns).unwrap();
        grant.set(&tool, SENSITIVITY_ORDINAL, DEPTH);
        assert!(grant.decide());
        let mut cedar = CedarSide::new(rules, patterns).unwrap();
        cedar.set(&tool, SENSITIVITY_ORDINAL, DEPTH).unwrap();
        assert!(cedar.decide());
        // The RVM's programs hold at most 65,535 instructions: about 3,800
        // of these rules. Past that it cannot compile the policy.
        let mut rvm = rvm_side(rules, patterns);
        if let Some(rvm) = &mut rvm {
            rvm.set(&tool, SENSITIVITY_ORDINAL, DEPTH);
            assert!(rvm.decide());
        }

        let mut group = configure(c, format!("{prefix}/{rules}"));
        group.bench_function("baseline_hashmap", |b| {
            b.iter(|| table.get(black_box(key.as_str())).copied())
        });
        group.bench_function("grant", |b| b.iter(|| grant.decide()));
        group.bench_function("cedar", |b| b.iter(|| cedar.decide()));
        if let Some(rvm) = &mut rvm {
            group.bench_function("regorus_rvm", |b| b.iter(|| rvm.decide()));
        }
        if interpreter {
            let mut interp = InterpreterSide::new(rules, patterns).unwrap();
            interp.set(&tool, SENSITIVITY_ORDINAL, DEPTH);
            assert!(interp.decide());
            group.bench_function("regorus_interpreter", |b| b.iter(|| interp.decide()));
        }
        group.finish();
    }
}

fn json(c: &mut Criterion) {
    let patterns = Patterns::Exact;
    for rules in SIZES {
        let tool = tool_of_rule(patterns, rules / 2);
        let table = baseline_table(rules, patterns);
        let grant_text = grant_json(&tool, SENSITIVITY_ORDINAL, DEPTH);
        let flat_text = flat_json(&tool, SENSITIVITY_ORDINAL, DEPTH);
        let grant = GrantSide::new(rules, patterns).unwrap();
        assert!(grant.decide_json(&grant_text));
        let cedar = CedarSide::new(rules, patterns).unwrap();
        assert!(cedar.decide_json(&flat_text));
        let mut rvm = rvm_side(rules, patterns);
        if let Some(rvm) = &mut rvm {
            assert!(rvm.decide_json(&flat_text));
        }

        let mut group = configure(c, format!("json/{rules}"));
        // Baseline: parse the flat JSON with serde_json, look the tool up.
        group.bench_function("baseline_serde_hashmap", |b| {
            b.iter(|| {
                let value: serde_json::Value = serde_json::from_str(black_box(&flat_text)).unwrap();
                value
                    .get("tool")
                    .and_then(|t| t.as_str())
                    .and_then(|t| table.get(t).copied())
            })
        });
        group.bench_function("grant", |b| {
            b.iter(|| grant.decide_json(black_box(&grant_text)))
        });
        group.bench_function("cedar", |b| {
            b.iter(|| cedar.decide_json(black_box(&flat_text)))
        });
        if let Some(rvm) = &mut rvm {
            group.bench_function("regorus_rvm", |b| {
                b.iter(|| rvm.decide_json(black_box(&flat_text)))
            });
        }
        group.finish();
    }
}

fn compare(c: &mut Criterion) {
    typed(c, Patterns::Exact, "typed", true);
    json(c);
    typed(c, Patterns::Glob, "glob_typed", false);
}

criterion_group!(benches, compare);
criterion_main!(benches);
