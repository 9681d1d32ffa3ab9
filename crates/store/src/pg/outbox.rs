//! The outbox as several dispatchers on several engine nodes see it: claim due notices under a
//! lease with `FOR UPDATE SKIP LOCKED`, so that concurrent claimers never take the same notice
//! and never wait for each other.
//!
//! The semantics are `SqliteStore::claim`'s: pending, due (`not_before` passed), not leased
//! (or the lease expired), on the asked channels, priority first then oldest; a claim leases
//! the notice to `owner` until `now + lease`, counts the attempt and marks it in doubt. A
//! notice whose earlier claim was never recorded is handed out with `in_doubt` set, so the
//! worker asks the provider before sending again.
//!
//! Why no notice goes to two claimers: the inner `SELECT … FOR UPDATE SKIP LOCKED` locks the
//! rows it picks until the claiming transaction commits, and a concurrent claim skips locked
//! rows. A claim that reaches a row only after the first committed re-checks the row's new
//! version (READ COMMITTED re-evaluates `FOR UPDATE` rows), finds its lease current and
//! leaves it.

use std::time::Duration;

use crate::ClaimedNotice;
use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, Language};
use outagecast_core::incident::{EventKind, Severity};

use crate::pg::PgStore;
use crate::{Result, StoreError};

type ClaimRow = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    bool,
    String,
    String,
    i32,
    i16,
    DateTime<Utc>,
    Option<f64>,
    Option<f64>,
);

/// `in_doubt` counts unrecorded claims capped at 2, as on SQLite: a returned 2 means the
/// notice was already in doubt before this claim (RETURNING sees only new values).
const CLAIM_SQL: &str = "WITH picked AS (
        SELECT id FROM notices
         WHERE status = 'pending'
           AND (not_before IS NULL OR not_before <= $3)
           AND (lease_expires_at IS NULL OR lease_expires_at < $3)
           AND channel = ANY($4::text[])
         ORDER BY priority DESC, id
         LIMIT $5
         FOR UPDATE SKIP LOCKED)
    UPDATE notices n
       SET lease_owner = $1, lease_expires_at = $2, attempts = n.attempts + 1,
           in_doubt = LEAST(n.in_doubt + 1, 2), updated_at = $3
      FROM picked
     WHERE n.id = picked.id
 RETURNING n.id, n.incident_id,
           (SELECT e.kind FROM incident_events e WHERE e.id = n.event_id),
           (SELECT i.severity FROM incidents i WHERE i.id = n.incident_id),
           n.channel, n.address, n.language, n.priority, n.subject, n.body, n.attempts,
           n.in_doubt, n.created_at,
           (SELECT c.lon FROM notice_customers nc JOIN customers c ON c.id = nc.customer_id
             WHERE nc.notice_id = n.id ORDER BY nc.customer_id LIMIT 1),
           (SELECT c.lat FROM notice_customers nc JOIN customers c ON c.id = nc.customer_id
             WHERE nc.notice_id = n.id ORDER BY nc.customer_id LIMIT 1)";

impl PgStore {
    /// Leases up to `limit` due notices on `channels` to `owner` for `lease`, priority first
    /// then oldest, and marks them in doubt: one statement, safe to run on any number of
    /// nodes at once (see the module documentation). Returned priority first, then by id.
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
        let channels: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let rows: Vec<ClaimRow> = sqlx::query_as(CLAIM_SQL)
            .bind(owner)
            .bind(until)
            .bind(now)
            .bind(&channels)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
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
                    let event = event
                        .ok_or_else(|| StoreError::Corrupt(format!("notice {id} has no event")))?;
                    let severity = severity.ok_or_else(|| {
                        StoreError::Corrupt(format!("notice {id} has no incident"))
                    })?;
                    Ok(ClaimedNotice {
                        id,
                        incident_id,
                        event: stored(&event, EventKind::parse)?,
                        severity: stored(&severity, Severity::parse)?,
                        channel: stored(&channel, Channel::parse)?,
                        address,
                        language: stored(&language, Language::parse)?,
                        priority,
                        subject,
                        body,
                        attempts: u32::try_from(attempts).unwrap_or_default(),
                        in_doubt: in_doubt >= 2,
                        created_at,
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

    /// Gives `owner`'s leases back (on shutdown), so other workers need not wait for expiry.
    /// Their in-doubt mark stays: they were claimed, so they may have been sent.
    pub async fn release(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE notices SET lease_owner = NULL, lease_expires_at = NULL
             WHERE lease_owner = $1 AND status = 'pending'",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

/// Reads a stored enum spelling back, reporting damage rather than panicking.
fn stored<T>(value: &str, parse: impl Fn(&str) -> outagecast_core::Result<T>) -> Result<T> {
    parse(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

// Scaffold: not yet ported.
use crate::pg::unported;
#[allow(unused_imports)]
use crate::*;
#[allow(unused_imports)]
use outagecast_core::customer::AccountId;
impl PgStore {
    /// Not yet on PostgreSQL.
    pub async fn complete(
        &self,
        _owner: &str,
        _outcomes: &[(i64, Outcome)],
        _now: DateTime<Utc>,
    ) -> Result<u64> {
        Err(unported("complete"))
    }

    /// Not yet on PostgreSQL.
    pub async fn complete_and_claim(
        &self,
        _owner: &str,
        _outcomes: &[(i64, Outcome)],
        _channels: &[Channel],
        _limit: u32,
        _lease: Duration,
        _now: DateTime<Utc>,
        _locate: bool,
    ) -> Result<(u64, Vec<ClaimedNotice>)> {
        Err(unported("complete_and_claim"))
    }

    /// Not yet on PostgreSQL.
    pub async fn outbox_counts(
        &self,
        _channels: &[Channel],
        _now: DateTime<Utc>,
    ) -> Result<OutboxCounts> {
        Err(unported("outbox_counts"))
    }

    /// Not yet on PostgreSQL.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Err(unported("next_due"))
    }

    /// Not yet on PostgreSQL.
    pub async fn notice_report(
        &self,
        _incident: outagecast_core::incident::IncidentId,
    ) -> Result<Vec<ReportRow>> {
        Err(unported("notice_report"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pg::test_support::{schema_name, url};
    use std::collections::HashSet;

    const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];

    /// One incident with one event and `n` pending notices: every 7th a priority customer's,
    /// every 3rd an email, the rest SMS.
    async fn with_notices(store: &PgStore, n: i64, now: DateTime<Utc>) {
        let (incident,): (i64,) = sqlx::query_as(
            "INSERT INTO incidents (kind, severity, cause, area, status, declared_at, updated_at, declared_by)
             VALUES ('water', 'moderate', 'burst main', '{}', 'declared', $1, $1, 'test') RETURNING id",
        )
        .bind(now)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let (event,): (i64,) = sqlx::query_as(
            "INSERT INTO incident_events (incident_id, kind, at, actor)
             VALUES ($1, 'declared', $2, 'test') RETURNING id",
        )
        .bind(incident)
        .bind(now)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO notices (incident_id, event_id, channel, address, language, priority,
                                  subject, body, created_at, updated_at)
             SELECT $1, $2, CASE WHEN i % 3 = 0 THEN 'email' ELSE 'sms' END,
                    '+35848' || lpad(i::text, 7, '0'), 'fi', i % 7 = 0, 'Katko', 'Vesikatko', $3, $3
               FROM generate_series(1, $4::int8) AS i",
        )
        .bind(incident)
        .bind(event)
        .bind(now)
        .bind(n)
        .execute(&store.pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_claim_leases_priority_first_and_an_expired_lease_comes_back_in_doubt() {
        let Some(url) =
            url("a_claim_leases_priority_first_and_an_expired_lease_comes_back_in_doubt")
        else {
            return;
        };
        let store = PgStore::connect_schema(&url, &schema_name("claim"))
            .await
            .unwrap();
        let now = Utc::now();
        with_notices(&store, 30, now).await;
        let lease = Duration::from_secs(60);

        let a = store.claim("a", &ALL, 5, lease, now).await.unwrap();
        // Priority notices are 7, 14, 21, 28; then the oldest, 1.
        assert_eq!(
            a.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![7, 14, 21, 28, 1]
        );
        assert!(a.iter().all(|n| n.attempts == 1 && !n.in_doubt));
        assert_eq!(a[0].event, EventKind::Declared);
        assert_eq!(a[0].severity, Severity::Moderate);

        // Email only: the next due email (3), not what a holds.
        let b = store
            .claim("b", &[Channel::Email], 1, lease, now)
            .await
            .unwrap();
        assert_eq!(b.iter().map(|n| n.id).collect::<Vec<_>>(), vec![3]);

        // Not yet due: a notice held back until later is left alone.
        sqlx::query("UPDATE notices SET not_before = $1 WHERE id = 2")
            .bind(now + chrono::Duration::minutes(10))
            .execute(&store.pool)
            .await
            .unwrap();
        let c = store.claim("c", &ALL, 1, lease, now).await.unwrap();
        assert_eq!(c[0].id, 4);

        // a dies; after its lease, d gets a's notices back, in doubt, on their second attempt.
        let later = now + chrono::Duration::seconds(61);
        let d = store.claim("d", &ALL, 5, lease, later).await.unwrap();
        assert_eq!(
            d.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![7, 14, 21, 28, 1]
        );
        assert!(d.iter().all(|n| n.in_doubt && n.attempts == 2));

        assert_eq!(store.release("d").await.unwrap(), 5);
        let again = store.claim("e", &ALL, 1, lease, later).await.unwrap();
        assert_eq!(again[0].id, 7, "released leases are claimable at once");
        assert!(again[0].in_doubt, "releasing keeps the in-doubt mark");
        store.drop_schema().await.unwrap();
    }

    /// Two engine nodes (two stores, two pools) and four workers on each, claiming small
    /// batches as fast as they can: every notice is claimed exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claimers_never_get_the_same_notice() {
        let Some(url) = url("concurrent_claimers_never_get_the_same_notice") else {
            return;
        };
        let schema = schema_name("concurrent");
        let node_a = PgStore::connect_schema(&url, &schema).await.unwrap();
        let node_b = PgStore::connect_schema(&url, &schema).await.unwrap();
        let now = Utc::now();
        const N: i64 = 3_000;
        with_notices(&node_a, N, now).await;

        let mut workers = Vec::new();
        for (node, store) in [("a", &node_a), ("b", &node_b)] {
            for w in 0..4 {
                let store = store.clone();
                let owner = format!("{node}{w}");
                workers.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let batch = store
                            .claim(&owner, &ALL, 7, Duration::from_secs(300), now)
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            // Skipped rows may have been locked by a claim that is still
                            // committing: one more look after it settles.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let batch = store
                                .claim(&owner, &ALL, 7, Duration::from_secs(300), now)
                                .await
                                .unwrap();
                            if batch.is_empty() {
                                return (owner, got);
                            }
                            got.extend(batch.into_iter().map(|n| n.id));
                            continue;
                        }
                        got.extend(batch.into_iter().map(|n| n.id));
                    }
                }));
            }
        }
        let mut seen: HashSet<i64> = HashSet::new();
        let mut busy = 0;
        for worker in workers {
            let (owner, got) = worker.await.unwrap();
            if !got.is_empty() {
                busy += 1;
            }
            for id in got {
                assert!(
                    seen.insert(id),
                    "notice {id} was claimed twice (again by {owner})"
                );
            }
        }
        assert_eq!(seen.len() as i64, N, "every notice was claimed");
        assert!(busy >= 2, "the claims were spread over several workers");
        let (leased,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notices WHERE attempts = 1 AND in_doubt = 1")
                .fetch_one(&node_a.pool)
                .await
                .unwrap();
        assert_eq!(leased, N, "each notice counted one attempt");
        node_b.close().await;
        node_a.drop_schema().await.unwrap();
    }
}
