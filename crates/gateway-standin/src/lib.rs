//! A Twilio-compatible SMS and voice gateway stand-in.
//!
//! Calls: see [`calls`] (`Calls.json`, scripted busy / no-answer outcomes, status callbacks).
//!
//! Speaks the wire format outagecast's SMS adapter uses: `POST
//! /2010-04-01/Accounts/{sid}/Messages.json` (form `To`, `From` or `MessagingServiceSid`,
//! `Body`; basic auth) answering 201 with `{sid, status, to, body}`, and `GET` of the same path
//! filtered by `To`. Faults are injected deterministically by request number, so a run is
//! repeatable: every `n`th request is answered 429, 500, slowly, or accepted and then left
//! hanging (the message is recorded but the client times out: a send *in doubt*).
//!
//! Like many Twilio-compatible gateways and small SMS aggregators, it can also be run without
//! the message list ([`Gateway::set_lookup`]: the `GET` answers 404), and its credentials can
//! be changed while it runs ([`Gateway::set_auth_token`]), as when a provider revokes a key and
//! the operator restores it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod calls;
pub use calls::Call;

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
    /// Every nth POST is refused as Twilio refuses a number it cannot reach (400, code 21614,
    /// the number quoted in the message).
    pub unreachable_every: u64,
}

/// A recorded message.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `SM` + 32 hex digits.
    pub sid: String,
    /// Recipient.
    pub to: String,
    /// Sender (`From`, or the messaging service sid): which node sent it, when each node of
    /// a test has a number of its own.
    pub from: String,
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
    /// `Basic base64(sid:token)`, the only Authorization accepted.
    expected_auth: RwLock<String>,
    /// Whether the message list answers (else 404, as on gateways without one).
    no_lookup: AtomicBool,
    faults: Faults,
    started: Option<Instant>,
    requests: AtomicU64,
    state: Mutex<Recorded>,
    /// The calls, and what the next calls to a number will end with.
    calls: Mutex<CallState>,
    /// How long a call lasts before its final status callback.
    call_length: Mutex<Duration>,
    /// While set, a call is placed and recorded, then the create request is left without an
    /// answer this long: the provider that took the call but cannot tell us.
    calls_hang: Mutex<Option<Duration>>,
    /// While set, a call's final status is kept but never posted to its `StatusCallback`.
    lose_callbacks: AtomicBool,
}

/// The calls placed, and the scripted outcomes per number.
#[derive(Debug, Default)]
struct CallState {
    calls: Vec<Call>,
    script: HashMap<String, std::collections::VecDeque<&'static str>>,
}

/// Everything recorded, behind one lock (one lock per request, not three).
#[derive(Debug, Default)]
struct Recorded {
    /// Every POST: (time since start, its text). Accepted texts share the message's copy.
    request_log: Vec<(Duration, Arc<str>)>,
    messages: Vec<Stored>,
    by_to: HashMap<Arc<str>, Vec<u32>>,
    /// One copy of each distinct text: a load run sends the same few texts to everyone.
    texts: HashSet<Arc<str>>,
}

impl Recorded {
    fn intern(&mut self, text: String) -> Arc<str> {
        if let Some(t) = self.texts.get(text.as_str()) {
            return Arc::clone(t);
        }
        let t: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&t));
        t
    }
}

/// A message as kept: the recipient and text are shared with the index and the log.
#[derive(Debug)]
struct Stored {
    to: Arc<str>,
    from: Arc<str>,
    body: Arc<str>,
    at: Duration,
}

impl Stored {
    fn message(&self, index: usize) -> Message {
        Message {
            sid: sid(index),
            to: self.to.to_string(),
            from: self.from.to_string(),
            body: self.body.to_string(),
            at: self.at,
        }
    }
}

/// The sid of the `index`th accepted message (0-based).
fn sid(index: usize) -> String {
    format!("SM{:032x}", index as u128 + 1)
}

impl Gateway {
    /// A gateway accepting these credentials, with these faults.
    pub fn new(account_sid: &str, auth_token: &str, faults: Faults) -> Arc<Self> {
        Arc::new(Gateway {
            account_sid: account_sid.into(),
            expected_auth: RwLock::new(basic(account_sid, auth_token)),
            faults,
            started: Some(Instant::now()),
            call_length: Mutex::new(Duration::from_millis(300)),
            ..Gateway::default()
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic while holding the lock leaves consistent data (every update is one push).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Message> {
        self.state()
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| m.message(i))
            .collect()
    }

    /// How many messages were accepted.
    pub fn accepted(&self) -> usize {
        self.state().messages.len()
    }

    /// How many accepted messages came from `from`.
    pub fn accepted_from(&self, from: &str) -> usize {
        self.state()
            .messages
            .iter()
            .filter(|m| &*m.from == from)
            .count()
    }

    /// Every POST as (time since start, body), accepted or not: for measuring the send rate.
    pub fn request_log(&self) -> Vec<(Duration, String)> {
        self.state()
            .request_log
            .iter()
            .map(|(t, body)| (*t, body.to_string()))
            .collect()
    }

    /// POST requests received, accepted or not.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Messages accepted more than once: the same recipient and text.
    pub fn duplicates(&self) -> usize {
        let state = self.state();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        for m in &state.messages {
            *seen.entry((&m.to, &m.body)).or_default() += 1;
        }
        seen.values().map(|n| n - 1).sum()
    }

    /// Why a list request (messages or calls) is not answered: no list endpoint
    /// (`no_lookup`, a 404 as a gateway without one gives), or the wrong account or
    /// credentials.
    pub(crate) fn refuse_list(&self, account: &str, headers: &HeaderMap) -> Option<Response> {
        if self.no_lookup.load(Ordering::Relaxed) {
            return Some(api_error(
                StatusCode::NOT_FOUND,
                20404,
                "The requested resource was not found",
            ));
        }
        if account != self.account_sid || !self.authorised(headers) {
            return Some(api_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
        }
        None
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let expected = self.expected_auth.read().unwrap_or_else(|e| e.into_inner());
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == expected.as_bytes())
    }

    /// From now on accepts only this auth token (the account sid stays).
    pub fn set_auth_token(&self, auth_token: &str) {
        *self
            .expected_auth
            .write()
            .unwrap_or_else(|e| e.into_inner()) = basic(&self.account_sid, auth_token);
    }

    /// Whether the message list answers; without it the `GET` is a 404, as on a gateway that
    /// cannot be asked what it received.
    pub fn set_lookup(&self, on: bool) {
        self.no_lookup.store(!on, Ordering::Relaxed);
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

/// The only `Authorization` accepted for these credentials.
fn basic(account_sid: &str, auth_token: &str) -> String {
    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"));
    format!("Basic {encoded}")
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

/// The resource a send answers with.
#[derive(Serialize)]
struct Created<'a> {
    sid: &'a str,
    status: &'static str,
    to: &'a str,
    body: &'a str,
}

async fn send(
    State(gw): State<Arc<Gateway>>,
    Path(sid_in_path): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Response {
    let i = gw.requests.fetch_add(1, Ordering::Relaxed);
    let at = gw.started.map(|s| s.elapsed()).unwrap_or_default();
    let body = {
        let mut state = gw.state();
        let body = state.intern(form.body);
        state.request_log.push((at, Arc::clone(&body)));
        body
    };
    if sid_in_path != gw.account_sid || !gw.authorised(&headers) {
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
    // Twilio quotes the number in these messages; so does the stand-in, so that tests see
    // what a log line would show.
    if !valid_to {
        return api_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {} is not a valid phone number.", form.to),
        );
    }
    if every(f.unreachable_every, i) {
        return api_error(
            StatusCode::BAD_REQUEST,
            21614,
            &format!("'To' number {} is not a valid mobile number", form.to),
        );
    }
    if form.from.is_empty() && form.messaging_service_sid.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required.",
        );
    }
    if body.is_empty() {
        return api_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    }
    let to: Arc<str> = Arc::from(form.to);
    let index = {
        let mut state = gw.state();
        let from = if form.from.is_empty() {
            form.messaging_service_sid
        } else {
            form.from
        };
        let from = state.intern(from);
        let index = state.messages.len();
        state.messages.push(Stored {
            to: Arc::clone(&to),
            from,
            body: Arc::clone(&body),
            at,
        });
        state
            .by_to
            .entry(Arc::clone(&to))
            .or_default()
            .push(u32::try_from(index).unwrap_or(u32::MAX));
        index
    };
    if every(f.accept_then_hang_every, i) {
        tokio::time::sleep(f.slow_by).await;
    }
    let sid = sid(index);
    (
        StatusCode::CREATED,
        Json(Created {
            sid: &sid,
            status: "queued",
            to: &to,
            body: &body,
        }),
    )
        .into_response()
}

async fn list(
    State(gw): State<Arc<Gateway>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(refused) = gw.refuse_list(&sid, &headers) {
        return refused;
    }
    let picked: Vec<Message> = {
        let state = gw.state();
        match &q.to {
            Some(to) => state
                .by_to
                .get(to.as_str())
                .map(|idx| {
                    idx.iter()
                        .filter_map(|&i| {
                            let i = i as usize;
                            state.messages.get(i).map(|m| m.message(i))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None => state
                .messages
                .iter()
                .enumerate()
                .map(|(i, m)| m.message(i))
                .collect(),
        }
    };
    Json(json!({ "messages": picked })).into_response()
}

/// `GET /2010-04-01/Accounts/{sid}.json`: the account, as Twilio answers it to its owner
/// (what `config check --probe` asks).
async fn account(
    State(gw): State<Arc<Gateway>>,
    Path(sid_json): Path<String>,
    headers: HeaderMap,
) -> Response {
    match sid_json.strip_suffix(".json") {
        Some(sid) if sid == gw.account_sid && gw.authorised(&headers) => {
            Json(json!({ "sid": sid, "status": "active", "friendly_name": "stand-in" }))
                .into_response()
        }
        Some(sid) if sid == gw.account_sid => {
            api_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
        }
        _ => api_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
    }
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
        .route(
            "/2010-04-01/Accounts/{sid}/Calls.json",
            post(calls::create).get(calls::list),
        )
        .route("/2010-04-01/Accounts/{sid}/Calls/{call}", get(calls::fetch))
        .route("/2010-04-01/Accounts/{sid}", get(account))
        .route("/stats", get(stats))
        .with_state(gateway)
}

/// Serves on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Answers go out at once, not after Nagle's wait for an ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}
