//! The outbox statements SQLite says its own way (the scripts are in `crate::ops::outbox`):
//! the claim as one `UPDATE … WHERE id IN (SELECT … LIMIT) RETURNING` (the single writer
//! needs no row locks), leases on the caller's clock, the hand-over with its fence, and the
//! outcomes written as padded `VALUES` chunks.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;

use crate::Result;
use crate::backend::{Backend, ClaimQuery, OutcomeWrite, Record, Sql};
use crate::model::outbox::lease_end;
use crate::sqlite::SqliteStore;

/// The claim: `?1` owner, `?2` the lease's end, `?3` now, `?4` and `?5` the channels (the
/// same one twice for one), `?6` the limit. Event kind and severity come from their tables by
/// primary key; with `locate`, also the first account's service point (a phone shared by
/// several accounts is one notice).
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

/// The hand-over: `?1` now, `?2` the owner, `?3` the ids as a JSON array. The fence: only a
/// notice still pending and leased to the owner is handed over (a lease that ran out but that
/// nobody took over is still the owner's), and only while its incident is open or the notice
/// belongs to the incident's last event (a restored or cancelled follow-up). RETURNING gives
/// the text as it stands now.
pub(super) const HAND_SQL: &str = "UPDATE notices SET in_doubt = 1, updated_at = ?1
     WHERE id IN (SELECT value FROM json_each(?3))
       AND lease_owner = ?2 AND status = 'pending'
       AND EXISTS (SELECT 1 FROM incidents i WHERE i.id = notices.incident_id
                     AND (i.status IN ('declared', 'updated')
                          OR notices.event_id = (SELECT MAX(e.id) FROM incident_events e
                                                  WHERE e.incident_id = i.id)))
 RETURNING id, subject, body";

/// Outcomes are written this many at a time, padded to a fixed size so the few statement
/// shapes stay prepared (padding rows have a NULL id and match nothing).
const COMPLETE_CHUNKS: [usize; 3] = [8, 64, 256];

/// The outcome statement for `rows` outcomes. Each row of `o` is (id, kind, provider id,
/// segments, not_before, reason, in_doubt) with the kinds of [`Outcome::kind`]; then come now
/// (twice) and the owner. Held, released, deferred and withdrawn notices were not attempted:
/// the attempt is not counted and their doubt stays as it was (a hand-over is the only thing
/// that sets it). A deferred notice is marked held (the provider's fault); a released one keeps
/// its mark, and every other outcome clears it. Plain `?` placeholders only: SQLite looks a numbered one up by a linear
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
           held = CASE WHEN o.k = 6 THEN 1 WHEN o.k = 5 THEN notices.held ELSE 0 END,
           lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
         FROM o
         WHERE notices.id = o.id AND notices.lease_owner = ? AND notices.status = 'pending'
         RETURNING notices.id"
    )
}

/// The claim statement of `q`.
pub(super) fn claim(q: ClaimQuery<'_>) -> Sql<'_> {
    // No channel binds NULL, which matches nothing (the scripts never claim none).
    let first = q.channels.first().map(|c| c.as_str());
    let second = q.channels.get(1).map(|c| c.as_str()).or(first);
    Sql::new(if q.locate {
        CLAIM_SQL
    } else {
        CLAIM_SQL_UNLOCATED
    })
    .arg(q.owner)
    .arg(lease_end(q.now, q.lease))
    .arg(q.now)
    .arg(first)
    .arg(second)
    .arg(i64::from(q.limit))
}

/// Writes `outcomes` a chunk at a time (a few statements for a whole batch); the ids recorded.
pub(super) async fn write_outcomes(
    tx: &mut SqliteConnection,
    w: OutcomeWrite<'_>,
) -> Result<Vec<i64>> {
    let OutcomeWrite {
        owner,
        outcomes,
        now,
    } = w;
    static STATEMENTS: LazyLock<[String; 3]> = LazyLock::new(|| COMPLETE_CHUNKS.map(complete_sql));
    let largest = COMPLETE_CHUNKS.len() - 1;
    let mut recorded = Vec::with_capacity(outcomes.len());
    for chunk in outcomes.chunks(COMPLETE_CHUNKS[largest]) {
        let which = COMPLETE_CHUNKS
            .iter()
            .position(|&s| s >= chunk.len())
            .unwrap_or(largest);
        let mut sql = Sql::new(STATEMENTS[which].as_str());
        for (id, outcome) in chunk {
            let c = outcome.columns();
            sql = sql
                .arg(*id)
                .arg(i64::from(c.kind))
                .arg(c.provider_id)
                .arg(c.segments.map(i64::from))
                .arg(c.not_before)
                .arg(c.reason)
                .arg(i64::from(c.in_doubt));
        }
        for _ in chunk.len()..COMPLETE_CHUNKS[which] {
            sql = sql
                .arg(None::<i64>)
                .arg(0_i64)
                .arg(None::<&str>)
                .arg(None::<i64>)
                .arg(None::<DateTime<Utc>>)
                .arg(None::<&str>)
                .arg(0_i64);
        }
        let rows = SqliteStore::fetch_all(tx, sql.arg(now).arg(now).arg(owner)).await?;
        for row in rows {
            recorded.push(row.i64(0)?);
        }
    }
    Ok(recorded)
}
