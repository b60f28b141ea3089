//! `grant mcp`: a Model Context Protocol gateway. It stands between an MCP
//! host (the client) and an MCP server, relays every JSON-RPC message both
//! ways unchanged, and decides each `tools/call` under a Grant policy
//! before the server sees it: a session is a task of the ledger, an allowed
//! call uses a grant, a denied one is answered as a tool error the model
//! reads. docs/mcp.md is the guide.
//!
//! [`gateway`] decides, whatever the transport; [`stdio`] is the proxy in
//! front of a server started as a child process, [`http`] the Streamable
//! HTTP proxy in front of a server's endpoint URL (docs/mcp-http.md).

pub mod config;
pub mod framing;
pub mod gateway;
pub mod http;
pub mod jsonrpc;
pub mod orphans;
mod relay;
pub mod sse;
pub mod stdio;

pub use config::{AttrFlag, McpConfig, Settings, Transport};
pub use gateway::{CallOutcome, Gateway, Session};
