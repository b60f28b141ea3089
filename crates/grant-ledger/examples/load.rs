//! A load generator: THREADS threads request grants (each thread in its own
//! task) against STORE_URL for SECONDS; prints the throughput, the store
//! transactions (commits) and operations per commit. Run it under
//! `strace -f -c -e trace=fsync,fdatasync` for the fsyncs per request.
//!
//! cargo run --release -p grant-ledger --example load -- sqlite:/tmp/load.db 8 5

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use grant_engine::Engine;
use grant_ledger::{Ledger, OpenTask, RequestGrant};

const POLICY: &str = r#"
type sensitivity = public < internal < confidential
attr sensitivity: sensitivity
attr ledger.task_grants: int
allow tool "db.read" when sensitivity <= internal ttl 5m
deny tool "*" when ledger.task_grants >= 1000000
"#;

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "memory".to_string());
    let threads: usize = args.next().map_or(Ok(8), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(5), |a| a.parse())?;
    let engine = Engine::from_text("load.grant", POLICY).map_err(|e| e.report(false))?;
    let ledger = Ledger::open(grant_ledger::store::open(&url)?, engine)?;
    let stop = Arc::new(AtomicBool::new(false));
    let granted = Arc::new(AtomicU64::new(0));
    let before = ledger.stats();
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let (ledger, stop, granted) = (ledger.clone(), Arc::clone(&stop), Arc::clone(&granted));
            std::thread::spawn(move || -> Result<(), grant_ledger::LedgerError> {
                let agent = format!("load-agent-{n}");
                let task = ledger.open_task(
                    "load",
                    OpenTask {
                        agent: agent.clone(),
                        ..OpenTask::default()
                    },
                )?;
                let attrs = serde_json::json!({"sensitivity": "internal"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                while !stop.load(Ordering::Relaxed) {
                    let answer = ledger.request_grant(
                        "load",
                        RequestGrant {
                            task_id: task.task_id.clone(),
                            agent: agent.clone(),
                            tool: "db.read".into(),
                            attrs: attrs.clone(),
                            ttl: None,
                        },
                    )?;
                    if answer.grant.is_some() {
                        granted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = ledger.stats();
    let operations = after.operations - before.operations;
    let commits = after.commits - before.commits;
    let granted = granted.load(Ordering::Relaxed);
    // Peak resident memory: flat in the run's length when nothing per
    // grant stays in the process.
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "?".to_string());
    println!(
        "{url}: {threads} threads, {elapsed:.1} s: {granted} grants, {:.0} grant requests/s; {commits} commits, {:.1} operations per commit; peak RSS {peak} kB",
        granted as f64 / elapsed,
        operations as f64 / commits.max(1) as f64
    );
    Ok(())
}
