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
//! ([`RoundTrip::renew`]) so they can be short.
//!
//! What the two databases say their own way is in [`Backend`]: the claim (one `UPDATE …
//! RETURNING` under SQLite's single writer; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that
//! concurrent claimers on several nodes never take the same notice and never wait for each
//! other), the lease clock (the caller's `now` on SQLite, the database's `now()` on
//! PostgreSQL; `not_before`, quiet hours and retries stay on the caller's clock), the
//! hand-over's fence, the multi-row outcome writes and the early-receipt lock.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, Language};
use outagecast_core::incident::{EventKind, IncidentId, Severity};
use outagecast_core::notice::NoticeStatus;

use crate::backend::{Backend, ClaimQuery, OutcomeWrite, Record, Sql};
use crate::model::outbox::{
    ClaimedNotice, HandedNotice, HeldNotices, OutboxCounts, Outcome, ReportRow, Requeue, RoundTrip,
    RoundTripDone, requeue_details,
};
use crate::model::stored;
use crate::ops::audit;
use crate::{Result, StoreError};

/// Leases up to `limit` due notices on `channels` to `owner` for `lease`, priority first then
/// oldest: one statement, safe to run on any number of nodes at once. Returned priority first,
/// then by id.
pub(crate) async fn claim<B: Backend>(
    b: &B,
    owner: &str,
    channels: &[Channel],
    limit: u32,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimedNotice>> {
    if channels.is_empty() || limit == 0 {
        return Ok(vec![]);
    }
    let mut tx = b.begin().await?;
    let q = ClaimQuery {
        owner,
        channels,
        limit,
        lease,
        now,
        locate: true,
    };
    let claimed = claim_in::<B>(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(claimed)
}

/// Records the outcomes of `owner`'s claimed notices in one transaction. Outcomes for notices
/// whose lease `owner` no longer holds are ignored (another worker has them); returns how many
/// were recorded. A failed SMS falls back to email.
pub(crate) async fn complete<B: Backend>(
    b: &B,
    owner: &str,
    outcomes: &[(i64, Outcome)],
    now: DateTime<Utc>,
) -> Result<u64> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let mut tx = b.begin().await?;
    let recorded = complete_in::<B>(&mut tx, owner, outcomes, now).await?;
    B::commit(tx).await?;
    Ok(recorded)
}

/// The dispatcher's round trip ([`RoundTrip`]): record, renew, hand over and claim in one
/// transaction, one commit for all.
pub(crate) async fn round_trip<B: Backend>(b: &B, r: RoundTrip<'_>) -> Result<RoundTripDone> {
    let claim = r.claim.filter(|c| !c.channels.is_empty() && c.limit > 0);
    if r.outcomes.is_empty() && r.hand.is_empty() && !r.renew && claim.is_none() {
        return Ok(RoundTripDone::default());
    }
    let mut tx = b.begin().await?;
    let mut done = RoundTripDone {
        recorded: complete_in::<B>(&mut tx, r.owner, r.outcomes, r.now).await?,
        ..RoundTripDone::default()
    };
    if r.renew {
        let mut renew = Sql::new("UPDATE notices SET lease_expires_at = ");
        B::push_lease_end(&mut renew, r.now, r.lease);
        renew.push(" WHERE lease_owner = ");
        renew.push_arg(r.owner).push(" AND status = 'pending'");
        done.renewed = B::execute(&mut tx, renew).await?;
    }
    if !r.hand.is_empty() {
        let rows = B::fetch_all(
            &mut tx,
            Sql::new(B::HAND_OVER)
                .arg(r.now)
                .arg(r.owner)
                .arg(r.hand.to_vec()),
        )
        .await?;
        done.handed = rows
            .iter()
            .map(|row| {
                Ok(HandedNotice {
                    id: row.i64(0)?,
                    subject: row.text(1)?,
                    body: row.text(2)?,
                })
            })
            .collect::<Result<_>>()?;
    }
    if let Some(c) = claim {
        let q = ClaimQuery {
            owner: r.owner,
            channels: c.channels,
            limit: c.limit,
            lease: r.lease,
            now: r.now,
            locate: c.locate,
        };
        done.claimed = claim_in::<B>(&mut tx, q).await?;
    }
    B::commit(tx).await?;
    Ok(done)
}

/// Puts an incident's failed notices back in the queue (`notify requeue`), for an operator who
/// fixed what made them fail: pending, due now, attempts and doubt cleared, the old reason kept
/// behind "requeued after:". Returns how many; audited.
pub(crate) async fn requeue<B: Backend>(b: &B, q: Requeue<'_>) -> Result<u64> {
    let mut tx = b.begin().await?;
    // The incident must exist; on PostgreSQL its row stays locked against a transition.
    B::fetch_optional(
        &mut tx,
        Sql::built(format!(
            "SELECT id FROM incidents WHERE id = $1{}",
            B::LOCK_ROWS
        ))
        .arg(q.incident.0),
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("incident {}", q.incident)))?;
    let mut sql = Sql::new(
        "UPDATE notices SET status = 'pending', attempts = 0, in_doubt = 0, not_before = NULL,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = $1,
                last_error = 'requeued after: ' || COALESCE(last_error, 'a failure')
          WHERE incident_id = $2 AND status = 'failed'",
    )
    .arg(q.now)
    .arg(q.incident.0);
    if let Some(channel) = q.channel {
        sql.push(" AND channel = ").push_arg(channel.as_str());
    }
    let n = B::execute(&mut tx, sql).await?;
    audit::write::<B>(
        &mut tx,
        q.actor,
        "notices.requeue",
        Some(&format!("incident:{}", q.incident)),
        &requeue_details(&q, n),
        q.now,
    )
    .await?;
    B::commit(tx).await?;
    Ok(n)
}

/// Gives `owner`'s leases back (on shutdown), so other workers need not wait for expiry. Their
/// in-doubt mark stays: they were claimed, so they may have been sent.
pub(crate) async fn release<B: Backend>(b: &B, owner: &str) -> Result<u64> {
    B::execute(
        &mut *b.conn().await?,
        Sql::new(
            "UPDATE notices SET lease_owner = NULL, lease_expires_at = NULL
             WHERE lease_owner = $1 AND status = 'pending'",
        )
        .arg(owner),
    )
    .await
}

/// Outbox totals on `channels` at `now` (leases on the lease clock).
pub(crate) async fn outbox_counts<B: Backend>(
    b: &B,
    channels: &[Channel],
    now: DateTime<Utc>,
) -> Result<OutboxCounts> {
    let lease_now = B::lease_clock(1);
    let sql = Sql::built(format!(
        "SELECT
           COUNT(*) FILTER (WHERE status = 'pending' AND (not_before IS NULL OR not_before <= $1)
                              AND (lease_expires_at IS NULL OR lease_expires_at < {lease_now})),
           COUNT(*) FILTER (WHERE status = 'pending' AND not_before > $1),
           COUNT(*) FILTER (WHERE status = 'pending' AND lease_expires_at >= {lease_now}),
           COUNT(*) FILTER (WHERE status IN ('sent', 'delivered')),
           COUNT(*) FILTER (WHERE status = 'failed'),
           COUNT(*) FILTER (WHERE possible_duplicate),
           COUNT(*) FILTER (WHERE status = 'pending' AND held)
         FROM notices WHERE channel {}",
        B::in_list(2)
    ))
    .arg(now)
    .arg(channels.iter().map(|c| c.as_str()).collect::<Vec<_>>());
    let row = B::fetch_one(&mut *b.conn().await?, sql).await?;
    let u = |col: usize| -> Result<u64> { Ok(u64::try_from(row.i64(col)?).unwrap_or_default()) };
    Ok(OutboxCounts {
        due: u(0)?,
        waiting: u(1)?,
        leased: u(2)?,
        sent: u(3)?,
        failed: u(4)?,
        possible_duplicates: u(5)?,
        held: u(6)?,
    })
}

/// Marks every waiting notice of `channel` held with `reason` (its circuit opened, or the
/// channel is not configured here): counted and shown as `held` until an attempt's outcome or
/// [`resume_channel`] clears the mark. Returns how many were newly marked. Leased notices are
/// marked too: the lane holding them is the one whose provider is failing, or another node's,
/// whose outcome clears the mark again.
pub(crate) async fn hold_channel<B: Backend>(
    b: &B,
    channel: Channel,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    B::execute(
        &mut *b.conn().await?,
        Sql::new(
            "UPDATE notices SET held = $1, last_error = $2, updated_at = $3
              WHERE channel = $4 AND status = 'pending'
                AND NOT (held AND last_error IS NOT NULL AND last_error = $2)",
        )
        .arg(true)
        .arg(reason)
        .arg(now)
        .arg(channel.as_str()),
    )
    .await
}

/// Clears the held mark of every waiting notice of `channel` (its provider accepts again, or
/// the channel is configured now): they are plain pending notices again, due as they were.
pub(crate) async fn resume_channel<B: Backend>(
    b: &B,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<u64> {
    B::execute(
        &mut *b.conn().await?,
        Sql::new(
            "UPDATE notices SET held = $1, updated_at = $2
              WHERE channel = $3 AND status = 'pending' AND held",
        )
        .arg(false)
        .arg(now)
        .arg(channel.as_str()),
    )
    .await
}

/// Held notices by channel and reason, channel then reason order.
pub(crate) async fn held_notices<B: Backend>(b: &B) -> Result<Vec<HeldNotices>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT channel, COALESCE(last_error, ''), COUNT(*) FROM notices
              WHERE status = 'pending' AND held
              GROUP BY channel, COALESCE(last_error, '')
              ORDER BY channel{b}, COALESCE(last_error, ''){b}",
            b = B::BYTEWISE
        )),
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HeldNotices {
                channel: stored(&r.text(0)?, Channel::parse)?,
                reason: r.text(1)?,
                count: u64::try_from(r.i64(2)?).unwrap_or_default(),
            })
        })
        .collect()
}

/// The earliest time a waiting notice becomes due, if any.
pub(crate) async fn next_due<B: Backend>(b: &B) -> Result<Option<DateTime<Utc>>> {
    B::fetch_one(
        &mut *b.conn().await?,
        Sql::new("SELECT MIN(not_before) FROM notices WHERE status = 'pending'"),
    )
    .await?
    .opt_time(0)
}

/// Every notice of an incident with its outcome, in id order. The accounts are listed in
/// customer id order.
pub(crate) async fn notice_report<B: Backend>(
    b: &B,
    incident: IncidentId,
) -> Result<Vec<ReportRow>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        // Set-based (one aggregate joined back) rather than a subquery per notice, so the
        // plan stays linear whatever the statistics say.
        Sql::new(
            "WITH accounts AS (
                 SELECT nc.notice_id,
                        string_agg(c.account_id, ',' ORDER BY nc.customer_id) AS accounts
                   FROM notices n2
                   JOIN notice_customers nc ON nc.notice_id = n2.id
                   JOIN customers c ON c.id = nc.customer_id
                  WHERE n2.incident_id = $1
                  GROUP BY nc.notice_id),
             calls AS (
                 SELECT ca.notice_id,
                        string_agg(ca.outcome || COALESCE(' (' || ca.answered_by || ')', ''),
                                   ', ' ORDER BY ca.at) AS calls
                   FROM notices n3
                   JOIN call_attempts ca ON ca.notice_id = n3.id
                  WHERE n3.incident_id = $1
                  GROUP BY ca.notice_id)
             SELECT n.id, e.kind, n.channel, n.address, a.accounts,
                    CASE WHEN n.status = 'pending' AND n.held THEN 'held' ELSE n.status END,
                    n.attempts, n.provider_id, n.last_error, n.sent_at,
                    n.possible_duplicate, ca.calls
               FROM notices n
               JOIN incident_events e ON e.id = n.event_id
               LEFT JOIN accounts a ON a.notice_id = n.id
               LEFT JOIN calls ca ON ca.notice_id = n.id
              WHERE n.incident_id = $1 ORDER BY n.id",
        )
        .arg(incident.0),
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportRow {
                notice_id: r.i64(0)?,
                event: stored(&r.text(1)?, EventKind::parse)?,
                channel: stored(&r.text(2)?, Channel::parse)?,
                address: r.text(3)?,
                accounts: r.opt_text(4)?.unwrap_or_default(),
                status: stored(&r.text(5)?, NoticeStatus::parse)?,
                attempts: u32::try_from(r.i64(6)?).unwrap_or_default(),
                provider_id: r.opt_text(7)?,
                last_error: r.opt_text(8)?,
                sent_at: r.opt_time(9)?,
                possible_duplicate: r.bool(10)?,
                calls: r.opt_text(11)?,
            })
        })
        .collect()
}

/// Runs the claim of `q` inside `tx`; the notices priority first, then oldest.
async fn claim_in<B: Backend>(tx: &mut B::Conn, q: ClaimQuery<'_>) -> Result<Vec<ClaimedNotice>> {
    let rows = B::fetch_all(tx, B::claim(q)).await?;
    let mut claimed = rows
        .iter()
        .map(claimed_notice)
        .collect::<Result<Vec<_>>>()?;
    // RETURNING gives no order; hand them out priority first, then oldest.
    claimed.sort_unstable_by_key(|n| (!n.priority, n.id));
    Ok(claimed)
}

/// A row of [`Backend::claim`].
fn claimed_notice(r: &impl Record) -> Result<ClaimedNotice> {
    let id = r.i64(0)?;
    let missing = |what: &str| StoreError::Corrupt(format!("notice {id} has no {what}"));
    let event = r.opt_text(2)?.ok_or_else(|| missing("event"))?;
    let severity = r.opt_text(3)?.ok_or_else(|| missing("incident"))?;
    Ok(ClaimedNotice {
        id,
        incident_id: r.i64(1)?,
        event: stored(&event, EventKind::parse)?,
        severity: stored(&severity, Severity::parse)?,
        channel: stored(&r.text(4)?, Channel::parse)?,
        address: r.text(5)?,
        language: stored(&r.text(6)?, Language::parse)?,
        priority: r.bool(7)?,
        subject: r.text(8)?,
        body: r.text(9)?,
        attempts: u32::try_from(r.i64(10)?).unwrap_or(u32::MAX),
        in_doubt: r.i64(11)? != 0,
        created_at: r.time(12)?,
        location: r
            .opt_f64(13)?
            .zip(r.opt_f64(14)?)
            .and_then(|(lon, lat)| LonLat::parse(lon, lat).ok()),
    })
}

/// Records `outcomes` for `owner` inside `tx`: everything but failures at once, then the
/// failures, each recorded one falling back to email (only a failure this call records falls
/// back), in the order given.
async fn complete_in<B: Backend>(
    tx: &mut B::Conn,
    owner: &str,
    outcomes: &[(i64, Outcome)],
    now: DateTime<Utc>,
) -> Result<u64> {
    if outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Sent { .. } | Outcome::SentAgain { .. }))
    {
        // Before any row is touched, so that waiting for it never holds a row lock.
        B::storing_provider_ids(tx).await?;
    }
    type Refs<'a> = Vec<&'a (i64, Outcome)>;
    let (failed, rest): (Refs<'_>, Refs<'_>) = outcomes
        .iter()
        .partition(|(_, o)| matches!(o, Outcome::Failed { .. }));
    let mut recorded = 0;
    if !rest.is_empty() {
        recorded += B::write_outcomes(
            tx,
            OutcomeWrite {
                owner,
                outcomes: &rest,
                now,
            },
        )
        .await?
        .len();
    }
    if !failed.is_empty() {
        let mut failed_now: HashSet<i64> = B::write_outcomes(
            tx,
            OutcomeWrite {
                owner,
                outcomes: &failed,
                now,
            },
        )
        .await?
        .into_iter()
        .collect();
        recorded += failed_now.len();
        for (id, _) in failed {
            if failed_now.remove(id) {
                fall_back_to_email::<B>(tx, *id, now).await?;
            }
        }
    }
    Ok(u64::try_from(recorded).unwrap_or(u64::MAX))
}

/// A permanently failed SMS (a failed send here, or a failed delivery receipt in `receipts.rs`):
/// tell the same accounts by email instead, where they have one, have not opted out, and are
/// not already being emailed for this event. The early-receipt trigger in `0005_receipts.sql`
/// repeats this rule in SQL, since a trigger cannot call Rust.
pub(crate) async fn fall_back_to_email<B: Backend>(
    c: &mut B::Conn,
    notice_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    B::execute(
        c,
        Sql::new(
            "INSERT INTO notices (incident_id, event_id, channel, address, language, priority,
                                  subject, body, created_at, updated_at)
             SELECT DISTINCT n.incident_id, n.event_id, 'email', c.value, n.language, n.priority,
                    n.subject, n.body, $2, $2
               FROM notices n
               JOIN notice_customers nc ON nc.notice_id = n.id
               JOIN contacts c ON c.customer_id = nc.customer_id AND c.medium = 'email'
              WHERE n.id = $1 AND n.channel = 'sms'
                AND NOT EXISTS (SELECT 1 FROM opt_outs o
                                 WHERE o.channel = 'email' AND o.address = c.value)
             ON CONFLICT (incident_id, event_id, channel, address) DO NOTHING",
        )
        .arg(notice_id)
        .arg(now),
    )
    .await?;
    Ok(())
}
