//! OpenID AuthZEN Authorization API 1.0: evaluation, evaluations and the
//! metadata document, mapped onto Grant's requests as the lifecycle spec
//! says.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::body::json_bytes;
use crate::error::ApiError;
use crate::state::AppState;

type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// `POST /access/v1/evaluation`.
pub async fn evaluation(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let _ = (&app, json_bytes(&headers, body));
    ApiError::internal("not implemented yet").into_response()
}

/// `POST /access/v1/evaluations`.
pub async fn evaluations(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let _ = (&app, json_bytes(&headers, body));
    ApiError::internal("not implemented yet").into_response()
}

/// `GET /.well-known/authzen-configuration`.
pub async fn metadata(State(app): State<AppState>) -> Response {
    let _ = &app;
    ApiError::internal("not implemented yet").into_response()
}
