//! The layers around every route: per-request metrics, request ids,
//! panic catching, the time limit, the concurrency limit and the body size
//! limit. Each failure they produce is a JSON error body like the routes'.

use std::any::Any;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::trace::TraceLayer;

use crate::error::error_response;
use crate::state::AppState;

pub fn apply(routes: Router<AppState>, app: &AppState) -> Router {
    let limits = app.settings.limits;
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded_or_late))
                .load_shed()
                // Global: axum clones layers per route, and the limit is
                // on the whole service, not each route.
                .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrency))
                .timeout(limits.request_timeout),
        )
        .layer(CatchPanicLayer::custom(panicked))
        // Request spans and events at DEBUG (`GRANT_LOG=tower_http=debug`):
        // method, path, status, latency; never headers, so never tokens.
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(app.clone(), count_request))
        .layer(PropagateRequestIdLayer::new(request_id))
        .with_state(app.clone())
}

async fn not_found() -> axum::response::Response {
    error_response(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> axum::response::Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take this method",
    )
}

async fn overloaded_or_late(error: tower::BoxError) -> axum::response::Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took longer than the service's time limit",
        )
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is at its limit of concurrent requests; retry",
        )
    } else {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("internal error: {error}"),
        )
    }
}

/// A panic in a handler is logged and answered 500; the process serves on.
fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    tracing::error!("a request handler panicked: {message}");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the request was not completed",
    )
}

async fn count_request(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    app.metrics.http_request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response.into_response()
}
