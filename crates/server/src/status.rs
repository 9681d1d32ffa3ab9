//! "Is my address affected?" for the public, without a token: `GET /public/status?lon=&lat=`
//! or `?address=` (JSON) and the `/status` page (HTML in fi/sv/en, a plain GET form answered
//! on the server, so it works without JavaScript; styles inline, nothing from elsewhere).
//!
//! The answer uses the selection's own rule (`Area::contains`, boundary inside) on the open
//! incidents, and says nothing about customers: not whether anyone is registered at the
//! address, nor which address the geocoder matched. Each client address may ask
//! `OUTAGECAST_STATUS_PER_MINUTE` times a minute (governor); beyond that 429 with
//! `Retry-After`. The client address is the TCP peer (a proxy in front makes every client
//! one).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use outagecast_core::area::LonLat;
use outagecast_core::contact::Language;
use outagecast_core::incident::{IncidentKind, IncidentStatus, Severity};
use outagecast_core::message::{Locale, kind_noun, written_time};
use outagecast_engine::views::IncidentView;
use outagecast_engine::{Spelling, StatusAnswer};
use quick_xml::escape::escape;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiQuery, ApiState, run_heavy_read};

/// The per-client limit on lookups.
#[derive(Clone)]
pub(crate) struct StatusLimiter(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl std::fmt::Debug for StatusLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusLimiter")
    }
}

impl StatusLimiter {
    pub(crate) fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        StatusLimiter(Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
    }

    /// Ok, or 429 saying when to come back.
    fn check(&self, peer: Option<SocketAddr>) -> Result<(), ApiError> {
        // Forget clients whose allowance is full again, so the table stays small.
        if self.0.len() > 10_000 {
            self.0.retain_recent();
        }
        let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
        match self.0.check_key(&ip) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "busy",
                    format!(
                        "too many status lookups from this address; try again in {} s",
                        wait.as_secs().max(1)
                    ),
                )
                .retry_after(wait.as_secs().max(1)))
            }
        }
    }
}

/// Where to look: a point or an address.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Longitude (WGS84), with `lat`.
    pub lon: Option<f64>,
    /// Latitude (WGS84), with `lon`.
    pub lat: Option<f64>,
    /// A street address, instead of `lon`/`lat` (found offline).
    pub address: Option<String>,
}

/// An open incident, as the public sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicIncident {
    /// `INC-<id>`.
    pub id: String,
    /// water, power, gas, heating, telecom or sewer.
    #[schema(value_type = String)]
    pub kind: IncidentKind,
    /// What happened.
    pub cause: String,
    /// minor, moderate, severe or extreme.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// declared or updated.
    #[schema(value_type = String)]
    pub status: IncidentStatus,
    /// Estimated time of restoration.
    pub etr: Option<DateTime<Utc>>,
    /// Declared.
    pub declared_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&IncidentView> for PublicIncident {
    fn from(v: &IncidentView) -> Self {
        PublicIncident {
            id: v.head.label.clone(),
            kind: v.head.kind,
            cause: v.head.cause.clone(),
            severity: v.head.severity,
            status: v.head.status,
            etr: v.head.etr,
            declared_at: v.head.declared_at,
            updated_at: v.updated_at,
        }
    }
}

/// Whether the place is in an open incident's area.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// Inside at least one open incident's area.
    pub affected: bool,
    /// Those incidents, most severe first.
    pub incidents: Vec<PublicIncident>,
}

/// The public's words for a field (the API's, except that this route takes lon/lat).
const STATUS_SPELLING: Spelling = Spelling::API;

async fn answer(state: &ApiState, q: &StatusQuery) -> Result<StatusAnswer, ApiError> {
    let now = Utc::now();
    match (q.lon, q.lat, q.address.as_deref()) {
        (Some(lon), Some(lat), None) => {
            let point = LonLat::parse(lon, lat)
                .map_err(|e| e.renamed("longitude", "lon").renamed("latitude", "lat"))?;
            Ok(state.engine.status_at(point, now).await?)
        }
        (None, None, Some(address)) if !address.trim().is_empty() => {
            let engine = state.engine.clone();
            let address = address.to_string();
            // Geocoding builds the gazetteer: CPU work, on the blocking pool.
            run_heavy_read(state, async move {
                Ok(engine
                    .status_of_address(&address, &STATUS_SPELLING, now)
                    .await?)
            })
            .await
        }
        _ => Err(ApiError::invalid(
            "address",
            "give lon and lat (WGS84 degrees), or address; not both",
        )),
    }
}

/// Is this place affected by an outage? No token; rate limited per client address.
#[utoipa::path(get, operation_id = "public_status", path = "/public/status", tag = "public",
    params(StatusQuery),
    responses(
        (status = 200, description = "The open incidents whose area holds the place", body = StatusView),
        (status = 400, description = "No place, or an invalid one", body = ErrorBody),
        (status = 429, description = "Too many lookups from this address (Retry-After)", body = ErrorBody),
    ))]
pub(crate) async fn status(
    State(state): State<ApiState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<StatusView>, ApiError> {
    state.status_limit.check(peer.map(|p| (p.0).0))?;
    let found = answer(&state, &q).await?;
    Ok(Json(StatusView {
        affected: !found.incidents.is_empty(),
        incidents: found.incidents.iter().map(PublicIncident::from).collect(),
    }))
}

/// The page's query: an address and a language.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The address to look up.
    pub address: Option<String>,
    /// fi, sv or en (default: the browser's Accept-Language, else fi).
    pub lang: Option<String>,
}

struct Words {
    title: &'static str,
    label: &'static str,
    button: &'static str,
    none: &'static str,
    affected: &'static str,
    etr: &'static str,
    no_etr: &'static str,
}

fn words(lang: Language) -> Words {
    match lang {
        Language::Fi => Words {
            title: "Onko osoitteessani katko?",
            label: "Osoite",
            button: "Tarkista",
            none: "Osoitteessasi ei ole tiedossa olevaa katkoa.",
            affected: "Osoitteessasi on katko",
            etr: "Arvioitu korjausaika",
            no_etr: "Korjausaika ei ole vielä tiedossa.",
        },
        Language::Sv => Words {
            title: "Har min adress ett avbrott?",
            label: "Adress",
            button: "Kontrollera",
            none: "Inget känt avbrott på din adress.",
            affected: "Din adress har ett avbrott",
            etr: "Beräknad tid för åtgärd",
            no_etr: "Tiden för åtgärd är ännu inte känd.",
        },
        Language::En => Words {
            title: "Is my address affected?",
            label: "Address",
            button: "Check",
            none: "No known outage at your address.",
            affected: "Your address is affected",
            etr: "Expected back",
            no_etr: "No estimate yet.",
        },
    }
}

fn page_language(q: &PageQuery, headers: &HeaderMap) -> Language {
    let pick = |t: &str| Language::parse(t.trim().get(..2).unwrap_or_default()).ok();
    q.lang
        .as_deref()
        .and_then(pick)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').find_map(pick))
        })
        .unwrap_or(Language::Fi)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:36rem;padding:1rem;line-height:1.4}\
input,button{font-size:1.1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}\
.out{border-left:.4rem solid #c00;padding:.5rem 1rem;margin:1rem 0}.ok{border-left:.4rem solid #080;padding:.5rem 1rem}\
.err{color:#a00}nav a{margin-right:1rem}";

/// The status page: a form, and the answer for the address given.
#[utoipa::path(get, operation_id = "status_page", path = "/status", tag = "public",
    params(PageQuery),
    responses(
        (status = 200, description = "The page (HTML)", body = String, content_type = "text/html"),
        (status = 400, description = "The page, saying what is wrong with the address or a parameter", body = String, content_type = "text/html"),
        (status = 429, description = "Too many lookups from this address", body = String, content_type = "text/html"),
        (status = 503, description = "The page, saying the server is busy", body = String, content_type = "text/html"),
    ))]
pub(crate) async fn page(
    State(state): State<ApiState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Response {
    let lang = page_language(&q, &headers);
    let w = words(lang);
    let address = q.address.as_deref().unwrap_or_default().trim().to_string();
    let mut status = StatusCode::OK;
    let result = if address.is_empty() {
        String::new()
    } else {
        let lookup = StatusQuery {
            lon: None,
            lat: None,
            address: Some(address.clone()),
        };
        let outcome = match state.status_limit.check(peer.map(|p| (p.0).0)) {
            Ok(()) => answer(&state, &lookup).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(found) if found.incidents.is_empty() => {
                format!("<p class=\"ok\" id=\"answer\">{}</p>", w.none)
            }
            Ok(found) => {
                let locale = Locale {
                    zone: state.engine.settings().timezone,
                    now: Utc::now(),
                };
                let items: String = found
                    .incidents
                    .iter()
                    .map(|v| {
                        let etr = v.head.etr.map_or(w.no_etr.to_string(), |t| {
                            format!("{}: {}", w.etr, written_time(t, lang, locale))
                        });
                        let mut noun = kind_noun(v.head.kind, lang).to_string();
                        if let Some(first) = noun.get_mut(0..1) {
                            first.make_ascii_uppercase();
                        }
                        format!(
                            "<div class=\"out\"><h2>{}</h2><p>{}</p><p>{}</p></div>",
                            escape(&noun),
                            escape(&v.head.cause),
                            escape(&etr)
                        )
                    })
                    .collect();
                format!(
                    "<section id=\"answer\"><p><strong>{}</strong></p>{items}</section>",
                    w.affected
                )
            }
            Err(e) => {
                // The page's own answers: too many, busy, or (anything else) the input.
                status = match e.status() {
                    s @ (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) => s,
                    s if s.is_server_error() => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                format!("<p class=\"err\" id=\"answer\">{}</p>", escape(e.message()))
            }
        }
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
<style>{STYLE}</style></head><body>\
<nav><a href=\"/status?lang=fi\" hreflang=\"fi\">Suomeksi</a><a href=\"/status?lang=sv\" hreflang=\"sv\">På svenska</a><a href=\"/status?lang=en\" hreflang=\"en\">In English</a></nav>\
<h1>{title}</h1><form method=\"get\" action=\"/status\"><input type=\"hidden\" name=\"lang\" value=\"{code}\">\
<label for=\"address\">{label}</label><input id=\"address\" name=\"address\" autocomplete=\"street-address\" value=\"{value}\" required>\
<button type=\"submit\">{button}</button></form>{result}</body></html>",
        code = lang.code(),
        title = w.title,
        label = w.label,
        button = w.button,
        value = escape(&address),
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Nothing from elsewhere, no scripts; the form posts only here.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
