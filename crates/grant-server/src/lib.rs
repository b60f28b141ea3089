//! `grant serve`: Grant's decision and lifecycle service.
//!
//! A [`Server`] holds a [`grant_ledger::Ledger`] (and through it the served
//! policy), the tokens, the metrics and the decision log; [`Server::router`]
//! is the axum router of every route: the native API (`/v1/...`), the
//! OpenID AuthZEN API (`/access/v1/...`) and the operations routes
//! (`/health`, `/ready`, `/metrics`). The `grant serve` command runs it;
//! nothing below this crate depends on it. docs/server.md is the guide.

pub mod auth;
pub mod authzen;
mod body;
pub mod bundle;
pub mod config;
pub mod decision_log;
pub mod error;
mod layers;
pub mod metrics;
mod native;
pub mod ops;
pub mod policy;
mod state;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use grant_ledger::{Ledger, LedgerError};

pub use auth::{Auth, Role, TokenEntry};
pub use config::{Limits, PolicySource, ServeConfig, Settings};
pub use error::ApiError;
pub use policy::Reload;
pub use state::AppState;

/// Every route of the service: method and path pattern (the OpenAPI
/// document lists the same set; a test holds them equal).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/decide"),
    ("POST", "/v1/decide/batch"),
    ("POST", "/v1/explain"),
    ("POST", "/v1/tasks"),
    ("GET", "/v1/tasks/{id}"),
    ("POST", "/v1/tasks/{id}/end"),
    ("GET", "/v1/tasks/{id}/timeline"),
    ("POST", "/v1/grants"),
    ("GET", "/v1/grants/{id}"),
    ("POST", "/v1/grants/{id}/use"),
    ("POST", "/v1/grants/{id}/renew"),
    ("POST", "/v1/grants/{id}/approve"),
    ("POST", "/v1/grants/{id}/reject"),
    ("POST", "/v1/grants/{id}/credential"),
    ("POST", "/v1/revoke"),
    ("POST", "/v1/agents/{id}/unblock"),
    ("POST", "/v1/policy/reload"),
    ("GET", "/v1/events"),
    ("POST", "/access/v1/evaluation"),
    ("POST", "/access/v1/evaluations"),
    ("GET", "/.well-known/authzen-configuration"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
];

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("store `{url}`: {message}")]
    Store { url: String, message: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A configured service, ready to serve.
#[derive(Clone, Debug)]
pub struct Server {
    state: AppState,
}

impl Server {
    /// Opens the store, loads the policy and the tokens, and opens the
    /// decision log: everything that can fail at start fails here.
    pub fn new(settings: Settings) -> Result<Server, ServerError> {
        let store = grant_ledger::store::open(&settings.store).map_err(|e| ServerError::Store {
            url: settings.store.clone(),
            message: e.to_string(),
        })?;
        Server::with_store(settings, store, Arc::new(grant_ledger::SystemClock))
    }

    /// A server over a store and clock given (tests inject faults and time).
    pub fn with_store(
        settings: Settings,
        store: Arc<dyn grant_ledger::Store>,
        clock: Arc<dyn grant_ledger::Clock>,
    ) -> Result<Server, ServerError> {
        let (policies, engine) = policy::Policies::load(&settings).map_err(ServerError::Policy)?;
        let auth = match &settings.tokens {
            Some(path) => Auth::load(path).map_err(|e| ServerError::Config(e.to_string()))?,
            None => Auth::none(),
        };
        let metrics = metrics::Metrics::new();
        let decision_log = match &settings.decision_log {
            Some(target) => {
                decision_log::DecisionLog::open(target, metrics.decision_log_dropped.clone())
                    .map_err(ServerError::Config)?
            }
            None => decision_log::DecisionLog::disabled(metrics.decision_log_dropped.clone()),
        };
        let ledger = Ledger::with(store, engine, clock, settings.ledger.clone())?;
        Ok(Server {
            state: AppState::new(state::Shared {
                settings,
                ledger,
                policies,
                auth,
                metrics,
                decision_log,
                started: Instant::now(),
            }),
        })
    }

    /// The shared state (the ledger, the policy, the metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The ledger behind the service.
    pub fn ledger(&self) -> &Ledger {
        &self.state.ledger
    }

    /// The router of every route, with the limits, panic catching, request
    /// ids and metrics layered on.
    pub fn router(&self) -> Router {
        self.router_with(Router::new())
    }

    /// The router with an embedder's own routes merged in, under the same
    /// limits, panic catching, request ids and metrics.
    pub fn router_with(&self, extra: Router<AppState>) -> Router {
        let routes = extra
            .route("/v1/decide", post(native::decide))
            .route("/v1/decide/batch", post(native::decide_batch))
            .route("/v1/explain", post(native::explain))
            .route("/v1/tasks", post(native::open_task))
            .route("/v1/tasks/{id}", get(native::get_task))
            .route("/v1/tasks/{id}/end", post(native::end_task))
            .route("/v1/tasks/{id}/timeline", get(native::timeline))
            .route("/v1/grants", post(native::request_grant))
            .route("/v1/grants/{id}", get(native::get_grant))
            .route("/v1/grants/{id}/use", post(native::use_grant))
            .route("/v1/grants/{id}/renew", post(native::renew))
            .route("/v1/grants/{id}/approve", post(native::approve))
            .route("/v1/grants/{id}/reject", post(native::reject))
            .route("/v1/grants/{id}/credential", post(native::bind_credential))
            .route("/v1/revoke", post(native::revoke))
            .route("/v1/agents/{id}/unblock", post(native::unblock))
            .route("/v1/policy/reload", post(native::reload))
            .route("/v1/events", get(native::events))
            .route("/access/v1/evaluation", post(authzen::evaluation))
            .route("/access/v1/evaluations", post(authzen::evaluations))
            .route("/.well-known/authzen-configuration", get(authzen::metadata))
            .route("/health", get(ops::health))
            .route("/ready", get(ops::ready))
            .route("/metrics", get(ops::metrics));
        layers::apply(routes, &self.state)
    }

    /// Reloads the policy (SIGHUP, the file watcher).
    pub async fn reload(&self, actor: &str) -> Result<Reload, ApiError> {
        self.state.reload(actor.to_string()).await
    }

    /// Watches the policy source and reloads it 300 ms after the last
    /// change (and checks it again periodically when a staleness limit is
    /// set), until `shutdown` resolves; `None` when there is nothing to
    /// do. [`Server::spawn_background`] runs it: call this only without
    /// that.
    pub fn spawn_watcher(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        watch::spawn(self.state.clone(), shutdown)
    }

    /// Starts the background work: sweeping expired grants and overdue
    /// tasks, replaying a degraded spool when the store returns, and
    /// watching the policy source ([`Server::spawn_watcher`]). Runs until
    /// `shutdown` resolves.
    pub fn spawn_background(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let app = self.state.clone();
        let interval = app.settings.sweep_interval.max(Duration::from_millis(10));
        let (stop_watcher, watcher_stopped) = tokio::sync::oneshot::channel::<()>();
        let watcher = self.spawn_watcher(async {
            let _ = watcher_stopped.await;
        });
        tokio::spawn(async move {
            let mut shutdown = std::pin::pin!(shutdown);
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = &mut shutdown => break,
                    _ = ticker.tick() => {}
                }
                app.metrics.upkeep();
                let ledger = app.ledger.clone();
                let metrics = app.metrics.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if ledger.is_degraded() {
                        // Errors are expected while the store is down.
                        let _ = ledger.recover();
                    }
                    match ledger.sweep() {
                        Ok(swept) => metrics.grants_expired.increment(swept.expired.len() as u64),
                        Err(e) => tracing::debug!("sweep: {e}"),
                    }
                })
                .await;
            }
            let _ = stop_watcher.send(());
            if let Some(watcher) = watcher {
                let _ = watcher.await;
            }
        })
    }

    /// Serves plain HTTP on `listener` until `shutdown` resolves, then
    /// drains requests in flight and flushes the decision log.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_background, background_stopped) = tokio::sync::oneshot::channel::<()>();
        let background = self.spawn_background(async {
            let _ = background_stopped.await;
        });
        let app = self.router();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_background.send(());
        let _ = background.await;
        self.close();
        result
    }

    /// Serves HTTPS (rustls) on `listener` with the PEM certificate chain
    /// and key of `tls` until `shutdown` resolves, then drains requests in
    /// flight (at most the request timeout) and flushes the decision log.
    pub async fn serve_tls(
        self,
        listener: std::net::TcpListener,
        tls: &config::TlsFiles,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // One provider for the process; a second install is refused, which
        // is fine (it is the same one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rustls_config =
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "TLS certificate {} or key {}: {e}",
                            tls.cert.display(),
                            tls.key.display()
                        ),
                    )
                })?;
        let (stop_background, background_stopped) = tokio::sync::oneshot::channel::<()>();
        let background = self.spawn_background(async {
            let _ = background_stopped.await;
        });
        let handle = axum_server::Handle::new();
        let drain = self.state.settings.limits.request_timeout;
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopper.graceful_shutdown(Some(drain));
        });
        listener.set_nonblocking(true)?;
        let result = axum_server::from_tcp_rustls(listener, rustls_config)
            .handle(handle)
            .serve(self.router().into_make_service())
            .await;
        let _ = stop_background.send(());
        let _ = background.await;
        self.close();
        result
    }

    /// Flushes and closes the decision log.
    pub fn close(&self) {
        if !self.state.decision_log.close(Duration::from_secs(5)) {
            tracing::warn!("the decision log could not be flushed in 5 s");
        }
    }
}
