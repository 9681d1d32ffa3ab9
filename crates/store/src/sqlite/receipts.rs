//! What only SQLite's schema shows of receipts: `delivered_at` and the parked receipts. The
//! behaviour through the public API is in tests/contract/receipts.rs, on both backends.

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;

    use crate::SqliteStore;
    use crate::model::receipts::{Receipt, ReceiptOutcome};
    use crate::model::ts;
    use crate::ops::receipts::record_receipt;
    use crate::sqlite::test_support::fresh;

    /// A customer with a mobile and an email, an incident, and one SMS notice in `status`.
    /// Written directly, so these tests depend on nothing but the schema.
    async fn seeded(status: &str, provider_id: Option<&str>) -> (SqliteStore, tempfile::TempDir) {
        let (store, dir) = fresh().await;
        let now = ts(Utc::now());
        for sql in [
            "INSERT INTO customers (id, account_id, lon, lat, address, language, priority, created_at, updated_at)
             VALUES (1, 'A', 24.94, 60.17, 'Kaivokatu 1', 'sv', 0, ?1, ?1)",
            "INSERT INTO contacts (customer_id, medium, value, kind, position) VALUES
             (1, 'phone', '+358401234567', 'mobile', 0), (1, 'email', 'a@example.fi', NULL, 1)",
            "INSERT INTO incidents (id, kind, severity, cause, area, status, declared_at, updated_at, declared_by)
             VALUES (1, 'water', 'moderate', 'burst main', '{}', 'declared', ?1, ?1, 'test')",
            "INSERT INTO incident_events (id, incident_id, kind, at, actor) VALUES (1, 1, 'declared', ?1, 'test')",
        ] {
            sqlx::query(sql).bind(&now).execute(&store.pool).await.unwrap();
        }
        sqlx::query(
            "INSERT INTO notices (id, incident_id, event_id, channel, address, language, priority, subject, body, status, provider_id, created_at, updated_at)
             VALUES (1, 1, 1, 'sms', '+358401234567', 'sv', 0, 's', 'b', ?, ?, ?, ?)",
        )
        .bind(status)
        .bind(provider_id)
        .bind(&now)
        .bind(&now)
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO notice_customers (notice_id, customer_id) VALUES (1, 1)")
            .execute(&store.pool)
            .await
            .unwrap();
        (store, dir)
    }

    async fn notices(store: &SqliteStore) -> Vec<(String, String, Option<String>, Option<String>)> {
        sqlx::query_as("SELECT channel, status, last_error, delivered_at FROM notices ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    // What only the schema shows: `delivered_at` and the parked receipts. The behaviour
    // through the public API is in tests/contract/receipts.rs, on both backends.

    #[tokio::test]
    async fn a_delivered_receipt_sets_delivered_at() {
        let (store, _dir) = seeded("sent", Some("SM1")).await;
        let now = Utc::now();
        assert_eq!(
            record_receipt(&store, "SM1", &Receipt::Delivered, now)
                .await
                .unwrap(),
            ReceiptOutcome::Applied
        );
        let rows = notices(&store).await;
        assert_eq!(rows[0].1, "delivered");
        assert_eq!(rows[0].3.as_deref(), Some(ts(now).as_str()));
    }

    #[tokio::test]
    async fn an_applied_early_receipt_is_no_longer_waiting() {
        let (store, _dir) = seeded("pending", None).await;
        let now = Utc::now();
        let failed = Receipt::Failed {
            reason: "failed: error 30005".into(),
        };
        assert_eq!(
            record_receipt(&store, "SM9", &failed, now).await.unwrap(),
            ReceiptOutcome::Waiting
        );
        // What the worker's `complete` does for a sent notice.
        sqlx::query(
            "UPDATE notices SET status = 'sent', provider_id = 'SM9', last_error = NULL, updated_at = ? WHERE id = 1",
        )
        .bind(ts(now))
        .execute(&store.pool)
        .await
        .unwrap();
        assert_eq!(notices(&store).await[0].1, "failed");
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM early_receipts")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn an_early_delivered_receipt_sets_delivered_at() {
        let (store, _dir) = seeded("pending", None).await;
        let now = Utc::now();
        record_receipt(&store, "SM9", &Receipt::Delivered, now)
            .await
            .unwrap();
        sqlx::query("UPDATE notices SET status = 'sent', provider_id = 'SM9' WHERE id = 1")
            .execute(&store.pool)
            .await
            .unwrap();
        let rows = notices(&store).await;
        assert_eq!(rows.len(), 1, "no fallback for a delivered message");
        assert_eq!(rows[0].1, "delivered");
        assert_eq!(rows[0].3.as_deref(), Some(ts(now).as_str()));
    }
}
