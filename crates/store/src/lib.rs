//! The durable store: the source of truth for customers, incidents, the notice outbox, IVR
//! flags, opt-outs and the audit log.
//!
//! [`SqliteStore`] is the embedded default: one file, WAL journal, a busy timeout so that
//! several processes (a CLI next to a server) wait for each other instead of failing. Every
//! operation that writes more than one row runs in one transaction started with
//! `BEGIN IMMEDIATE`, so a failure leaves nothing half-written and two writers never deadlock
//! upgrading a read lock.

mod any;
mod audit;
mod customers;
mod incidents;
mod ivr;
mod outbox;
pub mod pg;
mod receipts;
// Ingest (issue 3): named zones, customers' addresses for the geocoder, CAP provenance.
mod provenance;
mod zones;
// API (tokens for the REST API's callers).
mod tokens;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use outagecast_core::CoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use any::{ChangeFeed, Store, is_postgres_url};
pub(crate) use audit::audit;
pub use audit::{AuditEntry, AuditQuery, MAX_AUDIT_PAGE};
pub use customers::{ImportSummary, MAX_CUSTOMER_PAGE};
pub use incidents::{
    Declaration, DeclareOutcome, Growth, IncidentSummary, NoticeCount, Transition,
    TransitionOutcome,
};
pub use ivr::{IvrChanges, IvrFlagRow, IvrIncidentRow, IvrPoll, IvrSnapshot, RearmOutcome};
pub use outbox::{
    ClaimRequest, ClaimedNotice, HandedNotice, OutboxCounts, Outcome, ReportRow, Requeue,
    RoundTrip, RoundTripDone,
};
pub use provenance::{CapMessageRow, CapRecord, IncidentOrigin, Provenance};
pub use receipts::{Receipt, ReceiptOutcome};
pub use tokens::TokenInfo;
pub use zones::{StoredZone, ZoneImportSummary, ZoneRecord};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A domain rule refused the operation (e.g. restoring a cancelled incident).
    #[error(transparent)]
    Rule(#[from] CoreError),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation would duplicate something that must be unique (e.g. a token name);
    /// nothing was written. `field` is the input as the user knows it, `problem` says the fix.
    #[error("{field}: {problem}")]
    Conflict {
        /// The field as the user knows it (`name`, `--name`).
        field: &'static str,
        /// What clashes and how to fix it.
        problem: String,
    },
    /// An argument was refused before anything was written (e.g. a schema name).
    #[error("{field}: {problem}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A stored value could not be read back; the database was edited by hand or is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a writer waits for another process's write to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_with(options).await
    }

    /// Opens a `sqlite:` URL or a plain path.
    pub async fn open_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Self::open_with(SqliteConnectOptions::from_str(url)?).await
        } else {
            Self::open(Path::new(url)).await
        }
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last transactions before a power
            // loss; a crash of the process loses nothing.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction that holds the write lock from its first statement.
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Times are stored as fixed-width UTC text (`2026-11-25T13:00:00.000000Z`) so that text
/// comparison in SQL is time comparison.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

pub(crate) fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

/// Reads a stored enum spelling back, reporting damage rather than panicking.
pub(crate) fn stored<T>(
    value: &str,
    parse: impl Fn(&str) -> outagecast_core::Result<T>,
) -> Result<T> {
    parse(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    //! Fixtures shared by the store's tests: a few customers at Kaivokatu, a water incident.

    use super::*;
    use outagecast_core::area::{Area, Circle, LonLat};
    use outagecast_core::contact::Language;
    use outagecast_core::customer::{Customer, CustomerId, CustomerRecord, RecordRules};
    use outagecast_core::incident::{Cause, DraftParts, IncidentDraft, IncidentKind, Severity};
    use outagecast_core::message::Locale;
    use outagecast_core::notice::RecipientPlan;

    /// A store on a fresh file in a temporary directory (kept alive by the returned guard).
    pub async fn fresh() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("test.db"))
            .await
            .expect("open store");
        (store, dir)
    }

    /// An English-speaking customer at Kaivokatu 1; `phone` and `email` may list several
    /// values separated by `;`.
    pub fn customer(account: &str, phone: &str, email: &str) -> Customer {
        CustomerRecord {
            account_id: account.into(),
            lon: "24.9414".into(),
            lat: "60.1710".into(),
            address: "Kaivokatu 1, Helsinki".into(),
            phone: phone.into(),
            email: email.into(),
            language: "en".into(),
            priority: "false".into(),
        }
        .parse(RecordRules {
            default_region: None,
            default_language: Language::Fi,
        })
        .unwrap()
    }

    /// A burst water main around Kaivokatu, fixed in three hours.
    pub fn water_draft(now: DateTime<Utc>) -> IncidentDraft {
        IncidentDraft::new(
            DraftParts {
                kind: IncidentKind::Water,
                severity: Severity::Moderate,
                cause: Cause::parse("burst water main").unwrap(),
                etr: Some(now + chrono::Duration::hours(3)),
                reference: None,
                area: Area::Circle(
                    Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 500.0).unwrap(),
                ),
                expires_at: None,
            },
            now,
        )
        .unwrap()
    }

    /// Helsinki wording at `now`.
    pub fn locale(now: DateTime<Utc>) -> Locale {
        Locale {
            zone: chrono_tz::Europe::Helsinki,
            now,
        }
    }

    /// A fresh store holding `customers`, read back with their ids.
    pub async fn seeded(
        customers: &[Customer],
    ) -> (SqliteStore, tempfile::TempDir, Vec<(CustomerId, Customer)>) {
        let (store, dir) = fresh().await;
        store
            .upsert_customers(customers, "test", "t.csv", Utc::now())
            .await
            .unwrap();
        let ids: Vec<CustomerId> = store
            .service_points()
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let loaded = store.customers(&ids).await.unwrap();
        (store, dir, loaded)
    }

    /// Declares [`water_draft`] affecting every customer in `loaded`, told through `plan`.
    pub async fn declare_with(
        store: &SqliteStore,
        loaded: &[(CustomerId, Customer)],
        plan: &RecipientPlan,
        now: DateTime<Utc>,
    ) -> Result<DeclareOutcome> {
        let ids: Vec<CustomerId> = loaded.iter().map(|(i, _)| *i).collect();
        let draft = water_draft(now);
        store
            .declare(
                Declaration {
                    draft: &draft,
                    affected: &ids,
                    plan,
                    actor: "test",
                    now,
                },
                &locale(now),
            )
            .await
    }
}
