//! `config check`: every setting built as the commands build it (through [`super::adapters`]
//! and the same parsers), each effective value and where it came from, and every problem on
//! its own line.

use outagecast_dispatch::voice::{CallLedger, VoiceCall};
use std::collections::{BTreeMap, BTreeSet};
use std::net::ToSocketAddrs;
use std::path::Path;

use anyhow::{Result, anyhow};
use chrono_tz::Tz;
use clap::parser::ValueSource;
use clap::{Arg, CommandFactory};
use outagecast_core::secret::{redact_url, url_password};
use serde_json::{Map, json};

use super::file::Problem;
use super::layer::{Invocation, Setting, check_value, settings};
use super::{
    FILE, Reported, adapters, default_region, env_name, is_secret, key_of, log_filter, log_format,
    shown, templates, timezone,
};
use crate::cli::Cli;

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Env,
    File,
    Default,
    Unset,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
            Source::Unset => "unset",
        }
    }
}

/// A setting's effective value.
struct Effective<'a> {
    setting: &'a Setting,
    value: Option<String>,
    source: Source,
}

impl Effective<'_> {
    /// Where the value was set, for a problem line.
    fn origin(&self) -> String {
        let key = &self.setting.key;
        match self.source {
            Source::Flag => match self.setting.arg.as_ref().and_then(Arg::get_long) {
                Some(long) => format!("set by --{long}"),
                None => "set on the command line".into(),
            },
            Source::Env => format!("set by {}", env_name(key)),
            Source::File => match FILE.get() {
                Some(f) => format!("set in {}", f.at(key)),
                None => "set in the config file".into(),
            },
            Source::Default => "the built-in default".into(),
            Source::Unset => String::new(),
        }
    }
}

fn effective<'a>(inv: &Invocation, setting: &'a Setting) -> Effective<'a> {
    let key = &setting.key;
    let (value, source) = match &setting.arg {
        Some(arg) if setting.global => {
            let id = arg.get_id().as_str();
            let value = inv
                .matches
                .get_raw(id)
                .and_then(|mut v| v.next())
                .map(|v| v.to_string_lossy().into_owned());
            let source = match inv.matches.value_source(id) {
                Some(ValueSource::CommandLine) if inv.from_file.contains(key) => Source::File,
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env,
                Some(ValueSource::DefaultValue) => Source::Default,
                _ => Source::Unset,
            };
            (value, source)
        }
        _ => {
            if let Some(v) = std::env::var_os(env_name(key)) {
                (Some(v.to_string_lossy().into_owned()), Source::Env)
            } else if let Some(v) = FILE.get().and_then(|f| f.get(key)) {
                (Some(v.to_string()), Source::File)
            } else if let Some(d) = &setting.default {
                (Some(d.clone()), Source::Default)
            } else {
                (None, Source::Unset)
            }
        }
    };
    Effective {
        setting,
        value,
        source,
    }
}

/// `config check`: every setting built as the commands build it; each effective value and
/// where it came from; every problem, one line each. Exits non-zero when there is one.
pub async fn check(inv: &Invocation, args: &crate::cli::CheckArgs) -> Result<()> {
    let json = args.json;
    let all = settings(&Cli::command());
    let values: Vec<Effective> = all.iter().map(|s| effective(inv, s)).collect();
    let mut problems: Vec<Problem> = inv.problems.clone();
    for found in validate(&all, &values).await {
        if !problems.iter().any(|p| p.key == found.key) {
            problems.push(found);
        }
    }
    // A problem's text must not carry a secret either.
    let secrets: Vec<String> = values
        .iter()
        .filter_map(|e| {
            let v = e.value.as_deref()?;
            if is_secret(&e.setting.key) {
                Some(v.to_string())
            } else {
                url_password(v).map(str::to_string)
            }
        })
        .filter(|s| s.len() >= 3)
        .collect();
    let scrub = |text: &str| {
        secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
    };
    let warnings = warnings(&values);
    // What answered, per channel; a channel that does not answer is a problem.
    let mut probes = Vec::new();
    if args.probe && problems.is_empty() {
        for (channel, answer) in probe_channels().await {
            match answer {
                Ok(said) => probes.push(json!({"channel": channel, "ok": true, "answer": said})),
                Err(wrong) => {
                    probes.push(json!({"channel": channel, "ok": false, "answer": wrong}));
                    problems.push(Problem {
                        key: channel.to_string(),
                        message: format!("probe {channel}: {wrong}"),
                    });
                }
            }
        }
    }
    let file = FILE.get().map(|f| f.path.display().to_string());
    if json {
        let mut settings = Map::new();
        for e in &values {
            let key = &e.setting.key;
            let mut entry = json!({
                "value": e.value.as_deref().map(|v| shown(key, v)),
                "source": e.source.as_str(),
                "env": env_name(key),
                "flag": e.setting.arg.as_ref().and_then(Arg::get_long).map(|l| format!("--{l}")),
            });
            if e.source == Source::File
                && let Some(line) = FILE
                    .get()
                    .and_then(|f| f.entries.get(key))
                    .and_then(|en| en.line)
            {
                entry["line"] = json!(line);
            }
            settings.insert(key.clone(), entry);
        }
        let out = json!({
            "config_file": file,
            "ok": problems.is_empty(),
            "settings": settings,
            "warnings": warnings,
            "probes": probes,
            "problems": problems
                .iter()
                .map(|p| json!({ "key": p.key, "problem": scrub(&p.message) }))
                .collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        if !problems.is_empty() {
            eprintln!(
                "error: config check: {} problem(s); see \"problems\"",
                problems.len()
            );
            return Err(Reported.into());
        }
        return Ok(());
    }
    println!(
        "config file: {}",
        file.as_deref()
            .unwrap_or("none (--config FILE or OUTAGECAST_CONFIG)")
    );
    let rows: Vec<(String, String, &str)> = values
        .iter()
        .map(|e| {
            let key = &e.setting.key;
            let value = e
                .value
                .as_deref()
                .map_or("-".to_string(), |v| shown(key, v));
            (key.clone(), value, e.source.as_str())
        })
        .collect();
    let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vw = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for (key, value, source) in &rows {
        println!("{key:kw$}  {value:vw$}  {source}");
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    for p in &probes {
        if p["ok"] == true {
            println!(
                "probe {}: ok: {}",
                p["channel"].as_str().unwrap_or_default(),
                scrub(p["answer"].as_str().unwrap_or_default())
            );
        }
    }
    if problems.is_empty() {
        println!("ok: every setting is valid");
        return Ok(());
    }
    for p in &problems {
        eprintln!("error: {}", scrub(&p.message));
    }
    Err(Reported.into())
}

/// What is valid but probably not meant: no channel at all (notices would wait for ever).
fn warnings(values: &[Effective<'_>]) -> Vec<String> {
    let set = |key: &str| {
        values
            .iter()
            .any(|e| e.setting.key == key && e.value.as_deref().is_some_and(|v| !v.is_empty()))
    };
    let mut out = Vec::new();
    if !set("sms_account_sid") && !set("smtp_url") && !set("voice_from") {
        out.push(
            "no channel is configured: notices are planned and stay queued until one is \
             (OUTAGECAST_SMS_ACCOUNT_SID with the other OUTAGECAST_SMS_* settings, or OUTAGECAST_SMTP_URL)"
                .to_string(),
        );
    }
    out
}

/// The calls-in-progress count of a check: nothing is called, so none are.
struct NoCalls;

impl CallLedger for NoCalls {
    fn calls_in_progress(
        &self,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<u64, String>> + Send + '_>,
    > {
        Box::pin(async { Ok(0) })
    }
}

/// Each configured channel's answer to a probe (nothing is sent): `(channel, answer)`.
async fn probe_channels() -> Vec<(&'static str, std::result::Result<String, String>)> {
    let mut out = Vec::new();
    match super::adapters::sms() {
        Ok(Some(config)) => match super::adapters::sms_transport(config) {
            Ok((sms, _)) => out.push(("sms", sms.probe().await)),
            Err(e) => out.push(("sms", Err(format!("{e:#}")))),
        },
        Ok(None) => {}
        Err(e) => out.push(("sms", Err(format!("{e:#}")))),
    }
    match super::adapters::voice() {
        Ok(Some(config)) => match VoiceCall::new(config, std::sync::Arc::new(NoCalls)) {
            Ok(voice) => out.push(("voice", voice.probe().await)),
            Err(e) => out.push(("voice", Err(format!("{e:#}")))),
        },
        Ok(None) => {}
        Err(e) => out.push(("voice", Err(format!("{e:#}")))),
    }
    match super::adapters::email() {
        Ok(Some(settings)) => match super::adapters::email_transport(&settings) {
            Ok(email) => out.push(("email", email.probe().await)),
            Err(e) => out.push(("email", Err(format!("{e:#}")))),
        },
        Ok(None) => {}
        Err(e) => out.push(("email", Err(format!("{e:#}")))),
    }
    out
}

/// Builds every setting as the commands would; the problems, one per key at most.
async fn validate(all: &[Setting], values: &[Effective<'_>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let by_key: BTreeMap<&str, &Effective> =
        values.iter().map(|e| (e.setting.key.as_str(), e)).collect();
    let longs: BTreeMap<String, &str> = all
        .iter()
        .filter_map(|s| Some((s.arg.as_ref()?.get_long()?.to_string(), s.key.as_str())))
        .collect();
    // Attributes an error to the key it names (`OUTAGECAST_SMS_RATE: …`, `--listen: …`), or
    // to `key`, and says where the value was set.
    let mut report = |key: &str, error: &str| {
        let (named, rest) = match error.split_once([':', ' ']) {
            Some((head, rest)) => {
                let named = key_of(head)
                    .or_else(|| {
                        head.strip_prefix("--")
                            .and_then(|l| longs.get(l))
                            .map(|k| k.to_string())
                    })
                    .filter(|k| by_key.contains_key(k.as_str()));
                match named {
                    Some(k) => (k, rest.trim_start_matches(':').trim()),
                    None => (key.to_string(), error),
                }
            }
            None => (key.to_string(), error),
        };
        if problems.iter().any(|p: &Problem| p.key == named) {
            return;
        }
        let origin = by_key
            .get(named.as_str())
            .map(|e| e.origin())
            .unwrap_or_default();
        problems.push(Problem {
            message: if origin.is_empty() {
                format!("{named}: {rest}")
            } else {
                format!("{named}: {rest} ({origin})")
            },
            key: named,
        });
    };
    let value = |key: &str| {
        by_key
            .get(key)
            .and_then(|e| e.value.clone())
            .filter(|v| !v.trim().is_empty())
    };

    // The flags' own parsers (numbers, choices), as the command line would run them.
    let mut parsed = BTreeSet::new();
    for e in values {
        if let (Some(arg), Some(v)) = (&e.setting.arg, &e.value) {
            match check_value(arg, v) {
                Ok(()) => {
                    parsed.insert(e.setting.key.as_str());
                }
                Err(problem) => report(&e.setting.key, &problem),
            }
        }
    }
    let usable = |key: &str| {
        by_key
            .get(key)
            .is_some_and(|e| e.setting.arg.is_none() || parsed.contains(key))
    };

    // Global settings, as every command builds them.
    if let Some(region) = value("default_region").filter(|_| usable("default_region"))
        && let Err(e) = default_region(Some(&region))
    {
        report("default_region", &format!("{e:#}"));
    }
    let zone = match value("timezone").filter(|_| usable("timezone")) {
        Some(t) => match timezone(&t) {
            Ok(z) => z,
            Err(e) => {
                report("timezone", &format!("{e:#}"));
                Tz::UTC
            }
        },
        None => Tz::UTC,
    };
    if let Some(path) = value("templates").filter(|_| usable("templates"))
        && let Err(e) = templates(Some(Path::new(&path)), zone)
    {
        report("templates", &format!("{e:#}"));
    }
    if let Some(db) = value("database_url").filter(|_| usable("database_url")) {
        match outagecast_store::Store::open(&db).await {
            Ok(store) => store.close().await,
            Err(e) => report(
                "database_url",
                &format!(
                    "cannot open the database {:?}: {e}; give a SQLite file path or sqlite: URL",
                    redact_url(&db)
                ),
            ),
        }
    }
    // serve
    for key in ["listen", "agi_listen"] {
        if let Some(addr) = value(key).filter(|_| usable(key))
            && let Err(e) = addr.to_socket_addrs().map(|mut a| a.next())
        {
            report(
                key,
                &format!(
                    "{addr:?} is not a socket address ({e}); give HOST:PORT such as 127.0.0.1:8080"
                ),
            );
        }
    }
    if usable("ivr_menu_url")
        && let Err(e) = adapters::menu_url(value("ivr_menu_url").as_deref())
    {
        report("ivr_menu_url", &format!("{e:#}"));
    }
    if let Some(grace) = value("ivr_restored_grace").filter(|_| usable("ivr_restored_grace"))
        && let Err(e) = adapters::index_settings(&grace)
    {
        report("ivr_restored_grace", &format!("{e:#}"));
    }
    // incident declare|preview --address
    if usable("nominatim_url") && usable("nominatim_user_agent") {
        let url = value("nominatim_url").unwrap_or_default();
        let agent = value("nominatim_user_agent").unwrap_or_default();
        if let Err(e) = outagecast_nominatim::Config::new(&url, &agent) {
            report("nominatim_url", &e.to_string());
        }
    }
    if let Some(path) = value("gazetteer").filter(|_| usable("gazetteer")) {
        let checked = std::fs::read_to_string(&path)
            .map_err(|e| anyhow!("cannot read {path}: {e}"))
            .and_then(|text| {
                outagecast_ingest::geocode::parse_gazetteer_csv(&text, "OUTAGECAST_GAZETTEER")
                    .map(|_| ())
                    .map_err(Into::into)
            });
        if let Err(e) = checked {
            report("gazetteer", &format!("{e:#}"));
        }
    }
    // Logging.
    if let Err(e) = log_filter(&value("log").unwrap_or_default()) {
        report("log", &e.to_string());
    }
    if let Err(e) = log_format(&value("log_format").unwrap_or_default()) {
        report("log_format", &e.to_string());
    }
    // The adapters, built as `serve` and `notify run` build them.
    let sms = match adapters::sms() {
        Ok(Some(c)) => {
            if let Err(e) = adapters::sms_transport(c.clone()) {
                report("sms_base_url", &format!("{e:#}"));
            }
            Some(c)
        }
        Ok(None) => {
            if value("sms_from").is_some() {
                report(
                    "sms_account_sid",
                    "is not set but sms_from is, so SMS is off; give the provider's account sid \
                     (with sms_auth_token), or remove sms_from",
                );
            }
            None
        }
        Err(e) => {
            report("sms_account_sid", &format!("{e:#}"));
            None
        }
    };
    match adapters::voice() {
        Ok(Some(c)) => {
            if let Err(e) = VoiceCall::new(c, std::sync::Arc::new(NoCalls)) {
                report("voice_base_url", &format!("{e:#}"));
            }
        }
        Ok(None) => {}
        Err(e) => report("voice_from", &format!("{e:#}")),
    }
    match adapters::email() {
        Ok(Some(s)) => {
            if let Err(e) = adapters::email_transport(&s) {
                report("smtp_url", &format!("{e:#}"));
            }
        }
        Ok(None) => {
            if value("email_from").is_some() {
                report(
                    "smtp_url",
                    "is not set but email_from is, so email is off; give the SMTP server \
                     (smtp://host:587), or remove email_from",
                );
            }
        }
        Err(e) => report("smtp_url", &format!("{e:#}")),
    }
    match adapters::webhooks() {
        Ok(settings) => {
            if let Err(e) = outagecast_server::webhooks::Webhooks::new(settings) {
                report("public_url", &e.to_string());
            }
        }
        Err(e) => report("default_region", &format!("{e:#}")),
    }
    // The workers, with `notify run`'s defaults for what only flags set.
    if usable("quiet_hours") {
        let quiet_hours = value("quiet_hours").unwrap_or_default();
        let opts = adapters::WorkerOptions {
            batch: 200,
            concurrency: 64,
            lease: 120.0,
            quiet_hours: &quiet_hours,
        };
        if let Err(e) = adapters::worker_config(zone, &opts, sms.as_ref()) {
            report("quiet_hours", &format!("{e:#}"));
        }
    }
    problems
}
