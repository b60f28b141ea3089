//! What every transport does around a decision: turn a client's
//! `tools/call` into a forward or the gateway's own answer, keep the
//! requests in flight, settle the server's answers (a late answer to a call
//! already answered with a timeout is dropped, a `tools/list` answer is
//! filtered for `--hide-denied`), and join batches. The decision itself is
//! [`Session::decide_call`]'s, made nowhere else.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::gateway::{CallOutcome, Gateway, Session};
use crate::jsonrpc::{self, Message, Peek, code};

/// What a client's `tools/call` request becomes.
#[derive(Debug)]
pub(crate) enum CallRoute {
    /// Allowed and recorded: relay it. `tool` is its name in the policy.
    Forward { tool: String },
    /// Answer the client with this; the server never sees the call.
    Answer(Vec<u8>),
}

/// Decides the `tools/call` request `raw` (whose id is `id`) in `session`,
/// or, when the transport found no session for it (`Err`, saying why),
/// refuses it undecided: a call is never relayed without a decision.
pub(crate) async fn route_call(
    gateway: &Gateway,
    session: Result<&Session, &str>,
    id: &Value,
    raw: &[u8],
) -> CallRoute {
    let params = params_of(raw);
    let outcome = match session {
        Ok(session) => session.decide_call(params.as_ref()).await,
        Err(reason) => gateway.refuse_sessionless(params.as_ref(), reason),
    };
    match outcome {
        CallOutcome::Forward { tool, grant_id } => {
            tracing::debug!("call {id}: `{tool}` allowed under {grant_id}");
            CallRoute::Forward { tool }
        }
        CallOutcome::Refuse { tool, result } => {
            tracing::info!("call {id}: `{tool}` refused");
            CallRoute::Answer(jsonrpc::result(id, result))
        }
        CallOutcome::Invalid(message) => CallRoute::Answer(jsonrpc::error(
            Some(id),
            code::INVALID_PARAMS,
            &format!("grant mcp: {message}"),
        )),
    }
}

/// A forwarded call waiting for the server's answer.
#[derive(Debug)]
pub(crate) struct Call {
    /// Which forwarding of this id it is (an id may be reused once
    /// answered): a timer fires only for its own.
    pub number: u64,
    pub id: Value,
    pub tool: String,
    /// The timer armed for it (stdio), stopped once the call is settled
    /// or forgotten: a busy session keeps no sleeping task per call.
    pub timer: Option<tokio::task::AbortHandle>,
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl Call {
    /// The error the client gets when the server has not answered in time.
    pub fn timeout_error(&self, timeout: Duration) -> Vec<u8> {
        let message = format!(
            "grant mcp: the MCP server did not answer the call of `{}` within {}",
            self.tool,
            seconds(timeout)
        );
        tracing::warn!("{message}");
        jsonrpc::error(Some(&self.id), code::REQUEST_TIMEOUT, &message)
    }
}

/// A duration as people read it: `60s`, or `250ms` under a second's
/// precision.
pub(crate) fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// The requests in flight, by id key.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Forwarded calls.
    pub calls: HashMap<String, Call>,
    /// Calls answered with a timeout: the server's late answer is dropped.
    pub timed_out: HashSet<String>,
    /// `tools/list` requests whose answers `--hide-denied` filters.
    pub lists: HashSet<String>,
    /// Other requests awaited (the HTTP transport ends a stream once none
    /// is left after a timeout).
    pub requests: HashSet<String>,
}

/// What becomes of a server's message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Relay it as it came.
    Relay,
    /// Relay these bytes instead (a filtered `tools/list`).
    Replace(Vec<u8>),
    /// Relay nothing (the answer to a call already answered).
    Drop,
}

impl Pending {
    /// A message from the server (one, or a batch, already read).
    pub fn settle_message(&mut self, gateway: &Gateway, message: &Message, raw: &[u8]) -> Settled {
        let items = match message {
            Message::One(peek) => return self.settle(gateway, peek, raw),
            Message::Batch(items) => items,
        };
        let mut kept = Vec::new();
        let mut changed = false;
        for item in items {
            let text = item.get().as_bytes();
            match jsonrpc::read(text) {
                Ok(Message::One(peek)) => match self.settle(gateway, &peek, text) {
                    Settled::Replace(replaced) => {
                        changed = true;
                        kept.push(replaced);
                    }
                    Settled::Relay => kept.push(text.to_vec()),
                    Settled::Drop => changed = true,
                },
                _ => kept.push(text.to_vec()),
            }
        }
        match (changed, kept.is_empty()) {
            (false, _) => Settled::Relay,
            (true, true) => Settled::Drop,
            (true, false) => Settled::Replace(join_batch(kept.iter().map(Vec::as_slice))),
        }
    }

    fn settle(&mut self, gateway: &Gateway, peek: &Peek, raw: &[u8]) -> Settled {
        let key = match (peek.is_response(), peek.key()) {
            (true, Some(key)) => key,
            _ => return Settled::Relay,
        };
        if self.timed_out.remove(&key) {
            return Settled::Drop;
        }
        self.calls.remove(&key);
        self.requests.remove(&key);
        if !self.lists.remove(&key) {
            return Settled::Relay;
        }
        let Ok(mut message) = serde_json::from_slice::<Value>(raw) else {
            return Settled::Relay;
        };
        let changed = message
            .get_mut("result")
            .is_some_and(|result| gateway.hide_denied(result));
        if changed {
            Settled::Replace(message.to_string().into_bytes())
        } else {
            Settled::Relay
        }
    }

    /// The timer of call `key` (its `number`th forwarding) fired: if it is
    /// still unanswered, it is forgotten, its late answer will be dropped,
    /// and the call is returned for the client's error.
    pub fn expire(&mut self, key: &str, number: u64) -> Option<Call> {
        if self.calls.get(key)?.number != number {
            return None;
        }
        let mut call = self.calls.remove(key)?;
        // The timer that fired is the one running this.
        call.timer = None;
        self.timed_out.insert(key.to_string());
        Some(call)
    }
}

#[derive(Deserialize)]
struct Params {
    params: Option<Value>,
}

/// A message's `params`, if it has any.
pub(crate) fn params_of(raw: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Params>(raw)
        .ok()
        .and_then(|p| p.params)
}

/// Messages as one batch.
pub(crate) fn join_batch<'a>(items: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

/// A std mutex's guard; a poisoned lock is still used (what it guards
/// stays consistent: every change is one insert or remove).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
