//! Each adapter's typed configuration, built here and nowhere else: `serve`, `notify run` and
//! `config check` all call these functions, so what `config check` accepts is what the
//! commands run with.
//!
//! - SMS: [`sms`] → `SmsConfig` → `TwilioSms`;
//! - email: [`email`] → `EmailSettings` → `SmtpEmail`;
//! - webhooks and the HTTP server: [`webhooks`] and [`server_config`] → `ServerConfig` →
//!   `outagecast_server::Server`;
//! - the dispatcher workers: [`worker_config`] → `WorkerConfig` → [`dispatcher`].

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono_tz::Tz;
use outagecast_dispatch::email::{EmailSettings, SmtpEmail};
use outagecast_dispatch::sms::{SmsConfig, TwilioSms};
use outagecast_dispatch::voice::{VoiceCall, VoiceConfig};
use outagecast_dispatch::worker::{Dispatcher, InDoubtPolicy, QuietHours, WorkerConfig};
use outagecast_engine::Settings;
use outagecast_ivr::IndexSettings;
use outagecast_ivr::twiml::MenuUrl;
use outagecast_server::webhooks::WebhookSettings;
use outagecast_server::{
    AgiAllow, AgiSettings, ApiSettings, HttpLimits, ServeSettings, ServerConfig, Unsigned,
};
use outagecast_store::Store;

use super::lookup;
use crate::serve::ServeArgs;

/// Every variable the adapters read through [`lookup`] (not as flags), with the defaults
/// `config check` shows: each adapter's own list.
pub const LOOKUP_KEYS: &[&[(&str, Option<&str>)]] = &[
    SmsConfig::KEYS,
    VoiceConfig::KEYS,
    EmailSettings::KEYS,
    WebhookSettings::KEYS,
    WORKER_KEYS,
    outagecast_engine::Limits::KEYS,
    outagecast_server::api::HeavySettings::KEYS,
    outagecast_engine::PublishSettings::KEYS,
];

/// What [`worker_config`] reads through [`lookup`].
const WORKER_KEYS: &[(&str, Option<&str>)] = &[(IN_DOUBT_KEY, Some("resend"))];

/// The size limits (`OUTAGECAST_MAX_AREA_VERTICES`, `OUTAGECAST_MAX_ADDRESS_CHARS`).
pub fn limits() -> Result<outagecast_engine::Limits> {
    Ok(outagecast_engine::Limits::from_lookup(lookup)?)
}

/// `OUTAGECAST_SMS_*`; `None` when SMS is not configured.
pub fn sms() -> Result<Option<SmsConfig>> {
    Ok(SmsConfig::from_lookup(lookup)?)
}

/// `OUTAGECAST_VOICE_*` (the account defaults to the SMS one); `None` when voice is not
/// configured (no `OUTAGECAST_VOICE_FROM`).
pub fn voice() -> Result<Option<VoiceConfig>> {
    Ok(VoiceConfig::from_lookup(lookup)?)
}

/// The voice transport and its calls per second; the store counts the calls in progress.
pub fn voice_transport(config: VoiceConfig, store: &Store) -> Result<(VoiceCall, u32)> {
    let rate = config.rate;
    Ok((
        VoiceCall::new(config, std::sync::Arc::new(store.clone()))?,
        rate,
    ))
}

/// `OUTAGECAST_SMTP_URL` and what email needs with it; `None` when email is not configured.
pub fn email() -> Result<Option<EmailSettings>> {
    Ok(EmailSettings::from_lookup(lookup)?)
}

/// The webhooks' settings (public URL, auth token, unsubscribe secret, region).
pub fn webhooks() -> Result<WebhookSettings> {
    Ok(WebhookSettings::from_lookup(lookup)?)
}

/// The SMS transport and its rate, from its configuration.
pub fn sms_transport(config: SmsConfig) -> Result<(TwilioSms, u32)> {
    let rate = config.rate;
    Ok((TwilioSms::new(config)?, rate))
}

/// The email transport, from its configuration.
pub fn email_transport(settings: &EmailSettings) -> Result<SmtpEmail> {
    Ok(SmtpEmail::new(settings)?)
}

/// How the workers claim and pace (the flags of `notify run`, also `serve`'s).
pub struct WorkerOptions<'a> {
    /// Notices claimed at once.
    pub batch: u32,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Seconds a claim is held.
    pub lease: f64,
    /// Quiet hours (`21:00-08:00` or `off`).
    pub quiet_hours: &'a str,
}

/// The workers' configuration; `sms` (when SMS is on) sets how long an in-doubt send settles.
/// The in-doubt policy's setting (it applies to both channels; it is named after SMS, where it
/// matters most).
pub const IN_DOUBT_KEY: &str = "OUTAGECAST_SMS_IN_DOUBT";

pub fn worker_config(
    timezone: Tz,
    opts: &WorkerOptions<'_>,
    sms: Option<&SmsConfig>,
) -> Result<WorkerConfig> {
    let mut config = WorkerConfig::new(WorkerConfig::unique_owner());
    config.in_doubt = InDoubtPolicy::parse(&super::lookup(IN_DOUBT_KEY).unwrap_or_default())?;
    config.batch = opts.batch.max(1);
    config.concurrency = opts.concurrency.max(1);
    config.lease = seconds("--lease", opts.lease, 1.0)?;
    (config.quiet_hours, config.call_quiet_hours) = QuietHours::parse_setting(opts.quiet_hours)?;
    config.timezone = timezone;
    if let Some(sms) = sms {
        // Five request timeouts: long after any request the provider was still handling.
        config.in_doubt_settle = sms.timeout * 5;
    }
    Ok(config)
}

/// The dispatcher that `serve` and `notify run` run.
pub type AppDispatcher = Dispatcher<TwilioSms, SmtpEmail, Store, VoiceCall>;

/// The dispatcher for the channels configured; `None` when none is.
pub fn dispatcher(
    store: &Store,
    settings: &Settings,
    opts: &WorkerOptions<'_>,
) -> Result<Option<AppDispatcher>> {
    let sms_config = sms()?;
    let config = worker_config(settings.timezone, opts, sms_config.as_ref())?;
    let sms = sms_config.map(sms_transport).transpose()?;
    let email = email()?.map(|s| email_transport(&s)).transpose()?;
    let voice = voice()?.map(|v| voice_transport(v, store)).transpose()?;
    if sms.is_none() && email.is_none() && voice.is_none() {
        return Ok(None);
    }
    Ok(Some(Dispatcher::with_voice(
        store.clone(),
        sms,
        email,
        voice,
        config,
    )))
}

/// Where Twilio calls go after the announcement (`--ivr-menu-url`); none when empty.
pub fn menu_url(text: Option<&str>) -> Result<Option<MenuUrl>> {
    text.filter(|u| !u.trim().is_empty())
        .map(MenuUrl::parse)
        .transpose()
        .context("--ivr-menu-url")
}

/// The caller index's settings (`--ivr-restored-grace`).
pub fn index_settings(restored_grace: &str) -> Result<IndexSettings> {
    let restored_grace =
        IndexSettings::parse_grace(restored_grace).context("--ivr-restored-grace")?;
    Ok(IndexSettings { restored_grace })
}

/// The HTTP server's configuration for `serve`.
pub fn server_config(settings: &Settings, args: &ServeArgs) -> Result<ServerConfig> {
    Ok(ServerConfig {
        serve: ServeSettings {
            default_region: settings.default_region,
            menu_url: menu_url(args.ivr_menu_url.as_deref())?,
            index: index_settings(&args.ivr_restored_grace)?,
            http: HttpLimits {
                header_read_timeout: seconds(
                    "--http-header-timeout",
                    args.http_header_timeout,
                    0.1,
                )?,
                request_timeout: seconds("--http-request-timeout", args.http_request_timeout, 0.1)?,
                max_connections: at_least_one("--http-max-connections", args.http_max_connections)?,
            },
            agi: AgiSettings {
                idle_timeout: seconds("--agi-idle-timeout", args.agi_idle_timeout, 0.1)?,
                max_sessions: at_least_one("--agi-max-sessions", args.agi_max_sessions)?,
                allow: AgiAllow::parse(&args.agi_allow)?,
                ..AgiSettings::default()
            },
            ..ServeSettings::default()
        },
        api: ApiSettings {
            confirm_threshold: args.confirm_threshold,
            import_max_bytes: args.import_max_bytes,
            heavy: outagecast_server::api::HeavySettings::from_lookup(lookup)
                .map_err(|e| anyhow::anyhow!(e))?,
            publish: outagecast_engine::PublishSettings::from_lookup(lookup)
                .map_err(|e| anyhow::anyhow!(e))?,
            ..ApiSettings::default()
        },
        webhooks: WebhookSettings {
            unsigned: if args.insecure_webhooks {
                Unsigned::AcceptInsecure
            } else {
                Unsigned::Refuse
            },
            ..webhooks()?
        },
    })
}

/// A duration flag: a finite number of seconds from `min` to a day (a timeout of 0 would
/// close everything at once).
fn seconds(flag: &str, secs: f64, min: f64) -> Result<Duration> {
    if !(secs.is_finite() && (min..=86_400.0).contains(&secs)) {
        bail!("{flag}: {secs} is not a number of seconds from {min} to 86400");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A cap flag: at least 1.
fn at_least_one(flag: &str, n: usize) -> Result<usize> {
    if n == 0 {
        bail!("{flag}: 0 would refuse every connection; give at least 1");
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use super::*;

    /// Runs every adapter's `from_lookup` with a value for every name and records the names
    /// read: each must be in [`LOOKUP_KEYS`], or the config file would refuse its key.
    #[test]
    fn every_variable_an_adapter_reads_is_registered() {
        let read = RefCell::new(BTreeSet::new());
        let get = |name: &str| {
            read.borrow_mut().insert(name.to_string());
            Some(match name {
                "OUTAGECAST_DEFAULT_REGION" => "FI".to_string(),
                "OUTAGECAST_SMTP_URL" => "smtp://mail.example.fi".to_string(),
                _ => "1".to_string(),
            })
        };
        SmsConfig::from_lookup(get).unwrap();
        VoiceConfig::from_lookup(|name| match name {
            "OUTAGECAST_PUBLIC_URL" => Some("https://notify.example.fi".into()),
            other => get(other),
        })
        .unwrap();
        EmailSettings::from_lookup(get).unwrap();
        WebhookSettings::from_lookup(get).unwrap();
        outagecast_engine::Limits::from_lookup(get).unwrap();
        outagecast_server::api::HeavySettings::from_lookup(get).unwrap();
        let registered: BTreeSet<&str> = LOOKUP_KEYS
            .iter()
            .flat_map(|keys| keys.iter().map(|(name, _)| *name))
            .collect();
        let read = read.into_inner();
        assert!(read.len() >= 10, "{read:?}");
        for name in &read {
            assert!(
                registered.contains(name.as_str()),
                "{name} is not in a KEYS list"
            );
        }
    }

    #[test]
    fn no_config_struct_shows_a_secret() {
        let get = |name: &str| {
            Some(match name {
                "OUTAGECAST_DEFAULT_REGION" => "FI".to_string(),
                "OUTAGECAST_SMTP_URL" => "smtp://bob:smtp-pw-1234@mail.example.fi".to_string(),
                "OUTAGECAST_SMS_AUTH_TOKEN" => "sms-token-1234".to_string(),
                "OUTAGECAST_UNSUBSCRIBE_SECRET" => "unsubscribe-secret-1234".to_string(),
                "OUTAGECAST_PUBLIC_URL" => "https://notify.example.fi".to_string(),
                "OUTAGECAST_SMS_BASE_URL" => "http://127.0.0.1:1".to_string(),
                _ => "1".to_string(),
            })
        };
        let sms = SmsConfig::from_lookup(get).unwrap().unwrap();
        let email = EmailSettings::from_lookup(get).unwrap().unwrap();
        let webhooks = WebhookSettings::from_lookup(get).unwrap();
        let transport = TwilioSms::new(sms.clone()).unwrap();
        let server = ServerConfig {
            webhooks: webhooks.clone(),
            ..ServerConfig::default()
        };
        let checked = outagecast_server::webhooks::Webhooks::new(webhooks.clone()).unwrap();
        for shown in [
            format!("{sms:?}"),
            format!("{transport:?}"),
            format!("{email:?}"),
            format!("{webhooks:?}"),
            format!("{server:?}"),
            format!("{checked:?}"),
            format!("{:?}", checked.signer()),
        ] {
            for secret in ["sms-token-1234", "smtp-pw-1234", "unsubscribe-secret-1234"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        assert!(format!("{sms:?}").contains("auth_token: ***"));
    }
}
