//! Parse+check throughput over a generated policy of 10,000 rules, against
//! a baseline measured in the same run: lexing the same text with the logos
//! lexer (a floor no parser can beat).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use grant_benches::{Patterns, policy};
use grant_syntax::{FileId, SourceMap};

const RULES: usize = 10_000;

fn front_end(c: &mut Criterion) {
    let text = policy(RULES, Patterns::Mixed);
    let mut sources = SourceMap::new();
    sources.add("policy.grant", text.clone());
    assert!(
        !grant_check::check(&sources).has_errors(),
        "the generated policy must be clean"
    );

    let mut group = c.benchmark_group("front_end_10k_rules");
    group.throughput(Throughput::Elements(RULES as u64));
    group.sample_size(20);
    group.bench_function("baseline_lex", |b| {
        b.iter(|| grant_syntax::lexer::tokens(&text).count())
    });
    group.bench_function("parse", |b| {
        b.iter(|| grant_syntax::parser::parse_file(FileId(0), &text))
    });
    group.bench_function("parse_check", |b| b.iter(|| grant_check::check(&sources)));
    group.finish();
}

criterion_group!(benches, front_end);
criterion_main!(benches);
