//! Parse+check+compile time over a generated policy of 10,000 rules (the
//! front-end bench's policy), per stage, with the same-run baseline of the
//! front-end bench: lexing the text with the logos lexer.
//!
//! - `baseline_lex`: the logos lexer over the text;
//! - `parse_check`: `grant_check::check` (parse, lower, check);
//! - `build`: `grant_compile::build` (parse, check, compile);
//! - `compile_only`: `grant_compile::compile` of the checked policy (the
//!   compiler's own share, parsing and checking done beforehand);
//! - `engine`: `Engine::from_sources` (build, plus the policy hash and the
//!   attribute tables: what loading a policy costs).
//!
//! Criterion reports time per iteration (10,000 rules) and rules/s; divide
//! the time by 10,000 for time per rule. Memory per rule: the `memory` bench.
//!
//! Run: `cargo bench -p grant-benches --bench compile`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use grant_benches::{Patterns, policy};
use grant_engine::Engine;
use grant_syntax::SourceMap;

const RULES: usize = 10_000;

fn compile(c: &mut Criterion) {
    let text = policy(RULES, Patterns::Mixed);
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text.clone());
    let built = grant_compile::build(&sources);
    assert!(
        !built.has_errors() && built.program.is_some(),
        "the generated policy must compile"
    );
    drop(built);

    let mut group = c.benchmark_group("compile_10k_rules");
    group
        .throughput(Throughput::Elements(RULES as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("baseline_lex", |b| {
        b.iter(|| grant_syntax::lexer::tokens(&text).count())
    });
    group.bench_function("parse_check", |b| b.iter(|| grant_check::check(&sources)));
    group.bench_function("build", |b| b.iter(|| grant_compile::build(&sources)));
    let checked = grant_check::check(&sources);
    group.bench_function("compile_only", |b| {
        b.iter(|| grant_compile::compile(&checked.policy).unwrap())
    });
    group.bench_function("engine", |b| {
        b.iter(|| Engine::from_sources(sources.clone()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
