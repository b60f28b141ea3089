//! What `grant mcp` adds to a round trip, against the real MCP filesystem
//! server (`@modelcontextprotocol/server-filesystem`, on Node) in the same
//! run. Three peers, each a child process spoken to over its piped stdin
//! and stdout (newline-delimited JSON-RPC), each initialized
//! (`initialize`, `notifications/initialized`) before anything is timed:
//!
//! - `direct`: the server itself (`node SERVER DIR`);
//! - `gateway_memory`: `grant mcp --store memory -- node SERVER DIR`;
//! - `gateway_sqlite`: `grant mcp --store sqlite:TMP/ledger.db -- ...`
//!   (WAL, `synchronous=FULL`: an fsync per ledger write).
//!
//! One iteration is one request written and its response read (matched by
//! id): `tools/call` of `read_text_file` on a 25-byte file
//! (`mcp/tools_call/{direct,gateway_memory,gateway_sqlite}`), and `ping`,
//! which the gateway relays without deciding
//! (`mcp/ping/{direct,gateway_memory}`). The policy is
//! `benches/mcp/policy.grant`: an allow with `ttl 10m` and no use limit,
//! so the first call of a session requests a grant and every timed call is
//! one use of it, decided again with its `args.path`.
//!
//! Criterion reports means. The issue's targets are medians, so after
//! criterion's run the bench times `MCP_BENCH_CALLS` (2,000) more round
//! trips per peer itself, interleaved (one call to each peer in turn, so
//! that the baseline and the gateways see the same load), and prints the
//! median, p90 and p99 of each, and the added median: the gateway's median
//! minus the direct median of the same pass. The pass is cut in 5 blocks
//! and the added median of each block is shown too, as a measure of the
//! noise. `MCP_BENCH_SUMMARY=FILE` also writes that summary to FILE
//! (`benches/mcp/run.sh` does).
//!
//! Needs: `node` (or `NODE`), the server (`MCP_FS_SERVER`, default
//! `tests/mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js`,
//! installed by `npm ci --prefix tests/mcp`): without either the bench
//! prints why and exits 0. And a release `grant` (`GRANT_BIN`, default
//! `target/release/grant`: `cargo build --release -p grant-cli`): without it
//! the bench fails, saying so. `GRANT_LOG` is passed to the gateways (their
//! stderr goes to a file in the bench's temporary directory).
//!
//! Run: `benches/mcp/run.sh`, or
//! `cargo build --release -p grant-cli && cargo bench -p grant-benches --bench mcp`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use serde_json::Value;

const SERVER_UNDER_TESTS: &str =
    "tests/mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js";
const FILE_TEXT: &str = "hello from the mcp bench\n";
/// A peer that answers nothing for this long fails the bench (and every
/// child is killed): no wait is unbounded.
const STALL: Duration = Duration::from_secs(60);
/// Lines skipped while waiting for an answer (the server's notifications).
const MAX_SKIPPED: usize = 1000;

/// What the bench runs: found in the environment, or a reason to skip.
struct Setup {
    node: String,
    server: PathBuf,
    grant: PathBuf,
    policy: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is in the workspace")
        .to_path_buf()
}

impl Setup {
    /// `None` (after saying why) when node or the server is missing.
    fn find() -> Option<Setup> {
        let root = workspace();
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_string());
        let version = Command::new(&node)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if !version.is_ok_and(|out| out.status.success()) {
            println!(
                "mcp bench skipped: `{node}` does not run (install Node.js 18 or later, or set NODE)"
            );
            return None;
        }
        let server = std::env::var_os("MCP_FS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(SERVER_UNDER_TESTS));
        if !server.is_file() {
            println!(
                "mcp bench skipped: the MCP filesystem server is not at {} \
                 (run `npm ci --prefix tests/mcp`, or benches/mcp/run.sh, or set MCP_FS_SERVER \
                 to its dist/index.js)",
                server.display()
            );
            return None;
        }
        let grant = match std::env::var_os("GRANT_BIN") {
            Some(path) => PathBuf::from(path),
            None => std::env::var_os("CARGO_TARGET_DIR")
                .map(|dir| root.join(dir))
                .unwrap_or_else(|| root.join("target"))
                .join("release/grant"),
        };
        if !grant.is_file() {
            eprintln!(
                "error: the grant binary is not at {}: build it with \
                 `cargo build --release -p grant-cli`, or set GRANT_BIN",
                grant.display()
            );
            std::process::exit(1);
        }
        Some(Setup {
            node,
            server,
            grant,
            policy: root.join("benches/mcp/policy.grant"),
        })
    }

    fn versions(&self) -> (String, String) {
        let node = Command::new(&self.node)
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default();
        let server = self
            .server
            .parent()
            .and_then(Path::parent)
            .and_then(|dir| std::fs::read_to_string(dir.join("package.json")).ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|json| json.get("version")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "?".to_string());
        (node, server)
    }
}

/// Every child the bench started, for the watchdog and the end.
#[derive(Default)]
struct Children {
    all: Mutex<Vec<(String, Child)>>,
    /// Bumped at every answer read.
    progress: AtomicU64,
    done: AtomicBool,
}

impl Children {
    fn kill_all(&self) {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        for (_, child) in all.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        all.clear();
    }

    /// Kills every child and exits when no answer came for [`STALL`].
    fn watch(self: &Arc<Self>) -> std::thread::JoinHandle<()> {
        let children = Arc::clone(self);
        std::thread::spawn(move || {
            let mut seen = children.progress.load(Ordering::Relaxed);
            let mut since = Instant::now();
            while !children.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = children.progress.load(Ordering::Relaxed);
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() > STALL {
                    eprintln!(
                        "error: no answer from a peer for {}s: killing every child",
                        STALL.as_secs()
                    );
                    children.kill_all();
                    std::process::exit(1);
                }
            }
        })
    }
}

/// One MCP server (direct, or behind a gateway) on the other end of pipes.
struct Peer {
    name: &'static str,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    children: Arc<Children>,
    stderr_file: PathBuf,
    next_id: u64,
    request: Vec<u8>,
    line: String,
    /// The response of the first `tools/call` (for the gateways, the grant
    /// request and its first use).
    first_call: Duration,
}

impl Peer {
    fn start(
        name: &'static str,
        mut command: Command,
        children: &Arc<Children>,
        dir: &Path,
    ) -> Peer {
        let stderr_file = dir.join(format!("{name}.stderr"));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        children.all.lock().unwrap().push((name.to_string(), child));
        Peer {
            name,
            stdin,
            stdout,
            children: Arc::clone(children),
            stderr_file,
            next_id: 1,
            request: Vec::with_capacity(512),
            line: String::with_capacity(4096),
            first_call: Duration::ZERO,
        }
    }

    fn fail(&self, what: &str) -> ! {
        let stderr = std::fs::read_to_string(&self.stderr_file).unwrap_or_default();
        self.children.kill_all();
        panic!("{}: {what}\n--- its stderr ---\n{stderr}", self.name);
    }

    fn write(&mut self) {
        if self
            .stdin
            .write_all(&self.request)
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            self.fail("writing its stdin failed (it exited?)");
        }
    }

    /// Sends a request (`params`: JSON text, or empty for none) and returns
    /// its response line, which stays in `self.line`.
    fn call(&mut self, method: &str, params: &str) -> &str {
        let id = self.next_id;
        self.next_id += 1;
        self.request.clear();
        write!(
            self.request,
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}""#
        )
        .unwrap();
        if !params.is_empty() {
            write!(self.request, r#","params":{params}"#).unwrap();
        }
        self.request.extend_from_slice(b"}\n");
        self.write();
        for _ in 0..MAX_SKIPPED {
            self.line.clear();
            match self.stdout.read_line(&mut self.line) {
                Ok(0) | Err(_) => self.fail("its stdout closed before the answer"),
                Ok(_) => {}
            }
            self.children.progress.fetch_add(1, Ordering::Relaxed);
            if answers(&self.line, id) {
                return &self.line;
            }
        }
        self.fail(&format!("no answer to request {id} in {MAX_SKIPPED} lines"))
    }

    fn notify(&mut self, method: &str) {
        self.request.clear();
        write!(self.request, r#"{{"jsonrpc":"2.0","method":"{method}"}}"#).unwrap();
        self.request.push(b'\n');
        self.write();
    }

    fn initialize(&mut self) {
        let answer = self
            .call(
                "initialize",
                r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"grant-mcp-bench","version":"1"}}"#,
            )
            .to_string();
        if !answer.contains(r#""result""#) {
            self.fail(&format!("initialize failed: {answer}"));
        }
        self.notify("notifications/initialized");
    }

    /// One allowed call: fails the bench unless it is a result that is not
    /// a tool error.
    fn read_file(&mut self, params: &str) {
        let line = self.call("tools/call", params);
        if !line.contains(r#""result""#) || line.contains(r#""isError":true"#) {
            let line = line.to_string();
            self.fail(&format!(
                "tools/call was not answered with the file: {line}"
            ));
        }
    }

    fn ping(&mut self) {
        let line = self.call("ping", "");
        if !line.contains(r#""result""#) {
            let line = line.to_string();
            self.fail(&format!("ping failed: {line}"));
        }
    }
}

/// Whether `line` is the response to request `id` (not a request or a
/// notification of the server's).
fn answers(line: &str, id: u64) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|message| {
        message.get("method").is_none() && message.get("id").and_then(Value::as_u64) == Some(id)
    })
}

struct Peers {
    direct: Peer,
    memory: Peer,
    sqlite: Peer,
    children: Arc<Children>,
    dir: PathBuf,
    call: String,
}

impl Peers {
    /// Starts and initializes the three peers, and checks them once.
    fn start(setup: &Setup, children: Arc<Children>) -> Peers {
        let dir = std::env::temp_dir().join(format!("grant-mcp-bench-{}", std::process::id()));
        let files = dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("small.txt"), FILE_TEXT).unwrap();
        std::fs::write(files.join(".secret"), "not for agents\n").unwrap();
        let files = files.canonicalize().unwrap();
        let file = files.join("small.txt");
        let call =
            serde_json::json!({"name": "read_text_file", "arguments": {"path": file}}).to_string();

        let server = |command: &mut Command| {
            command.arg(&setup.node).arg(&setup.server).arg(&files);
        };
        let gateway = |store: &str| {
            let mut command = Command::new(&setup.grant);
            command.arg("mcp").arg("--policy").arg(&setup.policy).args([
                "--agent",
                "bench-agent",
                "--name",
                "fs",
                "--store",
                store,
                "--",
            ]);
            server(&mut command);
            command
        };
        let mut direct_command = Command::new(&setup.node);
        direct_command.arg(&setup.server).arg(&files);
        let sqlite = format!("sqlite:{}", dir.join("ledger.db").display());
        let mut peers = Peers {
            direct: Peer::start("direct", direct_command, &children, &dir),
            memory: Peer::start("gateway_memory", gateway("memory"), &children, &dir),
            sqlite: Peer::start("gateway_sqlite", gateway(&sqlite), &children, &dir),
            children,
            dir,
            call,
        };
        let secret = serde_json::json!({
            "name": "read_text_file",
            "arguments": {"path": files.join(".secret")},
        })
        .to_string();
        let call = peers.call.clone();
        for peer in peers.all() {
            peer.initialize();
            let started = Instant::now();
            let text = peer.call("tools/call", &call).to_string();
            peer.first_call = started.elapsed();
            if !text.contains("hello from the mcp bench") || text.contains(r#""isError":true"#) {
                peer.fail(&format!(
                    "the first tools/call did not read the file: {text}"
                ));
            }
            if peer.name != "direct" {
                let text = peer.call("tools/call", &secret).to_string();
                if !text.contains(r#""isError":true"#) || !text.contains("no-dotfiles") {
                    peer.fail(&format!("the gateway did not deny a dotfile: {text}"));
                }
            }
            peer.ping();
        }
        peers
    }

    fn all(&mut self) -> [&mut Peer; 3] {
        [&mut self.direct, &mut self.memory, &mut self.sqlite]
    }

    /// Closes each peer's stdin (a gateway then ends its task and stops
    /// its server; the server exits), waits at most 10 s, then kills.
    fn stop(self) {
        let Peers {
            direct,
            memory,
            sqlite,
            children,
            dir,
            ..
        } = self;
        drop((direct, memory, sqlite));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = children.all.lock().unwrap();
        for (name, child) in all.iter_mut() {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        eprintln!("{name} did not exit within 10 s of its stdin closing: killed");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        all.clear();
        drop(all);
        children.done.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn criterion_groups(c: &mut Criterion, peers: &mut Peers) {
    let call = peers.call.clone();
    let mut group = c.benchmark_group("mcp/tools_call");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(60)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for peer in peers.all() {
        group.bench_function(peer.name, |b| b.iter(|| peer.read_file(&call)));
    }
    group.finish();

    let mut group = c.benchmark_group("mcp/ping");
    group
        .sample_size(60)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    for peer in [&mut peers.direct, &mut peers.memory] {
        group.bench_function(peer.name, |b| b.iter(|| peer.ping()));
    }
    group.finish();
}

/// Round-trip times of one peer, in the order taken.
struct Times(Vec<Duration>);

impl Times {
    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        // Nearest rank.
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        }
    }

    /// The medians of `blocks` consecutive slices.
    fn block_medians(&self, blocks: usize) -> Vec<Duration> {
        let size = self.0.len().div_ceil(blocks).max(1);
        self.0
            .chunks(size)
            .map(|chunk| Times(chunk.to_vec()).median())
            .collect()
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fmt_us(d: Duration) -> String {
    format!("{:.0} µs", us(d))
}

fn added(gateway: Duration, direct: Duration) -> f64 {
    us(gateway) - us(direct)
}

/// The interleaved pass: `n` calls to each peer in turn.
fn medians(peers: &mut Peers, n: usize) -> String {
    let call = peers.call.clone();
    let mut calls = [
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    ];
    let mut pings = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        for (peer, times) in peers.all().into_iter().zip(calls.iter_mut()) {
            let started = Instant::now();
            peer.read_file(&call);
            times.push(started.elapsed());
        }
    }
    for _ in 0..n {
        for (peer, times) in [&mut peers.direct, &mut peers.memory]
            .into_iter()
            .zip(pings.iter_mut())
        {
            let started = Instant::now();
            peer.ping();
            times.push(started.elapsed());
        }
    }
    let [direct, memory, sqlite] = calls.map(Times);
    let [ping_direct, ping_memory] = pings.map(Times);

    let mut out = String::new();
    let blocks = 5;
    writeln!(
        out,
        "Medians of {n} round trips per peer, interleaved (one to each peer in turn), after criterion's run.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| message | peer | median | p90 | p99 | added median (− direct) | × direct | added median, {blocks} blocks of {} |",
        n.div_ceil(blocks)
    )
    .unwrap();
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|").unwrap();
    let mut row = |message: &str, peer: &str, times: &Times, base: &Times| {
        let same = std::ptr::eq(times, base);
        let (add, ratio, spread) = if same {
            ("".to_string(), "1.00".to_string(), "".to_string())
        } else {
            let spread = times
                .block_medians(blocks)
                .iter()
                .zip(base.block_medians(blocks))
                .map(|(g, d)| format!("{:+.0}", added(*g, d)))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!("**{:+.0} µs**", added(times.median(), base.median())),
                format!("{:.2}", us(times.median()) / us(base.median())),
                format!("{spread} µs"),
            )
        };
        writeln!(
            out,
            "| {message} | {peer} | {} | {} | {} | {add} | {ratio} | {spread} |",
            fmt_us(times.median()),
            fmt_us(times.quantile(0.9)),
            fmt_us(times.quantile(0.99)),
        )
        .unwrap();
    };
    let call_name = "`tools/call` `read_text_file`";
    row(call_name, "direct", &direct, &direct);
    row(call_name, "`grant mcp`, memory", &memory, &direct);
    row(call_name, "`grant mcp`, SQLite", &sqlite, &direct);
    row("`ping`", "direct", &ping_direct, &ping_direct);
    row("`ping`", "`grant mcp`, memory", &ping_memory, &ping_direct);

    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let call_memory = added(memory.median(), direct.median());
    let call_sqlite = added(sqlite.median(), direct.median());
    let ping_added = added(ping_memory.median(), ping_direct.median());
    writeln!(out).unwrap();
    writeln!(out, "| target | measured | target | |").unwrap();
    writeln!(out, "|---|---:|---:|---|").unwrap();
    writeln!(
        out,
        "| added median per `tools/call`, memory ledger | {call_memory:+.0} µs | ≤ 200 µs | {} |",
        verdict(call_memory <= 200.0)
    )
    .unwrap();
    writeln!(
        out,
        "| added median per `tools/call`, SQLite ledger | {call_sqlite:+.0} µs | reported (fsync-bound) | |"
    )
    .unwrap();
    writeln!(
        out,
        "| added median per relayed message (`ping`) | {ping_added:+.0} µs | ≤ 50 µs | {} |",
        verdict(ping_added <= 50.0)
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "First `tools/call` of each session (one sample; through a gateway: the grant requested, then used): direct {}, memory {}, SQLite {}.",
        fmt_us(peers.direct.first_call),
        fmt_us(peers.memory.first_call),
        fmt_us(peers.sqlite.first_call),
    )
    .unwrap();
    out
}

fn main() {
    let Some(setup) = Setup::find() else {
        return;
    };
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    if flag("--list") {
        // Nothing to start for a listing.
        for name in [
            "mcp/tools_call/direct",
            "mcp/tools_call/gateway_memory",
            "mcp/tools_call/gateway_sqlite",
            "mcp/ping/direct",
            "mcp/ping/gateway_memory",
        ] {
            println!("{name}: benchmark");
        }
        return;
    }
    // As criterion decides: `cargo bench` passes --bench; `cargo test
    // --benches` does not, and runs each bench once.
    let benchmarking = flag("--bench") && !flag("--test");
    let n = if benchmarking {
        std::env::var("MCP_BENCH_CALLS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000)
    } else {
        10
    };

    let children = Arc::new(Children::default());
    let watchdog = children.watch();
    let mut peers = Peers::start(&setup, children);
    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &mut peers);
    criterion.final_summary();

    let mut summary = medians(&mut peers, n);
    if !benchmarking {
        summary.insert_str(
            0,
            "Test mode (no --bench): 10 round trips per peer, a check that the bench runs, not a measurement.\n\n",
        );
    }
    let (node, server) = setup.versions();
    writeln!(
        summary,
        "\nnode {node}, @modelcontextprotocol/server-filesystem {server}."
    )
    .unwrap();
    peers.stop();
    let _ = watchdog.join();
    println!("\n{summary}");
    if let Some(path) = std::env::var_os("MCP_BENCH_SUMMARY") {
        std::fs::write(&path, &summary).unwrap();
    }
}
