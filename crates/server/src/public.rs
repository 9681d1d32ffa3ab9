//! The public feeds, without a token: `GET /public/incidents.geojson` (the open incidents'
//! areas), `GET /public/cap.atom` (an Atom feed, one entry per open incident linking to its
//! CAP) and `GET /public/incidents/{file}` (`INC-42.cap`: the incident's CAP alert).
//!
//! What they carry is the incident alone: area, kind, cause, severity, status, times, ETR and
//! the operator's reference. Never a customer: no account id, phone, email or address (the
//! CAP's `info` languages are the only thing read from the customers).
//!
//! A news site or a CDN polls these, so a poll costs one read of the open incidents: each
//! body is rendered once per state of what it shows (the open incidents' ids and last
//! changes, and for a CAP the customers' generation) and kept; `ETag` is that state's hash,
//! `If-None-Match` with it answers 304, `Last-Modified` is when that body was first rendered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use outagecast_core::incident::IncidentId;
use outagecast_engine::views::IncidentView;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, CAP_MEDIA_TYPE, cap_document};

/// How long a receiver may keep a body without asking again.
const CACHE_CONTROL: &str = "public, max-age=30";

/// A body rendered for one state.
#[derive(Debug, Clone)]
struct Rendered {
    etag: String,
    body: Arc<String>,
    rendered_at: DateTime<Utc>,
}

/// The bodies last rendered, by feed (`geojson`, `atom`, `cap:42`). Bounded: one entry per
/// feed and per open incident (entries of closed incidents are dropped when a feed renders).
#[derive(Debug, Default, Clone)]
pub(crate) struct PublicCache(Arc<Mutex<HashMap<String, Rendered>>>);

impl PublicCache {
    fn get(&self, feed: &str, etag: &str) -> Option<Rendered> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(feed).filter(|r| r.etag == etag).cloned()
    }

    fn put(&self, feed: &str, r: Rendered) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(feed.to_string(), r);
    }

    /// Forgets the CAP bodies of incidents no longer open.
    fn keep_caps(&self, open: &[IncidentView]) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|k, _| match k.strip_prefix("cap:") {
            Some(id) => open.iter().any(|v| v.head.id.to_string() == id),
            None => true,
        });
    }
}

/// The strong validator of a state: a hash of its text, not a secret (SHA-1 is plenty for
/// telling states apart).
fn etag_of(state: &str) -> String {
    let digest = Sha1::digest(state.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The body for `feed` in `state`, rendered by `render` only when the state changed; 304 when
/// the client has it.
async fn cached<F, Fut>(
    cache: &PublicCache,
    headers: &HeaderMap,
    feed: &str,
    state: &str,
    content_type: &'static str,
    render: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<String, ApiError>>,
{
    let etag = etag_of(state);
    let rendered = match cache.get(feed, &etag) {
        Some(r) => r,
        None => {
            let r = Rendered {
                etag: etag.clone(),
                body: Arc::new(render().await?),
                rendered_at: Utc::now(),
            };
            cache.put(feed, r.clone());
            r
        }
    };
    let mut response = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type)],
            rendered.body.as_str().to_string(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rendered.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(
        &rendered
            .rendered_at
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    ) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}

/// The incidents the public sees: open and not expired, oldest first.
async fn open_incidents(state: &ApiState) -> Result<Vec<IncidentView>, ApiError> {
    let now = Utc::now();
    let mut open: Vec<IncidentView> = state
        .engine
        .incidents(false)
        .await?
        .into_iter()
        .filter(|v| v.head.status.is_active() && v.head.expires_at.is_none_or(|e| e > now))
        .collect();
    open.sort_by_key(|v| v.head.id);
    state.public.keep_caps(&open);
    Ok(open)
}

/// The state a feed of `open` shows: ids and last changes.
fn state_of(open: &[IncidentView]) -> String {
    open.iter()
        .map(|v| format!("{}@{}", v.head.id, v.updated_at.to_rfc3339()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// RFC 7946 geometries of an area: polygons as they are; a circle as its centre and a
/// corridor as its line, with the size in the feature's properties (GeoJSON has no circle).
fn geometries(area: &Area, out: &mut Vec<(Value, Value)>) {
    let positions = |line: &geo::LineString<f64>| -> Vec<[f64; 2]> {
        line.0.iter().map(|c| [c.x, c.y]).collect()
    };
    match area {
        Area::Circle(c) => out.push((
            json!({"type": "Point", "coordinates": [c.center().lon(), c.center().lat()]}),
            json!({"radius_m": c.radius_m()}),
        )),
        Area::Polygon(p) => {
            let polygons: Vec<Vec<Vec<[f64; 2]>>> = p
                .shape()
                .0
                .iter()
                .map(|poly| {
                    std::iter::once(poly.exterior())
                        .chain(poly.interiors())
                        .map(positions)
                        .collect()
                })
                .collect();
            let geometry = match polygons.as_slice() {
                [one] => json!({"type": "Polygon", "coordinates": one}),
                _ => json!({"type": "MultiPolygon", "coordinates": polygons}),
            };
            out.push((geometry, json!({})));
        }
        Area::Corridor(c) => out.push((
            json!({"type": "LineString", "coordinates": positions(c.line())}),
            json!({"buffer_m": c.buffer_m()}),
        )),
        Area::Union(u) => {
            for part in u.parts() {
                geometries(part, out);
            }
        }
    }
}

fn cap_path(label: &str) -> String {
    format!("/public/incidents/{label}.cap")
}

/// The open incidents as a FeatureCollection (one feature per part of an area).
fn geojson(open: &[IncidentView]) -> String {
    let mut features = Vec::new();
    for v in open {
        let h = &v.head;
        let mut parts = Vec::new();
        geometries(&h.area, &mut parts);
        for (geometry, size) in parts {
            let mut properties = json!({
                "id": h.label, "kind": h.kind, "cause": h.cause, "severity": h.severity,
                "status": h.status, "declared_at": h.declared_at, "updated_at": v.updated_at,
                "etr": h.etr, "reference": h.reference, "cap": cap_path(&h.label),
            });
            if let (Some(p), Some(s)) = (properties.as_object_mut(), size.as_object()) {
                p.extend(s.clone());
            }
            features
                .push(json!({"type": "Feature", "geometry": geometry, "properties": properties}));
        }
    }
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

/// The open incidents as an Atom feed (RFC 4287), each entry linking to its CAP.
fn atom(open: &[IncidentView], base: &str, author: &str) -> std::io::Result<String> {
    let mut w = Writer::new_with_indent(Vec::with_capacity(2048), b' ', 2);
    let text = |w: &mut Writer<Vec<u8>>, name: &str, value: &str| -> std::io::Result<()> {
        w.write_event(Event::Start(BytesStart::new(name)))?;
        w.write_event(Event::Text(BytesText::new(value)))?;
        w.write_event(Event::End(BytesEnd::new(name)))
    };
    let link = |w: &mut Writer<Vec<u8>>, rel: &str, kind: &str, href: &str| {
        let mut l = BytesStart::new("link");
        l.push_attribute(("rel", rel));
        l.push_attribute(("type", kind));
        l.push_attribute(("href", href));
        w.write_event(Event::Empty(l))
    };
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut feed = BytesStart::new("feed");
    feed.push_attribute(("xmlns", "http://www.w3.org/2005/Atom"));
    w.write_event(Event::Start(feed))?;
    text(&mut w, "id", &format!("{base}/public/cap.atom"))?;
    text(&mut w, "title", "Current outages")?;
    let updated = open
        .iter()
        .map(|v| v.updated_at)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    text(&mut w, "updated", &updated.to_rfc3339())?;
    w.write_event(Event::Start(BytesStart::new("author")))?;
    text(&mut w, "name", author)?;
    w.write_event(Event::End(BytesEnd::new("author")))?;
    link(
        &mut w,
        "self",
        "application/atom+xml",
        &format!("{base}/public/cap.atom"),
    )?;
    for v in open {
        let h = &v.head;
        let cap = format!("{base}{}", cap_path(&h.label));
        w.write_event(Event::Start(BytesStart::new("entry")))?;
        text(&mut w, "id", &cap)?;
        text(
            &mut w,
            "title",
            &format!("{} ({}): {}", h.label, h.kind, h.cause),
        )?;
        text(&mut w, "updated", &v.updated_at.to_rfc3339())?;
        text(&mut w, "published", &h.declared_at.to_rfc3339())?;
        let etr = h
            .etr
            .map(|t| format!("; expected back by {}", t.to_rfc3339()))
            .unwrap_or_default();
        text(
            &mut w,
            "summary",
            &format!(
                "{} {} outage, {}: {}{etr}",
                h.severity, h.kind, h.status, h.cause
            ),
        )?;
        link(&mut w, "alternate", CAP_MEDIA_TYPE, &cap)?;
        w.write_event(Event::End(BytesEnd::new("entry")))?;
    }
    w.write_event(Event::End(BytesEnd::new("feed")))?;
    String::from_utf8(w.into_inner()).map_err(std::io::Error::other)
}

/// The open incidents' areas as GeoJSON: no token, no customer data.
#[utoipa::path(get, operation_id = "public_geojson", path = "/public/incidents.geojson", tag = "public",
    responses(
        (status = 200, description = "A FeatureCollection: one feature per part of each open incident's area", body = Object, content_type = "application/geo+json"),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
    ))]
pub(crate) async fn incidents_geojson(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let open = open_incidents(&state).await?;
    let key = state_of(&open);
    cached(
        &state.public,
        &headers,
        "geojson",
        &key,
        "application/geo+json",
        || async { Ok(geojson(&open)) },
    )
    .await
}

/// An Atom feed of the open incidents, one entry per incident linking to its CAP alert.
#[utoipa::path(get, operation_id = "public_atom", path = "/public/cap.atom", tag = "public",
    responses(
        (status = 200, description = "The Atom feed", body = String, content_type = "application/atom+xml"),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
    ))]
pub(crate) async fn cap_atom(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let open = open_incidents(&state).await?;
    let key = state_of(&open);
    let publish = &state.settings.publish;
    let base = publish.public_url.clone().unwrap_or_default();
    cached(
        &state.public,
        &headers,
        "atom",
        &key,
        "application/atom+xml",
        || async { atom(&open, &base, &publish.cap_sender).map_err(|e| ApiError::internal(&e)) },
    )
    .await
}

/// An open incident's CAP 1.2 alert (`INC-42.cap`).
#[utoipa::path(get, operation_id = "public_cap", path = "/public/incidents/{file}", tag = "public",
    params(("file" = String, Path, description = "The incident and .cap: INC-42.cap")),
    responses(
        (status = 200, description = "The CAP 1.2 alert", body = String, content_type = "application/cap+xml"),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 404, description = "No open incident by that name", body = ErrorBody),
    ))]
pub(crate) async fn incident_cap(
    State(state): State<ApiState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "{file}: no open incident by that name; /public/cap.atom lists them"
        ))
        .at("file")
    };
    let id = file
        .strip_suffix(".cap")
        .and_then(|id| IncidentId::parse(id).ok())
        .ok_or_else(unknown)?;
    let open = open_incidents(&state).await?;
    let Some(v) = open.iter().find(|v| v.head.id == id.0) else {
        return Err(unknown());
    };
    // The languages come from the customers: a new import can change them.
    let generation = state
        .engine
        .store()
        .customers_generation()
        .await
        .map_err(ApiError::from)?;
    let key = format!(
        "{}@{} customers@{generation}",
        id.0,
        v.updated_at.to_rfc3339()
    );
    let feed = format!("cap:{}", id.0);
    cached(
        &state.public,
        &headers,
        &feed,
        &key,
        "application/cap+xml; charset=utf-8",
        || cap_document(&state, id),
    )
    .await
}

/// The public routes and their OpenAPI description.
pub(crate) fn documented() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(incidents_geojson))
        .routes(routes!(cap_atom))
        .routes(routes!(incident_cap))
        .routes(routes!(crate::status::status))
        .routes(routes!(crate::status::page))
}
