//! `outagecast notify run`: the dispatcher in the foreground, with progress (`incident
//! report` is in `commands`, over the engine).

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use outagecast_dispatch::email::{EmailSettings, SmtpEmail};
use outagecast_dispatch::sms::{SmsConfig, TwilioSms};
use outagecast_dispatch::worker::{Dispatcher, Progress, QuietHours, RunUntil, WorkerConfig};
use outagecast_store::Store;
use serde_json::json;

use outagecast_engine::Settings;

/// Flags of `notify run`.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// Stop when nothing is left to send (notices held for quiet hours do not count).
    #[arg(long)]
    pub until_empty: bool,
    /// Notices claimed at once.
    #[arg(long, default_value_t = 200)]
    pub batch: u32,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds a claim is held before another worker may take it over (after a crash).
    #[arg(long, default_value_t = 120.0)]
    pub lease: f64,
    /// Quiet hours in the utility's time zone (`21:00-08:00`, or `off`).
    #[arg(long, env = "OUTAGECAST_QUIET_HOURS", default_value = "off")]
    pub quiet_hours: String,
    /// Print the final totals as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(db: &str, settings: &Settings, args: &NotifyArgs) -> Result<()> {
    let store = Store::open(db)
        .await
        .with_context(|| format!("--db: cannot open the database {db:?}"))?;
    let Some(dispatcher) = dispatcher(
        &store,
        settings,
        &WorkerOptions {
            batch: args.batch,
            concurrency: args.concurrency,
            lease: args.lease,
            quiet_hours: &args.quiet_hours,
        },
    )?
    else {
        bail!(
            "notify: no channel is configured; set OUTAGECAST_SMS_ACCOUNT_SID (with \
             OUTAGECAST_SMS_AUTH_TOKEN, OUTAGECAST_SMS_FROM, OUTAGECAST_SMS_BASE_URL) for SMS \
             and/or OUTAGECAST_SMTP_URL with OUTAGECAST_EMAIL_FROM for email"
        );
    };
    let channels = dispatcher.channels();
    let before = store.outbox_counts(&channels, Utc::now()).await?;
    let total = before.due + before.waiting + before.leased;

    let progress = dispatcher.progress();
    let started = Instant::now();
    let reporter = tokio::spawn(report_progress(progress.clone(), total, started));
    let until = if args.until_empty {
        RunUntil::Empty
    } else {
        RunUntil::Shutdown
    };
    let result = dispatcher.run(until, shutdown_signal()).await;
    reporter.abort();
    let after = store.outbox_counts(&channels, Utc::now()).await?;
    store.close().await;
    result?;

    let elapsed = started.elapsed().as_secs_f64();
    let sent = progress.sent.load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    let rate = if elapsed > 0.0 {
        sent as f64 / elapsed
    } else {
        0.0
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "channels": channels,
                "sent": sent,
                "failed": failed,
                "retried": progress.retried.load(Ordering::Relaxed),
                "held": progress.held.load(Ordering::Relaxed),
                "segments": progress.segments.load(Ordering::Relaxed),
                "seconds": elapsed,
                "remaining": after,
            }))?
        );
    } else {
        println!(
            "sent {sent}, failed {failed} in {elapsed:.1} s ({rate:.0}/s) over {}; still pending: {} due, {} waiting",
            channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            after.due + after.leased,
            after.waiting
        );
    }
    Ok(())
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

/// The dispatcher for the channels configured in the environment; `None` when none is.
pub fn dispatcher(
    store: &Store,
    settings: &Settings,
    opts: &WorkerOptions<'_>,
) -> Result<Option<Dispatcher<TwilioSms, SmtpEmail>>> {
    let sms_config = SmsConfig::from_lookup(crate::config::lookup)?;
    let sms_timeout = sms_config.as_ref().map(|c| c.timeout);
    let sms = sms_config
        .map(|c| {
            let rate = c.rate;
            TwilioSms::new(c).map(|t| (t, rate))
        })
        .transpose()?;
    let email = EmailSettings::from_lookup(crate::config::lookup)?
        .map(|s| SmtpEmail::new(&s))
        .transpose()?;
    if sms.is_none() && email.is_none() {
        return Ok(None);
    }
    let mut config = WorkerConfig::new(format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        std::process::id()
    ));
    config.batch = opts.batch.max(1);
    config.concurrency = opts.concurrency.max(1);
    if !(opts.lease.is_finite() && opts.lease >= 1.0) {
        bail!(
            "--lease: {} is not a number of seconds of at least 1",
            opts.lease
        );
    }
    config.lease = Duration::from_secs_f64(opts.lease);
    config.quiet_hours = QuietHours::parse(opts.quiet_hours)?;
    config.timezone = settings.timezone;
    if let Some(timeout) = sms_timeout {
        // Five request timeouts: long after any request the provider was still handling.
        config.in_doubt_settle = timeout * 5;
    }
    Ok(Some(Dispatcher::new(store.clone(), sms, email, config)))
}

/// A progress bar on a terminal; a plain line every few seconds otherwise (logs, CI).
async fn report_progress(progress: std::sync::Arc<Progress>, total: u64, started: Instant) {
    let line = |p: &Progress| {
        let sent = p.sent.load(Ordering::Relaxed);
        let failed = p.failed.load(Ordering::Relaxed);
        let done = sent + failed;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let remaining = total.saturating_sub(done);
        let eta = if rate > 0.0 {
            remaining as f64 / rate
        } else {
            f64::INFINITY
        };
        (
            done,
            format!(
                "sent {sent}, failed {failed}, remaining {remaining}, {rate:.0}/s, ETA {eta:.0} s"
            ),
        )
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        loop {
            let (done, msg) = line(&progress);
            bar.set_position(done);
            bar.set_message(msg);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!("notify: {}", line(&progress).1);
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
