//! `/metrics` in the Prometheus text format.
//!
//! Counters and histograms (IVR lookups and their latency, sends and their latency) are
//! recorded where they happen through the `metrics` facade; gauges that the store knows
//! (notices by channel and status, the queue, active incidents) are read at scrape time, so
//! every node reports the same truth whichever node did the work.
//!
//! Beside the API it needs an `admin` token ([`guarded_metrics_routes`]); on a listener of its
//! own (`serve --metrics-listen`) none ([`metrics_routes`]). A store that cannot be read is
//! `outagecast_store_up 0`, never its error text.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use outagecast_core::auth::Action;
use outagecast_store::Store;

use crate::auth::Auth;

/// Latency buckets in seconds: from the IVR's microseconds to a slow provider's seconds.
const BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. `None` when another recorder was installed
/// first (then `/metrics` shows only the store's gauges).
pub fn recorder() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    metrics::describe_counter!(
                        "outagecast_ivr_lookups_total",
                        "IVR lookups answered (JSON, TwiML and FastAGI)."
                    );
                    metrics::describe_counter!(
                        "outagecast_ivr_calls_dropped_total",
                        "IVR lookups left out of the call log because its queue was full (the calls-avoided report misses them)."
                    );
                    metrics::describe_histogram!(
                        "outagecast_ivr_lookup_seconds",
                        metrics::Unit::Seconds,
                        "Time to answer an IVR lookup from the caller index."
                    );
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

#[derive(Clone)]
struct MetricsState {
    store: Store,
    handle: Option<PrometheusHandle>,
}

/// `GET /metrics`, open: for a listener of its own (`serve --metrics-listen`), which only the
/// scraper can reach.
pub fn metrics_routes(store: Store) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(MetricsState {
            store,
            handle: recorder(),
        })
}

/// `GET /metrics` beside the API: a token whose role may read metrics (`admin`) is needed.
pub fn guarded_metrics_routes(store: Store, auth: Auth) -> Router {
    metrics_routes(store).route_layer(axum::middleware::from_fn_with_state(auth, metrics_guard))
}

async fn metrics_guard(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    match auth.caller(request.headers()).await {
        Ok(caller) => match caller.require(Action::ReadMetrics) {
            Ok(_) => next.run(request).await,
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// The store's gauges, or `outagecast_store_up 0` alone when it cannot be read: the reason
/// goes to the log, never to the scraper (it may name hosts and files).
async fn render(State(state): State<MetricsState>) -> impl IntoResponse {
    let mut out = String::new();
    let up = match gauges(&state.store).await {
        Ok(text) => {
            out.push_str(&text);
            1
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: store read failed");
            0
        }
    };
    out.push_str(&format!(
        "# HELP outagecast_store_up Whether the store answered this scrape.\n# TYPE outagecast_store_up gauge\noutagecast_store_up {up}\n"
    ));
    out.push_str(concat!(
        "# HELP outagecast_build_info The running version (always 1).\n# TYPE outagecast_build_info gauge\noutagecast_build_info{version=\"",
        env!("CARGO_PKG_VERSION"),
        "\"} 1\n"
    ));
    if let Some(handle) = &state.handle {
        out.push_str(&handle.render());
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
}

async fn gauges(store: &Store) -> Result<String, outagecast_store::StoreError> {
    use std::fmt::Write as _;
    let now = Utc::now();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP outagecast_notices Notices by channel and status.\n# TYPE outagecast_notices gauge"
    );
    for n in store.notice_totals().await? {
        let _ = writeln!(
            out,
            "outagecast_notices{{channel=\"{}\",status=\"{}\"}} {}",
            n.channel.as_str(),
            n.status.as_str(),
            n.count
        );
    }
    // Every call placed, by its final status (busy and no-answer ones were called again).
    let _ = writeln!(
        out,
        "# HELP outagecast_calls Voice calls placed, by outcome: answered (a person or a voicemail), busy, no-answer, failed, canceled.\n# TYPE outagecast_calls gauge"
    );
    for (outcome, n) in store.call_totals().await? {
        let _ = writeln!(out, "outagecast_calls{{outcome=\"{outcome}\"}} {n}");
    }
    let q = store
        .outbox_counts(&outagecast_core::contact::Channel::ALL, now)
        .await?;
    let _ = writeln!(
        out,
        "# HELP outagecast_queue_depth Unsent notices: due now, waiting (backoff or quiet hours), leased to a worker; held (a failing provider or a channel not configured) counts among those too.\n# TYPE outagecast_queue_depth gauge\noutagecast_queue_depth{{state=\"due\"}} {}\noutagecast_queue_depth{{state=\"waiting\"}} {}\noutagecast_queue_depth{{state=\"leased\"}} {}\noutagecast_queue_depth{{state=\"held\"}} {}",
        q.due, q.waiting, q.leased, q.held
    );
    let _ = writeln!(
        out,
        "# HELP outagecast_possible_duplicates Notices sent again after a crash because the provider could not be asked whether it had them.\n# TYPE outagecast_possible_duplicates gauge\noutagecast_possible_duplicates {}",
        q.possible_duplicates
    );
    // How long the oldest notice that is due has waited: 0 when nothing is due, growing
    // while the dispatcher is behind or stopped (the alert an on-call engineer wants).
    let oldest = store
        .next_due()
        .await?
        .filter(|due| *due <= now)
        .map_or(0.0, |due| (now - due).num_milliseconds() as f64 / 1000.0);
    let _ = writeln!(
        out,
        "# HELP outagecast_oldest_due_notice_seconds How long the oldest pending notice that is due has waited (0 when none is due).\n# TYPE outagecast_oldest_due_notice_seconds gauge\noutagecast_oldest_due_notice_seconds {oldest}"
    );
    let _ = writeln!(
        out,
        "# HELP outagecast_active_incidents Incidents declared or updated and not expired.\n# TYPE outagecast_active_incidents gauge\noutagecast_active_incidents {}",
        store.active_incident_count(now).await?
    );
    Ok(out)
}
