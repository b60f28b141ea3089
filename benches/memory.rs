//! Heap retained per compiled rule, and allocations per decision, counted
//! by a counting global allocator (`stats_alloc`, which wraps the system
//! allocator and counts the bytes each call asks for; the allocator's own
//! per-block overhead is not included, so the live block count is printed
//! too). Not a criterion bench: it prints figures.
//!
//! Run: `cargo bench -p grant-benches --bench memory`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;

use grant_benches::{Patterns, UNMATCHED_TOOL, policy, simple_policy, tool_of_rule};
use grant_compile::Built;
use grant_engine::{Engine, Value};
use grant_syntax::SourceMap;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes and blocks allocated and not freed since `region` began.
fn live(region: &Region<'_, System>) -> (i64, i64) {
    let change = region.change();
    (
        change.bytes_allocated as i64 - change.bytes_deallocated as i64,
        change.allocations as i64 - change.deallocations as i64,
    )
}

fn sources(text: &str) -> SourceMap {
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text.to_string());
    sources
}

/// Peak resident set size of the process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn retained(name: &str, rules: usize, text: &str) {
    // The engine, with everything it keeps: the program, the source text
    // (kept for explanations and diagnostics), the attribute tables.
    let region = Region::new(GLOBAL);
    let engine = Engine::from_sources(sources(text)).expect("valid");
    let (engine_bytes, engine_blocks) = live(&region);
    drop(engine);

    // The compiled program alone: what the evaluator reads.
    let map = sources(text);
    let region = Region::new(GLOBAL);
    let Built {
        policy,
        program,
        diagnostics,
    } = grant_compile::build(&map);
    let during = region.change();
    drop(policy);
    drop(diagnostics);
    let program = program.expect("valid");
    let (program_bytes, program_blocks) = live(&region);
    drop(program);

    let per = |bytes: i64| bytes as f64 / rules as f64;
    println!(
        "{name:<14} {rules:>7} rules | text {:>6.1} B/rule | engine {:>7.1} B/rule ({:>5.2} blocks/rule) | program {:>7.1} B/rule ({:>5.2} blocks/rule) | build allocates {:>7.1} B/rule in {:>6.1} calls/rule | peak RSS so far {} KiB",
        per(text.len() as i64),
        per(engine_bytes),
        engine_blocks as f64 / rules as f64,
        per(program_bytes),
        program_blocks as f64 / rules as f64,
        per(during.bytes_allocated as i64),
        during.allocations as f64 / rules as f64,
        peak_rss_kib().map_or_else(|| "?".to_string(), |k| k.to_string()),
    );
}

fn allocations_per_decision() {
    const CALLS: usize = 10_000;
    let rules = 10_000;
    let engine = Engine::from_sources(sources(&simple_policy(rules, Patterns::Exact))).unwrap();
    let sensitivity = engine.attr("sensitivity").unwrap();
    let depth = engine.attr("agent.delegation_depth").unwrap();
    let tool = tool_of_rule(Patterns::Exact, rules / 2);
    let mut request = engine.request();
    let mut verdict = engine.verdict();
    let json = format!(
        r#"{{"tool": "{tool}", "attrs": {{"sensitivity": "internal", "agent": {{"delegation_depth": 1}}}}}}"#
    );

    let measure = |what: &str, f: &mut dyn FnMut()| {
        f(); // warm the buffers up
        let region = Region::new(GLOBAL);
        for _ in 0..CALLS {
            f();
        }
        let change = region.change();
        println!(
            "{what:<48} {:>6.2} allocations, {:>7.1} bytes per call",
            change.allocations as f64 / CALLS as f64,
            change.bytes_allocated as f64 / CALLS as f64
        );
    };

    measure("decide_into, typed request reused (hit)", &mut || {
        request
            .clear()
            .set_tool(&tool)
            .set(sensitivity, Value::Str("internal"))
            .set(depth, Value::Int(1));
        engine.decide_into(&request, &mut verdict);
        assert!(verdict.is_allow());
    });
    let mut request = engine.request();
    let mut verdict = engine.verdict();
    measure("decide_into, typed request reused (miss)", &mut || {
        request
            .clear()
            .set_tool(UNMATCHED_TOOL)
            .set(sensitivity, Value::Str("internal"))
            .set(depth, Value::Int(1));
        engine.decide_into(&request, &mut verdict);
        assert!(!verdict.is_allow());
    });
    let mut request = engine.request();
    let mut verdict = engine.verdict();
    measure("read_json into a reused request + decide_into", &mut || {
        engine.read_json(black_box(&json), &mut request);
        engine.decide_into(&request, &mut verdict);
        assert!(verdict.is_allow());
    });
    measure("decide_json (a new Request and a Decision)", &mut || {
        assert!(engine.decide_json(black_box(&json)).is_allow());
    });
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    println!("retained heap (bytes asked of the allocator, net of frees):");
    for rules in [10_000, 100_000] {
        retained("varied_mixed", rules, &policy(rules, Patterns::Mixed));
        retained(
            "simple_exact",
            rules,
            &simple_policy(rules, Patterns::Exact),
        );
    }
    println!();
    println!("allocations per decision (simple_exact, 10,000 rules, after warm-up):");
    allocations_per_decision();
}
