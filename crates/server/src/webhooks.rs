//! What providers and customers send back: Twilio delivery receipts, inbound SMS (STOP, START,
//! HELP) and one-click email unsubscribe (RFC 8058).
//!
//! - `POST /webhooks/sms/status`: Twilio's status callback (`MessageSid`, `MessageStatus`,
//!   `ErrorCode`). `delivered` marks the notice delivered; `failed` and `undelivered` mark it
//!   failed with the error code (and fall back to email); other statuses change nothing.
//! - `POST /webhooks/sms/inbound`: Twilio's incoming message (`From`, `Body`), answered with
//!   TwiML. The keywords are the ones carriers use: STOP, STOPALL, UNSUBSCRIBE, END, QUIT,
//!   CANCEL, OPTOUT, REVOKE opt out; START, UNSTOP, YES opt back in; HELP, INFO get help;
//!   STATUS, TILA, TILANNE, LÄGE answer the outages the IVR announces to that number (its
//!   accounts' open incidents, in its language, with the ETR) or "no known outage";
//!   OUT, VIKA, FEL (`OUTAGECAST_REPORT_WORDS`) report an outage: from a number the IVR
//!   announces an outage to, the answer is that outage (as for STATUS) and nothing is
//!   recorded (the outage is known); from any other number, customer or not, the message is
//!   recorded as an outage report (`Store::record_report`: the number's accounts and their
//!   locations, the text; a repeat within 30 minutes counted, not added) for `GET /v1/reports`,
//!   and acknowledged in the customer's language (for an unknown number, the word's).
//!   A keyword counts when it is the whole message (case, surrounding spaces and trailing
//!   punctuation aside), as at the carrier; a message that *starts* with STOP, STOPALL,
//!   UNSUBSCRIBE or OPTOUT ("Stop sending these") is an opt-out too, and one that starts with
//!   a report word ("VIKA, ei vettä Kaivokatu 1") is a report with its text.
//! - `GET /unsubscribe?token=…` shows a confirmation page with a button (a link scanner that
//!   fetches the link changes nothing); `POST /unsubscribe?token=…` (the page's button, or a
//!   mail client's one-click `List-Unsubscribe=One-Click`) opts the address out of email.
//!
//! Every Twilio request must carry a valid `X-Twilio-Signature` (which needs the auth token and
//! the public URL) or a `webhook`-role token (Bearer, or the Basic password of a webhook URL);
//! anything else is refused unless `--insecure-webhooks` opened them for a lab. The check is
//! [`crate::auth::TwilioGuard`], the same one the voice webhook uses.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, Form, OriginalUri, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use outagecast_core::contact::{Channel, EmailAddress, Language, Region, SenderName};
use outagecast_core::ivr::normalise_caller;
use outagecast_core::secret::Secret;
use outagecast_dispatch::email::{UnsubscribeKey, escape_html};
use outagecast_store::{CallOutcome, CallResult, CallRetry, NewReport, Receipt, Store, StoreError};
use serde::Deserialize;

use crate::ServerError;
use crate::auth::{Auth, BearerAuthorized, TwilioGuard, TwilioSigner, Unsigned, webhook_token};

/// Who changed an opt-out, in the audit log.
const SOURCE_SMS: &str = "sms:inbound";
const SOURCE_EMAIL: &str = "email:unsubscribe";
const SOURCE_VOICE: &str = "voice:gather";

/// The largest webhook body read (Twilio's forms are well under 2 KB).
const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// The longest provider message id accepted (Twilio's are 34 characters).
const MAX_SID_LEN: usize = 128;

/// What the webhooks need to know, as configured. Secrets print as `***`.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    /// `OUTAGECAST_PUBLIC_URL`: the address Twilio and customers reach this server at
    /// (`https://notify.utility.fi`). Needed to check signatures.
    pub public_url: Option<String>,
    /// `OUTAGECAST_SMS_AUTH_TOKEN`: when set, Twilio requests must be signed with it.
    pub sms_auth_token: Option<Secret<String>>,
    /// `OUTAGECAST_UNSUBSCRIBE_SECRET`: when set, the unsubscribe endpoint is on.
    pub unsubscribe_secret: Option<Secret<String>>,
    /// `OUTAGECAST_DEFAULT_REGION`, for sender numbers in national form.
    pub default_region: Option<Region>,
    /// The utility's name for the HELP reply ("Helsinki Water").
    pub sender_name: Option<String>,
    /// What happens to requests with neither a signature nor a token (`--insecure-webhooks`).
    pub unsigned: Unsigned,
    /// How busy and unanswered calls are called again (`OUTAGECAST_VOICE_RETRY_DELAY`,
    /// `OUTAGECAST_VOICE_ATTEMPTS`), applied by the voice status callback.
    pub call_retry: CallRetry,
    /// `OUTAGECAST_REPORT_WORDS`: the words that report an outage by SMS.
    pub report_words: ReportWords,
}

/// The words that report an outage by SMS (`OUTAGECAST_REPORT_WORDS`, comma-separated; by
/// default OUT, VIKA (fi) and FEL (sv)). A message whose first word is one of them (case and
/// punctuation aside) is a report. They may not be one of the other keywords (STOP, START,
/// HELP, STATUS, …), which would then mean two things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportWords(Vec<String>);

impl ReportWords {
    /// The default words, as the setting spells them.
    pub const DEFAULT: &'static str = "OUT,VIKA,FEL";

    /// Reads a comma-separated list: each word one word, upper-cased, not another keyword.
    pub fn parse(text: &str) -> Result<Self, ServerError> {
        let problem = |problem: String| ServerError::Config {
            field: "OUTAGECAST_REPORT_WORDS",
            problem,
        };
        let mut words: Vec<String> = Vec::new();
        for raw in text.split(',') {
            let word = raw.trim();
            if word.is_empty() {
                continue;
            }
            if word.chars().any(|c| c.is_whitespace() || c.is_control())
                || word.chars().any(|c| c.is_ascii_punctuation())
            {
                return Err(problem(format!(
                    "{word:?} is not one word; list single words separated by commas, e.g. {}",
                    Self::DEFAULT
                )));
            }
            let upper = word.to_uppercase();
            if reserved(&upper) {
                return Err(problem(format!(
                    "{word:?} already means something else by SMS (opt-out, opt-in, help or status); choose another word"
                )));
            }
            if !words.contains(&upper) {
                words.push(upper);
            }
        }
        if words.is_empty() {
            return Err(problem(format!(
                "lists no word; give one or more separated by commas, e.g. {}",
                Self::DEFAULT
            )));
        }
        Ok(ReportWords(words))
    }

    /// The words, upper-case.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    fn contains(&self, upper: &str) -> bool {
        self.0.iter().any(|w| w == upper)
    }
}

impl Default for ReportWords {
    fn default() -> Self {
        ReportWords(
            Self::DEFAULT
                .split(',')
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }
}

impl WebhookSettings {
    /// Every variable [`WebhookSettings::from_lookup`] reads. A new one goes here and in
    /// `from_lookup`: the binary's config file and `config check` take their keys from this
    /// list.
    pub const KEYS: &[(&str, Option<&str>)] = &[
        ("OUTAGECAST_PUBLIC_URL", None),
        ("OUTAGECAST_SMS_AUTH_TOKEN", None),
        ("OUTAGECAST_UNSUBSCRIBE_SECRET", None),
        ("OUTAGECAST_DEFAULT_REGION", None),
        ("OUTAGECAST_SENDER_NAME", None),
        ("OUTAGECAST_REPORT_WORDS", Some(ReportWords::DEFAULT)),
    ];

    /// Reads the settings through `get` (the environment, a config file, a test's map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ServerError> {
        let value = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let default_region = value("OUTAGECAST_DEFAULT_REGION")
            .map(|r| Region::parse(&r))
            .transpose()
            .map_err(|e| ServerError::Config {
                field: "OUTAGECAST_DEFAULT_REGION",
                problem: e.to_string(),
            })?;
        Ok(WebhookSettings {
            public_url: value("OUTAGECAST_PUBLIC_URL"),
            sms_auth_token: value("OUTAGECAST_SMS_AUTH_TOKEN").map(Secret::new),
            unsubscribe_secret: value("OUTAGECAST_UNSUBSCRIBE_SECRET").map(Secret::new),
            default_region,
            sender_name: value("OUTAGECAST_SENDER_NAME")
                .map(|n| SenderName::parse(&n))
                .transpose()
                .map_err(|e| ServerError::Config {
                    field: "OUTAGECAST_SENDER_NAME",
                    problem: e.to_string(),
                })?
                .map(String::from),
            unsigned: Unsigned::Refuse,
            call_retry: outagecast_dispatch::voice::call_retry(&get).map_err(|e| match e {
                outagecast_dispatch::DispatchError::Config { field, problem } => {
                    ServerError::Config { field, problem }
                }
                other => ServerError::Config {
                    field: "OUTAGECAST_VOICE_RETRY_DELAY",
                    problem: other.to_string(),
                },
            })?,
            report_words: value("OUTAGECAST_REPORT_WORDS")
                .map(|w| ReportWords::parse(&w))
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// The webhooks, checked and ready to route: the settings made usable.
#[derive(Debug, Clone)]
pub struct Webhooks {
    twilio: TwilioGuard,
    call_retry: CallRetry,
    key: Option<UnsubscribeKey>,
    region: Option<Region>,
    sender_name: Option<String>,
    report_words: ReportWords,
}

impl Webhooks {
    /// Checks `settings`: an http(s) public URL, which an auth token needs (Twilio signs the
    /// URL it calls), and an unsubscribe secret long enough to sign with.
    pub fn new(settings: WebhookSettings) -> Result<Self, ServerError> {
        let public_url = settings
            .public_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ServerError::Config {
                field: "OUTAGECAST_PUBLIC_URL",
                problem: format!(
                    "{url:?} is not an http(s) URL; write e.g. https://notify.utility.fi"
                ),
            });
        }
        let auth_token = settings.sms_auth_token.filter(|t| !t.expose().is_empty());
        let signer = match (auth_token, public_url) {
            (Some(auth_token), Some(public_url)) => Some(TwilioSigner {
                auth_token,
                public_url,
            }),
            (Some(_), None) => {
                return Err(ServerError::Config {
                    field: "OUTAGECAST_PUBLIC_URL",
                    problem: "is needed to check X-Twilio-Signature (Twilio signs the URL it calls); give the address Twilio reaches this server at".into(),
                });
            }
            (None, _) => None,
        };
        let key = settings
            .unsubscribe_secret
            .as_ref()
            .map(|s| UnsubscribeKey::new(s.expose()))
            .transpose()?;
        Ok(Webhooks {
            call_retry: settings.call_retry,
            twilio: TwilioGuard::new(signer, settings.unsigned),
            key,
            region: settings.default_region,
            sender_name: settings.sender_name,
            report_words: settings.report_words,
        })
    }

    /// The signature check, when an auth token is configured.
    pub fn signer(&self) -> Option<TwilioSigner> {
        self.twilio.signer().cloned()
    }

    /// The check for the other route Twilio calls (the voice webhook).
    pub fn guard(&self) -> TwilioGuard {
        self.twilio.clone()
    }

    /// The webhook routes over `store`, ready to serve or to nest into a larger router; the
    /// routes Twilio calls take `webhook`-role tokens checked by `auth`.
    pub fn router(self, store: Store, auth: Auth) -> Router {
        let app = Arc::new(App {
            store,
            call_retry: self.call_retry,
            twilio: self.twilio,
            key: self.key,
            region: self.region,
            sender_name: self.sender_name,
            report_words: self.report_words,
        });
        Router::new()
            .route("/webhooks/sms/status", post(sms_status))
            .route("/webhooks/sms/inbound", post(sms_inbound))
            .route("/webhooks/voice/status", post(voice_status))
            .route("/webhooks/voice/gather", post(voice_gather))
            .route_layer(axum::middleware::from_fn_with_state(auth, webhook_token))
            // Twilio's forms are a few hundred bytes.
            .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
            // The unsubscribe link carries its own HMAC token: no other credential.
            .route(
                "/unsubscribe",
                get(unsubscribe_page).post(unsubscribe_confirm),
            )
            .with_state(app)
    }
}

/// The webhook routes, ready to serve or to nest into a larger router (tokens checked
/// against `store`).
pub fn router(store: Store, settings: WebhookSettings) -> Result<Router, ServerError> {
    let auth = Auth::new(store.clone());
    Ok(Webhooks::new(settings)?.router(store, auth))
}

struct App {
    store: Store,
    call_retry: CallRetry,
    twilio: TwilioGuard,
    key: Option<UnsubscribeKey>,
    region: Option<Region>,
    sender_name: Option<String>,
    report_words: ReportWords,
}

fn param<'a>(params: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| {
        params
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    })
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_string(),
    )
        .into_response()
}

fn internal(error: &dyn std::fmt::Display) -> Response {
    tracing::error!("webhook: {error}");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

/// What a Twilio message status means for the notice.
fn receipt_for(status: &str, error_code: Option<&str>) -> Option<Receipt> {
    match status.to_ascii_lowercase().as_str() {
        "delivered" | "read" => Some(Receipt::Delivered),
        s @ ("failed" | "undelivered") => Some(Receipt::Failed {
            reason: match error_code {
                Some(code) => format!("{s}: error {}", code.chars().take(32).collect::<String>()),
                None => s.to_string(),
            },
        }),
        _ => None,
    }
}

async fn sms_status(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    bearer: Option<Extension<BearerAuthorized>>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) = app
        .twilio
        .check(bearer.map(|b| b.0), &uri, &headers, &params)
    {
        return refused.into_response();
    }
    let Some(sid) = param(&params, &["MessageSid", "SmsSid"]) else {
        return plain(StatusCode::BAD_REQUEST, "MessageSid is missing\n");
    };
    if sid.len() > MAX_SID_LEN || !sid.bytes().all(|b| b.is_ascii_graphic()) {
        return plain(StatusCode::BAD_REQUEST, "MessageSid is not a message id\n");
    }
    let Some(status) = param(&params, &["MessageStatus", "SmsStatus"]) else {
        return plain(StatusCode::BAD_REQUEST, "MessageStatus is missing\n");
    };
    let Some(receipt) = receipt_for(status, param(&params, &["ErrorCode"])) else {
        // queued, sending, sent, accepted, scheduled…: progress, not an outcome.
        return StatusCode::OK.into_response();
    };
    match app.store.record_receipt(sid, &receipt, Utc::now()).await {
        Ok(outcome) => {
            tracing::debug!(sid, ?receipt, ?outcome, "sms receipt");
            StatusCode::OK.into_response()
        }
        Err(e) => internal(&e),
    }
}

/// A voice callback checked (signature or token, as every webhook) and its call sid; the
/// error is the answer (401/403 refused, 400 no call sid). A rejection is the response
/// itself, as an axum extractor's would be.
#[allow(clippy::result_large_err)]
fn voice_callback<'p>(
    app: &App,
    bearer: Option<Extension<BearerAuthorized>>,
    uri: &Uri,
    headers: &HeaderMap,
    params: &'p [(String, String)],
) -> Result<&'p str, Response> {
    app.twilio
        .check(bearer.map(|b| b.0), uri, headers, params)
        .map_err(IntoResponse::into_response)?;
    let Some(sid) = param(params, &["CallSid"]) else {
        return Err(plain(StatusCode::BAD_REQUEST, "CallSid is missing\n"));
    };
    if sid.len() > MAX_SID_LEN || !sid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(plain(StatusCode::BAD_REQUEST, "CallSid is not a call id\n"));
    }
    Ok(sid)
}

/// Twilio's final call status (`CallSid`, `CallStatus`, `AnsweredBy`, `ErrorCode`): answered
/// by a person or a voicemail → delivered; busy or no answer → called again after the delay
/// while attempts remain, else failed; failed or canceled → failed with the reason.
async fn voice_status(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    bearer: Option<Extension<BearerAuthorized>>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let sid = match voice_callback(&app, bearer, &uri, &headers, &params) {
        Ok(sid) => sid,
        Err(answer) => return answer,
    };
    let Some(status) = param(&params, &["CallStatus"]) else {
        return plain(StatusCode::BAD_REQUEST, "CallStatus is missing\n");
    };
    let Some(result) = CallResult::from_status(
        status,
        param(&params, &["AnsweredBy"]),
        param(&params, &["ErrorCode"]),
    ) else {
        return StatusCode::OK.into_response();
    };
    match app
        .store
        .record_call_status(sid, &result, app.call_retry, Utc::now())
        .await
    {
        // Not recorded yet (the call ended before the dispatcher's round recorded its sid,
        // or it is not ours): 503 asks the provider to try again (Twilio retries a callback
        // with `#rc` on its URL; the stand-in does), and a sid that never comes stays
        // unknown.
        Ok(CallOutcome::Unknown) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "call not known (yet)\n",
        )
            .into_response(),
        Ok(outcome) => {
            tracing::debug!(sid, ?result, ?outcome, "call status");
            StatusCode::OK.into_response()
        }
        Err(e) => internal(&e),
    }
}

/// The key pressed in the call's `<Gather>`: 1 says the message again (the same TwiML), 9 opts
/// the number called out of calls (answered in its language), anything else says goodbye.
async fn voice_gather(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    bearer: Option<Extension<BearerAuthorized>>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    use outagecast_dispatch::voice::{call_twiml, goodbye, opted_out, say_and_hang_up};
    let sid = match voice_callback(&app, bearer, &uri, &headers, &params) {
        Ok(sid) => sid,
        Err(answer) => return answer,
    };
    let call = match app.store.call_text(sid).await {
        Ok(call) => call,
        Err(e) => return internal(&e),
    };
    let lang = call.as_ref().map_or(Language::En, |(_, l)| *l);
    let xml = |body: String| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            body,
        )
            .into_response()
    };
    match (param(&params, &["Digits"]), &call) {
        (Some("1"), Some((text, lang))) => {
            // The gather's own URL is where the next key press goes.
            let action = format!(
                "{}{}",
                app.twilio
                    .signer()
                    .map(|s| s.public_url.clone())
                    .unwrap_or_default(),
                uri.path()
            );
            xml(call_twiml(text, *lang, &action))
        }
        (Some("9"), _) => {
            // Outbound: the customer is the number called (`To`).
            let Some(called) =
                param(&params, &["To", "Called"]).and_then(|n| normalise_caller(n, app.region))
            else {
                return plain(StatusCode::BAD_REQUEST, "To is not a phone number\n");
            };
            if let Err(e) = app
                .store
                .opt_out_and_withdraw(Channel::Voice, &called, SOURCE_VOICE, Utc::now())
                .await
            {
                return internal(&e);
            }
            xml(say_and_hang_up(opted_out(lang), lang))
        }
        _ => xml(say_and_hang_up(goodbye(lang), lang)),
    }
}

/// A keyword in an inbound SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    OptOut,
    OptIn,
    Help,
    /// "Is there an outage at my address?": answered from the number's armed incidents.
    Status,
    /// "There is an outage here": answered like [`Keyword::Status`] when one is known, else
    /// recorded as an outage report and acknowledged.
    Report,
}

const OPT_OUT: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "CANCEL",
    "OPTOUT",
    "REVOKE",
];
/// Opt-out words that mean nothing else, so they count at the start of a longer message.
const OPT_OUT_LEADING: [&str; 4] = ["STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT"];
const OPT_IN: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP: [&str; 2] = ["HELP", "INFO"];
/// STATUS (en, sv), TILA/TILANNE (fi), LÄGE (sv).
const STATUS: [&str; 4] = ["STATUS", "TILA", "TILANNE", "LÄGE"];

/// Whether `upper` is one of the fixed keywords (which a report word may not be).
fn reserved(upper: &str) -> bool {
    OPT_OUT.contains(&upper)
        || OPT_IN.contains(&upper)
        || HELP.contains(&upper)
        || STATUS.contains(&upper)
}

/// A word of a message as keywords are compared: surrounding punctuation and space trimmed,
/// upper-cased.
fn keyword_word(w: &str) -> String {
    w.trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_uppercase()
}

/// The message's first word, as [`keyword_word`] gives it.
fn first_word(body: &str) -> String {
    keyword_word(
        body.split(|c: char| c.is_whitespace() || c == ',')
            .find(|w| !w.is_empty())
            .unwrap_or_default(),
    )
}

fn keyword(body: &str, report: &ReportWords) -> Option<Keyword> {
    let word = keyword_word;
    let whole = word(body);
    if OPT_OUT.contains(&whole.as_str()) {
        return Some(Keyword::OptOut);
    }
    if OPT_IN.contains(&whole.as_str()) {
        return Some(Keyword::OptIn);
    }
    if HELP.contains(&whole.as_str()) {
        return Some(Keyword::Help);
    }
    if STATUS.contains(&whole.as_str()) {
        return Some(Keyword::Status);
    }
    let first = word(body.split_whitespace().next().unwrap_or_default());
    if OPT_OUT_LEADING.contains(&first.as_str()) {
        return Some(Keyword::OptOut);
    }
    report
        .contains(&first_word(body))
        .then_some(Keyword::Report)
}

/// The language a default report word is in, for answering a number no customer has.
fn word_language(upper: &str) -> Option<Language> {
    match upper {
        "VIKA" => Some(Language::Fi),
        "FEL" => Some(Language::Sv),
        "OUT" => Some(Language::En),
        _ => None,
    }
}

fn reply_text(keyword: Keyword, lang: Language, sender: Option<&str>) -> String {
    use Keyword::*;
    use Language::*;
    match (keyword, lang) {
        (OptOut, Fi) => {
            "Et saa enää katkoilmoituksia tekstiviestillä. Vastaa START, niin saat ne taas.".into()
        }
        (OptOut, Sv) => {
            "Du får inte längre avbrottsmeddelanden per sms. Svara START för att få dem igen."
                .into()
        }
        (OptOut, En) => {
            "You will no longer get outage messages by SMS. Reply START to get them again.".into()
        }
        (OptIn, Fi) => {
            "Saat taas katkoilmoitukset tekstiviestillä. Vastaa STOP, niin ne loppuvat.".into()
        }
        (OptIn, Sv) => "Du får avbrottsmeddelanden per sms igen. Svara STOP för att sluta.".into(),
        (OptIn, En) => "You will get outage messages by SMS again. Reply STOP to stop them.".into(),
        (Help, Fi) => format!(
            "Katkoilmoitukset{}. Vastaa STOP, niin ne loppuvat, tai START, niin saat ne taas.",
            sender.map(|s| format!(" ({s})")).unwrap_or_default()
        ),
        (Help, Sv) => format!(
            "Avbrottsmeddelanden{}. Svara STOP för att sluta eller START för att få dem igen.",
            sender.map(|s| format!(" ({s})")).unwrap_or_default()
        ),
        (Help, En) => format!(
            "Outage messages{}. Reply STOP to stop them, START to get them again.",
            sender.map(|s| format!(" from {s}")).unwrap_or_default()
        ),
        (Status, Fi) => "Osoitteessasi ei ole tiedossa olevaa katkoa.".into(),
        (Status, Sv) => "Inget känt avbrott på din adress.".into(),
        (Status, En) => "No known outage at your address.".into(),
        (Report, Fi) => {
            "Kiitos, vikailmoituksesi on vastaanotettu. Vastaa TILA, niin kerromme tiedossa olevat katkot.".into()
        }
        (Report, Sv) => {
            "Tack, vi har tagit emot din felanmälan. Svara LÄGE för kända avbrott.".into()
        }
        (Report, En) => {
            "Thank you, we have your outage report. Reply STATUS for known outages.".into()
        }
    }
}

/// Escapes text for XML content, dropping characters XML 1.0 cannot carry.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

fn twiml(message: Option<&str>) -> Response {
    let body = match message {
        Some(m) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Message>{}</Message></Response>\n",
            escape_xml(m)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response/>\n".to_string(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn sms_inbound(
    State(app): State<Arc<App>>,
    OriginalUri(uri): OriginalUri,
    bearer: Option<Extension<BearerAuthorized>>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) = app
        .twilio
        .check(bearer.map(|b| b.0), &uri, &headers, &params)
    {
        return refused.into_response();
    }
    let body = param(&params, &["Body"]).unwrap_or_default();
    let Some(keyword) = keyword(body, &app.report_words) else {
        // Not a keyword: nobody reads replies here, and an automatic answer to every text
        // would be noise. Say nothing.
        return twiml(None);
    };
    let from = param(&params, &["From"]).and_then(|f| normalise_caller(f, app.region));
    let now = Utc::now();
    let done = match (keyword, &from) {
        (Keyword::OptOut, Some(from)) => app
            .store
            .opt_out_and_withdraw(Channel::Sms, from, SOURCE_SMS, now)
            .await
            .map(|_| ()),
        (Keyword::OptIn, Some(from)) => app
            .store
            .opt_in(Channel::Sms, from, SOURCE_SMS, now)
            .await
            .map(|_| ()),
        (Keyword::Help, _) => Ok(()),
        // The outages the IVR announces to this number, else the "no known outage" text
        // below.
        (Keyword::Status, Some(from)) => match known_outages(&app.store, from, now).await {
            Ok(Some(text)) => return twiml(Some(&text)),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        },
        // A known outage is answered, not reported again; anything else is a report.
        (Keyword::Report, Some(from)) => match known_outages(&app.store, from, now).await {
            Ok(Some(text)) => return twiml(Some(&text)),
            Ok(None) => app
                .store
                .record_report(NewReport {
                    phone: from,
                    text: body,
                    channel: Channel::Sms,
                    at: now,
                })
                .await
                .map(|done| {
                    tracing::info!(
                        report = done.id,
                        new = done.new,
                        repeats = done.repeats,
                        accounts = done.accounts,
                        "outage report by SMS"
                    );
                }),
            Err(e) => Err(e),
        },
        (Keyword::OptOut | Keyword::OptIn | Keyword::Status | Keyword::Report, None) => {
            return plain(StatusCode::BAD_REQUEST, "From is not a phone number\n");
        }
    };
    if let Err(e) = done {
        return internal(&e);
    }
    let lang = match &from {
        Some(from) => match app.store.contact_language(from).await {
            Ok(lang) => lang
                .or_else(|| word_language(&first_word(body)))
                .unwrap_or(Language::En),
            Err(e) => return internal(&e),
        },
        None => Language::En,
    };
    twiml(Some(&reply_text(keyword, lang, app.sender_name.as_deref())))
}

/// What STATUS answers a number when the IVR announces outages to it (its accounts' open
/// incidents, most severe first, each with its label, in its language with the ETR); `None`
/// when none is known.
async fn known_outages(
    store: &Store,
    from: &str,
    now: chrono::DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let mut armed = store.armed_for(from, now).await?;
    if armed.is_empty() {
        return Ok(None);
    }
    armed.sort_by_key(|a| (std::cmp::Reverse(a.severity), a.id));
    let text: Vec<String> = armed
        .iter()
        .map(|a| format!("{}: {}", a.id.label(), a.announcement))
        .collect();
    Ok(Some(text.join("\n")))
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The page texts in one language.
struct PageText {
    title: &'static str,
    question: &'static str,
    button: &'static str,
    done: &'static str,
}

fn page_text(lang: Language) -> PageText {
    match lang {
        Language::Fi => PageText {
            title: "Peru katkoilmoitukset",
            question: "Lopetetaanko katkoilmoitusten lähettäminen osoitteeseen",
            button: "Peru tilaus",
            done: "Katkoilmoituksia ei enää lähetetä osoitteeseen",
        },
        Language::Sv => PageText {
            title: "Avsluta avbrottsmeddelanden",
            question: "Sluta skicka avbrottsmeddelanden till",
            button: "Avsluta",
            done: "Inga fler avbrottsmeddelanden skickas till",
        },
        Language::En => PageText {
            title: "Unsubscribe from outage emails",
            question: "Stop sending outage emails to",
            button: "Unsubscribe",
            done: "No more outage emails will be sent to",
        },
    }
}

fn html_page(status: StatusCode, lang: &str, title: &str, content: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\n<body style=\"font-family:sans-serif;max-width:32em;margin:2em auto\">\n<h1>{title}</h1>\n{content}\n</body>\n</html>\n",
        title = escape_html(title),
    );
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The token is in the URL: keep it out of caches, referrers and search engines.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    response
}

fn invalid_link() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "en",
        "Invalid link",
        "<p>This unsubscribe link is not valid. Copy the whole link from the email.</p>\n<p lang=\"fi\">Linkki ei kelpaa. Kopioi koko linkki sähköpostista.</p>\n<p lang=\"sv\">Länken är ogiltig. Kopiera hela länken från e-postmeddelandet.</p>",
    )
}

/// Why a request's token gives no address.
#[derive(Debug, Clone, Copy)]
enum TokenProblem {
    NotConfigured,
    Invalid,
}

impl IntoResponse for TokenProblem {
    fn into_response(self) -> Response {
        match self {
            TokenProblem::NotConfigured => plain(
                StatusCode::NOT_FOUND,
                "unsubscribe links are not configured (OUTAGECAST_UNSUBSCRIBE_SECRET)\n",
            ),
            TokenProblem::Invalid => invalid_link(),
        }
    }
}

/// The address a request's token was made for.
fn token_address(app: &App, query: &TokenQuery) -> Result<String, TokenProblem> {
    let key = app.key.as_ref().ok_or(TokenProblem::NotConfigured)?;
    query
        .token
        .as_deref()
        .and_then(|t| key.verify(t))
        .ok_or(TokenProblem::Invalid)
}

fn masked(address: &str) -> String {
    EmailAddress::parse(address).map_or_else(|_| "•••".to_string(), |a| a.masked())
}

async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let address = match token_address(&app, &query) {
        Ok(a) => a,
        Err(problem) => return problem.into_response(),
    };
    let lang = match app.store.contact_language(&address).await {
        Ok(l) => l.unwrap_or(Language::En),
        Err(e) => return internal(&e),
    };
    let text = page_text(lang);
    let token = query.token.as_deref().unwrap_or_default();
    html_page(
        StatusCode::OK,
        lang.code(),
        text.title,
        &format!(
            "<p>{} <strong>{}</strong>?</p>\n<form method=\"post\" action=\"?token={}\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n<button type=\"submit\">{}</button>\n</form>",
            escape_html(text.question),
            escape_html(&masked(&address)),
            escape_html(token.trim()),
            escape_html(text.button),
        ),
    )
}

/// RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` to the link; the token is
/// the authority, so the body is not needed (and not required).
async fn unsubscribe_confirm(
    State(app): State<Arc<App>>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let address = match token_address(&app, &query) {
        Ok(a) => a,
        Err(problem) => return problem.into_response(),
    };
    if let Err(e) = app
        .store
        .opt_out_and_withdraw(Channel::Email, &address, SOURCE_EMAIL, Utc::now())
        .await
    {
        return internal(&e);
    }
    let lang = match app.store.contact_language(&address).await {
        Ok(l) => l.unwrap_or(Language::En),
        Err(e) => return internal(&e),
    };
    let text = page_text(lang);
    html_page(
        StatusCode::OK,
        lang.code(),
        text.title,
        &format!(
            "<p>{} <strong>{}</strong>.</p>",
            escape_html(text.done),
            escape_html(&masked(&address))
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        for body in [
            "STOP",
            "stop",
            " Stop. ",
            "stopall",
            "UNSUBSCRIBE",
            "end",
            "Quit!",
            "cancel",
            "OPTOUT",
            "revoke",
            "Stop sending these",
        ] {
            assert_eq!(keyword(body, &words()), Some(Keyword::OptOut), "{body:?}");
        }
        for body in ["START", "unstop", "Yes", "yes!"] {
            assert_eq!(keyword(body, &words()), Some(Keyword::OptIn), "{body:?}");
        }
        for body in ["STATUS", "tila", "Läge?"] {
            assert_eq!(keyword(body, &words()), Some(Keyword::Status), "{body:?}");
        }
        for body in ["HELP", "info?", " help "] {
            assert_eq!(keyword(body, &words()), Some(Keyword::Help), "{body:?}");
        }
        for body in [
            "OUT",
            "out!",
            " Vika ",
            "VIKA, ei vettä Kaivokatu 1",
            "fel: inget vatten",
            "Out no power since 10",
        ] {
            assert_eq!(keyword(body, &words()), Some(Keyword::Report), "{body:?}");
        }
        for body in [
            "",
            "   ",
            "End of the outage?",
            "Cancel my appointment",
            "yes the water is back",
            "stopwatch",
            "Kiitos",
            "😀",
            "STOP\u{0}",
            "Outage?",
            "without water",
        ] {
            assert_eq!(keyword(body, &words()), None, "{body:?}");
        }
        // Configured words replace the defaults.
        let own = ReportWords::parse(" katko , Strömavbrott,katko").unwrap();
        assert_eq!(own.words(), ["KATKO", "STRÖMAVBROTT"]);
        assert_eq!(keyword("Katko täällä", &own), Some(Keyword::Report));
        assert_eq!(keyword("OUT", &own), None);
    }

    fn words() -> ReportWords {
        ReportWords::default()
    }

    #[test]
    fn report_words_are_checked() {
        for (text, says) in [
            ("", "lists no word"),
            (" , ", "lists no word"),
            ("OUT,no power", "not one word"),
            ("OUT!", "not one word"),
            ("vika,stop", "means something else"),
            ("Status", "means something else"),
        ] {
            let e = ReportWords::parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("OUTAGECAST_REPORT_WORDS: ") && e.contains(says),
                "{text:?}: {e}"
            );
        }
        assert_eq!(
            ReportWords::parse(ReportWords::DEFAULT).unwrap(),
            ReportWords::default()
        );
    }

    #[test]
    fn statuses_map_to_receipts() {
        assert_eq!(receipt_for("delivered", None), Some(Receipt::Delivered));
        assert_eq!(
            receipt_for("undelivered", Some("30003")),
            Some(Receipt::Failed {
                reason: "undelivered: error 30003".into()
            })
        );
        assert_eq!(
            receipt_for("FAILED", None),
            Some(Receipt::Failed {
                reason: "failed".into()
            })
        );
        for s in [
            "queued",
            "sending",
            "sent",
            "accepted",
            "scheduled",
            "whatever",
        ] {
            assert_eq!(receipt_for(s, None), None, "{s}");
        }
    }

    #[test]
    fn xml_is_escaped_and_cleaned() {
        assert_eq!(
            escape_xml("A & B <c> \"d\" 'e'\u{1}\u{FFFF}"),
            "A &amp; B &lt;c&gt; &quot;d&quot; &apos;e&apos;"
        );
    }

    #[test]
    fn replies_are_gsm7_single_segments() {
        use outagecast_core::sms::{Encoding, segments};
        for k in [
            Keyword::OptOut,
            Keyword::OptIn,
            Keyword::Help,
            Keyword::Status,
            Keyword::Report,
        ] {
            for l in Language::ALL {
                let s = segments(&reply_text(k, l, Some("Helsingin Vesi")));
                assert_eq!((s.encoding, s.count), (Encoding::Gsm7, 1), "{k:?} {l:?}");
            }
        }
    }
}
