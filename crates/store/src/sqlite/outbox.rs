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

use crate::model::outbox::{
    ClaimedNotice, HandedNotice, OutboxCounts, Outcome, ReportRow, Requeue, RoundTrip,
    RoundTripDone, requeue_details,
};
use crate::model::{stored, ts};
use crate::sqlite::parse_opt_ts;
use crate::{Result, SqliteStore, StoreError};

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
        crate::sqlite::incidents::fetch_incident(&mut tx, q.incident).await?;
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
        crate::sqlite::audit(
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
                    created_at: crate::model::parse_ts(&created_at)?,
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
            crate::ops::outbox::fall_back_to_email::<SqliteStore>(tx, outcome.0, now).await?;
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

fn channel_list(channels: &[Channel]) -> Result<String> {
    serde_json::to_string(&channels.iter().map(|c| c.as_str()).collect::<Vec<_>>())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
