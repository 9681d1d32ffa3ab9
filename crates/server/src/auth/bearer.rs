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

/// How long a verified token is trusted without asking the store.
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
        self.caller_by(headers, Credentials::Bearer).await
    }

    /// The caller named by the `Authorization` header in one of the forms `accepted`; 401 when
    /// it is missing, malformed, unknown or revoked.
    pub async fn caller_by(
        &self,
        headers: &HeaderMap,
        accepted: Credentials,
    ) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "no token: send `Authorization: Bearer <token>`; create one with `outagecast token create --role operator --name NAME`",
            ));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let raw = match (scheme(text, "Bearer"), scheme(text, "Basic"), accepted) {
            (Some(raw), _, _) => raw.to_string(),
            (None, Some(encoded), Credentials::BearerOrBasic) => basic_password(encoded)
                .ok_or_else(|| {
                    ApiError::unauthorized(
                        "the Basic credentials are not base64 of `user:token`; put the token in \
                         the URL as https://twilio:TOKEN@host/path",
                    )
                })?,
            _ => {
                return Err(ApiError::unauthorized(
                    "the Authorization header must be `Bearer <token>`",
                ));
            }
        };
        let Ok(secret) = TokenSecret::parse(raw.trim()) else {
            return Err(ApiError::unauthorized(
                "the token is not an outagecast token (they start with oc_)",
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
            return Err(ApiError::unauthorized("the token is unknown or revoked"));
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
}

/// The forms of the `Authorization` header a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// `Bearer <token>` only: the API and the IVR lookup.
    Bearer,
    /// Also `Basic base64(user:token)` (any user name): Twilio can put credentials in a
    /// webhook URL but cannot send a bearer header.
    BearerOrBasic,
}

/// The rest of `header` after the auth scheme `name` (case-insensitive, RFC 9110) and a space.
fn scheme<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(name).then(|| rest.trim())
}

/// The password of Basic credentials (base64 of `user:password`, RFC 7617).
fn basic_password(encoded: &str) -> Option<String> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        // Already checked from the headers by the API's middleware, before the body was read.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        state.auth.caller(&parts.headers).await
    }
}

/// Middleware for the IVR lookup: a token whose role may look up callers (`ivr`, `admin`), from
/// the first request on a fresh database too.
pub async fn ivr_guard(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    if !request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return ApiError::unauthorized(
            "no token: the IVR lookup needs `Authorization: Bearer <token>` with an ivr-role \
             token; create one with `outagecast token create --role ivr --name NAME`",
        )
        .into_response();
    }
    match auth.caller(request.headers()).await {
        Ok(caller) => match caller.require(Action::IvrLookup) {
            Ok(_) => next.run(request).await,
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Middleware for the routes Twilio calls (SMS webhooks, the voice webhook): a request that
/// carries a token (Bearer, or the Basic password) must carry one whose role may post webhooks
/// (`webhook`, `admin`), and is then let through without a Twilio signature; a request without
/// one is left to the signature check ([`super::TwilioGuard`]).
pub async fn webhook_token(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    if !request
        .headers()
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return next.run(request).await;
    }
    match auth
        .caller_by(request.headers(), Credentials::BearerOrBasic)
        .await
    {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_give_their_password() {
        // RFC 7617's example: Aladdin / open sesame.
        assert_eq!(
            basic_password("QWxhZGRpbjpvcGVuIHNlc2FtZQ==").as_deref(),
            Some("open sesame")
        );
        assert_eq!(
            basic_password("dHdpbGlvOm9jX3g6eQ==").as_deref(),
            Some("oc_x:y")
        );
        assert_eq!(basic_password("bm9jb2xvbg=="), None, "no colon");
        assert_eq!(basic_password("not base64!"), None);
        assert_eq!(scheme("basic abc", "Basic"), Some("abc"));
        assert_eq!(scheme("Bearer  oc_1 ", "Bearer"), Some("oc_1"));
        assert_eq!(scheme("Bearer", "Bearer"), None);
        assert_eq!(scheme("Digest x", "Basic"), None);
    }
}
