//! Everything `outagecast serve` runs, started on listeners the caller bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use outagecast_core::contact::Region;
use outagecast_ivr::twiml::MenuUrl;
use outagecast_ivr::{CallerIndex, IndexSettings};
use outagecast_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{Auth, TwilioGuard};
use crate::listen::{HttpLimits, serve_http};
use crate::{
    AgiSettings, IvrFollower, IvrState, Readiness, Result, health_routes, ivr_routes, serve_agi,
};

/// The sockets to serve on, already bound.
#[derive(Debug)]
pub struct Listeners {
    /// HTTP: the IVR routes and `/healthz`.
    pub http: TcpListener,
    /// FastAGI.
    pub agi: TcpListener,
}

/// How the servers behave.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Region for national caller numbers.
    pub default_region: Option<Region>,
    /// Where Twilio calls go after the announcement.
    pub menu_url: Option<MenuUrl>,
    /// The caller index's settings (the "restored" grace period).
    pub index: IndexSettings,
    /// How often the store's change log is polled. Changes reach callers within this (plus
    /// the time to apply them), whichever process made them.
    pub poll_interval: Duration,
    /// FastAGI limits.
    pub agi: AgiSettings,
    /// HTTP limits: header read and request timeouts, the connection cap.
    pub http: HttpLimits,
    /// Tokens guarding the IVR lookup (always: an `ivr`-role token) and the voice webhook (a
    /// `webhook`-role token instead of a signature); `None` checks them against the store
    /// served.
    pub ivr_guard: Option<Auth>,
    /// Checks Twilio's signature on the voice webhook; the default refuses every call that
    /// has no `webhook` token.
    pub voice_guard: TwilioGuard,
    /// The dispatcher's health for `/healthz` and `/healthz/dispatch`; `None` when no
    /// dispatcher runs on this node.
    pub dispatch_health: Option<Arc<dyn crate::HealthSource>>,
    /// The API's queue of large requests for `/healthz` (filled in by [`crate::Server::new`]).
    pub api_health: Option<Arc<dyn crate::HealthSource>>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            default_region: None,
            menu_url: None,
            index: IndexSettings::default(),
            poll_interval: Duration::from_millis(200),
            agi: AgiSettings::default(),
            http: HttpLimits::default(),
            ivr_guard: None,
            voice_guard: TwilioGuard::default(),
            dispatch_health: None,
            api_health: None,
        }
    }
}

/// How long in-flight requests and sessions get to finish after shutdown is asked for: with
/// the dispatcher's own bounded stop beside it, SIGTERM ends `serve` within 10 s whatever the
/// clients do.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(6);

/// Serves HTTP and FastAGI until `shutdown` completes, then stops accepting, lets requests in
/// flight finish (within a bound) and returns.
///
/// The listeners answer at once: while the caller index loads, `/healthz` says 503 and every
/// lookup answers "nothing to announce". A failure to load the index is returned.
///
/// `routes` (the API, webhooks, metrics: already given their state) are served beside the IVR
/// routes and `/healthz`.
pub async fn run(
    listeners: Listeners,
    store: Store,
    settings: ServeSettings,
    routes: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            // An error means the sender is gone: that is a stop too.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let index = Arc::new(CallerIndex::new(settings.index));
    // The numbering plan's metadata is decoded on first use (about a quarter of a second):
    // decode it now, not in the first call whose number is not written in E.164.
    tokio::task::spawn_blocking(|| {
        let _ = outagecast_ivr::CallerKey::read("tel:+358401234567", None);
    });
    let ready = Readiness::default();
    let state = IvrState::new(
        index.clone(),
        settings.default_region,
        settings.menu_url.clone(),
        ready.clone(),
    )
    .with_voice_guard(settings.voice_guard.clone())
    .with_call_log(crate::call_log::CallLog::start(store.clone()));
    let auth = settings
        .ivr_guard
        .clone()
        .unwrap_or_else(|| Auth::new(store.clone()));
    let notes = crate::HealthNotes {
        insecure_webhooks: settings.voice_guard.is_insecure(),
    };
    let app = ivr_routes(state.clone(), auth)
        .merge(health_routes(
            ready.clone(),
            settings.dispatch_health.clone(),
            settings.api_health.clone(),
            notes,
        ))
        .merge(routes);
    let http = tokio::spawn(serve_http(
        listeners.http,
        app,
        settings.http,
        stopped(),
        DRAIN_TIMEOUT,
    ));
    let agi = tokio::spawn(serve_agi(listeners.agi, state, settings.agi, stopped()));

    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        () = &mut shutdown => Ok(None),
        loaded = IvrFollower::load(store, index, ready) => loaded.map(Some),
    };
    let outcome = match outcome {
        Ok(Some(follower)) => {
            follower.run(settings.poll_interval, &mut shutdown).await;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };

    let _ = stop_tx.send(true);
    // serve_http bounds its own drain; the margin covers the AGI sessions' timeout.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), async {
        let http = http.await;
        let agi = agi.await;
        (http, agi)
    })
    .await;
    match drained {
        Ok((http, agi)) => {
            http?;
            agi??;
        }
        Err(_) => tracing::warn!("shutdown: connections still open after the drain timeout"),
    }
    outcome
}
