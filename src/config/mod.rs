//! The configuration: a TOML file (`--config FILE`, `OUTAGECAST_CONFIG`) under the
//! `OUTAGECAST_*` environment variables and the command-line flags; logging; `config check`.
//!
//! Precedence, highest first: a command-line flag, the environment, the file, the built-in
//! default. The file's keys are the variables in lower case without the prefix
//! (`OUTAGECAST_SMTP_URL` is `smtp_url`), at the top level; values are TOML strings, integers,
//! floats or booleans. A variable that is set, even to the empty string, beats the file (set it
//! empty to switch a file value off). Relative paths in the file are relative to the working
//! directory, as they are in flags and variables.
//!
//! The environment cannot be written (edition 2024 makes `set_var` unsafe and the workspace
//! forbids unsafe code), so the file reaches the two kinds of reader in two ways:
//! - flags with an `env = "OUTAGECAST_*"` (clap): the command line is parsed once; for each such
//!   flag of the chosen (sub)commands that neither the command line nor the environment set,
//!   the file's value is added as `--flag=value` (before a bare `--`, if any) and the command
//!   line is parsed again;
//! - settings read through a lookup (`SmsConfig::from_lookup`, `EmailSettings::from_lookup`,
//!   `WebhookSettings::from_lookup`): [`adapters`] passes them [`lookup`], the environment
//!   and then the file.
//!
//! Modules: [`file`] reads the TOML file, [`layer`] puts it under the command line,
//! [`adapters`] builds each adapter's typed configuration (the one place that does, for
//! `serve`, `notify run` and `config check`), [`check`] is `config check`.
//!
//! Adding a setting: a flag with `env = "OUTAGECAST_*"` in the clap definitions is a key by
//! itself; a setting read through a lookup is added to its adapter's `KEYS` list (e.g.
//! `SmsConfig::KEYS`) beside the `from_lookup` that reads it.
//!
//! Secrets (`sms_auth_token`, `unsubscribe_secret`, a password inside a URL, any key naming a
//! token, secret or password) are shown as `***` by `config check` and never logged.

mod adapters;
mod check;
mod file;
mod layer;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};
use chrono_tz::Tz;
use clap::Arg;
use outagecast_core::contact::Region;
use outagecast_core::secret::redact_url;
use outagecast_core::template::Templates;

pub use adapters::{WorkerOptions, dispatcher, limits, server_config};
pub use check::check;
pub use layer::Invocation;

use file::ConfigFile;

/// What every variable starts with.
pub const PREFIX: &str = "OUTAGECAST_";

/// The binary's own settings read through [`lookup`] (logging), with their defaults. The
/// adapters' are their `KEYS` (see [`adapters::LOOKUP_KEYS`]).
const LOGGING_KEYS: &[(&str, Option<&str>)] = &[
    ("OUTAGECAST_LOG", Some("warn")),
    ("OUTAGECAST_LOG_FORMAT", Some("text")),
];

/// Every variable read through [`lookup`] rather than as a flag, with its default.
fn lookup_keys() -> impl Iterator<Item = &'static (&'static str, Option<&'static str>)> {
    adapters::LOOKUP_KEYS
        .iter()
        .flat_map(|keys| keys.iter())
        .chain(LOGGING_KEYS)
}

/// The file, once read (the first thing `main` does); [`lookup`] reads it.
pub(crate) static FILE: OnceLock<ConfigFile> = OnceLock::new();

/// A setting's value the way every reader outside clap should get it: the variable `name`
/// (`OUTAGECAST_SMTP_URL`) if it is set, else the config file's key (`smtp_url`).
/// [`adapters`] passes it to `SmsConfig::from_lookup`, `EmailSettings::from_lookup`,
/// `WebhookSettings::from_lookup`.
pub fn lookup(name: &str) -> Option<String> {
    if let Some(v) = std::env::var_os(name) {
        return v.into_string().ok();
    }
    FILE.get()?.get(&key_of(name)?).map(str::to_string)
}

/// `OUTAGECAST_SMTP_URL` → `smtp_url`.
pub(crate) fn key_of(name: &str) -> Option<String> {
    name.strip_prefix(PREFIX)
        .filter(|k| !k.is_empty())
        .map(str::to_ascii_lowercase)
}

/// `smtp_url` → `OUTAGECAST_SMTP_URL`.
pub(crate) fn env_name(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase())
}

/// The file key of a flag that has an `OUTAGECAST_*` variable (not `OUTAGECAST_CONFIG`: a file
/// cannot name another).
pub(crate) fn env_key(arg: &Arg) -> Option<String> {
    arg.get_env()
        .and_then(|e| e.to_str())
        .and_then(key_of)
        .filter(|k| k != "config")
}

/// Whether a setting's value is a secret, shown as `***`.
pub fn is_secret(key: &str) -> bool {
    ["token", "secret", "password", "passwd"]
        .iter()
        .any(|w| key.contains(w))
}

/// A value as `config check` shows it: secrets as `***`, a URL's password as `***`.
pub(crate) fn shown(key: &str, value: &str) -> String {
    if is_secret(key) && !value.is_empty() {
        "***".to_string()
    } else {
        redact_url(value)
    }
}

/// The country for national phone formats (`--default-region`); none when empty.
pub fn default_region(text: Option<&str>) -> Result<Option<Region>> {
    Ok(text
        .filter(|r| !r.trim().is_empty())
        .map(Region::parse)
        .transpose()?)
}

/// The utility's time zone (`--timezone`).
pub fn timezone(text: &str) -> Result<Tz> {
    text.trim().parse().map_err(|_| {
        anyhow!(
            "--timezone: {text:?} is not an IANA time zone; use a name like Europe/Helsinki or UTC"
        )
    })
}

/// The operator's templates (`--templates`), checked against `zone`.
pub fn templates(path: Option<&Path>, zone: Tz) -> Result<Option<Templates>> {
    path.map(|path| {
        let locale = outagecast_core::message::Locale {
            zone,
            now: chrono::Utc::now(),
        };
        Templates::new(crate::template::load_templates(path)?, locale)
            .map_err(|e| anyhow!("OUTAGECAST_TEMPLATES {}: {e}", path.display()))
    })
    .transpose()
}

/// How log lines are written (`OUTAGECAST_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

pub(crate) fn log_format(text: &str) -> Result<LogFormat> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => bail!("OUTAGECAST_LOG_FORMAT: {text:?} is not json or text"),
    }
}

pub(crate) fn log_filter(text: &str) -> Result<tracing_subscriber::EnvFilter> {
    let text = if text.trim().is_empty() { "warn" } else { text };
    tracing_subscriber::EnvFilter::try_new(text).map_err(|e| {
        anyhow!(
            "OUTAGECAST_LOG: {text:?} is not a log filter ({e}); write a level (warn, info, debug) \
             or directives such as outagecast=info,sqlx=warn"
        )
    })
}

/// Starts logging to stderr: `OUTAGECAST_LOG` (a filter, default `warn`) and
/// `OUTAGECAST_LOG_FORMAT` (`text` or `json`), from the environment or the file. A bad value
/// is an error, or (`lenient`, for `config check`, which reports it) the default.
pub fn init_logging(lenient: bool) -> Result<()> {
    let filter = log_filter(&lookup("OUTAGECAST_LOG").unwrap_or_default());
    let format = log_format(&lookup("OUTAGECAST_LOG_FORMAT").unwrap_or_default());
    let (filter, format) = match (filter, format) {
        (Ok(f), Ok(m)) => (f, m),
        (Err(e), _) | (_, Err(e)) if !lenient => return Err(e),
        (f, m) => (
            f.unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            m.unwrap_or(LogFormat::Text),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Colour only on a terminal, and never with `NO_COLOR` set (https://no-color.org: any
/// non-empty value): a log file or journald gets plain text.
pub fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `config check` found problems and printed them; exit non-zero without another line.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the configuration has problems")
    }
}

impl std::error::Error for Reported {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_variables() {
        assert_eq!(key_of("OUTAGECAST_SMTP_URL").as_deref(), Some("smtp_url"));
        assert_eq!(key_of("HOME"), None);
        assert_eq!(env_name("sms_rate"), "OUTAGECAST_SMS_RATE");
    }

    #[test]
    fn secrets_are_hidden() {
        assert!(is_secret("sms_auth_token") && is_secret("unsubscribe_secret"));
        assert!(!is_secret("sms_account_sid"));
        assert_eq!(shown("sms_auth_token", "abc"), "***");
        assert_eq!(
            shown(
                "smtp_url",
                "smtp://bob:hunter2@mail.example.fi:587?tls=none"
            ),
            "smtp://bob:***@mail.example.fi:587?tls=none"
        );
        assert_eq!(shown("smtp_url", "smtp://mail:25"), "smtp://mail:25");
        assert_eq!(
            shown("database_url", "postgres://user:pw@127.0.0.1:1/x"),
            "postgres://user:***@127.0.0.1:1/x"
        );
    }
}
