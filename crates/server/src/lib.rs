//! The network front ends: the HTTP server (axum) and the Asterisk FastAGI listener, around the
//! pure parts in `outagecast-ivr` and the store.
//!
//! Servers take listeners that are already bound and a shutdown future (the mini-redis
//! pattern): the caller decides the addresses (tests bind port 0) and when to stop.
//!
//! - [`ivr_routes`]: `GET /v1/ivr/lookup`, `POST /v1/ivr/twilio/voice`; [`health_routes`]:
//!   `GET /healthz` and `/healthz/dispatch` ([`HealthSource`]). Plain axum `Router`s, to be merged into the full API.
//! - [`serve_agi`]: FastAGI sessions over TCP.
//! - [`IvrFollower`]: loads the caller index from the store and keeps it current by polling
//!   the store's change log, whichever process made the change.
//! - [`auth`]: who may call, in one place: bearer tokens and Twilio's signature.
//! - [`webhooks`]: what providers and customers send back (receipts, STOP/START/HELP,
//!   unsubscribe).
//! - [`Server`]: every route built from a typed [`ServerConfig`], as `outagecast serve` runs
//!   it; [`run`]: the IVR front ends and `/healthz` beside given routes, on bound listeners.

mod agi;
pub mod api;
mod app;
pub mod auth;
pub mod call_log;
mod docs;
mod follow;
mod http;
mod listen;
pub mod metrics;
mod public;
mod run;
mod status;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use outagecast_core::contact::Region;
use outagecast_ivr::twiml::MenuUrl;
use outagecast_ivr::{Announcements, CallerIndex};

pub use agi::{AgiAllow, AgiSettings, serve_agi};
pub use api::{ApiSettings, ApiState};
pub use app::{Server, ServerConfig};
pub use auth::{Auth, TwilioGuard, TwilioSigner, Unsigned};
pub use follow::{IvrFollower, lookup_once};
pub use http::{Component, ComponentState, HealthNotes, HealthSource, health_routes, ivr_routes};
pub use listen::{HttpLimits, serve_http};
pub use run::{Listeners, ServeSettings, run};

/// Everything that can stop a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket could not be used.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] outagecast_store::StoreError),
    /// An engine use case failed.
    #[error(transparent)]
    Engine(#[from] outagecast_engine::EngineError),
    /// A background task failed.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A setting is missing or malformed.
    #[error("{field}: {problem}")]
    Config {
        /// The setting (environment variable or flag).
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A setting shared with the dispatcher is malformed (the unsubscribe secret).
    #[error(transparent)]
    Dispatch(#[from] outagecast_dispatch::DispatchError),
}

/// Result alias for the server.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Whether the in-memory indexes are loaded and being kept current: what `/healthz` reports.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

#[derive(Debug, Default)]
struct ReadinessInner {
    loaded: AtomicBool,
    /// Unix milliseconds of the last successful poll of the store.
    last_sync_ms: AtomicI64,
}

/// How long the store may fail to answer polls before `/healthz` reports the index stale.
const STALE_AFTER_MS: i64 = 10_000;

impl Readiness {
    /// Records a successful load or poll at `now`.
    pub fn synced(&self, now: DateTime<Utc>) {
        self.inner
            .last_sync_ms
            .store(now.timestamp_millis(), Ordering::Relaxed);
        self.inner.loaded.store(true, Ordering::Release);
    }

    /// Loaded, and synced with the store recently.
    pub fn is_ready(&self, now: DateTime<Utc>) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
            && now.timestamp_millis() - self.inner.last_sync_ms.load(Ordering::Relaxed)
                < STALE_AFTER_MS
    }

    /// Loaded at least once.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }
}

/// What the IVR front ends share.
#[derive(Debug, Clone)]
pub struct IvrState {
    index: Arc<CallerIndex>,
    default_region: Option<Region>,
    menu_url: Option<Arc<MenuUrl>>,
    ready: Readiness,
    twilio: TwilioGuard,
    meters: LookupMeters,
    /// Where each lookup's caller goes for the calls-avoided report (none in unit tests).
    calls: Option<call_log::CallLog>,
}

/// The lookup counter and latency histogram, registered once: looking them up in the
/// recorder's registry by name on every call cost more than the lookup itself.
#[derive(Clone)]
struct LookupMeters {
    lookups: ::metrics::Counter,
    seconds: ::metrics::Histogram,
}

impl LookupMeters {
    /// Registers with the recorder installed now (the server installs it before building its
    /// state; without one the meters count nothing).
    fn register() -> Self {
        LookupMeters {
            lookups: ::metrics::counter!("outagecast_ivr_lookups_total"),
            seconds: ::metrics::histogram!("outagecast_ivr_lookup_seconds"),
        }
    }
}

impl std::fmt::Debug for LookupMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupMeters")
    }
}

impl IvrState {
    /// The front ends' view of `index`. `default_region` reads national caller numbers;
    /// `menu_url` is where Twilio calls go after the announcement.
    pub fn new(
        index: Arc<CallerIndex>,
        default_region: Option<Region>,
        menu_url: Option<MenuUrl>,
        ready: Readiness,
    ) -> Self {
        IvrState {
            index,
            default_region,
            menu_url: menu_url.map(Arc::new),
            ready,
            // Refuses until given a signer or told otherwise: closed by default.
            twilio: TwilioGuard::default(),
            meters: LookupMeters::register(),
            calls: None,
        }
    }

    /// The same state, leaving each lookup's caller in `log`.
    #[must_use]
    pub fn with_call_log(mut self, log: call_log::CallLog) -> Self {
        self.calls = Some(log);
        self
    }

    /// The same state, checking the voice webhook with `guard` (the SMS webhooks' check).
    #[must_use]
    pub fn with_voice_guard(mut self, guard: TwilioGuard) -> Self {
        self.twilio = guard;
        self
    }

    /// Calls `f` with what to tell a caller whose number arrived as `raw` (borrowed from the
    /// index: format the answer inside `f`). Before the index is loaded the answer is "nothing
    /// to announce": a phone system must always get an answer.
    pub fn with_caller<R>(&self, raw: &str, f: impl FnOnce(&Announcements<'_>) -> R) -> R {
        let started = std::time::Instant::now();
        let now = Utc::now();
        let out = if self.ready.is_loaded() {
            self.index
                .with_caller_key(raw, self.default_region, now, |key, found| {
                    if let (Some(log), Some(key)) = (&self.calls, key) {
                        log.record(key, now, found.armed());
                    }
                    f(found)
                })
        } else {
            f(&Announcements::nothing())
        };
        self.meters.lookups.increment(1);
        self.meters.seconds.record(started.elapsed().as_secs_f64());
        out
    }

    /// The readiness shared with `/healthz`.
    pub fn readiness(&self) -> &Readiness {
        &self.ready
    }
}
