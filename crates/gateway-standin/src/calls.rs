//! The Calls API: `POST /2010-04-01/Accounts/{sid}/Calls.json` (form `To`, `From`, `Twiml`,
//! `StatusCallback`, …; basic auth) answering 201 with `{sid, status: "queued", to}`, `GET`
//! of the same path filtered by `To` (`{calls: [{sid, to, from, status}]}`), and `GET
//! …/Calls/{sid}.json` (one call: its status, and `answered_by`). Each call ends
//! after [`Gateway::set_call_length`] with the next outcome scripted for its number
//! ([`Gateway::script_calls`]: `busy`, `no-answer`, `failed`, or `completed` answered by a
//! human, the default) and its final status is POSTed to the call's `StatusCallback` (a
//! `user:password@` in that URL becomes basic auth, as Twilio does), retried while the far end
//! answers 5xx or cannot be reached.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Gateway, api_error};

/// A recorded call.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    /// `CA` + 32 hex digits.
    pub sid: String,
    /// The number called.
    pub to: String,
    /// The caller id.
    pub from: String,
    /// The inline TwiML.
    pub twiml: String,
    /// Where the final status went.
    pub status_callback: String,
    /// Every other form field, as sent.
    pub fields: Vec<(String, String)>,
    /// `queued` until the call ends, then its final status.
    pub status: String,
    /// When it was created, since the gateway started.
    #[serde(skip)]
    pub at: Duration,
    /// Whether the final status callback was accepted (2xx).
    pub reported: bool,
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "To")]
    to: Option<String>,
}

fn call_sid(index: usize) -> String {
    format!("CA{:032x}", index as u128 + 1)
}

/// `POST …/Calls.json`.
pub(crate) async fn create(
    State(gw): State<Arc<Gateway>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    gw.requests.fetch_add(1, Ordering::Relaxed);
    if account != gw.account_sid || !gw.authorised(&headers) {
        return api_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (to, from, twiml) = (field("To"), field("From"), field("Twiml"));
    let valid_to =
        to.len() > 8 && to.starts_with('+') && to[1..].bytes().all(|b| b.is_ascii_digit());
    if !valid_to {
        return api_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if from.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    if twiml.is_empty() && field("Url").is_empty() {
        return api_error(StatusCode::BAD_REQUEST, 21205, "Url or Twiml is required.");
    }
    let at = gw.started.map(|s| s.elapsed()).unwrap_or_default();
    let callback = field("StatusCallback");
    let (sid, outcome) = {
        let mut calls = gw.calls.lock().unwrap_or_else(|e| e.into_inner());
        let sid = call_sid(calls.calls.len());
        let outcome = calls
            .script
            .get_mut(&to)
            .and_then(|q| q.pop_front())
            .unwrap_or("completed");
        calls.calls.push(Call {
            sid: sid.clone(),
            to: to.clone(),
            from: from.clone(),
            twiml,
            status_callback: callback.clone(),
            fields: fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "To" | "From" | "Twiml"))
                .cloned()
                .collect(),
            status: "queued".into(),
            at,
            reported: false,
        });
        (sid, outcome)
    };
    let length = *gw.call_length.lock().unwrap_or_else(|e| e.into_inner());
    let ends = Arc::clone(&gw);
    let (end_sid, end_to, end_from) = (sid.clone(), to.clone(), from);
    tokio::spawn(async move {
        tokio::time::sleep(length).await;
        ends.end_call(&end_sid, &end_to, &end_from, outcome, &callback)
            .await;
    });
    let hang = *gw.calls_hang.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hang) = hang {
        tokio::time::sleep(hang).await;
    }
    (
        StatusCode::CREATED,
        Json(json!({ "sid": sid, "status": "queued", "to": to })),
    )
        .into_response()
}

/// `GET …/Calls.json?To=…`.
pub(crate) async fn list(
    State(gw): State<Arc<Gateway>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(refused) = gw.refuse_list(&account, &headers) {
        return refused;
    }
    let calls = gw.calls.lock().unwrap_or_else(|e| e.into_inner());
    let picked: Vec<_> = calls
        .calls
        .iter()
        .filter(|c| q.to.as_deref().is_none_or(|to| c.to == to))
        .map(|c| json!({ "sid": c.sid, "to": c.to, "from": c.from, "status": c.status }))
        .collect();
    Json(json!({ "calls": picked })).into_response()
}

/// `GET …/Calls/{CallSid}.json`: one call as Twilio answers it (`status`, and `answered_by`
/// once a completed call was answered), 404 for a sid it never gave.
pub(crate) async fn fetch(
    State(gw): State<Arc<Gateway>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gw.refuse_list(&account, &headers) {
        return refused;
    }
    let sid = call.strip_suffix(".json").unwrap_or(&call);
    let calls = gw.calls.lock().unwrap_or_else(|e| e.into_inner());
    match calls.calls.iter().find(|c| c.sid == sid) {
        Some(c) => {
            let answered_by = (c.status == "completed").then_some("human");
            Json(json!({
                "sid": c.sid, "to": c.to, "from": c.from, "status": c.status,
                "answered_by": answered_by,
            }))
            .into_response()
        }
        None => api_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource /Calls/{sid}.json was not found"),
        ),
    }
}

impl Gateway {
    /// Every call placed so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .calls
            .clone()
    }

    /// The next calls to `number` end with these statuses, in order (`busy`, `no-answer`,
    /// `failed`, `canceled`; `completed` once they run out).
    pub fn script_calls(&self, number: &str, outcomes: &[&'static str]) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .script
            .entry(number.to_string())
            .or_default()
            .extend(outcomes.iter().copied());
    }

    /// How long each call lasts before its final status.
    pub fn set_call_length(&self, length: Duration) {
        *self.call_length.lock().unwrap_or_else(|e| e.into_inner()) = length;
    }

    /// While `Some`, each call is placed, then its create request hangs this long before the
    /// answer (a provider that accepts and never answers); `None` answers at once again.
    pub fn set_calls_hang(&self, hang: Option<Duration>) {
        *self.calls_hang.lock().unwrap_or_else(|e| e.into_inner()) = hang;
    }

    /// While `true`, calls end with their status kept (`GET Calls/{sid}.json` shows it) but
    /// no status callback is posted: callbacks lost on the way.
    pub fn lose_callbacks(&self, lose: bool) {
        self.lose_callbacks.store(lose, Ordering::Relaxed);
    }

    async fn end_call(&self, sid: &str, to: &str, from: &str, outcome: &str, callback: &str) {
        if let Some(c) = self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .calls
            .iter_mut()
            .find(|c| c.sid == sid)
        {
            c.status = outcome.to_string();
        }
        if callback.is_empty() || self.lose_callbacks.load(Ordering::Relaxed) {
            return;
        }
        let mut form = vec![
            ("CallSid", sid),
            ("AccountSid", self.account_sid.as_str()),
            ("To", to),
            ("From", from),
            ("CallStatus", outcome),
            ("Direction", "outbound-api"),
        ];
        if outcome == "completed" {
            form.push(("AnsweredBy", "human"));
            form.push(("CallDuration", "20"));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        // Tried again while the far end is not ready (it may not have recorded the call yet).
        for _ in 0..50 {
            match post_form(callback, &body).await {
                Some(status) if (200..300).contains(&status) => {
                    if let Some(c) = self
                        .calls
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .calls
                        .iter_mut()
                        .find(|c| c.sid == sid)
                    {
                        c.reported = true;
                    }
                    return;
                }
                Some(status) if status < 500 => return,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// Form-encodes `text` (RFC 3986 unreserved characters kept).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// POSTs a form to an `http://[user:password@]host:port/path` URL over one HTTP/1.1
/// connection; the status code, or `None` when it could not be reached.
async fn post_form(url: &str, body: &str) -> Option<u16> {
    use base64::Engine;
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(host))
            .await
            .ok()?
            .ok()?;
    let auth = userinfo
        .map(|u| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(u)
            )
        })
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace().nth(1)?.parse().ok()
}
