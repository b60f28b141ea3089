//! The Streamable HTTP gateway (MCP 2025-03-26 and 2025-06-18): an HTTP
//! server with one endpoint, [`PATH`], in front of the MCP server's
//! endpoint URL. Every request is relayed unchanged (its body's bytes and
//! the MCP headers, [`REQUEST_HEADERS`]) and every answer streamed back
//! unchanged, except:
//!
//! - a `tools/call` is decided first by its session
//!   ([`Session::decide_call`], through [`relay::route_call`]): refused, the
//!   client gets the gateway's JSON-RPC answer and the server nothing;
//! - a forwarded call not answered within `call_timeout` is answered with
//!   a JSON-RPC error (-32001), and the server told to cancel it;
//! - `--hide-denied` filters `tools/list` answers, in JSON bodies and in
//!   the events of a POST's event stream.
//!
//! Sessions: one ledger task per MCP session id (`Mcp-Session-Id`), opened
//! when the server answers `initialize` with one, ended (its grants
//! revoked) by the client's DELETE, the server's 404 for it, idleness, or
//! the gateway's shutdown. Requests without a session id (a stateless
//! server) share one task of the gateway process. docs/mcp-http.md is the
//! guide.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use http_body_util::channel::{Channel, Sender};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::gateway::{Gateway, Session};
use crate::jsonrpc::{self, Message, Peek, code};
use crate::relay::{self, Call, CallRoute, Pending, Settled, join_batch, lock};
use crate::sse;

/// The gateway's one endpoint. Any other path is answered 404.
pub const PATH: &str = "/mcp";

/// The MCP session header.
pub const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The client's headers relayed to the server; no other is.
/// `Authorization` passes: the server may need the client's credentials
/// (the gateway checks none of its own).
pub const REQUEST_HEADERS: [HeaderName; 6] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    SESSION_ID,
    PROTOCOL_VERSION,
    LAST_EVENT_ID,
];

/// The server's headers relayed to the client; no other is (the length is
/// the gateway's own: it may change a body).
pub const RESPONSE_HEADERS: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::WWW_AUTHENTICATE,
    header::RETRY_AFTER,
    header::ALLOW,
    SESSION_ID,
    PROTOCOL_VERSION,
];

/// How the HTTP gateway runs.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// The MCP server's endpoint URL (`http://` or `https://`).
    pub upstream: String,
    /// A forwarded call the server has not answered by then is answered
    /// with an error (and the server told to cancel it).
    pub call_timeout: Duration,
    /// The largest body taken from a client, and the largest JSON body or
    /// event taken from the server.
    pub max_message_bytes: usize,
    /// Leave out of `tools/list` the tools no allow rule can match.
    pub hide_denied: bool,
    /// A session without a request for this long (and no open stream) is
    /// ended.
    pub session_idle: Duration,
    /// At shutdown, how long requests in flight have to finish before
    /// their connections are dropped.
    pub shutdown_grace: Duration,
}

/// Errors before or while serving.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("--upstream `{url}`: {why}")]
    Upstream { url: String, why: String },
    #[error("cannot listen on `{addr}`: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
}

/// A session's task ended at shutdown.
#[derive(Debug)]
pub struct EndedSession {
    pub task_id: Option<String>,
    pub revoked: Vec<String>,
    /// Ending the task failed (the ledger was unavailable): why.
    pub error: Option<String>,
}

/// How serving went.
#[derive(Debug)]
pub struct HttpOutcome {
    /// Why it stopped (the shutdown's reason).
    pub why: String,
    /// The sessions ended at shutdown.
    pub ended: Vec<EndedSession>,
}

/// A gateway bound to its address, not yet serving.
#[derive(Debug)]
pub struct HttpGateway {
    app: Arc<App>,
    listener: tokio::net::TcpListener,
}

/// A look at a running gateway's sessions (for tests and logs).
#[derive(Clone, Debug)]
pub struct Handle(Arc<App>);

impl Handle {
    /// The task of the session with this MCP session id, once opened.
    pub async fn task_of(&self, session_id: &str) -> Option<String> {
        let entry = lock(&self.0.sessions).by_id.get(session_id).cloned()?;
        entry.session.task_id().await
    }

    /// The task of the gateway's sessionless traffic, once opened.
    pub async fn sessionless_task(&self) -> Option<String> {
        let entry = lock(&self.0.sessions).sessionless.clone()?;
        entry.session.task_id().await
    }

    /// How many MCP sessions (with a session id) are open.
    pub fn sessions(&self) -> usize {
        lock(&self.0.sessions).by_id.len()
    }
}

impl HttpGateway {
    /// Checks the upstream URL, builds the client and binds `listen`.
    pub async fn bind(
        gateway: Arc<Gateway>,
        listen: &str,
        options: HttpOptions,
    ) -> Result<HttpGateway, HttpError> {
        let upstream = reqwest::Url::parse(&options.upstream).map_err(|e| HttpError::Upstream {
            url: options.upstream.clone(),
            why: e.to_string(),
        })?;
        if !matches!(upstream.scheme(), "http" | "https") {
            return Err(HttpError::Upstream {
                url: options.upstream.clone(),
                why: "the MCP server's endpoint is an http:// or https:// URL".to_string(),
            });
        }
        let client = reqwest::Client::builder()
            // A redirect would send the client around the gateway: none is
            // followed, none relayed.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            // No `Accept: */*` of reqwest's own: the client's goes as sent.
            .default_headers(HeaderMap::new())
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| HttpError::Listen {
                addr: listen.to_string(),
                source,
            })?;
        let (stop, _) = watch::channel(false);
        Ok(HttpGateway {
            app: Arc::new(App {
                gateway,
                options,
                upstream,
                client,
                sessions: Mutex::default(),
                stop,
            }),
            listener,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn handle(&self) -> Handle {
        Handle(Arc::clone(&self.app))
    }

    /// Serves until `shutdown` resolves (to the reason, a signal's name),
    /// then stops taking connections, ends the streams, gives requests in
    /// flight `shutdown_grace` to finish, and ends every session's task.
    pub async fn serve<S>(self, shutdown: S) -> Result<HttpOutcome, HttpError>
    where
        S: Future<Output = String> + Send + 'static,
    {
        let app = self.app;
        let router = Router::new()
            .route(PATH, axum::routing::any(endpoint))
            .fallback(not_found)
            .with_state(Arc::clone(&app));
        let (why_tx, why_rx) = tokio::sync::oneshot::channel();
        let stop = app.stop.clone();
        let graceful = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                let why = shutdown.await;
                // Streams end at once; the server then waits for requests.
                let _ = stop.send(true);
                let _ = why_tx.send(why);
            })
            .into_future();
        let mut server = tokio::spawn(graceful);
        let reaper = tokio::spawn(reap(Arc::clone(&app)));
        let why = tokio::select! {
            // The reason first: once it is sent the server may end at any
            // moment, and that is the shutdown, not a failure.
            biased;
            why = why_rx => why.unwrap_or_else(|_| "the server stopped".to_string()),
            served = &mut server => {
                reaper.abort();
                let error = match served {
                    Ok(Ok(())) => std::io::Error::other("the server stopped by itself"),
                    Ok(Err(error)) => error,
                    Err(error) => std::io::Error::other(error.to_string()),
                };
                return Err(HttpError::Serve(error));
            }
        };
        tracing::info!("the gateway is stopping: {why}");
        if tokio::time::timeout(app.options.shutdown_grace, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight at shutdown: their connections are dropped");
            server.abort();
        }
        reaper.abort();
        let entries: Vec<Arc<Entry>> = {
            let mut sessions = lock(&app.sessions);
            let mut entries: Vec<Arc<Entry>> = sessions.by_id.drain().map(|(_, e)| e).collect();
            entries.extend(sessions.sessionless.take());
            entries
        };
        let reason = format!("the gateway was stopped ({why})");
        let mut ended = Vec::new();
        for entry in entries {
            let task_id = entry.session.task_id().await;
            let (revoked, error) = match entry.session.end(&reason).await {
                Ok(revoked) => (revoked, None),
                Err(error) => (Vec::new(), Some(error)),
            };
            if task_id.is_some() || error.is_some() {
                ended.push(EndedSession {
                    task_id,
                    revoked,
                    error,
                });
            }
        }
        Ok(HttpOutcome { why, ended })
    }
}

/// What every request shares.
#[derive(Debug)]
struct App {
    gateway: Arc<Gateway>,
    options: HttpOptions,
    upstream: reqwest::Url,
    client: reqwest::Client,
    sessions: Mutex<Sessions>,
    /// Set at shutdown: every stream ends.
    stop: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Sessions {
    /// By MCP session id.
    by_id: HashMap<String, Arc<Entry>>,
    /// The task of requests without a session id (a stateless server),
    /// one per gateway process, made at first need.
    sessionless: Option<Arc<Entry>>,
}

/// One session and its activity.
#[derive(Debug)]
struct Entry {
    session: Session,
    activity: Mutex<Activity>,
}

#[derive(Debug)]
struct Activity {
    last: Instant,
    /// Requests and streams in flight.
    active: usize,
}

impl Entry {
    fn new(session: Session) -> Arc<Entry> {
        Arc::new(Entry {
            session,
            activity: Mutex::new(Activity {
                last: Instant::now(),
                active: 0,
            }),
        })
    }

    /// Marks a request or stream in flight until the guard drops.
    fn enter(self: &Arc<Self>) -> Active {
        let mut activity = lock(&self.activity);
        activity.active += 1;
        activity.last = Instant::now();
        Active(Arc::clone(self))
    }

    /// How long the session has been idle, `None` while busy.
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        let activity = lock(&self.activity);
        (activity.active == 0).then(|| now.saturating_duration_since(activity.last))
    }
}

/// A request or stream in flight in a session.
#[derive(Debug)]
struct Active(Arc<Entry>);

impl Drop for Active {
    fn drop(&mut self) {
        let mut activity = lock(&self.0.activity);
        activity.active = activity.active.saturating_sub(1);
        activity.last = Instant::now();
    }
}

/// Ends sessions idle for `session_idle`.
async fn reap(app: Arc<App>) {
    let idle = app.options.session_idle;
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = Instant::now();
        let idle_entries: Vec<Arc<Entry>> = {
            let mut sessions = lock(&app.sessions);
            let is_idle = |entry: &Arc<Entry>| entry.idle_for(now).is_some_and(|d| d >= idle);
            let ids: Vec<String> = sessions
                .by_id
                .iter()
                .filter(|(_, entry)| is_idle(entry))
                .map(|(id, _)| id.clone())
                .collect();
            let mut out: Vec<Arc<Entry>> = ids
                .iter()
                .filter_map(|id| sessions.by_id.remove(id))
                .collect();
            if sessions.sessionless.as_ref().is_some_and(is_idle) {
                out.extend(sessions.sessionless.take());
            }
            out
        };
        for entry in idle_entries {
            let _ = entry
                .session
                .end(&format!(
                    "the MCP session was idle for {}",
                    relay::seconds(idle)
                ))
                .await;
        }
    }
}

/// The session a request names.
enum Found {
    /// A session the gateway knows, or the sessionless one.
    Session(Arc<Entry>),
    /// A session id the gateway does not know.
    Unknown,
    /// No session id, and no sessionless task yet.
    None,
}

impl App {
    fn find(&self, session_id: Option<&str>) -> Found {
        let sessions = lock(&self.sessions);
        let found = match session_id {
            Some(id) => sessions.by_id.get(id).cloned().ok_or(()),
            None => sessions.sessionless.clone().ok_or(()),
        };
        match (found, session_id) {
            (Ok(entry), _) => Found::Session(entry),
            (Err(()), Some(_)) => Found::Unknown,
            (Err(()), None) => Found::None,
        }
    }

    /// The sessionless task's session, made if there is none.
    fn sessionless(&self) -> Arc<Entry> {
        let mut sessions = lock(&self.sessions);
        Arc::clone(
            sessions
                .sessionless
                .get_or_insert_with(|| Entry::new(self.gateway.session())),
        )
    }

    /// The server answered `initialize` with a session id: its task opens
    /// now, before the client can call a tool in it.
    async fn opened(&self, session_id: &str, initialize: Option<&Value>) {
        let entry = {
            let mut sessions = lock(&self.sessions);
            Arc::clone(
                sessions
                    .by_id
                    .entry(session_id.to_string())
                    .or_insert_with(|| Entry::new(self.gateway.session())),
            )
        };
        // A failure is kept and retried at the first call, which is refused
        // while there is no task.
        if let Ok(task) = entry.session.open(initialize).await {
            tracing::info!(task = %task, "MCP session opened");
        }
    }

    /// Ends a session by id (if the gateway still has it).
    async fn end(&self, session_id: &str, why: &str) {
        let entry = lock(&self.sessions).by_id.remove(session_id);
        if let Some(entry) = entry {
            let _ = entry.session.end(why).await;
        }
    }

    /// The request to the server, with the client's relayed headers.
    fn upstream_request(
        &self,
        method: reqwest::Method,
        headers: &HeaderMap,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.upstream.clone())
            .headers(relayed(headers, &REQUEST_HEADERS))
    }

    /// Tells the server to stop working on a call answered with a timeout
    /// (in the background: nobody waits for it).
    fn cancel(&self, headers: &HeaderMap, id: &Value) {
        let request = self
            .upstream_request(reqwest::Method::POST, headers)
            .header(header::CONTENT_TYPE, "application/json")
            .timeout(Duration::from_secs(10))
            .body(jsonrpc::cancelled(id, "timed out at the gateway"));
        tokio::spawn(async move {
            if let Err(error) = request.send().await {
                tracing::warn!("telling the MCP server to cancel a call failed: {error}");
            }
        });
    }

    async fn post(self: &Arc<Self>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let bytes = match read_body(body, self.options.max_message_bytes).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => {
                let message = format!(
                    "grant mcp: the request body is over the limit of {} bytes; it was not relayed",
                    self.options.max_message_bytes
                );
                tracing::warn!("{message}");
                return failure(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    code::TOO_LARGE,
                    &message,
                );
            }
            Err(BodyError::Read(error)) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    None,
                    code::PARSE_ERROR,
                    &format!("grant mcp: the request body could not be read: {error}"),
                );
            }
        };
        let (batch, peeks) = match jsonrpc::read(&bytes) {
            Err(error) => {
                let message =
                    format!("grant mcp: not a JSON-RPC message ({error}); it was not relayed");
                tracing::warn!("{message}");
                return failure(StatusCode::BAD_REQUEST, None, code::PARSE_ERROR, &message);
            }
            Ok(Message::One(peek)) => (false, vec![(Some(peek), bytes.to_vec())]),
            Ok(Message::Batch(items)) if items.is_empty() => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    None,
                    code::INVALID_REQUEST,
                    "grant mcp: an empty batch",
                );
            }
            Ok(Message::Batch(items)) => (
                true,
                items
                    .iter()
                    .map(|item| {
                        let text = item.get().as_bytes();
                        match jsonrpc::read(text) {
                            Ok(Message::One(peek)) => (Some(peek), text.to_vec()),
                            _ => (None, text.to_vec()),
                        }
                    })
                    .collect(),
            ),
        };
        let session_id = match session_id(&parts.headers) {
            Ok(id) => id,
            Err(bad) => return bad.into_response(),
        };
        let calls = peeks.iter().any(|(peek, _)| {
            peek.as_ref()
                .is_some_and(|p| p.method.as_deref() == Some("tools/call"))
        });
        let entry = match (self.find(session_id.as_deref()), calls) {
            (Found::Session(entry), _) => Some(entry),
            // A session the gateway does not know decides nothing: as the
            // server would for a session it ended, 404 (the client then
            // opens a new session, and the gateway a new task).
            (Found::Unknown, true) => {
                return failure(
                    StatusCode::NOT_FOUND,
                    None,
                    code::INVALID_REQUEST,
                    "grant mcp: the MCP session (Mcp-Session-Id) is not open at the gateway; initialize a new session",
                );
            }
            (Found::Unknown, false) => None,
            (Found::None, true) => Some(self.sessionless()),
            (Found::None, false) => None,
        };
        let _active = entry.as_ref().map(Entry::enter);

        let mut plan = Plan::default();
        let mut forward: Vec<&[u8]> = Vec::new();
        for (peek, raw) in &peeks {
            let Some(peek) = peek else {
                plan.answers.push(jsonrpc::error(
                    None,
                    code::INVALID_REQUEST,
                    "grant mcp: a batch element that is not a JSON-RPC message; it was not relayed",
                ));
                continue;
            };
            let session = entry
                .as_ref()
                .map(|e| &e.session)
                .ok_or("the request names no MCP session the gateway knows");
            if self.plan(session, peek, raw, &mut plan).await {
                forward.push(raw);
            }
        }
        let single_id = match (batch, peeks.first()) {
            (false, Some((Some(peek), _))) => peek.id.clone(),
            _ => None,
        };
        if forward.is_empty() {
            return match (batch, plan.answers.len()) {
                (_, 0) => failure(
                    StatusCode::BAD_REQUEST,
                    None,
                    code::INVALID_REQUEST,
                    "grant mcp: a tools/call without an id (a notification) cannot be answered; it was not relayed",
                ),
                (false, _) => json(StatusCode::OK, plan.answers.remove(0)),
                (true, _) => json(
                    StatusCode::OK,
                    join_batch(plan.answers.iter().map(Vec::as_slice)),
                ),
            };
        }
        let forwarded = if forward.len() == peeks.len() {
            bytes.to_vec()
        } else {
            join_batch(forward.into_iter())
        };
        let deadline =
            (!plan.pending.calls.is_empty()).then(|| Instant::now() + self.options.call_timeout);
        let send = self
            .upstream_request(reqwest::Method::POST, &parts.headers)
            .body(forwarded)
            .send();
        let sent = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, send).await {
                Ok(sent) => sent,
                Err(_) => return self.timed_out(&parts.headers, batch, plan),
            },
            None => send.await,
        };
        let mut upstream = match self
            .received(sent, single_id.as_ref(), session_id.as_deref())
            .await
        {
            Ok(upstream) => upstream,
            Err(answer) => return answer,
        };
        let status = upstream.status();
        if status.is_success()
            && let Some(initialize) = &plan.initialize
        {
            match header_text(upstream.headers(), &SESSION_ID) {
                Some(id) => self.opened(&id, initialize.as_ref()).await,
                None => {
                    // A stateless server: its sessions share the gateway's
                    // sessionless task.
                    let entry = self.sessionless();
                    if let Ok(task) = entry.session.open(initialize.as_ref()).await {
                        tracing::info!(task = %task, "MCP session without a session id: the gateway's sessionless task");
                    }
                }
            }
        }
        let headers = relayed(upstream.headers(), &RESPONSE_HEADERS);
        match media_type(upstream.headers()).as_str() {
            "text/event-stream" if status.is_success() => {
                let (tx, body) = Channel::new(16);
                let relay = StreamRelay {
                    app: Arc::clone(self),
                    headers: parts.headers,
                    pending: plan.pending,
                    deadline,
                    events: true,
                    lead: plan.answers,
                    _active: entry.as_ref().map(Entry::enter),
                };
                tokio::spawn(relay.run(upstream, tx));
                respond(status, headers, Body::new(body))
            }
            "application/json" if status.is_success() => {
                let read = read_upstream(&mut upstream, self.options.max_message_bytes);
                let body = match deadline {
                    Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                        Ok(body) => body,
                        Err(_) => return self.timed_out(&parts.headers, batch, plan),
                    },
                    None => read.await,
                };
                let body = match body {
                    Ok(body) => body,
                    Err(why) => return self.bad_answer(single_id.as_ref(), &why),
                };
                let body = match jsonrpc::read(&body) {
                    Ok(message) => {
                        match plan.pending.settle_message(&self.gateway, &message, &body) {
                            Settled::Relay => body,
                            Settled::Replace(replaced) => replaced,
                            Settled::Drop => Vec::new(),
                        }
                    }
                    Err(_) => body,
                };
                respond(status, headers, Body::from(merge(body, plan.answers)))
            }
            _ if status == StatusCode::ACCEPTED && !plan.answers.is_empty() => json(
                StatusCode::OK,
                join_batch(plan.answers.iter().map(Vec::as_slice)),
            ),
            _ => self.pass_through(status, headers, upstream, None),
        }
    }

    /// What one client message becomes; `true` to relay it.
    async fn plan(
        &self,
        session: Result<&Session, &str>,
        peek: &Peek,
        raw: &[u8],
        plan: &mut Plan,
    ) -> bool {
        let id = peek.id.clone().filter(|id| !id.is_null());
        let (Some(method), Some(id)) = (peek.method.as_deref(), id) else {
            if peek.method.as_deref() == Some("tools/call") {
                tracing::warn!(
                    "a tools/call without an id (a notification) cannot be answered; it was not relayed"
                );
                return false;
            }
            // Notifications and the client's answers to the server.
            return true;
        };
        let key = jsonrpc::id_key(&id);
        match method {
            "tools/call" => match relay::route_call(&self.gateway, session, &id, raw).await {
                CallRoute::Forward { tool } => {
                    plan.pending.calls.insert(
                        key,
                        Call {
                            number: 0,
                            id,
                            tool,
                            timer: None,
                        },
                    );
                    true
                }
                CallRoute::Answer(answer) => {
                    plan.answers.push(answer);
                    false
                }
            },
            _ => {
                if method == "initialize" {
                    plan.initialize = Some(relay::params_of(raw));
                }
                if method == "tools/list" && self.options.hide_denied {
                    plan.pending.lists.insert(key.clone());
                }
                plan.pending.requests.insert(key);
                true
            }
        }
    }

    /// The server did not answer a POST holding a call in time: every
    /// request it held is answered with an error, and each call cancelled.
    fn timed_out(&self, headers: &HeaderMap, batch: bool, mut plan: Plan) -> Response {
        let timeout = self.options.call_timeout;
        let mut answers = std::mem::take(&mut plan.answers);
        for (_, call) in plan.pending.calls.drain() {
            answers.push(call.timeout_error(timeout));
            self.cancel(headers, &call.id);
        }
        for key in plan.pending.requests.drain() {
            let id: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
            answers.push(jsonrpc::error(
                Some(&id),
                code::REQUEST_TIMEOUT,
                &format!(
                    "grant mcp: the MCP server did not answer within {} (a call in the same request timed out)",
                    relay::seconds(timeout)
                ),
            ));
        }
        let body = if batch || answers.len() != 1 {
            join_batch(answers.iter().map(Vec::as_slice))
        } else {
            answers.remove(0)
        };
        json(StatusCode::OK, body)
    }

    /// The server's answer, or the gateway's own when it cannot be relayed
    /// (the server unreachable, a redirect). A 404 for a session means the
    /// server no longer knows it: its task ends.
    async fn received(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        id: Option<&Value>,
        session_id: Option<&str>,
    ) -> Result<reqwest::Response, Response> {
        let upstream = sent.map_err(|error| self.unreachable(id, &error))?;
        let status = upstream.status();
        if status.is_redirection() {
            return Err(redirected(id));
        }
        if status == StatusCode::NOT_FOUND
            && let Some(session) = session_id
        {
            self.end(
                session,
                "the MCP server answered 404: it no longer knows the session",
            )
            .await;
        }
        Ok(upstream)
    }

    fn unreachable(&self, id: Option<&Value>, error: &reqwest::Error) -> Response {
        let message = format!(
            "grant mcp: the MCP server at {} could not be reached: {}",
            self.upstream,
            error_chain(error)
        );
        tracing::warn!("{message}");
        failure(StatusCode::BAD_GATEWAY, id, code::SERVER_GONE, &message)
    }

    fn bad_answer(&self, id: Option<&Value>, why: &str) -> Response {
        let message = format!("grant mcp: the MCP server's answer was not relayed: {why}");
        tracing::warn!("{message}");
        failure(StatusCode::BAD_GATEWAY, id, code::SERVER_GONE, &message)
    }

    /// Streams an answer back unchanged.
    fn pass_through(
        self: &Arc<Self>,
        status: StatusCode,
        headers: HeaderMap,
        upstream: reqwest::Response,
        active: Option<Active>,
    ) -> Response {
        let (tx, body) = Channel::new(16);
        let relay = StreamRelay {
            app: Arc::clone(self),
            headers: HeaderMap::new(),
            pending: Pending::default(),
            deadline: None,
            events: false,
            lead: Vec::new(),
            _active: active,
        };
        tokio::spawn(relay.run(upstream, tx));
        respond(status, headers, Body::new(body))
    }

    /// GET: the server's stream to the client, relayed as it comes.
    async fn get(self: &Arc<Self>, request: Request) -> Response {
        let session_id = match session_id(request.headers()) {
            Ok(id) => id,
            Err(bad) => return bad.into_response(),
        };
        let active = match self.find(session_id.as_deref()) {
            Found::Session(entry) => Some(entry.enter()),
            Found::Unknown | Found::None => None,
        };
        let sent = self
            .upstream_request(reqwest::Method::GET, request.headers())
            .send()
            .await;
        let upstream = match self.received(sent, None, session_id.as_deref()).await {
            Ok(upstream) => upstream,
            Err(answer) => return answer,
        };
        let status = upstream.status();
        let headers = relayed(upstream.headers(), &RESPONSE_HEADERS);
        self.pass_through(status, headers, upstream, active)
    }

    /// DELETE: the client ends its session. Relayed; the task ends whatever
    /// the server answers (the client is done with the session either way).
    async fn delete(self: &Arc<Self>, request: Request) -> Response {
        let session_id = match session_id(request.headers()) {
            Ok(id) => id,
            Err(bad) => return bad.into_response(),
        };
        let sent = self
            .upstream_request(reqwest::Method::DELETE, request.headers())
            .send()
            .await;
        if let Some(id) = &session_id {
            self.end(id, "the client ended the MCP session (DELETE)")
                .await;
        }
        let upstream = match sent {
            Ok(upstream) => upstream,
            Err(error) => return self.unreachable(None, &error),
        };
        let status = upstream.status();
        if status.is_redirection() {
            return redirected(None);
        }
        let headers = relayed(upstream.headers(), &RESPONSE_HEADERS);
        self.pass_through(status, headers, upstream, None)
    }
}

/// A POST's messages, sorted.
#[derive(Debug, Default)]
struct Plan {
    /// The gateway's own answers (refused calls, bad batch elements).
    answers: Vec<Vec<u8>>,
    /// The forwarded requests awaited.
    pending: Pending,
    /// An `initialize` is forwarded, with these params.
    initialize: Option<Option<Value>>,
}

/// Relays an answer's body as it comes: an event stream event by event
/// (settling answers, timing out calls), anything else chunk by chunk.
struct StreamRelay {
    app: Arc<App>,
    /// The client's request headers (for cancellations).
    headers: HeaderMap,
    pending: Pending,
    deadline: Option<Instant>,
    /// Cut the body into events and settle them.
    events: bool,
    /// The gateway's answers, sent before the server's events.
    lead: Vec<Vec<u8>>,
    /// Keeps the session busy while the stream is open.
    _active: Option<Active>,
}

impl StreamRelay {
    async fn run(mut self, mut upstream: reqwest::Response, mut tx: Sender<Bytes, std::io::Error>) {
        for answer in std::mem::take(&mut self.lead) {
            if tx
                .send_data(Bytes::from(sse::message(&answer)))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut stop = self.app.stop.subscribe();
        let mut splitter = sse::Splitter::new(self.app.options.max_message_bytes);
        loop {
            let deadline = self.deadline.filter(|_| !self.pending.calls.is_empty());
            let expired = async move {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                chunk = upstream.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        let out = if self.events {
                            let mut out = Vec::new();
                            for piece in splitter.push(&bytes) {
                                if let Some(event) = self.settle(piece) {
                                    out.extend_from_slice(&event);
                                }
                            }
                            Bytes::from(out)
                        } else {
                            bytes
                        };
                        if !out.is_empty() && tx.send_data(out).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        if let Some(last) = splitter.finish().filter(|_| self.events)
                            && let Some(event) = self.settle(last)
                        {
                            let _ = tx.send_data(Bytes::from(event)).await;
                        }
                        return;
                    }
                    Err(error) => {
                        tracing::warn!("the MCP server's answer broke off: {}", error_chain(&error));
                        tx.abort(std::io::Error::other("the MCP server's answer broke off"));
                        return;
                    }
                },
                () = expired => {
                    let timeout = self.app.options.call_timeout;
                    let keys: Vec<String> = self.pending.calls.keys().cloned().collect();
                    for key in keys {
                        let Some(call) = self.pending.expire(&key, 0) else {
                            continue;
                        };
                        self.app.cancel(&self.headers, &call.id);
                        let event = sse::message(&call.timeout_error(timeout));
                        if tx.send_data(Bytes::from(event)).await.is_err() {
                            return;
                        }
                    }
                    // Nothing else awaited: the stream has said all it will.
                    if self.pending.requests.is_empty() {
                        return;
                    }
                }
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => return,
            }
        }
    }

    /// An event of the server's stream: relayed as it is, changed, or
    /// dropped.
    fn settle(&mut self, piece: sse::Piece) -> Option<Vec<u8>> {
        let event = match piece {
            sse::Piece::Event(event) => event,
            // Relayed as it is: a client discards it.
            sse::Piece::Unfinished(bytes) => return Some(bytes),
            sse::Piece::TooLarge(size) => {
                // The call it answered, if any, times out.
                tracing::warn!(
                    "the MCP server sent an event of {size} bytes, over the limit of {} bytes: dropped",
                    self.app.options.max_message_bytes
                );
                return None;
            }
        };
        let Some(data) = sse::data(&event) else {
            return Some(event);
        };
        let Ok(message) = jsonrpc::read(&data) else {
            return Some(event);
        };
        match self
            .pending
            .settle_message(&self.app.gateway, &message, &data)
        {
            Settled::Relay => Some(event),
            Settled::Replace(replaced) => Some(sse::with_data(&event, &replaced)),
            Settled::Drop => None,
        }
    }
}

impl std::fmt::Debug for StreamRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRelay")
            .field("pending", &self.pending)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

async fn endpoint(State(app): State<Arc<App>>, request: Request) -> Response {
    if !origin_allowed(request.headers()) {
        return failure(
            StatusCode::FORBIDDEN,
            None,
            code::INVALID_REQUEST,
            "grant mcp: requests from a web page are taken only from a loopback origin (Origin header)",
        );
    }
    match *request.method() {
        Method::POST => app.post(request).await,
        Method::GET => app.get(request).await,
        Method::DELETE => app.delete(request).await,
        _ => {
            let mut response = failure(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                code::INVALID_REQUEST,
                "grant mcp: the MCP endpoint takes POST, GET and DELETE",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            response
        }
    }
}

async fn not_found() -> Response {
    failure(
        StatusCode::NOT_FOUND,
        None,
        code::INVALID_REQUEST,
        &format!("grant mcp: the MCP endpoint is {PATH}"),
    )
}

/// The MCP specification asks servers to check `Origin` against DNS
/// rebinding: a web page may reach a loopback port. A request with an
/// `Origin` is taken only from a loopback one; programs send none.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(url) = origin
        .to_str()
        .ok()
        .and_then(|text| reqwest::Url::parse(text).ok())
    else {
        return false;
    };
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The request's session id; `Err` for a header that is not text.
fn session_id(headers: &HeaderMap) -> Result<Option<String>, BadSessionId> {
    match headers.get(&SESSION_ID) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.to_string()))
            .map_err(|_| BadSessionId),
    }
}

/// An `Mcp-Session-Id` that is not visible ASCII (as the specification
/// has it): a 400.
#[derive(Debug)]
struct BadSessionId;

impl IntoResponse for BadSessionId {
    fn into_response(self) -> Response {
        failure(
            StatusCode::BAD_REQUEST,
            None,
            code::INVALID_REQUEST,
            "grant mcp: the Mcp-Session-Id header is not visible ASCII",
        )
    }
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The headers of `names` that `from` holds.
fn relayed(from: &HeaderMap, names: &[HeaderName]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        for value in from.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The media type, lowercase, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

enum BodyError {
    TooLarge,
    Read(String),
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(error) => Err(BodyError::Read(error.to_string())),
    }
}

/// The server's whole body, up to `limit` bytes.
async fn read_upstream(upstream: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = upstream.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("it is over the limit of {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The server's JSON answer with the gateway's answers added (a batch).
fn merge(body: Vec<u8>, answers: Vec<Vec<u8>>) -> Vec<u8> {
    if answers.is_empty() {
        return body;
    }
    let mut items: Vec<Vec<u8>> = Vec::new();
    match jsonrpc::read(&body) {
        Ok(Message::Batch(elements)) => {
            items.extend(elements.iter().map(|e| e.get().as_bytes().to_vec()));
        }
        _ if body.iter().all(u8::is_ascii_whitespace) => {}
        _ => items.push(body),
    }
    items.extend(answers);
    join_batch(items.iter().map(Vec::as_slice))
}

/// An error and its causes, in one line (reqwest's own message names only
/// the first).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn redirected(id: Option<&Value>) -> Response {
    let message = "grant mcp: the MCP server answered with a redirect, which the gateway neither follows nor relays (it would lead the client around the gateway); give --upstream the final URL";
    tracing::warn!("{message}");
    failure(StatusCode::BAD_GATEWAY, id, code::SERVER_GONE, message)
}

fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The gateway's error: a JSON-RPC error response, so that an MCP client
/// shows its message.
fn failure(status: StatusCode, id: Option<&Value>, code: i64, message: &str) -> Response {
    json(status, jsonrpc::error(id, code, message))
}
