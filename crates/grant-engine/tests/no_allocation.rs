//! Deciding a typed request allocates nothing once the request and verdict
//! buffers have warmed up. dhat counts every allocation of this test binary,
//! which runs without libtest (`harness = false` in Cargo.toml), so that no
//! other thread allocates meanwhile: a failed check exits non-zero.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use grant_engine::{Engine, Value, Verdict};
use grant_syntax::SourceMap;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const POLICY: &str = r#"
type sensitivity = public < internal < confidential
type env = dev | staging | prod
attr sensitivity: sensitivity
attr env: env
attr task.approved: bool
attr task.labels: set<string>
attr agent.workload: string
attr agent.delegation_depth: int
attr ledger.degraded: bool

allow tool "db.*" when sensitivity <= internal and env in [dev, staging] ttl 5m uses 10 approval "data"
allow tool "db.read" when "pci" in task.labels and agent.workload matches "spiffe://prod/*" ttl 2m uses 3 approval "dba"
deny tool * when env == prod and not task.approved
deny tool "*.write" when agent.delegation_depth > 1
deny tool ["*push*", "*rea*d*"] when agent.delegation_depth > 5
allow tool "db.*" when ledger.degraded and sensitivity <= internal ttl 1m uses 2 approval "oncall"
"#;

fn main() {
    typed_decisions_do_not_allocate_after_warm_up();
    println!("no_allocation: typed decisions allocate nothing after warm-up");
}

fn typed_decisions_do_not_allocate_after_warm_up() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut sources = SourceMap::new();
    sources.add("policy.grant", POLICY);
    let engine = Engine::from_sources(sources).unwrap();
    let handles = [
        "sensitivity",
        "env",
        "task.approved",
        "task.labels",
        "agent.workload",
        "agent.delegation_depth",
        "ledger.degraded",
    ]
    .map(|path| engine.attr(path).unwrap());
    let labels = [Value::Str("pci"), Value::Str("sox")];
    let mut request = engine.request();
    let mut verdict = engine.verdict();

    // Degraded decisions (`decide_degraded_into`) leave allow rules out
    // into a buffer of their own: that path is counted too.
    let decide = |tool: &str,
                  with_env: bool,
                  degraded: bool,
                  request: &mut grant_engine::Request,
                  verdict: &mut Verdict| {
        request.clear().set_tool(tool);
        request.set(handles[0], Value::Str("internal"));
        if with_env {
            request.set(handles[1], Value::Str("prod"));
        }
        request.set(handles[2], Value::Bool(true));
        request.set(handles[3], Value::Set(&labels));
        request.set(handles[4], Value::Str("spiffe://prod/billing"));
        request.set(handles[5], Value::Int(0));
        request.set(handles[6], Value::Bool(degraded));
        if degraded {
            engine.decide_degraded_into(request, verdict);
        } else {
            engine.decide_into(request, verdict);
        }
        // Reading the obligations back allocates nothing either.
        verdict.is_allow() && verdict.uses().is_some() && verdict.approvals().count() > 0
    };

    // Warm up every path: allow, deny, and unknown (env missing), normal
    // and degraded.
    for tool in ["db.read", "db.write", "github.push", "db.read"] {
        for degraded in [false, true] {
            decide(tool, true, degraded, &mut request, &mut verdict);
            decide(tool, false, degraded, &mut request, &mut verdict);
        }
    }
    let before = dhat::HeapStats::get();
    let (mut allowed, mut allowed_degraded) = (0, 0);
    for _ in 0..100 {
        for tool in ["db.read", "db.write", "github.push"] {
            for (degraded, count) in [(false, &mut allowed), (true, &mut allowed_degraded)] {
                *count += usize::from(decide(tool, true, degraded, &mut request, &mut verdict));
                *count += usize::from(decide(tool, false, degraded, &mut request, &mut verdict));
            }
        }
    }
    let after = dhat::HeapStats::get();
    assert!(allowed > 0, "some requests are allowed, with obligations");
    assert!(allowed_degraded > 0, "some degraded requests are allowed");
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "allocations on the typed decision path"
    );
}
