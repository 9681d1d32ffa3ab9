//! [`Store`]: the one store type the engine, the dispatcher and the server hold, on SQLite
//! (the embedded default, one file) or PostgreSQL (several nodes sharing one database),
//! chosen by the database URL.
//!
//! Why an enum rather than a trait object: every operation is `async`, and a `dyn` trait
//! with async methods needs boxing on every call; an enum keeps the calls static and the
//! choice in one place. Each operation is one transaction script in `crate::ops`, generic over
//! the backend; a method here only picks the backend it runs on (`run!`).
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

use crate::ops;
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

/// Writes `impl Store` with one method per listed operation, each running the one transaction
/// script `ops::…` on whichever backend this store is.
macro_rules! run {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty = $op:path;)*) => {
        impl Store {
            $(
                $(#[$doc])*
                #[allow(clippy::too_many_arguments)]
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => $op(s $(, $arg)*).await,
                        Store::Postgres(p) => $op(p $(, $arg)*).await,
                    }
                }
            )*
        }
    };
}

run! {
    /// The live incidents armed for `phone` (E.164) at `now`, in any order.
    fn armed_for(&self, phone: &str, now: DateTime<Utc>) -> Result<Vec<ArmedIncident>> = ops::ivr::armed_for;
    /// What changed in the IVR after `cursor`, read in one snapshot.
    fn ivr_changes(&self, cursor: i64) -> Result<IvrPoll> = ops::ivr::ivr_changes;
    /// Forgets IVR change-log entries written before `before`; how many went.
    fn prune_ivr_changes(&self, before: DateTime<Utc>) -> Result<u64> = ops::ivr::prune_ivr_changes;
    /// Brings an active incident's IVR flags in line with the numbers armed now, audited.
    fn rearm_ivr(&self, id: IncidentId, draft: &IncidentDraft, armed: &[ArmedNumber], wording: &dyn Wording, actor: &str, now: DateTime<Utc>) -> Result<RearmOutcome> = ops::ivr::rearm_ivr;
    /// Inserts or replaces customers by account id in one transaction, audited; contacts
    /// replaced, opt-outs kept; an account given several times ends as its last row.
    fn upsert_customers(&self, customers: &[Customer], actor: &str, source: &str, now: DateTime<Utc>) -> Result<ImportSummary> = ops::customers::upsert_customers;
    /// Every service point, for building the spatial index, in id order.
    fn service_points(&self) -> Result<Vec<(CustomerId, LonLat)>> = ops::customers::service_points;
    /// The number of customers.
    fn customer_count(&self) -> Result<u64> = ops::customers::customer_count;
    /// The customers with these ids (missing ones left out), in id order.
    fn customers(&self, ids: &[CustomerId]) -> Result<Vec<(CustomerId, Customer)>> = ops::customers::customers;
    /// The customer with this account id.
    fn customer_by_account(&self, account: &AccountId) -> Result<Option<(CustomerId, Customer)>> = ops::customers::customer_by_account;
    /// The opt-out register: every (channel, address) that must not be contacted.
    fn opt_outs(&self) -> Result<HashSet<(Channel, String)>> = ops::customers::opt_outs;
    /// Opts a contact out of a channel (idempotent), with an audit entry.
    fn opt_out(&self, channel: Channel, address: &str, source: &str, now: DateTime<Utc>) -> Result<()> = ops::customers::opt_out;
    /// Customers by account id (bytewise), a page after `after`, at most `limit`.
    fn customers_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<(CustomerId, Customer)>> = ops::customers::customers_page;
    /// A counter that grows with every change to the customers, by any process.
    fn customers_generation(&self) -> Result<i64> = ops::customers::customers_generation;
    /// Deletes the customer with this account id (withdrawing, disarming, unlinking), audited;
    /// whether there was one.
    fn delete_customer(&self, account_id: &AccountId, actor: &str, now: DateTime<Utc>) -> Result<bool> = ops::customers::delete_customer;
    /// Records an operator action in the audit log on its own.
    fn audit(&self, actor: &str, action: &str, subject: Option<&str>, details: &serde_json::Value, now: DateTime<Utc>) -> Result<()> = ops::audit::audit;
    /// A page of the audit log, newest first, keyset-paged by id (pass the last entry's id as
    /// `after_id` for the next page; a page shorter than `limit` is the last).
    fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>> = ops::audit::audit_page;
    /// Stores a new token under a unique name (its hash only), with an audit entry; a name
    /// already taken, even by a revoked token, is [`StoreError::Conflict`].
    fn create_token(&self, name: &str, role: Role, secret: &TokenSecret, actor: &str, now: DateTime<Utc>) -> Result<TokenInfo> = ops::tokens::create_token;
    /// The token presented, if it exists and is not revoked (noting its use once a minute).
    fn authenticate(&self, secret: &TokenSecret, now: DateTime<Utc>) -> Result<Option<TokenInfo>> = ops::tokens::authenticate;
    /// Every token, revoked ones too, in creation order.
    fn tokens(&self) -> Result<Vec<TokenInfo>> = ops::tokens::tokens;
    /// Revokes the token called `name`, with an audit entry (a revoked one is returned as it is).
    fn revoke_token(&self, name: &str, actor: &str, now: DateTime<Utc>) -> Result<TokenInfo> = ops::tokens::revoke_token;
    /// How many tokens are not revoked.
    fn token_count(&self) -> Result<u64> = ops::tokens::token_count;
    /// Replaces the network model and the service links in one transaction, audited. The
    /// model must have passed `Network::new` (ids unique, references known).
    fn replace_network(&self, network: &outagecast_network::NetworkInput, services: &[ServiceLink], actor: &str, source: &str, now: DateTime<Utc>) -> Result<NetworkImportSummary> = ops::network::replace_network;
    /// The imported network model and service links, `None` before the first import.
    fn network(&self) -> Result<Option<StoredNetwork>> = ops::network::network;
    /// The customers with these account ids (unknown ones left out), in id order.
    fn customers_by_accounts(&self, accounts: &[&str]) -> Result<Vec<(CustomerId, Customer)>> = ops::network::customers_by_accounts;
    /// Imports zones in one transaction (a name that exists in any case is replaced), audited.
    fn upsert_zones(&self, zones: &[ZoneRecord<'_>], actor: &str, source: &str, now: DateTime<Utc>) -> Result<ZoneImportSummary> = ops::zones::upsert_zones;
    /// Every zone, by name.
    fn zones(&self) -> Result<Vec<StoredZone>> = ops::zones::zones;
    /// The zone whose lower-cased name is `key`.
    fn zone(&self, key: &str) -> Result<Option<StoredZone>> = ops::zones::zone_by_key;
    /// Every distinct (address, service point) of the customers, for the embedded geocoder.
    fn address_points(&self) -> Result<Vec<(String, LonLat)>> = ops::zones::address_points;
    /// Records a CAP message that changes nothing customers hear, audited; no event, no notices.
    fn record_cap_only(&self, id: IncidentId, p: &Provenance, actor: &str, now: DateTime<Utc>) -> Result<()> = ops::provenance::record_cap_only;
    /// The CAP message `(sender, identifier)` if it was applied already.
    fn cap_message(&self, sender: &str, identifier: &str) -> Result<Option<CapMessageRow>> = ops::provenance::cap_message;
    /// The incidents the referenced CAP messages acted on, without repeats, in id order.
    fn cap_incidents(&self, refs: &[(String, String)]) -> Result<Vec<IncidentId>> = ops::provenance::cap_incidents;
    /// Records a delivery receipt by the provider's message id (a failed one falls back to
    /// email; one for an id not recorded yet waits for it).
    fn record_receipt(&self, provider_id: &str, receipt: &Receipt, now: DateTime<Utc>) -> Result<ReceiptOutcome> = ops::receipts::record_receipt;
    /// Records a voice call's final status by its call sid: delivered, called again after
    /// the delay (busy, no answer, while attempts remain) or failed with the reason.
    fn record_call_status(&self, provider_id: &str, result: &CallResult, retry: CallRetry, now: DateTime<Utc>) -> Result<CallOutcome> = ops::calls::record_call_status;
    /// Voice calls placed since `since` and not yet settled by a status callback.
    fn calls_in_progress(&self, since: DateTime<Utc>) -> Result<u64> = ops::calls::calls_in_progress;
    /// Voice calls placed before `sent_before` and never settled by a final status, oldest
    /// first: their sids.
    fn unsettled_calls(&self, sent_before: DateTime<Utc>, limit: u32) -> Result<Vec<String>> = ops::calls::unsettled_calls;
    /// The text and language of the voice notice whose call has this sid.
    fn call_text(&self, provider_id: &str) -> Result<Option<(String, Language)>> = ops::calls::call_text;
    /// Calls placed, by final outcome (for metrics).
    fn call_totals(&self) -> Result<Vec<(String, u64)>> = ops::calls::call_totals;
    /// Opts a contact out of a channel and withdraws its notices still waiting; how many.
    fn opt_out_and_withdraw(&self, channel: Channel, address: &str, source: &str, now: DateTime<Utc>) -> Result<u64> = ops::receipts::opt_out_and_withdraw;
    /// Opts a contact back in; whether it had been opted out.
    fn opt_in(&self, channel: Channel, address: &str, source: &str, now: DateTime<Utc>) -> Result<bool> = ops::receipts::opt_in;
    /// Whether a contact has opted out of a channel.
    fn is_opted_out(&self, channel: Channel, address: &str) -> Result<bool> = ops::receipts::is_opted_out;
    /// The preferred language of a customer with this phone number or email address.
    fn contact_language(&self, address: &str) -> Result<Option<Language>> = ops::receipts::contact_language;
    /// Leases up to `limit` due notices on `channels` to `owner` for `lease`, priority first
    /// then oldest; safe to run on any number of nodes at once.
    fn claim(&self, owner: &str, channels: &[Channel], limit: u32, lease: Duration, now: DateTime<Utc>) -> Result<Vec<ClaimedNotice>> = ops::outbox::claim;
    /// Records the outcomes of `owner`'s claimed notices in one transaction (those whose lease
    /// it lost are ignored); how many were recorded. A failed SMS falls back to email.
    fn complete(&self, owner: &str, outcomes: &[(i64, Outcome)], now: DateTime<Utc>) -> Result<u64> = ops::outbox::complete;
    /// The dispatcher's round trip: record, renew, hand over and claim in one transaction.
    fn round_trip(&self, r: RoundTrip<'_>) -> Result<RoundTripDone> = ops::outbox::round_trip;
    /// Puts an incident's failed notices back in the queue; how many; audited.
    fn requeue(&self, q: Requeue<'_>) -> Result<u64> = ops::outbox::requeue;
    /// Gives `owner`'s leases back (on shutdown), keeping their in-doubt marks.
    fn release(&self, owner: &str) -> Result<u64> = ops::outbox::release;
    /// Outbox totals on `channels` at `now`.
    fn outbox_counts(&self, channels: &[Channel], now: DateTime<Utc>) -> Result<OutboxCounts> = ops::outbox::outbox_counts;
    /// Marks the waiting notices of `channel` held with `reason`; how many were newly marked.
    fn hold_channel(&self, channel: Channel, reason: &str, now: DateTime<Utc>) -> Result<u64> = ops::outbox::hold_channel;
    /// Clears the held mark of `channel`'s waiting notices (the cause is gone); how many.
    fn resume_channel(&self, channel: Channel, now: DateTime<Utc>) -> Result<u64> = ops::outbox::resume_channel;
    /// Held notices by channel and reason.
    fn held_notices(&self) -> Result<Vec<HeldNotices>> = ops::outbox::held_notices;
    /// The earliest time a waiting notice becomes due, if any.
    fn next_due(&self) -> Result<Option<DateTime<Utc>>> = ops::outbox::next_due;
    /// Every notice of an incident with its outcome, in id order (accounts in customer id order).
    fn notice_report(&self, incident: IncidentId) -> Result<Vec<ReportRow>> = ops::outbox::notice_report;
    /// Appends callers the IVR was asked about to the call log; how many.
    fn record_calls(&self, calls: &[CallRecord<'_>]) -> Result<u64> = ops::call_log::record_calls;
    /// Forgets the calls older than `CALL_LOG_DAYS`; how many.
    fn prune_calls(&self, now: DateTime<Utc>) -> Result<u64> = ops::call_log::prune_calls;
    /// The calls of an incident's area: who reached the IVR, who had been told before.
    fn calls_avoided(&self, incident: IncidentId) -> Result<CallsAvoided> = ops::call_log::calls_avoided;
    /// Records an outage report from a customer's number (with its accounts and their
    /// locations), or counts a repeat within the dedupe window; prunes old reports.
    fn record_report(&self, report: NewReport<'_>) -> Result<ReportOutcome> = ops::outage_reports::record_report;
    /// Outage reports, the latest activity first.
    fn outage_reports(&self, query: ReportQuery) -> Result<Vec<OutageReport>> = ops::outage_reports::outage_reports;
    /// Where an incident came from.
    fn origin(&self, id: IncidentId) -> Result<IncidentOrigin> = ops::provenance::origin;
    /// Writes a declared incident, its event, the affected set, every planned notice, the IVR
    /// flags and its provenance in one transaction.
    fn declare(&self, d: Declaration<'_>, wording: &dyn Wording) -> Result<DeclareOutcome> = ops::incidents::declare;
    /// Applies an update (with area growth), restore or cancel in one transaction, following
    /// up only with the contacts already told.
    fn transition(&self, t: Transition<'_>, wording: &dyn Wording) -> Result<TransitionOutcome> = ops::incidents::transition;
    /// One incident.
    fn incident(&self, id: IncidentId) -> Result<Incident> = ops::incidents::incident;
    /// Incidents with their counts, newest first; only active ones unless `include_closed`.
    fn incidents(&self, include_closed: bool) -> Result<Vec<IncidentSummary>> = ops::incidents::incidents;
    /// An incident with its counts.
    fn summary(&self, incident: Incident) -> Result<IncidentSummary> = ops::incidents::summary;
    /// Outbox counts of an incident by channel and status.
    fn notice_counts(&self, id: IncidentId) -> Result<Vec<NoticeCount>> = ops::incidents::notice_counts;
    /// Every notice of every incident, by channel and status (for metrics).
    fn notice_totals(&self) -> Result<Vec<NoticeCount>> = ops::incidents::notice_totals;
    /// Incidents declared or updated and not expired at `now`.
    fn active_incident_count(&self, now: DateTime<Utc>) -> Result<u64> = ops::incidents::active_incident_count;
    /// Ids of the customers the incident affects (selected at declaration or added since).
    fn affected_ids(&self, id: IncidentId) -> Result<Vec<CustomerId>> = ops::incidents::affected_ids;
    /// Account ids of the customers the incident affects, sorted bytewise.
    fn affected_accounts(&self, id: IncidentId) -> Result<Vec<AccountId>> = ops::incidents::affected_accounts;
    /// Pending notices of an incident in claim order: `(channel, address, priority, body)`.
    fn pending_notices(&self, id: IncidentId) -> Result<Vec<(Channel, String, bool, String)>> = ops::incidents::pending_notices;
}

impl Store {
    /// Everything the IVR may announce at `now`, with the change-log cursor it reflects;
    /// restored incidents that closed at or after `closed_since` are included.
    pub async fn ivr_snapshot(
        &self,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        match self {
            Store::Sqlite(s) => ops::ivr::ivr_snapshot(s, None, now, closed_since).await,
            Store::Postgres(p) => ops::ivr::ivr_snapshot(p, None, now, closed_since).await,
        }
    }

    /// [`Store::ivr_snapshot`] for one number (E.164) only: what a one-off lookup needs.
    pub async fn ivr_snapshot_for(
        &self,
        phone: &str,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        match self {
            Store::Sqlite(s) => ops::ivr::ivr_snapshot(s, Some(phone), now, closed_since).await,
            Store::Postgres(p) => ops::ivr::ivr_snapshot(p, Some(phone), now, closed_since).await,
        }
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_page(AuditQuery {
            limit,
            ..AuditQuery::default()
        })
        .await
    }
}
