//! The config file under the command line: flags with an `OUTAGECAST_*` variable that neither
//! the command line nor the environment set get the file's value, and the command line is
//! parsed again.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};

use super::file::{ConfigFile, Problem};
use super::{FILE, env_key, key_of};
use crate::cli::Cli;

/// One setting: a key of the file and its variable, and the flag when it is one.
pub(super) struct Setting {
    pub(super) key: String,
    pub(super) arg: Option<Arg>,
    /// A global flag: its value is in the parsed command line of every command.
    pub(super) global: bool,
    pub(super) default: Option<String>,
}

/// Every setting: the flags with an `OUTAGECAST_*` variable on any (sub)command, and the
/// settings read through [`lookup`]; by key.
pub(super) fn settings(cli: &Command) -> Vec<Setting> {
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
    for (name, default) in super::lookup_keys() {
        let Some(key) = key_of(name) else { continue };
        all.entry(key.clone()).or_insert_with(|| Setting {
            key,
            arg: None,
            global: false,
            default: default.map(str::to_string),
        });
    }
    all.into_values().collect()
}

/// Checks `value` with the flag's own parser (numbers, choices), as the command line would.
pub(super) fn check_value(arg: &Arg, value: &str) -> Result<(), String> {
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
    pub(super) matches: ArgMatches,
    /// Keys whose flag was added from the file.
    pub(super) from_file: BTreeSet<String>,
    /// What is wrong with the file (unknown keys, bad values).
    pub(super) problems: Vec<Problem>,
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
            .unwrap_or_else(|e| usage_exit(e, &argv));
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

/// Ends the process for a usage error as clap would (its text, exit status 2), except that a
/// command run with `--json` gets one JSON object on stderr like every other failure, naming
/// the flag: `{"error": {"code": "usage", "message", "field"}}`. Help and version go out as
/// they are.
fn usage_exit(e: clap::Error, argv: &[OsString]) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if shown || !argv.iter().skip(1).any(|a| a == "--json") {
        e.exit()
    }
    let field = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split_whitespace().next().map(str::to_string),
        _ => None,
    };
    let text = e.render().to_string();
    let message = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!(
        "{}",
        serde_json::json!({"error": {"code": "usage", "message": message, "field": field}})
    );
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "public_url",
            "unsubscribe_secret",
            "log",
            "log_format",
        ] {
            assert!(all.contains(key), "{key}");
        }
        assert!(!all.contains("config"));
    }
}
