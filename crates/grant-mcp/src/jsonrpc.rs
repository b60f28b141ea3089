//! JSON-RPC 2.0 as the gateway needs it: what a message is (read without
//! building it as a value: most messages are only relayed), and the
//! answers the gateway itself gives.

use serde::Deserialize;
use serde_json::{Value, json};

/// A message's method and id, read without its params or result.
#[derive(Debug, Deserialize)]
pub struct Peek {
    pub method: Option<String>,
    /// Present and not `null` on requests and responses.
    pub id: Option<Value>,
}

impl Peek {
    /// A request (or notification) names a method; a response does not.
    pub fn is_response(&self) -> bool {
        self.method.is_none()
    }

    /// The id as a map key: its JSON text (`1` and `"1"` differ, as they
    /// do in JSON-RPC).
    pub fn key(&self) -> Option<String> {
        self.id.as_ref().filter(|id| !id.is_null()).map(id_key)
    }
}

/// What one line of the wire holds.
#[derive(Debug)]
pub enum Message {
    One(Peek),
    /// A batch: the array's elements, unparsed.
    Batch(Vec<Box<serde_json::value::RawValue>>),
}

/// Reads one line. `Err` is the parse error's text, for the answer.
pub fn read(line: &[u8]) -> Result<Message, String> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return serde_json::from_slice(line)
            .map(Message::Batch)
            .map_err(|e| e.to_string());
    }
    // A JSON-RPC message is an object; anything else is malformed.
    if first != Some(&b'{') {
        return Err("a JSON-RPC message is a JSON object or an array of them".to_string());
    }
    serde_json::from_slice::<Peek>(line)
        .map(Message::One)
        .map_err(|e| e.to_string())
}

/// An id as a map key.
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// JSON-RPC error codes the gateway answers with.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const INVALID_PARAMS: i64 = -32602;
    /// The MCP SDKs' request timeout.
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// The server went away before answering (implementation-defined
    /// range).
    pub const SERVER_GONE: i64 = -32002;
    /// The message is over the gateway's size limit.
    pub const TOO_LARGE: i64 = -32003;
}

/// An error response.
pub fn error(id: Option<&Value>, code: i64, message: &str) -> Vec<u8> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {"code": code, "message": message},
    });
    body.to_string().into_bytes()
}

/// A result response.
pub fn result(id: &Value, result: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
        .to_string()
        .into_bytes()
}

/// The `notifications/cancelled` that tells a server to stop working on
/// `id`.
pub fn cancelled(id: &Value, reason: &str) -> Vec<u8> {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": id, "reason": reason},
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn messages_are_told_apart() {
        let Message::One(call) =
            read(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}"#)
                .unwrap()
        else {
            panic!("one message");
        };
        assert_eq!(
            (call.method.as_deref(), call.key().as_deref()),
            (Some("tools/call"), Some("7"))
        );
        let Message::One(response) = read(br#"{"jsonrpc":"2.0","id":"7","result":{}}"#).unwrap()
        else {
            panic!("one message");
        };
        assert!(response.is_response());
        assert_eq!(response.key().as_deref(), Some("\"7\""));
        let Message::Batch(items) = read(b" [{\"id\":1},{\"id\":2}]").unwrap() else {
            panic!("a batch");
        };
        assert_eq!(items.len(), 2);
        for bad in [&b"nope"[..], b"{\"id\":", b"42", b""] {
            assert!(read(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
