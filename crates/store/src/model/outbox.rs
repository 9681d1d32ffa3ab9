//! The outbox as callers see it: a claimed notice, the outcome a worker records, the counts
//! and the per-recipient report.

use std::time::Duration;

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
    /// An earlier attempt was handed to the provider and its outcome never recorded: it may
    /// have reached the provider.
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
    /// Sent again after an in-doubt attempt that the provider could not be asked about (the
    /// `resend` policy): accepted, and counted as a possible duplicate.
    SentAgain {
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
    /// Given back unattempted because the provider, not the recipient, is failing (refused
    /// credentials, an unknown account, no connection): waits until `not_before` with the
    /// reason shown, and the attempt is not counted.
    Deferred {
        /// When the channel is probed again.
        not_before: DateTime<Utc>,
        /// What the provider said, and the setting to fix.
        reason: String,
    },
    /// Not handed over: its incident closed (cancelled or restored) after the claim, so the
    /// notice is withdrawn (`superseded`) unsent.
    Withdrawn,
}

impl Outcome {
    /// The kind number the outcome statements use (see `complete_sql`).
    pub(crate) fn kind(&self) -> i16 {
        match self {
            Outcome::Sent { .. } => 1,
            Outcome::Retry { .. } => 2,
            Outcome::Failed { .. } => 3,
            Outcome::Held { .. } => 4,
            Outcome::Released => 5,
            Outcome::Deferred { .. } => 6,
            Outcome::Withdrawn => 7,
            Outcome::SentAgain { .. } => 8,
        }
    }

    /// The outcome as the statements' columns: (kind, provider id, segments, not before,
    /// reason, in doubt).
    pub(crate) fn columns(&self) -> OutcomeColumns<'_> {
        let mut c = OutcomeColumns {
            kind: self.kind(),
            provider_id: None,
            segments: None,
            not_before: None,
            reason: None,
            in_doubt: false,
        };
        match self {
            Outcome::Sent {
                provider_id,
                segments,
            }
            | Outcome::SentAgain {
                provider_id,
                segments,
            } => {
                c.provider_id = Some(provider_id.as_str());
                c.segments = Some(i32::try_from(*segments).unwrap_or(i32::MAX));
            }
            Outcome::Retry {
                not_before,
                reason,
                in_doubt,
            } => {
                c.not_before = Some(*not_before);
                c.reason = Some(reason.as_str());
                c.in_doubt = *in_doubt;
            }
            Outcome::Failed { reason } => c.reason = Some(reason.as_str()),
            Outcome::Held { not_before } => c.not_before = Some(*not_before),
            Outcome::Deferred { not_before, reason } => {
                c.not_before = Some(*not_before);
                c.reason = Some(reason.as_str());
            }
            Outcome::Released | Outcome::Withdrawn => {}
        }
        c
    }
}

/// One outcome as the columns of the outcome statements (both backends).
pub(crate) struct OutcomeColumns<'a> {
    pub(crate) kind: i16,
    pub(crate) provider_id: Option<&'a str>,
    pub(crate) segments: Option<i32>,
    pub(crate) not_before: Option<DateTime<Utc>>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) in_doubt: bool,
}

/// A notice handed over to its provider: the text as it stands at that moment (an update may
/// have rewritten it since the claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedNotice {
    /// Notice id.
    pub id: i64,
    /// Email subject.
    pub subject: String,
    /// The text to send.
    pub body: String,
}

/// What a claim asks for.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// The channels served.
    pub channels: &'a [Channel],
    /// The most notices to lease.
    pub limit: u32,
    /// Whether to look up each notice's service point (for quiet hours in local time).
    pub locate: bool,
}

/// One round trip of a dispatcher with the outbox, in one transaction, in this order: record
/// `outcomes`, renew the holder's leases (`renew`), hand over `hand`, then claim.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrip<'a> {
    /// The lease holder.
    pub owner: &'a str,
    /// Finished notices.
    pub outcomes: &'a [(i64, Outcome)],
    /// Notices about to be sent: marked in doubt if still pending, leased to `owner`, and
    /// their incident has not closed since (else left out of the answer).
    pub hand: &'a [i64],
    /// Extend every lease `owner` holds to `now + lease` (the heartbeat).
    pub renew: bool,
    /// New notices to lease, if any.
    pub claim: Option<ClaimRequest<'a>>,
    /// How long leases (new and renewed) last.
    pub lease: Duration,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// What a [`RoundTrip`] did.
#[derive(Debug, Clone, Default)]
pub struct RoundTripDone {
    /// Outcomes recorded (those of notices `owner` still held).
    pub recorded: u64,
    /// Leases renewed.
    pub renewed: u64,
    /// The notices handed over, with their texts; a notice asked for and missing here must
    /// not be sent.
    pub handed: Vec<HandedNotice>,
    /// Newly leased notices, priority first.
    pub claimed: Vec<ClaimedNotice>,
}

/// Which failed notices an operator puts back in the queue (`notify requeue`).
#[derive(Debug, Clone)]
pub struct Requeue<'a> {
    /// The incident.
    pub incident: outagecast_core::incident::IncidentId,
    /// Only this channel, or every channel.
    pub channel: Option<Channel>,
    /// Who (for the audit log).
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
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
    /// Sent again after an in-doubt attempt the provider could not be asked about.
    pub possible_duplicates: u64,
    /// Pending but held: the channel's provider refuses this node or the channel is not
    /// configured (these are counted in `due`, `waiting` or `leased` too).
    pub held: u64,
}

/// Held notices of one channel that share a reason (what `notify run` tells the operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldNotices {
    /// The channel.
    pub channel: Channel,
    /// Why they wait, naming the setting to fix.
    pub reason: String,
    /// How many.
    pub count: u64,
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
    /// Sent again after an in-doubt attempt the provider could not be asked about: the
    /// recipient may have it twice.
    pub possible_duplicate: bool,
    /// Voice: every call placed and its outcome, oldest first (`busy, answered (human)`).
    pub calls: Option<String>,
}

/// The audit details of a requeue (both backends).
pub(crate) fn requeue_details(q: &Requeue<'_>, requeued: u64) -> serde_json::Value {
    serde_json::json!({
        "channel": q.channel.map(|c| c.as_str()),
        "requeued": requeued,
    })
}

/// When a lease of `lease` taken or renewed at `now` ends, on the caller's clock (SQLite's;
/// PostgreSQL keeps leases on its own).
pub(crate) fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5))
}
