//! The REST API under `/v1`, described by an OpenAPI 3.1 document generated from the code
//! (utoipa) and served at `/openapi.json`.
//!
//! Every route needs a bearer token whose role allows the route's [`Action`]; see
//! [`outagecast_core::auth::Role::allows`] for the table. Mutations are written to the audit
//! log as `token:<name>`. Errors are [`error::ErrorBody`] JSON.

mod audit;
mod cap;
mod customers;
pub mod error;
mod heavy;
mod incidents;
mod progress;
mod reports;
mod schema;
mod zones;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use outagecast_core::auth::Action;
use outagecast_engine::Engine;
use serde::de::DeserializeOwned;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::auth::{Auth, Caller};
pub(crate) use cap::{CAP_MEDIA_TYPE, cap_document};
pub use error::{ApiError, ErrorBody};
pub use heavy::HeavySettings;

/// JSON request bodies are small; a customer upload is a file.
const MAX_JSON_BYTES: usize = 2 * 1024 * 1024;
/// The largest customer or zone file accepted in one request, by default
/// (`OUTAGECAST_IMPORT_MAX_BYTES`).
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// How the API behaves.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Customers an area may hold before a declaration needs `"confirm": N`.
    pub confirm_threshold: u64,
    /// How often the progress stream looks for changed counts.
    pub progress_interval: Duration,
    /// The largest customer or zone file one request may send (`OUTAGECAST_IMPORT_MAX_BYTES`);
    /// every other body may be at most 2 MB.
    pub import_max_bytes: usize,
    /// Limits on CPU-heavy requests (previews, declarations, updates, imports).
    pub heavy: HeavySettings,
    /// How incidents are published (CAP sender, public URL).
    pub publish: outagecast_engine::PublishSettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            confirm_threshold: outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD,
            progress_interval: Duration::from_millis(500),
            import_max_bytes: MAX_UPLOAD_BYTES,
            heavy: HeavySettings::default(),
            publish: outagecast_engine::PublishSettings::default(),
        }
    }
}

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) auth: Auth,
    pub(crate) settings: Arc<ApiSettings>,
    heavy: heavy::Heavy,
    /// The public feeds' rendered bodies.
    pub(crate) public: crate::public::PublicCache,
    /// The status lookups each client address may make.
    pub(crate) status_limit: crate::status::StatusLimiter,
}

impl ApiState {
    /// The API over `engine`, checking tokens with `auth`.
    pub fn new(engine: Arc<Engine>, auth: Auth, settings: ApiSettings) -> Self {
        let per_minute = settings.publish.status_per_minute;
        ApiState {
            engine,
            auth,
            heavy: heavy::Heavy::new(settings.heavy.clone()),
            settings: Arc::new(settings),
            public: crate::public::PublicCache::default(),
            status_limit: crate::status::StatusLimiter::per_minute(per_minute),
        }
    }

    /// The queue of large requests, as `/healthz` lists it.
    pub(crate) fn health(&self) -> Arc<dyn crate::HealthSource> {
        Arc::new(self.heavy.clone())
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
        (name = "reports", description = "Outage reports from customers, before anyone declares"),
        (name = "ivr", description = "What the phone system tells a caller"),
        (name = "public", description = "Open to everyone, no token: the open incidents as GeoJSON, Atom and CAP"),
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
        // The routes Twilio calls: its signature, or a webhook-role token as the password of
        // the webhook URL (Twilio cannot send a bearer header).
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Any user name; a webhook-role token as the password (https://twilio:TOKEN@host/path)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "twilio_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Twilio-Signature",
                "Twilio's HMAC-SHA1 over the URL and parameters, with OUTAGECAST_SMS_AUTH_TOKEN",
            ))),
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
        .routes(routes!(cap::apply))
        .routes(routes!(cap::export))
        .routes(routes!(progress::progress))
        .routes(routes!(customers::upload, customers::list))
        .routes(routes!(customers::get, customers::delete))
        .routes(routes!(zones::upload, zones::list))
        .routes(routes!(audit::list))
        .routes(routes!(reports::list))
}

/// Documents on every operation the answers the shared layers give, whatever the handler:
/// 401/403 from the authorisation middleware (secured operations), 400 from the path and
/// query readers (operations with parameters), 400/413 from the body readers and limits
/// (operations with a body, and 504 from the heavy-work deadline) and 503 from the request
/// timeout and the heavy-work queue (all). A handler's own entry for
/// the same status is kept.
fn document_shared_answers(doc: &mut OpenApiDoc) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = op.request_body.is_some();
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description).into());
            };
            if has_params || has_body {
                add("400", "A parameter or field is invalid");
            }
            if secured {
                add("401", "No valid token");
                add("403", "The token's role may not do this");
            }
            if has_body {
                add("413", "The body is larger than this route takes");
                add(
                    "504",
                    "A large request took longer than OUTAGECAST_HEAVY_DEADLINE",
                );
            }
            add(
                "503",
                "Not answered within the request timeout, or the server is busy",
            );
        }
    }
}

/// The documented routes (`/v1`, then the public ones, which take no token) and their
/// OpenAPI description with the shared answers.
fn parts() -> (axum::Router<ApiState>, axum::Router<ApiState>, OpenApiDoc) {
    let (router, mut doc) = documented().split_for_parts();
    let (public, public_doc) = crate::public::documented().split_for_parts();
    doc.merge(public_doc);
    document_shared_answers(&mut doc);
    (router, public, doc)
}

/// The `/v1` routes (without the IVR ones) and the public feeds, and their OpenAPI
/// description.
pub fn api(state: ApiState) -> (Router, OpenApiDoc) {
    let (router, public, doc) = parts();
    let router = router
        // Role and size are checked from the headers, before any handler reads the body.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorise,
        ))
        // `authorise` bounds each body (per route); axum's own 2 MB default would cut imports.
        .layer(DefaultBodyLimit::disable())
        // Open to everyone: outside `authorise`.
        .merge(public)
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

/// What the route `path` (as routed, `/v1/incidents/{id}`) does for `method`, for
/// [`Role::allows`](outagecast_core::auth::Role::allows); `None` for a route this table does not
/// know (which then stays closed: see [`authorise`]).
fn action_of(method: &Method, path: &str) -> Option<(Action, BodyKind)> {
    use Action::*;
    let read = method == Method::GET;
    let (action, body) = match path {
        "/v1/incidents" if read => (ReadIncidents, BodyKind::Json),
        "/v1/incidents" if method == Method::POST => (Declare, BodyKind::Json),
        "/v1/incidents/preview" if method == Method::POST => (ReadIncidents, BodyKind::Json),
        "/v1/incidents/{id}" if read => (ReadIncidents, BodyKind::Json),
        "/v1/incidents/{id}" if method == Method::PATCH => (Declare, BodyKind::Json),
        "/v1/incidents/{id}/restore" | "/v1/incidents/{id}/cancel" if method == Method::POST => {
            (Declare, BodyKind::Json)
        }
        "/v1/cap" if method == Method::POST => (Declare, BodyKind::Cap),
        "/v1/incidents/{id}/report" | "/v1/incidents/{id}/progress" | "/v1/incidents/{id}/cap"
            if read =>
        {
            (ReadIncidents, BodyKind::Json)
        }
        "/v1/customers" if read => (ReadCustomers, BodyKind::Json),
        "/v1/customers" if method == Method::POST => (ImportCustomers, BodyKind::Import),
        "/v1/customers/{account_id}" if read => (ReadCustomers, BodyKind::Json),
        "/v1/customers/{account_id}" if method == Method::DELETE => {
            (ImportCustomers, BodyKind::Json)
        }
        "/v1/zones" if read => (ReadIncidents, BodyKind::Json),
        "/v1/zones" if method == Method::POST => (ImportCustomers, BodyKind::Import),
        "/v1/audit" if read => (ReadAudit, BodyKind::Json),
        "/v1/reports" if read => (ReadIncidents, BodyKind::Json),
        _ => return None,
    };
    Some((action, body))
}

/// Which body limit a route has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// JSON (or none): [`MAX_JSON_BYTES`].
    Json,
    /// A customer or zone file: [`ApiSettings::import_max_bytes`].
    Import,
    /// A CAP alert: [`outagecast_ingest::cap::MAX_CAP_BYTES`], as on the command line.
    Cap,
}

/// Middleware on every `/v1` route: the caller's token and role from the headers alone, then
/// the route's body limit, before the handler reads a byte of the body, so that a 50 MB upload
/// from a token that may not import is refused while the client is still sending. The caller
/// is left in the request's extensions for the handler.
async fn authorise(
    State(state): State<ApiState>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", |m| m.as_str());
    let Some((action, body)) = action_of(request.method(), path) else {
        // A route added without a line in `action_of`: closed until it has one.
        return ApiError::internal(&format!("no role is set for {} {path}", request.method()))
            .into_response();
    };
    let caller = match state.auth.caller(request.headers()).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = caller.require(action) {
        return e.into_response();
    }
    request.extensions_mut().insert(caller);
    let (limit, setting) = match body {
        BodyKind::Json => (MAX_JSON_BYTES, None),
        BodyKind::Cap => (outagecast_ingest::cap::MAX_CAP_BYTES, None),
        BodyKind::Import => (
            state.settings.import_max_bytes,
            Some("OUTAGECAST_IMPORT_MAX_BYTES"),
        ),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit, setting).into_response();
    }
    // A body without a length (chunked) is cut at the limit as it arrives.
    let request = request.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
    let response = next.run(request).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && response.headers().get(header::CONTENT_TYPE)
            != Some(&HeaderValue::from_static("application/json"))
    {
        // axum's own answer to a body cut short is plain text: say it as every API error.
        return too_large(limit, setting).into_response();
    }
    response
}

/// 413 naming the limit (and the setting that raises it, for imports).
fn too_large(limit: usize, setting: Option<&str>) -> ApiError {
    let raise = setting
        .map(|s| format!("; {s} raises it for this server"))
        .unwrap_or_default();
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("body: this route takes at most {limit} bytes{raise}"),
    )
    .at("body")
}

/// The OpenAPI document alone (also what `docs/openapi.json` holds), with the IVR routes.
pub fn openapi() -> OpenApiDoc {
    parts().2
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

/// Runs a read on the blocking pool within the heavy-work limits (stopped if abandoned).
pub(crate) async fn run_heavy_read<T, F>(state: &ApiState, work: F) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    state.heavy.run(heavy::Finish::WhenAbandoned, work).await
}

/// The caller, allowed to do `action`.
pub(crate) fn allowed(caller: &Caller, action: Action) -> Result<String, ApiError> {
    caller.require(action).map(Caller::actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_has_a_role() {
        let doc = openapi();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            if path.starts_with("/v1/ivr/") || path.starts_with("/public/") || path == "/status" {
                continue; // Guarded in `http` (an ivr token, or Twilio's signature).
            }
            for (method, operation) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PATCH, &item.patch),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
            ] {
                if operation.is_some() {
                    assert!(action_of(&method, path).is_some(), "{method} {path}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 16, "{checked}");
        assert_eq!(
            action_of(&Method::POST, "/v1/customers"),
            Some((Action::ImportCustomers, BodyKind::Import))
        );
        assert_eq!(action_of(&Method::PUT, "/v1/customers"), None);
    }
}
