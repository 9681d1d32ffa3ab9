//! What comes back from customers and providers: delivery receipts by the provider's message
//! id, opt-outs (STOP, one-click unsubscribe) that also withdraw what is still waiting in the
//! outbox, and opting back in (START).
//!
//! Opt-outs are keyed by contact (channel + address), never by account, so they survive
//! customer re-imports.

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};

use crate::{Result, SqliteStore, audit, stored, ts};

/// How long a receipt for an unknown message id waits for its notice.
pub(crate) const EARLY_RECEIPT_TTL: chrono::Duration = chrono::Duration::days(1);

/// A final delivery report from the SMS provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// The handset has it.
    Delivered,
    /// It will never arrive: the provider's status and error code.
    Failed {
        /// For the operator, e.g. `undelivered: error 30003`.
        reason: String,
    },
}

/// What recording a receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// The notice was updated.
    Applied,
    /// The notice was already final (a duplicate or out-of-order receipt); nothing changed.
    Unchanged,
    /// No notice has this id yet (the worker has not recorded it): the receipt waits and is
    /// applied when it does.
    Waiting,
}

impl SqliteStore {
    /// Records a delivery receipt for the SMS with the provider's message id `provider_id`.
    /// Delivered sets `delivered_at`; failed records the reason and, like a failed send, falls
    /// back to email for the same accounts. Only a `sent` notice changes.
    pub async fn record_receipt(
        &self,
        provider_id: &str,
        receipt: &Receipt,
        now: DateTime<Utc>,
    ) -> Result<ReceiptOutcome> {
        let now_s = ts(now);
        let mut tx = self.write_tx().await?;
        let changed: Vec<(i64,)> = match receipt {
            Receipt::Delivered => {
                sqlx::query_as(
                    "UPDATE notices SET status = 'delivered', delivered_at = ?, updated_at = ?
                     WHERE provider_id = ? AND channel = 'sms' AND status = 'sent'
                     RETURNING id",
                )
                .bind(&now_s)
                .bind(&now_s)
                .bind(provider_id)
                .fetch_all(&mut *tx)
                .await?
            }
            Receipt::Failed { reason } => {
                sqlx::query_as(
                    "UPDATE notices SET status = 'failed', last_error = ?, updated_at = ?
                     WHERE provider_id = ? AND channel = 'sms' AND status = 'sent'
                     RETURNING id",
                )
                .bind(reason)
                .bind(&now_s)
                .bind(provider_id)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let outcome = if !changed.is_empty() {
            if matches!(receipt, Receipt::Failed { .. }) {
                for (id,) in &changed {
                    crate::outbox::fall_back_to_email(&mut tx, *id, &now_s).await?;
                }
            }
            ReceiptOutcome::Applied
        } else {
            let known: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM notices WHERE provider_id = ? LIMIT 1")
                    .bind(provider_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_some() {
                ReceiptOutcome::Unchanged
            } else {
                let (status, reason) = match receipt {
                    Receipt::Delivered => ("delivered", None),
                    Receipt::Failed { reason } => ("failed", Some(reason.as_str())),
                };
                sqlx::query("DELETE FROM early_receipts WHERE at < ?")
                    .bind(ts(now - EARLY_RECEIPT_TTL))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO early_receipts (provider_id, status, reason, at) VALUES (?, ?, ?, ?)
                     ON CONFLICT (provider_id) DO UPDATE SET
                       status = excluded.status, reason = excluded.reason, at = excluded.at",
                )
                .bind(provider_id)
                .bind(status)
                .bind(reason)
                .bind(&now_s)
                .execute(&mut *tx)
                .await?;
                ReceiptOutcome::Waiting
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Opts a contact out of a channel at once: records the opt-out (idempotent) and withdraws
    /// its notices still waiting in the outbox (`superseded`, reason "opted out"); a notice a
    /// worker holds right now finishes. Returns how many notices were withdrawn.
    pub async fn opt_out_and_withdraw(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let now_s = ts(now);
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO opt_outs (channel, address, at, source) VALUES (?, ?, ?, ?)
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(address)
        .bind(&now_s)
        .bind(source)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let withdrawn = sqlx::query(
            "UPDATE notices SET status = 'superseded', last_error = 'opted out', in_doubt = 0,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
             WHERE channel = ? AND address = ? AND status = 'pending' AND in_doubt = 0",
        )
        .bind(&now_s)
        .bind(channel.as_str())
        .bind(address)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 || withdrawn > 0 {
            audit(
                &mut tx,
                source,
                "contact.opt_out",
                None,
                &serde_json::json!({ "channel": channel.as_str(), "withdrawn": withdrawn }),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(withdrawn)
    }

    /// Opts a contact back in (START). Returns whether it had been opted out. Notices withdrawn
    /// while it was out stay withdrawn; the next event reaches it again.
    pub async fn opt_in(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let removed = sqlx::query("DELETE FROM opt_outs WHERE channel = ? AND address = ?")
            .bind(channel.as_str())
            .bind(address)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            audit(
                &mut tx,
                source,
                "contact.opt_in",
                None,
                &serde_json::json!({ "channel": channel.as_str() }),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Whether a contact has opted out of a channel.
    pub async fn is_opted_out(&self, channel: Channel, address: &str) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM opt_outs WHERE channel = ? AND address = ?")
                .bind(channel.as_str())
                .bind(address)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The preferred language of a customer with this phone number (E.164) or email address,
    /// for replying in it; the first account found when several share it.
    pub async fn contact_language(&self, address: &str) -> Result<Option<Language>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT cu.language FROM contacts c JOIN customers cu ON cu.id = c.customer_id
             WHERE c.value = ? ORDER BY cu.id LIMIT 1",
        )
        .bind(address)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(l,)| stored(&l, Language::parse)).transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::fresh;

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
            store
                .record_receipt("SM1", &Receipt::Delivered, now)
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
            store.record_receipt("SM9", &failed, now).await.unwrap(),
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
        store
            .record_receipt("SM9", &Receipt::Delivered, now)
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
