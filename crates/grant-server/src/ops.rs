//! Operations routes: `/health` (three states), `/ready`, `/metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// How long `/health` waits for the store to answer a read.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The store as health sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    Up,
    /// Unavailable; the ledger works from its spool (or denies).
    Down(String),
}

/// The service's health: `ok`, `degraded` (serving, with reasons) or
/// `failing` (not serving decisions: a stale policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub status: &'static str,
    pub reasons: Vec<String>,
    pub body: serde_json::Value,
}

/// Computes health now (probing the store).
pub async fn health_of(app: &AppState) -> Health {
    let policy = app.policies.status();
    let age = policy.loaded_at.elapsed().unwrap_or_default().as_secs();
    app.metrics.seconds_since_load.set(age as f64);
    let store = probe_store(app).await;
    let spooled = app.ledger.spooled_entries();
    app.metrics.spooled_events.set(spooled as f64);
    let mut failing = Vec::new();
    let mut degraded = Vec::new();
    if let Err(stale) = app.policies.check_fresh() {
        failing.push(stale);
    }
    if let Some(error) = &policy.last_error {
        degraded.push(format!(
            "the last policy reload failed; serving the last-known-good policy {}: {error}",
            policy.hash
        ));
    }
    if let StoreState::Down(error) = &store {
        degraded.push(format!("the store is unavailable: {error}"));
    }
    if spooled > 0 {
        degraded.push(format!(
            "{spooled} spooled entries wait to be replayed into the store"
        ));
    }
    let (status, reasons) = if !failing.is_empty() {
        failing.extend(degraded);
        ("failing", failing)
    } else if !degraded.is_empty() {
        ("degraded", degraded)
    } else {
        ("ok", Vec::new())
    };
    let body = json!({
        "status": status,
        "reasons": reasons,
        "auth": if app.auth.is_enabled() { "tokens" } else { "none" },
        "policy": {
            "hash": app.engine().policy_hash(),
            "age_seconds": age,
            "last_error": policy.last_error,
            "reloads_ok": policy.reloads_ok,
            "reloads_failed": policy.reloads_failed,
            "revision": policy.revision,
        },
        "store": match &store {
            StoreState::Up => json!({ "state": "up" }),
            StoreState::Down(error) => json!({ "state": "down", "error": error }),
        },
        "spooled_events": spooled,
        "uptime_seconds": app.started.elapsed().as_secs(),
    });
    Health {
        status,
        reasons,
        body,
    }
}

async fn probe_store(app: &AppState) -> StoreState {
    let ledger = app.ledger.clone();
    let probe = tokio::task::spawn_blocking(move || {
        ledger
            .store()
            .read(&mut |tx| tx.head().map(|_| ()))
            .map_err(|e| e.to_string())
    });
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, probe).await {
        Ok(Ok(Ok(()))) => StoreState::Up,
        Ok(Ok(Err(error))) => StoreState::Down(error),
        Ok(Err(join)) => StoreState::Down(format!("the probe failed: {join}")),
        Err(_) => StoreState::Down(format!(
            "no answer within {} s",
            STORE_PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// `GET /health`: 200 `ok` or `degraded`, 503 `failing`.
pub async fn health(State(app): State<AppState>) -> Response {
    let health = health_of(&app).await;
    let status = if health.status == "failing" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(health.body)).into_response()
}

/// `GET /ready`: 200 when the service can decide (a fresh policy), 503
/// with the reason when not.
pub async fn ready(State(app): State<AppState>) -> Response {
    match app.policies.check_fresh() {
        Ok(()) => Json(json!({ "ready": true })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "error": reason })),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> Response {
    let policy = app.policies.status();
    app.metrics
        .seconds_since_load
        .set(policy.loaded_at.elapsed().unwrap_or_default().as_secs_f64());
    app.metrics
        .spooled_events
        .set(app.ledger.spooled_entries() as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
