//! The Streamable HTTP gateway over real sockets: against the real
//! `@modelcontextprotocol/server-everything` (driven by the official MCP
//! Python SDK, and by reqwest for precise cases), and against a scripted
//! upstream (an axum app below) for the failures a real server does not
//! show on demand. Every server listens on 127.0.0.1, port chosen by the
//! OS; every test is bounded in time.
//!
//! The real peers: node_modules from `npm ci --prefix tests/mcp` (else the
//! directory `GRANT_MCP_NODE_MODULES` names), and `python3` with the `mcp`
//! package. Without them the tests that need them print why and pass,
//! unless `CI` is set: then they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use grant_engine::Engine;
use grant_ledger::{EventType, GrantState, Ledger, TaskState};
use grant_mcp::Gateway;
use grant_mcp::http::{Handle, HttpError, HttpGateway, HttpOptions, HttpOutcome};
use http_body_util::channel::Channel;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const ACCEPT: &str = "application/json, text/event-stream";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn policy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/policies")
        .join(name)
}

/// Bounds a test.
async fn bounded<F: std::future::Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("the test did not finish in 90s")
}

// ---------------------------------------------------------------- gateway

struct Running {
    url: String,
    handle: Handle,
    gateway: Arc<Gateway>,
    stop: Option<tokio::sync::oneshot::Sender<String>>,
    served: JoinHandle<Result<HttpOutcome, HttpError>>,
    _dir: tempfile::TempDir,
}

fn options(upstream: &str) -> HttpOptions {
    HttpOptions {
        upstream: upstream.to_string(),
        call_timeout: Duration::from_secs(30),
        max_message_bytes: 1024 * 1024,
        hide_denied: false,
        session_idle: Duration::from_secs(600),
        shutdown_grace: Duration::from_secs(2),
    }
}

/// A gateway on 127.0.0.1:0 over a SQLite ledger in a temporary directory.
async fn start(policy_file: &str, prefix: &str, options: HttpOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = grant_ledger::store::open(&format!("sqlite:{}", dir.path().join("l.db").display()))
        .unwrap();
    let engine = Engine::from_path(policy(policy_file)).unwrap();
    let ledger = tokio::task::spawn_blocking(move || Ledger::open(store, engine))
        .await
        .unwrap()
        .unwrap();
    let mut labels = BTreeMap::new();
    labels.insert("mcp.transport".to_string(), "http".to_string());
    let gateway = Arc::new(Gateway::new(
        ledger,
        "agent-1",
        prefix,
        serde_json::Map::new(),
        labels,
    ));
    let bound = HttpGateway::bind(Arc::clone(&gateway), "127.0.0.1:0", options)
        .await
        .unwrap();
    let url = format!("http://{}/mcp", bound.local_addr().unwrap());
    let handle = bound.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<String>();
    let served = tokio::spawn(
        bound.serve(async move { stopped.await.unwrap_or_else(|_| "dropped".to_string()) }),
    );
    Running {
        url,
        handle,
        gateway,
        stop: Some(stop),
        served,
        _dir: dir,
    }
}

impl Running {
    fn ledger(&self) -> &Ledger {
        self.gateway.ledger()
    }

    async fn stop(&mut self) -> HttpOutcome {
        let _ = self.stop.take().unwrap().send("test".to_string());
        (&mut self.served).await.unwrap().unwrap()
    }

    /// Every task the ledger opened, in order.
    fn tasks(&self) -> Vec<String> {
        let events = self.ledger().events_after(0, 100_000).unwrap();
        events
            .iter()
            .map(|stored| grant_ledger::audit::parse(stored).unwrap())
            .filter(|event| event.kind == EventType::TaskOpened)
            .filter_map(|event| event.task_id)
            .collect()
    }

    fn kinds(&self, task: &str) -> Vec<(EventType, Option<String>)> {
        self.ledger()
            .timeline(task)
            .unwrap()
            .into_iter()
            .map(|event| (event.kind, event.tool))
            .collect()
    }

    /// The task ended, every grant of it revoked, and the chain intact.
    fn assert_ended(&self, task: &str) {
        let view = self.ledger().task(task).unwrap();
        assert_eq!(view.task.state, TaskState::Ended, "{task}");
        for grant in &view.grants {
            assert_eq!(grant.state, GrantState::Revoked, "{}", grant.grant_id);
        }
        self.assert_chain();
    }

    fn assert_chain(&self) {
        let verified =
            grant_ledger::chain::verify(self.ledger().store().as_ref(), &[], None).unwrap();
        assert!(verified.is_intact(), "{:?}", verified.problem);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(
    url: &str,
    session: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = client()
        .post(url)
        .header("accept", ACCEPT)
        .header("content-type", "application/json")
        .body(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.unwrap()
}

fn initialize(id: u64) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "http-test", "version": "1"}},
    })
    .to_string()
}

fn call(id: u64, tool: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
        .to_string()
}

/// A JSON body, or the JSON-RPC messages of an event stream.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let event_stream = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.to_str().unwrap().starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !event_stream {
        return match serde_json::from_str(&text).unwrap() {
            Value::Array(items) => items,
            one => vec![one],
        };
    }
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

fn session_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_string()
}

fn text_of(message: &Value) -> &str {
    message["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

// ----------------------------------------------------------- real server

/// The real peers, or why they are missing (a failure when `CI` is set).
fn peers() -> Option<PathBuf> {
    let mut candidates = vec![root().join("tests/mcp/node_modules")];
    if let Some(dir) = std::env::var_os("GRANT_MCP_NODE_MODULES") {
        candidates.push(PathBuf::from(dir));
    }
    let everything = candidates
        .iter()
        .map(|dir| dir.join("@modelcontextprotocol/server-everything/dist/index.js"))
        .find(|path| path.is_file());
    let python = std::process::Command::new("python3")
        .args(["-c", "import mcp.client.streamable_http"])
        .output()
        .is_ok_and(|out| out.status.success());
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    let missing = match (&everything, python, node) {
        (Some(_), true, true) => return everything,
        (None, _, _) => "server-everything (npm ci --prefix tests/mcp, or GRANT_MCP_NODE_MODULES)",
        (_, false, _) => "python3 with the `mcp` package",
        (_, _, false) => "node",
    };
    if std::env::var_os("CI").is_some() {
        panic!("the real MCP peers are missing: {missing}");
    }
    eprintln!("skipped: the real MCP peers are missing: {missing}");
    None
}

/// server-everything in its Streamable HTTP mode, on a free port.
struct Everything {
    url: String,
    _child: tokio::process::Child,
}

async fn everything(script: &Path) -> Everything {
    for _ in 0..3 {
        // A free port: the server takes PORT and prints none back.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..150 {
            if let Ok(Some(_)) = child.try_wait() {
                break; // the port was taken meanwhile: try another
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Everything {
                    url: format!("http://127.0.0.1:{port}/mcp"),
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
    }
    panic!("server-everything did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_through_the_gateway_to_server_everything() {
    let Some(script) = peers() else { return };
    bounded(async {
        let server = everything(&script).await;
        let mut options = options(&server.url);
        options.hide_denied = true;
        let mut gateway = start("http-everything.grant", "everything", options).await;

        let out = tokio::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http_client.py"))
            .arg(&gateway.url)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let steps: BTreeMap<String, Value> = stdout
            .lines()
            .map(|line| {
                let step: Value = serde_json::from_str(line).unwrap();
                (step["step"].as_str().unwrap().to_string(), step)
            })
            .collect();
        assert_eq!(steps["initialize"]["server"], "mcp-servers/everything");
        // --hide-denied: the server's event stream, filtered.
        assert_eq!(
            steps["tools"]["names"],
            json!(["echo", "trigger-long-running-operation"])
        );
        // Allowed: the server's own answer.
        assert_eq!(steps["echo"]["is_error"], false);
        assert_eq!(steps["echo"]["text"], "Echo: hello");
        assert_eq!(steps["echo-again"]["text"], "Echo: again");
        // Denied by argument and by tool: the decision, as a tool error.
        for (step, rule) in [("secret", "no-secrets"), ("sum", "no-sums")] {
            assert_eq!(steps[step]["is_error"], true, "{step}");
            let text = steps[step]["text"].as_str().unwrap();
            assert!(text.starts_with("Grant denied this call"), "{text}");
            assert!(text.contains(&format!("Rule `{rule}`")), "{text}");
            assert_eq!(steps[step]["meta"]["grant/decision"]["status"], "denied");
        }
        assert!(steps.contains_key("closed"));

        // The SDK's DELETE ended the session: its task, its grant revoked.
        let tasks = gateway.tasks();
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        assert_eq!(gateway.handle.sessions(), 0);
        gateway.assert_ended(&tasks[0]);
        let echo = Some("everything.echo".to_string());
        let sum = Some("everything.get-sum".to_string());
        assert_eq!(
            gateway.kinds(&tasks[0]),
            [
                (EventType::TaskOpened, None),
                (EventType::GrantIssued, echo.clone()),
                (EventType::GrantUsed, echo.clone()),
                (EventType::GrantUseRefused, echo.clone()),
                (EventType::GrantDenied, sum),
                (EventType::GrantUsed, echo.clone()),
                (EventType::GrantRevoked, echo),
                (EventType::TaskEnded, None),
            ]
        );
        let outcome = gateway.stop().await;
        assert!(outcome.ended.is_empty(), "{outcome:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_with_server_everything_end_at_shutdown() {
    let Some(script) = peers() else { return };
    bounded(async {
        let server = everything(&script).await;
        let mut gateway = start("http-everything.grant", "everything", options(&server.url)).await;

        let opened = post(&gateway.url, None, initialize(1)).await;
        assert_eq!(opened.status(), StatusCode::OK);
        let session = session_of(&opened);
        let _ = messages(opened).await;
        let task = gateway.handle.task_of(&session).await.expect("a task");

        let echoed = post(
            &gateway.url,
            Some(&session),
            call(2, "echo", json!({"message": "hi"})),
        )
        .await;
        assert_eq!(echoed.status(), StatusCode::OK);
        let answers = messages(echoed).await;
        assert_eq!(text_of(answers.last().unwrap()), "Echo: hi");

        // A session the gateway does not know decides nothing.
        let unknown = post(
            &gateway.url,
            Some("no-such-session"),
            call(3, "echo", json!({"message": "hi"})),
        )
        .await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

        // Shutdown ends the open session's task, revoking its grant.
        let outcome = gateway.stop().await;
        assert_eq!(outcome.ended.len(), 1, "{outcome:?}");
        assert_eq!(outcome.ended[0].task_id.as_deref(), Some(task.as_str()));
        assert_eq!(outcome.ended[0].revoked.len(), 1);
        gateway.assert_ended(&task);
    })
    .await;
}

// ------------------------------------------------------- scripted server

/// What the scripted server saw: each request's method, session id and
/// JSON body.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    session: Option<String>,
    body: Value,
}

#[derive(Debug, Default)]
struct Script {
    seen: Mutex<Vec<Seen>>,
    /// Gives no session ids.
    stateless: bool,
    /// Session ids it answers 404 for.
    gone: Mutex<HashSet<String>>,
    next: AtomicU64,
}

impl Script {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The methods of the POSTed messages seen.
    fn methods(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|seen| seen.method == Method::POST)
            .map(|seen| seen.body["method"].as_str().unwrap_or("-").to_string())
            .collect()
    }
}

struct Fake {
    url: String,
    script: Arc<Script>,
    _server: JoinHandle<()>,
}

async fn fake(stateless: bool) -> Fake {
    let script = Arc::new(Script {
        stateless,
        ..Script::default()
    });
    let app = axum::Router::new()
        .route("/rpc", axum::routing::any(scripted))
        .with_state(Arc::clone(&script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Fake {
        url,
        script,
        _server: server,
    }
}

fn json_answer(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An event stream of these chunks; open forever after them if `hang`.
fn event_stream(chunks: Vec<String>, hang: bool) -> Response {
    let (mut tx, body) = Channel::<Bytes, std::io::Error>::new(8);
    tokio::spawn(async move {
        for chunk in chunks {
            if tx.send_data(Bytes::from(chunk)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        Body::new(body),
    )
        .into_response()
}

const NOTICE: &str = "event: message\r\nid: n1\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\r\n\r\n";

async fn scripted(
    State(script): State<Arc<Script>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = headers
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    script.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        session: session.clone(),
        body: message.clone(),
    });
    if session
        .as_ref()
        .is_some_and(|s| script.gone.lock().unwrap().contains(s))
    {
        return (StatusCode::NOT_FOUND, "no such session").into_response();
    }
    match method {
        Method::GET => return event_stream(vec![NOTICE.to_string()], false),
        Method::DELETE => return StatusCode::OK.into_response(),
        _ => {}
    }
    if let Value::Array(items) = &message {
        // A batch (2025-03-26): only echo calls, answered in one body.
        let answers: Vec<Value> = items
            .iter()
            .filter(|item| item["params"]["name"] == "echo")
            .map(|item| json!({"jsonrpc": "2.0", "id": item["id"], "result": {"content": [
                {"type": "text", "text": format!("echo: {}", item["params"]["arguments"]["message"])},
            ]}}))
            .collect();
        return json_answer(Value::Array(answers));
    }
    let id = message["id"].clone();
    match message["method"].as_str() {
        Some("initialize") => {
            let mut answer = json_answer(json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "scripted", "version": "1"},
            }}));
            if !script.stateless {
                let n = script.next.fetch_add(1, Ordering::Relaxed);
                answer
                    .headers_mut()
                    .insert("mcp-session-id", format!("s-{n}").parse().unwrap());
            }
            answer
        }
        Some("tools/list") => {
            let list = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
                {"name": "echo", "inputSchema": {"type": "object"}},
                {"name": "get-sum", "inputSchema": {"type": "object"}},
                {"name": "sse", "inputSchema": {"type": "object"}},
            ]}});
            event_stream(
                vec![
                    NOTICE.to_string(),
                    format!("event: message\ndata: {list}\n\n"),
                ],
                false,
            )
        }
        Some("tools/call") => {
            let name = message["params"]["name"].as_str().unwrap_or_default();
            let arguments = &message["params"]["arguments"];
            let result = |text: String| json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}});
            match name {
                "echo" => json_answer(result(format!("echo: {}", arguments["message"]))),
                "hang" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::GATEWAY_TIMEOUT.into_response()
                }
                "sse" => {
                    // The answer cut in two chunks, mid-line.
                    let event = format!(
                        "event: message\nid: r1\ndata: {}\n\n",
                        result("streamed".into())
                    );
                    let (a, b) = event.split_at(20);
                    event_stream(
                        vec![NOTICE.to_string(), a.to_string(), b.to_string()],
                        false,
                    )
                }
                "sse-hang" => event_stream(vec![NOTICE.to_string()], true),
                other => json_answer(result(format!("unexpected tool {other}"))),
            }
        }
        // Notifications and answers.
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

/// A gateway in front of a scripted server, and a session opened.
async fn scripted_session(options_of: impl FnOnce(&mut HttpOptions)) -> (Fake, Running, String) {
    let fake = fake(false).await;
    let mut options = options(&fake.url);
    options_of(&mut options);
    let gateway = start("http-fake.grant", "fake", options).await;
    let opened = post(&gateway.url, None, initialize(1)).await;
    assert_eq!(opened.status(), StatusCode::OK);
    let session = session_of(&opened);
    assert_eq!(session, "s-0");
    (fake, gateway, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_are_answered_by_the_gateway_and_never_forwarded() {
    bounded(async {
        let (fake, mut gateway, session) = scripted_session(|_| {}).await;

        let allowed = post(
            &gateway.url,
            Some(&session),
            call(2, "echo", json!({"message": "hi"})),
        )
        .await;
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(text_of(&messages(allowed).await[0]), "echo: \"hi\"");

        let denied = post(
            &gateway.url,
            Some(&session),
            call(3, "get-sum", json!({"a": 1})),
        )
        .await;
        assert_eq!(denied.status(), StatusCode::OK);
        assert_eq!(
            denied.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let denied = &messages(denied).await[0];
        assert_eq!(denied["id"], 3);
        assert_eq!(denied["result"]["isError"], true);
        assert!(text_of(denied).contains("Rule `no-sums`: arithmetic is done by the model"));

        // A batch: the denied call answered by the gateway, the rest
        // forwarded, the answers merged.
        let batch = format!(
            "[{},{}]",
            call(4, "echo", json!({"message": "top secret"})),
            call(5, "echo", json!({"message": "fine"}))
        );
        let answers = messages(post(&gateway.url, Some(&session), batch).await).await;
        let by_id = |id: u64| answers.iter().find(|a| a["id"] == id).unwrap();
        assert_eq!(by_id(4)["result"]["isError"], true);
        assert_eq!(text_of(by_id(5)), "echo: \"fine\"");

        // A call in a session the gateway does not know: 404, not forwarded.
        let unknown = post(
            &gateway.url,
            Some("s-99"),
            call(6, "echo", json!({"message": "x"})),
        )
        .await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

        // The server saw only the allowed calls.
        let calls: Vec<Value> = fake
            .script
            .seen()
            .into_iter()
            .filter_map(|seen| match seen.body {
                Value::Array(items) => Some(items),
                Value::Object(_) => Some(vec![seen.body]),
                _ => None,
            })
            .flatten()
            .filter(|m| m["method"] == "tools/call")
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(calls, [json!(2), json!(5)]);
        let task = gateway.handle.task_of(&session).await.unwrap();
        let outcome = gateway.stop().await;
        assert_eq!(outcome.ended.len(), 1);
        gateway.assert_ended(&task);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_is_down_is_a_502() {
    bounded(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut gateway = start(
            "http-fake.grant",
            "fake",
            options(&format!("http://127.0.0.1:{port}/mcp")),
        )
        .await;
        let answer = post(&gateway.url, None, initialize(7)).await;
        assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["id"], 7);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("could not be reached"),
            "{body}"
        );
        gateway.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_not_forwarded() {
    bounded(async {
        let fake = fake(false).await;
        let mut options = options(&fake.url);
        options.max_message_bytes = 2048;
        let mut gateway = start("http-fake.grant", "fake", options).await;

        let parse = post(&gateway.url, None, "{not json").await;
        assert_eq!(parse.status(), StatusCode::BAD_REQUEST);
        let body: Value = parse.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32700);

        let large = post(
            &gateway.url,
            None,
            call(1, "echo", json!({"message": "x".repeat(4096)})),
        )
        .await;
        assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = large.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32003);

        let empty = post(&gateway.url, None, "[]").await;
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST);

        let from_a_page = client()
            .post(&gateway.url)
            .header("origin", "https://attacker.example")
            .header("content-type", "application/json")
            .body(initialize(1))
            .send()
            .await
            .unwrap();
        assert_eq!(from_a_page.status(), StatusCode::FORBIDDEN);
        let local_page = client()
            .post(&gateway.url)
            .header("origin", "http://localhost:6274")
            .header("accept", ACCEPT)
            .header("content-type", "application/json")
            .body(initialize(1))
            .send()
            .await
            .unwrap();
        assert_eq!(local_page.status(), StatusCode::OK);

        let elsewhere = client()
            .post(gateway.url.replace("/mcp", "/other"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
        let put = client().put(&gateway.url).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);

        // Only the loopback page's initialize reached the server.
        assert_eq!(fake.script.methods(), ["initialize"]);
        gateway.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_not_answered_in_time_is_an_error_and_is_cancelled() {
    bounded(async {
        let (fake, mut gateway, session) =
            scripted_session(|o| o.call_timeout = Duration::from_millis(500)).await;

        // A JSON answer that never comes.
        let started = std::time::Instant::now();
        let hung = post(&gateway.url, Some(&session), call(2, "hang", json!({}))).await;
        assert_eq!(hung.status(), StatusCode::OK);
        let answer = &messages(hung).await[0];
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(answer["id"], 2);
        assert_eq!(answer["error"]["code"], -32001);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("did not answer the call of `fake.hang` within 500ms")
        );

        // An event stream that stops short of the answer: the error is its
        // last event, and the stream ends.
        let stream = post(&gateway.url, Some(&session), call(3, "sse-hang", json!({}))).await;
        assert_eq!(
            stream.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let events = messages(stream).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["method"], "notifications/message");
        assert_eq!(events[1]["id"], 3);
        assert_eq!(events[1]["error"]["code"], -32001);

        // The server was told to stop working on both, in the session.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cancelled: Vec<Value> = fake
            .script
            .seen()
            .into_iter()
            .filter(|seen| seen.body["method"] == "notifications/cancelled")
            .inspect(|seen| assert_eq!(seen.session.as_deref(), Some("s-0")))
            .map(|seen| seen.body["params"]["requestId"].clone())
            .collect();
        assert_eq!(cancelled, [json!(2), json!(3)]);
        gateway.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_forgot_ends_its_task() {
    bounded(async {
        let (fake, mut gateway, session) = scripted_session(|_| {}).await;
        let allowed = post(
            &gateway.url,
            Some(&session),
            call(2, "echo", json!({"message": "hi"})),
        )
        .await;
        assert_eq!(allowed.status(), StatusCode::OK);
        let task = gateway.handle.task_of(&session).await.unwrap();

        fake.script.gone.lock().unwrap().insert(session.clone());
        let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string();
        let forgotten = post(&gateway.url, Some(&session), list).await;
        assert_eq!(forgotten.status(), StatusCode::NOT_FOUND);
        assert_eq!(gateway.handle.sessions(), 0);
        gateway.assert_ended(&task);
        assert!(
            gateway
                .kinds(&task)
                .contains(&(EventType::GrantRevoked, Some("fake.echo".to_string())))
        );

        // From now on its calls are not decided, nor forwarded.
        let late = post(
            &gateway.url,
            Some(&session),
            call(4, "echo", json!({"message": "hi"})),
        )
        .await;
        assert_eq!(late.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            fake.script
                .methods()
                .iter()
                .filter(|m| *m == "tools/call")
                .count(),
            1
        );
        let outcome = gateway.stop().await;
        assert!(outcome.ended.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_pass_through_filtered_only_by_hide_denied() {
    bounded(async {
        let (_fake, mut gateway, session) = scripted_session(|o| o.hide_denied = true).await;

        // An answer streamed in pieces: relayed byte for byte.
        let streamed = post(&gateway.url, Some(&session), call(2, "sse", json!({}))).await;
        assert_eq!(streamed.status(), StatusCode::OK);
        let text = streamed.text().await.unwrap();
        let answer = json!({"jsonrpc": "2.0", "id": 2, "result": {"content": [{"type": "text", "text": "streamed"}]}});
        assert_eq!(
            text,
            format!("{NOTICE}event: message\nid: r1\ndata: {answer}\n\n")
        );

        // tools/list in an event stream: filtered, the other event as it was.
        let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}).to_string();
        let listed = post(&gateway.url, Some(&session), list).await.text().await.unwrap();
        assert!(listed.starts_with(NOTICE), "{listed}");
        let (_, event) = listed.split_at(NOTICE.len());
        let data = event
            .strip_prefix("event: message\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap();
        let names: Vec<Value> = serde_json::from_str::<Value>(data).unwrap()["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].clone())
            .collect();
        assert_eq!(names, [json!("echo"), json!("sse")]);

        // GET: the server's own stream.
        let get = client()
            .get(&gateway.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(get.text().await.unwrap(), NOTICE);

        // DELETE: relayed, and the task ends.
        let task = gateway.handle.task_of(&session).await.unwrap();
        let deleted = client()
            .delete(&gateway.url)
            .header("mcp-session-id", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), StatusCode::OK);
        gateway.assert_ended(&task);
        gateway.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends() {
    bounded(async {
        let (_fake, mut gateway, session) =
            scripted_session(|o| o.session_idle = Duration::from_millis(400)).await;
        let allowed = post(
            &gateway.url,
            Some(&session),
            call(2, "echo", json!({"message": "hi"})),
        )
        .await;
        assert_eq!(allowed.status(), StatusCode::OK);
        let task = gateway.handle.task_of(&session).await.unwrap();
        for _ in 0..100 {
            if gateway.handle.sessions() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(gateway.handle.sessions(), 0);
        // Ending is a ledger write: wait for it.
        for _ in 0..100 {
            if gateway.ledger().task(&task).unwrap().task.state == TaskState::Ended {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway.assert_ended(&task);
        gateway.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_server_shares_one_task_until_shutdown() {
    bounded(async {
        let fake = fake(true).await;
        let mut gateway = start("http-fake.grant", "fake", options(&fake.url)).await;
        for round in 0..2 {
            let opened = post(&gateway.url, None, initialize(1)).await;
            assert_eq!(opened.status(), StatusCode::OK);
            assert!(opened.headers().get("mcp-session-id").is_none());
            let echoed = post(
                &gateway.url,
                None,
                call(2 + round, "echo", json!({"message": "hi"})),
            )
            .await;
            assert_eq!(text_of(&messages(echoed).await[0]), "echo: \"hi\"");
        }
        let denied = post(&gateway.url, None, call(9, "get-sum", json!({}))).await;
        assert_eq!(messages(denied).await[0]["result"]["isError"], true);

        let task = gateway.handle.sessionless_task().await.unwrap();
        assert_eq!(gateway.tasks(), std::slice::from_ref(&task));
        let outcome = gateway.stop().await;
        assert_eq!(outcome.ended.len(), 1);
        assert_eq!(outcome.ended[0].task_id.as_deref(), Some(task.as_str()));
        gateway.assert_ended(&task);
    })
    .await;
}
