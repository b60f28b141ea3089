//! Decides one typed request a given number of times, for counting
//! instructions per decision with `valgrind --tool=callgrind` (repeatable,
//! unlike wall time on a shared machine):
//!
//! ```sh
//! cargo build --release -p grant-benches --example decide_loop
//! valgrind --tool=callgrind target/release/examples/decide_loop 1 100000
//! ```
//! Run it with two counts and divide the difference by the difference of
//! counts to remove setup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use grant_benches::{Patterns, simple_policy, tool_of_rule};
use grant_engine::{Engine, Value};
use grant_syntax::SourceMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let rules: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let decisions: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut sources = SourceMap::new();
    sources.add("policy.grant", simple_policy(rules, Patterns::Exact));
    let engine = Engine::from_sources(sources).unwrap();
    let sensitivity = engine.attr("sensitivity").unwrap();
    let depth = engine.attr("agent.delegation_depth").unwrap();
    let mut request = engine.request();
    request
        .set_tool(&tool_of_rule(Patterns::Exact, rules / 2))
        .set(sensitivity, Value::Str("internal"))
        .set(depth, Value::Int(1));
    let mut verdict = engine.verdict();
    let mut allowed = 0usize;
    for _ in 0..decisions {
        engine.decide_into(std::hint::black_box(&request), &mut verdict);
        allowed += usize::from(verdict.is_allow());
    }
    assert_eq!(allowed, decisions, "the request is allowed");
}
