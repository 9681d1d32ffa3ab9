//! Every API error is JSON `{code, message, field}` with the status code that fits.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outagecast_core::CoreError;
use outagecast_engine::EngineError;
use outagecast_ingest::IngestError;
use outagecast_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable word for programs: `invalid`, `refused`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `too_large`, `busy`, `timeout`, `internal`.
    pub code: &'static str,
    /// For people: what is wrong and how to fix it.
    pub message: String,
    /// The request field at fault (a JSON path such as `area.coordinates`), when one is.
    pub field: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
                field: None,
            },
            retry_after: None,
        }
    }

    /// 400: `field` is invalid.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message).at(field)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401: no valid token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the token's role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500, with the cause logged and not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// The same error, naming `field`.
    #[must_use]
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// The same error, with `Retry-After: secs`.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.body.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match &e {
            CoreError::Invalid { field, problem } => {
                // The core names command-line flags (`--kind`); the API's fields are JSON keys.
                let field = match field.strip_prefix("--") {
                    Some("expires") => "expires_at".to_string(),
                    Some(flag) => flag.replace('-', "_"),
                    None => field.clone(),
                };
                let message = format!("{field}: {problem}");
                ApiError::invalid(field, message)
            }
            CoreError::Transition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rule(core) => core.into(),
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            other => {
                let text = other.to_string();
                // A conflict the store names (a duplicate token name) is the caller's to fix.
                if let StoreError::Conflict { field, .. } = &other {
                    return ApiError::new(StatusCode::CONFLICT, "conflict", text).at(*field);
                }
                ApiError::internal(&text)
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::Rule(c) => c.into(),
            EngineError::Ingest(e) => e.into(),
            EngineError::Invalid { field, message } => ApiError::invalid(field, message),
            EngineError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message).at(field)
            }
            // The API geocodes offline; a geocoding service failing is the server's problem.
            EngineError::Geocoder(e) => ApiError::internal(&e),
            EngineError::Refused { refusal, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message)
                    .at(refusal.field())
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let field = e.field().to_string();
        if matches!(e, IngestError::TooLarge { .. }) {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
                .at(field);
        }
        ApiError::invalid(field, e.to_string())
    }
}
