//! Grant's Node.js binding: the native half. index.js wraps it in the
//! public API (classes, errors, promises); see README.md.

// napi-derive registers exports only outside `cfg(test)`: the test build
// (clippy --all-targets) would see every export as unused.
#![cfg_attr(test, allow(dead_code))]

mod engine;
mod js;
mod ledger;
mod request;

/// A request string in a message, in quotes, cut as the engine cuts it.
pub(crate) fn quoted(text: &str) -> String {
    const EXCERPT_CHARS: usize = 64;
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", text.get(..cut).unwrap_or("")),
    }
}
