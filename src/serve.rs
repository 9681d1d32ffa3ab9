//! `outagecast serve`: the engine as a service, until Ctrl-C or SIGTERM.
//!
//! One HTTP listener serves the `/v1` API (with `/openapi.json`), the IVR routes, the
//! provider webhooks (`/webhooks/...`, `/unsubscribe`), `/metrics` and `/healthz`; a second
//! listener speaks Asterisk FastAGI. When a channel is configured the dispatcher workers run
//! inside: on SIGTERM the server stops accepting, the workers stop claiming, finish the sends
//! in flight and release their leases, and the process exits 0.

use std::io::Write;

use std::sync::Arc;

use anyhow::{Context, Result};
use outagecast_core::secret::redact_url;
use outagecast_dispatch::worker::RunUntil;
use outagecast_engine::{Engine, Settings};
use outagecast_server::{Listeners, Server};
use outagecast_store::Store;
use tokio::net::TcpListener;

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
    /// A separate address for `/metrics` without a token, for the scraper only (on the main
    /// listener `/metrics` needs an admin token).
    #[arg(long, env = "OUTAGECAST_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// A network (CIDR) or address FastAGI peers may connect from; repeat for several (the
    /// variable: comma-separated). Default: loopback only.
    #[arg(
        long,
        env = "OUTAGECAST_AGI_ALLOW",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub agi_allow: Vec<String>,
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
    /// Customers an area may hold before a declaration needs `"confirm": N`.
    #[arg(long, value_name = "N", env = "OUTAGECAST_CONFIRM_THRESHOLD", default_value_t = outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD)]
    pub confirm_threshold: u64,
    /// Do not run the dispatcher workers here (another node or `notify run` sends).
    #[arg(long)]
    pub no_workers: bool,
    /// Quiet hours in each customer's local time, from their location (the utility's time
    /// zone without one): `21:00-08:00` (texts, mails and calls), `calls 21:00-08:00` (calls
    /// only; severe incidents and priority customers are not held), or `off`.
    #[arg(
        long,
        env = "OUTAGECAST_QUIET_HOURS",
        default_value = "calls 21:00-08:00"
    )]
    pub quiet_hours: String,
    /// Seconds a worker's claim is held without a heartbeat before another node may take it
    /// over (a crashed node's notices are taken over this long after its last heartbeat).
    #[arg(long, default_value_t = 20.0)]
    pub lease: f64,
    /// Seconds a client has to send a request's headers; also how long an idle kept-alive
    /// connection stays open.
    #[arg(
        long,
        env = "OUTAGECAST_HTTP_HEADER_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECS"
    )]
    pub http_header_timeout: f64,
    /// Seconds a request may take to be answered (503 after); streams already answering go on.
    #[arg(
        long,
        env = "OUTAGECAST_HTTP_REQUEST_TIMEOUT",
        default_value_t = 60.0,
        value_name = "SECS"
    )]
    pub http_request_timeout: f64,
    /// HTTP connections open at once; more wait to be accepted.
    #[arg(
        long,
        env = "OUTAGECAST_HTTP_MAX_CONNECTIONS",
        default_value_t = 4096,
        value_name = "N"
    )]
    pub http_max_connections: usize,
    /// Seconds a FastAGI peer may stay silent when its environment or a reply is due.
    #[arg(
        long,
        env = "OUTAGECAST_AGI_IDLE_TIMEOUT",
        default_value_t = 2.0,
        value_name = "SECS"
    )]
    pub agi_idle_timeout: f64,
    /// FastAGI sessions at once; more wait to be accepted.
    #[arg(
        long,
        env = "OUTAGECAST_AGI_MAX_SESSIONS",
        default_value_t = 4096,
        value_name = "N"
    )]
    pub agi_max_sessions: usize,
    /// Let the SMS webhooks and the voice webhook take requests with neither Twilio's signature
    /// nor a webhook-role token: anyone could then opt customers out. For a lab only.
    #[arg(
        long,
        env = "OUTAGECAST_INSECURE_WEBHOOKS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_webhooks: bool,
    /// The largest customer or zone file one API request may upload, in bytes (other bodies:
    /// 2 MB at most).
    #[arg(
        long,
        env = "OUTAGECAST_IMPORT_MAX_BYTES",
        default_value_t = outagecast_server::api::MAX_UPLOAD_BYTES,
        value_name = "BYTES"
    )]
    pub import_max_bytes: usize,
}

pub async fn run(db: &str, settings: &Settings, args: &ServeArgs) -> Result<()> {
    let config = crate::config::server_config(settings, args)?;
    let http = bind("--listen", &args.listen, "127.0.0.1:8080").await?;
    let agi = bind("--agi-listen", &args.agi_listen, "127.0.0.1:4573").await?;
    let metrics = match args
        .metrics_listen
        .as_deref()
        .filter(|a| !a.trim().is_empty())
    {
        Some(addr) => Some(bind("--metrics-listen", addr, "127.0.0.1:9464").await?),
        None => None,
    };
    let store = Store::open(db)
        .await
        .with_context(|| format!("--db: cannot open the database {:?}", redact_url(db)))?;
    if config.serve.menu_url.is_none() {
        tracing::warn!(
            "OUTAGECAST_IVR_MENU_URL is not set: Twilio calls end after the announcement \
             instead of going on to the main menu"
        );
    }
    let engine = Arc::new(Engine::with_store(store.clone(), settings.clone()).await?);
    // The recorder first: what the dispatcher sets as it starts (its store gauge) is kept, and
    // every metric gets its HELP text.
    outagecast_server::metrics::recorder();
    outagecast_dispatch::measure::describe();
    let dispatcher = if args.no_workers {
        None
    } else {
        crate::config::dispatcher(
            &store,
            settings,
            &crate::config::WorkerOptions {
                batch: 200,
                concurrency: 64,
                lease: args.lease,
                quiet_hours: &args.quiet_hours,
            },
        )?
    };
    if dispatcher.is_none() && !args.no_workers {
        tracing::warn!(
            "no channel is configured (OUTAGECAST_SMS_* or OUTAGECAST_SMTP_URL): notices stay queued"
        );
    }
    let mut config = config;
    config.serve.dispatch_health = dispatcher.as_ref().map(|d| {
        Arc::new(DispatchHealthSource(d.health())) as Arc<dyn outagecast_server::HealthSource>
    });
    let mut server = Server::new(store.clone(), engine, config)?;
    let metrics_line = match metrics {
        Some(listener) => {
            let line = format!("metrics listening on {}\n", listener.local_addr()?);
            server = server.with_metrics_listener(listener);
            line
        }
        None => String::new(),
    };
    // Scripts and tests that ask for port 0 learn the real ports from these two lines.
    // One write, so a reader that stops after what it needs never sees half of it.
    {
        let lines = format!(
            "http listening on {}\nfastagi listening on {}\n{metrics_line}",
            http.local_addr()?,
            agi.local_addr()?
        );
        let mut out = std::io::stdout().lock();
        out.write_all(lines.as_bytes())?;
        out.flush()?;
    }
    // One signal stops both the server and the workers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let signal = tokio::spawn(async move {
        crate::notify::shutdown_signal().await;
        tracing::info!("shutting down: no new requests or claims; finishing sends in flight");
        let _ = stop_tx.send(true);
    });
    let workers = dispatcher.map(|d| {
        let stop = stopped();
        tokio::spawn(async move { d.run(RunUntil::Shutdown, stop).await })
    });
    let result = server.run(Listeners { http, agi }, stopped()).await;
    signal.abort();
    let worked = match workers {
        Some(w) => w.await.context("workers")?.context("workers"),
        None => Ok(()),
    };
    store.close().await;
    result.context("serve")?;
    worked
}

/// Binds `flag`'s address, or says which flag to fix and how.
async fn bind(flag: &str, addr: &str, example: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("{flag}: cannot listen on {addr:?}; give a free HOST:PORT such as {example}")
    })
}

/// The dispatcher's health as `/healthz` lists it: the store it writes to and each channel.
#[derive(Debug)]
struct DispatchHealthSource(Arc<outagecast_dispatch::health::DispatchHealth>);

impl outagecast_server::HealthSource for DispatchHealthSource {
    fn components(&self) -> Vec<outagecast_server::Component> {
        use outagecast_dispatch::health::ChannelState;
        use outagecast_server::{Component, ComponentState};
        let report = self.0.report();
        let mut out = vec![Component {
            name: "store".into(),
            state: if report.store.is_some() {
                ComponentState::Degraded
            } else {
                ComponentState::Ok
            },
            reason: report.store.as_ref().map(|p| p.reason.clone()),
            since: report.store.as_ref().map(|p| p.since),
        }];
        for channel in outagecast_core::contact::Channel::ALL {
            let (state, reason, since) = match report.channels.get(&channel) {
                None => (ComponentState::NotConfigured, None, None),
                Some(ChannelState::Ok) => (ComponentState::Ok, None, None),
                Some(ChannelState::Degraded { reason, since }) => {
                    (ComponentState::Degraded, Some(reason.clone()), Some(*since))
                }
            };
            out.push(Component {
                name: channel.as_str().into(),
                state,
                reason,
                since,
            });
        }
        out
    }
}
