//! The IVR's HTTP routes and `/healthz`.

use std::borrow::Cow;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{IncidentId, IncidentKind, IncidentStatus};
use outagecast_ivr::Announcements;
use outagecast_ivr::twiml::voice_response;
use serde::Serialize;
use smallvec::SmallVec;

use crate::auth::{Auth, BearerAuthorized};
use crate::{IvrState, Readiness};

/// Twilio's webhook form is a few hundred bytes; nothing legitimate comes near this.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// `GET /v1/ivr/lookup?caller=NUMBER` and `POST /v1/ivr/twilio/voice`.
///
/// Both always answer 200 with a well-formed "nothing to announce" for a caller that is
/// unknown, withheld or garbled: a phone system must never get an error page mid-call.
///
/// The lookup needs an `ivr` (or `admin`) token checked by `auth`, from the first request; the
/// voice webhook needs Twilio's signature (the state's guard) or a `webhook`-role token.
pub fn ivr_routes(state: IvrState, auth: Auth) -> Router {
    let lookup_route = Router::new()
        .route("/v1/ivr/lookup", get(lookup))
        .route_layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::auth::ivr_guard,
        ));
    let voice_route = Router::new()
        .route("/v1/ivr/twilio/voice", post(twilio_voice))
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::webhook_token,
        ));
    lookup_route
        .merge(voice_route)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(state)
}

/// `GET /healthz` and `GET /healthz/dispatch`.
///
/// `/healthz` answers 200 once the indexes are loaded (and kept current) and while this node
/// can serve the IVR and the API, whatever the dispatcher's far ends do: a failing SMS
/// provider must not take the IVR out of a load balancer. Its JSON body lists each part
/// (`ivr`, and the dispatcher's `store`, `sms`, `email` from `dispatch`) as `ok`, `degraded`
/// with the reason, or `not_configured`.
///
/// `/healthz/dispatch` answers 503 with the reasons while a part of the dispatcher is degraded
/// (it cannot write to its store, or a configured channel's provider refuses or cannot be
/// reached), 200 otherwise; a channel that is not configured is not a failure.
pub fn health_routes(
    ready: Readiness,
    dispatch: Option<Arc<dyn HealthSource>>,
    api: Option<Arc<dyn HealthSource>>,
    notes: HealthNotes,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/healthz/dispatch", get(healthz_dispatch))
        .with_state(HealthState {
            ready,
            dispatch,
            api,
            notes,
        })
}

/// What `/healthz` says besides the parts' states: settings an operator must not miss.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthNotes {
    /// `--insecure-webhooks` is on: shown as `"insecure_webhooks": true` with a warning.
    pub insecure_webhooks: bool,
}

/// What the dispatcher tells the health routes (the binary adapts the dispatcher's own
/// health to this, so the server needs no dispatcher).
pub trait HealthSource: Send + Sync + std::fmt::Debug + 'static {
    /// Each part's state now.
    fn components(&self) -> Vec<Component>;
}

/// One part of the node, as `/healthz` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// `store`, `sms`, `email`, ...
    pub name: String,
    /// Its state.
    pub state: ComponentState,
    /// Why it is degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// A part's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Working.
    Ok,
    /// Not working, with a reason.
    Degraded,
    /// Not set up on this node (not a failure).
    NotConfigured,
}

#[derive(Clone)]
struct HealthState {
    ready: Readiness,
    dispatch: Option<Arc<dyn HealthSource>>,
    api: Option<Arc<dyn HealthSource>>,
    notes: HealthNotes,
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    components: Vec<Component>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_webhooks: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<&'static str>,
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(body).unwrap_or_default(),
    )
        .into_response()
}

async fn healthz(State(h): State<HealthState>) -> Response {
    let (status, ivr) = if h.ready.is_ready(Utc::now()) {
        (StatusCode::OK, (ComponentState::Ok, None))
    } else if h.ready.is_loaded() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            (
                ComponentState::Degraded,
                Some("stale: the store has not answered the IVR's polls lately"),
            ),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            (ComponentState::Degraded, Some("loading")),
        )
    };
    let mut components = vec![Component {
        name: "ivr".into(),
        state: ivr.0,
        reason: ivr.1.map(str::to_string),
        since: None,
    }];
    components.extend(dispatch_components(h.dispatch.as_deref()));
    components.extend(h.api.iter().flat_map(|api| api.components()));
    let body = HealthBody {
        status: if status == StatusCode::OK {
            "ok"
        } else {
            "unavailable"
        },
        components,
        insecure_webhooks: h.notes.insecure_webhooks,
        warnings: if h.notes.insecure_webhooks {
            vec![crate::auth::INSECURE_WARNING]
        } else {
            Vec::new()
        },
    };
    json_response(status, &body)
}

async fn healthz_dispatch(State(h): State<HealthState>) -> Response {
    let components = dispatch_components(h.dispatch.as_deref());
    let failing = components
        .iter()
        .any(|c| c.state == ComponentState::Degraded);
    let status = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = HealthBody {
        status: if failing { "degraded" } else { "ok" },
        components,
        insecure_webhooks: false,
        warnings: Vec::new(),
    };
    json_response(status, &body)
}

fn dispatch_components(source: Option<&dyn HealthSource>) -> Vec<Component> {
    match source {
        Some(s) => s.components(),
        None => vec![Component {
            name: "dispatcher".into(),
            state: ComponentState::NotConfigured,
            reason: None,
            since: None,
        }],
    }
}

/// The first value of `name` in a form or query string. Malformed percent-encoding and
/// invalid UTF-8 are read leniently rather than refused.
fn form_value<'a>(form: &'a [u8], name: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(form)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[derive(Serialize)]
struct LookupBody<'a> {
    armed: bool,
    language: Option<Language>,
    announcement: Option<Cow<'a, str>>,
    incidents: &'a [IncidentBody],
}

#[derive(Serialize)]
struct IncidentBody {
    id: IncidentId,
    kind: IncidentKind,
    etr: Option<DateTime<Utc>>,
    status: IncidentStatus,
}

fn lookup_json(found: &Announcements<'_>) -> Vec<u8> {
    let incidents: SmallVec<[IncidentBody; 2]> = found
        .items()
        .iter()
        .map(|a| IncidentBody {
            id: a.incident.id,
            kind: a.incident.kind,
            etr: a.incident.etr,
            status: a.incident.status,
        })
        .collect();
    let body = LookupBody {
        armed: found.armed(),
        language: found.language(),
        announcement: found.announcement(),
        incidents: &incidents,
    };
    // Plain data with string keys: serialising it cannot fail.
    serde_json::to_vec(&body).unwrap_or_else(|_| NOT_ARMED_JSON.to_vec())
}

const NOT_ARMED_JSON: &[u8] =
    br#"{"armed":false,"language":null,"announcement":null,"incidents":[]}"#;

/// What the IVR lookup answers (documentation of the JSON written by `lookup_json`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct IvrLookupView {
    /// Whether there is something to announce.
    armed: bool,
    /// The language to speak it in (fi, sv, en).
    language: Option<String>,
    /// The text to speak, written for text-to-speech.
    announcement: Option<String>,
    /// The incidents behind it, most severe first.
    incidents: Vec<IvrIncidentView>,
}

/// One armed incident.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct IvrIncidentView {
    /// Its id.
    id: i64,
    /// water, power, ...
    kind: String,
    /// Estimated time of restoration.
    etr: Option<DateTime<Utc>>,
    /// declared, updated, restored.
    status: String,
}

/// Is there something to tell this caller? Always 200; an unknown or garbled number is "nothing
/// to announce". Needs an `ivr` (or `admin`) token.
#[utoipa::path(get, operation_id = "http_lookup", path = "/v1/ivr/lookup", tag = "ivr",
    params(("caller" = String, Query, description = "The caller's number: E.164 with or without +, 00 prefix, or national")),
    responses((status = 200, description = "OK", body = IvrLookupView),
        (status = 401, description = "No valid token", body = crate::api::ErrorBody), (status = 403, description = "The token's role may not do this", body = crate::api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn lookup(
    State(state): State<IvrState>,
    RawQuery(query): RawQuery,
) -> impl IntoResponse {
    let caller = query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "caller"));
    let json = state.with_caller(caller.as_deref().unwrap_or(""), lookup_json);
    ([(header::CONTENT_TYPE, "application/json")], json)
}

/// Twilio's voice webhook: TwiML that says the announcement (if any) and redirects to the main
/// menu. Needs `X-Twilio-Signature` (OUTAGECAST_SMS_AUTH_TOKEN and OUTAGECAST_PUBLIC_URL set) or
/// a webhook-role token (the Basic password of the webhook URL, or Bearer).
#[utoipa::path(post, operation_id = "http_twilio_voice", path = "/v1/ivr/twilio/voice", tag = "ivr",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's form: From, To, CallSid, ..."),
    responses((status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 401, description = "No signature can be checked and no token came (a Basic challenge)", body = crate::api::ErrorBody),
        (status = 403, description = "Bad X-Twilio-Signature, or a token whose role may not post webhooks", body = crate::api::ErrorBody)),
    security(("twilio_signature" = []), ("bearer" = []), ("basic" = [])))]
pub(crate) async fn twilio_voice(
    State(state): State<IvrState>,
    uri: Uri,
    bearer: Option<Extension<BearerAuthorized>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    if let Err(refused) = state
        .twilio
        .check(bearer.map(|b| b.0), &uri, &headers, &params)
    {
        return refused.into_response();
    }
    // Read by hand rather than with axum's `Form`: a missing or odd content type must still
    // get TwiML, not a 415.
    let from = params
        .iter()
        .find(|(name, _)| name == "From")
        .map_or("", |(_, value)| value.as_str());
    let xml = state.with_caller(from, |found| {
        voice_response(found, state.menu_url.as_deref())
    });
    ([(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}
