//! Delivery receipts and opt-outs on PostgreSQL: the semantics of the SQLite store's
//! `receipts.rs`. Opt-outs are keyed by contact (channel + address), never by account.
//!
//! One difference of means, not of outcome: SQLite's single writer orders a receipt against
//! the `complete` that records its message id; here a receipt for an unknown id takes
//! [`EARLY_RECEIPT_LOCK`] exclusively and looks again before it waits, so it is either
//! applied at once or parked where the early-receipt trigger of the recording `complete`
//! finds it.

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use sqlx::{Postgres, Transaction};

use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::pg::outbox::{EARLY_RECEIPT_LOCK, fall_back_to_email};
use crate::receipts::EARLY_RECEIPT_TTL;
use crate::{Receipt, ReceiptOutcome, Result, stored};

impl PgStore {
    /// Records a delivery receipt for the SMS with the provider's message id `provider_id`.
    /// Delivered sets `delivered_at`; failed records the reason and, like a failed send, falls
    /// back to email for the same accounts. Only a `sent` notice changes.
    pub async fn record_receipt(
        &self,
        provider_id: &str,
        receipt: &Receipt,
        now: DateTime<Utc>,
    ) -> Result<ReceiptOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut changed = apply_receipt(&mut tx, provider_id, receipt, now).await?;
        if changed.is_empty() {
            // The id may be being recorded right now: wait for every `complete` storing ids
            // to commit, and keep new ones out until this receipt is settled.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EARLY_RECEIPT_LOCK)
                .execute(&mut *tx)
                .await?;
            changed = apply_receipt(&mut tx, provider_id, receipt, now).await?;
        }
        let outcome = if !changed.is_empty() {
            if matches!(receipt, Receipt::Failed { .. }) {
                for id in changed {
                    fall_back_to_email(&mut tx, id, now).await?;
                }
            }
            ReceiptOutcome::Applied
        } else {
            let known: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM notices WHERE provider_id = $1 LIMIT 1")
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
                sqlx::query("DELETE FROM early_receipts WHERE at < $1")
                    .bind(now - EARLY_RECEIPT_TTL)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO early_receipts (provider_id, status, reason, at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (provider_id) DO UPDATE SET
                       status = excluded.status, reason = excluded.reason, at = excluded.at",
                )
                .bind(provider_id)
                .bind(status)
                .bind(reason)
                .bind(now)
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
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO opt_outs (channel, address, at, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(address)
        .bind(now)
        .bind(source)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Withdrawn at once unless handed over to the provider (then it may be on the wire and
        // is left to finish); a worker that only claimed it cannot hand it over now. A notice
        // being handed over right now is locked by that; this waits and sees the mark.
        let withdrawn = sqlx::query(
            "UPDATE notices SET status = 'superseded', last_error = 'opted out', in_doubt = 0,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
             WHERE channel = $2 AND address = $3 AND status = 'pending' AND in_doubt = 0",
        )
        .bind(now)
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
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query("DELETE FROM opt_outs WHERE channel = $1 AND address = $2")
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
        let (out,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM opt_outs WHERE channel = $1 AND address = $2)",
        )
        .bind(channel.as_str())
        .bind(address)
        .fetch_one(&self.pool)
        .await?;
        Ok(out)
    }

    /// The preferred language of a customer with this phone number (E.164) or email address,
    /// for replying in it; the first account found when several share it.
    pub async fn contact_language(&self, address: &str) -> Result<Option<Language>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT cu.language FROM contacts c JOIN customers cu ON cu.id = c.customer_id
             WHERE c.value = $1 ORDER BY cu.id LIMIT 1",
        )
        .bind(address)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(l,)| stored(&l, Language::parse)).transpose()
    }
}

/// Marks the `sent` SMS notices with this provider id delivered or failed; returns their ids.
async fn apply_receipt(
    tx: &mut Transaction<'static, Postgres>,
    provider_id: &str,
    receipt: &Receipt,
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let (status, reason) = match receipt {
        Receipt::Delivered => ("delivered", None),
        Receipt::Failed { reason } => ("failed", Some(reason.as_str())),
    };
    let rows: Vec<(i64,)> = sqlx::query_as(
        "UPDATE notices SET status = $1,
                delivered_at = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at END,
                last_error = CASE WHEN $1 = 'failed' THEN $3 ELSE last_error END,
                updated_at = $2
          WHERE provider_id = $4 AND channel = 'sms' AND status = 'sent'
         RETURNING id",
    )
    .bind(status)
    .bind(now)
    .bind(reason)
    .bind(provider_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Outcome;
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
                    d.complete("w", &sent, now),
                    w.record_receipt(&provider_id, &Receipt::Delivered, now)
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
