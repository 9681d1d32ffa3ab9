//! The claim → send → record loop.
//!
//! A worker claims a batch under a lease, sends its notices concurrently within the provider's
//! rate, and records the outcomes in batches, each round with the database one transaction
//! that also claims the next batch. A crash between sending and recording leaves the notices
//! *in doubt*; the next claim of such a notice asks the provider first
//! (`Transport::find_sent`). A send starts only while its lease has room for the whole request
//! and the recording; otherwise the notice is given back unsent (`Outcome::Released`), so no
//! other worker can take over a notice that is still being sent. On shutdown the worker
//! finishes the sends in flight, gives back the claimed ones not yet started, records
//! everything and releases its leases.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use outagecast_core::contact::Channel;
use outagecast_store::ports::Outbox;
use outagecast_store::{ClaimedNotice, Outcome, Store};
use rand::RngExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::pace::{Pacer, Refused};
use crate::retry::RetryPolicy;
use crate::transport::{OutgoingMessage, SendOutcome, Transport};
use crate::{DispatchError, Result};

/// Hours in which non-urgent notices wait, in each customer's local time (see [`quiet_hold`]).
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
    /// The utility's time zone: quiet hours for notices whose customer's zone is unknown.
    pub timezone: Tz,
    /// How long to wait before looking again when nothing is due.
    pub idle_poll: Duration,
    /// The least wait before an in-doubt attempt (a timeout) is looked up at the provider: a
    /// request the client gave up on may still be in the provider's hands, and looking too
    /// early finds nothing and sends twice.
    pub in_doubt_settle: Duration,
    /// The clock (`Utc::now`; tests pin it).
    pub clock: fn() -> DateTime<Utc>,
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
            clock: Utc::now,
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
    fn timeout(&self) -> Option<Duration> {
        match *self {}
    }
}

/// The dispatcher for one process: an SMS and an email transport, either optional.
pub struct Dispatcher<S, E, O = Store> {
    core: Arc<Core<S, E, O>>,
}

/// The dispatcher's parts, shared with the task that runs the loop.
struct Core<S, E, O = Store> {
    store: O,
    sms: Option<Arc<S>>,
    email: Option<Arc<E>>,
    sms_limiter: Option<Arc<Pacer>>,
    /// The most notices claimed and not yet finished: what can be sent well within a lease.
    outstanding: usize,
    config: Arc<WorkerConfig>,
    progress: Arc<Progress>,
}

/// What one round with the database brought back.
struct Round {
    /// Newly claimed notices, priority first.
    claimed: Vec<ClaimedNotice>,
    /// How many were asked for.
    asked: usize,
    /// When the claim was made (the leases run from about then).
    at: Instant,
}

type RoundFuture<'a> = Pin<Box<dyn Future<Output = Result<Round>> + Send + 'a>>;

impl<S: Transport + 'static, E: Transport + 'static, O: Outbox> Dispatcher<S, E, O> {
    /// A dispatcher; `sms_rate` is the SMS account's segments per second.
    pub fn new(store: O, sms: Option<(S, u32)>, email: Option<E>, config: WorkerConfig) -> Self {
        Dispatcher {
            core: Arc::new(Core::new(store, sms, email, config)),
        }
    }

    /// The channels this dispatcher sends.
    pub fn channels(&self) -> Vec<Channel> {
        self.core.channels()
    }

    /// Live totals.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.core.progress)
    }

    /// Runs until `until`, or until `shutdown` resolves: then stops claiming, finishes the
    /// sends in flight, records them and releases this worker's leases.
    ///
    /// Pipelined: up to `concurrency` sends are in flight at once, fed from a queue of claimed
    /// notices. The database is worked in rounds that run alongside the sends, one at a
    /// time (SQLite has one writer): a round records the outcomes finished so far and claims
    /// the next batch in one transaction when the queue is down to half a batch, so the next
    /// batch is leased while the current one is still sending.
    ///
    /// The loop runs as a task of the runtime (beside the sends it starts), whatever thread
    /// awaits this; dropping this future stops it as `shutdown` would.
    pub async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let core = Arc::clone(&self.core);
        let mut task = tokio::spawn(async move {
            // A stop, or the caller dropping this future, shuts the loop down in order.
            core.run(until, async move {
                let _ = stopped.await;
            })
            .await
        });
        tokio::pin!(shutdown);
        let joined = tokio::select! {
            joined = &mut task => joined,
            () = &mut shutdown => {
                let _ = stop.send(());
                task.await
            }
        };
        match joined {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Claims, sends and records until nothing is due (for tests and one-shot use).
    pub async fn drain(&self) -> Result<()> {
        self.run(RunUntil::Empty, std::future::pending()).await
    }
}

impl<S: Transport + 'static, E: Transport + 'static, O: Outbox> Core<S, E, O> {
    pub fn new(store: O, sms: Option<(S, u32)>, email: Option<E>, config: WorkerConfig) -> Self {
        let sms_limiter = sms.as_ref().and_then(|(_, rate)| {
            let rate = NonZeroU32::new(*rate)?;
            // A small burst keeps the measured rate close to the configured one over short
            // runs; 10 segments always fit the longest SMS we write.
            let burst = NonZeroU32::new((rate.get() / 20).max(10)).unwrap_or(rate);
            Some(Arc::new(Pacer::new(rate, burst)))
        });
        let batch = config.batch.max(1) as usize;
        let concurrency = config.concurrency.max(1);
        // The sends in flight, the queue and the next claim. A claimed notice waits in the
        // queue and then for the rate limiter: claim no more than the SMS rate sends in a
        // quarter of a lease (but always enough to fill the sends).
        let paced = sms.as_ref().map_or(usize::MAX, |(_, rate)| {
            (f64::from(*rate) * config.lease.as_secs_f64() / 4.0).min(1e9) as usize
        });
        let outstanding = (concurrency + 2 * batch).min(paced.max(concurrency));
        Core {
            store,
            sms: sms.map(|(s, _)| Arc::new(s)),
            email: email.map(Arc::new),
            sms_limiter,
            outstanding,
            config: Arc::new(config),
            progress: Arc::new(Progress::default()),
        }
    }

    fn channels(&self) -> Vec<Channel> {
        let mut out = vec![];
        if self.sms.is_some() {
            out.push(Channel::Sms);
        }
        if self.email.is_some() {
            out.push(Channel::Email);
        }
        out
    }

    /// The loop behind [`Dispatcher::run`].
    async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let channels = self.channels();
        if self.config.quiet_hours.is_some() {
            // Load the time-zone boundaries before the first notice needs them.
            let _ = tokio::task::spawn_blocking(crate::zone::preload).await;
        }
        let batch = self.config.batch.max(1) as usize;
        let concurrency = self.config.concurrency.max(1);
        let mut queue: VecDeque<(ClaimedNotice, Instant)> = VecDeque::with_capacity(batch);
        let mut inflight = Sends::default();
        let mut done: Vec<(i64, Outcome)> = Vec::new();
        // Every notice this worker holds from its claim until its outcome goes to a round. A
        // lease of ours that ran out may come back in a later claim while we still hold the
        // notice: that copy is dropped (the claim only renewed our lease).
        let mut held: HashSet<i64> = HashSet::new();
        let mut round: Option<RoundFuture<'_>> = None;
        let mut stopping = false;
        // After a claim comes back short, the outbox is not asked again before this.
        let mut next_claim = Instant::now();
        let mut flush_at = Instant::now() + FLUSH_EVERY;
        let result: Result<()> = loop {
            if stopping {
                // Claimed but not started: give them back rather than send them now.
                done.extend(queue.drain(..).map(|(n, _)| (n.id, Outcome::Released)));
            }
            // Start sends from the queue.
            while inflight.len() < concurrency
                && let Some((notice, lease_ends)) = queue.pop_front()
            {
                self.spawn_send(&mut inflight, notice, lease_ends);
            }
            let now = Instant::now();
            // Start a database round when one is wanted and none is running.
            if round.is_none() {
                let room = batch.min(
                    self.outstanding
                        .saturating_sub(queue.len() + inflight.len()),
                );
                let claim = if !stopping
                    && !channels.is_empty()
                    && queue.len() * 2 <= batch
                    && room > 0
                    && now >= next_claim
                {
                    room
                } else {
                    0
                };
                let idle = inflight.is_empty() && queue.is_empty();
                let flush = !done.is_empty()
                    && (done.len() >= batch.max(FLUSH_BATCH)
                        || now >= flush_at
                        || claim > 0
                        || idle);
                if flush || claim > 0 {
                    let outcomes = if flush {
                        flush_at = now + FLUSH_EVERY;
                        std::mem::take(&mut done)
                    } else {
                        Vec::new()
                    };
                    for (id, _) in &outcomes {
                        held.remove(id);
                    }
                    round = Some(Box::pin(self.round(outcomes, &channels, claim)));
                } else if idle {
                    // Idle: nothing sending, nothing to record, nothing claimable now.
                    if stopping {
                        break Ok(());
                    }
                    match self.is_drained(&channels).await {
                        Ok(true) if until == RunUntil::Empty => break Ok(()),
                        Ok(_) => {}
                        Err(e) => break Err(e),
                    }
                    let wake = if next_claim > now {
                        next_claim
                    } else {
                        now + self.config.idle_poll
                    };
                    tokio::select! {
                        () = &mut shutdown, if !stopping => stopping = true,
                        () = tokio::time::sleep_until(wake) => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                biased;
                () = &mut shutdown, if !stopping => stopping = true,
                finished = async {
                    match round.as_mut() {
                        Some(r) => r.await,
                        None => std::future::pending().await,
                    }
                }, if round.is_some() => {
                    round = None;
                    match finished {
                        Ok(Round { claimed, asked, at }) => {
                            if claimed.len() < asked {
                                next_claim = Instant::now() + self.config.idle_poll;
                            }
                            let lease_ends = at + self.config.lease;
                            for notice in claimed {
                                if held.insert(notice.id) {
                                    queue.push_back((notice, lease_ends));
                                } else {
                                    debug!(notice = notice.id, "claimed again while still held");
                                }
                            }
                        }
                        Err(e) => break Err(e),
                    }
                }
                () = inflight.join_into(&mut done, &self.config), if !inflight.is_empty() => {}
                () = tokio::time::sleep_until(flush_at), if !done.is_empty() => {}
                () = tokio::time::sleep_until(next_claim), if round.is_none() && !stopping && queue.len() * 2 <= batch => {}
            }
        };
        // Whatever happened: let the round in progress finish (it may hold outcomes), wait
        // for the sends in flight on a clean stop, record what finished and give the rest back.
        let mut result = result;
        if let Some(r) = round.take()
            && let Err(e) = r.await
            && result.is_ok()
        {
            result = Err(e);
        }
        if result.is_ok() {
            while !inflight.is_empty() {
                inflight.join_into(&mut done, &self.config).await;
            }
            done.extend(queue.drain(..).map(|(n, _)| (n.id, Outcome::Released)));
        }
        inflight.set.abort_all();
        let recorded = self.record(std::mem::take(&mut done)).await;
        let released = self.store.release(&self.config.owner).await?;
        if released > 0 {
            info!(released, "released leases on the way out");
        }
        recorded?;
        result
    }

    /// One round with the database, in one transaction: records `outcomes`, then claims up
    /// to `claim` notices.
    async fn round(
        &self,
        outcomes: Vec<(i64, Outcome)>,
        channels: &[Channel],
        claim: usize,
    ) -> Result<Round> {
        let at = Instant::now();
        let (recorded, claimed) = self
            .store
            .complete_and_claim(
                &self.config.owner,
                &outcomes,
                channels,
                u32::try_from(claim).unwrap_or(u32::MAX),
                self.config.lease,
                (self.config.clock)(),
                self.config.quiet_hours.is_some(),
            )
            .await?;
        self.count(&outcomes, recorded);
        Ok(Round {
            claimed,
            asked: claim,
            at,
        })
    }

    async fn is_drained(&self, channels: &[Channel]) -> Result<bool> {
        let now = (self.config.clock)();
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

    /// Starts sending one claimed notice.
    fn spawn_send(&self, inflight: &mut Sends, notice: ClaimedNotice, lease_ends: Instant) {
        let config = Arc::clone(&self.config);
        let id = notice.id;
        let attempt = Attempt {
            attempts: notice.attempts,
            created_at: notice.created_at,
        };
        let task = match notice.channel {
            Channel::Sms => {
                let sms = self.sms.clone();
                let limiter = self.sms_limiter.clone();
                inflight.set.spawn(async move {
                    let outcome = match &sms {
                        Some(t) => {
                            let send_by = latest_start(t.as_ref(), lease_ends, &config);
                            deliver(t.as_ref(), limiter.as_deref(), notice, send_by, &config).await
                        }
                        None => unreachable_channel(&config),
                    };
                    (id, outcome)
                })
            }
            Channel::Email => {
                let email = self.email.clone();
                inflight.set.spawn(async move {
                    let outcome = match &email {
                        Some(t) => {
                            let send_by = latest_start(t.as_ref(), lease_ends, &config);
                            deliver(t.as_ref(), None, notice, send_by, &config).await
                        }
                        None => unreachable_channel(&config),
                    };
                    (id, outcome)
                })
            }
        };
        inflight.tasks.insert(task.id(), (id, attempt));
    }

    /// Records finished outcomes in one transaction and counts them.
    async fn record(&self, done: Vec<(i64, Outcome)>) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let recorded = self
            .store
            .complete(&self.config.owner, &done, (self.config.clock)())
            .await?;
        self.count(&done, recorded);
        Ok(())
    }

    /// Adds recorded outcomes to the running totals.
    fn count(&self, done: &[(i64, Outcome)], recorded: u64) {
        if recorded < done.len() as u64 {
            warn!(
                lost = done.len() as u64 - recorded,
                "leases expired before outcomes were recorded; raise the lease"
            );
        }
        for (_, o) in done {
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
                Outcome::Released => continue,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The sends in flight: one task each, and which notice each task is sending.
#[derive(Default)]
struct Sends {
    set: JoinSet<(i64, Outcome)>,
    tasks: HashMap<tokio::task::Id, (i64, Attempt)>,
}

impl Sends {
    fn len(&self) -> usize {
        self.set.len()
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Waits for a send to finish and moves every finished outcome into `done`.
    async fn join_into(&mut self, done: &mut Vec<(i64, Outcome)>, config: &WorkerConfig) {
        let Some(first) = self.set.join_next_with_id().await else {
            return;
        };
        self.take(first, done, config);
        // Take whatever else has finished without another turn of the caller's loop.
        while let Some(more) = self.set.try_join_next_with_id() {
            self.take(more, done, config);
        }
    }

    fn take(
        &mut self,
        joined: Result<(tokio::task::Id, (i64, Outcome)), tokio::task::JoinError>,
        done: &mut Vec<(i64, Outcome)>,
        config: &WorkerConfig,
    ) {
        match joined {
            Ok((task, outcome)) => {
                self.tasks.remove(&task);
                done.push(outcome);
            }
            Err(e) => {
                // A panicking adapter may have sent before it failed: its notice is recorded
                // in doubt, to be looked up at the provider before any resend.
                warn!(error = %e, "a send task failed");
                if let Some((id, attempt)) = self.tasks.remove(&e.id()) {
                    let reason = format!("the send failed unexpectedly: {e}");
                    done.push((id, retry_or_fail(attempt, config, reason, None, true)));
                }
            }
        }
    }
}

/// Outcomes are recorded when this many (or a batch, if more) have finished…
const FLUSH_BATCH: usize = 100;
/// …or this long after the last recording, whichever comes first.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The claim only takes served channels, so this cannot happen; stay total anyway.
fn unreachable_channel(config: &WorkerConfig) -> Outcome {
    Outcome::Retry {
        not_before: (config.clock)() + chrono::Duration::minutes(5),
        reason: "no transport configured for this channel".into(),
        in_doubt: false,
    }
}

/// Time kept between the longest send and the end of its lease for recording the outcome.
const RECORD_MARGIN: Duration = Duration::from_millis(300);

/// The latest moment a send may start and still be recorded before its lease ends (after
/// which another worker may take the notice over and, finding nothing at the provider yet,
/// send it again): the lease's end less the transport's timeout and a margin. When the
/// timeout does not leave a quarter of the lease, half the lease is all that can be promised.
fn latest_start<T: Transport>(
    transport: &T,
    lease_ends: Instant,
    config: &WorkerConfig,
) -> Instant {
    let budget = match transport.timeout() {
        Some(t) if (t + RECORD_MARGIN) * 4 <= config.lease * 3 => t + RECORD_MARGIN,
        _ => config.lease / 2,
    };
    lease_ends - budget
}

/// When a notice must wait for the end of quiet hours: never for a priority customer or a
/// severe or extreme incident; otherwise in the customer's time zone (from the service
/// location), or the utility's when the notice has no location.
pub fn quiet_hold(
    notice: &ClaimedNotice,
    config: &WorkerConfig,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let quiet = config.quiet_hours?;
    if notice.priority || notice.severity.bypasses_quiet_hours() {
        return None;
    }
    let zone = notice
        .location
        .and_then(crate::zone::zone_at)
        .unwrap_or(config.timezone);
    quiet.hold_until(now, zone)
}

#[tracing::instrument(skip_all, fields(notice = notice.id, incident = notice.incident_id, channel = %notice.channel, attempt = notice.attempts))]
async fn deliver<T: Transport>(
    transport: &T,
    limiter: Option<&Pacer>,
    notice: ClaimedNotice,
    send_by: Instant,
    config: &WorkerConfig,
) -> Outcome {
    let now = (config.clock)();
    if let Some(until) = quiet_hold(&notice, config, now) {
        debug!(%until, "held for quiet hours");
        return Outcome::Held { not_before: until };
    }
    let attempt = Attempt {
        attempts: notice.attempts,
        created_at: notice.created_at,
    };
    let in_doubt = notice.in_doubt;
    let message = OutgoingMessage {
        notice_id: notice.id,
        incident_id: notice.incident_id,
        channel: notice.channel,
        language: notice.language.code().to_string(),
        to: notice.address,
        subject: notice.subject,
        body: notice.body,
    };
    let cost = transport.cost(&message).max(1);
    if in_doubt {
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
                return retry_or_fail(attempt, config, reason, None, true);
            }
        }
    }
    // A send that cannot start by `send_by` might outlive its lease, and another worker
    // could take the notice over meanwhile: it is given back unsent instead.
    let paced = match limiter {
        Some(pacer) => pacer.until_ready(cost, send_by).await,
        None if Instant::now() > send_by => Err(Refused::TooLate),
        None => Ok(()),
    };
    match paced {
        Ok(()) => {}
        Err(Refused::TooCostly) => {
            return Outcome::Failed {
                reason: format!(
                    "the message needs {cost} segments, more than the rate limit allows at once"
                ),
            };
        }
        Err(Refused::TooLate) => {
            debug!("lease running short; released unsent");
            return Outcome::Released;
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
            retry_or_fail(attempt, config, reason, after, in_doubt)
        }
        SendOutcome::Permanent { reason } => {
            warn!(%reason, "failed permanently");
            Outcome::Failed { reason }
        }
    }
}

/// What the retry policy needs to know of a notice.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    attempts: u32,
    created_at: DateTime<Utc>,
}

fn retry_or_fail(
    notice: Attempt,
    config: &WorkerConfig,
    reason: String,
    after: Option<Duration>,
    in_doubt: bool,
) -> Outcome {
    let jitter: f64 = rand::rng().random();
    match config.retry.next_attempt(
        notice.attempts,
        notice.created_at,
        (config.clock)(),
        after,
        jitter,
    ) {
        Some(not_before) => Outcome::Retry {
            not_before: if in_doubt {
                let settle = chrono::Duration::from_std(config.in_doubt_settle).unwrap_or_default();
                not_before.max((config.clock)() + settle)
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
