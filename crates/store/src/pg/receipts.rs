//! Receipts on PostgreSQL: what only several nodes show (a receipt racing the `complete` that
//! records its id). The behaviour through the public API is in tests/contract/receipts.rs.

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{DateTime, Utc};

    use crate::Outcome;
    use crate::model::receipts::{Receipt, ReceiptOutcome};
    use crate::ops::outbox::complete;
    use crate::ops::receipts::record_receipt;
    use crate::pg::PgStore;
    use crate::pg::test_support::{schema_name, url};

    /// `n` SMS notices (ids 1..=n) of one incident, claimed by `w` until `now + 5 min`.
    async fn leased(store: &PgStore, n: i64, now: DateTime<Utc>) {
        sqlx::query(
            "WITH i AS (INSERT INTO incidents (kind, severity, cause, area, status, declared_at,
                                                updated_at, declared_by)
                        VALUES ('power', 'minor', 'fault', '{}', 'declared', $1, $1, 't')
                        RETURNING id),
                  e AS (INSERT INTO incident_events (incident_id, kind, at, actor)
                        SELECT id, 'declared', $1, 't' FROM i RETURNING id, incident_id)
             INSERT INTO notices (incident_id, event_id, channel, address, language, priority,
                                  subject, body, created_at, updated_at, attempts, in_doubt,
                                  lease_owner, lease_expires_at)
             SELECT e.incident_id, e.id, 'sms', '+35850' || k, 'fi', false, 's', 'b', $1, $1,
                    1, 1, 'w', $1 + interval '5 minutes'
               FROM e, generate_series(1, $2::int8) AS k",
        )
        .bind(now)
        .bind(n)
        .execute(&store.pool)
        .await
        .unwrap();
    }

    /// Receipts racing the `complete` that records their ids, from two nodes: each is applied
    /// either at once or by the early-receipt trigger, never left waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_receipt_racing_its_send_is_never_lost() {
        let Some(url) = url("a_receipt_racing_its_send_is_never_lost") else {
            return;
        };
        let schema = schema_name("receipt_race");
        let dispatcher = PgStore::connect_schema(&url, &schema).await.unwrap();
        let webhook = PgStore::connect_schema(&url, &schema).await.unwrap();
        let now = Utc::now();
        const N: i64 = 200;
        leased(&dispatcher, N, now).await;
        let mut tasks = Vec::new();
        for id in 1..=N {
            let (d, w) = (dispatcher.clone(), webhook.clone());
            tasks.push(tokio::spawn(async move {
                let sent = [(
                    id,
                    Outcome::Sent {
                        provider_id: format!("SM{id}"),
                        segments: 1,
                    },
                )];
                let provider_id = format!("SM{id}");
                let (recorded, receipt) = tokio::join!(
                    complete(&d, "w", &sent, now),
                    record_receipt(&w, &provider_id, &Receipt::Delivered, now)
                );
                assert_eq!(recorded.unwrap(), 1);
                receipt.unwrap()
            }));
        }
        let mut waited = 0;
        for task in tasks {
            if task.await.unwrap() == ReceiptOutcome::Waiting {
                waited += 1;
            }
        }
        let (delivered, stamped): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE status = 'delivered'),
                    COUNT(*) FILTER (WHERE delivered_at = $1)
               FROM notices",
        )
        .bind(now)
        .fetch_one(&dispatcher.pool)
        .await
        .unwrap();
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM early_receipts")
            .fetch_one(&dispatcher.pool)
            .await
            .unwrap();
        assert_eq!(
            (delivered, left),
            (N, 0),
            "{waited} receipts came before their send was recorded"
        );
        assert_eq!(stamped, N, "delivered_at is the receipt's time");
        webhook.close().await;
        dispatcher.drop_schema().await.unwrap();
    }
}
