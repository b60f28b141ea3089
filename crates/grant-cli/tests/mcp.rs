//! `grant mcp` end to end with the real peers: the reference MCP servers
//! from npm (`npm ci --prefix tests/mcp`) behind the gateway, driven by the
//! official Python MCP SDK's client (tests/mcp/drive.py). Without the peers
//! these tests say so and pass, unless `CI` is set: CI installs them, so
//! there a missing peer fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grant_ledger::{GrantState, TaskState};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The npm server's entry point, when the peers are installed.
fn peers(server: &str) -> Option<PathBuf> {
    let entry = root().join(format!(
        "tests/mcp/node_modules/@modelcontextprotocol/{server}/dist/index.js"
    ));
    let python_sdk = Command::new("python3")
        .args(["-c", "import mcp.client.stdio"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if entry.is_file() && python_sdk && node {
        return Some(entry);
    }
    let missing = format!(
        "the MCP peers are missing (node: {node}, python mcp: {python_sdk}, {}: {}): run `npm ci --prefix tests/mcp` and `pip install -r tests/mcp/requirements.txt`",
        entry.display(),
        entry.is_file()
    );
    assert!(std::env::var_os("CI").is_none(), "{missing}");
    eprintln!("skipped: {missing}");
    None
}

/// A working directory without a dot in its path: the example policy
/// denies every path under a dot-directory (`tempdir()` names `.tmpXXXX`).
fn workspace() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("grant-mcp-")
        .tempdir()
        .unwrap()
}

/// What one drive.py session printed.
struct Session {
    report: Value,
    stderr: String,
}

impl Session {
    fn step(&self, index: usize) -> &Value {
        &self.report["steps"][index]
    }

    /// The task the gateway named on stderr.
    fn task_id(&self) -> String {
        let at = self
            .stderr
            .find("task_")
            .unwrap_or_else(|| panic!("no task on stderr:\n{}", self.stderr));
        self.stderr[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    }
}

/// Starts drive.py with `plan` in front of `grant mcp ARGS -- SERVER...`.
fn start(plan: &Value, gateway_args: &[&str], server: &[&str], keep_open: Option<f64>) -> Child {
    let mut command = Command::new("python3");
    command
        .arg(root().join("tests/mcp/drive.py"))
        .arg("-")
        .args(keep_open.map(|s| format!("--keep-open={s}")))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_grant"))
        .arg("mcp")
        .args(gateway_args)
        .arg("--")
        .args(server)
        .env("GRANT_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, plan.to_string().as_bytes()).unwrap();
    drop(stdin);
    child
}

/// Waits for drive.py (bounded) and reads its report.
fn finish(mut child: Child) -> Session {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("drive.py did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "drive.py failed ({status}):\n{stderr}");
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("drive.py printed no report ({e}):\n{stdout}\n{stderr}"));
    Session { report, stderr }
}

fn drive(plan: &Value, gateway_args: &[&str], server: &[&str]) -> Session {
    finish(start(plan, gateway_args, server, None))
}

/// The example policy with its workspace directory replaced by `dir`.
fn example_policy(dir: &Path, into: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("examples/mcp-filesystem/policy.grant"))
        .unwrap()
        .replace("/srv/workspace", &dir.display().to_string());
    let path = into.join("policy.grant");
    std::fs::write(&path, text).unwrap();
    path
}

fn ledger_of(store: &str) -> Arc<dyn grant_ledger::Store> {
    grant_ledger::store::open(store).unwrap()
}

fn grant_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_grant"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_filesystem_server_behind_the_gateway_reads_denies_and_revokes() {
    let Some(server) = peers("server-filesystem") else {
        return;
    };
    let work = workspace();
    let dir = work.path().join("project");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "hello from the workspace\n").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1\n").unwrap();
    let policy = example_policy(&dir, work.path());
    let store = format!("sqlite:{}", work.path().join("ledger.db").display());
    let d = dir.display().to_string();
    let plan = json!([
        {"call": "read_text_file", "arguments": {"path": format!("{d}/notes.txt")}},
        {"call": "read_text_file", "arguments": {"path": format!("{d}/.env")}},
        {"call": "write_file", "arguments": {"path": format!("{d}/new.txt"), "content": "x"}},
        {"call": "read_text_file", "arguments": {"path": format!("{d}/../outside.txt")}},
        {"call": "list_directory", "arguments": {"path": d}},
        {"call": "read_text_file", "arguments": {"path": format!("{d}/notes.txt"), "head": 1}},
    ]);
    let session = drive(
        &plan,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--agent",
            "claude-desktop",
            "--name",
            "fs",
            "--store",
            &store,
        ],
        &["node", server.to_str().unwrap(), &d],
    );
    assert_eq!(session.report["server"]["name"], "secure-filesystem-server");
    // The server's real answer.
    assert_eq!(session.step(0)["isError"], false, "{}", session.step(0));
    assert_eq!(session.step(0)["text"], "hello from the workspace\n");
    // Denied: the model reads the rule's reason.
    let dotfile = session.step(1);
    assert_eq!(dotfile["isError"], true);
    let text = dotfile["text"].as_str().unwrap();
    assert!(
        text.contains("Grant denied this call: `fs.read_text_file` was not called."),
        "{text}"
    );
    assert!(text.contains("fs-no-dotfiles"), "{text}");
    // A write waits for an approval, and is not made.
    let write = session.step(2);
    assert_eq!(write["isError"], true);
    assert!(
        write["text"]
            .as_str()
            .unwrap()
            .contains("needs an approval from `owners`"),
        "{write}"
    );
    assert!(
        !dir.join("new.txt").exists(),
        "a refused write never reaches the server"
    );
    assert_eq!(session.step(3)["isError"], true, "`..` is denied");
    assert_eq!(session.step(4)["isError"], false, "{}", session.step(4));
    assert!(
        session.step(4)["text"]
            .as_str()
            .unwrap()
            .contains("notes.txt")
    );
    assert_eq!(session.step(5)["text"], "hello from the workspace");

    // The session is over: its task ended, every grant revoked.
    let task_id = session.task_id();
    // stderr names the task at its start, as docs/mcp.md shows.
    assert!(
        session.stderr.contains(&format!(
            "session task {task_id} opened for agent claude-desktop"
        )),
        "{}",
        session.stderr
    );
    let store_handle = ledger_of(&store);
    let timeline = grant_ledger::audit::timeline(store_handle.as_ref(), &task_id).unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"task.opened"));
    assert_eq!(kinds.last(), Some(&"task.ended"));
    assert!(
        timeline
            .iter()
            .all(|e| e.agent.as_deref().is_none_or(|a| a == "claude-desktop"))
    );
    let mut tx_grants = Vec::new();
    store_handle
        .read(&mut |tx| {
            let task = tx.task(&task_id)?.unwrap();
            assert_eq!(task.state, TaskState::Ended);
            tx_grants = tx.grants_of_task(&task_id)?;
            Ok(())
        })
        .unwrap();
    assert!(!tx_grants.is_empty());
    for grant in &tx_grants {
        assert_ne!(
            grant.state,
            GrantState::Active,
            "{} outlived the session",
            grant.grant_id
        );
        assert_ne!(grant.state, GrantState::Pending);
    }
    // The audit trail reads as the session, and the chain verifies.
    let shown = grant_cli(&["audit", "show", "--store", &store, "--task", &task_id]);
    let shown = String::from_utf8(shown.stdout).unwrap();
    for expected in [
        "task.opened",
        "grant.issued",
        "grant.used",
        "grant.use_refused",
        "grant.pending",
        "task.ended",
        "args.path=",
        "mcp.name=fs",
    ] {
        assert!(
            shown.contains(expected),
            "{expected} missing from:\n{shown}"
        );
    }
    let verified = grant_cli(&["audit", "verify", "--store", &store]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn a_write_approved_out_of_band_goes_through_on_retry() {
    let Some(server) = peers("server-filesystem") else {
        return;
    };
    let work = workspace();
    let dir = work.path().join("project");
    std::fs::create_dir(&dir).unwrap();
    let policy = example_policy(&dir, work.path());
    let store = format!("sqlite:{}", work.path().join("ledger.db").display());
    let target = dir.join("approved.txt");
    let write = json!({"call": "write_file",
                       "arguments": {"path": target.display().to_string(), "content": "approved"}});
    // Write, wait (the approval comes meanwhile), write again.
    let plan = json!([write, {"sleep": 6}, write]);
    let child = start(
        &plan,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--agent",
            "coder",
            "--name",
            "fs",
            "--store",
            &store,
        ],
        &["node", server.to_str().unwrap(), &dir.display().to_string()],
        None,
    );
    // Find the pending grant in the shared store, and approve it as a
    // person would, with the CLI.
    let deadline = Instant::now() + Duration::from_secs(30);
    let grant_id = loop {
        let store_handle = ledger_of(&store);
        let mut found = None;
        let _ = store_handle.read(&mut |tx| {
            for task in tx.open_tasks_of_agent("coder")? {
                for grant in tx.grants_of_task(&task.task_id)? {
                    if grant.state == GrantState::Pending {
                        found = Some(grant.grant_id.clone());
                    }
                }
            }
            Ok(())
        });
        if let Some(id) = found {
            break id;
        }
        assert!(Instant::now() < deadline, "no pending grant appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!target.exists());
    let approved = grant_cli(&[
        "approve",
        "--store",
        &store,
        &grant_id,
        "--group",
        "owners",
        "--approver",
        "alice",
    ]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let session = finish(child);
    assert_eq!(session.step(0)["isError"], true);
    assert_eq!(session.step(2)["isError"], false, "{}", session.step(2));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "approved");
}

#[test]
fn the_everything_server_speaks_the_whole_protocol_through_the_gateway() {
    let Some(server) = peers("server-everything") else {
        return;
    };
    let work = workspace();
    let store = format!("sqlite:{}", work.path().join("ledger.db").display());
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/everything.grant");
    let plan = json!([
        {"call": "echo", "arguments": {"message": "hello through the gateway"}},
        {"call": "get-sum", "arguments": {"a": 2, "b": 40}},
        {"call": "get-sum", "arguments": {"a": 2, "b": 4000}},
        {"call": "get-structured-content", "arguments": {"location": "Chicago"}},
        {"call": "get-tiny-image", "arguments": {}},
        {"call": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 4}, "progress": true},
        {"call": "trigger-sampling-request", "arguments": {"prompt": "say hi", "maxTokens": 10}},
        {"call": "get-env", "arguments": {}},
        {"list_tools": true}
    ]);
    let session = drive(
        &plan,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--agent",
            "tester",
            "--name",
            "everything",
            "--store",
            &store,
            "--hide-denied",
        ],
        &["node", server.to_str().unwrap(), "stdio"],
    );
    let step = |i: usize| session.step(i);
    assert_eq!(
        step(0)["text"],
        "Echo: hello through the gateway",
        "{}",
        step(0)
    );
    assert_eq!(step(1)["isError"], false, "{}", step(1));
    assert!(step(1)["text"].as_str().unwrap().contains("42"));
    // Decided by an argument: a large sum is denied.
    assert_eq!(step(2)["isError"], true);
    assert!(
        step(2)["text"]
            .as_str()
            .unwrap()
            .contains("Allowed only under rule `small-sums-only`, which did not apply: sums are allowed for numbers up to 100"),
        "{}",
        step(2)
    );
    assert!(
        step(3)["structured"]["temperature"].is_number(),
        "{}",
        step(3)
    );
    assert!(
        step(4)["contentTypes"]
            .as_array()
            .unwrap()
            .contains(&json!("image"))
    );
    // Progress notifications and a server-to-client request cross it.
    assert!(
        !step(5)["progress"].as_array().unwrap().is_empty(),
        "{}",
        step(5)
    );
    assert_eq!(step(6)["isError"], false, "{}", step(6));
    let sampled = session.report["sampling"].as_array().unwrap();
    assert_eq!(sampled.len(), 1, "{sampled:?}");
    assert!(
        sampled[0].as_str().unwrap().ends_with("say hi"),
        "{sampled:?}"
    );
    assert!(
        step(6)["text"].as_str().unwrap().contains("sampled: "),
        "{}",
        step(6)
    );
    // get-env is denied (it would show the gateway's environment), and
    // --hide-denied leaves it out of the tool list.
    assert_eq!(step(7)["isError"], true);
    let tools: Vec<&str> = session.report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"echo"));
    assert!(!tools.contains(&"get-env"), "{tools:?}");
    let verified = grant_cli(&["audit", "verify", "--store", &store]);
    assert!(verified.status.success());
}

#[test]
fn bad_settings_are_refused_before_anything_starts() {
    let work = workspace();
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/everything.grant");
    let policy = policy.to_str().unwrap();
    let store = format!("sqlite:{}", work.path().join("ledger.db").display());
    for (args, message) in [
        (
            vec!["mcp", "--agent", "a", "--name", "x", "--", "true"],
            "--policy",
        ),
        (
            vec!["mcp", "--policy", policy, "--name", "x", "--", "true"],
            "--agent",
        ),
        (
            vec!["mcp", "--policy", policy, "--agent", "a", "--", "true"],
            "--name",
        ),
        (
            vec!["mcp", "--policy", policy, "--agent", "a", "--name", "x"],
            "after `--`",
        ),
        (
            vec![
                "mcp", "--policy", policy, "--agent", "a", "--name", "x", "--store", &store,
                "--attr", "nope=1", "--", "true",
            ],
            "declares no attribute `nope`",
        ),
        (
            vec![
                "mcp",
                "--policy",
                policy,
                "--agent",
                "a",
                "--name",
                "x",
                "--store",
                &store,
                "--",
                "/no/such/server",
            ],
            "cannot start the MCP server `/no/such/server`",
        ),
    ] {
        let out = grant_cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "stdout belongs to the MCP client");
    }
}

/// The lines a child writes, as they come, read on a thread of their own.
fn lines_of(output: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(output)) {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A gateway process with the scripted fake server (needs only python3).
struct RawGateway {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl RawGateway {
    fn start(store: &str) -> RawGateway {
        let grant_mcp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../grant-mcp/tests");
        let mut child = Command::new(env!("CARGO_BIN_EXE_grant"))
            .args(["mcp", "--policy"])
            .arg(grant_mcp.join("policies/stdio.grant"))
            .args(["--agent", "agent-7", "--name", "fake", "--store", store])
            .args(["--attr", "session.team=qa", "--", "python3"])
            .arg(grant_mcp.join("peers/fake_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        RawGateway { child, lines }
    }

    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let stdin = self.child.stdin.as_mut().unwrap();
        std::io::Write::write_all(stdin, format!("{message}\n").as_bytes()).unwrap();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("an answer in time");
            let answer: Value = serde_json::from_str(&line).unwrap();
            if answer["id"] == json!(id) {
                return answer;
            }
        }
    }
}

#[test]
fn a_killed_gateway_loses_no_answered_call_and_its_session_is_ended_by_the_next() {
    let work = workspace();
    let store = format!("sqlite:{}", work.path().join("ledger.db").display());
    let mut first = RawGateway::start(&store);
    first.request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "t", "version": "1"}}),
    );
    let mut answered = 0;
    for id in 1..=5 {
        let ok = first.request(
            id,
            "tools/call",
            json!({"name": "write", "arguments": {"path": "/w", "level": "low"}}),
        );
        assert_eq!(ok["result"]["isError"], false, "{ok}");
        answered += 1;
    }
    // SIGKILL: no chance to end the session.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let store_handle = ledger_of(&store);
    let mut open = Vec::new();
    store_handle
        .read(&mut |tx| {
            open = tx.open_tasks_of_agent("agent-7")?;
            Ok(())
        })
        .unwrap();
    assert_eq!(open.len(), 1, "the killed session's task is still open");
    let orphan = open[0].task_id.clone();
    let timeline = grant_ledger::audit::timeline(store_handle.as_ref(), &orphan).unwrap();
    let used = timeline
        .iter()
        .filter(|e| e.kind.as_str() == "grant.used")
        .count();
    assert_eq!(used, answered, "every answered call's use is in the ledger");

    // The next gateway for this agent and server ends it, with the reason.
    let mut second = RawGateway::start(&store);
    second.request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let timeline = grant_ledger::audit::timeline(store_handle.as_ref(), &orphan).unwrap();
    let last = timeline.last().unwrap();
    assert_eq!(last.kind.as_str(), "task.ended");
    let reason = last.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("session orphaned: gateway process"),
        "{reason}"
    );
    let mut grants = Vec::new();
    store_handle
        .read(&mut |tx| {
            grants = tx.grants_of_task(&orphan)?;
            Ok(())
        })
        .unwrap();
    assert!(
        grants
            .iter()
            .all(|g| g.state == GrantState::Revoked || g.state == GrantState::Exhausted)
    );
    drop(second.child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the gateway exits when its client leaves"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let verified = grant_cli(&["audit", "verify", "--store", &store]);
    assert!(verified.status.success());
}

#[test]
fn the_http_gateway_process_names_its_address_refuses_undecidable_calls_and_ends_on_sigterm() {
    let work = workspace();
    let store = format!("sqlite:{}", work.path().join("ledger.db").display());
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/everything.grant");
    // An upstream nobody listens on: every relayed request is a 502.
    let mut child = Command::new(env!("CARGO_BIN_EXE_grant"))
        .args([
            "mcp",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9/mcp",
        ])
        .arg("--policy")
        .arg(&policy)
        .args([
            "--agent",
            "tester",
            "--name",
            "everything",
            "--store",
            &store,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stderr.take().unwrap());
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway names its address");
        if let Some(rest) = line.split("serving MCP clients at ").nth(1) {
            break rest.split(',').next().unwrap().to_string();
        }
    };
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/mcp"),
        "{base}"
    );
    let client = reqwest::blocking::Client::new();
    let post = |body: Value| {
        client
            .post(&base)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    // Denied: answered by the gateway, the server never asked.
    let denied = post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                             "params": {"name": "get-env", "arguments": {}}}));
    assert_eq!(denied.status(), 200);
    let denied: Value = denied.json().unwrap();
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    // Allowed, but the server is down: a 502 with a JSON body.
    let down = post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                           "params": {"name": "echo", "arguments": {"message": "x"}}}));
    assert_eq!(down.status(), 502);
    assert!(down.json::<Value>().is_ok());
    let malformed = client
        .post(&base)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .unwrap();
    assert_eq!(malformed.status(), 400);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the gateway stops on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    let verified = grant_cli(&["audit", "verify", "--store", &store]);
    assert!(verified.status.success());
    // The sessionless traffic's task was ended at shutdown.
    let store_handle = ledger_of(&store);
    let mut open = Vec::new();
    store_handle
        .read(&mut |tx| {
            open = tx.open_tasks_of_agent("tester")?;
            Ok(())
        })
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
    let events = grant_ledger::audit::events_after(store_handle.as_ref(), 0, 100).unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.json).unwrap()["type"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for kind in ["task.opened", "grant.denied", "grant.issued", "task.ended"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} not in {kinds:?}");
    }
}
