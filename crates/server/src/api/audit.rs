//! `/v1/audit`: who did what, when, with a summary of before and after.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use outagecast_core::auth::Action;
use outagecast_store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::{ApiQuery, ApiState, Caller, allowed};

/// Filters and pages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditListQuery {
    /// Only entries older than this id (the previous page's `next`).
    pub after: Option<i64>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
    /// Only this actor (`token:ops`, `cli:alice`).
    pub actor: Option<String>,
    /// Only this action (`incident.declare`) or family (`incident`).
    pub action: Option<String>,
    /// Only this subject (`incident:12`) or kind (`incident`).
    pub entity: Option<String>,
}

/// One audited action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Its id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`token:NAME`, `cli:USER`, `sms:inbound`).
    pub actor: String,
    /// What (`incident.declare`, `customers.import`, ...).
    pub action: String,
    /// On what (`incident:12`).
    pub subject: Option<String>,
    /// A summary of before and after.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next: Option<i64>,
}

/// The audit log, newest first.
#[utoipa::path(get, operation_id = "audit_list", path = "/v1/audit", tag = "audit", params(AuditListQuery),
    responses((status = 200, description = "OK", body = AuditPage), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditListQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    allowed(&caller, Action::ReadAudit)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .engine
        .audit(AuditQuery {
            after_id: q.after,
            limit,
            actor: q.actor,
            action: q.action,
            entity: q.entity,
        })
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries
            .into_iter()
            .map(|e| AuditEntryView {
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                details: e.details,
            })
            .collect(),
        next,
    }))
}
