//! The outbox as the dispatcher sees it: claim due notices under a lease, record outcomes.
//!
//! A claim leases notices to one worker. Just before a request goes to the provider the worker
//! *hands the notice over* ([`RoundTrip::hand`]): that marks it *in doubt* and is the fence
//! against a cancel or restore (a notice whose incident has closed since its claim is not
//! handed over, so nothing new about the old event reaches a provider after the transition
//! commits). Recording the outcome clears the mark and the lease. A worker that dies leaves its
//! leases to expire; whoever claims such a notice next sees `in_doubt` only if its request may
//! have been on the wire, and must ask the provider (or apply the in-doubt policy) before
//! sending again. Only the lease holder can record an outcome, so a worker that lost its lease
//! cannot overwrite another's result. Leases are renewed by the holder's heartbeat
//! ([`RoundTrip::renew`]) so they can be short. On PostgreSQL the same shape is
//! `SELECT … FOR UPDATE SKIP LOCKED`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, Language};
use outagecast_core::incident::{EventKind, Severity};
use outagecast_core::notice::NoticeStatus;
use serde::Serialize;

use crate::{Result, SqliteStore, StoreError, parse_opt_ts, stored, ts};

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
}

type ClaimRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    Option<f64>,
    Option<f64>,
);

/// The claim: one statement that leases the due notices and hands them back.
///
/// The claim leaves `in_doubt` as it is: only a hand-over sets it.
/// Event kind and severity come from their tables by primary key; with `locate`, also the
/// first account's service point (a phone shared by several accounts is one notice).
macro_rules! claim_sql {
    ($location:literal) => {
        concat!(
            "UPDATE notices
                SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1,
                    updated_at = ?3
              WHERE id IN (
                    SELECT id FROM notices
                     WHERE status = 'pending'
                       AND (not_before IS NULL OR not_before <= ?3)
                       AND (lease_expires_at IS NULL OR lease_expires_at < ?3)
                       AND channel IN (?4, ?5)
                     ORDER BY priority DESC, id
                     LIMIT ?6)
              RETURNING id, incident_id,
                    (SELECT e.kind FROM incident_events e WHERE e.id = notices.event_id),
                    (SELECT i.severity FROM incidents i WHERE i.id = notices.incident_id),
                    channel, address, language, priority, subject, body, attempts, in_doubt,
                    created_at, ",
            $location
        )
    };
}
const CLAIM_SQL: &str = claim_sql!(
    "(SELECT c.lon FROM notice_customers nc JOIN customers c ON c.id = nc.customer_id
       WHERE nc.notice_id = notices.id ORDER BY nc.customer_id LIMIT 1),
     (SELECT c.lat FROM notice_customers nc JOIN customers c ON c.id = nc.customer_id
       WHERE nc.notice_id = notices.id ORDER BY nc.customer_id LIMIT 1)"
);
const CLAIM_SQL_UNLOCATED: &str = claim_sql!("NULL, NULL");

/// Outcomes are written this many at a time, padded to a fixed size so the few statement
/// shapes stay prepared (padding rows have a NULL id and match nothing).
const COMPLETE_CHUNKS: [usize; 3] = [8, 64, 256];

/// `complete`'s statement for `rows` outcomes. Each row of `o` is (id, kind, provider id,
/// segments, not_before, reason, in_doubt) with the kinds of [`Outcome::kind`]; then come now
/// (twice) and the owner. Held, released, deferred and withdrawn notices were not attempted:
/// the attempt is not counted and their doubt stays as it was (a hand-over is the only thing
/// that sets it). Plain `?` placeholders only: SQLite looks a numbered one up by a linear
/// search, which over a thousand parameters costs more than the update itself.
fn complete_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "WITH o(id, k, pid, seg, nb, err, doubt) AS (VALUES {values})
         UPDATE notices SET
           status = CASE WHEN o.k IN (1, 8) THEN 'sent' WHEN o.k = 3 THEN 'failed'
                         WHEN o.k = 7 THEN 'superseded' ELSE notices.status END,
           provider_id = CASE WHEN o.k IN (1, 8) THEN o.pid ELSE notices.provider_id END,
           segments = CASE WHEN o.k IN (1, 8) THEN o.seg ELSE notices.segments END,
           sent_at = CASE WHEN o.k IN (1, 8) THEN ? ELSE notices.sent_at END,
           possible_duplicate = CASE WHEN o.k = 8 THEN 1 ELSE notices.possible_duplicate END,
           not_before = CASE WHEN o.k IN (2, 4, 6) THEN o.nb ELSE notices.not_before END,
           last_error = CASE WHEN o.k IN (1, 8) THEN NULL WHEN o.k IN (4, 5, 7) THEN notices.last_error
                             ELSE o.err END,
           in_doubt = CASE WHEN o.k = 2 THEN o.doubt
                           WHEN o.k IN (4, 5, 6) THEN notices.in_doubt
                           ELSE 0 END,
           attempts = CASE WHEN o.k IN (4, 5, 6, 7) THEN notices.attempts - 1 ELSE notices.attempts END,
           lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
         FROM o
         WHERE notices.id = o.id AND notices.lease_owner = ? AND notices.status = 'pending'"
    )
}

/// The hand-over (SQLite): `?1` now, `?2` the owner, `?3` the ids as a JSON array. The fence:
/// only a notice still pending and leased to the owner is handed over (a lease that ran out
/// but that nobody took over is still the owner's), and only while its incident is open or the notice belongs to the incident's last event (a restored or
/// cancelled follow-up). RETURNING gives the text as it stands now.
const HAND_SQL: &str = "UPDATE notices SET in_doubt = 1, updated_at = ?1
     WHERE id IN (SELECT value FROM json_each(?3))
       AND lease_owner = ?2 AND status = 'pending'
       AND EXISTS (SELECT 1 FROM incidents i WHERE i.id = notices.incident_id
                     AND (i.status IN ('declared', 'updated')
                          OR notices.event_id = (SELECT MAX(e.id) FROM incident_events e
                                                  WHERE e.incident_id = i.id)))
 RETURNING id, subject, body";

impl SqliteStore {
    /// Leases up to `limit` due notices on `channels` to `owner` for `lease`, priority first
    /// then oldest, and marks them in doubt: one statement.
    pub async fn claim(
        &self,
        owner: &str,
        channels: &[Channel],
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedNotice>> {
        if channels.is_empty() || limit == 0 {
            return Ok(vec![]);
        }
        let mut tx = self.write_tx().await?;
        let claimed = claim_in(&mut tx, owner, channels, limit, lease, now, true).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records the outcomes of `owner`'s claimed notices in one transaction. Outcomes for
    /// notices whose lease `owner` no longer holds are ignored (another worker has them);
    /// returns how many were recorded.
    ///
    /// The outcomes are written a chunk at a time (a few statements for a whole batch); a
    /// failed SMS is recorded on its own, since only a failure this call records falls back
    /// to email.
    pub async fn complete(
        &self,
        owner: &str,
        outcomes: &[(i64, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let recorded = complete_in(&mut tx, owner, outcomes, now).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// The dispatcher's round trip ([`RoundTrip`]): record, renew, hand over and claim in
    /// one transaction, one commit for all.
    pub async fn round_trip(&self, r: RoundTrip<'_>) -> Result<RoundTripDone> {
        let claim = r.claim.filter(|c| !c.channels.is_empty() && c.limit > 0);
        if r.outcomes.is_empty() && r.hand.is_empty() && !r.renew && claim.is_none() {
            return Ok(RoundTripDone::default());
        }
        let mut tx = self.write_tx().await?;
        let mut done = RoundTripDone {
            recorded: complete_in(&mut tx, r.owner, r.outcomes, r.now).await?,
            ..RoundTripDone::default()
        };
        let now = ts(r.now);
        if r.renew {
            done.renewed = sqlx::query(
                "UPDATE notices SET lease_expires_at = ? WHERE lease_owner = ? AND status = 'pending'",
            )
            .bind(lease_end(r.now, r.lease))
            .bind(r.owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if !r.hand.is_empty() {
            let ids =
                serde_json::to_string(r.hand).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let rows: Vec<(i64, String, String)> = sqlx::query_as(HAND_SQL)
                .bind(&now)
                .bind(r.owner)
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?;
            done.handed = rows
                .into_iter()
                .map(|(id, subject, body)| HandedNotice { id, subject, body })
                .collect();
        }
        if let Some(c) = claim {
            done.claimed = claim_in(
                &mut tx, r.owner, c.channels, c.limit, r.lease, r.now, c.locate,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Puts an incident's failed notices back in the queue (`notify requeue`), for an operator
    /// who fixed what made them fail: pending, due now, attempts and doubt cleared, the old
    /// reason kept behind "requeued after:". Returns how many; audited.
    pub async fn requeue(&self, q: Requeue<'_>) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        crate::incidents::fetch_incident(&mut tx, q.incident).await?;
        let now = ts(q.now);
        let n = sqlx::query(
            "UPDATE notices SET status = 'pending', attempts = 0, in_doubt = 0, not_before = NULL,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1,
                    last_error = 'requeued after: ' || COALESCE(last_error, 'a failure')
              WHERE incident_id = ?2 AND status = 'failed' AND (?3 IS NULL OR channel = ?3)",
        )
        .bind(&now)
        .bind(q.incident.0)
        .bind(q.channel.map(|c| c.as_str()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        crate::audit(
            &mut tx,
            q.actor,
            "notices.requeue",
            Some(&format!("incident:{}", q.incident)),
            &requeue_details(&q, n),
            q.now,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Gives `owner`'s leases back (on shutdown), so other workers need not wait for expiry.
    /// Their in-doubt mark stays: they were claimed, so they may have been sent.
    pub async fn release(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE notices SET lease_owner = NULL, lease_expires_at = NULL
             WHERE lease_owner = ? AND status = 'pending'",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Outbox totals on `channels` at `now`.
    pub async fn outbox_counts(
        &self,
        channels: &[Channel],
        now: DateTime<Utc>,
    ) -> Result<OutboxCounts> {
        let now_s = ts(now);
        let channels = channel_list(channels)?;
        let (due, waiting, leased, sent, failed, dups): (i64, i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT
               COALESCE(SUM(status = 'pending' AND (not_before IS NULL OR not_before <= ?1)
                            AND (lease_expires_at IS NULL OR lease_expires_at < ?1)), 0),
               COALESCE(SUM(status = 'pending' AND not_before > ?1), 0),
               COALESCE(SUM(status = 'pending' AND lease_expires_at >= ?1), 0),
               COALESCE(SUM(status IN ('sent', 'delivered')), 0),
               COALESCE(SUM(status = 'failed'), 0),
               COALESCE(SUM(possible_duplicate <> 0), 0)
             FROM notices WHERE channel IN (SELECT value FROM json_each(?2))",
            )
            .bind(&now_s)
            .bind(&channels)
            .fetch_one(&self.pool)
            .await?;
        let u = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(OutboxCounts {
            due: u(due),
            waiting: u(waiting),
            leased: u(leased),
            sent: u(sent),
            failed: u(failed),
            possible_duplicates: u(dups),
        })
    }

    /// The earliest time a waiting notice becomes due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let (t,): (Option<String>,) =
            sqlx::query_as("SELECT MIN(not_before) FROM notices WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        parse_opt_ts(t)
    }

    /// Every notice of an incident with its outcome, in id order.
    pub async fn notice_report(
        &self,
        incident: outagecast_core::incident::IncidentId,
    ) -> Result<Vec<ReportRow>> {
        type Row = (
            i64,
            String,
            String,
            String,
            Option<String>,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT n.id, e.kind, n.channel, n.address,
                    (SELECT group_concat(c.account_id, ',') FROM notice_customers nc
                       JOIN customers c ON c.id = nc.customer_id WHERE nc.notice_id = n.id),
                    n.status, n.attempts, n.provider_id, n.last_error, n.sent_at,
                    n.possible_duplicate
             FROM notices n JOIN incident_events e ON e.id = n.event_id
             WHERE n.incident_id = ? ORDER BY n.id",
        )
        .bind(incident.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(
                    id,
                    event,
                    channel,
                    address,
                    accounts,
                    status,
                    attempts,
                    provider_id,
                    last_error,
                    sent_at,
                    possible_duplicate,
                )| {
                    Ok(ReportRow {
                        notice_id: id,
                        event: stored(&event, EventKind::parse)?,
                        channel: stored(&channel, Channel::parse)?,
                        address,
                        accounts: accounts.unwrap_or_default(),
                        status: stored(&status, NoticeStatus::parse)?,
                        attempts: u32::try_from(attempts).unwrap_or_default(),
                        provider_id,
                        last_error,
                        sent_at: parse_opt_ts(sent_at)?,
                        possible_duplicate: possible_duplicate != 0,
                    })
                },
            )
            .collect()
    }
}

async fn claim_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    owner: &str,
    channels: &[Channel],
    limit: u32,
    lease: Duration,
    now: DateTime<Utc>,
    locate: bool,
) -> Result<Vec<ClaimedNotice>> {
    let (first, second) = match channels {
        [] => return Ok(vec![]),
        [only] => (only.as_str(), only.as_str()),
        [a, b, ..] => (a.as_str(), b.as_str()),
    };
    let now_s = ts(now);
    let until = lease_end(now, lease);
    let sql = if locate {
        CLAIM_SQL
    } else {
        CLAIM_SQL_UNLOCATED
    };
    let rows: Vec<ClaimRow> = sqlx::query_as(sql)
        .bind(owner)
        .bind(&until)
        .bind(&now_s)
        .bind(first)
        .bind(second)
        .bind(i64::from(limit))
        .fetch_all(&mut **tx)
        .await?;
    let mut claimed = rows
        .into_iter()
        .map(
            |(
                id,
                incident_id,
                event,
                severity,
                channel,
                address,
                language,
                priority,
                subject,
                body,
                attempts,
                in_doubt,
                created_at,
                lon,
                lat,
            )| {
                Ok(ClaimedNotice {
                    id,
                    incident_id,
                    event: stored(&event, EventKind::parse)?,
                    severity: stored(&severity, Severity::parse)?,
                    channel: stored(&channel, Channel::parse)?,
                    address,
                    language: stored(&language, Language::parse)?,
                    priority: priority != 0,
                    subject,
                    body,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    in_doubt: in_doubt != 0,
                    created_at: crate::parse_ts(&created_at)?,
                    location: lon
                        .zip(lat)
                        .and_then(|(lon, lat)| LonLat::parse(lon, lat).ok()),
                })
            },
        )
        .collect::<Result<Vec<_>>>()?;
    // RETURNING gives no order; hand them out priority first, then oldest.
    claimed.sort_unstable_by_key(|n| (!n.priority, n.id));
    Ok(claimed)
}

async fn complete_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    owner: &str,
    outcomes: &[(i64, Outcome)],
    now: DateTime<Utc>,
) -> Result<u64> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let now_s = ts(now);
    let mut recorded = 0;
    type Refs<'a> = Vec<&'a (i64, Outcome)>;
    let (failed, rest): (Refs<'_>, Refs<'_>) = outcomes
        .iter()
        .partition(|(_, o)| matches!(o, Outcome::Failed { .. }));
    let largest = COMPLETE_CHUNKS[COMPLETE_CHUNKS.len() - 1];
    for chunk in rest.chunks(largest) {
        let size = COMPLETE_CHUNKS
            .iter()
            .copied()
            .find(|&s| s >= chunk.len())
            .unwrap_or(largest);
        recorded += write_outcomes(tx, owner, &now_s, chunk, size).await?;
    }
    for outcome in failed {
        let n = write_outcomes(tx, owner, &now_s, &[outcome], COMPLETE_CHUNKS[0]).await?;
        recorded += n;
        if n == 1 {
            fall_back_to_email(tx, outcome.0, &now_s).await?;
        }
    }
    Ok(recorded)
}

/// Writes `rows` (at most `size`) outcomes with `complete_sql(size)`, padding with rows that
/// match nothing; returns how many notices changed.
async fn write_outcomes(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    owner: &str,
    now: &str,
    rows: &[&(i64, Outcome)],
    size: usize,
) -> Result<u64> {
    static STATEMENTS: LazyLock<Vec<(usize, Arc<str>)>> = LazyLock::new(|| {
        COMPLETE_CHUNKS
            .iter()
            .map(|&n| (n, Arc::from(complete_sql(n))))
            .collect()
    });
    let sql = STATEMENTS
        .iter()
        .find(|(n, _)| *n == size)
        .map(|(_, sql)| Arc::clone(sql))
        .unwrap_or_else(|| Arc::from(complete_sql(size)));
    // The text is built here from numbered placeholders only; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (id, outcome) in rows {
        let c = outcome.columns();
        q = q
            .bind(*id)
            .bind(i64::from(c.kind))
            .bind(c.provider_id)
            .bind(c.segments.map(i64::from))
            .bind(c.not_before.map(ts))
            .bind(c.reason)
            .bind(i64::from(c.in_doubt));
    }
    for _ in rows.len()..size {
        q = q
            .bind(None::<i64>)
            .bind(0_i64)
            .bind(None::<&str>)
            .bind(None::<i64>)
            .bind(None::<String>)
            .bind(None::<&str>)
            .bind(0_i64);
    }
    q = q.bind(now).bind(now).bind(owner);
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// When a lease taken or renewed at `now` ends, as stored.
fn lease_end(now: DateTime<Utc>, lease: Duration) -> String {
    ts(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5)))
}

/// The audit details of a requeue (both backends).
pub(crate) fn requeue_details(q: &Requeue<'_>, requeued: u64) -> serde_json::Value {
    serde_json::json!({
        "channel": q.channel.map(|c| c.as_str()),
        "requeued": requeued,
    })
}

fn channel_list(channels: &[Channel]) -> Result<String> {
    serde_json::to_string(&channels.iter().map(|c| c.as_str()).collect::<Vec<_>>())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A permanently failed SMS (a failed send here, or a failed delivery receipt in `receipts.rs`):
/// tell the same accounts by email instead, where they have one, have not opted out, and are
/// not already being emailed for this event. The early-receipt trigger in `0005_receipts.sql`
/// repeats this rule in SQL, since a trigger cannot call Rust.
pub(crate) async fn fall_back_to_email(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    notice_id: i64,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO notices (incident_id, event_id, channel, address, language, priority, subject, body, created_at, updated_at)
         SELECT DISTINCT n.incident_id, n.event_id, 'email', c.value, n.language, n.priority, n.subject, n.body, ?, ?
         FROM notices n
         JOIN notice_customers nc ON nc.notice_id = n.id
         JOIN contacts c ON c.customer_id = nc.customer_id AND c.medium = 'email'
         WHERE n.id = ? AND n.channel = 'sms'
           AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = 'email' AND o.address = c.value)
         ON CONFLICT (incident_id, event_id, channel, address) DO NOTHING",
    )
    .bind(now)
    .bind(now)
    .bind(notice_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
