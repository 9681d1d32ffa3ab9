//! `/v1/reports`: outage reports from customers ("OUT", "VIKA", "FEL" by SMS from a number no
//! open incident covers), newest first, with the last hour's clusters.
//!
//! Who sees what: every role that reads incidents (viewer, operator, admin) may list them, so
//! that a control-room screen on a viewer token shows a cluster before anyone declares. The
//! reporting number is personal data that no customer record may hold (a number no customer
//! has is recorded too): a viewer gets only its last four digits (`•••4567`); operators and
//! admins, who may call back, get it whole.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use outagecast_core::auth::{Action, Role};
use outagecast_engine::{ReportCluster, ReportListing};
use outagecast_store::{MAX_REPORT_PAGE, OutageReport, ReportQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::{ApiQuery, ApiState, Caller, allowed};

/// The reports listed when `limit` is not given.
const DEFAULT_LIMIT: u32 = 100;

/// Which reports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportListQuery {
    /// Only reports received or repeated at or after this time (RFC 3339,
    /// `2026-12-03T14:00:00Z`).
    pub since: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// One of the reporting number's accounts and where it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportedAccountView {
    /// The utility's account id.
    pub account_id: String,
    /// The service location's longitude (WGS84).
    pub lon: f64,
    /// Its latitude.
    pub lat: f64,
}

/// One outage report.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutageReportView {
    /// Its id.
    pub id: i64,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// When the number last reported it (its latest repeat, or `received_at`).
    pub last_at: DateTime<Utc>,
    /// The number, E.164; for a viewer only its last four digits (`•••4567`).
    pub phone: String,
    /// How it came (`sms`).
    pub channel: String,
    /// The number's accounts when it reported; empty for a number no customer has.
    pub accounts: Vec<ReportedAccountView>,
    /// The first account's location (longitude), absent for an unknown number.
    pub lon: Option<f64>,
    /// Its latitude.
    pub lat: Option<f64>,
    /// What the first message said (at most 320 characters).
    pub text: String,
    /// How many more times the number reported it, each within 30 minutes of the last.
    pub repeats: u64,
}

/// Two or more reports in one grid cell (0.01° by 0.01°) in the last hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportClusterView {
    /// The cell, `[west, south, east, north]`.
    pub bbox: [f64; 4],
    /// The mean location of the reporting accounts in the cell (longitude).
    pub lon: f64,
    /// Its latitude.
    pub lat: f64,
    /// Reports (numbers) with an account in the cell.
    pub reports: u64,
    /// Messages, repeats included.
    pub messages: u64,
    /// The reports' ids, newest first.
    pub report_ids: Vec<i64>,
}

/// Outage reports, newest first, and the last hour's clusters.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    /// The reports asked for.
    pub reports: Vec<OutageReportView>,
    /// Cells with two or more reports in the last hour (whatever `since` and `limit`), most
    /// reports first.
    pub clusters: Vec<ReportClusterView>,
}

/// A number shown to `role`: whole, or its last four digits for a viewer.
fn shown_phone(phone: &str, role: Role) -> String {
    if matches!(role, Role::Admin | Role::Operator) {
        return phone.to_string();
    }
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("•••{tail}")
}

fn view(r: OutageReport, role: Role) -> OutageReportView {
    let first = r.accounts.first().map(|a| (a.lon, a.lat));
    OutageReportView {
        id: r.id,
        received_at: r.received_at,
        last_at: r.last_at,
        phone: shown_phone(&r.phone, role),
        channel: r.channel.as_str().to_string(),
        lon: first.map(|p| p.0),
        lat: first.map(|p| p.1),
        accounts: r
            .accounts
            .into_iter()
            .map(|a| ReportedAccountView {
                account_id: a.account_id,
                lon: a.lon,
                lat: a.lat,
            })
            .collect(),
        text: r.text,
        repeats: r.repeats,
    }
}

fn cluster_view(c: ReportCluster) -> ReportClusterView {
    ReportClusterView {
        bbox: c.bbox,
        lon: c.lon,
        lat: c.lat,
        reports: c.reports,
        messages: c.messages,
        report_ids: c.report_ids,
    }
}

/// Outage reports from customers, newest first, with the last hour's clusters.
#[utoipa::path(get, operation_id = "reports_list", path = "/v1/reports", tag = "reports", params(ReportListQuery),
    responses((status = 200, description = "OK", body = ReportPage), (status = 400, description = "`since` or `limit` is invalid", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportListQuery>,
) -> Result<Json<ReportPage>, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    let since = q
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::invalid(
                        "since",
                        format!(
                            "since: {s:?} is not an RFC 3339 time ({e}); write e.g. 2026-12-03T14:00:00Z"
                        ),
                    )
                })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_REPORT_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!(
                "limit: {limit} is not from 1 to {MAX_REPORT_PAGE}; ask for fewer, and page back with since"
            ),
        ));
    }
    let ReportListing { reports, clusters } = state
        .engine
        .outage_reports(ReportQuery { since, limit }, Utc::now())
        .await?;
    Ok(Json(ReportPage {
        reports: reports.into_iter().map(|r| view(r, caller.role)).collect(),
        clusters: clusters.into_iter().map(cluster_view).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_sees_the_last_four_digits() {
        assert_eq!(shown_phone("+358401234567", Role::Viewer), "•••4567");
        assert_eq!(
            shown_phone("+358401234567", Role::Operator),
            "+358401234567"
        );
        assert_eq!(shown_phone("+358401234567", Role::Admin), "+358401234567");
        assert_eq!(shown_phone("+12", Role::Viewer), "•••12");
    }
}
