//! The outbox as callers see it: a claimed notice, the outcome a worker records, the counts
//! and the per-recipient report.

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, Language};
use outagecast_core::incident::{EventKind, Severity};
use outagecast_core::notice::NoticeStatus;
use serde::Serialize;

/// A notice handed to one worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedNotice {
    /// Notice id.
    pub id: i64,
    /// Incident id.
    pub incident_id: i64,
    /// The event this notice is for.
    pub event: EventKind,
    /// The incident's severity (severe and extreme bypass quiet hours).
    pub severity: Severity,
    /// SMS or email.
    pub channel: Channel,
    /// E.164 number or email address.
    pub address: String,
    /// Language of the text.
    pub language: Language,
    /// A priority customer's contact.
    pub priority: bool,
    /// Email subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Attempts including this one.
    pub attempts: u32,
    /// An earlier attempt's outcome was never recorded: it may have reached the provider.
    pub in_doubt: bool,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
    /// The service point of the (first) account behind it, for its local time; `None` when
    /// no account is linked (an email fallback, a deleted customer).
    pub location: Option<LonLat>,
}

/// The outcome of one claimed notice.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider accepted it.
    Sent {
        /// The provider's message id.
        provider_id: String,
        /// SMS segments (1 for email).
        segments: u32,
    },
    /// Try again at `not_before`.
    Retry {
        /// When.
        not_before: DateTime<Utc>,
        /// What went wrong.
        reason: String,
        /// The provider may have acted on the attempt (a timeout): ask before resending.
        in_doubt: bool,
    },
    /// Give up. A failed SMS falls back to the email addresses of its accounts.
    Failed {
        /// The provider's reason.
        reason: String,
    },
    /// Held back without an attempt (quiet hours) until `not_before`.
    Held {
        /// When.
        not_before: DateTime<Utc>,
    },
    /// Given back unattempted (its lease ran short before it could be sent): due again at
    /// once, as if this claim had not happened.
    Released,
}

/// Outbox totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    /// Pending and due now.
    pub due: u64,
    /// Pending but waiting: a retry's backoff or quiet hours.
    pub waiting: u64,
    /// Leased to a worker right now.
    pub leased: u64,
    /// Sent or delivered.
    pub sent: u64,
    /// Failed.
    pub failed: u64,
}

/// One recipient's outcome, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// Notice id.
    pub notice_id: i64,
    /// Event kind.
    pub event: EventKind,
    /// Channel.
    pub channel: Channel,
    /// Number or email address.
    pub address: String,
    /// Accounts that led to it, comma separated.
    pub accounts: String,
    /// Status.
    pub status: NoticeStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// The provider's message id.
    pub provider_id: Option<String>,
    /// The last error or the provider's failure reason.
    pub last_error: Option<String>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}
