//! Keeping the caller index current from the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use outagecast_ivr::{CallerIndex, CallerKey, Changes, FlagInput, IncidentInfo};
use outagecast_store::{ChangeFeed, IvrFlagRow, IvrIncidentRow, IvrPoll, Store};

use crate::{Readiness, Result};

/// How long change-log entries are kept for followers that fall behind.
const LOG_RETENTION: TimeDelta = TimeDelta::hours(1);
/// How often old change-log entries are pruned, and finished incidents forgotten.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Loads the caller index from the store and keeps it current by polling the store's IVR
/// change log (filled by triggers, so changes made by other processes count too).
#[derive(Debug)]
pub struct IvrFollower {
    store: Store,
    index: Arc<CallerIndex>,
    ready: Readiness,
    cursor: i64,
}

/// Completes when the feed says something changed; never without a feed.
async fn changed(feed: &mut Option<ChangeFeed>) {
    match feed {
        Some(feed) => feed.changed().await,
        None => std::future::pending().await,
    }
}

fn incident_info(r: &IvrIncidentRow) -> IncidentInfo {
    IncidentInfo {
        id: r.id,
        kind: r.kind,
        severity: r.severity,
        status: r.status,
        etr: r.etr,
        declared_at: r.declared_at,
        closed_at: (!r.status.is_active()).then_some(r.updated_at),
        expires_at: r.expires_at,
    }
}

fn flag_input(r: IvrFlagRow) -> Option<FlagInput> {
    Some(FlagInput {
        key: CallerKey::parse(&r.phone)?,
        incident: r.incident_id,
        language: r.language,
        announcement: r.announcement,
        disarmed_at: r.disarmed_at,
    })
}

impl IvrFollower {
    /// Reads everything the IVR may announce into `index` and marks it ready.
    pub async fn load(store: Store, index: Arc<CallerIndex>, ready: Readiness) -> Result<Self> {
        let mut follower = IvrFollower {
            store,
            index,
            ready,
            cursor: 0,
        };
        follower.reload().await?;
        Ok(follower)
    }

    async fn reload(&mut self) -> Result<()> {
        let now = Utc::now();
        let closed_since = now - self.index.settings().restored_grace.unwrap_or_default();
        let snapshot = self.store.ivr_snapshot(now, closed_since).await?;
        let incidents = snapshot.incidents.iter().map(incident_info).collect();
        let index = self.index.clone();
        let flags = snapshot.flags;
        // Millions of numbers take a while to insert: off the async workers.
        tokio::task::spawn_blocking(move || {
            index.replace_all(incidents, flags.into_iter().filter_map(flag_input), now);
        })
        .await?;
        self.cursor = snapshot.cursor;
        self.ready.synced(now);
        tracing::info!(
            numbers = self.index.len(),
            incidents = self.index.incident_count(),
            "IVR caller index loaded"
        );
        Ok(())
    }

    /// Applies whatever changed since the last poll. Returns whether anything did.
    pub async fn poll(&mut self) -> Result<bool> {
        let now = Utc::now();
        let changed = match self.store.ivr_changes(self.cursor).await? {
            IvrPoll::Unchanged => false,
            IvrPoll::Lost => {
                tracing::warn!("IVR change log was pruned past this server's position; reloading");
                self.reload().await?;
                true
            }
            IvrPoll::Changed(c) => {
                let changes = Changes {
                    touched: c.touched,
                    incidents: c.incidents.iter().map(incident_info).collect(),
                    reloaded: c.reloaded,
                    phones: c
                        .phones
                        .into_iter()
                        .filter_map(|(id, phone)| Some((id, CallerKey::parse(&phone)?)))
                        .collect(),
                    flags: c.flags.into_iter().filter_map(flag_input).collect(),
                };
                let index = self.index.clone();
                tokio::task::spawn_blocking(move || index.apply(changes, now)).await?;
                self.cursor = c.cursor;
                true
            }
        };
        self.ready.synced(now);
        Ok(changed)
    }

    /// Polls every `interval` until `shutdown` completes. A failed poll (the database busy or
    /// gone for a moment) is logged and retried at the next tick; `/healthz` turns 503 if it
    /// goes on.
    ///
    /// On PostgreSQL it also polls as soon as another node's change is notified (LISTEN), so
    /// the timer is only the safety net; a node that cannot listen keeps to the timer.
    pub async fn run(mut self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut feed = match self.store.change_feed().await {
            Ok(feed) => Some(feed),
            Err(e) => {
                tracing::warn!(error = %e, "IVR: cannot listen for change notifications; polling only");
                None
            }
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = changed(&mut feed) => self.poll_or_log().await,
                _ = ticks.tick() => self.poll_or_log().await,
                _ = housekeeping.tick() => self.housekeeping().await,
            }
        }
    }

    /// A failed poll (the database busy or gone for a moment) is logged; the next one retries.
    async fn poll_or_log(&mut self) {
        if let Err(e) = self.poll().await {
            tracing::warn!(error = %e, "IVR: polling the store failed; retrying");
        }
    }

    async fn housekeeping(&self) {
        let now = Utc::now();
        let index = self.index.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || index.sweep(now)).await {
            tracing::warn!(error = %e, "IVR: sweeping the index failed");
        }
        match self.store.prune_ivr_changes(now - LOG_RETENTION).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(entries = n, "IVR: pruned the change log"),
            Err(e) => tracing::warn!(error = %e, "IVR: pruning the change log failed"),
        }
    }
}

/// What the IVR front ends would tell `raw` at `now`, read through the engine (no running
/// server needed): the same index code on a snapshot of this one number, so the command line
/// and the front ends cannot disagree (the "restored" grace included).
pub async fn lookup_once(
    engine: &outagecast_engine::Engine,
    raw: &str,
    settings: outagecast_ivr::IndexSettings,
    now: DateTime<Utc>,
) -> Result<outagecast_core::ivr::IvrAnswer> {
    let default_region = engine.settings().default_region;
    let Some(caller) = outagecast_core::ivr::normalise_caller(raw, default_region) else {
        return Ok(outagecast_core::ivr::answer(None, vec![]));
    };
    let closed_since = now - settings.restored_grace.unwrap_or_default();
    let snapshot = engine.ivr_snapshot_for(&caller, now, closed_since).await?;
    let index = CallerIndex::new(settings);
    index.replace_all(
        snapshot.incidents.iter().map(incident_info).collect(),
        snapshot.flags.into_iter().filter_map(flag_input),
        now,
    );
    Ok(index
        .lookup_caller(&caller, default_region, now)
        .into_answer(Some(caller)))
}
