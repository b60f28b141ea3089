//! How large a request may be, and how request text is quoted in messages.

pub(crate) use grant_syntax::chars::excerpt;

use crate::request::{RequestError, RequestErrorKind};

/// Bounds on what one request may hold, so that neither its size nor a
/// hostile caller can make a decision slow or its answer large. A request
/// over a limit is invalid: it is denied with an error that names the limit
/// and the size found, and nothing is evaluated. The typed setters of
/// [`crate::Request`] and the JSON reader enforce the same limits.
///
/// The defaults suit every real request by far. An embedder may change
/// them for all the requests of an engine:
///
/// ```
/// use grant_engine::{Engine, RequestLimits};
/// let engine = Engine::from_text("policy.grant", "allow tool \"db.read\" ttl 5m")?.with_limits(RequestLimits {
///     tool_bytes: 256,
///     ..RequestLimits::default()
/// });
/// let decision = engine.decide_json(&format!(r#"{{"tool": "{}"}}"#, "x".repeat(300)));
/// assert!(decision.errors[0].contains("over the limit of 256"));
/// # Ok::<(), grant_engine::PolicyError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Longest tool name, in bytes. Default 4 KiB.
    pub tool_bytes: usize,
    /// Longest string value, in bytes: each string given for an attribute
    /// (strings, enum variants, durations) and each element of a set.
    /// Default 64 KiB.
    pub string_bytes: usize,
    /// Most elements in one set value. Default 10,000.
    pub set_elements: usize,
    /// Longest request JSON text, in bytes ([`crate::Engine::read_json`]).
    /// Default 1 MiB.
    pub json_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            tool_bytes: 4 * 1024,
            string_bytes: 64 * 1024,
            set_elements: 10_000,
            json_bytes: 1024 * 1024,
        }
    }
}

impl RequestLimits {
    /// The error for request JSON of `bytes` bytes, when that is over
    /// [`RequestLimits::json_bytes`]: for callers that read requests
    /// themselves and stop reading at the limit (deny with it:
    /// [`crate::Request::refuse`]).
    ///
    /// ```
    /// use grant_engine::{RequestErrorKind, RequestLimits};
    /// let limits = RequestLimits::default();
    /// assert!(limits.json_too_large(1024).is_none());
    /// let error = limits.json_too_large(5 << 20).expect("over the limit");
    /// assert_eq!(error.kind(), RequestErrorKind::TooLarge);
    /// ```
    pub fn json_too_large(&self, bytes: usize) -> Option<RequestError> {
        (bytes > self.json_bytes).then(|| {
            RequestError::new(
                RequestErrorKind::TooLarge,
                format!(
                    "the request has {bytes} bytes of JSON, over the limit of {}",
                    self.json_bytes
                ),
            )
        })
    }
}

/// How many characters of request text a message quotes at most.
pub(crate) const EXCERPT_CHARS: usize = 64;

/// A request string in a message, in quotes: `"db.read"`, or its first
/// characters and `…` when it is long.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", text.get(..cut).unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::{EXCERPT_CHARS, excerpt, quoted};

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("db.read", EXCERPT_CHARS), "db.read");
        assert_eq!(excerpt("a\u{1b}[2Jb", EXCERPT_CHARS), "a\\u{1b}[2Jb");
        let long = "\u{e9}".repeat(10_000);
        let shown = excerpt(&long, EXCERPT_CHARS);
        assert_eq!(shown.chars().count(), EXCERPT_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(quoted("true"), "\"true\"");
        assert_eq!(quoted(&"x".repeat(100)), format!("\"{}\"…", "x".repeat(64)));
    }
}
