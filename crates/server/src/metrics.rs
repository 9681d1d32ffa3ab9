//! `/metrics` in the Prometheus text format.
//!
//! Counters and histograms (IVR lookups and their latency, sends and their latency) are
//! recorded where they happen through the `metrics` facade; gauges that the store knows
//! (notices by channel and status, the queue, active incidents) are read at scrape time, so
//! every node reports the same truth whichever node did the work.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use outagecast_store::Store;

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
                Ok(handle) => Some(handle),
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

/// `GET /metrics`.
pub fn metrics_routes(store: Store) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(MetricsState {
            store,
            handle: recorder(),
        })
}

async fn render(State(state): State<MetricsState>) -> impl IntoResponse {
    let mut out = String::new();
    match gauges(&state.store).await {
        Ok(text) => out.push_str(&text),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: store read failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                format!("# store unavailable: {e}\n"),
            );
        }
    }
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
    let channels = [
        outagecast_core::contact::Channel::Sms,
        outagecast_core::contact::Channel::Email,
    ];
    let q = store.outbox_counts(&channels, now).await?;
    let _ = writeln!(
        out,
        "# HELP outagecast_queue_depth Unsent notices: due now, waiting (backoff or quiet hours), leased to a worker.\n# TYPE outagecast_queue_depth gauge\noutagecast_queue_depth{{state=\"due\"}} {}\noutagecast_queue_depth{{state=\"waiting\"}} {}\noutagecast_queue_depth{{state=\"leased\"}} {}",
        q.due, q.waiting, q.leased
    );
    let _ = writeln!(
        out,
        "# HELP outagecast_possible_duplicates Notices sent again after a crash because the provider could not be asked whether it had them.\n# TYPE outagecast_possible_duplicates gauge\noutagecast_possible_duplicates {}",
        q.possible_duplicates
    );
    let _ = writeln!(
        out,
        "# HELP outagecast_active_incidents Incidents declared or updated and not expired.\n# TYPE outagecast_active_incidents gauge\noutagecast_active_incidents {}",
        store.active_incident_count(now).await?
    );
    Ok(out)
}
