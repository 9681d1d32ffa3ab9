//! Voice calls over a Twilio-compatible HTTP API: landlines are called, not texted.
//!
//! `POST {base}/2010-04-01/Accounts/{sid}/Calls.json` with `To`, `From`, inline `Twiml` (the
//! notice said twice in the customer's language, then a `<Gather>`: 1 hears it again, 9 gets
//! no more calls), `StatusCallback` (`{OUTAGECAST_PUBLIC_URL}/webhooks/voice/status`, the final
//! `completed` event only: that is the one that settles the notice), and answering-machine
//! detection (`MachineDetection=DetectMessageEnd`, so a voicemail gets the message after the
//! beep). The account and base URL default to the SMS ones.
//!
//! Pacing: calls per second (`OUTAGECAST_VOICE_RATE`) by the lane's pacer, and at most
//! `OUTAGECAST_VOICE_MAX_CALLS` calls in progress ([`Transport::permit`]), counted in the store
//! (so every node shares the cap): a call is in progress from its create until its final status
//! callback settles the notice, or for `OUTAGECAST_VOICE_MAX_CALL_SECONDS` at most. An in-doubt
//! call is looked up with `GET Calls.json?To=…` (a call still queued, ringing, talking or
//! completed is the earlier attempt; one that was busy or not answered is not).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::secret::Secret;
use outagecast_store::{CallResult, CallRetry, Store};
use serde::Deserialize;
use tokio::time::Instant;

use crate::sms::{Names, basic_auth, create, get_resource, http_client, list_to, probe_account};
use crate::transport::{LookupError, OutgoingMessage, Permit, SendOutcome, Transport};
use crate::{DispatchError, Result};

/// What the voice adapter's errors name.
const VOICE: Names = Names {
    what: "voice provider",
    base: "OUTAGECAST_VOICE_BASE_URL",
    sid: "OUTAGECAST_VOICE_ACCOUNT_SID",
    token: "OUTAGECAST_VOICE_AUTH_TOKEN",
};

/// Voice provider settings.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// API base (`OUTAGECAST_VOICE_BASE_URL`, else the SMS one).
    pub base_url: String,
    /// Account sid (basic-auth user).
    pub account_sid: String,
    /// Auth token. Prints as `***`.
    pub auth_token: Secret<String>,
    /// The caller id (`OUTAGECAST_VOICE_FROM`).
    pub from: String,
    /// Where the final call status goes (`…/webhooks/voice/status`).
    pub status_callback: String,
    /// Where the `<Gather>`'s key press goes (`…/webhooks/voice/gather`).
    pub gather_action: String,
    /// Calls started per second.
    pub rate: u32,
    /// Calls in progress at once, over every node.
    pub max_calls: u32,
    /// The longest a call is counted as in progress without its final status.
    pub max_call: Duration,
    /// Busy and unanswered calls: the delay and the calls in all.
    pub retry: CallRetry,
    /// Per-request timeout (the SMS one).
    pub timeout: Duration,
    /// Whether earlier calls can be looked up (`OUTAGECAST_SMS_LOOKUP`).
    pub lookup: bool,
}

impl VoiceConfig {
    /// Every variable [`VoiceConfig::from_lookup`] reads beyond the SMS and webhook ones, with
    /// the default `config check` shows.
    pub const KEYS: &[(&str, Option<&str>)] = &[
        ("OUTAGECAST_VOICE_ACCOUNT_SID", None),
        ("OUTAGECAST_VOICE_ATTEMPTS", Some("3")),
        ("OUTAGECAST_VOICE_AUTH_TOKEN", None),
        ("OUTAGECAST_VOICE_BASE_URL", None),
        ("OUTAGECAST_VOICE_FROM", None),
        ("OUTAGECAST_VOICE_MAX_CALLS", Some("10")),
        ("OUTAGECAST_VOICE_MAX_CALL_SECONDS", Some("180")),
        ("OUTAGECAST_VOICE_RATE", Some("1")),
        ("OUTAGECAST_VOICE_RETRY_DELAY", Some("600")),
    ];

    /// Reads `OUTAGECAST_VOICE_*` (falling back to the SMS account) through `get`. `Ok(None)`
    /// when `OUTAGECAST_VOICE_FROM` is not set: voice is not configured.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let value = |name: &str| value(&get, name);
        let Some(from) = value("OUTAGECAST_VOICE_FROM") else {
            return Ok(None);
        };
        let either = |voice: &'static str, sms: &str| value(voice).or_else(|| value(sms));
        let account_sid = either("OUTAGECAST_VOICE_ACCOUNT_SID", "OUTAGECAST_SMS_ACCOUNT_SID")
            .ok_or(DispatchError::Config {
                field: "OUTAGECAST_VOICE_ACCOUNT_SID",
                problem: "is not set (nor OUTAGECAST_SMS_ACCOUNT_SID); calls need the account once OUTAGECAST_VOICE_FROM is set".into(),
            })?;
        let auth_token = either("OUTAGECAST_VOICE_AUTH_TOKEN", "OUTAGECAST_SMS_AUTH_TOKEN")
            .map(Secret::new)
            .ok_or(DispatchError::Config {
                field: "OUTAGECAST_VOICE_AUTH_TOKEN",
                problem: "is not set (nor OUTAGECAST_SMS_AUTH_TOKEN); calls need it once OUTAGECAST_VOICE_FROM is set".into(),
            })?;
        let public = value("OUTAGECAST_PUBLIC_URL").ok_or(DispatchError::Config {
            field: "OUTAGECAST_PUBLIC_URL",
            problem: "is not set; a call's outcome comes back to {OUTAGECAST_PUBLIC_URL}/webhooks/voice/status, so calls need it once OUTAGECAST_VOICE_FROM is set".into(),
        })?;
        let public = public.trim_end_matches('/');
        if !(public.starts_with("https://") || public.starts_with("http://")) {
            return Err(DispatchError::Config {
                field: "OUTAGECAST_PUBLIC_URL",
                problem: format!(
                    "{public:?} is not an http(s) URL; write e.g. https://notify.utility.fi"
                ),
            });
        }
        let timeout = seconds(&get, "OUTAGECAST_SMS_TIMEOUT", 10.0, 300.0)?;
        Ok(Some(VoiceConfig {
            base_url: either("OUTAGECAST_VOICE_BASE_URL", "OUTAGECAST_SMS_BASE_URL")
                .unwrap_or_else(|| "https://api.twilio.com".into())
                .trim_end_matches('/')
                .to_string(),
            account_sid,
            auth_token,
            from,
            status_callback: format!("{public}/webhooks/voice/status"),
            gather_action: format!("{public}/webhooks/voice/gather"),
            rate: whole(&get, "OUTAGECAST_VOICE_RATE", 1, "calls per second")?,
            max_calls: whole(&get, "OUTAGECAST_VOICE_MAX_CALLS", 10, "simultaneous calls")?,
            max_call: seconds(&get, "OUTAGECAST_VOICE_MAX_CALL_SECONDS", 180.0, 86_400.0)?,
            retry: call_retry(&get)?,
            timeout,
            lookup: !matches!(
                value("OUTAGECAST_SMS_LOOKUP")
                    .map(|v| v.to_ascii_lowercase())
                    .as_deref(),
                Some("off" | "false" | "no" | "0")
            ),
        }))
    }
}

/// How busy and unanswered calls are tried again (`OUTAGECAST_VOICE_RETRY_DELAY` seconds,
/// default 600; `OUTAGECAST_VOICE_ATTEMPTS` calls in all, default 3): what the status webhook
/// applies, whether or not this node places calls.
pub fn call_retry(get: impl Fn(&str) -> Option<String>) -> Result<CallRetry> {
    let delay = seconds(&get, "OUTAGECAST_VOICE_RETRY_DELAY", 600.0, 86_400.0)?;
    Ok(CallRetry {
        delay: chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
        attempts: whole(&get, "OUTAGECAST_VOICE_ATTEMPTS", 3, "calls")?,
    })
}

fn value(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A positive whole number setting.
fn whole(
    get: &impl Fn(&str) -> Option<String>,
    field: &'static str,
    default: u32,
    what: &str,
) -> Result<u32> {
    match value(get, field) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(DispatchError::Config {
                field,
                problem: format!("{v:?} is not a positive whole number of {what}"),
            }),
    }
}

/// A number of seconds setting, above 0 and at most `max`.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    field: &'static str,
    default: f64,
    max: f64,
) -> Result<Duration> {
    match value(get, field) {
        None => Ok(Duration::from_secs_f64(default)),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= max)
            .map(Duration::from_secs_f64)
            .ok_or(DispatchError::Config {
                field,
                problem: format!("{v:?} is not a number of seconds between 0 and {max}"),
            }),
    }
}

/// The BCP 47 tag `<Say>` speaks `lang` in.
pub fn say_language(lang: Language) -> &'static str {
    match lang {
        Language::Fi => "fi-FI",
        Language::Sv => "sv-SE",
        Language::En => "en-GB",
    }
}

/// "Press 1 to hear it again, press 9 to get no more calls", in `lang`.
fn menu_prompt(lang: Language) -> &'static str {
    match lang {
        Language::Fi => {
            "Kuullaksesi viestin uudelleen paina 1. Jos et halua enää näitä puheluita, paina 9."
        }
        Language::Sv => {
            "Tryck 1 för att höra meddelandet igen. Tryck 9 om du inte vill få fler samtal."
        }
        Language::En => "Press 1 to hear it again. Press 9 to get no more calls.",
    }
}

/// What is said when the call ends, in `lang`.
pub fn goodbye(lang: Language) -> &'static str {
    match lang {
        Language::Fi => "Kiitos. Näkemiin.",
        Language::Sv => "Tack. Hej då.",
        Language::En => "Thank you. Goodbye.",
    }
}

/// What is said after 9, in `lang`.
pub fn opted_out(lang: Language) -> &'static str {
    match lang {
        Language::Fi => "Selvä. Emme soita sinulle enää katkoista. Näkemiin.",
        Language::Sv => "Okej. Vi ringer dig inte längre om avbrott. Hej då.",
        Language::En => "All right. We will not call you about outages again. Goodbye.",
    }
}

/// Escapes text for XML content and attributes, dropping characters XML 1.0 cannot carry.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

/// The TwiML of a call saying `text` in `lang`: twice with a pause, then the menu inside a
/// `<Gather numDigits="1">` whose key press goes to `gather_action`; a goodbye if no key comes.
/// The same document answers a 1 in the gather (the message again).
pub fn call_twiml(text: &str, lang: Language, gather_action: &str) -> String {
    let l = say_language(lang);
    let said = escape_xml(text);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
         <Gather numDigits=\"1\" action=\"{action}\" method=\"POST\" timeout=\"5\">\
         <Say language=\"{l}\">{said}</Say><Pause length=\"1\"/>\
         <Say language=\"{l}\">{said}</Say><Pause length=\"1\"/>\
         <Say language=\"{l}\">{menu}</Say></Gather>\
         <Say language=\"{l}\">{bye}</Say></Response>",
        action = escape_xml(gather_action),
        menu = escape_xml(menu_prompt(lang)),
        bye = escape_xml(goodbye(lang)),
    )
}

/// TwiML that says `text` in `lang` and hangs up.
pub fn say_and_hang_up(text: &str, lang: Language) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say language=\"{}\">{}</Say><Hangup/></Response>",
        say_language(lang),
        escape_xml(text)
    )
}

/// About how long the call takes: the text twice, the menu and the goodbye at a calm
/// text-to-speech pace (about 2.5 words a second), the pauses and the gather's wait.
pub fn estimated_call_seconds(text: &str, lang: Language) -> u32 {
    let words = |t: &str| t.split_whitespace().count() as f64;
    let spoken = 2.0 * words(text) + words(menu_prompt(lang)) + words(goodbye(lang));
    (spoken / 2.5 + 2.0 + 5.0).ceil() as u32
}

/// The calls as the store keeps them (every node's): how many are in progress, and those whose
/// final status never came, to be asked about and settled.
pub trait CallLedger: Send + Sync + 'static {
    /// Voice notices sent since `since` and not settled by their final status.
    fn calls_in_progress(
        &self,
        since: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<u64, String>> + Send + '_>>;

    /// The sids of calls placed before `sent_before` and never settled, oldest first. A
    /// ledger that keeps no calls (a check that places none) has none.
    fn unsettled_calls(
        &self,
        sent_before: DateTime<Utc>,
        limit: u32,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Vec<String>, String>> + Send + '_>> {
        let _ = (sent_before, limit);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Records a call's final status as its status callback would have.
    fn settle_call<'a>(
        &'a self,
        sid: &'a str,
        result: &'a CallResult,
        retry: CallRetry,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'a>> {
        let _ = (sid, result, retry);
        Box::pin(async { Ok(()) })
    }
}

impl CallLedger for Store {
    fn calls_in_progress(
        &self,
        since: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<u64, String>> + Send + '_>> {
        Box::pin(async move {
            Store::calls_in_progress(self, since)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn unsettled_calls(
        &self,
        sent_before: DateTime<Utc>,
        limit: u32,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Vec<String>, String>> + Send + '_>> {
        Box::pin(async move {
            Store::unsettled_calls(self, sent_before, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn settle_call<'a>(
        &'a self,
        sid: &'a str,
        result: &'a CallResult,
        retry: CallRetry,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            Store::record_call_status(self, sid, result, retry, Utc::now())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// How long an accepted call is counted here before the store is sure to show it: the lane
/// records outcomes within a round, well under this.
const RECORDING: Duration = Duration::from_secs(1);
/// How long the store's count is reused.
const GAUGE_FRESH: Duration = Duration::from_millis(250);
/// Unsettled calls asked about in one sweep.
const SETTLE_BATCH: u32 = 100;
/// How often a send waiting for room looks again.
const SLOT_POLL: Duration = Duration::from_millis(100);

/// This process's share of the calls in progress: creates on the wire, calls accepted and
/// maybe not recorded yet, and the store's last count.
#[derive(Debug, Default)]
struct Slots {
    placing: u32,
    placed: VecDeque<Instant>,
    counted: Option<(u64, Instant)>,
}

/// The Twilio-compatible voice adapter.
pub struct VoiceCall {
    client: reqwest::Client,
    config: VoiceConfig,
    calls_url: reqwest::Url,
    authorization: reqwest::header::HeaderValue,
    ledger: Arc<dyn CallLedger>,
    slots: Arc<Mutex<Slots>>,
}

impl std::fmt::Debug for VoiceCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceCall")
            .field("config", &self.config)
            .field("calls_url", &self.calls_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    answered_by: Option<String>,
}

#[derive(Deserialize)]
struct CallList {
    #[serde(default)]
    calls: Vec<CallResource>,
}

impl VoiceCall {
    /// Builds the adapter; `ledger` (the store) counts the calls in progress and keeps the
    /// calls whose final status is still to come.
    pub fn new(config: VoiceConfig, ledger: Arc<dyn CallLedger>) -> Result<Self> {
        let client = http_client(config.timeout, &VOICE)?;
        let calls_url = reqwest::Url::parse(&format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            config.base_url, config.account_sid
        ))
        .map_err(|e| DispatchError::Config {
            field: VOICE.base,
            problem: format!("{:?} is not a URL: {e}", config.base_url),
        })?;
        let authorization = basic_auth(&config.account_sid, &config.auth_token, &VOICE)?;
        Ok(VoiceCall {
            client,
            config,
            calls_url,
            authorization,
            ledger,
            slots: Arc::default(),
        })
    }

    /// Calls started per second.
    pub fn rate(&self) -> u32 {
        self.config.rate
    }

    /// Asks the provider for the account (sends nothing), for `config check --probe`.
    pub async fn probe(&self) -> std::result::Result<String, String> {
        probe_account(
            &self.client,
            &self.authorization,
            &self.config.base_url,
            &self.config.account_sid,
            &VOICE,
        )
        .await
    }

    /// The store's count of calls in progress, reused for a moment (every waiting send asks).
    async fn counted(&self) -> Option<u64> {
        {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((n, at)) = slots.counted
                && at.elapsed() < GAUGE_FRESH
            {
                return Some(n);
            }
        }
        match self.ledger.calls_in_progress(self.longest_call_ago()).await {
            Ok(n) => {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                slots.counted = Some((n, Instant::now()));
                Some(n)
            }
            Err(e) => {
                // Without a count the cap cannot be kept: wait (the lane reports the store).
                tracing::debug!(error = %e, "cannot count the calls in progress");
                None
            }
        }
    }
}

impl VoiceCall {
    /// Now less the longest call (`OUTAGECAST_VOICE_MAX_CALL_SECONDS`): a call placed before
    /// this is no longer counted in progress, and is asked about if still unsettled.
    fn longest_call_ago(&self) -> DateTime<Utc> {
        Utc::now()
            - chrono::Duration::from_std(self.config.max_call).unwrap_or(chrono::Duration::MAX)
    }

    /// One sweep for lost status callbacks: each call placed longer ago than the longest call
    /// (`OUTAGECAST_VOICE_MAX_CALL_SECONDS`) whose final status never came (the node was down
    /// when it was posted, or the call was found by a look-up after its callback had given up)
    /// is asked about at `GET Calls/{sid}.json`, and what the provider says is recorded as the
    /// callback would have. Returns how many were settled, and whether the provider could be
    /// asked at all.
    pub async fn settle_lost_callbacks(&self) -> (usize, bool) {
        let before = self.longest_call_ago();
        let sids = match self.ledger.unsettled_calls(before, SETTLE_BATCH).await {
            Ok(sids) => sids,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list the unsettled calls");
                return (0, true);
            }
        };
        let (mut settled, mut asked) = (0, sids.is_empty());
        for sid in &sids {
            match self.final_status(sid).await {
                Ok(Some(result)) => {
                    asked = true;
                    match self
                        .ledger
                        .settle_call(sid, &result, self.config.retry)
                        .await
                    {
                        Ok(()) => settled += 1,
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot record a call's status");
                            break;
                        }
                    }
                }
                // Still ringing or talking: asked again next time.
                Ok(None) => asked = true,
                // This call unknown, or no such endpoint: the next one may be known.
                Err(LookupError::Unsupported) => {}
                Err(LookupError::Failed(e)) => {
                    tracing::debug!(error = %e, "cannot ask about a call");
                    asked = true;
                    break;
                }
            }
        }
        if settled > 0 {
            // Lost callbacks mean the public URL does not reach a node, or none was up.
            tracing::warn!(
                settled,
                "calls settled from the provider's record: their status callbacks never came \
                 (check that OUTAGECAST_PUBLIC_URL reaches this service)"
            );
        }
        (settled, asked)
    }

    /// The provider's final status of the call `sid`; `None` while it is still in progress.
    async fn final_status(
        &self,
        sid: &str,
    ) -> std::result::Result<Option<CallResult>, LookupError> {
        let mut url = self.calls_url.clone();
        {
            let Ok(mut path) = url.path_segments_mut() else {
                return Err(LookupError::Unsupported);
            };
            path.pop().push("Calls").push(&format!("{sid}.json"));
        }
        let call: CallResource = get_resource(
            &self.client,
            &url,
            &self.authorization,
            &[],
            "a call's status",
        )
        .await?;
        Ok(CallResult::from_status(
            &call.status,
            call.answered_by.as_deref(),
            None,
        ))
    }
}

impl Transport for VoiceCall {
    fn channel(&self) -> Channel {
        Channel::Voice
    }

    async fn send(&self, m: &OutgoingMessage) -> SendOutcome {
        let lang = Language::parse(&m.language).unwrap_or(Language::En);
        let twiml = call_twiml(&m.body, lang, &self.config.gather_action);
        let form: [(&str, &str); 8] = [
            ("To", &m.to),
            ("From", &self.config.from),
            ("Twiml", &twiml),
            ("StatusCallback", &self.config.status_callback),
            ("StatusCallbackMethod", "POST"),
            // The final event settles the notice; the others would only be noise here.
            ("StatusCallbackEvent", "completed"),
            ("MachineDetection", "DetectMessageEnd"),
            // Ring for half a minute, as a person would let a phone ring.
            ("Timeout", "30"),
        ];
        create(
            &self.client,
            &self.calls_url,
            &self.authorization,
            &form,
            &self.config.base_url,
            &VOICE,
        )
        .await
    }

    async fn find_sent(&self, m: &OutgoingMessage) -> Result<Option<String>, LookupError> {
        if !self.config.lookup {
            return Err(LookupError::Unsupported);
        }
        let list: CallList = list_to(
            &self.client,
            &self.calls_url,
            &self.authorization,
            &m.to,
            "earlier calls",
        )
        .await?;
        // A busy, unanswered, failed or canceled call is an earlier attempt that did not reach
        // anyone (a retry's own predecessor): only a live or completed call counts.
        Ok(list
            .calls
            .into_iter()
            .find(|c| {
                !matches!(
                    c.status.as_str(),
                    "busy" | "no-answer" | "failed" | "canceled"
                )
            })
            .map(|c| c.sid))
    }

    fn cost(&self, _: &OutgoingMessage) -> u32 {
        1
    }

    /// Sweeps for lost status callbacks now and then (a quarter of the longest call, between
    /// 1 and 30 s), less often while the provider cannot be asked.
    async fn maintain(&self) {
        if !self.config.lookup {
            return std::future::pending().await;
        }
        let every =
            (self.config.max_call / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            let (_, asked) = self.settle_lost_callbacks().await;
            tokio::time::sleep(if asked { every } else { every * 10 }).await;
        }
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    async fn permit(&self, wait: Duration) -> Option<Permit> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(stored) = self.counted().await {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                while slots
                    .placed
                    .front()
                    .is_some_and(|at| at.elapsed() >= RECORDING)
                {
                    slots.placed.pop_front();
                }
                // Counted conservatively: a call just recorded may be in both the store's
                // count and `placed` for a moment.
                let busy = stored + u64::from(slots.placing) + slots.placed.len() as u64;
                if busy < u64::from(self.config.max_calls) {
                    slots.placing += 1;
                    let shared = Arc::clone(&self.slots);
                    return Some(Permit::new(move |accepted| {
                        let mut slots = shared.lock().unwrap_or_else(|e| e.into_inner());
                        slots.placing = slots.placing.saturating_sub(1);
                        if accepted {
                            slots.placed.push_back(Instant::now());
                            // The next count must see it.
                            slots.counted = None;
                        }
                    }));
                }
            }
            if Instant::now() + SLOT_POLL > deadline {
                return None;
            }
            tokio::time::sleep(SLOT_POLL).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn voice_is_configured_by_its_from_and_borrows_the_sms_account() {
        assert!(
            VoiceConfig::from_lookup(lookup(&[("OUTAGECAST_SMS_ACCOUNT_SID", "AC1")]))
                .unwrap()
                .is_none()
        );
        let c = VoiceConfig::from_lookup(lookup(&[
            ("OUTAGECAST_VOICE_FROM", "+35852100100"),
            ("OUTAGECAST_SMS_ACCOUNT_SID", "AC1"),
            ("OUTAGECAST_SMS_AUTH_TOKEN", "t"),
            ("OUTAGECAST_SMS_BASE_URL", "http://127.0.0.1:9/"),
            ("OUTAGECAST_PUBLIC_URL", "https://notify.example.fi/"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.account_sid, "AC1");
        assert_eq!(c.base_url, "http://127.0.0.1:9");
        assert_eq!(
            c.status_callback,
            "https://notify.example.fi/webhooks/voice/status"
        );
        assert_eq!((c.rate, c.max_calls, c.retry.attempts), (1, 10, 3));
        assert_eq!(c.max_call, Duration::from_secs(180));
        assert_eq!(c.retry.delay, chrono::Duration::seconds(600));
        let err = VoiceConfig::from_lookup(lookup(&[("OUTAGECAST_VOICE_FROM", "+35852100100")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("OUTAGECAST_VOICE_ACCOUNT_SID"), "{err}");
        let err = VoiceConfig::from_lookup(lookup(&[
            ("OUTAGECAST_VOICE_FROM", "+35852100100"),
            ("OUTAGECAST_VOICE_ACCOUNT_SID", "AC1"),
            ("OUTAGECAST_VOICE_AUTH_TOKEN", "t"),
            ("OUTAGECAST_PUBLIC_URL", "https://n.example.fi"),
            ("OUTAGECAST_VOICE_RATE", "fast"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("OUTAGECAST_VOICE_RATE"), "{err}");
    }

    #[test]
    fn twiml_says_the_text_twice_in_the_language_and_escapes_it() {
        let t = call_twiml(
            "Vesikatko <Kaivokatu> & muut",
            Language::Fi,
            "https://x/g?a=1&b=2",
        );
        assert_eq!(
            t.matches("<Say language=\"fi-FI\">Vesikatko &lt;Kaivokatu&gt; &amp; muut</Say>")
                .count(),
            2
        );
        assert!(t.contains("<Gather numDigits=\"1\" action=\"https://x/g?a=1&amp;b=2\""));
        assert!(t.contains("<Pause length=\"1\"/>"));
        assert!(call_twiml("x", Language::Sv, "a").contains("sv-SE"));
        assert!(call_twiml("x", Language::En, "a").contains("en-GB"));
        let secs = estimated_call_seconds("one two three four five", Language::En);
        assert!((10..30).contains(&secs), "{secs}");
    }
}
