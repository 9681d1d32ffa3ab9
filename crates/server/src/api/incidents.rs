//! `/v1/incidents`: declare (and preview), list, get, update, restore, cancel, report. Each
//! handler parses the body into the engine's typed request, calls the one engine method and
//! maps the engine's view to the schema type below or in `super::schema`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use outagecast_core::auth::Action;
use outagecast_core::contact::Language;
use outagecast_core::incident::{Cause, IncidentId, IncidentKind, IncidentStatus, Severity};
use outagecast_core::when::parse_time;
use outagecast_engine::{
    AreaSpec, DeclareRequest as EngineDeclare, Geocoding, IncidentDetails, Rails, Spelling,
    TopologySpec, UpdateRequest as EngineUpdate,
};
use outagecast_ingest::geojson::Sizes;
use outagecast_store::ReportRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::heavy::Finish;
use super::schema::{
    ChannelCounts, DeclaredView, IncidentView, NoticeCountView, SelectionView, TransitionView,
};
use super::{ApiQuery, ApiState, Caller, allowed, json_body};

/// What to declare. The area is given one way: `area` (GeoJSON), `zone` or `address`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    /// water, power, gas, heating, telecom or sewer.
    #[schema(example = "water")]
    pub kind: String,
    /// minor, moderate (default), severe or extreme; severe and extreme bypass quiet hours.
    pub severity: Option<String>,
    /// What happened, one line: it goes into every SMS.
    #[schema(example = "burst water main")]
    pub cause: String,
    /// Estimated time of restoration: RFC 3339, or in the utility's time zone `15:00` (the
    /// next one), `tomorrow 08:00`, `+3h`, `2026-11-25 15:00`.
    #[schema(example = "2026-11-25T15:00:00+02:00")]
    pub etr: Option<String>,
    /// The operator's own id.
    pub reference: Option<String>,
    /// When the incident stops being announced by itself (as `etr`).
    pub expires_at: Option<String>,
    /// A GeoJSON geometry, Feature or FeatureCollection (longitude first). A Point needs
    /// `radius_m` (as a property or below), a LineString `buffer_m`.
    #[schema(value_type = Option<Object>)]
    pub area: Option<serde_json::Value>,
    /// Metres around a point or an `address`.
    pub radius_m: Option<f64>,
    /// Metres either side of a line.
    pub buffer_m: Option<f64>,
    /// An imported zone, by name.
    pub zone: Option<String>,
    /// A street address, geocoded offline against the customers' addresses.
    pub address: Option<String>,
    /// A burst pipe (power: a faulted section) of the imported network: the customers fed
    /// from its isolated segment and those left with no path to a source.
    pub burst_pipe: Option<String>,
    /// With `burst_pipe`: isolation valves (switches) that will not turn.
    pub broken_valves: Option<Vec<String>>,
    /// Declare an area that holds nobody.
    #[serde(default)]
    pub allow_empty: bool,
    /// The exact number of affected customers, needed above the confirmation threshold.
    pub confirm: Option<u64>,
}

/// What to change. A new area (given as in a declaration) tells only the customers it adds.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// A new estimated time of restoration (as in a declaration).
    pub etr: Option<String>,
    /// A new cause.
    pub cause: Option<String>,
    /// A new severity.
    pub severity: Option<String>,
    /// A new area (GeoJSON).
    #[schema(value_type = Option<Object>)]
    pub area: Option<serde_json::Value>,
    /// Metres around a point or an `address`.
    pub radius_m: Option<f64>,
    /// Metres either side of a line.
    pub buffer_m: Option<f64>,
    /// A new area: an imported zone.
    pub zone: Option<String>,
    /// A new area: an address.
    pub address: Option<String>,
    /// Allow a new area that holds nobody.
    #[serde(default)]
    pub allow_empty: bool,
    /// The exact number of customers the new area holds, above the threshold.
    pub confirm: Option<u64>,
}

/// How an area was given.
struct AreaInput<'a> {
    area: Option<&'a serde_json::Value>,
    radius_m: Option<f64>,
    buffer_m: Option<f64>,
    zone: Option<&'a str>,
    address: Option<&'a str>,
    burst_pipe: Option<&'a str>,
    broken_valves: Option<&'a [String]>,
}

/// The engine's area request, if an area was given; resolving it is the engine's.
fn area_spec(input: AreaInput<'_>) -> Result<Option<AreaSpec>, ApiError> {
    let given = [
        input.area.is_some(),
        input.zone.is_some(),
        input.address.is_some(),
        input.burst_pipe.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ApiError::invalid(
            "area",
            "area: give the area one way: \"area\" (GeoJSON), \"zone\", \"address\" or \"burst_pipe\"",
        ));
    }
    if let Some(burst) = input.burst_pipe {
        return Ok(Some(AreaSpec::Topology(TopologySpec {
            burst: burst.to_string(),
            broken: input.broken_valves.unwrap_or_default().to_vec(),
        })));
    }
    if input.broken_valves.is_some() {
        return Err(ApiError::invalid(
            "broken_valves",
            "broken_valves: give them with \"burst_pipe\", the pipe whose isolation they break",
        ));
    }
    if let Some(geojson) = input.area {
        return Ok(Some(AreaSpec::GeoJson {
            text: geojson.to_string(),
            sizes: Sizes {
                radius_m: input.radius_m,
                buffer_m: input.buffer_m,
            },
            source: None,
        }));
    }
    if let Some(name) = input.zone {
        return Ok(Some(AreaSpec::Zone(name.to_string())));
    }
    if let Some(query) = input.address {
        // The API geocodes offline, against the customers' addresses only.
        return Ok(Some(AreaSpec::Address {
            query: query.to_string(),
            radius_m: input.radius_m,
            geocoding: Geocoding::default(),
        }));
    }
    Ok(None)
}

/// A time in the body: RFC 3339, or as an operator writes it (`15:00`, `+3h`) in the
/// utility's zone, as on the command line.
fn time(
    state: &ApiState,
    text: Option<&str>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let locale = state.engine.settings().locale(Utc::now());
    Ok(text.map(|t| parse_time(t, field, &locale)).transpose()?)
}

/// The engine's declaration request for a body.
fn declare_request(
    state: &ApiState,
    actor: String,
    req: &DeclareRequest,
) -> Result<EngineDeclare, ApiError> {
    let area = area_spec(AreaInput {
        area: req.area.as_ref(),
        radius_m: req.radius_m,
        buffer_m: req.buffer_m,
        zone: req.zone.as_deref(),
        address: req.address.as_deref(),
        burst_pipe: req.burst_pipe.as_deref(),
        broken_valves: req.broken_valves.as_deref(),
    })?
    .ok_or_else(|| {
        ApiError::invalid(
            "area",
            "area: say where: \"area\" (GeoJSON), \"zone\", \"address\" or \"burst_pipe\"",
        )
    })?;
    Ok(EngineDeclare {
        actor,
        details: IncidentDetails {
            kind: IncidentKind::parse(&req.kind)?,
            severity: Severity::parse(req.severity.as_deref().unwrap_or("moderate"))?,
            cause: Cause::parse(&req.cause)?,
            etr: time(state, req.etr.as_deref(), "etr")?,
            reference: req.reference.clone(),
            expires_at: time(state, req.expires_at.as_deref(), "expires_at")?,
        },
        area,
        rails: Rails {
            allow_empty: req.allow_empty,
            confirm: req.confirm,
            confirm_threshold: state.settings.confirm_threshold,
        },
        now: Utc::now(),
    })
}

/// One language's SMS text for the declaration.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsTextView {
    /// fi, sv or en.
    #[schema(value_type = String)]
    pub language: Language,
    /// The text (the incident's number is not known yet: `INC-0` stands in for it).
    pub text: String,
    /// GSM-7 or UCS-2.
    pub encoding: &'static str,
    /// Segments per message.
    pub segments: u32,
    /// SMS recipients in this language.
    pub recipients: u64,
}

/// Why declaring would be refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedView {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What declaring would do; nothing is written.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    /// The area, as GeoJSON.
    #[schema(value_type = Object)]
    pub area: Area,
    /// How the area was given, when not as a plain shape.
    pub area_source: Option<String>,
    /// Notices that would be planned, per channel.
    pub notices: ChannelCounts,
    /// SMS segments the declaration would send in all.
    pub sms_segments: u64,
    /// The SMS text per language, with its encoding and segments.
    pub sms_texts: Vec<SmsTextView>,
    /// Up to ten affected addresses.
    pub sample_addresses: Vec<String>,
    /// Distinct affected addresses.
    pub distinct_addresses: usize,
    /// Why declaring would be refused, if it would.
    pub refused: Option<RefusedView>,
    /// Who is affected.
    #[serde(flatten)]
    pub selection: SelectionView,
    /// The isolation trace, for a preview by `burst_pipe`.
    #[serde(flatten)]
    pub topology: super::schema::TraceView,
}

impl From<outagecast_engine::views::PreviewView> for PreviewView {
    fn from(v: outagecast_engine::views::PreviewView) -> Self {
        PreviewView {
            area: v.area,
            area_source: v.area_source,
            notices: v.notices.into(),
            sms_segments: v.sms_segments,
            sms_texts: v
                .sms_texts
                .into_iter()
                .map(|t| SmsTextView {
                    language: t.language,
                    text: t.text,
                    encoding: t.encoding,
                    segments: t.segments,
                    recipients: t.recipients,
                })
                .collect(),
            sample_addresses: v.sample_addresses,
            distinct_addresses: v.distinct_addresses,
            refused: v.refused.map(|r| RefusedView {
                field: r.field,
                message: r.message,
            }),
            selection: v.selection.into(),
            topology: v.topology.into(),
        }
    }
}

/// Declare an incident: customers in the area are selected, notices planned and their
/// numbers armed in the IVR, in one transaction.
#[utoipa::path(post, operation_id = "incidents_declare", path = "/v1/incidents", tag = "incidents",
    request_body = DeclareRequest,
    responses(
        (status = 201, description = "Declared", body = DeclaredView),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 422, description = "Refused by a safety rail (empty, swapped coordinates, needs confirm)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn declare(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<DeclaredView>), ApiError> {
    let actor = allowed(&caller, Action::Declare)?;
    let req: DeclareRequest = json_body(&body)?;
    let request = declare_request(&state, actor, &req)?;
    let engine = state.engine.clone();
    // Parsing, validating and selecting a big area is CPU work: on the blocking pool.
    let declared = state
        .heavy
        .run(Finish::ToTheEnd, async move {
            Ok(engine.declare(request, &Spelling::API).await?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(declared.view().into())))
}

/// What declaring would do: the affected count, a sample of addresses, the notices and SMS
/// segments planned, and why it would be refused. Nothing is written.
#[utoipa::path(post, operation_id = "incidents_preview", path = "/v1/incidents/preview", tag = "incidents",
    request_body = DeclareRequest,
    responses(
        (status = 200, description = "The dry run", body = PreviewView),
        (status = 400, description = "A field is invalid", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn preview(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<PreviewView>, ApiError> {
    let actor = allowed(&caller, Action::ReadIncidents)?;
    let req: DeclareRequest = json_body(&body)?;
    let request = declare_request(&state, actor, &req)?;
    let engine = state.engine.clone();
    let preview = state
        .heavy
        .run(Finish::WhenAbandoned, async move {
            Ok(engine.preview(request, &Spelling::API).await?)
        })
        .await?;
    Ok(Json(preview.view.into()))
}

/// Filters and pages for the incident list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only incidents in this status (declared, updated, restored, cancelled); default: the
    /// live ones (declared or updated).
    pub status: Option<String>,
    /// Only this kind (water, power, ...).
    pub kind: Option<String>,
    /// Every incident, closed ones too.
    #[serde(default)]
    pub all: bool,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
    /// Only incidents with an id below this (the previous page's `next`).
    pub before: Option<i64>,
}

/// A page of incidents.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    /// Newest first.
    pub incidents: Vec<IncidentView>,
    /// Pass as `before` for the next page; absent on the last one.
    pub next: Option<i64>,
}

/// List incidents, newest first.
#[utoipa::path(get, operation_id = "incidents_list", path = "/v1/incidents", tag = "incidents", params(ListQuery),
    responses((status = 200, description = "OK", body = IncidentPage), (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<IncidentPage>, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    let status = q
        .status
        .as_deref()
        .map(IncidentStatus::parse)
        .transpose()
        .map_err(|e| e.renamed("--status", "status"))?;
    let kind = q.kind.as_deref().map(IncidentKind::parse).transpose()?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let include_closed = q.all || status.is_some_and(|s| !s.is_active());
    let mut incidents: Vec<IncidentView> = state
        .engine
        .incidents(include_closed)
        .await?
        .into_iter()
        .filter(|v| status.is_none_or(|st| v.head.status == st))
        .filter(|v| kind.is_none_or(|k| v.head.kind == k))
        .filter(|v| q.before.is_none_or(|b| v.head.id < b))
        .map(IncidentView::from)
        .collect();
    incidents.sort_by_key(|v| std::cmp::Reverse(v.head.id));
    let next = (incidents.len() > limit).then(|| incidents[limit - 1].head.id);
    incidents.truncate(limit);
    Ok(Json(IncidentPage { incidents, next }))
}

fn incident_id(raw: &str) -> Result<IncidentId, ApiError> {
    IncidentId::parse(raw).map_err(|e| ApiError::from(e).at("id"))
}

/// One incident with its counts.
#[utoipa::path(get, operation_id = "incidents_get", path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42")),
    responses((status = 200, description = "OK", body = IncidentView), (status = 404, description = "Not found", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    let id = incident_id(&id)?;
    Ok(Json(state.engine.incident(id).await?.into()))
}

/// Update the ETR, cause, severity or area. Those already told hear the new details; a grown
/// area tells only the customers it adds.
#[utoipa::path(patch, operation_id = "incidents_update", path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42")),
    request_body = UpdateRequest,
    responses((status = 200, description = "OK", body = TransitionView), (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody), (status = 409, description = "Closed already", body = ErrorBody),
        (status = 422, description = "Refused by a safety rail", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TransitionView>, ApiError> {
    let actor = allowed(&caller, Action::Declare)?;
    let id = incident_id(&id)?;
    let req: UpdateRequest = json_body(&body)?;
    let area = area_spec(AreaInput {
        area: req.area.as_ref(),
        radius_m: req.radius_m,
        buffer_m: req.buffer_m,
        zone: req.zone.as_deref(),
        address: req.address.as_deref(),
        burst_pipe: None,
        broken_valves: None,
    })?;
    let update = EngineUpdate {
        actor,
        id,
        etr: time(&state, req.etr.as_deref(), "etr")?,
        cause: req.cause.as_deref().map(Cause::parse).transpose()?,
        severity: req.severity.as_deref().map(Severity::parse).transpose()?,
        area,
        rails: Rails {
            allow_empty: req.allow_empty,
            confirm: req.confirm,
            confirm_threshold: state.settings.confirm_threshold,
        },
        now: Utc::now(),
    };
    if update.etr.is_none()
        && update.cause.is_none()
        && update.severity.is_none()
        && update.area.is_none()
    {
        return Err(ApiError::invalid(
            "body",
            "body: nothing to change; give etr, cause, severity or a new area",
        ));
    }
    let engine = state.engine.clone();
    let done = state
        .heavy
        .run(Finish::ToTheEnd, async move {
            Ok(engine.update(update, &Spelling::API).await?)
        })
        .await?;
    Ok(Json(done.view().into()))
}

/// Restore: those told hear it is fixed; unsent notices are withdrawn; the IVR disarms.
#[utoipa::path(post, operation_id = "incidents_restore", path = "/v1/incidents/{id}/restore", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42")),
    responses((status = 200, description = "OK", body = TransitionView), (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Not allowed in the current state", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn restore(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TransitionView>, ApiError> {
    let actor = allowed(&caller, Action::Declare)?;
    let id = incident_id(&id)?;
    let done = state.engine.restore(&actor, id, Utc::now()).await?;
    Ok(Json(done.view().into()))
}

/// Cancel (declared by mistake): those told hear so; unsent notices are withdrawn.
#[utoipa::path(post, operation_id = "incidents_cancel", path = "/v1/incidents/{id}/cancel", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42")),
    responses((status = 200, description = "OK", body = TransitionView), (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Not allowed in the current state", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TransitionView>, ApiError> {
    let actor = allowed(&caller, Action::Declare)?;
    let id = incident_id(&id)?;
    let done = state.engine.cancel(&actor, id, Utc::now()).await?;
    Ok(Json(done.view().into()))
}

/// The report's format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default) or `csv` (one row per recipient).
    pub format: Option<String>,
}

/// Counts by channel and status, and every recipient's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    /// Numeric id.
    pub id: i64,
    /// `INC-<id>`.
    pub label: String,
    /// The status.
    #[schema(value_type = String)]
    pub status: IncidentStatus,
    /// Customers in the area.
    pub affected_customers: u64,
    /// Notices by channel and status.
    pub counts: Vec<NoticeCountView>,
    /// Notices sent again after a crash because the provider could not be asked whether it had
    /// them: those recipients may have the message twice.
    pub possible_duplicates: u64,
    /// The callers of the area who reached the IVR, and how many had been told before.
    pub calls: CallsView,
    /// One row per notice: channel, address, accounts, status, attempts, provider id, error.
    #[schema(value_type = Vec<Object>)]
    pub recipients: Vec<ReportRow>,
}

/// The calls of an incident's area: the figure a utility shows its regulator.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallsView {
    /// Callers from the area (numbers armed for the incident) who reached the IVR while armed.
    pub callers: u64,
    /// Of those, how many heard the announcement.
    pub heard_announcement: u64,
    /// Of those, how many had been told (SMS, email or call to one of their accounts) before
    /// their first call.
    pub told_before_calling: u64,
    /// How long before their first call those were told: the median, in seconds.
    pub median_told_before_seconds: Option<i64>,
    /// Numbers of the area that called in the hour before the declaration.
    pub callers_before_declaration: u64,
}

impl From<outagecast_store::CallsAvoided> for CallsView {
    fn from(c: outagecast_store::CallsAvoided) -> Self {
        CallsView {
            callers: c.callers,
            heard_announcement: c.heard_announcement,
            told_before_calling: c.told_before_calling,
            median_told_before_seconds: c.median_told_before_seconds,
            callers_before_declaration: c.callers_before_declaration,
        }
    }
}

/// The report: counts by channel and status, and the per-recipient outcome (JSON or CSV).
#[utoipa::path(get, operation_id = "incidents_report", path = "/v1/incidents/{id}/report", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42"), ReportQuery),
    responses((status = 200, description = "OK", body = ReportView, content_type = "application/json"),
        (status = 200, description = "One row per recipient", content_type = "text/csv"),
        (status = 404, description = "Not found", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn report(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    let id = incident_id(&id)?;
    let report = state.engine.report(id).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(ReportView {
            id: report.id,
            label: report.label,
            status: report.status,
            affected_customers: report.affected_customers,
            counts: report.counts.into_iter().map(Into::into).collect(),
            possible_duplicates: report.possible_duplicates,
            calls: report.calls.into(),
            recipients: report.recipients,
        })
        .into_response()),
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for row in &report.recipients {
                w.serialize(row).map_err(|e| ApiError::internal(&e))?;
            }
            let bytes = w.into_inner().map_err(|e| ApiError::internal(&e))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.csv\"", id.label()),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        other => Err(ApiError::invalid(
            "format",
            format!("format: {other:?} is not json or csv"),
        )),
    }
}
