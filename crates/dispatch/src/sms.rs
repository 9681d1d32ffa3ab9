//! SMS over a Twilio-compatible HTTP API.
//!
//! `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with form fields `To`, `From` (or
//! `MessagingServiceSid`), `Body`, `StatusCallback`, authenticated with HTTP basic auth (account
//! sid, auth token). Looking an earlier attempt up uses the list endpoint filtered by `To`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use outagecast_core::contact::Channel;
use outagecast_core::secret::Secret;
use outagecast_core::sms::segments;
use serde::Deserialize;

use crate::transport::{OutgoingMessage, SendOutcome, Transport};
use crate::{DispatchError, Result};

/// Who the messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A phone number or alphanumeric sender id (`From`).
    From(String),
    /// A Twilio Messaging Service (`MessagingServiceSid`, `MG…`).
    MessagingService(String),
}

/// SMS provider settings.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// API base, e.g. `https://api.twilio.com` (no trailing slash needed).
    pub base_url: String,
    /// Account sid (basic-auth user).
    pub account_sid: String,
    /// Auth token (basic-auth password). Prints as `***`.
    pub auth_token: Secret<String>,
    /// Sender.
    pub sender: Sender,
    /// Where delivery receipts go (`…/webhooks/sms/status`), if anywhere.
    pub status_callback: Option<String>,
    /// Segments per second the account may send.
    pub rate: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl SmsConfig {
    /// Every variable [`SmsConfig::from_lookup`] reads, with the default `config check` shows.
    /// A new one goes here and in `from_lookup`, nowhere else: the binary's config file and
    /// `config check` take their keys from this list.
    pub const KEYS: &[(&str, Option<&str>)] = &[
        ("OUTAGECAST_SMS_ACCOUNT_SID", None),
        ("OUTAGECAST_SMS_AUTH_TOKEN", None),
        ("OUTAGECAST_SMS_BASE_URL", Some("https://api.twilio.com")),
        ("OUTAGECAST_SMS_FROM", None),
        ("OUTAGECAST_SMS_RATE", Some("10")),
        ("OUTAGECAST_SMS_STATUS_CALLBACK", None),
        ("OUTAGECAST_SMS_TIMEOUT", Some("10")),
    ];

    /// Reads `OUTAGECAST_SMS_*` through `get` (the environment, or a config file layered on it).
    /// `Ok(None)` when no account sid is set: SMS is not configured.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(account_sid) = get("OUTAGECAST_SMS_ACCOUNT_SID").filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let need = |field: &'static str| {
            get(field)
                .filter(|v| !v.is_empty())
                .ok_or(DispatchError::Config {
                    field,
                    problem: "is not set; SMS needs it once OUTAGECAST_SMS_ACCOUNT_SID is set"
                        .into(),
                })
        };
        let auth_token = Secret::new(need("OUTAGECAST_SMS_AUTH_TOKEN")?);
        let from = need("OUTAGECAST_SMS_FROM")?;
        let sender = if from.starts_with("MG") && from.len() == 34 {
            Sender::MessagingService(from)
        } else {
            Sender::From(from)
        };
        let rate =
            match get("OUTAGECAST_SMS_RATE") {
                None => 10,
                Some(r) => r.trim().parse::<u32>().ok().filter(|r| *r > 0).ok_or(
                    DispatchError::Config {
                        field: "OUTAGECAST_SMS_RATE",
                        problem: format!(
                            "{r:?} is not a positive whole number of segments per second"
                        ),
                    },
                )?,
            };
        Ok(Some(SmsConfig {
            base_url: get("OUTAGECAST_SMS_BASE_URL")
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "https://api.twilio.com".into())
                .trim_end_matches('/')
                .to_string(),
            account_sid,
            auth_token,
            sender,
            status_callback: get("OUTAGECAST_SMS_STATUS_CALLBACK").filter(|s| !s.is_empty()),
            rate,
            timeout: match get("OUTAGECAST_SMS_TIMEOUT") {
                None => Duration::from_secs(10),
                Some(t) => t
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 300.0)
                    .map(Duration::from_secs_f64)
                    .ok_or(DispatchError::Config {
                        field: "OUTAGECAST_SMS_TIMEOUT",
                        problem: format!("{t:?} is not a number of seconds between 0 and 300"),
                    })?,
            },
        }))
    }
}

/// The Twilio-compatible SMS adapter.
#[derive(Debug, Clone)]
pub struct TwilioSms {
    client: reqwest::Client,
    config: SmsConfig,
    messages_url: reqwest::Url,
    /// `Basic base64(sid:token)`, built once (marked sensitive: never logged).
    authorization: reqwest::header::HeaderValue,
    /// The segment counts of the last few texts: an incident's notices share a handful of
    /// texts (one per language), and counting walks the GSM alphabet per character.
    costs: Arc<Mutex<VecDeque<(String, u32)>>>,
}

/// How many texts' segment counts are remembered.
const COST_CACHE: usize = 8;

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    #[serde(default)]
    body: String,
}

/// The answer to a send: only the sid is needed.
#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageResource>,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

impl TwilioSms {
    /// Builds the adapter and its connection pool.
    pub fn new(config: SmsConfig) -> Result<Self> {
        crate::install_crypto_provider();
        // Every connection the sends opened stays open for the next (keep-alive; no idle
        // cap below the concurrency), and a POST is never redirected.
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DispatchError::Config {
                field: "OUTAGECAST_SMS_BASE_URL",
                problem: format!("cannot build an HTTP client: {e}"),
            })?;
        let messages_url = reqwest::Url::parse(&format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            config.base_url, config.account_sid
        ))
        .map_err(|e| DispatchError::Config {
            field: "OUTAGECAST_SMS_BASE_URL",
            problem: format!("{:?} is not a URL: {e}", config.base_url),
        })?;
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                config.account_sid,
                config.auth_token.expose()
            ))
        ))
        .map_err(|_| DispatchError::Config {
            field: "OUTAGECAST_SMS_AUTH_TOKEN",
            problem: "holds characters that cannot go in an HTTP header".into(),
        })?;
        authorization.set_sensitive(true);
        Ok(TwilioSms {
            client,
            config,
            messages_url,
            authorization,
            costs: Arc::default(),
        })
    }

    /// Segments per second the account may send.
    pub fn rate(&self) -> u32 {
        self.config.rate
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Transport for TwilioSms {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, m: &OutgoingMessage) -> SendOutcome {
        let mut form: Vec<(&str, &str)> = vec![("To", &m.to), ("Body", &m.body)];
        match &self.config.sender {
            Sender::From(f) => form.push(("From", f)),
            Sender::MessagingService(s) => form.push(("MessagingServiceSid", s)),
        }
        if let Some(cb) = &self.config.status_callback {
            form.push(("StatusCallback", cb));
        }
        let response = self
            .client
            .post(self.messages_url.clone())
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .form(&form)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                // A refused connection never reached the provider; anything later might have.
                let in_doubt = !e.is_connect();
                return SendOutcome::Retry {
                    reason: format!(
                        "{}: {e}",
                        if e.is_timeout() {
                            "timeout"
                        } else {
                            "transport error"
                        }
                    ),
                    after: None,
                    in_doubt,
                };
            }
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let text = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&text) {
                Ok(resource) => SendOutcome::Accepted {
                    provider_id: resource.sid,
                },
                // Accepted but unreadable: it was sent; record that with no sid.
                Err(_) => SendOutcome::Accepted {
                    provider_id: String::new(),
                },
            };
        }
        let api: ApiError = serde_json::from_slice(&text).unwrap_or_default();
        let reason = format!(
            "HTTP {}{}{}",
            status.as_u16(),
            api.code.map(|c| format!(" code {c}")).unwrap_or_default(),
            api.message.map(|m| format!(": {m}")).unwrap_or_default()
        );
        if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            SendOutcome::Retry {
                reason,
                after,
                in_doubt: false,
            }
        } else {
            SendOutcome::Permanent { reason }
        }
    }

    async fn find_sent(&self, m: &OutgoingMessage) -> Result<Option<String>, String> {
        let response = self
            .client
            .get(self.messages_url.clone())
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .query(&[("To", m.to.as_str()), ("PageSize", "100")])
            .send()
            .await
            .map_err(|e| format!("looking up earlier attempts: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "looking up earlier attempts: HTTP {}",
                response.status().as_u16()
            ));
        }
        let list: MessageList = response
            .json()
            .await
            .map_err(|e| format!("looking up earlier attempts: {e}"))?;
        Ok(list
            .messages
            .into_iter()
            .find(|r| r.body == m.body)
            .map(|r| r.sid))
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.config.timeout)
    }

    fn cost(&self, m: &OutgoingMessage) -> u32 {
        let mut costs = self.costs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = costs.iter().find(|(body, _)| *body == m.body) {
            return *n;
        }
        let n = segments(&m.body).count;
        if costs.len() == COST_CACHE {
            costs.pop_back();
        }
        costs.push_front((m.body.clone(), n));
        n
    }
}
