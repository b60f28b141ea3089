//! A server on 127.0.0.1 with an OS-chosen port, in a thread of its own
//! with its own runtime, stopped when dropped; and a blocking client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use grant_server::{PolicySource, Server, Settings};
use reqwest::blocking::{Client, Response};
use serde_json::Value;

/// The test policies' folder.
pub fn policy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/policies")
        .join(name)
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub server: Server,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server of the policy file `name` (in tests/policies) on a memory
    /// store.
    pub fn start(name: &str) -> TestServer {
        TestServer::start_with(name, |_| {})
    }

    /// The same, with its settings changed by `change` first.
    pub fn start_with(name: &str, change: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::new(PolicySource::Files(policy(name)), "memory", dir.path());
        change(&mut settings);
        let server = Server::new(settings).expect("server starts");
        TestServer::run(server, dir)
    }

    /// Runs a server built by the caller.
    pub fn run(server: Server, dir: tempfile::TempDir) -> TestServer {
        TestServer::run_routes(server, dir, None)
    }

    /// Runs a server with extra routes under its layers (`router_with`).
    pub fn run_routes(
        server: Server,
        dir: tempfile::TempDir,
        extra: Option<axum::Router<grant_server::AppState>>,
    ) -> TestServer {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel();
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                ready
                    .send(listener.local_addr().expect("address"))
                    .expect("report address");
                match extra {
                    None => serving
                        .serve(listener, async {
                            let _ = stopped.await;
                        })
                        .await
                        .expect("serve"),
                    Some(extra) => {
                        let router = serving.router_with(extra);
                        axum::serve(listener, router)
                            .with_graceful_shutdown(async {
                                let _ = stopped.await;
                            })
                            .await
                            .expect("serve");
                    }
                }
            });
        });
        let address = address.recv().expect("server address");
        TestServer {
            base: format!("http://{address}"),
            server,
            dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ledger(&self) -> &grant_ledger::Ledger {
        self.server.ledger()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client with a bounded timeout: no test waits forever.
pub fn client() -> Client {
    Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// POSTs JSON; returns the status and the JSON body.
pub fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    post_as(server, path, body, None)
}

/// POSTs JSON with a bearer token.
pub fn post_as(server: &TestServer, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut request = client().post(server.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().expect("request"))
}

/// GETs; returns the status and the JSON body.
pub fn get(server: &TestServer, path: &str) -> (u16, Value) {
    get_as(server, path, None)
}

pub fn get_as(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().expect("request"))
}

/// POSTs raw bytes with a content type.
pub fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = client().post(server.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    read(request.send().expect("request"))
}

pub fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, json)
}

/// A token of a test: name, roles, agent patterns, approval groups.
pub type TokenSpec<'a> = (
    &'a str,
    &'a [&'a str],
    Option<&'a [&'a str]>,
    Option<&'a [&'a str]>,
);

/// A tokens file with one token per `(name, roles, agents, groups)`;
/// each secret is `secret-NAME`.
pub fn tokens_file(dir: &Path, tokens: &[TokenSpec<'_>]) -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut text = String::new();
    for (name, roles, agents, groups) in tokens {
        let digest = Sha256::digest(format!("secret-{name}").as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{hex}\"\nroles = {roles:?}\n"
        ));
        if let Some(agents) = agents {
            text.push_str(&format!("agents = {agents:?}\n"));
        }
        if let Some(groups) = groups {
            text.push_str(&format!("groups = {groups:?}\n"));
        }
    }
    let path = dir.join("tokens.toml");
    std::fs::write(&path, text).expect("tokens file");
    path
}

/// The secret of a token `tokens_file` wrote.
pub fn secret(name: &str) -> String {
    format!("secret-{name}")
}

pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}
