//! The claim → hand over → send → record loop, one lane per channel.
//!
//! Each configured channel has its own lane (its own claims, sends and rounds with the store),
//! so a mail server that never answers delays only email. A lane claims a batch under a short
//! lease that its heartbeat renews while it holds the notices. Just before a request goes to
//! the provider the notice is *handed over* in a round with the store (`RoundTrip::hand`): that
//! marks it in doubt and is the fence against a cancel or restore. At most `window` notices
//! are handed over and not yet recorded at any time, so after a crash only the requests that
//! were on the wire are in doubt; the lease of a crashed lane runs out within `lease`, and
//! whoever claims an in-doubt notice asks the provider, or, where it cannot be asked, applies
//! the in-doubt policy (resend once and count a possible duplicate, or fail).
//!
//! Failures of the far ends are the normal day of an incident:
//! - the provider refuses the credentials, does not know the account or cannot be reached:
//!   the lane's *circuit* opens, its notices wait unattempted (`Outcome::Deferred`, reason
//!   shown), one error line names the setting, and a probe with backoff resumes it by itself;
//! - a send that outlives the transport's deadline is given up in doubt;
//! - a store error (locked, busy, connection lost) is retried with backoff: outcomes are kept
//!   in memory and sends wait for their hand-over, nothing is lost or sent unfenced;
//! - a lane that panics is restarted (`Dispatcher::run` supervises);
//! - on shutdown the lanes stop claiming, give back what has not started, let the sends in
//!   flight finish for `shutdown_grace`, abandon the rest in doubt and release their leases,
//!   all within a bounded time whatever the far ends and the store do.

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
use outagecast_core::secret::WithoutContacts;
use outagecast_store::ports::Outbox;
use outagecast_store::{
    ClaimRequest, ClaimedNotice, HandedNotice, Outcome, RoundTrip, RoundTripDone, Store, StoreError,
};
use rand::RngExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::health::DispatchHealth;
use crate::pace::{Pacer, Refused};
use crate::retry::RetryPolicy;
use crate::transport::{LookupError, OutgoingMessage, SendOutcome, Transport};
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
            problem: format!(
                "{t:?} is not HH:MM-HH:MM (e.g. 21:00-08:00), calls HH:MM-HH:MM (calls only) or off"
            ),
        };
        let (a, b) = t.split_once('-').ok_or_else(bad)?;
        let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
        let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
        if start == end {
            return Err(bad());
        }
        Ok(Some(QuietHours { start, end }))
    }

    /// `OUTAGECAST_QUIET_HOURS` as (texts and mails, calls): `off` (none), `calls HH:MM-HH:MM`
    /// (calls only: a call at night wakes people, a text does not), or `HH:MM-HH:MM` (both).
    /// Empty is the default, [`QuietHours::DEFAULT`].
    pub fn parse_setting(text: &str) -> Result<(Option<Self>, Option<Self>)> {
        let t = text.trim();
        let t = if t.is_empty() { Self::DEFAULT } else { t };
        match t.split_once(char::is_whitespace) {
            Some((word, hours)) if word.eq_ignore_ascii_case("calls") => {
                let calls = Self::parse(hours)?.ok_or_else(|| DispatchError::Config {
                    field: "OUTAGECAST_QUIET_HOURS",
                    problem: format!("{t:?}: write the hours after calls, e.g. calls 21:00-08:00"),
                })?;
                Ok((None, Some(calls)))
            }
            _ => {
                let both = Self::parse(t)?;
                Ok((both, both))
            }
        }
    }

    /// The default: texts and mails at any hour, calls not at night.
    pub const DEFAULT: &str = "calls 21:00-08:00";

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

/// What to do with a notice whose earlier attempt may have reached a provider that cannot be
/// asked (`OUTAGECAST_SMS_IN_DOUBT`, config `sms.in_doubt`; it applies to email too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InDoubtPolicy {
    /// Send it again, once, and count it as a possible duplicate: an untold customer is the
    /// failure that matters in an outage, a second SMS the lesser harm.
    #[default]
    Resend,
    /// Record it as failed (counted, with the reason), never risking a second copy.
    Fail,
}

impl InDoubtPolicy {
    /// Parses `resend` or `fail`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "resend" => Ok(InDoubtPolicy::Resend),
            "fail" => Ok(InDoubtPolicy::Fail),
            other => Err(DispatchError::Config {
                field: "OUTAGECAST_SMS_IN_DOUBT",
                problem: format!(
                    "{other:?} is not resend or fail (what to do with a notice that may have been sent when the provider cannot be asked)"
                ),
            }),
        }
    }
}

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This process's lease name ([`WorkerConfig::unique_owner`]); each lane adds its channel.
    pub owner: String,
    /// Notices claimed at once.
    pub batch: u32,
    /// How long a claim is held without a heartbeat before others may take it over: a crashed
    /// worker's notices are taken over this long after its last heartbeat.
    pub lease: Duration,
    /// Sends in flight at once, per channel.
    pub concurrency: usize,
    /// The most notices handed over to a provider and not yet recorded, per lane: the bound on
    /// what a crash can leave in doubt.
    pub window: usize,
    /// Backoff and give-up limits.
    pub retry: RetryPolicy,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
    /// Quiet hours for calls, if any: stricter than for texts (the binary gives calls a
    /// night even when texts have none; `OUTAGECAST_QUIET_HOURS=off` turns both off).
    pub call_quiet_hours: Option<QuietHours>,
    /// The utility's time zone: quiet hours for notices whose customer's zone is unknown.
    pub timezone: Tz,
    /// How long to wait before looking again when nothing is due.
    pub idle_poll: Duration,
    /// The least wait before a timed-out attempt (in doubt) is looked up at the provider: a
    /// request the client gave up on may still be in the provider's hands, and looking too
    /// early finds nothing and sends twice.
    pub in_doubt_settle: Duration,
    /// In doubt, and the provider cannot be asked.
    pub in_doubt: InDoubtPolicy,
    /// On shutdown, how long the sends in flight may take to finish before they are abandoned
    /// (in doubt).
    pub shutdown_grace: Duration,
    /// The clock (`Utc::now`; tests pin it).
    pub clock: fn() -> DateTime<Utc>,
}

impl WorkerConfig {
    /// Sensible defaults for `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        WorkerConfig {
            owner: owner.into(),
            batch: 200,
            lease: Duration::from_secs(20),
            concurrency: 64,
            window: 40,
            retry: RetryPolicy::default(),
            quiet_hours: None,
            call_quiet_hours: None,
            timezone: chrono_tz::UTC,
            idle_poll: Duration::from_millis(500),
            in_doubt_settle: Duration::from_secs(60),
            in_doubt: InDoubtPolicy::Resend,
            shutdown_grace: Duration::from_secs(4),
            clock: Utc::now,
        }
    }

    /// A lease name unique to this process: host name, process id and a random part (two
    /// containers can share a host name and a pid, never the random part).
    pub fn unique_owner() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".into());
        let nonce: u32 = rand::rng().random();
        format!("{host}:{}:{nonce:08x}", std::process::id())
    }

    fn heartbeat(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(50))
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
    /// Sent again after an in-doubt attempt the provider could not be asked about.
    pub possible_duplicates: AtomicU64,
    /// Waiting for a failing provider (not attempted).
    pub deferred: AtomicU64,
    /// Withdrawn at hand-over: the incident closed after the claim.
    pub withdrawn: AtomicU64,
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
    async fn find_sent(&self, _: &OutgoingMessage) -> Result<Option<String>, LookupError> {
        match *self {}
    }
    fn cost(&self, _: &OutgoingMessage) -> u32 {
        match *self {}
    }
    fn timeout(&self) -> Duration {
        match *self {}
    }
}

/// The dispatcher for one process: an SMS, an email and a voice transport, each optional,
/// each sent by its own lane, over the outbox port `O` (the [`Store`] in production).
pub struct Dispatcher<S, E, O = Store, V = Unconfigured> {
    sms: Option<Arc<Lane<S, O>>>,
    email: Option<Arc<Lane<E, O>>>,
    voice: Option<Arc<Lane<V, O>>>,
    store: O,
    clock: fn() -> DateTime<Utc>,
    progress: Arc<Progress>,
    health: Arc<DispatchHealth>,
}

impl<S: Transport + 'static, E: Transport + 'static, O: Outbox> Dispatcher<S, E, O> {
    /// A dispatcher without calls; with SMS comes the account's segments per second.
    pub fn new(store: O, sms: Option<(S, u32)>, email: Option<E>, config: WorkerConfig) -> Self {
        Dispatcher::with_voice(store, sms, email, None, config)
    }
}

impl<S: Transport + 'static, E: Transport + 'static, O: Outbox, V: Transport + 'static>
    Dispatcher<S, E, O, V>
{
    /// A dispatcher; with SMS comes the account's segments per second, with voice the calls
    /// per second.
    pub fn with_voice(
        store: O,
        sms: Option<(S, u32)>,
        email: Option<E>,
        voice: Option<(V, u32)>,
        config: WorkerConfig,
    ) -> Self {
        let config = Arc::new(config);
        let progress = Arc::new(Progress::default());
        let health = Arc::new(DispatchHealth::started());
        let served: Vec<Channel> = [
            sms.as_ref().map(|_| Channel::Sms),
            email.as_ref().map(|_| Channel::Email),
            voice.as_ref().map(|_| Channel::Voice),
        ]
        .into_iter()
        .flatten()
        .collect();
        let lane = |channel: Channel, pacer: Option<Arc<Pacer>>| LaneParts {
            channel,
            pacer,
            store: store.clone(),
            served: served.clone(),
            config: Arc::clone(&config),
            progress: Arc::clone(&progress),
            health: Arc::clone(&health),
        };
        let sms = sms.map(|(transport, rate)| {
            let pacer = NonZeroU32::new(rate).map(|rate| {
                // A small burst keeps the measured rate close to the configured one over short
                // runs; 10 segments always fit the longest SMS we write.
                let burst = NonZeroU32::new((rate.get() / 20).max(10)).unwrap_or(rate);
                Arc::new(Pacer::new(rate, burst))
            });
            Arc::new(Lane::new(transport, lane(Channel::Sms, pacer)))
        });
        let email =
            email.map(|transport| Arc::new(Lane::new(transport, lane(Channel::Email, None))));
        // Calls start one at a time at the pace (no burst): a provider counts calls per
        // second strictly, and a call costs far more than a text.
        let voice = voice.map(|(transport, rate)| {
            let pacer =
                NonZeroU32::new(rate).map(|rate| Arc::new(Pacer::new(rate, NonZeroU32::MIN)));
            Arc::new(Lane::new(transport, lane(Channel::Voice, pacer)))
        });
        for c in &served {
            health.serve(*c);
        }
        Dispatcher {
            sms,
            email,
            voice,
            clock: config.clock,
            store,
            progress,
            health,
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
        if self.voice.is_some() {
            out.push(Channel::Voice);
        }
        out
    }

    /// Live totals.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// Live health, for `/healthz` and `notify run`'s progress line.
    pub fn health(&self) -> Arc<DispatchHealth> {
        Arc::clone(&self.health)
    }

    /// Runs every lane until `until`, or until `shutdown` resolves: then each stops claiming,
    /// finishes or abandons the sends in flight within its grace, records them and releases its
    /// leases. A lane that panics is restarted after a second; store errors never end a lane.
    ///
    /// The lanes run as tasks of the runtime, whatever thread awaits this; dropping this
    /// future stops them as `shutdown` would.
    pub async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut lanes: JoinSet<Result<()>> = JoinSet::new();
        // Notices of a channel this process cannot send wait as held, saying which settings
        // would send them: once now (what `notify run` reports) and then now and again, for
        // the notices planned meanwhile. A lane of another process that serves the channel
        // clears the mark as it sends.
        let unserved: Vec<Channel> = Channel::ALL
            .into_iter()
            .filter(|c| !self.channels().contains(c))
            .collect();
        if !unserved.is_empty() {
            // Before the lanes, so a short run reports them; bounded, so that a locked store
            // cannot hold the start (the loop below tries again).
            let first = hold_unserved(&self.store, &unserved, (self.clock)());
            let _ = tokio::time::timeout(Duration::from_secs(2), first).await;
        }
        let _holder = (!unserved.is_empty()).then(|| {
            let (store, clock) = (self.store.clone(), self.clock);
            AbortOnDrop(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(UNSERVED_HOLD_EVERY).await;
                    hold_unserved(&store, &unserved, clock()).await;
                }
            }))
        });
        if let Some(lane) = &self.sms {
            lanes.spawn(supervise(Arc::clone(lane), until, stop_rx.clone()));
        }
        if let Some(lane) = &self.email {
            lanes.spawn(supervise(Arc::clone(lane), until, stop_rx.clone()));
        }
        if let Some(lane) = &self.voice {
            lanes.spawn(supervise(Arc::clone(lane), until, stop_rx.clone()));
        }
        // What the transports do beside sending, stopped with the lanes.
        let _maintained: Vec<AbortOnDrop> = [
            self.sms.as_ref().map(|l| maintain(Arc::clone(l))),
            self.email.as_ref().map(|l| maintain(Arc::clone(l))),
            self.voice.as_ref().map(|l| maintain(Arc::clone(l))),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Stops the lanes however this future ends (a drop included).
        let _stop_on_drop = StopOnDrop(&stop_tx);
        tokio::pin!(shutdown);
        let mut result = Ok(());
        let mut stopping = false;
        loop {
            tokio::select! {
                () = &mut shutdown, if !stopping => {
                    stopping = true;
                    let _ = stop_tx.send(true);
                }
                joined = lanes.join_next() => match joined {
                    None => break,
                    Some(Ok(Err(e))) => {
                        if result.is_ok() {
                            result = Err(e);
                        }
                    }
                    Some(Ok(Ok(()))) => {}
                    Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
                }
            }
        }
        result
    }

    /// Claims, sends and records until nothing is due (for tests and one-shot use).
    pub async fn drain(&self) -> Result<()> {
        self.run(RunUntil::Empty, std::future::pending()).await
    }
}

/// How often notices of a channel this process does not serve are marked held again (those
/// planned since the last time).
const UNSERVED_HOLD_EVERY: Duration = Duration::from_secs(5);

/// What holds the notices of a channel that is not configured, naming what would send them.
pub fn not_configured(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => {
            "sms is not configured here: set OUTAGECAST_SMS_ACCOUNT_SID, OUTAGECAST_SMS_AUTH_TOKEN, OUTAGECAST_SMS_FROM and OUTAGECAST_SMS_BASE_URL and restart"
        }
        Channel::Email => {
            "email is not configured here: set OUTAGECAST_SMTP_URL and OUTAGECAST_EMAIL_FROM and restart"
        }
        Channel::Voice => {
            "voice is not configured here: set OUTAGECAST_VOICE_FROM (the caller id; the account defaults to the SMS one) and OUTAGECAST_PUBLIC_URL and restart; meanwhile the number is armed in the IVR"
        }
    }
}

/// Marks the waiting notices of `channels` held as not configured; a store error is left for
/// the next time (the lanes report the store's health).
async fn hold_unserved<O: Outbox>(store: &O, channels: &[Channel], now: DateTime<Utc>) {
    for &c in channels {
        match store.hold_channel(c, not_configured(c), now).await {
            Ok(0) => {}
            Ok(n) => info!(channel = %c, held = n, "{}", not_configured(c)),
            Err(e) => debug!(channel = %c, error = %e, "could not mark the notices held"),
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `true` on the stop channel when dropped.
struct StopOnDrop<'a>(&'a watch::Sender<bool>);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Runs the upkeep of a lane's transport ([`Transport::maintain`]) as a task, aborted when
/// dropped.
fn maintain<T: Transport + 'static, O: Outbox>(lane: Arc<Lane<T, O>>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move { lane.transport.maintain().await }))
}

/// Runs a lane, restarting it after a panic (its sends were aborted with it; what it had
/// handed over stays in doubt, what it had only claimed is released at the restart).
async fn supervise<T: Transport + 'static, O: Outbox>(
    lane: Arc<Lane<T, O>>,
    until: RunUntil,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    loop {
        let run = tokio::spawn(Arc::clone(&lane).run(until, stop.clone()));
        match run.await {
            Ok(result) => return result,
            Err(e) if e.is_panic() => {
                let what = e
                    .into_panic()
                    .downcast::<String>()
                    .map(|s| *s)
                    .or_else(|p| p.downcast::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_else(|_| "a panic".into());
                error!(
                    channel = %lane.channel,
                    "the {} dispatcher lane panicked ({what}); restarting it in 1 s",
                    lane.channel
                );
                lane.health.restarted();
                if *stop.borrow() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = lane.store.release(&lane.owner).await;
            }
            Err(_) => return Ok(()),
        }
    }
}

/// What a lane is built from.
struct LaneParts<O> {
    channel: Channel,
    pacer: Option<Arc<Pacer>>,
    store: O,
    /// Every channel this process serves: a lane running until empty waits for all of them
    /// (a failed SMS can add an email).
    served: Vec<Channel>,
    config: Arc<WorkerConfig>,
    progress: Arc<Progress>,
    health: Arc<DispatchHealth>,
}

/// One channel's worker.
struct Lane<T, O> {
    channel: Channel,
    /// The lease name: the process's owner and the channel.
    owner: String,
    transport: Arc<T>,
    pacer: Option<Arc<Pacer>>,
    store: O,
    served: Vec<Channel>,
    config: Arc<WorkerConfig>,
    progress: Arc<Progress>,
    health: Arc<DispatchHealth>,
}

/// A send task asking for its notice to be handed over.
struct HandRequest {
    id: i64,
    reply: oneshot::Sender<HandReply>,
}

/// The lane's answer to a hand-over request.
enum HandReply {
    /// Send this text now.
    Send(HandedNotice),
    /// Do not send; record this instead.
    Skip(Outcome),
}

/// What a send learnt of the provider, for the circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Signal {
    /// Nothing was asked of it.
    NotAsked,
    /// It answered (accepted, refused the recipient, asked to slow down).
    Answered,
    /// It is failing as a whole.
    Down(String),
    /// It took the request and gave no answer in time (it may have acted on it).
    Silent(String),
}

/// One send's result.
struct Sent {
    id: i64,
    outcome: Outcome,
    signal: Signal,
}

/// Whether the lane's provider is taking requests.
#[derive(Debug)]
enum Circuit {
    Closed {
        /// Requests in a row the provider has left without an answer.
        unanswered: u32,
    },
    Open {
        reason: String,
        /// When the next probe may start.
        probe_at: Instant,
        backoff: Duration,
        /// A probe is out: no other send starts until it answers.
        probing: bool,
    },
}

/// Requests in a row left without an answer before the provider counts as down: one timeout
/// is a slow request, several in a row a provider that takes requests and never answers (each
/// more would be one more notice in doubt).
const UNANSWERED_IS_DOWN: u32 = 3;
/// The first wait after the provider fails, and the longest.
const PROBE_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// The first wait after the store fails, and the longest (dispatch resumes within this of the
/// store coming back).
const STORE_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// A round with the store that has not answered in this long is reported as a store problem
/// (the database locked, restarting or unreachable: its calls wait before they fail).
const STORE_STALL: Duration = Duration::from_secs(2);
/// How long the last recording and the release may take on the way out.
const FINAL_WRITE: Duration = Duration::from_millis(1500);
/// Time kept between the longest send and the end of its lease for recording the outcome.
const RECORD_MARGIN: Duration = Duration::from_millis(300);

/// What one round with the store was asked to do, and what came of it.
struct RoundResult {
    outcomes: Vec<(i64, Outcome)>,
    hand: Vec<HandRequest>,
    renew: bool,
    claimed_at: Instant,
    asked: usize,
    done: std::result::Result<RoundTripDone, StoreError>,
}

type RoundFuture = Pin<Box<dyn Future<Output = RoundResult> + Send>>;

impl<T: Transport + 'static, O: Outbox> Lane<T, O> {
    fn new(transport: T, parts: LaneParts<O>) -> Self {
        Lane {
            channel: parts.channel,
            owner: format!("{}:{}", parts.config.owner, parts.channel),
            transport: Arc::new(transport),
            pacer: parts.pacer,
            store: parts.store,
            served: parts.served,
            config: parts.config,
            progress: parts.progress,
            health: parts.health,
        }
    }

    /// The most notices in hand at once: what can be sent well within a lease at the
    /// provider's pace (but always enough to fill the sends).
    fn outstanding(&self) -> usize {
        let batch = self.config.batch.max(1) as usize;
        let concurrency = self.config.concurrency.max(1);
        let paced = self.pacer.as_ref().map_or(usize::MAX, |p| {
            (p.rate() * self.config.lease.as_secs_f64() / 4.0).min(1e9) as usize
        });
        (concurrency + 2 * batch).min(paced.max(concurrency))
    }

    /// The loop behind [`Dispatcher::run`] for this lane.
    async fn run(self: Arc<Self>, until: RunUntil, mut stop: watch::Receiver<bool>) -> Result<()> {
        if self.config.quiet_hours.is_some() || self.config.call_quiet_hours.is_some() {
            // Load the time-zone boundaries before the first notice needs them.
            let _ = tokio::task::spawn_blocking(crate::zone::preload).await;
        }
        let batch = self.config.batch.max(1) as usize;
        let concurrency = self.config.concurrency.max(1);
        let window = self.config.window.max(1);
        let heartbeat = self.config.heartbeat();
        let outstanding = self.outstanding();
        let (hand_tx, mut hand_rx) = mpsc::unbounded_channel::<HandRequest>();

        let mut queue: VecDeque<ClaimedNotice> = VecDeque::with_capacity(batch);
        // Every notice this lane holds from its claim until its outcome is recorded, with when
        // its lease was taken. A lease of ours that ran out may come back in a later claim
        // while we still hold the notice: that copy is dropped (the claim only renewed it).
        let mut held: HashMap<i64, Instant> = HashMap::new();
        let mut renewed_at: Option<Instant> = None;
        let mut sends = Sends::new(Arc::clone(&self.config));
        let mut done: Vec<(i64, Outcome)> = Vec::new();
        let mut waiting: VecDeque<HandRequest> = VecDeque::new();
        // Handed over and not yet recorded (the in-doubt window), and in the running round.
        let mut handed: HashSet<i64> = HashSet::new();
        let mut handing = 0usize;
        let mut round: Option<RoundFuture> = None;
        // When the running round started, and whether it was reported as stalled.
        let mut round_since = Instant::now();
        let mut stalled = false;
        let mut circuit = Circuit::Closed { unanswered: 0 };
        // The channel's notices in the store follow the circuit: held with its reason while
        // it is open, plain pending once it closes (and at the start: a restart with the
        // setting fixed clears what an earlier run held).
        let (holds, hold_rx) = watch::channel(None::<String>);
        let _holds_applied = AbortOnDrop(tokio::spawn(apply_holds(
            self.store.clone(),
            self.channel,
            self.config.clock,
            hold_rx,
        )));
        let mut store_backoff: Option<(Instant, Duration)> = None;
        let mut stopping: Option<Instant> = None;
        let mut next_claim = Instant::now();
        let mut next_heartbeat = Instant::now() + heartbeat;

        loop {
            let now = Instant::now();
            if stopping.is_some() {
                // Claimed but not started: give them back rather than send them now.
                done.extend(queue.drain(..).map(|n| (n.id, Outcome::Released)));
                for r in waiting.drain(..) {
                    let _ = r.reply.send(HandReply::Skip(Outcome::Released));
                }
            }
            // An open circuit: what is queued waits for the probe, unattempted.
            if let Circuit::Open {
                reason,
                probe_at,
                probing,
                ..
            } = &circuit
            {
                let not_before =
                    (self.config.clock)() + to_chrono(probe_at.saturating_duration_since(now));
                let keep = usize::from(*probing || now >= *probe_at);
                while queue.len() > keep {
                    if let Some(n) = queue.pop_back() {
                        done.push((n.id, deferred(not_before, reason)));
                    }
                }
                if !*probing {
                    for r in waiting.drain(..) {
                        let _ = r.reply.send(HandReply::Skip(deferred(not_before, reason)));
                    }
                }
            }
            // Start sends from the queue (one probe at a time while the circuit is open).
            while sends.len() < concurrency && stopping.is_none() {
                let may_start = match &mut circuit {
                    Circuit::Closed { .. } => true,
                    Circuit::Open {
                        probe_at, probing, ..
                    } => {
                        if !*probing && now >= *probe_at && sends.is_empty() {
                            *probing = true;
                            true
                        } else {
                            false
                        }
                    }
                };
                if !may_start {
                    break;
                }
                let Some(notice) = queue.pop_front() else {
                    if let Circuit::Open { probing, .. } = &mut circuit {
                        *probing = false;
                    }
                    break;
                };
                self.spawn_send(&mut sends, notice, hand_tx.clone());
            }

            // A round with the store, when one is wanted and none is running.
            let store_ready = store_backoff.is_none_or(|(at, _)| now >= at);
            if round.is_none() && store_ready {
                let room = window.saturating_sub(handed.len() + handing);
                let mut hand = Vec::new();
                while hand.len() < room
                    && let Some(r) = waiting.pop_front()
                {
                    match self.lease_left(&held, renewed_at, r.id, now) {
                        Some(left) if left >= self.send_budget() => hand.push(r),
                        _ => {
                            debug!(notice = r.id, "lease running short; released unsent");
                            let _ = r.reply.send(HandReply::Skip(Outcome::Released));
                        }
                    }
                }
                let circuit_claims = match &circuit {
                    Circuit::Closed { .. } => true,
                    Circuit::Open {
                        probe_at, probing, ..
                    } => !*probing && now >= *probe_at && queue.is_empty() && sends.is_empty(),
                };
                let room = outstanding.saturating_sub(queue.len() + sends.len());
                let claim = if stopping.is_none()
                    && circuit_claims
                    && queue.len() * 2 <= batch
                    && room > 0
                    && now >= next_claim
                {
                    match circuit {
                        Circuit::Closed { .. } => batch.min(room),
                        Circuit::Open { .. } => 1,
                    }
                } else {
                    0
                };
                let renew = now >= next_heartbeat && !held.is_empty();
                let idle = sends.is_empty() && queue.is_empty() && waiting.is_empty();
                if !done.is_empty() || !hand.is_empty() || renew || claim > 0 {
                    handing = hand.len();
                    if renew {
                        next_heartbeat = now + heartbeat;
                    }
                    round = Some(self.round(std::mem::take(&mut done), hand, renew, claim));
                    round_since = now;
                } else if idle {
                    if let Some(_deadline) = stopping {
                        break;
                    }
                    // Nothing sending, nothing to record, nothing claimable now.
                    if until == RunUntil::Empty && matches!(circuit, Circuit::Closed { .. }) {
                        match self.is_drained().await {
                            Ok(true) => break,
                            Ok(false) => {}
                            Err(e) => {
                                self.store_failed(&mut store_backoff, &e);
                            }
                        }
                    }
                    let mut wake = if next_claim > now {
                        next_claim
                    } else {
                        now + self.config.idle_poll
                    };
                    if let Circuit::Open { probe_at, .. } = &circuit {
                        wake = wake.min((*probe_at).max(now + Duration::from_millis(10)));
                    }
                    if let Some((at, _)) = store_backoff {
                        wake = wake.min(at.max(now));
                    }
                    tokio::select! {
                        _ = stop.changed(), if stopping.is_none() => {
                            stopping = Some(Instant::now() + self.config.shutdown_grace);
                        }
                        () = tokio::time::sleep_until(wake) => {}
                    }
                    continue;
                }
            }
            if let Some(deadline) = stopping
                && now >= deadline
                && !sends.is_empty()
            {
                // The far end outlived the grace: what is in flight stays in doubt.
                warn!(
                    channel = %self.channel,
                    abandoned = sends.len(),
                    "shutting down with sends still in flight; they stay in doubt"
                );
                break;
            }
            let wake_store = store_backoff.map(|(at, _)| at);
            tokio::select! {
                biased;
                _ = stop.changed(), if stopping.is_none() => {
                    stopping = Some(Instant::now() + self.config.shutdown_grace);
                }
                finished = async {
                    match round.as_mut() {
                        Some(r) => r.await,
                        None => std::future::pending().await,
                    }
                }, if round.is_some() => {
                    round = None;
                    handing = 0;
                    let RoundResult { mut outcomes, hand, renew, claimed_at, asked, done: result } = finished;
                    match result {
                        Ok(d) => {
                            if store_backoff.take().is_some() || std::mem::take(&mut stalled) {
                                info!(channel = %self.channel, "the store takes the dispatcher's writes again; resuming");
                                self.health.store_ok();
                            }
                            self.count(&outcomes, d.recorded);
                            for (id, _) in &outcomes {
                                held.remove(id);
                                handed.remove(id);
                            }
                            if renew {
                                renewed_at = Some(claimed_at);
                            }
                            let mut texts: HashMap<i64, HandedNotice> =
                                d.handed.into_iter().map(|h| (h.id, h)).collect();
                            for r in hand {
                                match texts.remove(&r.id) {
                                    Some(text) => {
                                        handed.insert(r.id);
                                        if r.reply.send(HandReply::Send(text)).is_err() {
                                            // The send task is gone (aborted): its notice
                                            // stays in doubt, as if it had gone out.
                                            debug!(notice = r.id, "handed over to a send that is gone");
                                        }
                                    }
                                    None => {
                                        let _ = r.reply.send(HandReply::Skip(Outcome::Withdrawn));
                                    }
                                }
                            }
                            if d.claimed.len() < asked {
                                next_claim = Instant::now() + self.config.idle_poll;
                            }
                            for notice in d.claimed {
                                if held.insert(notice.id, claimed_at).is_none() {
                                    queue.push_back(notice);
                                } else {
                                    debug!(notice = notice.id, "claimed again while still held");
                                }
                            }
                        }
                        Err(e) => {
                            // Nothing of the round was written: keep its outcomes and its
                            // hand-overs for the next try.
                            outcomes.append(&mut done);
                            done = outcomes;
                            for r in hand.into_iter().rev() {
                                waiting.push_front(r);
                            }
                            if renew {
                                next_heartbeat = Instant::now();
                            }
                            self.store_failed(&mut store_backoff, &e);
                        }
                    }
                }
                joined = sends.join_next(), if !sends.is_empty() => {
                    for sent in joined {
                        let outcome = self.circuit_learns(&mut circuit, &holds, sent.signal, sent.outcome);
                        done.push((sent.id, outcome));
                    }
                }
                Some(r) = hand_rx.recv() => waiting.push_back(r),
                () = tokio::time::sleep_until(next_claim), if round.is_none() && stopping.is_none() && queue.len() * 2 <= batch && next_claim > now => {}
                () = tokio::time::sleep_until(next_heartbeat), if round.is_none() && !held.is_empty() => {}
                () = tokio::time::sleep_until(wake_store.unwrap_or(now)), if round.is_none() && wake_store.is_some_and(|at| at > now) => {}
                () = sleep_until_opt(circuit_wake(&circuit)), if round.is_none() && circuit_wake(&circuit).is_some_and(|at| at > now) => {}
                () = tokio::time::sleep_until(stopping.unwrap_or(now)), if stopping.is_some_and(|d| d > now) && !sends.is_empty() => {}
                () = tokio::time::sleep_until(round_since + STORE_STALL), if round.is_some() && !stalled => {
                    stalled = true;
                    warn!(
                        channel = %self.channel,
                        "the store has not answered the dispatcher for {} s; notices wait",
                        STORE_STALL.as_secs()
                    );
                    self.health.store_failing(
                        &format!("the store has not answered for {} s (locked, restarting or unreachable)", STORE_STALL.as_secs()),
                        (self.config.clock)(),
                    );
                }
            }
        }
        self.finish(round, sends, done, waiting).await
    }

    /// The way out: let the running round end, record what finished, release the leases, each
    /// step bounded so that a locked store cannot hold the process.
    async fn finish(
        &self,
        round: Option<RoundFuture>,
        mut sends: Sends,
        mut done: Vec<(i64, Outcome)>,
        waiting: VecDeque<HandRequest>,
    ) -> Result<()> {
        for r in waiting {
            let _ = r.reply.send(HandReply::Skip(Outcome::Released));
        }
        if let Some(r) = round
            && let Ok(finished) = tokio::time::timeout(FINAL_WRITE, r).await
        {
            match finished.done {
                Ok(d) => self.count(&finished.outcomes, d.recorded),
                Err(_) => {
                    let mut outcomes = finished.outcomes;
                    outcomes.append(&mut done);
                    done = outcomes;
                }
            }
        }
        // Whatever already finished is recorded; the rest is abandoned in doubt.
        while let Some(joined) = sends.try_join_next() {
            done.extend(joined.into_iter().map(|s| (s.id, s.outcome)));
        }
        sends.set.abort_all();
        if !done.is_empty() {
            match tokio::time::timeout(
                FINAL_WRITE,
                self.store
                    .complete(&self.owner, &done, (self.config.clock)()),
            )
            .await
            {
                Ok(Ok(recorded)) => self.count(&done, recorded),
                Ok(Err(e)) => {
                    warn!(channel = %self.channel, error = %e, "could not record the last outcomes; their leases will expire")
                }
                Err(_) => {
                    warn!(channel = %self.channel, "the store did not take the last outcomes in time; their leases will expire")
                }
            }
        }
        match tokio::time::timeout(FINAL_WRITE, self.store.release(&self.owner)).await {
            Ok(Ok(released)) if released > 0 => {
                info!(channel = %self.channel, released, "released leases on the way out")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(channel = %self.channel, error = %e, "could not release the leases; they will expire")
            }
            Err(_) => {
                warn!(channel = %self.channel, "the store did not release the leases in time; they will expire")
            }
        }
        Ok(())
    }

    /// How much lease a notice has left, by this lane's own clock (its claim or the last
    /// heartbeat, whichever is later).
    fn lease_left(
        &self,
        held: &HashMap<i64, Instant>,
        renewed_at: Option<Instant>,
        id: i64,
        now: Instant,
    ) -> Option<Duration> {
        let taken = *held.get(&id)?;
        let from = renewed_at.map_or(taken, |r| r.max(taken));
        Some((from + self.config.lease).saturating_duration_since(now))
    }

    /// The lease a send needs left to start: the transport's deadline and a margin, or half a
    /// lease when that is less (the heartbeat renews it meanwhile; should the store be down
    /// that long, the notice is in doubt and its taker asks first).
    fn send_budget(&self) -> Duration {
        (self.transport.timeout() + RECORD_MARGIN).min(self.config.lease / 2)
    }

    /// The provider's part in a send's result: opens or closes the circuit, and gives a
    /// deferred notice the probe's time.
    fn circuit_learns(
        &self,
        circuit: &mut Circuit,
        holds: &watch::Sender<Option<String>>,
        signal: Signal,
        outcome: Outcome,
    ) -> Outcome {
        match signal {
            Signal::NotAsked => {
                // A probe that never reached the provider (held, withdrawn) proves nothing:
                // the next notice probes instead.
                if let Circuit::Open { probing, .. } = circuit {
                    *probing = false;
                }
                outcome
            }
            Signal::Answered => {
                match circuit {
                    Circuit::Open { .. } => {
                        info!(channel = %self.channel, "the {} provider accepts requests again; resuming", self.channel);
                    }
                    Circuit::Closed { unanswered } => {
                        *unanswered = 0;
                        return outcome;
                    }
                }
                self.health.channel_up(self.channel);
                holds.send_replace(None);
                *circuit = Circuit::Closed { unanswered: 0 };
                outcome
            }
            Signal::Silent(reason) => {
                let unanswered = match circuit {
                    Circuit::Closed { unanswered } => {
                        *unanswered += 1;
                        *unanswered
                    }
                    Circuit::Open { probing, .. } => {
                        *probing = false;
                        UNANSWERED_IS_DOWN
                    }
                };
                if unanswered < UNANSWERED_IS_DOWN {
                    return outcome;
                }
                let reason = format!(
                    "the {} provider has left {unanswered} requests in a row without an answer ({reason}); each is looked up before it is sent again",
                    self.channel
                );
                // The notice stays in doubt (not deferred as unsent): it is asked after first.
                self.circuit_opens(circuit, holds, reason);
                outcome
            }
            Signal::Down(reason) => self.circuit_opens(circuit, holds, reason),
        }
    }

    /// The provider is failing as a whole: says so once, tells `/healthz/dispatch`, holds the
    /// channel's notices with the reason and waits for a probe; the deferred outcome of an
    /// unsent notice.
    fn circuit_opens(
        &self,
        circuit: &mut Circuit,
        holds: &watch::Sender<Option<String>>,
        reason: String,
    ) -> Outcome {
        let backoff = match circuit {
            Circuit::Closed { .. } => {
                error!(
                    channel = %self.channel,
                    "{reason}. The {} notices wait (nothing is failed for this); probing again in {} s",
                    self.channel,
                    PROBE_BACKOFF.0.as_secs()
                );
                PROBE_BACKOFF.0
            }
            Circuit::Open {
                backoff, probing, ..
            } => {
                if *probing {
                    debug!(channel = %self.channel, %reason, "probe refused");
                    (*backoff * 2).min(PROBE_BACKOFF.1)
                } else {
                    *backoff
                }
            }
        };
        self.health
            .channel_down(self.channel, &reason, (self.config.clock)());
        let not_before = (self.config.clock)() + to_chrono(backoff);
        let open = deferred(not_before, &reason);
        // Every failure marks them again: notices planned since the last one too.
        holds.send_replace(Some(reason.clone()));
        *circuit = Circuit::Open {
            reason,
            probe_at: Instant::now() + backoff,
            backoff,
            probing: false,
        };
        self.progress.deferred.fetch_add(1, Ordering::Relaxed);
        open
    }

    /// Notes a store failure: backs off, says so once, and tells `/healthz/dispatch`.
    fn store_failed(&self, backoff: &mut Option<(Instant, Duration)>, e: &StoreError) {
        let wait = match backoff {
            None => {
                warn!(
                    channel = %self.channel,
                    error = %e,
                    "the store refused the dispatcher's write; notices wait and it is retried every {} s at most",
                    STORE_BACKOFF.1.as_secs()
                );
                STORE_BACKOFF.0
            }
            Some((_, last)) => {
                debug!(channel = %self.channel, error = %e, "the store is still failing");
                (*last * 2).min(STORE_BACKOFF.1)
            }
        };
        self.health
            .store_failing(&e.to_string(), (self.config.clock)());
        *backoff = Some((Instant::now() + wait, wait));
    }

    /// One round with the store, in one transaction (see [`RoundTrip`]).
    fn round(
        self: &Arc<Self>,
        outcomes: Vec<(i64, Outcome)>,
        hand: Vec<HandRequest>,
        renew: bool,
        claim: usize,
    ) -> RoundFuture {
        let lane = Arc::clone(self);
        Box::pin(async move {
            let claimed_at = Instant::now();
            let ids: Vec<i64> = hand.iter().map(|r| r.id).collect();
            let channels = [lane.channel];
            let done = lane
                .store
                .round_trip(RoundTrip {
                    owner: &lane.owner,
                    outcomes: &outcomes,
                    hand: &ids,
                    renew,
                    claim: (claim > 0).then_some(ClaimRequest {
                        channels: &channels,
                        limit: u32::try_from(claim).unwrap_or(u32::MAX),
                        locate: lane.config.quiet_hours.is_some(),
                    }),
                    lease: lane.config.lease,
                    now: (lane.config.clock)(),
                })
                .await;
            RoundResult {
                outcomes,
                hand,
                renew,
                claimed_at,
                asked: claim,
                done,
            }
        })
    }

    /// Whether nothing is due, leased or retrying soon on any channel this process serves.
    async fn is_drained(&self) -> std::result::Result<bool, StoreError> {
        let now = (self.config.clock)();
        let counts = self.store.outbox_counts(&self.served, now).await?;
        if counts.due > 0 || counts.leased > 0 {
            return Ok(false);
        }
        // Retries in backoff are waited for; notices held for quiet hours are not.
        let soon = now + to_chrono(self.config.retry.max_delay);
        Ok(match self.store.next_due().await? {
            Some(t) => t > soon,
            None => true,
        })
    }

    /// Starts sending one claimed notice.
    fn spawn_send(
        &self,
        sends: &mut Sends,
        notice: ClaimedNotice,
        hand: mpsc::UnboundedSender<HandRequest>,
    ) {
        let transport = Arc::clone(&self.transport);
        let pacer = self.pacer.clone();
        let config = Arc::clone(&self.config);
        let progress = Arc::clone(&self.progress);
        let id = notice.id;
        let attempt = Attempt {
            attempts: notice.attempts,
            created_at: notice.created_at,
        };
        let task = sends.set.spawn(async move {
            let (outcome, signal) = deliver(
                transport.as_ref(),
                pacer.as_deref(),
                notice,
                hand,
                &config,
                &progress,
            )
            .await;
            Sent {
                id,
                outcome,
                signal,
            }
        });
        sends.tasks.insert(task.id(), (id, attempt));
    }

    /// Adds recorded outcomes to the running totals.
    fn count(&self, done: &[(i64, Outcome)], recorded: u64) {
        if recorded < done.len() as u64 {
            warn!(
                channel = %self.channel,
                lost = done.len() as u64 - recorded,
                "leases expired before outcomes were recorded (another worker took them over)"
            );
        }
        for (_, o) in done {
            let counter = match o {
                Outcome::Sent { segments, .. } | Outcome::SentAgain { segments, .. } => {
                    self.progress
                        .segments
                        .fetch_add(u64::from(*segments), Ordering::Relaxed);
                    if matches!(o, Outcome::SentAgain { .. }) {
                        self.progress
                            .possible_duplicates
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    &self.progress.sent
                }
                Outcome::Retry { .. } => &self.progress.retried,
                Outcome::Failed { .. } => &self.progress.failed,
                Outcome::Held { .. } => &self.progress.held,
                Outcome::Withdrawn => &self.progress.withdrawn,
                Outcome::Released | Outcome::Deferred { .. } => continue,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A deferred outcome: the provider is failing, the notice waits for the probe.
fn deferred(not_before: DateTime<Utc>, reason: &str) -> Outcome {
    Outcome::Deferred {
        not_before,
        reason: waiting_for(reason),
    }
}

/// What a notice held for a failing provider says.
fn waiting_for(reason: &str) -> String {
    format!("waiting for the provider: {reason}")
}

/// Keeps the store's held marks of `channel` as the lane's circuit wants them, the latest
/// wish first: held with the reason while the circuit is open, cleared once it closes. A
/// store error is retried after a pause (the lane reports the store's health).
async fn apply_holds<O: Outbox>(
    store: O,
    channel: Channel,
    clock: fn() -> DateTime<Utc>,
    mut wish: watch::Receiver<Option<String>>,
) {
    loop {
        let want = wish.borrow_and_update().clone();
        let applied = match &want {
            Some(reason) => {
                store
                    .hold_channel(channel, &waiting_for(reason), clock())
                    .await
            }
            None => store.resume_channel(channel, clock()).await,
        };
        match applied {
            Ok(n) if n > 0 => {
                debug!(%channel, notices = n, held = want.is_some(), "held marks changed")
            }
            Ok(_) => {}
            Err(e) => {
                debug!(%channel, error = %e, "could not change the held marks; trying again");
                tokio::time::sleep(STORE_BACKOFF.1).await;
                continue;
            }
        }
        if wish.changed().await.is_err() {
            return;
        }
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// When an open circuit wants the loop awake (its probe time).
fn circuit_wake(circuit: &Circuit) -> Option<Instant> {
    match circuit {
        Circuit::Open {
            probe_at,
            probing: false,
            ..
        } => Some(*probe_at),
        _ => None,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The sends in flight: one task each, and which notice each task is sending.
struct Sends {
    set: JoinSet<Sent>,
    tasks: HashMap<tokio::task::Id, (i64, Attempt)>,
    config: Arc<WorkerConfig>,
}

impl Sends {
    fn new(config: Arc<WorkerConfig>) -> Self {
        Sends {
            set: JoinSet::new(),
            tasks: HashMap::new(),
            config,
        }
    }

    fn len(&self) -> usize {
        self.set.len()
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Waits for a send to finish; returns it and every other one finished by then.
    async fn join_next(&mut self) -> Vec<Sent> {
        let mut out = Vec::new();
        let Some(first) = self.set.join_next_with_id().await else {
            return out;
        };
        out.extend(self.take(first));
        while let Some(more) = self.set.try_join_next_with_id() {
            out.extend(self.take(more));
        }
        out
    }

    /// Every send finished by now, without waiting.
    fn try_join_next(&mut self) -> Option<Vec<Sent>> {
        let joined = self.set.try_join_next_with_id()?;
        Some(self.take(joined).into_iter().collect())
    }

    fn take(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, Sent), tokio::task::JoinError>,
    ) -> Option<Sent> {
        match joined {
            Ok((task, sent)) => {
                self.tasks.remove(&task);
                Some(sent)
            }
            Err(e) => {
                // A panicking adapter may have sent before it failed: its notice is recorded
                // as a retry in doubt, looked up (or resent by the policy) before any resend.
                warn!(error = %e, "a send task failed");
                let (id, attempt) = self.tasks.remove(&e.id())?;
                let reason = format!("the send failed unexpectedly: {e}");
                Some(Sent {
                    id,
                    outcome: retry(attempt, &self.config, reason, None, true),
                    signal: Signal::NotAsked,
                })
            }
        }
    }
}

/// When a notice must wait for the end of quiet hours: never for a priority customer or a
/// severe or extreme incident; otherwise in the customer's time zone (from the service
/// location), or the utility's when the notice has no location.
pub fn quiet_hold(
    notice: &ClaimedNotice,
    config: &WorkerConfig,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let quiet = if notice.channel == Channel::Voice {
        config.call_quiet_hours?
    } else {
        config.quiet_hours?
    };
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
    pacer: Option<&Pacer>,
    notice: ClaimedNotice,
    hand: mpsc::UnboundedSender<HandRequest>,
    config: &WorkerConfig,
    progress: &Progress,
) -> (Outcome, Signal) {
    let now = (config.clock)();
    if let Some(until) = quiet_hold(&notice, config, now) {
        debug!(%until, "held for quiet hours");
        return (Outcome::Held { not_before: until }, Signal::NotAsked);
    }
    let attempt = Attempt {
        attempts: notice.attempts,
        created_at: notice.created_at,
    };
    let in_doubt = notice.in_doubt;
    let mut message = OutgoingMessage {
        notice_id: notice.id,
        incident_id: notice.incident_id,
        channel: notice.channel,
        language: notice.language.code().to_string(),
        to: notice.address,
        subject: notice.subject,
        body: notice.body,
    };
    let mut again = false;
    if in_doubt {
        match transport.find_sent(&message).await {
            Ok(Some(provider_id)) => {
                info!("an earlier attempt reached the provider; not sending again");
                progress.recovered.fetch_add(1, Ordering::Relaxed);
                let segments = transport.cost(&message).max(1);
                return (
                    Outcome::Sent {
                        provider_id,
                        segments,
                    },
                    Signal::Answered,
                );
            }
            Ok(None) => {}
            Err(LookupError::Unsupported) => match config.in_doubt {
                InDoubtPolicy::Resend => again = true,
                InDoubtPolicy::Fail => {
                    return (
                        Outcome::Failed {
                            reason: "an earlier attempt may have been sent and the provider cannot be asked (OUTAGECAST_SMS_IN_DOUBT=fail)".into(),
                        },
                        Signal::NotAsked,
                    );
                }
            },
            Err(LookupError::Failed(reason)) => {
                return (retry(attempt, config, reason, None, true), Signal::NotAsked);
            }
        }
    }
    // Room under the channel's cap (simultaneous calls), for at most half a lease.
    let Some(permit) = transport.permit(config.lease / 2).await else {
        debug!("no room under the channel's cap within half a lease; released unsent");
        return (Outcome::Released, Signal::NotAsked);
    };
    let cost = transport.cost(&message).max(1);
    // Queue for the provider's rate, but not for longer than half a lease: a notice that
    // cannot start by then is given back unsent for a fresh claim.
    let paced = match pacer {
        Some(p) => p.until_ready(cost, Instant::now() + config.lease / 2).await,
        None => Ok(()),
    };
    match paced {
        Ok(()) => {}
        Err(Refused::TooCostly) => {
            return (
                Outcome::Failed {
                    reason: format!(
                        "the message needs {cost} segments, more than the rate limit allows at once"
                    ),
                },
                Signal::NotAsked,
            );
        }
        Err(Refused::TooLate) => {
            debug!("the rate limit's queue is longer than half a lease; released unsent");
            return (Outcome::Released, Signal::NotAsked);
        }
    }
    // The hand-over: the fence, and the text as it stands now.
    let (reply_tx, reply_rx) = oneshot::channel();
    if hand
        .send(HandRequest {
            id: message.notice_id,
            reply: reply_tx,
        })
        .is_err()
    {
        return (Outcome::Released, Signal::NotAsked);
    }
    match reply_rx.await {
        Ok(HandReply::Send(text)) => {
            message.subject = text.subject;
            message.body = text.body;
        }
        Ok(HandReply::Skip(outcome)) => {
            if outcome == Outcome::Withdrawn {
                info!("withdrawn unsent: the incident closed after the claim");
            }
            return (outcome, Signal::NotAsked);
        }
        Err(_) => return (Outcome::Released, Signal::NotAsked),
    }
    let deadline = transport.timeout();
    let started = Instant::now();
    let answer = match tokio::time::timeout(deadline, transport.send(&message)).await {
        Ok(answer) => answer,
        Err(_) => SendOutcome::Retry {
            reason: format!(
                "no answer within {:.0} s (the {} provider may still deliver it)",
                deadline.as_secs_f64(),
                message.channel
            ),
            after: None,
            in_doubt: true,
        },
    };
    permit.done(matches!(answer, SendOutcome::Accepted { .. }));
    let status = crate::measure::response_status(&answer);
    let settled = match answer {
        SendOutcome::Accepted { provider_id } => {
            let outcome = if again {
                info!("sent again after an in-doubt attempt: possibly a duplicate");
                Outcome::SentAgain {
                    provider_id,
                    segments: cost,
                }
            } else {
                Outcome::Sent {
                    provider_id,
                    segments: cost,
                }
            };
            (outcome, Signal::Answered)
        }
        SendOutcome::Retry {
            reason,
            after,
            in_doubt,
        } => {
            // Provider errors quote the recipient; the log names the notice (the span) only.
            warn!(reason = %WithoutContacts(&reason), "will retry");
            // A timeout is a request left unanswered (several in a row: a provider down); a
            // 429 or 5xx is an answer.
            let signal = if in_doubt {
                Signal::Silent(reason.clone())
            } else {
                Signal::Answered
            };
            (retry(attempt, config, reason, after, in_doubt), signal)
        }
        SendOutcome::Permanent { reason } => {
            warn!(reason = %WithoutContacts(&reason), "failed permanently");
            (Outcome::Failed { reason }, Signal::Answered)
        }
        SendOutcome::ProviderDown { reason } => {
            // The lane turns this into a wait for its probe and opens its circuit.
            (Outcome::Released, Signal::Down(reason))
        }
    };
    crate::measure::attempt(message.channel, started.elapsed(), status, &settled.0);
    settled
}

/// What the retry policy needs to know of a notice.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    attempts: u32,
    created_at: DateTime<Utc>,
}

fn retry(
    notice: Attempt,
    config: &WorkerConfig,
    reason: String,
    after: Option<Duration>,
    in_doubt: bool,
) -> Outcome {
    retry_or_fail(
        notice,
        &config.retry,
        (config.clock)(),
        config.in_doubt_settle,
        reason,
        after,
        in_doubt,
    )
}

/// The next attempt by the policy, or the give-up; an in-doubt one waits at least `settle`.
fn retry_or_fail(
    notice: Attempt,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
    settle: Duration,
    reason: String,
    after: Option<Duration>,
    in_doubt: bool,
) -> Outcome {
    let jitter: f64 = rand::rng().random();
    match policy.next_attempt(notice.attempts, notice.created_at, now, after, jitter) {
        Some(not_before) => Outcome::Retry {
            not_before: if in_doubt {
                not_before.max(now + to_chrono(settle))
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
