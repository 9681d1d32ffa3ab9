//! The outbox statements PostgreSQL says its own way (the scripts are in
//! `crate::ops::outbox`), for several dispatchers on several engine nodes: the claim with
//! `FOR UPDATE SKIP LOCKED`, so that concurrent claimers never take the same notice and never
//! wait for each other; leases on one clock, the database's (`now()`); the hand-over reading
//! the incident rows `FOR SHARE`; outcomes written from arrays (`UNNEST`); and the advisory
//! lock that orders recording a sent SMS against a receipt that arrives before it.
//!
//! Why no notice goes to two claimers: the inner `SELECT … FOR UPDATE SKIP LOCKED` locks the
//! rows it picks until the claiming transaction commits, and a concurrent claim skips locked
//! rows. A claim that reaches a row only after the first committed re-checks the row's new
//! version (READ COMMITTED re-evaluates `FOR UPDATE` rows), finds its lease current and
//! leaves it.
//!
//! Recording outcomes changes only notices still pending and leased to `owner`, so a node
//! whose lease expired and was reclaimed cannot overwrite the new holder's result (an update
//! waiting on the new holder's claim re-checks `lease_owner` once that commits).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use crate::Result;
use crate::backend::{ClaimQuery, OutcomeWrite, Sql};

/// The advisory lock that orders recording a sent SMS against a delivery receipt that arrives
/// before it: `complete` holds it shared while it stores provider ids, `record_receipt` takes
/// it exclusively before parking a receipt for an id it does not know. On SQLite the single
/// writer gives this order for free; here, without it, a receipt parked while the `complete`
/// that records its id is still uncommitted would be missed by the early-receipt trigger (which
/// looked before the receipt was visible) and wait forever. The key is arbitrary (ASCII
/// "oc-recpt").
pub(super) const EARLY_RECEIPT_LOCK: i64 = 0x6f63_2d72_6563_7074;

/// The claim: `$1` owner, `$2` the lease in seconds, `$3` now, `$4` channels, `$5` limit, `$6` whether
/// to look up the first account's service point (a phone shared by several accounts is one
/// notice). The claim leaves `in_doubt` as it is: only a hand-over sets it.
///
/// `picked` is `MATERIALIZED` so that it runs (and locks) exactly once, whatever join the
/// planner picks for the update.
const CLAIM_SQL: &str = "WITH picked AS MATERIALIZED (
        SELECT id FROM notices
         WHERE status = 'pending'
           AND (not_before IS NULL OR not_before <= $3)
           AND (lease_expires_at IS NULL OR lease_expires_at < now())
           AND channel = ANY($4::text[])
         ORDER BY priority DESC, id
         LIMIT $5
         FOR UPDATE SKIP LOCKED)
    UPDATE notices n
       SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
           attempts = n.attempts + 1,
           updated_at = $3
      FROM picked
      LEFT JOIN LATERAL (
           SELECT c.lon, c.lat FROM notice_customers nc JOIN customers c ON c.id = nc.customer_id
            WHERE nc.notice_id = picked.id AND $6::boolean
            ORDER BY nc.customer_id LIMIT 1) loc ON true
     WHERE n.id = picked.id
 RETURNING n.id, n.incident_id,
           (SELECT e.kind FROM incident_events e WHERE e.id = n.event_id) AS event,
           (SELECT i.severity FROM incidents i WHERE i.id = n.incident_id) AS severity,
           n.channel, n.address, n.language, n.priority, n.subject, n.body, n.attempts,
           n.in_doubt, n.created_at, loc.lon, loc.lat";

/// The claim statement of `q` ([`CLAIM_SQL`]).
pub(super) fn claim(q: ClaimQuery<'_>) -> Sql<'_> {
    Sql::new(CLAIM_SQL)
        .arg(q.owner)
        .arg(q.lease.as_secs_f64())
        .arg(q.now)
        .arg(q.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>())
        .arg(i64::from(q.limit))
        .arg(q.locate)
}

/// Records outcomes given as parallel arrays: `$1` ids, `$2` kinds ([`Outcome::kind`]),
/// `$3` provider ids, `$4` segments, `$5` not-before times, `$6` reasons, `$7` in doubt (0/1);
/// `$8` now, `$9` the owner. Returns the ids recorded.
///
/// Held, released, deferred and withdrawn notices
/// were not attempted, so the attempt is not counted and their doubt stays as it was. A
/// deferred notice is marked held, a released one keeps its mark, any other outcome clears it. Only
/// notices still pending and leased to the owner change: an update that meets a row another
/// node has just reclaimed waits for that claim and re-checks `lease_owner` on the row's new
/// version (READ COMMITTED), so it leaves the row alone.
const COMPLETE_SQL: &str = "WITH o AS (
        SELECT * FROM UNNEST($1::int8[], $2::int2[], $3::text[], $4::int4[],
                             $5::timestamptz[], $6::text[], $7::int2[])
                   AS o(id, k, pid, seg, nb, err, doubt))
    UPDATE notices SET
           status = CASE WHEN o.k IN (1, 8) THEN 'sent' WHEN o.k = 3 THEN 'failed'
                         WHEN o.k = 7 THEN 'superseded' ELSE notices.status END,
           provider_id = CASE WHEN o.k IN (1, 8) THEN o.pid ELSE notices.provider_id END,
           segments = CASE WHEN o.k IN (1, 8) THEN o.seg ELSE notices.segments END,
           sent_at = CASE WHEN o.k IN (1, 8) THEN $8 ELSE notices.sent_at END,
           possible_duplicate = (o.k = 8 OR notices.possible_duplicate),
           not_before = CASE WHEN o.k IN (2, 4, 6) THEN o.nb ELSE notices.not_before END,
           last_error = CASE WHEN o.k IN (1, 8) THEN NULL
                             WHEN o.k IN (4, 5, 7) THEN notices.last_error
                             ELSE o.err END,
           in_doubt = CASE WHEN o.k = 2 THEN o.doubt
                           WHEN o.k IN (4, 5, 6) THEN notices.in_doubt
                           ELSE 0 END,
           attempts = CASE WHEN o.k IN (4, 5, 6, 7) THEN notices.attempts - 1
                           ELSE notices.attempts END,
           held = CASE WHEN o.k = 6 THEN true WHEN o.k = 5 THEN notices.held ELSE false END,
           lease_owner = NULL, lease_expires_at = NULL, updated_at = $8
      FROM o
     WHERE notices.id = o.id AND notices.lease_owner = $9 AND notices.status = 'pending'
 RETURNING notices.id";

/// The hand-over: `$1` now, `$2` the owner, `$3` the ids. The fence:
/// only notices still pending and leased to the owner, while their incident is open or the
/// notice belongs to its last event. The incident rows are read under `FOR SHARE`, so a
/// transition that closes the incident (it locks the row `FOR UPDATE`) either commits first
/// (and this sees the closed status) or waits for this hand-over to commit (and then sees the
/// notices in doubt, so it tells them too).
pub(super) const HAND_SQL: &str = "WITH open AS MATERIALIZED (
        SELECT i.id, i.status, (SELECT MAX(e.id) FROM incident_events e WHERE e.incident_id = i.id) AS last_event
          FROM incidents i
         WHERE i.id IN (SELECT incident_id FROM notices WHERE id = ANY($3::int8[]))
           FOR SHARE OF i)
    UPDATE notices n SET in_doubt = 1, updated_at = $1
      FROM open
     WHERE n.id = ANY($3::int8[]) AND open.id = n.incident_id
       AND n.lease_owner = $2 AND n.status = 'pending'
       AND (open.status IN ('declared', 'updated') OR n.event_id = open.last_event)
 RETURNING n.id, n.subject, n.body";

/// Writes the outcomes of `w` with [`COMPLETE_SQL`], as parallel arrays; returns the ids
/// recorded.
pub(super) async fn write_outcomes(tx: &mut PgConnection, w: OutcomeWrite<'_>) -> Result<Vec<i64>> {
    let rows = w.outcomes;
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut kinds: Vec<i16> = Vec::with_capacity(n);
    let mut pids: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut segs: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut nbs: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut errs: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut doubts: Vec<i16> = Vec::with_capacity(n);
    for (id, outcome) in rows {
        let c = outcome.columns();
        ids.push(*id);
        kinds.push(c.kind);
        pids.push(c.provider_id);
        segs.push(c.segments);
        nbs.push(c.not_before);
        errs.push(c.reason);
        doubts.push(i16::from(c.in_doubt));
    }
    // Lock the rows in id order first: an UPDATE … FROM UNNEST locks them in whatever order
    // its plan visits them, and two nodes recording overlapping notices (a stale holder and
    // the one that took its leases over) then deadlock. One order for every writer cannot.
    // (Claims skip locked rows and never wait.)
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sqlx::query("SELECT id FROM notices WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&sorted)
        .execute(&mut *tx)
        .await?;
    let recorded: Vec<(i64,)> = sqlx::query_as(COMPLETE_SQL)
        .bind(&ids)
        .bind(&kinds)
        .bind(&pids)
        .bind(&segs)
        .bind(&nbs)
        .bind(&errs)
        .bind(&doubts)
        .bind(w.now)
        .bind(w.owner)
        .fetch_all(tx)
        .await?;
    Ok(recorded.into_iter().map(|(id,)| id).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use outagecast_core::contact::Channel;
    use outagecast_core::incident::{EventKind, Severity};

    use crate::ops::outbox::{claim, complete, release, round_trip};
    use crate::pg::PgStore;
    use crate::pg::test_support::{schema_name, url};
    use crate::{Outcome, RoundTrip};

    const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];

    /// One incident with one event and `n` pending notices: every 7th a priority customer's,
    /// every 3rd an email, the rest SMS.
    /// Hands `ids` over for `owner`.
    async fn hand_over(store: &PgStore, owner: &str, ids: &[i64], now: DateTime<Utc>) {
        let done = round_trip(
            store,
            RoundTrip {
                owner,
                outcomes: &[],
                hand: ids,
                renew: false,
                claim: None,
                lease: Duration::from_secs(60),
                now,
            },
        )
        .await
        .unwrap();
        assert_eq!(done.handed.len(), ids.len());
    }

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
        // Leases run on the database's clock: a's is short, so that it lapses during the test.
        let short = Duration::from_millis(800);

        let a = claim(&store, "a", &ALL, 5, short, now).await.unwrap();
        // Priority notices are 7, 14, 21, 28; then the oldest, 1.
        assert_eq!(
            a.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![7, 14, 21, 28, 1]
        );
        assert!(a.iter().all(|n| n.attempts == 1 && !n.in_doubt));
        assert_eq!(a[0].event, EventKind::Declared);
        assert_eq!(a[0].severity, Severity::Moderate);

        // Email only: the next due email (3), not what a holds.
        let b = claim(&store, "b", &[Channel::Email], 1, lease, now)
            .await
            .unwrap();
        assert_eq!(b.iter().map(|n| n.id).collect::<Vec<_>>(), vec![3]);

        // Not yet due: a notice held back until later is left alone.
        sqlx::query("UPDATE notices SET not_before = $1 WHERE id = 2")
            .bind(now + chrono::Duration::minutes(10))
            .execute(&store.pool)
            .await
            .unwrap();
        let c = claim(&store, "c", &ALL, 1, lease, now).await.unwrap();
        assert_eq!(c[0].id, 4);

        // a hands 7 over and dies; after its lease, d gets a's notices back on their second
        // attempt, only 7 in doubt.
        hand_over(&store, "a", &[7], now).await;
        tokio::time::sleep(short + Duration::from_millis(200)).await;
        let later = Utc::now();
        let d = claim(&store, "d", &ALL, 5, lease, later).await.unwrap();
        assert_eq!(
            d.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![7, 14, 21, 28, 1]
        );
        assert!(
            d.iter()
                .all(|n| n.in_doubt == (n.id == 7) && n.attempts == 2)
        );

        assert_eq!(release(&store, "d").await.unwrap(), 5);
        let again = claim(&store, "e", &ALL, 1, lease, later).await.unwrap();
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
                        let batch = claim(&store, &owner, &ALL, 7, Duration::from_secs(300), now)
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            // Skipped rows may have been locked by a claim that is still
                            // committing: one more look after it settles.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let batch =
                                claim(&store, &owner, &ALL, 7, Duration::from_secs(300), now)
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
            sqlx::query_as("SELECT COUNT(*) FROM notices WHERE attempts = 1 AND in_doubt = 0")
                .fetch_one(&node_a.pool)
                .await
                .unwrap();
        assert_eq!(
            leased, N,
            "each notice counted one attempt, none in doubt (only claimed)"
        );
        node_b.close().await;
        node_a.drop_schema().await.unwrap();
    }

    /// A node whose leases expired records its (stale) outcomes while two other nodes reclaim
    /// the same notices and record theirs: every notice ends with exactly one node's outcome,
    /// the old holder's only where nobody had reclaimed it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stale_holder_racing_the_reclaimers_never_overwrites_them() {
        let Some(url) = url("a_stale_holder_racing_the_reclaimers_never_overwrites_them") else {
            return;
        };
        let schema = schema_name("stale");
        let old = PgStore::connect_schema(&url, &schema).await.unwrap();
        let now = Utc::now();
        const N: i64 = 600;
        with_notices(&old, N, now).await;
        let lease = Duration::from_secs(60);
        let short = Duration::from_millis(800);
        let mine = claim(&old, "old", &ALL, 1000, short, now).await.unwrap();
        assert_eq!(mine.len() as i64, N);
        let ids: Vec<i64> = mine.iter().map(|n| n.id).collect();
        hand_over(&old, "old", &ids, now).await;
        // Leases run on the database's clock: wait for the old holder's to lapse.
        tokio::time::sleep(short + Duration::from_millis(200)).await;
        let later = Utc::now();

        let mut reclaimers = Vec::new();
        for k in 0..2 {
            let store = PgStore::connect_schema(&url, &schema).await.unwrap();
            reclaimers.push(tokio::spawn(async move {
                let owner = format!("new{k}");
                let mut recorded = 0;
                loop {
                    let batch = claim(&store, &owner, &ALL, 10, lease, later).await.unwrap();
                    if batch.is_empty() {
                        store.close().await;
                        return recorded;
                    }
                    assert!(batch.iter().all(|n| n.in_doubt && n.attempts == 2));
                    let sent: Vec<_> = batch
                        .iter()
                        .map(|n| {
                            let provider_id = format!("SM{}", n.id);
                            (
                                n.id,
                                Outcome::Sent {
                                    provider_id,
                                    segments: 1,
                                },
                            )
                        })
                        .collect();
                    let n = complete(&store, &owner, &sent, later).await.unwrap();
                    assert_eq!(n, sent.len() as u64, "{owner} holds what it claimed");
                    recorded += n;
                }
            }));
        }
        let stale: Vec<_> = mine
            .iter()
            .map(|n| {
                (
                    n.id,
                    Outcome::Failed {
                        reason: "stale".into(),
                    },
                )
            })
            .collect();
        let mut by_old = 0;
        for chunk in stale.chunks(20) {
            by_old += complete(&old, "old", chunk, later).await.unwrap();
        }
        let mut by_new = 0;
        for r in reclaimers {
            by_new += r.await.unwrap();
        }
        let (sent, failed, pending): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE status = 'sent' AND provider_id = 'SM' || id),
                    COUNT(*) FILTER (WHERE status = 'failed' AND last_error = 'stale'),
                    COUNT(*) FILTER (WHERE status = 'pending')
               FROM notices",
        )
        .fetch_one(&old.pool)
        .await
        .unwrap();
        assert_eq!((sent, failed, pending), (by_new as i64, by_old as i64, 0));
        assert_eq!(sent + failed, N);
        old.drop_schema().await.unwrap();
    }
}
