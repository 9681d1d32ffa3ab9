//! The REST API under `/v1`, described by an OpenAPI 3.1 document generated from the code
//! (utoipa) and served at `/openapi.json`.
//!
//! Every route needs a bearer token whose role allows the route's [`Action`]; see
//! [`outagecast_core::auth::Role::allows`] for the table. Mutations are written to the audit
//! log as `token:<name>`. Errors are [`error::ErrorBody`] JSON.

mod audit;
mod customers;
pub mod error;
mod heavy;
mod incidents;
mod progress;
mod schema;
mod zones;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use outagecast_core::auth::Action;
use outagecast_engine::Engine;
use serde::de::DeserializeOwned;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::auth::{Auth, Caller};
pub use error::{ApiError, ErrorBody};
pub use heavy::HeavySettings;

/// JSON request bodies are small; a customer upload is a file.
const MAX_JSON_BYTES: usize = 2 * 1024 * 1024;
/// The largest customer or zone file accepted in one request.
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// How the API behaves.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Customers an area may hold before a declaration needs `"confirm": N`.
    pub confirm_threshold: u64,
    /// How often the progress stream looks for changed counts.
    pub progress_interval: Duration,
    /// Limits on CPU-heavy requests (previews, declarations, updates, imports).
    pub heavy: HeavySettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            confirm_threshold: outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD,
            progress_interval: Duration::from_millis(500),
            heavy: HeavySettings::default(),
        }
    }
}

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    engine: Arc<Engine>,
    pub(crate) auth: Auth,
    settings: Arc<ApiSettings>,
    heavy: heavy::Heavy,
}

impl ApiState {
    /// The API over `engine`, checking tokens with `auth`.
    pub fn new(engine: Arc<Engine>, auth: Auth, settings: ApiSettings) -> Self {
        ApiState {
            engine,
            auth,
            heavy: heavy::Heavy::new(settings.heavy.clone()),
            settings: Arc::new(settings),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "outagecast",
        description = "Tell utility customers about an outage before they call: declare an area, \
                       and every affected customer is told by SMS or email and recognised by the IVR.",
        license(name = "Apache-2.0")
    ),
    paths(crate::http::lookup, crate::http::twilio_voice),
    modifiers(&BearerAuth),
    tags(
        (name = "incidents", description = "Declare, follow and close incidents"),
        (name = "customers", description = "The customer register"),
        (name = "zones", description = "Named areas (district metered areas, feeders)"),
        (name = "audit", description = "Who did what, when"),
        (name = "ivr", description = "What the phone system tells a caller"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `outagecast token create --role ROLE --name NAME`",
                    ))
                    .build(),
            ),
        );
    }
}

fn documented() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(incidents::declare, incidents::list))
        .routes(routes!(incidents::preview))
        .routes(routes!(incidents::get, incidents::update))
        .routes(routes!(incidents::restore))
        .routes(routes!(incidents::cancel))
        .routes(routes!(incidents::report))
        .routes(routes!(progress::progress))
        .routes(routes!(customers::upload, customers::list))
        .routes(routes!(customers::get, customers::delete))
        .routes(routes!(zones::upload, zones::list))
        .routes(routes!(audit::list))
}

/// The `/v1` routes (without the IVR ones) and their OpenAPI description.
pub fn api(state: ApiState) -> (Router, OpenApiDoc) {
    let (router, doc) = documented().split_for_parts();
    let router = router
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state);
    (router, doc)
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {}; /openapi.json lists the API",
        uri.path()
    ))
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; /openapi.json lists its methods",
            uri.path()
        ),
    )
}

/// The OpenAPI document alone (also what `docs/openapi.json` holds), with the IVR routes.
pub fn openapi() -> OpenApiDoc {
    let (_, doc) = documented().split_for_parts();
    doc
}

/// Reads a JSON body into `T`; a wrong field is named by its path (`area.coordinates[0]`).
pub(crate) fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.len() > MAX_JSON_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a JSON body may be at most {MAX_JSON_BYTES} bytes"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(field.clone(), format!("{field}: {inner}"))
    })
}

/// A query string read into `T`; a bad parameter is a JSON error naming it (axum's own
/// `Query` answers plain text).
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::invalid("query", format!("query: {}", e.body_text())))
    }
}

/// The caller, allowed to do `action`.
pub(crate) fn allowed(caller: &Caller, action: Action) -> Result<String, ApiError> {
    caller.require(action).map(Caller::actor)
}
