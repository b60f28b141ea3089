//! The stdio gateway: the host talks to us on our stdin and stdout, and we
//! start the MCP server as our child and talk to it on its own. Every
//! message is relayed unchanged (its bytes, not a re-serialization) except
//! `tools/call`, which is decided first and relayed only if allowed.
//!
//! Tasks: one reads the client and decides, in order (a message after a
//! call waits for that call's decision, so order is kept); one reads the
//! server; one writer per direction. The session ends at the first of: the
//! client closing stdin, the server exiting, or `shutdown`; then the task
//! is ended (its grants revoked), the server stopped (stdin closed, then
//! SIGTERM, then SIGKILL), and what is left for the client flushed.

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::framing::{Line, LineReader};
use crate::gateway::{Gateway, Session};
use crate::jsonrpc::{self, Message, Peek, code};
use crate::relay::{self, Call, CallRoute, Pending, Settled, join_batch, lock, params_of};

/// How the proxy runs.
#[derive(Clone, Debug)]
pub struct StdioOptions {
    /// The MCP server: the program and its arguments.
    pub command: Vec<String>,
    /// A forwarded call the server has not answered by then is answered
    /// with an error (and the server told to cancel it).
    pub call_timeout: Duration,
    pub max_message_bytes: usize,
    /// Leave out of `tools/list` the tools no allow rule can match.
    pub hide_denied: bool,
    /// How long the server has to exit after its stdin closes, and again
    /// after SIGTERM, before SIGKILL.
    pub exit_grace: Duration,
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client closed our stdin.
    ClientClosed,
    /// Reading the client failed.
    ClientError(String),
    /// The server closed its stdout (exited or crashed).
    ServerExited,
    /// The embedder's shutdown (a signal), with its name.
    Shutdown(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::ClientClosed => f.write_str("the client disconnected"),
            Ended::ClientError(e) => write!(f, "reading the client failed: {e}"),
            Ended::ServerExited => f.write_str("the MCP server exited"),
            Ended::Shutdown(why) => write!(f, "the gateway was stopped ({why})"),
        }
    }
}

/// How a session went.
#[derive(Debug)]
pub struct Outcome {
    pub ended: Ended,
    /// The session's task, if it was opened.
    pub task_id: Option<String>,
    /// Grants revoked when the task ended.
    pub revoked: Vec<String>,
    /// Ending the task failed (the ledger was unavailable): why.
    pub end_error: Option<String>,
    /// The server's exit status, once it exited.
    pub server_status: Option<ExitStatus>,
}

/// Errors before the session starts.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("no MCP server command given")]
    NoCommand,
    #[error("cannot start the MCP server `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// Runs one session between `client_in`/`client_out` and a server started
/// from `options.command`, until it ends.
pub async fn run<R, W, S>(
    gateway: Arc<Gateway>,
    options: StdioOptions,
    client_in: R,
    client_out: W,
    shutdown: S,
) -> Result<Outcome, StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    S: std::future::Future<Output = String>,
{
    let (program, args) = options.command.split_first().ok_or(StdioError::NoCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StdioError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (Some(server_in), Some(server_out)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(StdioError::Spawn {
            program: program.clone(),
            source: std::io::Error::other("its stdin or stdout was not piped"),
        });
    };

    let (to_client, client_rx) = mpsc::channel::<Vec<u8>>(256);
    let (to_server, server_rx) = mpsc::channel::<Vec<u8>>(256);
    let client_writer = tokio::spawn(write_lines(client_out, client_rx));
    let server_writer = tokio::spawn(write_lines(server_in, server_rx));

    let relay = Arc::new(Relay {
        session: gateway.session(),
        options: options.clone(),
        book: Arc::default(),
        to_client: to_client.downgrade(),
        to_server: to_server.downgrade(),
    });

    let server_reader = {
        let relay = Arc::clone(&relay);
        let reader = LineReader::new(BufReader::new(server_out), options.max_message_bytes);
        let to_client = to_client.clone();
        tokio::spawn(async move { relay.read_server(reader, to_client).await })
    };
    let mut server_reader = server_reader;
    let client_reader = LineReader::new(BufReader::new(client_in), options.max_message_bytes);
    let ended = tokio::select! {
        ended = relay.read_client(client_reader, to_server, to_client.clone()) => ended,
        _ = &mut server_reader => Ended::ServerExited,
        why = shutdown => Ended::Shutdown(why),
    };
    // From here nothing more is read from the client, and the client
    // loop's sender to the server is gone.
    tracing::info!("session ending: {ended}");
    let task_id = relay.session.task_id().await;
    let (revoked, end_error) = match relay.session.end(&ended.to_string()).await {
        Ok(revoked) => (revoked, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    if ended != Ended::ClientClosed {
        relay.answer_outstanding(&to_client, &ended).await;
    }
    let server_status = stop_server(&mut child, server_writer, options.exit_grace).await;
    server_reader.abort();
    drop(to_client);
    let _ = client_writer.await;
    Ok(Outcome {
        ended,
        task_id,
        revoked,
        end_error,
        server_status,
    })
}

/// Closes the server's stdin (the writer ends once its queue drains and
/// every sender is gone), then waits, then SIGTERM, then SIGKILL.
async fn stop_server(
    child: &mut Child,
    server_writer: tokio::task::JoinHandle<()>,
    grace: Duration,
) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        server_writer.abort();
        return Some(status);
    }
    let _ = tokio::time::timeout(grace, server_writer).await;
    if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
        return Some(status);
    }
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
            return Some(status);
        }
    }
    tracing::warn!("the MCP server did not exit after SIGTERM: killing it");
    let _ = child.kill().await;
    child.wait().await.ok()
}

/// Writes each message as one line, flushed, until every sender is gone or
/// the peer stops reading.
async fn write_lines<W: AsyncWrite + Unpin>(mut out: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(mut message) = rx.recv().await {
        message.push(b'\n');
        if out.write_all(&message).await.is_err() || out.flush().await.is_err() {
            // The peer is gone; drain so senders never block on us.
            rx.close();
            while rx.recv().await.is_some() {}
            return;
        }
    }
    let _ = out.shutdown().await;
}

/// What the client's message becomes.
enum Route {
    /// Relay it as it came.
    Relay,
    /// Answer the client with this, relay nothing.
    Answer(Vec<u8>),
    /// Neither (a notification the gateway refuses: it cannot answer one).
    Drop,
}

#[derive(Debug)]
struct Relay {
    session: Session,
    options: StdioOptions,
    book: Arc<Book>,
    /// Weak: the timers must not keep the writers alive at the end.
    to_client: mpsc::WeakSender<Vec<u8>>,
    to_server: mpsc::WeakSender<Vec<u8>>,
}

/// The requests in flight the gateway keeps track of.
#[derive(Debug, Default)]
struct Book {
    pending: Mutex<Pending>,
    next_call: AtomicU64,
}

impl Book {
    /// A forwarded call's timeout fired: if still unanswered, the client
    /// gets an error and the server a cancellation.
    async fn expire(
        &self,
        key: &str,
        number: u64,
        timeout: Duration,
        to_client: &mpsc::WeakSender<Vec<u8>>,
        to_server: &mpsc::WeakSender<Vec<u8>>,
    ) {
        let Some(call) = lock(&self.pending).expire(key, number) else {
            return;
        };
        if let Some(to_client) = to_client.upgrade() {
            let _ = to_client.send(call.timeout_error(timeout)).await;
        }
        if let Some(to_server) = to_server.upgrade() {
            let _ = to_server
                .send(jsonrpc::cancelled(&call.id, "timed out at the gateway"))
                .await;
        }
    }
}

impl Relay {
    async fn read_client<R: AsyncRead + Unpin>(
        &self,
        mut reader: LineReader<BufReader<R>>,
        to_server: mpsc::Sender<Vec<u8>>,
        to_client: mpsc::Sender<Vec<u8>>,
    ) -> Ended {
        loop {
            let line = match reader.next().await {
                Ok(Some(line)) => line,
                Ok(None) => return Ended::ClientClosed,
                Err(error) => return Ended::ClientError(error.to_string()),
            };
            let bytes = match line {
                Line::Text(bytes) => bytes,
                Line::TooLong(size) => {
                    let message = format!(
                        "grant mcp: a message of {size} bytes is over the limit of {} bytes; it was not relayed",
                        self.options.max_message_bytes
                    );
                    tracing::warn!("{message}");
                    let _ = to_client
                        .send(jsonrpc::error(None, code::TOO_LARGE, &message))
                        .await;
                    continue;
                }
            };
            match jsonrpc::read(&bytes) {
                Err(error) => {
                    let message =
                        format!("grant mcp: not a JSON-RPC message ({error}); it was not relayed");
                    tracing::warn!("{message}");
                    let _ = to_client
                        .send(jsonrpc::error(None, code::PARSE_ERROR, &message))
                        .await;
                }
                Ok(Message::One(peek)) => match self.route(&peek, &bytes).await {
                    Route::Relay => {
                        let _ = to_server.send(bytes).await;
                    }
                    Route::Answer(answer) => {
                        let _ = to_client.send(answer).await;
                    }
                    Route::Drop => {}
                },
                Ok(Message::Batch(items)) => {
                    self.batch(items, &bytes, &to_server, &to_client).await;
                }
            }
        }
    }

    /// A batch: each element routed as if alone; what is relayed goes as
    /// one batch (the original bytes when all of it), the gateway's
    /// answers as another.
    async fn batch(
        &self,
        items: Vec<Box<RawValue>>,
        raw: &[u8],
        to_server: &mpsc::Sender<Vec<u8>>,
        to_client: &mpsc::Sender<Vec<u8>>,
    ) {
        if items.is_empty() {
            let _ = to_client
                .send(jsonrpc::error(
                    None,
                    code::INVALID_REQUEST,
                    "grant mcp: an empty batch",
                ))
                .await;
            return;
        }
        let mut relayed = Vec::new();
        let mut answers = Vec::new();
        for item in &items {
            let text = item.get().as_bytes();
            match jsonrpc::read(text) {
                Ok(Message::One(peek)) => match self.route(&peek, text).await {
                    Route::Relay => relayed.push(item.get()),
                    Route::Answer(answer) => answers.push(answer),
                    Route::Drop => {}
                },
                Ok(Message::Batch(_)) | Err(_) => answers.push(jsonrpc::error(
                    None,
                    code::INVALID_REQUEST,
                    "grant mcp: a batch element that is not a JSON-RPC message; it was not relayed",
                )),
            }
        }
        if relayed.len() == items.len() {
            let _ = to_server.send(raw.to_vec()).await;
        } else if !relayed.is_empty() {
            let _ = to_server
                .send(join_batch(relayed.iter().map(|s| s.as_bytes())))
                .await;
        }
        if !answers.is_empty() {
            let _ = to_client
                .send(join_batch(answers.iter().map(Vec::as_slice)))
                .await;
        }
    }

    async fn route(&self, peek: &Peek, raw: &[u8]) -> Route {
        let key = peek.key();
        match (peek.method.as_deref(), key) {
            (Some("tools/call"), Some(key)) => {
                let id = peek.id.clone().unwrap_or(Value::Null);
                let gateway = self.session.gateway();
                match relay::route_call(gateway, Ok(&self.session), &id, raw).await {
                    CallRoute::Forward { tool } => {
                        self.track(key, id, tool);
                        Route::Relay
                    }
                    CallRoute::Answer(answer) => Route::Answer(answer),
                }
            }
            (Some("tools/call"), None) => {
                tracing::warn!(
                    "a tools/call without an id (a notification) cannot be answered; it was not relayed"
                );
                Route::Drop
            }
            (Some("initialize"), _) => {
                // A failure is kept and retried at the first call, which is
                // refused while there is no task.
                let _ = self.session.open(params_of(raw).as_ref()).await;
                Route::Relay
            }
            (Some("tools/list"), Some(key)) if self.options.hide_denied => {
                lock(&self.book.pending).lists.insert(key);
                Route::Relay
            }
            (Some("notifications/cancelled"), None) => {
                if let Some(request) = params_of(raw).and_then(|p| p.get("requestId").cloned()) {
                    lock(&self.book.pending)
                        .calls
                        .remove(&jsonrpc::id_key(&request));
                }
                Route::Relay
            }
            _ => Route::Relay,
        }
    }

    /// Remembers a forwarded call and arms its timeout.
    fn track(&self, key: String, id: Value, tool: String) {
        let number = self.book.next_call.fetch_add(1, Ordering::Relaxed);
        let timeout = self.options.call_timeout;
        let (book, to_client, to_server, timer_key) = (
            Arc::clone(&self.book),
            self.to_client.clone(),
            self.to_server.clone(),
            key.clone(),
        );
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            book.expire(&timer_key, number, timeout, &to_client, &to_server)
                .await;
        });
        lock(&self.book.pending).calls.insert(
            key,
            Call {
                number,
                id,
                tool,
                timer: Some(timer.abort_handle()),
            },
        );
    }

    /// Reads the server until it closes its stdout.
    async fn read_server<R: AsyncRead + Unpin>(
        &self,
        mut reader: LineReader<BufReader<R>>,
        to_client: mpsc::Sender<Vec<u8>>,
    ) {
        loop {
            let bytes = match reader.next().await {
                Ok(Some(Line::Text(bytes))) => bytes,
                Ok(Some(Line::TooLong(size))) => {
                    // The call it answered, if any, times out.
                    tracing::warn!(
                        "the MCP server sent a message of {size} bytes, over the limit of {} bytes: dropped",
                        self.options.max_message_bytes
                    );
                    continue;
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!("reading the MCP server failed: {error}");
                    return;
                }
            };
            let message = match jsonrpc::read(&bytes) {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(
                        "the MCP server sent a line that is not JSON-RPC ({error}): dropped"
                    );
                    continue;
                }
            };
            let settled =
                lock(&self.book.pending).settle_message(self.session.gateway(), &message, &bytes);
            let out = match settled {
                Settled::Relay => bytes,
                Settled::Replace(replaced) => replaced,
                Settled::Drop => continue,
            };
            if to_client.send(out).await.is_err() {
                return;
            }
        }
    }

    /// At the end, answers every call still waiting for the server.
    async fn answer_outstanding(&self, to_client: &mpsc::Sender<Vec<u8>>, ended: &Ended) {
        let calls: Vec<Call> = lock(&self.book.pending)
            .calls
            .drain()
            .map(|(_, call)| call)
            .collect();
        for call in calls {
            let message = format!(
                "grant mcp: the call of `{}` was not answered: {ended}",
                call.tool
            );
            let _ = to_client
                .send(jsonrpc::error(Some(&call.id), code::SERVER_GONE, &message))
                .await;
        }
    }
}
