//! The stdio gateway against a scripted fake server (tests/peers/
//! fake_server.py), for what a real server cannot do on demand: crash,
//! never answer, send garbage or several MiB. The client is this test,
//! over an in-memory pipe; the ledger is in memory and read after.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use grant_engine::Engine;
use grant_ledger::{Approve, GrantState, Ledger, LedgerConfig, SystemClock, TaskState};
use grant_mcp::Gateway;
use grant_mcp::stdio::{self, Ended, Outcome, StdioOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(30);

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

struct Harness {
    ledger: Ledger,
    /// Every line the fake server received.
    log: PathBuf,
    _dir: tempfile::TempDir,
    to_gateway: Option<DuplexStream>,
    from_gateway: tokio::io::Lines<BufReader<DuplexStream>>,
    stop: Option<oneshot::Sender<()>>,
    run: tokio::task::JoinHandle<Outcome>,
}

#[derive(Clone)]
struct Setup {
    claimed_version: Option<&'static str>,
    call_timeout: Duration,
    max_message_bytes: usize,
    hide_denied: bool,
    team: &'static str,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            claimed_version: None,
            call_timeout: Duration::from_secs(20),
            max_message_bytes: 64 << 20,
            hide_denied: false,
            team: "qa",
        }
    }
}

fn python() -> &'static str {
    "python3"
}

impl Harness {
    async fn start(setup: Setup) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let engine = Engine::from_path(here().join("policies/stdio.grant")).unwrap();
        let ledger = Ledger::with(
            grant_ledger::store::open("memory").unwrap(),
            engine,
            Arc::new(SystemClock),
            LedgerConfig::default(),
        )
        .unwrap();
        let mut attrs = serde_json::Map::new();
        attrs.insert("session.team".into(), json!(setup.team));
        let gateway = Arc::new(Gateway::new(
            ledger.clone(),
            "agent-7",
            "fake",
            attrs,
            BTreeMap::from([("mcp.name".to_string(), "fake".to_string())]),
        ));
        let mut command = vec![
            python().to_string(),
            here().join("peers/fake_server.py").display().to_string(),
        ];
        command.extend(setup.claimed_version.map(str::to_string));
        // Each harness's own log file, given through `env` on the command
        // line: the tests run in parallel in one process.
        let command = vec!["env".to_string(), format!("FAKE_LOG={}", log.display())]
            .into_iter()
            .chain(command)
            .collect();
        let options = StdioOptions {
            command,
            call_timeout: setup.call_timeout,
            max_message_bytes: setup.max_message_bytes,
            hide_denied: setup.hide_denied,
            exit_grace: Duration::from_secs(2),
        };
        let (client_end, gateway_in) = tokio::io::duplex(1 << 20);
        let (gateway_out, client_read) = tokio::io::duplex(1 << 20);
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn(async move {
            stdio::run(gateway, options, gateway_in, gateway_out, async move {
                let _ = stopped.await;
                "test".to_string()
            })
            .await
            .unwrap()
        });
        Harness {
            ledger,
            log,
            _dir: dir,
            to_gateway: Some(client_end),
            from_gateway: BufReader::new(client_read).lines(),
            stop: Some(stop),
            run,
        }
    }

    async fn send_raw(&mut self, line: &str) {
        let to = self.to_gateway.as_mut().unwrap();
        to.write_all(line.as_bytes()).await.unwrap();
        to.write_all(b"\n").await.unwrap();
    }

    async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(LIMIT, self.from_gateway.next_line())
            .await
            .expect("the gateway answers in time")
            .unwrap()
            .expect("a line")
    }

    async fn recv(&mut self) -> Value {
        serde_json::from_str(&self.line().await).unwrap()
    }

    /// Sends a request and reads until its answer (skipping anything else).
    async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let message = self.recv().await;
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    async fn call(&mut self, id: i64, tool: &str, arguments: Value) -> Value {
        self.request(
            id,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
        .await
    }

    async fn initialize(&mut self) -> Value {
        let answer = self
            .request(
                0,
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "claims-to-be-admin", "version": "9"}}),
            )
            .await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        answer
    }

    /// The lines the server received.
    fn server_saw(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn server_saw_call(&self, tool: &str) -> usize {
        self.server_saw()
            .iter()
            .flat_map(|m| match m {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
            .count()
    }

    /// Closes the client's side (stdin EOF) and waits for the end.
    async fn disconnect(mut self) -> (Outcome, Ledger) {
        drop(self.to_gateway.take());
        let outcome = tokio::time::timeout(LIMIT, &mut self.run)
            .await
            .expect("the session ends in time")
            .unwrap();
        (outcome, self.ledger.clone())
    }

    async fn wait_end(mut self) -> (Outcome, Ledger) {
        let outcome = tokio::time::timeout(LIMIT, &mut self.run)
            .await
            .expect("the session ends in time")
            .unwrap();
        (outcome, self.ledger.clone())
    }
}

fn text_of(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn assert_ended(ledger: &Ledger, outcome: &Outcome) -> String {
    let task = outcome.task_id.clone().expect("a task was opened");
    let view = ledger.task(&task).unwrap();
    assert_eq!(view.task.state, TaskState::Ended, "the task is ended");
    assert_eq!(
        view.task.agent, "agent-7",
        "the configured agent, not the client's claim"
    );
    for grant in &view.grants {
        assert!(
            !grant.state.is_live(),
            "grant {} is {:?} after the session",
            grant.grant_id,
            grant.state
        );
    }
    let report = grant_ledger::chain::verify(ledger.store().as_ref(), &[], None).unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    task
}

#[tokio::test]
async fn allowed_calls_reach_the_server_and_denied_ones_never_do() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    let echoed = h
        .call(1, "echo", json!({"path": "/work/a", "x": [1, 2]}))
        .await;
    assert_eq!(text_of(&echoed), r#"{"path": "/work/a", "x": [1, 2]}"#);
    assert_eq!(echoed["result"]["isError"], false);

    let denied = h
        .call(2, "write", json!({"path": "/secret/key", "level": "low"}))
        .await;
    assert_eq!(denied["result"]["isError"], true);
    let text = text_of(&denied);
    assert!(
        text.contains("Grant denied this call: `fake.write` was not called."),
        "{text}"
    );
    assert!(
        text.contains("Rule `no-secrets`: paths under /secret are never touched"),
        "{text}"
    );
    let meta = &denied["result"]["_meta"]["grant/decision"];
    assert_eq!(meta["status"], "denied");
    assert!(
        meta["decision"]["decision_id"]
            .as_str()
            .unwrap()
            .starts_with("dec_")
    );

    // A declared argument of the wrong type makes the request invalid.
    let invalid = h.call(3, "huge", json!({"size": "big"})).await;
    assert_eq!(invalid["result"]["isError"], true);
    assert!(
        text_of(&invalid).contains("Invalid: attribute `args.size` expects `int`"),
        "{}",
        text_of(&invalid)
    );
    // A tool no rule allows.
    let unknown = h.call(4, "launch_missiles", json!({})).await;
    assert_eq!(unknown["result"]["isError"], true);

    assert_eq!(
        h.server_saw_call("echo"),
        1,
        "only the allowed echo reached the server"
    );
    assert_eq!(h.server_saw_call("write"), 0);
    assert_eq!(h.server_saw_call("huge"), 0);
    assert_eq!(h.server_saw_call("launch_missiles"), 0);
    let (outcome, ledger) = h.disconnect().await;
    assert_eq!(outcome.ended, Ended::ClientClosed);
    let task = assert_ended(&ledger, &outcome);
    let kinds: Vec<String> = ledger
        .timeline(&task)
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "task.opened",
            "grant.issued",
            "grant.used",
            "grant.denied",
            "grant.denied",
            "grant.denied",
            "grant.revoked",
            "task.ended"
        ]
    );
}

#[tokio::test]
async fn a_grant_is_reused_each_use_decided_and_a_deny_leaves_it_alone() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    for id in 1..=2 {
        let ok = h
            .call(id, "write", json!({"path": "/w/a", "level": "low"}))
            .await;
        assert_eq!(ok["result"]["isError"], false, "{ok}");
    }
    let denied = h
        .call(3, "write", json!({"path": "/secret/a", "level": "low"}))
        .await;
    assert_eq!(denied["result"]["isError"], true);
    // Third use of `uses 3`: the deny did not take one.
    let third = h
        .call(4, "write", json!({"path": "/w/b", "level": "low"}))
        .await;
    assert_eq!(third["result"]["isError"], false, "{third}");
    // Used up: a new grant is requested for the next call.
    let fourth = h
        .call(5, "write", json!({"path": "/w/c", "level": "low"}))
        .await;
    assert_eq!(fourth["result"]["isError"], false, "{fourth}");
    assert_eq!(h.server_saw_call("write"), 4);
    let (outcome, ledger) = h.disconnect().await;
    let task = assert_ended(&ledger, &outcome);
    let view = ledger.task(&task).unwrap();
    assert_eq!(view.grants.len(), 2, "one grant used up, then a second");
    let mut left: Vec<Option<u64>> = view.grants.iter().map(|g| g.uses_left).collect();
    left.sort();
    assert_eq!(
        left,
        [Some(0), Some(2)],
        "the first used up, the second used once"
    );
    let uses = ledger
        .timeline(&task)
        .unwrap()
        .iter()
        .filter(|e| e.kind.as_str() == "grant.used")
        .count();
    assert_eq!(uses, 4);
}

#[tokio::test]
async fn a_pending_approval_is_answered_and_a_retry_after_approval_goes_through() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    let low = h
        .call(1, "write", json!({"path": "/w/a", "level": "low"}))
        .await;
    assert_eq!(low["result"]["isError"], false);
    let pending = h
        .call(2, "write", json!({"path": "/w/a", "level": "high"}))
        .await;
    assert_eq!(pending["result"]["isError"], true);
    let meta = pending["result"]["_meta"]["grant/decision"].clone();
    assert_eq!(meta["status"], "pending");
    assert_eq!(meta["approvals"], json!(["owners"]));
    let grant_id = meta["grant_id"].as_str().unwrap().to_string();
    assert!(text_of(&pending).contains(&grant_id));
    // Asked again before approval: the same pending grant, none new.
    let again = h
        .call(3, "write", json!({"path": "/w/a", "level": "high"}))
        .await;
    assert_eq!(
        again["result"]["_meta"]["grant/decision"]["grant_id"],
        json!(grant_id)
    );
    // A low write still goes through on the first grant meanwhile.
    let low2 = h
        .call(4, "write", json!({"path": "/w/b", "level": "low"}))
        .await;
    assert_eq!(low2["result"]["isError"], false, "{low2}");
    assert_eq!(h.server_saw_call("write"), 2);

    h.ledger
        .approve(
            "alice",
            Approve {
                grant_id: grant_id.clone(),
                approver: "alice".into(),
                group: "owners".into(),
                reason: None,
            },
        )
        .unwrap();
    let approved = h
        .call(5, "write", json!({"path": "/w/a", "level": "high"}))
        .await;
    assert_eq!(approved["result"]["isError"], false, "{approved}");
    assert_eq!(h.server_saw_call("write"), 3);
    let (outcome, ledger) = h.disconnect().await;
    assert_ended(&ledger, &outcome);
    assert_eq!(ledger.grant(&grant_id).unwrap().state, GrantState::Revoked);
}

#[tokio::test]
async fn malformed_messages_from_either_side_are_answered_or_dropped_and_the_session_goes_on() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    h.send_raw("{not json").await;
    let error = h.recv().await;
    assert_eq!(error["error"]["code"], -32700);
    assert_eq!(error["id"], Value::Null);
    h.send_raw("42").await;
    assert_eq!(h.recv().await["error"]["code"], -32700);
    // A call without a name, and with arguments that are not an object.
    let no_name = h.request(1, "tools/call", json!({"arguments": {}})).await;
    assert_eq!(no_name["error"]["code"], -32602);
    let bad_args = h
        .request(2, "tools/call", json!({"name": "echo", "arguments": [1]}))
        .await;
    assert_eq!(bad_args["error"]["code"], -32602);
    // A tools/call notification cannot be answered: never relayed.
    h.send(json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "echo"}}))
        .await;
    // The server writes a line that is not JSON before its answer: dropped.
    let garbage = h.call(3, "garbage", json!({})).await;
    assert_eq!(garbage["result"]["isError"], false);
    // An unknown method is relayed; the server's error comes back.
    let unknown = h.request(4, "no/such/method", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let ping = h.request(5, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    assert_eq!(h.server_saw_call("echo"), 0);
    let saw = h.server_saw();
    assert!(saw.iter().all(|m| m.is_object() || m.is_array()));
    assert_eq!(
        saw.len(),
        5,
        "initialize, initialized, garbage, unknown, ping: {saw:?}"
    );
    let (outcome, ledger) = h.disconnect().await;
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn a_call_the_server_never_answers_times_out_and_is_cancelled() {
    let mut h = Harness::start(Setup {
        call_timeout: Duration::from_secs(1),
        ..Setup::default()
    })
    .await;
    h.initialize().await;
    let started = std::time::Instant::now();
    let timed_out = h.call(1, "slow", json!({})).await;
    assert_eq!(timed_out["error"]["code"], -32001, "{timed_out}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The session goes on, and the server was told to stop.
    let ok = h.call(2, "echo", json!({})).await;
    assert_eq!(ok["result"]["isError"], false);
    let cancelled = h
        .server_saw()
        .into_iter()
        .find(|m| m["method"] == "notifications/cancelled")
        .expect("a cancellation");
    assert_eq!(cancelled["params"]["requestId"], 1);
    let (outcome, ledger) = h.disconnect().await;
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn a_server_that_crashes_mid_call_ends_the_session_and_its_task() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    let ok = h.call(1, "echo", json!({})).await;
    assert_eq!(ok["result"]["isError"], false);
    let crashed = h.call(2, "crash", json!({})).await;
    assert_eq!(crashed["error"]["code"], -32002, "{crashed}");
    assert!(
        crashed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited")
    );
    let (outcome, ledger) = h.wait_end().await;
    assert_eq!(outcome.ended, Ended::ServerExited);
    assert_eq!(outcome.server_status.and_then(|s| s.code()), Some(3));
    assert_eq!(outcome.revoked.len(), 2, "the echo and crash grants");
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_call_ends_the_task() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    h.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                  "params": {"name": "slow", "arguments": {}}}))
        .await;
    // Wait until the server has it, then hang up.
    for _ in 0..200 {
        if h.server_saw_call("slow") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(h.server_saw_call("slow"), 1);
    let (outcome, ledger) = h.disconnect().await;
    assert_eq!(outcome.ended, Ended::ClientClosed);
    assert_eq!(outcome.revoked.len(), 1);
    assert!(outcome.server_status.is_some(), "the server was stopped");
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn messages_of_several_mib_pass_and_those_over_the_limit_do_not() {
    let mut h = Harness::start(Setup {
        max_message_bytes: 8 << 20,
        ..Setup::default()
    })
    .await;
    h.initialize().await;
    let big = "y".repeat(5 << 20);
    let echoed = h.call(1, "echo", json!({"blob": big})).await;
    assert_eq!(text_of(&echoed).len(), big.len() + r#"{"blob": ""}"#.len());
    let huge = h.call(2, "huge", json!({"size": 6 << 20})).await;
    assert_eq!(text_of(&huge).len(), 6 << 20);
    let over = "z".repeat(9 << 20);
    h.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                  "params": {"name": "echo", "arguments": {"blob": over}}}))
        .await;
    let refused = h.recv().await;
    assert_eq!(
        refused["error"]["code"],
        -32003,
        "{}",
        &refused.to_string()[..200.min(refused.to_string().len())]
    );
    assert_eq!(h.server_saw_call("echo"), 1);
    // An answer over the limit is dropped: the call then times out (not
    // waited for here); the session goes on.
    let ping = h.request(4, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    let (outcome, ledger) = h.disconnect().await;
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn a_batch_is_decided_element_by_element() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    h.send(json!([
        {"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "echo", "arguments": {"n": 1}}},
        {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "write", "arguments": {"path": "/secret/x", "level": "low"}}},
        {"jsonrpc": "2.0", "id": 12, "method": "ping"}
    ]))
    .await;
    let mut seen = BTreeMap::new();
    while seen.len() < 3 {
        match h.recv().await {
            Value::Array(items) => {
                for item in items {
                    seen.insert(item["id"].as_i64().unwrap(), item);
                }
            }
            other => panic!("answers to a batch come as batches: {other}"),
        }
    }
    assert_eq!(seen[&10]["result"]["isError"], false);
    assert_eq!(seen[&11]["result"]["isError"], true);
    assert_eq!(seen[&12]["result"], json!({}));
    let batches: Vec<Value> = h.server_saw().into_iter().filter(Value::is_array).collect();
    assert_eq!(batches.len(), 1);
    let ids: Vec<i64> = batches[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [10, 12], "the denied element was not relayed");
    h.send_raw("[]").await;
    assert_eq!(h.recv().await["error"]["code"], -32600);
    let (outcome, ledger) = h.disconnect().await;
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn messages_are_relayed_byte_for_byte_and_versions_pass_through() {
    let mut h = Harness::start(Setup {
        claimed_version: Some("2099-01-01"),
        ..Setup::default()
    })
    .await;
    let init = h.initialize().await;
    assert_eq!(init["result"]["protocolVersion"], "2099-01-01");
    // Odd spacing and key order reach the server as they were sent.
    let odd =
        r#"{ "params" : {"b":1,"a":2}, "method":"x/unknown",   "jsonrpc":"2.0", "id":"s-1" }"#;
    h.send_raw(odd).await;
    let answer = h.recv().await;
    assert_eq!(answer["id"], "s-1");
    let log = std::fs::read_to_string(&h.log).unwrap();
    assert!(log.lines().any(|l| l == odd), "{log}");
    // Without --hide-denied, tools/list is relayed as the server sent it.
    let listed = h.request(2, "tools/list", json!({})).await;
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 7);
    let (outcome, ledger) = h.disconnect().await;
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn hide_denied_leaves_out_tools_no_allow_rule_names() {
    let mut h = Harness::start(Setup {
        hide_denied: true,
        ..Setup::default()
    })
    .await;
    h.initialize().await;
    let listed = h.request(1, "tools/list", json!({})).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["echo", "write", "slow", "crash", "huge", "garbage"],
        "`forbidden` is left out: no allow rule names it"
    );
    let (outcome, _) = h.disconnect().await;
    assert_eq!(outcome.ended, Ended::ClientClosed);
}

#[tokio::test]
async fn a_shutdown_ends_the_task_and_stops_the_server() {
    let mut h = Harness::start(Setup::default()).await;
    h.initialize().await;
    assert_eq!(
        h.call(1, "echo", json!({})).await["result"]["isError"],
        false
    );
    h.stop.take().unwrap().send(()).unwrap();
    let (outcome, ledger) = h.wait_end().await;
    assert_eq!(outcome.ended, Ended::Shutdown("test".into()));
    assert_eq!(outcome.revoked.len(), 1);
    assert!(outcome.server_status.is_some());
    assert_ended(&ledger, &outcome);
}

#[tokio::test]
async fn session_attributes_decide_and_the_client_cannot_name_the_agent() {
    let mut h = Harness::start(Setup {
        team: "ops",
        ..Setup::default()
    })
    .await;
    h.initialize().await;
    let denied = h.call(1, "echo", json!({})).await;
    assert_eq!(
        denied["result"]["isError"], true,
        "echo needs session.team == qa"
    );
    let (outcome, ledger) = h.disconnect().await;
    let task = assert_ended(&ledger, &outcome);
    let labels = ledger.task(&task).unwrap().task.labels;
    assert_eq!(labels["mcp.client_claimed"], "claims-to-be-admin");
    assert_eq!(labels["mcp.name"], "fake");
}
