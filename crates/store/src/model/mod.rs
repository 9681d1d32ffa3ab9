//! The backend-neutral part of the store: the rows, commands and outcomes callers see, the
//! domain rules the transaction scripts apply, and the decoders from [`Record`] columns.
//! No SQL here.

pub(crate) mod audit;
pub(crate) mod call_log;
pub(crate) mod customers;
pub(crate) mod incidents;
pub(crate) mod ivr;
pub(crate) mod network;
pub(crate) mod outage_reports;
pub(crate) mod outbox;
pub(crate) mod provenance;
pub(crate) mod receipts;
pub(crate) mod tokens;
pub(crate) mod zones;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::{Result, StoreError};

/// A time as fixed-width UTC text (`2026-11-25T13:00:00.000000Z`): how SQLite stores every
/// time (so that text comparison is time comparison) and how both stores keep CAP's `sent`.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads [`ts`] text back.
pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

/// Reads a stored enum spelling back, reporting damage rather than panicking.
pub(crate) fn stored<T>(
    value: &str,
    parse: impl Fn(&str) -> outagecast_core::Result<T>,
) -> Result<T> {
    parse(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A count read back as `u64` (a negative one cannot be stored; it reads as 0).
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}
