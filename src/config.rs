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
//!   `WebhookSettings::from_lookup`): pass [`lookup`], the environment and then the file.
//!
//! Secrets (`sms_auth_token`, `unsubscribe_secret`, a password inside a URL, any key naming a
//! token, secret or password) are shown as `***` by `config check` and never logged.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use chrono_tz::Tz;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};
use outagecast_core::contact::Region;
use outagecast_core::template::Templates;
use serde_json::{Map, json};

use crate::cli::Cli;

/// What every variable starts with.
pub const PREFIX: &str = "OUTAGECAST_";

/// Settings that are not flags: read through [`lookup`] (crates/dispatch, logging), with
/// their built-in defaults. A new `OUTAGECAST_*` variable read outside clap belongs here, or
/// the file refuses its key.
const LOOKUP_SETTINGS: &[(&str, Option<&str>)] = &[
    ("email_from", None),
    ("log", Some("warn")),
    ("log_format", Some("text")),
    ("public_url", None),
    ("sms_account_sid", None),
    ("sms_auth_token", None),
    ("sms_base_url", Some("https://api.twilio.com")),
    ("sms_from", None),
    ("sms_in_doubt", Some("resend")),
    ("sms_lookup", Some("on")),
    ("sms_rate", Some("10")),
    ("sms_status_callback", None),
    ("sms_timeout", Some("10")),
    ("smtp_timeout", Some("30")),
    ("smtp_url", None),
    ("unsubscribe_secret", None),
];

/// The file, once read (the first thing `main` does); [`lookup`] reads it.
static FILE: OnceLock<ConfigFile> = OnceLock::new();

/// A setting's value the way every reader outside clap should get it: the variable `name`
/// (`OUTAGECAST_SMTP_URL`) if it is set, else the config file's key (`smtp_url`).
/// Pass it to `SmsConfig::from_lookup`, `EmailSettings::from_lookup`,
/// `WebhookSettings::from_lookup`.
pub fn lookup(name: &str) -> Option<String> {
    if let Some(v) = std::env::var_os(name) {
        return v.into_string().ok();
    }
    FILE.get()?.get(&key_of(name)?).map(str::to_string)
}

/// `OUTAGECAST_SMTP_URL` → `smtp_url`.
fn key_of(name: &str) -> Option<String> {
    name.strip_prefix(PREFIX)
        .filter(|k| !k.is_empty())
        .map(str::to_ascii_lowercase)
}

/// `smtp_url` → `OUTAGECAST_SMTP_URL`.
fn env_name(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase())
}

/// The file key of a flag that has an `OUTAGECAST_*` variable (not `OUTAGECAST_CONFIG`: a file
/// cannot name another).
fn env_key(arg: &Arg) -> Option<String> {
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
fn shown(key: &str, value: &str) -> String {
    if is_secret(key) && !value.is_empty() {
        "***".to_string()
    } else {
        redact_userinfo(value)
    }
}

/// `smtp://user:pass@host` → `smtp://user:***@host`; anything else as it is.
fn redact_userinfo(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &value[..scheme_end], &rest[at + 1..])
        }
        None => value.to_string(),
    }
}

/// The password part of a URL's userinfo, if any.
fn url_password(value: &str) -> Option<&str> {
    let rest = &value[value.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

/// The TOML config file: top-level scalar keys, each with its line.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    value: String,
    line: Option<usize>,
}

/// One thing wrong with the configuration, on one line.
#[derive(Debug, Clone)]
pub struct Problem {
    key: String,
    message: String,
}

impl ConfigFile {
    /// Reads the file. An unreadable file or one that is not TOML is an error; keys that are
    /// not settings (named with the closest one) and values that are not scalars are
    /// problems, and those entries are left out.
    fn load(path: &Path, known: &BTreeSet<String>) -> Result<(ConfigFile, Vec<Problem>)> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "--config (OUTAGECAST_CONFIG): cannot read {}",
                path.display()
            )
        })?;
        let doc = toml_edit::Document::parse(text.as_str()).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(":{}", line_of(&text, s.start)))
                .unwrap_or_default();
            anyhow!(
                "{}{at}: is not TOML: {}; write one `key = value` per line, e.g. smtp_url = \"smtp://mail.example.fi:587\"",
                path.display(),
                e.message().trim().replace('\n', " ")
            )
        })?;
        let mut entries = BTreeMap::new();
        let mut problems = Vec::new();
        let table = doc.as_table();
        for (name, _) in table.iter() {
            let Some((key, item)) = table.get_key_value(name) else {
                continue;
            };
            let line = key
                .span()
                .or_else(|| item.span())
                .map(|s| line_of(&text, s.start));
            let at = match line {
                Some(l) => format!("{}:{l}", path.display()),
                None => path.display().to_string(),
            };
            if !known.contains(name) {
                problems.push(Problem {
                    key: name.to_string(),
                    message: format!(
                        "{at}: unknown key {name:?}{}",
                        suggestion(name, item, known)
                    ),
                });
                continue;
            }
            use toml_edit::Value as V;
            let value = match item.as_value() {
                Some(V::String(s)) => s.value().clone(),
                Some(V::Integer(i)) => i.value().to_string(),
                Some(V::Float(f)) => f.value().to_string(),
                Some(V::Boolean(b)) => b.value().to_string(),
                _ => {
                    problems.push(Problem {
                        key: name.to_string(),
                        message: format!(
                            "{at}: {name} is a TOML {}; write a string, a number or true/false",
                            item.type_name()
                        ),
                    });
                    continue;
                }
            };
            entries.insert(name.to_string(), Entry { value, line });
        }
        Ok((
            ConfigFile {
                path: path.to_path_buf(),
                entries,
            },
            problems,
        ))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.value.as_str())
    }

    /// `FILE:LINE` of a key, for messages.
    fn at(&self, key: &str) -> String {
        match self.entries.get(key).and_then(|e| e.line) {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The hint after an unknown key: the closest known key, or how keys are written.
fn suggestion(name: &str, item: &toml_edit::Item, known: &BTreeSet<String>) -> String {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("outagecast_").unwrap_or(&lower);
    if bare != name && known.contains(bare) {
        return format!(
            "; write {bare:?} (the variable's name in lower case, without OUTAGECAST_)"
        );
    }
    if let Some(table) = item.as_table_like() {
        let joined = table
            .iter()
            .map(|(k, _)| format!("{bare}_{k}"))
            .find(|k| known.contains(k));
        return match joined {
            Some(k) => format!("; sections are not read: write {k} = ... at the top of the file"),
            None => "; sections are not read: every key is at the top of the file".to_string(),
        };
    }
    match closest(bare, known) {
        Some(k) => format!("; did you mean {k:?}?"),
        None => "; `outagecast config check` lists every key".to_string(),
    }
}

/// The known key nearest to `name` by edit distance, if it is near enough to be a typo.
fn closest<'a>(name: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// One setting: a key of the file and its variable, and the flag when it is one.
struct Setting {
    key: String,
    arg: Option<Arg>,
    /// A global flag: its value is in the parsed command line of every command.
    global: bool,
    default: Option<String>,
}

/// Every setting: the flags with an `OUTAGECAST_*` variable on any (sub)command, and the
/// settings read through [`lookup`]; by key.
fn settings(cli: &Command) -> Vec<Setting> {
    fn walk(cmd: &Command, top: bool, out: &mut BTreeMap<String, Setting>) {
        for arg in cmd.get_arguments() {
            let Some(key) = env_key(arg) else { continue };
            out.entry(key.clone()).or_insert_with(|| Setting {
                key,
                arg: Some(arg.clone()),
                global: top && arg.is_global_set(),
                default: arg
                    .get_default_values()
                    .first()
                    .map(|v| v.to_string_lossy().into_owned()),
            });
        }
        for sub in cmd.get_subcommands() {
            walk(sub, false, out);
        }
    }
    let mut all = BTreeMap::new();
    walk(cli, true, &mut all);
    for (key, default) in LOOKUP_SETTINGS {
        all.entry(key.to_string()).or_insert_with(|| Setting {
            key: key.to_string(),
            arg: None,
            global: false,
            default: default.map(str::to_string),
        });
    }
    all.into_values().collect()
}

/// Checks `value` with the flag's own parser (numbers, choices), as the command line would.
fn check_value(arg: &Arg, value: &str) -> Result<(), String> {
    if !arg.get_action().takes_values() {
        return match value {
            "true" | "false" => Ok(()),
            other => Err(format!("{other:?} is not true or false")),
        };
    }
    // The parser alone, as a positional: the flag's relations to other flags do not matter.
    let probe = Arg::new(arg.get_id().clone())
        .required(true)
        .value_parser(arg.get_value_parser().clone())
        .ignore_case(arg.is_ignore_case_set());
    Command::new("outagecast")
        .no_binary_name(true)
        .disable_help_flag(true)
        .arg(probe)
        .try_get_matches_from(["--", value])
        .map(|_| ())
        .map_err(|e| {
            use clap::error::{ContextKind, ContextValue};
            if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
                return format!("{value:?} is not one of {}", valid.join(", "));
            }
            if let Some(source) = std::error::Error::source(&e) {
                return format!("{value:?}: {source}");
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        })
}

/// The argument that puts a file value on the command line, if any.
fn flag_for(arg: &Arg, value: &str) -> Result<Option<String>, String> {
    let Some(long) = arg.get_long() else {
        return Ok(None);
    };
    check_value(arg, value)?;
    if !arg.get_action().takes_values() {
        return Ok((value == "true").then(|| format!("--{long}")));
    }
    Ok(Some(format!("--{long}={value}")))
}

/// The command line, parsed with the config file layered under it.
pub struct Invocation {
    /// What the commands read.
    pub cli: Cli,
    matches: ArgMatches,
    /// Keys whose flag was added from the file.
    from_file: BTreeSet<String>,
    /// What is wrong with the file (unknown keys, bad values).
    problems: Vec<Problem>,
}

impl Invocation {
    /// Parses this process's arguments. Help, version and usage errors exit as clap does; a
    /// file problem is an error (one line) except for `config check`, which lists them all.
    pub fn parse() -> Result<Invocation> {
        Self::parse_from(std::env::args_os().collect())
    }

    fn parse_from(argv: Vec<OsString>) -> Result<Invocation> {
        let command = Cli::command();
        let mut matches = command
            .clone()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| e.exit());
        let checking = matches.subcommand_name() == Some("config");
        let mut from_file = BTreeSet::new();
        let mut problems = Vec::new();
        if let Some(path) = matches.get_one::<PathBuf>("config").cloned() {
            let known = settings(&command).into_iter().map(|s| s.key).collect();
            let (file, file_problems) = ConfigFile::load(&path, &known)?;
            problems.extend(file_problems);
            let mut extra = Vec::new();
            let (mut cmd, mut m) = (&command, &matches);
            loop {
                for arg in cmd.get_arguments() {
                    let Some(key) = env_key(arg) else { continue };
                    let Some(value) = file.get(&key) else {
                        continue;
                    };
                    let unset = matches!(
                        m.value_source(arg.get_id().as_str()),
                        None | Some(ValueSource::DefaultValue)
                    );
                    if !unset {
                        continue;
                    }
                    match flag_for(arg, value) {
                        Ok(Some(flag)) => {
                            extra.push(OsString::from(flag));
                            from_file.insert(key);
                        }
                        Ok(None) => {}
                        Err(problem) => problems.push(Problem {
                            message: format!("{}: {key}: {problem}", file.at(&key)),
                            key,
                        }),
                    }
                }
                let Some((name, sub)) = m.subcommand() else {
                    break;
                };
                let Some(next) = cmd.find_subcommand(name) else {
                    break;
                };
                (cmd, m) = (next, sub);
            }
            let _ = FILE.set(file);
            if !extra.is_empty() {
                // Before a bare `--`: after it, they would be positional values.
                let at = argv
                    .iter()
                    .skip(1)
                    .position(|a| a == "--")
                    .map_or(argv.len(), |i| i + 1);
                let mut again = argv;
                again.splice(at..at, extra).for_each(drop);
                matches = command
                    .try_get_matches_from(&again)
                    .unwrap_or_else(|e| e.exit());
            }
        }
        if !checking && let Some(first) = problems.first() {
            let more = match problems.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more; `outagecast config check` lists them all)"),
            };
            bail!("{}{more}", first.message);
        }
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        Ok(Invocation {
            cli,
            matches,
            from_file,
            problems,
        })
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

fn log_format(text: &str) -> Result<LogFormat> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => bail!("OUTAGECAST_LOG_FORMAT: {text:?} is not json or text"),
    }
}

fn log_filter(text: &str) -> Result<tracing_subscriber::EnvFilter> {
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
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
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
pub async fn check(inv: &Invocation, json: bool) -> Result<()> {
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
    if problems.is_empty() {
        println!("ok: every setting is valid");
        return Ok(());
    }
    for p in &problems {
        eprintln!("error: {}", scrub(&p.message));
    }
    Err(Reported.into())
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
                    "cannot open the database {db:?}: {e}; give a SQLite file path or sqlite: URL"
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
    if let Some(url) = value("ivr_menu_url").filter(|_| usable("ivr_menu_url"))
        && let Err(e) = outagecast_ivr::twiml::MenuUrl::parse(&url)
    {
        report("ivr_menu_url", &e.to_string());
    }
    if let Some(grace) = value("ivr_restored_grace").filter(|_| usable("ivr_restored_grace"))
        && let Err(e) = outagecast_ivr::IndexSettings::parse_grace(&grace)
    {
        report("ivr_restored_grace", &e.to_string());
    }
    // notify run
    if let Some(quiet) = value("quiet_hours").filter(|_| usable("quiet_hours"))
        && let Err(e) = outagecast_dispatch::worker::QuietHours::parse(&quiet)
    {
        report("quiet_hours", &e.to_string());
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
    // SMS and email, through the same lookup `notify run` and `serve` use.
    match outagecast_dispatch::sms::SmsConfig::from_lookup(lookup) {
        Ok(Some(c)) => {
            if let Err(e) = outagecast_dispatch::sms::TwilioSms::new(c) {
                report("sms_base_url", &e.to_string());
            }
        }
        Ok(None) => {
            if value("sms_from").is_some() {
                report(
                    "sms_account_sid",
                    "is not set but sms_from is, so SMS is off; give the provider's account sid \
                     (with sms_auth_token), or remove sms_from",
                );
            }
        }
        Err(e) => report("sms_account_sid", &e.to_string()),
    }
    match outagecast_dispatch::email::EmailSettings::from_lookup(lookup) {
        Ok(Some(s)) => {
            if let Err(e) = outagecast_dispatch::email::SmtpEmail::new(&s) {
                report("smtp_url", &e.to_string());
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
            if let Some(url) = value("public_url")
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                report(
                    "public_url",
                    &format!("{url:?} is not an http(s) URL; write e.g. https://notify.utility.fi"),
                );
            }
            if let Some(secret) = value("unsubscribe_secret")
                && let Err(e) = outagecast_dispatch::email::UnsubscribeKey::new(&secret)
            {
                report("unsubscribe_secret", &e.to_string());
            }
        }
        Err(e) => report("smtp_url", &e.to_string()),
    }
    problems
}

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
        assert_eq!(url_password("postgres://u:p@h/db"), Some("p"));
        assert_eq!(url_password("https://h/x@y"), None);
    }

    #[test]
    fn every_setting_is_known() {
        let all: BTreeSet<String> = settings(&Cli::command())
            .into_iter()
            .map(|s| s.key)
            .collect();
        for key in [
            "database_url",
            "default_region",
            "timezone",
            "templates",
            "listen",
            "agi_listen",
            "quiet_hours",
            "ivr_menu_url",
            "ivr_restored_grace",
            "confirm_threshold",
            "geocoder",
            "nominatim_url",
            "nominatim_user_agent",
            "gazetteer",
            "sms_auth_token",
            "smtp_url",
            "log",
            "log_format",
        ] {
            assert!(all.contains(key), "{key}");
        }
        assert!(!all.contains("config"));
    }

    #[test]
    fn typos_find_the_closest_key() {
        let known: BTreeSet<String> = ["smtp_url", "sms_rate", "sms_from"]
            .map(String::from)
            .into();
        assert_eq!(closest("smtp_ur", &known), Some("smtp_url"));
        assert_eq!(closest("sms_rat", &known), Some("sms_rate"));
        assert_eq!(closest("completely_different", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
