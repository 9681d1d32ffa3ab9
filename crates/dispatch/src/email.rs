//! Email over SMTP with lettre: multipart plain text and HTML, one-click unsubscribe
//! (RFC 8058) and a Message-ID derived from the notice, so that a resend after a crash is the
//! same message to mail clients.
//!
//! Configuration (environment, or the same keys from the config file):
//! - `OUTAGECAST_SMTP_URL`: `smtp://[user:pass@]host[:port]` speaks STARTTLS and refuses to
//!   go on without it; `smtps://…` is TLS from the first byte (port 465);
//!   `smtp://…?tls=opportunistic` uses STARTTLS when offered; `smtp://…?tls=none` is plain
//!   text, for a relay on the same host or a test server.
//! - `OUTAGECAST_EMAIL_FROM`: `noreply@utility.fi` or `Helsinki Water <noreply@utility.fi>`.
//! - `OUTAGECAST_PUBLIC_URL`: where the unsubscribe link points (`https://notify.utility.fi`).
//! - `OUTAGECAST_UNSUBSCRIBE_SECRET`: the key that signs unsubscribe links (16+ bytes).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use outagecast_core::contact::{Channel, SenderName};
use outagecast_core::secret::{Secret, redact_url};
use sha2::Sha256;

use crate::DispatchError;
use crate::transport::{LookupError, OutgoingMessage, SendOutcome, Transport};

/// How long one message may take in all (connect, greeting, each command and DATA) by
/// default (`OUTAGECAST_SMTP_TIMEOUT`): a server that accepts the connection and never answers
/// holds one email this long, never the other channels.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest unsubscribe token accepted (an address is at most 254 bytes).
const MAX_TOKEN_LEN: usize = 1024;

/// Domain separation for the unsubscribe MAC, so the key signs nothing else by accident.
const TOKEN_CONTEXT: &[u8] = b"outagecast unsubscribe v1\0email\0";

/// The email settings as given. The URL may hold a password and the secret is a secret:
/// both print as `***`.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `OUTAGECAST_SMTP_URL`.
    pub smtp_url: Secret<String>,
    /// `OUTAGECAST_EMAIL_FROM`.
    pub from: String,
    /// `OUTAGECAST_PUBLIC_URL`: the base of the unsubscribe link.
    pub public_url: String,
    /// `OUTAGECAST_UNSUBSCRIBE_SECRET`.
    pub unsubscribe_secret: Secret<String>,
    /// `OUTAGECAST_SMTP_TIMEOUT`: the whole of one message's SMTP exchange.
    pub timeout: Duration,
    /// `OUTAGECAST_SENDER_NAME`: the display name of a bare `OUTAGECAST_EMAIL_FROM` address.
    pub sender_name: Option<SenderName>,
}

impl EmailSettings {
    /// Every variable [`EmailSettings::from_lookup`] reads (none has a default). A new one
    /// goes here and in `from_lookup`: the binary's config file and `config check` take their
    /// keys from this list.
    pub const KEYS: &[(&str, Option<&str>)] = &[
        ("OUTAGECAST_SMTP_URL", None),
        ("OUTAGECAST_EMAIL_FROM", None),
        ("OUTAGECAST_PUBLIC_URL", None),
        ("OUTAGECAST_UNSUBSCRIBE_SECRET", None),
        ("OUTAGECAST_SMTP_TIMEOUT", Some("30")),
        ("OUTAGECAST_SENDER_NAME", None),
    ];

    /// Reads the settings from the environment; `None` when `OUTAGECAST_SMTP_URL` is unset
    /// (email is off).
    pub fn from_env() -> Result<Option<Self>, DispatchError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `get` (the environment, a config file, a test's map).
    /// `None` when no SMTP URL is given; an error naming the variable when another is missing.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, DispatchError> {
        let value = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let Some(smtp_url) = value("OUTAGECAST_SMTP_URL") else {
            return Ok(None);
        };
        let require = |field: &'static str, hint: &str| {
            value(field).ok_or_else(|| DispatchError::Config {
                field,
                problem: format!("is not set but OUTAGECAST_SMTP_URL is; {hint}"),
            })
        };
        let timeout = match value("OUTAGECAST_SMTP_TIMEOUT") {
            None => DEFAULT_SMTP_TIMEOUT,
            Some(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| DispatchError::Config {
                    field: "OUTAGECAST_SMTP_TIMEOUT",
                    problem: format!("{t:?} is not a number of seconds between 0 and 600"),
                })?,
        };
        let sender_name = value("OUTAGECAST_SENDER_NAME")
            .map(|n| SenderName::parse(&n))
            .transpose()
            .map_err(|e| DispatchError::Config {
                field: "OUTAGECAST_SENDER_NAME",
                problem: e.to_string(),
            })?;
        Ok(Some(EmailSettings {
            timeout,
            sender_name,
            smtp_url: smtp_url.into(),
            from: require(
                "OUTAGECAST_EMAIL_FROM",
                "give the sender, e.g. \"Helsinki Water <noreply@utility.fi>\"",
            )?,
            public_url: require(
                "OUTAGECAST_PUBLIC_URL",
                "give the https address customers reach this server at, for unsubscribe links",
            )?,
            unsubscribe_secret: require(
                "OUTAGECAST_UNSUBSCRIBE_SECRET",
                "give a random string of at least 16 characters to sign unsubscribe links",
            )?
            .into(),
        }))
    }
}

/// Signs and checks one-click unsubscribe tokens: the address and an HMAC-SHA256 of it,
/// both base64url, so the link can be checked without looking anything up.
#[derive(Clone)]
pub struct UnsubscribeKey {
    /// The keyed MAC with the context already fed in; cloned per token.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnsubscribeKey(…)")
    }
}

impl UnsubscribeKey {
    /// The key from `OUTAGECAST_UNSUBSCRIBE_SECRET`: at least 16 bytes.
    pub fn new(secret: &str) -> Result<Self, DispatchError> {
        if secret.len() < 16 {
            return Err(DispatchError::Config {
                field: "OUTAGECAST_UNSUBSCRIBE_SECRET",
                problem: "is shorter than 16 characters; use a long random string (e.g. `openssl rand -hex 32`)".into(),
            });
        }
        // HMAC takes a key of any length; the error is unreachable but not unwrapped.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).map_err(|e| {
            DispatchError::Config {
                field: "OUTAGECAST_UNSUBSCRIBE_SECRET",
                problem: e.to_string(),
            }
        })?;
        mac.update(TOKEN_CONTEXT);
        Ok(UnsubscribeKey { mac })
    }

    fn mac(&self, address: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(address.as_bytes());
        mac
    }

    /// The token for `address`.
    pub fn token(&self, address: &str) -> String {
        let tag = self.mac(address).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(address.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The address a token was made for, if the token is genuine.
    pub fn verify(&self, token: &str) -> Option<String> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (address, tag) = token.split_once('.')?;
        let address = String::from_utf8(URL_SAFE_NO_PAD.decode(address).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(&address).verify_slice(&tag).ok()?;
        Some(address)
    }
}

/// The email adapter.
#[derive(Clone)]
pub struct SmtpEmail {
    /// Always `Some` until dropped (see the `Drop` impl).
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    public_url: String,
    key: UnsubscribeKey,
    /// The whole of one message's exchange (the worker enforces it).
    deadline: Duration,
}

impl fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEmail")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// `smtp://` without a `tls` parameter means STARTTLS, required; `tls=none` means plain.
/// Returns the URL in the form lettre reads.
fn lettre_url(url: &str) -> Result<String, DispatchError> {
    let bad = |problem: String| DispatchError::Config {
        field: "OUTAGECAST_SMTP_URL",
        problem,
    };
    let url = url.trim();
    let (scheme, _) = url.split_once("://").ok_or_else(|| {
        bad("is not a URL; write smtp://host:587 (STARTTLS), smtps://host:465 (TLS) or smtp://host:25?tls=none (plain)".into())
    })?;
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut tls = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("tls", v)) => tls = Some(v.to_ascii_lowercase()),
            _ => rest.push(pair),
        }
    }
    if !rest.is_empty() {
        return Err(bad(format!(
            "unknown parameter {:?}; the only one is tls=required|opportunistic|none",
            rest.join("&")
        )));
    }
    let tls = match (scheme.to_ascii_lowercase().as_str(), tls.as_deref()) {
        ("smtps", None) => None,
        ("smtps", Some(_)) => {
            return Err(bad(
                "smtps:// is always TLS; drop the tls parameter or use smtp://".into(),
            ));
        }
        ("smtp", None | Some("required" | "starttls")) => Some("required"),
        ("smtp", Some("opportunistic")) => Some("opportunistic"),
        ("smtp", Some("none" | "off" | "plain")) => None,
        ("smtp", Some(other)) => {
            return Err(bad(format!(
                "tls={other} is not one of required, opportunistic, none"
            )));
        }
        (other, _) => {
            return Err(bad(format!(
                "scheme {other:?} is not smtp or smtps; write smtp://host:587 or smtps://host:465"
            )));
        }
    };
    Ok(match tls {
        Some(mode) => format!("{base}?tls={mode}"),
        None => base.to_string(),
    })
}

impl SmtpEmail {
    /// Checks the settings and builds the (pooled, lazily connecting) SMTP client. Call it
    /// inside the Tokio runtime: the pool runs a task there.
    pub fn new(settings: &EmailSettings) -> Result<Self, DispatchError> {
        let mut from: Mailbox = settings
            .from
            .trim()
            .parse()
            .map_err(|e| DispatchError::Config {
                field: "OUTAGECAST_EMAIL_FROM",
                problem: format!(
                    "{:?} is not a mailbox ({e}); write noreply@utility.fi or \"Name <noreply@utility.fi>\"",
                    settings.from
                ),
            })?;
        if from.name.is_none() {
            from.name = settings
                .sender_name
                .as_ref()
                .map(|n| n.as_str().to_string());
        }
        let public_url = public_base(&settings.public_url)?;
        let key = UnsubscribeKey::new(settings.unsubscribe_secret.expose())?;
        let url = lettre_url(settings.smtp_url.expose())?;
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url).map_err(|e| {
            DispatchError::Config {
                field: "OUTAGECAST_SMTP_URL",
                problem: format!(
                    "{} is not usable: {e}",
                    redact_url(settings.smtp_url.expose())
                ),
            }
        })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(DispatchError::Config {
                field: "OUTAGECAST_SMTP_URL",
                problem: "the SMTP client must be created inside the Tokio runtime".into(),
            });
        }
        crate::install_crypto_provider();
        let transport = builder
            // Each command's own limit; the worker bounds the whole message by `deadline`.
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(8))
            .build();
        Ok(SmtpEmail {
            transport: Some(transport),
            from,
            public_url,
            key,
            deadline: settings.timeout,
        })
    }

    /// Connects to the server, reads its greeting and says EHLO (and logs in, when the URL
    /// has credentials), within the SMTP timeout: `Ok` with what answered, or what is wrong.
    /// Sends nothing. For `config check --probe`.
    pub async fn probe(&self) -> Result<String, String> {
        let Some(transport) = &self.transport else {
            return Err("the SMTP client is closed".into());
        };
        match tokio::time::timeout(self.deadline, transport.test_connection()).await {
            Ok(Ok(true)) => Ok("the SMTP server greeted and answered EHLO".into()),
            Ok(Ok(false)) => {
                Err("the SMTP server did not answer EHLO; check OUTAGECAST_SMTP_URL".into())
            }
            Ok(Err(e)) => Err(format!(
                "{}; check OUTAGECAST_SMTP_URL",
                crate::sms::error_chain(&e)
            )),
            Err(_) => Err(format!(
                "no answer within {:.0} s (OUTAGECAST_SMTP_TIMEOUT); check OUTAGECAST_SMTP_URL",
                self.deadline.as_secs_f64()
            )),
        }
    }

    /// The unsubscribe link for `address`.
    pub fn unsubscribe_url(&self, address: &str) -> String {
        format!(
            "{}/unsubscribe?token={}",
            self.public_url,
            self.key.token(address)
        )
    }

    /// The Message-ID of a notice: the same on every attempt.
    pub fn message_id(&self, message: &OutgoingMessage) -> String {
        format!(
            "<notice-{}.{}@{}>",
            message.notice_id,
            message.incident_id,
            self.from.email.domain()
        )
    }

    /// The email for a notice, ready to send (or to look at, in tests and previews).
    pub fn build(&self, message: &OutgoingMessage) -> Result<Message, String> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|e| format!("{:?} is not an email address: {e}", message.to))?;
        let unsubscribe = self.unsubscribe_url(&message.to);
        let language = content_language(&message.language);
        let footer = footer(language);
        let plain = format!("{}\n\n-- \n{} {unsubscribe}\n", message.body, footer.0);
        let html = html_body(
            &message.subject,
            &message.body,
            language,
            footer,
            &unsubscribe,
        );
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(self.message_id(message)))
            .raw_header(header("Content-Language", language))
            .raw_header(header("List-Unsubscribe", &format!("<{unsubscribe}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click",
            ))
            // RFC 3834: no auto-replies ("out of office") to a notification.
            .raw_header(header("Auto-Submitted", "auto-generated"))
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| format!("cannot build the email: {e}"))
    }
}

impl Drop for SmtpEmail {
    /// lettre's pool spawns a Tokio task when it is dropped, which panics outside a runtime;
    /// there (a process shutting down) the connections are left to the OS instead.
    fn drop(&mut self) {
        if let Some(transport) = self.transport.take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(transport);
        }
    }
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

/// The public base URL without a trailing slash; https, or http for a local address.
fn public_base(url: &str) -> Result<String, DispatchError> {
    let url = url.trim().trim_end_matches('/');
    let local = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    let host = url.strip_prefix("https://").unwrap_or_default();
    if (host.is_empty() || host.contains(['?', '#', ' '])) && !local {
        return Err(DispatchError::Config {
            field: "OUTAGECAST_PUBLIC_URL",
            problem: format!(
                "{url:?} is not an https:// address; one-click unsubscribe (RFC 8058) needs one, e.g. https://notify.utility.fi"
            ),
        });
    }
    Ok(url.to_string())
}

/// `fi`, `sv` or `en`; anything else is sent as English.
fn content_language(code: &str) -> &'static str {
    match code.trim().get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("fi") => "fi",
        Some("sv") => "sv",
        _ => "en",
    }
}

/// The unsubscribe sentence and link text in a language.
fn footer(language: &str) -> (&'static str, &'static str) {
    match language {
        "fi" => (
            "Et halua näitä viestejä sähköpostiin? Peru tilaus:",
            "Peru tilaus",
        ),
        "sv" => (
            "Vill du inte få dessa meddelanden per e-post? Avsluta:",
            "Avsluta",
        ),
        _ => (
            "Don't want these messages by email? Unsubscribe:",
            "Unsubscribe",
        ),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_body(
    subject: &str,
    body: &str,
    language: &str,
    footer: (&str, &str),
    unsubscribe: &str,
) -> String {
    let paragraphs: String = body
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>\n", escape_html(p).replace('\n', "<br>\n")))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{language}\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{paragraphs}<p style=\"font-size:small;color:#555\">{} <a href=\"{}\">{}</a></p>\n</body>\n</html>\n",
        escape_html(subject),
        escape_html(footer.0),
        escape_html(unsubscribe),
        escape_html(footer.1),
    )
}

/// What an SMTP error means for the notice: 5xx is final, and so is an internationalised
/// address that the server cannot take (no SMTPUTF8); everything else (4xx, no connection, a
/// TLS or login problem the operator can fix) is tried again.
fn outcome_of(error: &lettre::transport::smtp::Error, to: &str) -> SendOutcome {
    let reason = format!("SMTP: {}", crate::sms::error_chain(error));
    // The server's fault, not the recipient's: a refused login, no connection, TLS that cannot
    // be agreed. Every email would fail the same way, so the channel stops instead.
    let login_refused = error
        .status()
        .is_some_and(|c| matches!(u16::from(c), 530 | 534 | 535 | 454));
    if login_refused {
        return SendOutcome::ProviderDown {
            reason: format!(
                "the SMTP server refused the login ({reason}); check the user and password in OUTAGECAST_SMTP_URL"
            ),
        };
    }
    // A client-side refusal for an ASCII address is the set-up's (STARTTLS not offered, no
    // login mechanism in common); for an internationalised one it is that address's (below).
    if error.is_tls() || no_connection(error) || (error.is_client() && to.is_ascii()) {
        return SendOutcome::ProviderDown {
            reason: format!(
                "cannot reach the SMTP server ({reason}); check OUTAGECAST_SMTP_URL and the network"
            ),
        };
    }
    if error.is_permanent() || (error.is_client() && !to.is_ascii()) {
        SendOutcome::Permanent { reason }
    } else {
        SendOutcome::Retry {
            reason,
            after: None,
            // A timeout or a garbled reply after the message data went out: the server may
            // have queued it. The Message-ID is stable, so a resend is recognisable.
            in_doubt: error.is_timeout() || error.is_response(),
        }
    }
}

/// Whether the connection could not be made at all (refused, unreachable, a name that does not
/// resolve): lettre does not say so directly, its sources do.
fn no_connection(error: &lettre::transport::smtp::Error) -> bool {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable
            ) || io.to_string().contains("failed to lookup address")
            {
                return true;
            }
        }
        source = e.source();
    }
    false
}

impl Transport for SmtpEmail {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, message: &OutgoingMessage) -> SendOutcome {
        let email = match self.build(message) {
            Ok(email) => email,
            Err(reason) => return SendOutcome::Permanent { reason },
        };
        let Some(transport) = self.transport.as_ref() else {
            return SendOutcome::Retry {
                reason: "SMTP client is shut down".into(),
                after: None,
                in_doubt: false,
            };
        };
        match transport.send(email).await {
            Ok(_) => SendOutcome::Accepted {
                provider_id: self.message_id(message),
            },
            Err(e) => outcome_of(&e, &message.to),
        }
    }

    async fn find_sent(&self, _message: &OutgoingMessage) -> Result<Option<String>, LookupError> {
        // SMTP cannot be asked; a resend carries the same Message-ID.
        Err(LookupError::Unsupported)
    }

    fn timeout(&self) -> Duration {
        self.deadline
    }

    fn cost(&self, _message: &OutgoingMessage) -> u32 {
        1
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(url: &str) -> EmailSettings {
        EmailSettings {
            smtp_url: url.into(),
            from: "Helsinki Water <noreply@vesi.example.fi>".into(),
            public_url: "https://notify.example.fi/".into(),
            unsubscribe_secret: "0123456789abcdef0123456789abcdef".into(),
            timeout: DEFAULT_SMTP_TIMEOUT,
            sender_name: None,
        }
    }

    #[test]
    fn urls_map_to_lettre_with_starttls_by_default() {
        assert_eq!(
            lettre_url("smtp://mail.example.fi:587").unwrap(),
            "smtp://mail.example.fi:587?tls=required"
        );
        assert_eq!(
            lettre_url("smtp://u:p@mail.example.fi?tls=opportunistic").unwrap(),
            "smtp://u:p@mail.example.fi?tls=opportunistic"
        );
        assert_eq!(
            lettre_url("smtp://127.0.0.1:2525?tls=none").unwrap(),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            lettre_url("smtps://mail.example.fi").unwrap(),
            "smtps://mail.example.fi"
        );
        for bad in [
            "mail.example.fi",
            "http://mail.example.fi",
            "smtp://h?tls=maybe",
            "smtp://h?x=1",
            "smtps://h?tls=none",
        ] {
            let e = lettre_url(bad).unwrap_err().to_string();
            assert!(e.starts_with("OUTAGECAST_SMTP_URL: "), "{bad}: {e}");
        }
    }

    #[test]
    fn settings_name_the_missing_variable_and_never_print_the_password() {
        let vars = |url: &'static str| {
            move |name: &str| match name {
                "OUTAGECAST_SMTP_URL" => Some(url.to_string()),
                "OUTAGECAST_EMAIL_FROM" => Some("noreply@example.fi".to_string()),
                _ => None,
            }
        };
        let e = EmailSettings::from_lookup(vars("smtp://u:hunter2@h")).unwrap_err();
        assert!(e.to_string().starts_with("OUTAGECAST_PUBLIC_URL: "), "{e}");
        assert!(
            EmailSettings::from_lookup(|_| None).unwrap().is_none(),
            "no URL, no email"
        );
        let s = settings("smtp://user:hunter2@mail.example.fi");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn bad_settings_are_refused_with_the_field_named_even_outside_a_runtime() {
        let mut s = settings("smtp://127.0.0.1:2525?tls=none");
        s.from = "not an address".into();
        let e = SmtpEmail::new(&s).unwrap_err().to_string();
        assert!(e.starts_with("OUTAGECAST_EMAIL_FROM: "), "{e}");
        let mut s = settings("smtp://127.0.0.1:2525?tls=none");
        s.public_url = "http://notify.example.fi".into();
        let e = SmtpEmail::new(&s).unwrap_err().to_string();
        assert!(e.starts_with("OUTAGECAST_PUBLIC_URL: "), "{e}");
        let mut s = settings("smtp://127.0.0.1:2525?tls=none");
        s.unsubscribe_secret = "short".into();
        let e = SmtpEmail::new(&s).unwrap_err().to_string();
        assert!(e.starts_with("OUTAGECAST_UNSUBSCRIBE_SECRET: "), "{e}");
        // Good settings, but no runtime to run the pool in: an error, not a panic.
        let e = SmtpEmail::new(&settings("smtp://127.0.0.1:2525?tls=none")).unwrap_err();
        assert!(e.to_string().contains("Tokio runtime"), "{e}");
    }

    #[test]
    fn tokens_verify_only_for_their_address_and_key() {
        let key = UnsubscribeKey::new("0123456789abcdef-secret").unwrap();
        let token = key.token("anna@example.fi");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        assert_eq!(key.verify(&token).as_deref(), Some("anna@example.fi"));
        let other = UnsubscribeKey::new("another-secret-of-16+").unwrap();
        assert_eq!(other.verify(&token), None);
        // Someone else's address with this token's tag.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("boss@example.fi"));
        assert_eq!(key.verify(&forged), None);
        for junk in [
            "",
            ".",
            "abc",
            "a.b.c",
            "%%%.%%%",
            &"A".repeat(5000),
            "YQ.AAAA",
        ] {
            assert_eq!(key.verify(junk), None, "{junk}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<b>"A & B's"</b>"#),
            "&lt;b&gt;&quot;A &amp; B&#39;s&quot;&lt;/b&gt;"
        );
    }

    #[tokio::test]
    async fn the_message_has_stable_id_language_and_one_click_unsubscribe() {
        let email = SmtpEmail::new(&settings("smtp://127.0.0.1:2525?tls=none")).unwrap();
        let message = OutgoingMessage {
            notice_id: 42,
            incident_id: 7,
            channel: Channel::Email,
            to: "anna@example.fi".into(),
            subject: "Vesikatko: <putki> rikki".into(),
            body: "Vesikatko & korjaus.".into(),
            language: "fi".into(),
        };
        let built = String::from_utf8(email.build(&message).unwrap().formatted()).unwrap();
        assert!(
            built.contains("Message-ID: <notice-42.7@vesi.example.fi>\r\n"),
            "{built}"
        );
        assert!(built.contains("Content-Language: fi\r\n"));
        assert!(built.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(built.contains(&format!(
            "List-Unsubscribe: <https://notify.example.fi/unsubscribe?token={}>",
            email.key.token("anna@example.fi")
        )));
        assert!(built.contains("multipart/alternative"));
        let again = String::from_utf8(email.build(&message).unwrap().formatted()).unwrap();
        assert!(again.contains("Message-ID: <notice-42.7@vesi.example.fi>\r\n"));
        let bad = OutgoingMessage {
            to: "not an address".into(),
            ..message
        };
        assert!(matches!(
            email.send(&bad).await,
            SendOutcome::Permanent { .. }
        ));
    }

    #[test]
    fn dropping_outside_the_runtime_does_not_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let email = rt
            .block_on(async { SmtpEmail::new(&settings("smtp://127.0.0.1:2525?tls=none")) })
            .unwrap();
        drop(rt);
        drop(email);
    }
}
