//! outagecast: tell utility customers about an outage before they call.
//!
//! The binary wires the concrete parts together (SQLite store, in-memory index, core logic)
//! and is the only place that does; see ARCHITECTURE.md.

mod areas;
mod cap;
mod cli;
mod commands;
mod config;
mod demo;
mod import;
mod manual;
mod network;
mod notify;
mod progress;
mod serve;
mod template;
mod token;
mod zones;

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, ConfigCommand, ImportCommand, IncidentCommand, IvrCommand};
use crate::config::Invocation;
use outagecast_engine::{Engine, Settings};

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    // Flags, then the environment, then the config file, then the built-in defaults.
    let invocation = match Invocation::parse() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // `config check` reports a bad log setting with the rest instead of stopping at it.
    let checking = matches!(invocation.cli.command, Command::Config(_));
    if let Err(e) = config::init_logging(checking) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every command spells it `--json`; read from the arguments so that a failure before the
    // command's own flags are looked at is a JSON object too.
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let outcome = runtime.block_on(run(invocation));
    // Dropping a runtime waits for every blocking task (a big import, a heavy selection) to
    // return; a stopped command must not: what is still running is abandoned within a second.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // Already printed, one line per problem.
        Err(e) if e.is::<config::Reported>() => ExitCode::FAILURE,
        Err(e) => {
            let failure = Failure::of(&e);
            if json {
                // One JSON object, for the scripts that asked for JSON.
                eprintln!("{}", failure.json(&e));
            } else {
                // One line, naming the field and the fix; never a backtrace.
                eprintln!("error: {e:#}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// What kind of failure ended a command, for its exit code and its JSON form. Documented in
/// `outagecast --help`: 0 done, 1 failed, 2 bad usage (clap's own), 3 refused by a safety
/// rail (repeat the count with `--confirm N`, or `--allow-empty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// A rail refused a declaration or an update; nothing was written.
    Refused,
    /// Anything else: bad input (named), the store, a provider.
    Failed,
}

impl Failure {
    fn of(e: &anyhow::Error) -> Failure {
        match e.downcast_ref::<outagecast_engine::EngineError>() {
            Some(outagecast_engine::EngineError::Refused { .. }) => Failure::Refused,
            _ => Failure::Failed,
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Failure::Refused => 3,
            Failure::Failed => 1,
        }
    }

    /// `{"error": {"code", "message", "field"}}`, the API's error shape.
    fn json(self, e: &anyhow::Error) -> serde_json::Value {
        use outagecast_engine::EngineError;
        let field = e.chain().find_map(|cause| {
            if let Some(engine) = cause.downcast_ref::<EngineError>() {
                return match engine {
                    EngineError::Invalid { field, .. } => Some(field.clone()),
                    EngineError::Refused { refusal, .. } => Some(refusal.field().to_string()),
                    EngineError::Ingest(i) => Some(i.field().to_string()),
                    EngineError::Rule(outagecast_core::error::CoreError::Invalid {
                        field, ..
                    }) => Some(field.clone()),
                    _ => None,
                };
            }
            match cause.downcast_ref::<outagecast_core::error::CoreError>() {
                Some(outagecast_core::error::CoreError::Invalid { field, .. }) => {
                    Some(field.clone())
                }
                _ => cause
                    .downcast_ref::<outagecast_ingest::IngestError>()
                    .map(|i| i.field().to_string()),
            }
        });
        let code = match self {
            Failure::Refused => "refused",
            Failure::Failed if field.is_some() => "invalid",
            Failure::Failed => "failed",
        };
        serde_json::json!({"error": {"code": code, "message": format!("{e:#}"), "field": field}})
    }
}

/// `outagecast token list | head -1`: a closed stdout ends the process quietly with the
/// status a shell gives SIGPIPE, as it would a C program. (Rust ignores SIGPIPE, so `println!`
/// panics instead, and with the log on the same pipe the panic could not even be reported.)
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// The settings every command shares; `config check` builds them with the same functions.
fn settings(cli: &Cli) -> Result<Settings> {
    let default_region = config::default_region(cli.default_region.as_deref())?;
    let timezone = config::timezone(&cli.timezone)?;
    let templates = config::templates(cli.templates.as_deref(), timezone)?;
    Ok(Settings {
        default_region,
        timezone,
        actor: actor(),
        templates,
        limits: config::limits()?,
    })
}

/// Who is acting, for the audit log: `cli:` and the login name.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

async fn run(invocation: Invocation) -> Result<()> {
    // Neither needs the settings built (config check builds and reports them itself).
    match &invocation.cli.command {
        Command::Config(ConfigCommand::Check(args)) => {
            return config::check(&invocation, args).await;
        }
        Command::Token(cmd) => return token::run(&invocation.cli.db, &actor(), cmd).await,
        Command::Completions { shell } => return manual::completions(*shell),
        Command::Man => return manual::man(),
        _ => {}
    }
    let cli = invocation.cli;
    let settings = settings(&cli)?;
    match &cli.command {
        Command::Demo => return demo::run().await,
        Command::Notify(cli::NotifyCommand::Run(args)) => {
            return notify::run(&cli.db, &settings, args).await;
        }
        Command::Notify(cli::NotifyCommand::Requeue(args)) => {
            return notify::requeue(&cli.db, &actor(), args).await;
        }
        Command::Serve(args) => return serve::run(&cli.db, &settings, args).await,
        Command::Template(cmd) => return template::run(&settings, cmd),
        _ => {}
    }
    let engine = Engine::open(&cli.db, settings).await.with_context(|| {
        format!(
            "--db: cannot open the database {:?}",
            outagecast_core::secret::redact_url(&cli.db)
        )
    })?;
    let result = dispatch(&engine, cli.command).await;
    engine.close().await;
    result
}

async fn dispatch(engine: &Engine, command: Command) -> Result<()> {
    match command {
        Command::Import(ImportCommand::Customers { file, strict, json }) => {
            commands::import_customers(engine, &file, strict, json).await
        }
        Command::Incident(cmd) => match cmd {
            IncidentCommand::Declare(args) => commands::declare(engine, &args).await,
            IncidentCommand::Preview(args) => commands::preview(engine, &args).await,
            IncidentCommand::List { all, json } => commands::list(engine, all, json).await,
            IncidentCommand::Show(args) => commands::show(engine, &args).await,
            IncidentCommand::Update(args) => commands::update(engine, &args).await,
            IncidentCommand::Restore(id) => commands::restore(engine, &id).await,
            IncidentCommand::Cancel(id) => commands::cancel(engine, &id).await,
            IncidentCommand::Report { id, csv } => {
                commands::report(engine, &id.id, id.json, csv.as_deref()).await
            }
        },
        Command::Zones(cmd) => zones::run(engine, cmd).await,
        Command::Network(cmd) => network::run(engine, cmd).await,
        Command::Ivr(IvrCommand::Lookup {
            number,
            ivr_restored_grace,
            json,
        }) => commands::ivr_lookup(engine, &number, &ivr_restored_grace, json).await,
        Command::Demo => demo::run().await.context("demo"),
        // Run in `run` before the engine (and its index) is loaded: the dispatcher needs neither.
        Command::Notify(_)
        | Command::Serve(_)
        | Command::Template(_)
        | Command::Config(_)
        | Command::Token(_)
        | Command::Completions { .. }
        | Command::Man => {
            anyhow::bail!(
                "internal: notify, serve, template, config, token, completions and man run without the engine"
            )
        }
    }
}
