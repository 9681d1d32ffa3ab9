//! `outagecast serve`: the IVR front ends (HTTP JSON, Twilio webhook, Asterisk FastAGI) and
//! `/healthz`, over the store, until Ctrl-C or SIGTERM.

use std::io::Write;

use anyhow::{Context, Result};
use outagecast_ivr::IndexSettings;
use outagecast_ivr::twiml::MenuUrl;
use outagecast_server::{Listeners, ServeSettings};
use outagecast_store::SqliteStore;
use tokio::net::TcpListener;

use crate::engine::Settings;

/// Flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// HTTP address: the IVR lookup, the Twilio voice webhook and /healthz (port 0: any free port).
    #[arg(
        long,
        env = "OUTAGECAST_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Asterisk FastAGI address.
    #[arg(
        long,
        env = "OUTAGECAST_AGI_LISTEN",
        default_value = "127.0.0.1:4573",
        value_name = "ADDR"
    )]
    pub agi_listen: String,
    /// Where Twilio calls go after the announcement: the main menu's URL, or a path.
    #[arg(long, env = "OUTAGECAST_IVR_MENU_URL", value_name = "URL")]
    pub ivr_menu_url: Option<String>,
    /// How long after a restore callers still hear that it has been fixed (`15m`, `1h`, `off`).
    #[arg(
        long,
        env = "OUTAGECAST_IVR_RESTORED_GRACE",
        default_value = "off",
        value_name = "DURATION"
    )]
    pub ivr_restored_grace: String,
}

pub async fn run(db: &str, settings: &Settings, args: &ServeArgs) -> Result<()> {
    let menu_url = args
        .ivr_menu_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .map(MenuUrl::parse)
        .transpose()
        .context("--ivr-menu-url")?;
    let restored_grace =
        IndexSettings::parse_grace(&args.ivr_restored_grace).context("--ivr-restored-grace")?;
    let http = TcpListener::bind(&args.listen).await.with_context(|| {
        format!(
            "--listen: cannot listen on {:?}; give a free HOST:PORT such as 127.0.0.1:8080",
            args.listen
        )
    })?;
    let agi = TcpListener::bind(&args.agi_listen).await.with_context(|| {
        format!(
            "--agi-listen: cannot listen on {:?}; give a free HOST:PORT such as 127.0.0.1:4573",
            args.agi_listen
        )
    })?;
    let store = SqliteStore::open_url(db)
        .await
        .with_context(|| format!("--db: cannot open the database {db:?}"))?;
    if menu_url.is_none() {
        tracing::warn!(
            "OUTAGECAST_IVR_MENU_URL is not set: Twilio calls end after the announcement \
             instead of going on to the main menu"
        );
    }
    // Scripts and tests that ask for port 0 learn the real ports from these two lines.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http listening on {}", http.local_addr()?)?;
        writeln!(out, "fastagi listening on {}", agi.local_addr()?)?;
        out.flush()?;
    }
    let result = outagecast_server::run(
        Listeners { http, agi },
        store.clone(),
        ServeSettings {
            default_region: settings.default_region,
            menu_url,
            index: IndexSettings { restored_grace },
            ..ServeSettings::default()
        },
        crate::notify::shutdown_signal(),
    )
    .await;
    store.close().await;
    result.context("serve")
}
