//! Every answer that is not a success: a status and `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use grant_ledger::{LedgerError, StoreErrorKind};

/// A request the service answers with an error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// The ledger's errors map to statuses one to one (see `LedgerError`).
impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> ApiError {
        let status = match &error {
            LedgerError::NotFound { .. } => StatusCode::NOT_FOUND,
            LedgerError::Conflict(_) => StatusCode::CONFLICT,
            LedgerError::Forbidden(_) => StatusCode::FORBIDDEN,
            LedgerError::Invalid(_) => StatusCode::BAD_REQUEST,
            LedgerError::Store(e) if e.kind == StoreErrorKind::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // A corrupt or newer store cannot serve either; it is not the
            // caller's fault, and retrying elsewhere may help.
            LedgerError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, &self.message)
    }
}

/// `{"error": message}` with `status`: the one error body of the service.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
