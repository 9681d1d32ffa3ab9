//! Bearer tokens: who is calling, and whether their role may do what they ask.
//!
//! Only a token's SHA-256 is stored. Verified tokens are cached for a few seconds so the IVR
//! lookup (tens of thousands of requests a second) does not read the store per request; a
//! revoked token therefore stops working within [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use outagecast_core::auth::{Action, Role, TokenSecret};
use outagecast_store::Store;

use super::BearerAuthorized;
use crate::api::ApiState;
use crate::api::error::ApiError;

/// How long a verified token (or "no tokens exist") is trusted without asking the store.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Checks bearer tokens against the store.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Default)]
struct Cache {
    tokens: HashMap<String, (Caller, Instant)>,
    any: Option<(bool, Instant)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// A caller whose token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }

    /// Refuses with 403 unless the role allows `action`.
    pub fn require(&self, action: Action) -> Result<&Self, ApiError> {
        if self.role.allows(action) {
            Ok(self)
        } else {
            Err(ApiError::forbidden(format!(
                "the token {:?} has the role {}, which may not {}; use a token with a role that may",
                self.name,
                self.role.as_str(),
                action.as_str()
            )))
        }
    }
}

impl Auth {
    /// Checks tokens against `store`.
    pub fn new(store: Store) -> Self {
        Auth {
            store,
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The caller named by the `Authorization: Bearer` header; 401 when it is missing, malformed,
    /// unknown or revoked.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "no token: send `Authorization: Bearer <token>`; create one with `outagecast token create --role operator --name NAME`",
            ));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let Some(raw) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
        else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        let Ok(secret) = TokenSecret::parse(raw.trim()) else {
            return Err(ApiError::unauthorized(
                "the bearer token is not an outagecast token (they start with oc_)",
            ));
        };
        let hash = secret.hash();
        let now = Instant::now();
        if let Some((caller, at)) = self.cache().tokens.get(&hash)
            && now.duration_since(*at) < CACHE_TTL
        {
            return Ok(caller.clone());
        }
        let found = self.store.authenticate(&secret, Utc::now()).await?;
        let Some(info) = found else {
            self.cache().tokens.remove(&hash);
            return Err(ApiError::unauthorized(
                "the bearer token is unknown or revoked",
            ));
        };
        let caller = Caller {
            name: info.name,
            role: info.role,
        };
        let mut cache = self.cache();
        if cache.tokens.len() > 10_000 {
            cache.tokens.clear();
        }
        cache.tokens.insert(hash, (caller.clone(), now));
        Ok(caller)
    }

    /// Whether any token exists. The IVR routes are open until the first token is created.
    pub async fn tokens_configured(&self) -> Result<bool, ApiError> {
        let now = Instant::now();
        if let Some((any, at)) = self.cache().any
            && now.duration_since(at) < CACHE_TTL
        {
            return Ok(any);
        }
        let any = self.store.token_count().await? > 0;
        self.cache().any = Some((any, now));
        Ok(any)
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        state.auth.caller(&parts.headers).await
    }
}

/// Middleware for the IVR lookup: once any token exists, a token whose role may look up
/// callers (`ivr`, `admin`) is needed.
pub async fn ivr_guard(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    match auth.tokens_configured().await {
        Ok(false) => next.run(request).await,
        Ok(true) => match auth.caller(request.headers()).await {
            Ok(caller) => match caller.require(Action::IvrLookup) {
                Ok(_) => next.run(request).await,
                Err(e) => e.into_response(),
            },
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Middleware for the provider webhooks: a request that carries a bearer token must carry one
/// whose role may post webhooks (`webhook`, `admin`), and is then let through without a Twilio
/// signature; a request without one is left to the signature check.
pub async fn webhook_bearer(
    State(auth): State<Auth>,
    mut request: Request,
    next: Next,
) -> Response {
    if !request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return next.run(request).await;
    }
    match auth.caller(request.headers()).await {
        Ok(caller) => match caller.require(Action::Webhook) {
            Ok(_) => {
                request.extensions_mut().insert(BearerAuthorized);
                next.run(request).await
            }
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}
