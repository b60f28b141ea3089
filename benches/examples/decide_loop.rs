//! Decides one typed request a given number of times, for counting
//! instructions per decision with `valgrind --tool=callgrind` (repeatable,
//! unlike wall time on a shared machine):
//!
//! ```sh
//! cargo build --release -p grant-benches --example decide_loop
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*decide_many*' \
//!     target/release/examples/decide_loop 1 10000
//! ```
//! With `--toggle-collect`, only the decisions are counted: divide by the
//! count. (Without it, run two counts and divide the difference by the
//! difference of counts to remove setup.)
//!
//! Arguments: `RULES DECISIONS [exact|glob|mixed|any] [hit|miss]` (default
//! `exact hit`): the `simple_policy` of the decide bench, and its request
//! for the middle rule's tool (`mixed`: the nearest exact-name rule, as the
//! bench's `hit`), or for a tool no pattern names (`miss`). `any`: the
//! `any_policy`, every rule `tool *` and evaluated: the difference between
//! two sizes is the cost per evaluated rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use grant_benches::{Patterns, UNMATCHED_TOOL, any_policy, simple_policy, tool_of_rule};
use grant_engine::{Engine, Request, Value, Verdict};
use grant_syntax::SourceMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let rules: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let decisions: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let shape = args.next();
    let any = shape.as_deref() == Some("any");
    let patterns = match shape.as_deref() {
        None | Some("exact") | Some("any") => Patterns::Exact,
        Some("glob") => Patterns::Glob,
        Some("mixed") => Patterns::Mixed,
        Some(other) => panic!("patterns: exact, glob or mixed, not {other:?}"),
    };
    let hit = match args.next().as_deref() {
        None | Some("hit") => true,
        Some("miss") => false,
        Some(other) => panic!("case: hit or miss, not {other:?}"),
    };
    let mut sources = SourceMap::new();
    let text = if any {
        any_policy(rules)
    } else {
        simple_policy(rules, patterns)
    };
    sources.add("policy.grant", text);
    let engine = Engine::from_sources(sources).unwrap();
    let sensitivity = engine.attr("sensitivity").unwrap();
    let depth = engine.attr("agent.delegation_depth").unwrap();
    let rule = match patterns {
        Patterns::Mixed => rules / 2 / 10 * 10,
        _ => rules / 2,
    };
    let tool = if hit {
        tool_of_rule(patterns, rule)
    } else {
        UNMATCHED_TOOL.to_string()
    };
    let mut request = engine.request();
    request
        .set_tool(&tool)
        .set(sensitivity, Value::Str("internal"))
        .set(depth, Value::Int(1));
    let mut verdict = engine.verdict();
    // Warm the verdict's buffers, outside the counted function.
    engine.decide_into(&request, &mut verdict);
    let allowed = decide_many(&engine, &request, &mut verdict, decisions);
    if hit || any || patterns == Patterns::Mixed {
        assert_eq!(allowed, decisions, "the request is allowed");
    }
    println!("{} rules deciding per decision", verdict.rules().count());
}

/// The decisions alone, for `--toggle-collect`.
#[inline(never)]
fn decide_many(engine: &Engine, request: &Request, verdict: &mut Verdict, n: usize) -> usize {
    let mut allowed = 0usize;
    for _ in 0..n {
        engine.decide_into(std::hint::black_box(request), verdict);
        allowed += usize::from(verdict.is_allow());
    }
    allowed
}
