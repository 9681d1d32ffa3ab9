//! A Twilio-compatible SMS gateway stand-in.
//!
//! Speaks the wire format outagecast's SMS adapter uses: `POST
//! /2010-04-01/Accounts/{sid}/Messages.json` (form `To`, `From` or `MessagingServiceSid`,
//! `Body`; basic auth) answering 201 with `{sid, status, to, body}`, and `GET` of the same path
//! filtered by `To`. Faults are injected deterministically by request number, so a run is
//! repeatable: every `n`th request is answered 429, 500, slowly, or accepted and then left
//! hanging (the message is recorded but the client times out: a send *in doubt*).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Which requests fail, by request number (0 = never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every nth POST is answered 429 with `Retry-After: 1`.
    pub too_many_every: u64,
    /// Every nth POST is answered 500.
    pub server_error_every: u64,
    /// Every nth POST is answered after `slow_by`.
    pub slow_every: u64,
    /// How slow a slow answer is.
    pub slow_by: Duration,
    /// Every nth POST is recorded, then left hanging for `slow_by` before answering.
    pub accept_then_hang_every: u64,
}

/// A recorded message.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `SM` + 32 hex digits.
    pub sid: String,
    /// Recipient.
    pub to: String,
    /// Text.
    pub body: String,
    /// When it was accepted, since the gateway started.
    #[serde(skip)]
    pub at: Duration,
}

/// What the gateway has seen.
#[derive(Debug, Default)]
pub struct Gateway {
    account_sid: String,
    auth_token: String,
    faults: Faults,
    started: Option<Instant>,
    requests: AtomicU64,
    request_log: Mutex<Vec<(Duration, String)>>,
    messages: Mutex<Vec<Message>>,
    by_to: Mutex<HashMap<String, Vec<usize>>>,
}

impl Gateway {
    /// A gateway accepting these credentials, with these faults.
    pub fn new(account_sid: &str, auth_token: &str, faults: Faults) -> Arc<Self> {
        Arc::new(Gateway {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            faults,
            started: Some(Instant::now()),
            ..Gateway::default()
        })
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// How many messages were accepted.
    pub fn accepted(&self) -> usize {
        self.messages.lock().map(|m| m.len()).unwrap_or_default()
    }

    /// Every POST as (time since start, body), accepted or not: for measuring the send rate.
    pub fn request_log(&self) -> Vec<(Duration, String)> {
        self.request_log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// POST requests received, accepted or not.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Messages accepted more than once: the same recipient and text.
    pub fn duplicates(&self) -> usize {
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for m in self.messages() {
            *seen.entry((m.to, m.body)).or_default() += 1;
        }
        seen.values().map(|n| n - 1).sum()
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.account_sid, self.auth_token));
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .is_some_and(|v| v == expected)
    }
}

#[derive(Deserialize)]
struct SendForm {
    #[serde(rename = "To", default)]
    to: String,
    #[serde(rename = "From", default)]
    from: String,
    #[serde(rename = "MessagingServiceSid", default)]
    messaging_service_sid: String,
    #[serde(rename = "Body", default)]
    body: String,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "To")]
    to: Option<String>,
}

fn api_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message, "status": status.as_u16() })),
    )
        .into_response()
}

fn every(n: u64, i: u64) -> bool {
    n > 0 && i % n == n - 1
}

async fn send(
    State(gw): State<Arc<Gateway>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Response {
    let i = gw.requests.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut log) = gw.request_log.lock() {
        log.push((
            gw.started.map(|s| s.elapsed()).unwrap_or_default(),
            form.body.clone(),
        ));
    }
    if sid != gw.account_sid || !gw.authorised(&headers) {
        return api_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let f = gw.faults;
    if every(f.too_many_every, i) {
        let mut r = api_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    }
    if every(f.server_error_every, i) {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        );
    }
    if every(f.slow_every, i) {
        tokio::time::sleep(f.slow_by).await;
    }
    let valid_to = form.to.len() > 8
        && form.to.starts_with('+')
        && form.to[1..].bytes().all(|b| b.is_ascii_digit());
    if !valid_to {
        return api_error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        );
    }
    if form.from.is_empty() && form.messaging_service_sid.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required.",
        );
    }
    if form.body.is_empty() {
        return api_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    }
    let message = {
        let Ok(mut messages) = gw.messages.lock() else {
            return api_error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "poisoned");
        };
        let message = Message {
            sid: format!("SM{:032x}", messages.len() as u128 + 1),
            to: form.to,
            body: form.body,
            at: gw.started.map(|s| s.elapsed()).unwrap_or_default(),
        };
        messages.push(message.clone());
        if let Ok(mut by_to) = gw.by_to.lock() {
            by_to
                .entry(message.to.clone())
                .or_default()
                .push(messages.len() - 1);
        }
        message
    };
    if every(f.accept_then_hang_every, i) {
        tokio::time::sleep(f.slow_by).await;
    }
    (
        StatusCode::CREATED,
        Json(json!({ "sid": message.sid, "status": "queued", "to": message.to, "body": message.body })),
    )
        .into_response()
}

async fn list(
    State(gw): State<Arc<Gateway>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if sid != gw.account_sid || !gw.authorised(&headers) {
        return api_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let messages = gw.messages();
    let picked: Vec<&Message> = match &q.to {
        Some(to) => {
            let idx = gw
                .by_to
                .lock()
                .map(|m| m.get(to).cloned().unwrap_or_default())
                .unwrap_or_default();
            idx.iter().filter_map(|i| messages.get(*i)).collect()
        }
        None => messages.iter().collect(),
    };
    Json(json!({ "messages": picked })).into_response()
}

async fn stats(State(gw): State<Arc<Gateway>>) -> Response {
    Json(json!({ "requests": gw.requests(), "accepted": gw.accepted(), "duplicates": gw.duplicates() })).into_response()
}

/// The gateway's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(send).get(list),
        )
        .route("/stats", get(stats))
        .with_state(gateway)
}

/// Serves on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}
