//! Reading request bodies: the content type, emptiness, size and JSON
//! checks every JSON route shares, each failure a 400 (or 413) that says
//! what was wrong and where.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The raw body of a JSON route, checked: `application/json` (parameters
/// such as `charset=utf-8` allowed), not empty, within the size limit.
pub fn json_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "the request body is larger than the service's limit",
            )
        } else {
            ApiError::new(status, format!("cannot read the request body: {rejection}"))
        }
    })?;
    check_content_type(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; a JSON object was expected",
        ));
    }
    Ok(body)
}

/// A JSON object body parsed into `T`: malformed JSON, a non-object, or a
/// missing, unknown or mistyped field is a 400 naming it.
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = json_bytes(headers, body)?;
    parse_object(&bytes)
}

/// Parses a body already checked by [`json_bytes`].
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    require_object(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(describe(&e)))
}

/// Fails unless `bytes` is one well-formed JSON object; cheap (nothing is
/// built), for routes that hand the bytes on to the engine.
pub fn require_object(bytes: &[u8]) -> Result<(), ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Say what it is, when it is JSON at all.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::bad_request("the request body must be a JSON object"),
                Err(e) => ApiError::bad_request(describe(&e)),
            },
        );
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(describe(&e)))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(content_type_error("no Content-Type"));
    };
    let Ok(text) = value.to_str() else {
        return Err(content_type_error("an unreadable Content-Type"));
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(content_type_error(&format!("Content-Type `{text}`")))
    }
}

fn content_type_error(what: &str) -> ApiError {
    // 400, not 415: the spec (and AuthZEN's) answer for a wrong type.
    ApiError::bad_request(format!(
        "the request has {what}; send `Content-Type: application/json`"
    ))
}

/// serde_json's message with its location, in the words of a request.
fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Syntax | Category::Eof => "the request body is not well-formed JSON",
        Category::Data => "the request body does not have the expected fields",
        Category::Io => "the request body could not be read",
    };
    format!("{what}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_object_passes() {
        assert!(require_object(br#" {"tool": "x"} "#).is_ok());
        for bad in [&b"[]"[..], b"1", b"\"x\"", b"{", b"{} {}", b"{\"a\":}"] {
            let error = require_object(bad).err();
            assert_eq!(
                error.map(|e| e.status),
                Some(StatusCode::BAD_REQUEST),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
