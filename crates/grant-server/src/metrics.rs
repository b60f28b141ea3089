//! The service's metrics, rendered in Prometheus text format at `/metrics`.
//!
//! Each [`Metrics`] has its own recorder (not the process-global one), so
//! several servers in one process (tests, embedders) count separately.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

static METADATA: Metadata<'static> = Metadata::new("grant_server", Level::INFO, None);

/// Decision latency buckets, in seconds: 5 µs to 50 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05,
];
/// HTTP request duration buckets, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The statuses the service answers, whose request counters are kept
/// ready; another status is registered when it happens.
const STATUSES: [u16; 14] = [
    200, 201, 400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503, 504,
];

/// The request metrics of one route.
#[derive(Default)]
struct RouteSlots {
    counters: [OnceLock<Counter>; STATUSES.len()],
    duration: OnceLock<Histogram>,
}

/// Counters and histograms of one server.
#[derive(Clone)]
pub struct Metrics {
    /// One per route of `ROUTES`, then one for unmatched requests.
    routes: Arc<[RouteSlots]>,
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    pub decisions_allow: Counter,
    pub decisions_deny: Counter,
    pub decision_seconds: Histogram,
    pub grants_issued: Counter,
    pub grants_pending: Counter,
    pub grants_denied: Counter,
    pub grants_used: Counter,
    pub uses_refused: Counter,
    pub grants_revoked: Counter,
    pub grants_expired: Counter,
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    pub seconds_since_load: Gauge,
    pub decision_log_dropped: Counter,
    pub spooled_events: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("grant_decision_duration_seconds".to_string()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("grant_http_request_duration_seconds".to_string()),
                    HTTP_BUCKETS,
                )
            });
        // The buckets are constants and not empty, so the builder cannot
        // refuse them; should it, summaries are rendered instead.
        let recorder = Arc::new(
            builder
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder(),
        );
        let handle = recorder.handle();
        let counter = |name: &'static str, labels: &[(&'static str, &'static str)]| {
            counter(&recorder, name, labels)
        };
        let metrics = Metrics {
            decisions_allow: counter("grant_decisions_total", &[("effect", "allow")]),
            decisions_deny: counter("grant_decisions_total", &[("effect", "deny")]),
            decision_seconds: recorder.register_histogram(
                &Key::from_static_name("grant_decision_duration_seconds"),
                &METADATA,
            ),
            grants_issued: counter("grant_grants_total", &[("event", "issued")]),
            grants_pending: counter("grant_grants_total", &[("event", "pending")]),
            grants_denied: counter("grant_grants_total", &[("event", "denied")]),
            grants_used: counter("grant_grants_total", &[("event", "used")]),
            uses_refused: counter("grant_grants_total", &[("event", "use_refused")]),
            grants_revoked: counter("grant_grants_total", &[("event", "revoked")]),
            grants_expired: counter("grant_grants_total", &[("event", "expired")]),
            reloads_ok: counter("grant_policy_reloads_total", &[("result", "ok")]),
            reloads_failed: counter("grant_policy_reloads_total", &[("result", "failed")]),
            seconds_since_load: recorder.register_gauge(
                &Key::from_static_name("grant_policy_seconds_since_last_load"),
                &METADATA,
            ),
            decision_log_dropped: counter("grant_decision_log_dropped_total", &[]),
            spooled_events: recorder.register_gauge(
                &Key::from_static_name("grant_ledger_spooled_events"),
                &METADATA,
            ),
            recorder: Arc::clone(&recorder),
            handle,
            routes: (0..=crate::ROUTES.len())
                .map(|_| RouteSlots::default())
                .collect(),
        };
        for described in [
            ("grant_decisions_total", "Decisions made, by effect."),
            (
                "grant_decision_duration_seconds",
                "Time to decide one request.",
            ),
            (
                "grant_grants_total",
                "Grant lifecycle events recorded by this server.",
            ),
            ("grant_policy_reloads_total", "Policy reloads, by result."),
            (
                "grant_policy_seconds_since_last_load",
                "Seconds since the served policy was last loaded successfully.",
            ),
            (
                "grant_decision_log_dropped_total",
                "Decision log lines that could not be written.",
            ),
            (
                "grant_ledger_spooled_events",
                "Events in the degraded-mode spool, not yet in the store.",
            ),
            (
                "grant_http_requests_total",
                "HTTP requests, by route and status.",
            ),
            (
                "grant_http_request_duration_seconds",
                "HTTP request duration, by route.",
            ),
        ] {
            metrics
                .recorder
                .describe_counter(described.0.into(), None, described.1.into());
        }
        metrics
    }

    /// Counts one decision.
    pub fn decision(&self, allowed: bool, seconds: f64) {
        if allowed {
            self.decisions_allow.increment(1);
        } else {
            self.decisions_deny.increment(1);
        }
        self.decision_seconds.record(seconds);
    }

    /// Counts one HTTP request by its route pattern (never the raw path:
    /// ids would make the label set unbounded). The handles of the routes
    /// and statuses the service answers are registered once, on first use,
    /// so the hot path allocates nothing.
    pub fn http_request(&self, route: &str, status: u16, seconds: f64) {
        let route_index = crate::ROUTES
            .iter()
            .position(|(_, path)| *path == route)
            .unwrap_or(crate::ROUTES.len());
        let route_label = crate::ROUTES
            .get(route_index)
            .map_or("unmatched", |(_, path)| path);
        let Some(slots) = self.routes.get(route_index) else {
            return;
        };
        let slot = STATUSES
            .iter()
            .position(|s| *s == status)
            .and_then(|i| slots.counters.get(i));
        match slot {
            Some(slot) => slot
                .get_or_init(|| self.http_counter(route_label, status))
                .increment(1),
            None => self.http_counter(route_label, status).increment(1),
        }
        slots
            .duration
            .get_or_init(|| {
                self.recorder.register_histogram(
                    &Key::from_parts(
                        "grant_http_request_duration_seconds",
                        vec![Label::new("route", route_label.to_string())],
                    ),
                    &METADATA,
                )
            })
            .record(seconds);
    }

    fn http_counter(&self, route: &str, status: u16) -> Counter {
        let labels = vec![
            Label::new("route", route.to_string()),
            Label::new("status", status.to_string()),
        ];
        self.recorder.register_counter(
            &Key::from_parts("grant_http_requests_total", labels),
            &METADATA,
        )
    }

    /// Drains the histograms' samples into their buckets. The exporter
    /// keeps every sample until a scrape or this, so without it an
    /// unscraped server's memory grows with every request.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The text of `/metrics`.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn counter(
    recorder: &PrometheusRecorder,
    name: &'static str,
    labels: &[(&'static str, &'static str)],
) -> Counter {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::from_static_parts(k, v))
        .collect();
    recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
}
