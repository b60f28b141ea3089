//! Loads the generated 10,000-rule policy of the compile bench once, one
//! stage of it inside a function of its own, for counting instructions per
//! rule with `valgrind --tool=callgrind` (repeatable, unlike wall time on a
//! shared machine):
//!
//! ```sh
//! cargo build --release -p grant-benches --example load_loop
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
//!     target/release/examples/load_loop engine 10000
//! ```
//!
//! Stages: `parse` (the parser alone), `check` (parse and check:
//! `grant_check::check`), `compile` (`grant_compile::compile` of the
//! checked policy), `engine` (`Engine::from_sources`: all of it, plus the
//! engine's tables). `engine` minus `parse` is what loading costs beyond
//! parsing. Divide by the number of rules. Prints the stage's wall time
//! (for `engine 100000`: how long a 100,000-rule policy takes to load).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use grant_benches::{Patterns, policy};
use grant_engine::Engine;
use grant_syntax::SourceMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "engine".to_string());
    let rules: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let text = policy(rules, Patterns::Mixed);
    let mut sources = SourceMap::new();
    let file = sources.add("policy.grant", text.clone());
    let checked = grant_check::check(&sources);
    assert!(!checked.has_errors(), "the generated policy is valid");
    let started = std::time::Instant::now();
    let kept = match stage.as_str() {
        "parse" => measured(|| {
            grant_syntax::parser::parse_file(file, &text)
                .file
                .items
                .len()
        }),
        "check" => measured(|| grant_check::check(&sources).policy.rules.len()),
        "compile" => measured(|| grant_compile::compile(&checked.policy).unwrap().rules.len()),
        "engine" => measured(|| {
            // Built and dropped inside, as the other stages; the rule count
            // is the checked policy's, not read back from the engine.
            drop(Engine::from_sources(sources.clone()).unwrap());
            checked.policy.rules.len()
        }),
        other => panic!("stage: parse, check, compile or engine, not {other:?}"),
    };
    println!(
        "{stage}: {kept} rules in {:.3} s",
        started.elapsed().as_secs_f64()
    );
}

/// The measured stage, for `--toggle-collect` (its result is dropped inside).
#[inline(never)]
fn measured(stage: impl FnOnce() -> usize) -> usize {
    std::hint::black_box(stage())
}
