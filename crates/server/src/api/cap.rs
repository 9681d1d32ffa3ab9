//! CAP 1.2 over HTTP: `POST /v1/cap` applies an alert from another system (the same engine
//! path as `incident declare --cap`), `GET /v1/incidents/{id}/cap` exports an incident as CAP.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use outagecast_core::auth::Action;
use outagecast_core::incident::{IncidentId, IncidentKind};
use outagecast_engine::rails::LAT_LON;
use outagecast_engine::{CapOutcome, CapOverrides, CapReceipt, CapRequest, Rails, Spelling};
use outagecast_ingest::cap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::heavy::Finish;
use super::schema::IncidentView;
use super::{ApiQuery, ApiState, Caller, allowed};

/// CAP's media type (RFC 6838 registration by OASIS).
pub(crate) const CAP_MEDIA_TYPE: &str = "application/cap+xml";

/// The API's words, for an input that writes latitude first and takes its rails in the query.
const CAP_SPELLING: Spelling = Spelling {
    allow_empty: "?allow_empty=true",
    confirm: "?confirm=N",
    preview: "POST /v1/incidents/preview (or `incident preview --cap FILE`)",
    ..Spelling::API.with_order(LAT_LON)
};

/// A CAP 1.2 document, as bytes (UTF-8 XML).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only its schema is used: the handler reads the body as bytes.
pub struct CapDocument(Vec<u8>);

/// What the alert cannot say and the rails.
#[derive(Debug, Deserialize)]
pub struct CapQuery {
    /// Which service is out, when the alert does not say (no `outagecast:kind` parameter,
    /// no known word in `<event>`): water, power, gas, heating, telecom or sewer.
    pub kind: Option<String>,
    /// Declare an area that holds nobody.
    #[serde(default)]
    pub allow_empty: bool,
    /// The exact number of affected customers, needed above the confirmation threshold.
    pub confirm: Option<u64>,
}

/// What a CAP message did, with the incident it acted on.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapAnswer {
    /// `declared` (an Alert), `updated`, `cancelled`, `recorded` (an Update that changes
    /// nothing customers hear), or `repeated` (this message, same sender, identifier and
    /// sent, was applied before: nothing was written).
    pub action: &'static str,
    /// The CAP msgType of the message.
    pub msg_type: String,
    /// The incident, as it is now.
    #[serde(flatten)]
    pub incident: IncidentView,
}

fn is_cap_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    [CAP_MEDIA_TYPE, "application/xml", "text/xml"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
}

/// Apply a CAP 1.2 alert: Alert declares, Update updates and Cancel cancels the incident its
/// `<references>` name, with the same rails as any declaration. The same message posted again
/// (same sender, identifier and sent) changes nothing and answers the same incident.
///
/// Query, optional: `kind=water|power|gas|heating|telecom|sewer` when the alert does not say
/// which service is out, `allow_empty=true` for an area that holds nobody, `confirm=N` above
/// the confirmation threshold. (Described here rather than as parameters: schemathesis's
/// coverage phase crashes on this operation's parameters with a binary body, a bug in its
/// Hypothesis under Python 3.11.)
#[utoipa::path(post, operation_id = "cap_apply", path = "/v1/cap", tag = "incidents",
    request_body(content = CapDocument, content_type = "application/cap+xml", description = "A CAP 1.2 alert, at most 1 MB"),
    responses(
        (status = 201, description = "An Alert declared this incident", body = CapAnswer),
        (status = 200, description = "Updated, cancelled, recorded or repeated", body = CapAnswer),
        (status = 400, description = "The alert is invalid (the element, line and column named)", body = ErrorBody),
        (status = 404, description = "The incident is gone", body = ErrorBody),
        (status = 409, description = "An Update or Cancel for an incident not declared here, an identifier reused with another sent, or a closed incident", body = ErrorBody),
        (status = 415, description = "Not application/cap+xml", body = ErrorBody),
        (status = 422, description = "Refused by a safety rail", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn apply(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CapQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CapAnswer>), ApiError> {
    let actor = allowed(&caller, Action::Declare)?;
    if !is_cap_type(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid",
            format!("Content-Type: send the alert as {CAP_MEDIA_TYPE}"),
        )
        .at("Content-Type"));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::invalid("body", format!("body: is not UTF-8 ({e})")))?
        .to_string();
    let kind = q.kind.as_deref().map(IncidentKind::parse).transpose()?;
    let confirm_threshold = state.settings.confirm_threshold;
    let engine = state.engine.clone();
    // Parsing, validating and selecting a big polygon is CPU work: on the blocking pool. A
    // declaration runs to the end once started.
    let (receipt, engine) = state
        .heavy
        .run(Finish::ToTheEnd, async move {
            let alert = cap::parse(&text, "body")?;
            let req = CapRequest {
                actor,
                alert,
                overrides: CapOverrides {
                    kind,
                    ..CapOverrides::default()
                },
                rails: Rails {
                    allow_empty: q.allow_empty,
                    confirm: q.confirm,
                    confirm_threshold,
                },
                now: Utc::now(),
            };
            let receipt = engine.receive_cap(req, &CAP_SPELLING).await?;
            Ok((receipt, engine))
        })
        .await?;
    let (status, action, msg_type, id) = match receipt {
        CapReceipt::Applied(outcome) => applied(*outcome)?,
        CapReceipt::Repeated { incident, msg_type } => {
            (StatusCode::OK, "repeated", msg_type, incident)
        }
    };
    Ok((
        status,
        Json(CapAnswer {
            action,
            msg_type,
            incident: engine.incident(id).await?.into(),
        }),
    ))
}

/// The answer's status, action, msgType and incident for an applied alert.
fn applied(
    outcome: CapOutcome,
) -> Result<(StatusCode, &'static str, String, IncidentId), ApiError> {
    Ok(match outcome {
        CapOutcome::Declared { declared, cap } => (
            StatusCode::CREATED,
            "declared",
            cap.msg_type.to_string(),
            declared.outcome.incident.id,
        ),
        CapOutcome::FollowedUp { follow_up, cap, .. } => (
            StatusCode::OK,
            if follow_up.action == "cancel" {
                "cancelled"
            } else {
                "updated"
            },
            cap.msg_type.to_string(),
            follow_up.incident.id,
        ),
        CapOutcome::Recorded { follow_up, cap } => (
            StatusCode::OK,
            "recorded",
            cap.msg_type.to_string(),
            follow_up.incident.id,
        ),
        other => {
            return Err(ApiError::internal(&format!(
                "applying a CAP alert gave a preview: {other:?}"
            )));
        }
    })
}

/// The incident as a CAP 1.2 alert: Alert, Update or Cancel following its history (with
/// `references`), one `info` per language of its customers, the area as CAP polygons and
/// circles.
#[utoipa::path(get, operation_id = "incidents_cap", path = "/v1/incidents/{id}/cap", tag = "incidents",
    params(("id" = String, Path, description = "The incident: 42 or INC-42")),
    responses(
        (status = 200, description = "The CAP 1.2 alert", body = String, content_type = "application/cap+xml"),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn export(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    let id = IncidentId::parse(&id).map_err(|e| ApiError::from(e).at("id"))?;
    let xml = cap_document(&state, id).await?;
    Ok(cap_response(xml))
}

/// The CAP document of `id`, written on the blocking pool (it selects the area's customers
/// for their languages).
pub(crate) async fn cap_document(state: &ApiState, id: IncidentId) -> Result<String, ApiError> {
    let engine = state.engine.clone();
    let publish = state.settings.publish.clone();
    state
        .heavy
        .run(Finish::WhenAbandoned, async move {
            Ok(engine.incident_cap(id, &publish).await?)
        })
        .await
}

/// A CAP document as an answer.
pub(crate) fn cap_response(xml: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            format!("{CAP_MEDIA_TYPE}; charset=utf-8"),
        )],
        xml,
    )
        .into_response()
}
