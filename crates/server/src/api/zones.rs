//! `/v1/zones`: import named areas from GeoJSON, list them with their customer counts.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use outagecast_core::auth::Action;
use outagecast_engine::ZonesFile;

use super::heavy::Finish;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::{ApiQuery, ApiState, Caller, allowed};

/// Which property names a zone.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneUploadQuery {
    /// The feature property that holds each zone's name (default `name`).
    pub name_property: Option<String>,
}

/// What a zone import wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneUploadView {
    /// Zones in the file.
    pub imported: usize,
    /// New zones.
    pub inserted: u64,
    /// Zones of the same name replaced.
    pub updated: u64,
}

/// Import zones: a GeoJSON FeatureCollection with one Polygon or MultiPolygon per zone.
#[utoipa::path(post, operation_id = "zones_upload", path = "/v1/zones", tag = "zones", params(ZoneUploadQuery),
    request_body(content((Object = "application/geo+json"))),
    responses((status = 200, description = "OK", body = ZoneUploadView), (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ZoneUploadQuery>,
    body: Bytes,
) -> Result<Json<ZoneUploadView>, ApiError> {
    let actor = allowed(&caller, Action::ImportCustomers)?;
    let engine = state.engine.clone();
    // Parsing validates every zone's outline: CPU work, on the blocking pool.
    let imported = state
        .heavy
        .run(Finish::ToTheEnd, async move {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::invalid("body", "body: GeoJSON must be UTF-8"))?;
            let file = ZonesFile {
                text,
                field: "body",
                name_property: q.name_property.as_deref().unwrap_or("name"),
            };
            Ok(engine.import_zones(&actor, file, "api upload").await?)
        })
        .await?;
    Ok(Json(ZoneUploadView {
        imported: imported.imported,
        inserted: imported.inserted,
        updated: imported.updated,
    }))
}

/// A zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneView {
    /// Its name.
    pub name: String,
    /// Customers inside it now.
    pub customers: usize,
    /// Its area, as GeoJSON.
    #[schema(value_type = Object)]
    pub area: Area,
    /// The feature's properties as imported.
    #[schema(value_type = Object)]
    pub properties: serde_json::Value,
    /// Where it came from.
    pub source: String,
    /// When it was imported.
    pub imported_at: DateTime<Utc>,
}

/// The zones.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneList {
    /// By name.
    pub zones: Vec<ZoneView>,
}

/// List zones with the customers each holds.
#[utoipa::path(get, operation_id = "zones_list", path = "/v1/zones", tag = "zones",
    responses((status = 200, description = "OK", body = ZoneList), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<ZoneList>, ApiError> {
    allowed(&caller, Action::ReadIncidents)?;
    Ok(Json(ZoneList {
        zones: state
            .engine
            .zones()
            .await?
            .into_iter()
            .map(|z| ZoneView {
                name: z.name,
                customers: z.customers,
                area: z.area,
                properties: z.properties,
                source: z.source,
                imported_at: z.imported_at,
            })
            .collect(),
    }))
}
