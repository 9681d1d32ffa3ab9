//! `/v1/incidents/{id}/progress`: a server-sent-events stream of an incident's notice counts,
//! one event whenever they change (and a first one at once), for the operator console.

use std::convert::Infallible;
use std::time::Duration;

use super::schema::IncidentView;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use outagecast_core::auth::Action;
use outagecast_core::incident::IncidentId;

use super::error::{ApiError, ErrorBody};
use super::{ApiState, Caller, allowed};

/// Live counts: an `progress` event carrying the incident (as `GET /v1/incidents/{id}`)
/// each time its counts or status change; the stream ends after the incident is closed and
/// nothing is left pending.
#[utoipa::path(get, operation_id = "progress_progress", path = "/v1/incidents/{id}/progress", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42")),
    responses((status = 200, description = "text/event-stream of `progress` events whose data is an incident", content_type = "text/event-stream", body = IncidentView),
        (status = 404, description = "Not found", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn progress(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    let id = IncidentId::parse(&id).map_err(|e| ApiError::from(e).at("id"))?;
    // 404 now rather than an empty stream.
    state.engine.incident(id).await?;
    let interval = state.settings.progress_interval;
    let stream = futures_util::stream::unfold(
        (state, None::<String>, false),
        move |(state, last, done)| async move {
            if done {
                return None;
            }
            let mut first = last.is_none();
            loop {
                if !first {
                    tokio::time::sleep(interval).await;
                }
                first = false;
                let view: IncidentView = match state.engine.incident(id).await {
                    Ok(v) => v.into(),
                    Err(e) => {
                        tracing::warn!(error = %e, incident = id.0, "progress stream: store read failed");
                        continue;
                    }
                };
                let data = serde_json::to_string(&view).unwrap_or_default();
                if last.as_deref() == Some(data.as_str()) {
                    continue;
                }
                let pending = view.notices.iter().any(|n| n.status.waiting());
                let finished = !view.head.status.is_active() && !pending;
                let event = Event::default().event("progress").data(data.clone());
                return Some((Ok(event), (state, Some(data), finished)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
