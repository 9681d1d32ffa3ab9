//! outagecast: tell utility customers about an outage before they call.
//!
//! The binary wires the concrete parts together (SQLite store, in-memory index, core logic)
//! and is the only place that does; see ARCHITECTURE.md.

mod areas;
mod cap;
mod cli;
mod commands;
mod demo;
mod engine;
mod import;
mod notify;
mod serve;
mod template;
mod zones;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use outagecast_core::contact::Region;
use outagecast_core::incident::{EventKind, IncidentChanges};

use crate::cli::{Cli, Command, ImportCommand, IncidentCommand, IvrCommand};
use crate::engine::{Engine, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OUTAGECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the field and the fix; never a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn settings(cli: &Cli) -> Result<Settings> {
    let default_region = cli
        .default_region
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(Region::parse)
        .transpose()?;
    let timezone = cli.timezone.parse().map_err(|_| {
        anyhow::anyhow!(
            "--timezone: {:?} is not an IANA time zone; use a name like Europe/Helsinki or UTC",
            cli.timezone
        )
    })?;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Ok(Settings {
        default_region,
        timezone,
        actor: format!("cli:{user}"),
    })
}

async fn run(cli: Cli) -> Result<()> {
    let settings = settings(&cli)?;
    match &cli.command {
        Command::Demo => return demo::run().await,
        Command::Notify(cli::NotifyCommand::Run(args)) => {
            return notify::run(&cli.db, &settings, args).await;
        }
        Command::Serve(args) => return serve::run(&cli.db, &settings, args).await,
        Command::Template(cmd) => return template::run(&settings, cmd),
        _ => {}
    }
    let mut engine = Engine::open(&cli.db, settings).await?;
    let result = dispatch(&mut engine, cli.command).await;
    engine.close().await;
    result
}

async fn dispatch(engine: &mut Engine, command: Command) -> Result<()> {
    match command {
        Command::Import(ImportCommand::Customers { file, strict, json }) => {
            commands::import_customers(engine, &file, strict, json).await
        }
        Command::Incident(cmd) => match cmd {
            IncidentCommand::Declare(args) => commands::declare(engine, &args).await,
            IncidentCommand::Preview(args) => commands::preview(engine, &args).await,
            IncidentCommand::List { all, json } => commands::list(engine, all, json).await,
            IncidentCommand::Show(args) => commands::show(engine, &args).await,
            IncidentCommand::Update {
                id,
                etr,
                cause,
                severity,
                circle,
                polygon,
                corridor,
                buffer,
            } => {
                let area = commands::area_from_flags(
                    circle.as_deref(),
                    polygon.as_deref(),
                    corridor.as_deref(),
                    buffer,
                )?;
                let changes = commands::changes_from_args(
                    etr.as_deref(),
                    cause.as_deref(),
                    severity.as_deref(),
                    area,
                )?;
                commands::transition(engine, &id, EventKind::Updated, changes).await
            }
            IncidentCommand::Restore(id) => {
                commands::transition(engine, &id, EventKind::Restored, IncidentChanges::default())
                    .await
            }
            IncidentCommand::Cancel(id) => {
                commands::transition(
                    engine,
                    &id,
                    EventKind::Cancelled,
                    IncidentChanges::default(),
                )
                .await
            }
            IncidentCommand::Report { id, csv } => {
                notify::report(engine.store(), &id.id, id.json, csv.as_deref()).await
            }
        },
        Command::Zones(cmd) => zones::run(engine, cmd).await,
        Command::Ivr(IvrCommand::Lookup { number, json }) => {
            commands::ivr_lookup(engine, &number, json).await
        }
        Command::Demo => demo::run().await.context("demo"),
        // Run in `run` before the engine (and its index) is loaded: the dispatcher needs neither.
        Command::Notify(_) | Command::Serve(_) | Command::Template(_) => {
            anyhow::bail!("internal: notify, serve and template run without the engine")
        }
    }
}
