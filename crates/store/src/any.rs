//! [`Store`]: the one store type the engine, the dispatcher and the server hold, on SQLite
//! (the embedded default, one file) or PostgreSQL (several nodes sharing one database),
//! chosen by the database URL.
//!
//! Why an enum rather than a trait object: every operation is `async`, and a `dyn` trait
//! with async methods needs boxing on every call; an enum keeps the calls static and the
//! choice in one place. The two backends have the same methods with the same signatures;
//! `crates/store/tests/contract` runs one suite against both.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{AccountId, Customer, CustomerId};
use outagecast_core::incident::{Incident, IncidentDraft, IncidentId};
use outagecast_core::ivr::ArmedIncident;
use outagecast_core::message::Wording;
use outagecast_core::notice::ArmedNumber;

use crate::pg::PgStore;
use crate::*;

/// The durable store on either backend.
#[derive(Debug, Clone)]
pub enum Store {
    /// The embedded default: one SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL + PostGIS, shared by several engine nodes.
    Postgres(PgStore),
}

impl From<SqliteStore> for Store {
    fn from(store: SqliteStore) -> Self {
        Store::Sqlite(store)
    }
}

impl From<PgStore> for Store {
    fn from(store: PgStore) -> Self {
        Store::Postgres(store)
    }
}

impl Store {
    /// Opens the database named by `url`: `postgres://` or `postgresql://` for PostgreSQL,
    /// anything else (a `sqlite:` URL or a file path) for SQLite. The schema is brought up to
    /// date either way.
    pub async fn open(url: &str) -> Result<Self> {
        if is_postgres_url(url) {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else {
            Ok(Store::Sqlite(SqliteStore::open_url(url).await?))
        }
    }

    /// Opens (creating if needed) the SQLite file at `path`.
    pub async fn open_path(path: &std::path::Path) -> Result<Self> {
        Ok(Store::Sqlite(SqliteStore::open(path).await?))
    }

    /// Which backend this is: `sqlite` or `postgres` (for logs and `config check`).
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

/// Wakes a follower when another process may have changed what it caches: on PostgreSQL a
/// `LISTEN` on the channels the triggers notify; on SQLite nothing (the follower's periodic
/// poll is how it learns, and with one file on one machine that poll is cheap).
///
/// A wake-up is only a hint to look now: followers still poll on a timer as the safety net
/// (a notification sent while the listening connection was being re-established is lost).
#[derive(Debug)]
pub struct ChangeFeed {
    listener: Option<sqlx::postgres::PgListener>,
}

impl ChangeFeed {
    /// Completes when something may have changed. Never completes on SQLite. A broken
    /// connection is logged and retried (sqlx re-connects on the next receive) after a pause,
    /// so a database restart does not turn into a busy loop.
    pub async fn changed(&mut self) {
        let Some(listener) = self.listener.as_mut() else {
            return std::future::pending().await;
        };
        if let Err(e) = listener.recv().await {
            tracing::warn!(error = %e, "change notifications: connection lost; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Store {
    /// Starts listening for changes made by other processes (see [`ChangeFeed`]).
    pub async fn change_feed(&self) -> Result<ChangeFeed> {
        Ok(ChangeFeed {
            listener: match self {
                Store::Sqlite(_) => None,
                Store::Postgres(p) => Some(p.listen().await?),
            },
        })
    }
}

/// True for the URLs [`Store::open`] hands to PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Writes `impl Store` with one method per listed operation, each passing its arguments to
/// the backend's method of the same name.
macro_rules! delegate {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Store {
            $(
                #[doc = concat!("[`SqliteStore::", stringify!($name), "`] or [`PgStore::", stringify!($name), "`], whichever this store is.")]
                #[allow(clippy::too_many_arguments)]
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(p) => p.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    fn audit(&self, actor: &str, action: &str, subject: Option<&str>, details: &serde_json::Value, now: DateTime<Utc>) -> Result<()>;
    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>>;
    fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>>;
    fn upsert_customers(&self, customers: &[Customer], actor: &str, source: &str, now: DateTime<Utc>) -> Result<ImportSummary>;
    fn service_points(&self) -> Result<Vec<(CustomerId, LonLat)>>;
    fn customer_count(&self) -> Result<u64>;
    fn customers(&self, ids: &[CustomerId]) -> Result<Vec<(CustomerId, Customer)>>;
    fn customer_by_account(&self, account: &AccountId) -> Result<Option<(CustomerId, Customer)>>;
    fn opt_outs(&self) -> Result<HashSet<(Channel, String)>>;
    fn opt_out(&self, channel: Channel, address: &str, source: &str, now: DateTime<Utc>) -> Result<()>;
    fn customers_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<(CustomerId, Customer)>>;
    fn customers_generation(&self) -> Result<i64>;
    fn delete_customer(&self, account_id: &AccountId, actor: &str, now: DateTime<Utc>) -> Result<bool>;
    fn declare(&self, d: Declaration<'_>, wording: &dyn Wording) -> Result<DeclareOutcome>;
    fn transition(&self, t: Transition<'_>, wording: &dyn Wording) -> Result<TransitionOutcome>;
    fn incident(&self, id: IncidentId) -> Result<Incident>;
    fn incidents(&self, include_closed: bool) -> Result<Vec<IncidentSummary>>;
    fn summary(&self, incident: Incident) -> Result<IncidentSummary>;
    fn notice_counts(&self, id: IncidentId) -> Result<Vec<NoticeCount>>;
    fn notice_totals(&self) -> Result<Vec<NoticeCount>>;
    fn active_incident_count(&self, now: DateTime<Utc>) -> Result<u64>;
    fn affected_ids(&self, id: IncidentId) -> Result<Vec<CustomerId>>;
    fn affected_accounts(&self, id: IncidentId) -> Result<Vec<AccountId>>;
    fn pending_notices(&self, id: IncidentId) -> Result<Vec<(Channel, String, bool, String)>>;
    fn armed_for(&self, phone: &str, now: DateTime<Utc>) -> Result<Vec<ArmedIncident>>;
    fn ivr_snapshot(&self, now: DateTime<Utc>, closed_since: DateTime<Utc>) -> Result<IvrSnapshot>;
    fn ivr_snapshot_for(&self, phone: &str, now: DateTime<Utc>, closed_since: DateTime<Utc>) -> Result<IvrSnapshot>;
    fn ivr_changes(&self, cursor: i64) -> Result<IvrPoll>;
    fn prune_ivr_changes(&self, before: DateTime<Utc>) -> Result<u64>;
    fn rearm_ivr(&self, id: IncidentId, draft: &IncidentDraft, armed: &[ArmedNumber], wording: &dyn Wording, actor: &str, now: DateTime<Utc>) -> Result<RearmOutcome>;
    fn claim(&self, owner: &str, channels: &[Channel], limit: u32, lease: Duration, now: DateTime<Utc>) -> Result<Vec<ClaimedNotice>>;
    fn complete(&self, owner: &str, outcomes: &[(i64, Outcome)], now: DateTime<Utc>) -> Result<u64>;
    fn round_trip(&self, r: RoundTrip<'_>) -> Result<RoundTripDone>;
    fn requeue(&self, q: Requeue<'_>) -> Result<u64>;
    fn release(&self, owner: &str) -> Result<u64>;
    fn outbox_counts(&self, channels: &[Channel], now: DateTime<Utc>) -> Result<OutboxCounts>;
    fn next_due(&self) -> Result<Option<DateTime<Utc>>>;
    fn notice_report(&self, incident: outagecast_core::incident::IncidentId) -> Result<Vec<ReportRow>>;
    fn declare_with(&self, d: Declaration<'_>, wording: &dyn Wording, p: &Provenance) -> Result<DeclareOutcome>;
    fn transition_with(&self, t: Transition<'_>, wording: &dyn Wording, p: &Provenance) -> Result<TransitionOutcome>;
    fn record_cap_only(&self, id: IncidentId, p: &Provenance, actor: &str, now: DateTime<Utc>) -> Result<()>;
    fn cap_message(&self, sender: &str, identifier: &str) -> Result<Option<CapMessageRow>>;
    fn cap_incidents(&self, refs: &[(String, String)]) -> Result<Vec<IncidentId>>;
    fn origin(&self, id: IncidentId) -> Result<IncidentOrigin>;
    fn record_receipt(&self, provider_id: &str, receipt: &Receipt, now: DateTime<Utc>) -> Result<ReceiptOutcome>;
    fn opt_out_and_withdraw(&self, channel: Channel, address: &str, source: &str, now: DateTime<Utc>) -> Result<u64>;
    fn opt_in(&self, channel: Channel, address: &str, source: &str, now: DateTime<Utc>) -> Result<bool>;
    fn is_opted_out(&self, channel: Channel, address: &str) -> Result<bool>;
    fn contact_language(&self, address: &str) -> Result<Option<Language>>;
    fn create_token(&self, name: &str, role: Role, secret: &TokenSecret, actor: &str, now: DateTime<Utc>) -> Result<TokenInfo>;
    fn authenticate(&self, secret: &TokenSecret, now: DateTime<Utc>) -> Result<Option<TokenInfo>>;
    fn tokens(&self) -> Result<Vec<TokenInfo>>;
    fn revoke_token(&self, name: &str, actor: &str, now: DateTime<Utc>) -> Result<TokenInfo>;
    fn token_count(&self) -> Result<u64>;
    fn upsert_zones(&self, zones: &[ZoneRecord<'_>], actor: &str, source: &str, now: DateTime<Utc>) -> Result<ZoneImportSummary>;
    fn zones(&self) -> Result<Vec<StoredZone>>;
    fn zone(&self, key: &str) -> Result<Option<StoredZone>>;
    fn address_points(&self) -> Result<Vec<(String, LonLat)>>;
}
