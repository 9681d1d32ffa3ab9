//! `outagecast notify run`: the dispatcher in the foreground, with progress (`incident
//! report` is in `commands`, over the engine).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use outagecast_core::contact::Channel;
use outagecast_core::incident::IncidentId;
use outagecast_core::secret::redact_url;
use outagecast_dispatch::health::DispatchHealth;
use outagecast_dispatch::worker::{Progress, RunUntil};
use outagecast_store::{Requeue, Store};
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
    /// Seconds a claim is held without a heartbeat before another worker may take it over
    /// (after a crash); the worker renews its leases every quarter of this.
    #[arg(long, default_value_t = 20.0)]
    pub lease: f64,
    /// Quiet hours in each customer's local time, from their location (the utility's time
    /// zone without one): `21:00-08:00` (texts, mails and calls), `calls 21:00-08:00` (calls
    /// only; severe incidents and priority customers are not held), or `off`.
    #[arg(
        long,
        env = "OUTAGECAST_QUIET_HOURS",
        default_value = "calls 21:00-08:00"
    )]
    pub quiet_hours: String,
    /// Print the final totals as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(db: &str, settings: &Settings, args: &NotifyArgs) -> Result<()> {
    let store = Store::open(db)
        .await
        .with_context(|| format!("--db: cannot open the database {:?}", redact_url(db)))?;
    let Some(dispatcher) = crate::config::dispatcher(
        &store,
        settings,
        &crate::config::WorkerOptions {
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
    // The totals before and after are for the progress line and the summary only: a store
    // that does not answer (locked by a backup, say) must not hold the run or its exit.
    let before = bounded(store.outbox_counts(&channels, Utc::now()))
        .await
        .unwrap_or_default();
    let total = before.due + before.waiting + before.leased;

    let progress = dispatcher.progress();
    let started = Instant::now();
    let reporter = report_progress(progress.clone(), dispatcher.health(), total, started);
    let until = if args.until_empty {
        RunUntil::Empty
    } else {
        RunUntil::Shutdown
    };
    let result = dispatcher.run(until, shutdown_signal()).await;
    reporter.finish();
    let after = bounded(store.outbox_counts(&channels, Utc::now()))
        .await
        .unwrap_or_default();
    // What waits and why: a failing provider, or a channel this run does not serve.
    let held = bounded(store.held_notices()).await.unwrap_or_default();
    let _ = tokio::time::timeout(Duration::from_secs(1), store.close()).await;
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
                "recovered": progress.recovered.load(Ordering::Relaxed),
                "possible_duplicates": progress.possible_duplicates.load(Ordering::Relaxed),
                "deferred": progress.deferred.load(Ordering::Relaxed),
                "withdrawn": progress.withdrawn.load(Ordering::Relaxed),
                "segments": progress.segments.load(Ordering::Relaxed),
                "seconds": elapsed,
                "remaining": after,
                "held_notices": held,
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
        for h in &held {
            println!("held: {} {} notices: {}", h.count, h.channel, h.reason);
        }
    }
    Ok(())
}

/// A store call on the way in or out of `notify run`, bounded.
async fn bounded<T>(
    call: impl std::future::Future<Output = outagecast_store::Result<T>>,
) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .ok()?
        .ok()
}

/// The dispatch's progress (see [`crate::progress`]): sent, failed, remaining, rate and ETA;
/// what is wrong (a provider refusing, the store locked) is part of the line.
fn report_progress(
    progress: std::sync::Arc<Progress>,
    health: std::sync::Arc<DispatchHealth>,
    total: u64,
    started: Instant,
) -> crate::progress::Progress {
    crate::progress::Progress::start("notify", Some(total), move || {
        let p = &progress;
        let sent = p.sent.load(Ordering::Relaxed);
        let failed = p.failed.load(Ordering::Relaxed);
        let held = p.held.load(Ordering::Relaxed);
        let in_doubt = p.possible_duplicates.load(Ordering::Relaxed);
        let done = sent + failed;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let remaining = total.saturating_sub(done);
        let eta = crate::progress::eta(remaining, rate);
        let problems = health.report().problems();
        let problems = if problems.is_empty() {
            String::new()
        } else {
            format!("; waiting: {}", problems.join("; "))
        };
        crate::progress::Tick {
            done,
            message: format!(
                "sent {sent}, failed {failed}, held {held}, resent in doubt {in_doubt}, remaining {remaining}, {rate:.0}/s, {eta}{problems}"
            ),
        }
    })
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

/// Flags of `notify requeue`.
#[derive(Debug, Clone, clap::Args)]
pub struct RequeueArgs {
    /// The incident (`INC-…` or its number).
    pub incident: String,
    /// Which notices: only `failed` ones can be put back.
    #[arg(long, default_value = "failed")]
    pub status: String,
    /// Only this channel (`sms` or `email`); every channel when left out.
    #[arg(long)]
    pub channel: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `notify requeue INCIDENT [--status failed] [--channel sms]`: failed notices due again now,
/// with their attempts cleared; the dispatcher (`serve` or `notify run`) sends them.
pub async fn requeue(db: &str, actor: &str, args: &RequeueArgs) -> Result<()> {
    if args.status != "failed" {
        bail!(
            "--status: {:?} cannot be requeued; only failed notices can (--status failed)",
            args.status
        );
    }
    let channel = args
        .channel
        .as_deref()
        .map(|c| Channel::parse(c).with_context(|| format!("--channel: {c:?} is not sms or email")))
        .transpose()?;
    let incident = IncidentId::parse(&args.incident)?;
    let store = Store::open(db)
        .await
        .with_context(|| format!("--db: cannot open the database {db:?}"))?;
    let requeued = store
        .requeue(Requeue {
            incident,
            channel,
            actor,
            now: Utc::now(),
        })
        .await;
    store.close().await;
    let requeued = requeued?;
    if args.json {
        println!(
            "{}",
            json!({ "incident": incident.0, "label": incident.label(), "requeued": requeued })
        );
    } else {
        println!(
            "{}: {requeued} failed notice(s) due again; `outagecast notify run` or `serve` sends them",
            incident.label()
        );
    }
    Ok(())
}
