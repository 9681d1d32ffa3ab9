//! The claim → send → record loop.
//!
//! A worker claims a batch under a lease, sends its notices concurrently within the provider's
//! rate, and records every outcome of the batch in one transaction. A crash between sending and
//! recording leaves the batch *in doubt*; the next claim of such a notice asks the provider
//! first (`Transport::find_sent`). On shutdown the worker finishes the batch in flight, records
//! it and releases its leases.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use outagecast_core::contact::Channel;
use outagecast_store::{ClaimedNotice, Outcome, SqliteStore};
use rand::RngExt;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::retry::RetryPolicy;
use crate::transport::{OutgoingMessage, SendOutcome, Transport};
use crate::{DispatchError, Result};

/// Hours in which non-urgent notices wait (in the utility's time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// Parses `21:00-08:00`; `off` (or empty) means none.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        let t = text.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || DispatchError::Config {
            field: "OUTAGECAST_QUIET_HOURS",
            problem: format!("{t:?} is not HH:MM-HH:MM (e.g. 21:00-08:00) or off"),
        };
        let (a, b) = t.split_once('-').ok_or_else(bad)?;
        let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
        let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
        if start == end {
            return Err(bad());
        }
        Ok(Some(QuietHours { start, end }))
    }

    /// If `now` falls in quiet hours, when they end.
    pub fn hold_until(&self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&zone);
        let t = local.time();
        let inside = if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        if !inside {
            return None;
        }
        let mut day = local.date_naive();
        if t >= self.end {
            day = day.succ_opt()?;
        }
        // The first valid local instant at or after the end (DST gaps have none exactly).
        (0..3).find_map(|h| {
            day.and_time(self.end + chrono::Duration::hours(h))
                .and_local_timezone(zone)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's lease name (host:pid:n); unique per running worker.
    pub owner: String,
    /// Notices claimed at once.
    pub batch: u32,
    /// How long a claim is held before others may take it over.
    pub lease: Duration,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Backoff and give-up limits.
    pub retry: RetryPolicy,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
    /// The utility's time zone (for quiet hours).
    pub timezone: Tz,
    /// How long to wait before looking again when nothing is due.
    pub idle_poll: Duration,
    /// The least wait before an in-doubt attempt (a timeout) is looked up at the provider: a
    /// request the client gave up on may still be in the provider's hands, and looking too
    /// early finds nothing and sends twice.
    pub in_doubt_settle: Duration,
}

impl WorkerConfig {
    /// Sensible defaults for `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        WorkerConfig {
            owner: owner.into(),
            batch: 200,
            lease: Duration::from_secs(120),
            concurrency: 64,
            retry: RetryPolicy::default(),
            quiet_hours: None,
            timezone: chrono_tz::UTC,
            idle_poll: Duration::from_millis(500),
            in_doubt_settle: Duration::from_secs(60),
        }
    }
}

/// Running totals, readable while the worker runs (for progress bars and metrics).
#[derive(Debug, Default)]
pub struct Progress {
    /// Accepted by a provider.
    pub sent: AtomicU64,
    /// Given up.
    pub failed: AtomicU64,
    /// Scheduled for another attempt.
    pub retried: AtomicU64,
    /// Held for quiet hours.
    pub held: AtomicU64,
    /// Found already sent at the provider after a crash, so not sent again.
    pub recovered: AtomicU64,
    /// SMS segments sent.
    pub segments: AtomicU64,
}

/// When [`Dispatcher::run`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunUntil {
    /// When no notice is due or retrying soon (held ones do not count).
    Empty,
    /// Only on shutdown.
    Shutdown,
}

/// A transport type for a channel that is not configured; it has no values.
#[derive(Debug)]
pub enum Unconfigured {}

impl Transport for Unconfigured {
    fn channel(&self) -> Channel {
        match *self {}
    }
    async fn send(&self, _: &OutgoingMessage) -> SendOutcome {
        match *self {}
    }
    async fn find_sent(&self, _: &OutgoingMessage) -> Result<Option<String>, String> {
        match *self {}
    }
    fn cost(&self, _: &OutgoingMessage) -> u32 {
        match *self {}
    }
}

/// The dispatcher for one process: an SMS and an email transport, either optional.
pub struct Dispatcher<S, E> {
    store: SqliteStore,
    sms: Option<Arc<S>>,
    email: Option<Arc<E>>,
    sms_limiter: Option<Arc<DefaultDirectRateLimiter>>,
    config: WorkerConfig,
    progress: Arc<Progress>,
}

impl<S: Transport + 'static, E: Transport + 'static> Dispatcher<S, E> {
    /// A dispatcher; `sms_rate` is the SMS account's segments per second.
    pub fn new(
        store: SqliteStore,
        sms: Option<(S, u32)>,
        email: Option<E>,
        config: WorkerConfig,
    ) -> Self {
        let sms_limiter = sms.as_ref().and_then(|(_, rate)| {
            let rate = NonZeroU32::new(*rate)?;
            // A small burst keeps the measured rate close to the configured one over short
            // runs; 10 segments always fit the longest SMS we write.
            let burst = NonZeroU32::new((rate.get() / 20).max(10)).unwrap_or(rate);
            Some(Arc::new(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            )))
        });
        Dispatcher {
            store,
            sms: sms.map(|(s, _)| Arc::new(s)),
            email: email.map(Arc::new),
            sms_limiter,
            config,
            progress: Arc::new(Progress::default()),
        }
    }

    /// The channels this dispatcher sends.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = vec![];
        if self.sms.is_some() {
            out.push(Channel::Sms);
        }
        if self.email.is_some() {
            out.push(Channel::Email);
        }
        out
    }

    /// Live totals.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// Runs until `until`, or until `shutdown` resolves: then stops claiming, finishes the
    /// sends in flight, records them and releases this worker's leases.
    ///
    /// Sends are pipelined: new notices are claimed whenever fewer than half of `concurrency`
    /// are in flight, and outcomes are recorded in groups as they finish, so one slow answer
    /// never stalls the rest and the provider's rate is used in full.
    pub async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let channels = self.channels();
        let mut inflight: JoinSet<(i64, Outcome)> = JoinSet::new();
        let mut done: Vec<(i64, Outcome)> = Vec::new();
        let mut stopping = false;
        let mut flush_at = tokio::time::Instant::now() + FLUSH_EVERY;
        let result = loop {
            if !stopping
                && !channels.is_empty()
                && inflight.len() < self.config.concurrency.div_ceil(2)
            {
                let room =
                    (self.config.concurrency - inflight.len()).min(self.config.batch as usize);
                match self.claim_into(&mut inflight, &channels, room).await {
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            }
            if inflight.is_empty() {
                if let Err(e) = self.record(&mut done).await {
                    break Err(e);
                }
                if stopping {
                    break Ok(());
                }
                match self.is_drained(&channels).await {
                    Ok(true) if until == RunUntil::Empty => break Ok(()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
                tokio::select! {
                    () = &mut shutdown, if !stopping => stopping = true,
                    () = tokio::time::sleep(self.config.idle_poll) => {}
                }
                continue;
            }
            tokio::select! {
                biased;
                () = &mut shutdown, if !stopping => stopping = true,
                joined = inflight.join_next() => match joined {
                    Some(Ok(outcome)) => done.push(outcome),
                    // A panicking adapter must not lose the rest: its notice stays leased and
                    // in doubt, and is looked up at the provider when the lease expires.
                    Some(Err(e)) => warn!(error = %e, "a send task failed"),
                    None => {}
                },
                () = tokio::time::sleep_until(flush_at) => {}
            }
            if done.len() >= FLUSH_BATCH || tokio::time::Instant::now() >= flush_at {
                if let Err(e) = self.record(&mut done).await {
                    break Err(e);
                }
                flush_at = tokio::time::Instant::now() + FLUSH_EVERY;
            }
        };
        // Whatever happened, record what finished and give the rest back.
        let recorded = self.record(&mut done).await;
        let released = self.store.release(&self.config.owner).await?;
        if released > 0 {
            info!(released, "released leases on the way out");
        }
        recorded?;
        result
    }

    async fn is_drained(&self, channels: &[Channel]) -> Result<bool> {
        let now = Utc::now();
        let counts = self.store.outbox_counts(channels, now).await?;
        if counts.due > 0 || counts.leased > 0 {
            return Ok(false);
        }
        // Retries in backoff are waited for; notices held for quiet hours are not.
        let soon =
            now + chrono::Duration::from_std(self.config.retry.max_delay).unwrap_or_default();
        Ok(match self.store.next_due().await? {
            Some(t) => t > soon,
            None => true,
        })
    }

    /// Claims up to `room` notices and starts sending them; returns how many.
    async fn claim_into(
        &self,
        inflight: &mut JoinSet<(i64, Outcome)>,
        channels: &[Channel],
        room: usize,
    ) -> Result<usize> {
        if room == 0 {
            return Ok(0);
        }
        let claimed = self
            .store
            .claim(
                &self.config.owner,
                channels,
                u32::try_from(room).unwrap_or(u32::MAX),
                self.config.lease,
                Utc::now(),
            )
            .await?;
        let n = claimed.len();
        for notice in claimed {
            let sms = self.sms.clone();
            let email = self.email.clone();
            let limiter = self.sms_limiter.clone();
            let config = self.config.clone();
            inflight.spawn(async move {
                let outcome = match notice.channel {
                    Channel::Sms => match &sms {
                        Some(t) => deliver(t.as_ref(), limiter.as_deref(), &notice, &config).await,
                        None => unreachable_channel(),
                    },
                    Channel::Email => match &email {
                        Some(t) => deliver(t.as_ref(), None, &notice, &config).await,
                        None => unreachable_channel(),
                    },
                };
                (notice.id, outcome)
            });
        }
        Ok(n)
    }

    /// Records finished outcomes in one transaction and counts them.
    async fn record(&self, done: &mut Vec<(i64, Outcome)>) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let recorded = self
            .store
            .complete(&self.config.owner, done, Utc::now())
            .await?;
        if recorded < done.len() as u64 {
            warn!(
                lost = done.len() as u64 - recorded,
                "leases expired before outcomes were recorded; raise the lease"
            );
        }
        for (_, o) in done.iter() {
            let counter = match o {
                Outcome::Sent { segments, .. } => {
                    self.progress
                        .segments
                        .fetch_add(u64::from(*segments), Ordering::Relaxed);
                    &self.progress.sent
                }
                Outcome::Retry { .. } => &self.progress.retried,
                Outcome::Failed { .. } => &self.progress.failed,
                Outcome::Held { .. } => &self.progress.held,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        done.clear();
        Ok(())
    }

    /// Claims, sends and records until nothing is due (for tests and one-shot use).
    pub async fn drain(&self) -> Result<()> {
        self.run(RunUntil::Empty, std::future::pending()).await
    }
}

/// Outcomes are recorded when this many have finished…
const FLUSH_BATCH: usize = 100;
/// …or this long after the last recording, whichever comes first.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The claim only takes served channels, so this cannot happen; stay total anyway.
fn unreachable_channel() -> Outcome {
    Outcome::Retry {
        not_before: Utc::now() + chrono::Duration::minutes(5),
        reason: "no transport configured for this channel".into(),
        in_doubt: false,
    }
}

#[tracing::instrument(skip_all, fields(notice = notice.id, incident = notice.incident_id, channel = %notice.channel, attempt = notice.attempts))]
async fn deliver<T: Transport>(
    transport: &T,
    limiter: Option<&DefaultDirectRateLimiter>,
    notice: &ClaimedNotice,
    config: &WorkerConfig,
) -> Outcome {
    let now = Utc::now();
    if let Some(quiet) = config.quiet_hours
        && !notice.priority
        && !notice.severity.bypasses_quiet_hours()
        && let Some(until) = quiet.hold_until(now, config.timezone)
    {
        debug!(%until, "held for quiet hours");
        return Outcome::Held { not_before: until };
    }
    let message = OutgoingMessage {
        notice_id: notice.id,
        incident_id: notice.incident_id,
        channel: notice.channel,
        to: notice.address.clone(),
        subject: notice.subject.clone(),
        body: notice.body.clone(),
        language: notice.language.code().to_string(),
    };
    let cost = transport.cost(&message).max(1);
    if notice.in_doubt {
        match transport.find_sent(&message).await {
            Ok(Some(provider_id)) => {
                info!("an earlier attempt reached the provider; not sending again");
                return Outcome::Sent {
                    provider_id,
                    segments: cost,
                };
            }
            Ok(None) => {}
            Err(reason) => {
                return retry_or_fail(notice, config, reason, None, true);
            }
        }
    }
    if let Some(limiter) = limiter {
        let n = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        if limiter.until_n_ready(n).await.is_err() {
            return Outcome::Failed {
                reason: format!(
                    "the message needs {cost} segments, more than the rate limit allows at once"
                ),
            };
        }
    }
    match transport.send(&message).await {
        SendOutcome::Accepted { provider_id } => Outcome::Sent {
            provider_id,
            segments: cost,
        },
        SendOutcome::Retry {
            reason,
            after,
            in_doubt,
        } => {
            warn!(%reason, "will retry");
            retry_or_fail(notice, config, reason, after, in_doubt)
        }
        SendOutcome::Permanent { reason } => {
            warn!(%reason, "failed permanently");
            Outcome::Failed { reason }
        }
    }
}

fn retry_or_fail(
    notice: &ClaimedNotice,
    config: &WorkerConfig,
    reason: String,
    after: Option<Duration>,
    in_doubt: bool,
) -> Outcome {
    let jitter: f64 = rand::rng().random();
    match config.retry.next_attempt(
        notice.attempts,
        notice.created_at,
        Utc::now(),
        after,
        jitter,
    ) {
        Some(not_before) => Outcome::Retry {
            not_before: if in_doubt {
                let settle = chrono::Duration::from_std(config.in_doubt_settle).unwrap_or_default();
                not_before.max(Utc::now() + settle)
            } else {
                not_before
            },
            reason,
            in_doubt,
        },
        None => Outcome::Failed {
            reason: format!("gave up after {} attempts: {reason}", notice.attempts),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn quiet_hours_span_midnight_in_local_time() {
        let q = QuietHours::parse("21:00-08:00").unwrap().unwrap();
        let zone = chrono_tz::Europe::Helsinki;
        // 20:30 UTC is 22:30 in Helsinki (EET): held until 08:00 local = 06:00 UTC next day.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 20, 30, 0).unwrap();
        assert_eq!(
            q.hold_until(now, zone),
            Some(Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap())
        );
        // 03:00 local: until 08:00 the same day.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
        assert_eq!(
            q.hold_until(now, zone),
            Some(Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap())
        );
        // Midday: not quiet.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        assert_eq!(q.hold_until(now, zone), None);
        assert_eq!(QuietHours::parse("off").unwrap(), None);
        assert!(QuietHours::parse("9pm-8am").is_err());
    }
}
