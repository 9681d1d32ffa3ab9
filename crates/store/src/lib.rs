//! The durable store: the source of truth for customers, incidents, the notice outbox, IVR
//! flags, opt-outs and the audit log, on SQLite (the embedded default) or PostgreSQL + PostGIS
//! (several nodes sharing one database).
//!
//! The layout is the design:
//! * [`model`](crate::model): the backend-neutral rows, commands, outcomes and rules; no SQL;
//! * `ops`: the transaction scripts (what a declaration, a claim, an import writes and in
//!   which order), written once over the statement-level [`backend`] trait;
//! * `sqlite` and [`pg`]: the two small halves of that trait, which never import each other,
//!   plus the statements each says its own way;
//! * [`Store`]: the one handle everything above the store holds, dispatching each operation to
//!   the one script on whichever backend it is; [`ports`] are the narrow views of it that the
//!   dispatcher, the webhooks and the IVR follower take.

// `fixtures` names this crate as the contract suite does (it is shared with it).
#[cfg(test)]
extern crate self as outagecast_store;

mod backend;
#[cfg(test)]
#[allow(clippy::unwrap_used, dead_code)]
mod fixtures;
mod model;
mod ops;
pub mod pg;
pub mod ports;
mod sqlite;
mod store;

pub use model::audit::{AuditEntry, AuditQuery, MAX_AUDIT_PAGE};
pub use model::call_log::{CallRecord, CallsAvoided};
pub use model::customers::{ImportSummary, MAX_CUSTOMER_PAGE};
pub use model::incidents::{
    Declaration, DeclareOutcome, Growth, IncidentSummary, NoticeCount, Transition,
    TransitionOutcome,
};
pub use model::ivr::{IvrChanges, IvrFlagRow, IvrIncidentRow, IvrPoll, IvrSnapshot, RearmOutcome};
pub use model::network::{NetworkImportSummary, ServiceLink, StoredNetwork};
pub use model::outage_reports::{
    MAX_REPORT_PAGE, MAX_REPORT_TEXT_CHARS, NewReport, OutageReport, REPORT_DAYS,
    REPORT_DEDUPE_WINDOW, ReportOutcome, ReportQuery, ReportedAccount,
};
pub use model::outbox::{
    ClaimRequest, ClaimedNotice, HandedNotice, HeldNotices, OutboxCounts, Outcome, ReportRow,
    Requeue, RoundTrip, RoundTripDone,
};
pub use model::provenance::{CapMessageRow, CapRecord, IncidentOrigin, Provenance};
pub use model::receipts::{CallOutcome, CallResult, CallRetry, Receipt, ReceiptOutcome};
pub use model::tokens::TokenInfo;
pub use model::zones::{StoredZone, ZoneImportSummary, ZoneRecord};
pub use ops::call_log::CALL_LOG_DAYS;
pub use sqlite::SqliteStore;
pub use store::{ChangeFeed, Store, is_postgres_url};

use outagecast_core::CoreError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written. (Not marked as the error's source:
    /// its text is already in the message, and sqlx's errors repeat their own source's text,
    /// so a printed chain would say the same thing up to four times.)
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
