//! The ledger against the engine it wraps, on the memory store: the same
//! grant request decided by `Engine::decide_json` (the baseline), previewed
//! by the ledger (its decision path: the task read, the ledger attributes,
//! the caps), and requested (decision, event, chain hash, state), plus a
//! use. `sqlite` repeats the request with SQLite at synchronous FULL, one
//! thread (one fsync per request; `examples/load.rs` measures group commit
//! with many threads).
//!
//! Run: `cargo bench -p grant-benches --bench ledger`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use grant_engine::Engine;
use grant_ledger::store::Store;
use grant_ledger::{Ledger, OpenTask, RequestGrant, UseGrant};

const POLICY: &str = r#"
type sensitivity = public < internal < confidential
attr sensitivity: sensitivity
attr ledger.depth: int
attr ledger.task_grants: int
allow tool "db.read" when sensitivity <= internal ttl 5m
deny tool "db.*" when ledger.depth > 2
deny tool "*" when ledger.task_grants >= 100000000
"#;

const REQUEST: &str = r#"{"tool": "db.read", "attrs": {"sensitivity": "internal"}}"#;

fn setup(store: Arc<dyn Store>) -> (Ledger, RequestGrant) {
    let engine = Engine::from_text("bench.grant", POLICY).unwrap();
    let ledger = Ledger::open(store, engine).unwrap();
    let task = ledger
        .open_task(
            "bench",
            OpenTask {
                agent: "agent".into(),
                ..OpenTask::default()
            },
        )
        .unwrap();
    let request = RequestGrant {
        task_id: task.task_id,
        agent: "agent".into(),
        tool: "db.read".into(),
        attrs: serde_json::json!({"sensitivity": "internal"})
            .as_object()
            .cloned()
            .unwrap(),
        ttl: None,
    };
    (ledger, request)
}

fn ledger(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let (ledger, request) = setup(Arc::new(grant_ledger::store::memory::MemoryStore::new()));
    let engine = ledger.engine();
    group.bench_function("engine_decide_json", |b| {
        b.iter(|| black_box(engine.decide_json(black_box(REQUEST))))
    });
    group.bench_function("preview/memory", |b| {
        b.iter(|| black_box(ledger.preview(black_box(&request)).unwrap()))
    });
    group.bench_function("request_grant/memory", |b| {
        b.iter(|| {
            black_box(
                ledger
                    .request_grant("bench", black_box(request.clone()))
                    .unwrap(),
            )
        })
    });
    let grant = ledger
        .request_grant("bench", request.clone())
        .unwrap()
        .grant
        .unwrap();
    let use_ = UseGrant {
        grant_id: grant.grant_id,
        agent: grant.agent,
        tool: grant.tool,
        attrs: None,
    };
    group.bench_function("use/memory", |b| {
        b.iter(|| black_box(ledger.use_grant("bench", use_.clone()).unwrap()))
    });
    let dir = std::env::temp_dir().join(format!("grant-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("bench.db").display());
    if let Ok(store) = grant_ledger::store::open(&url) {
        let (ledger, request) = setup(store);
        group.sample_size(20);
        group.bench_function("request_grant/sqlite", |b| {
            b.iter(|| {
                black_box(
                    ledger
                        .request_grant("bench", black_box(request.clone()))
                        .unwrap(),
                )
            })
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);
