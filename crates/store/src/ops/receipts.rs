//! Delivery receipts, opt-outs that also withdraw what is still waiting in the outbox, and
//! opting back in (START).

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};

use crate::Result;
use crate::backend::{Backend, Record, Sql};
use crate::model::receipts::{EARLY_RECEIPT_TTL, Receipt, ReceiptOutcome};
use crate::model::stored;
use crate::ops::{audit, customers, outbox};

/// Records a delivery receipt for the SMS with the provider's message id `provider_id`.
/// Delivered sets `delivered_at`; failed records the reason and, like a failed send, falls
/// back to email for the same accounts. Only a `sent` notice changes. A receipt for an id no
/// notice has yet (the worker has not recorded its send) is parked and applied when it is.
pub(crate) async fn record_receipt<B: Backend>(
    b: &B,
    provider_id: &str,
    receipt: &Receipt,
    now: DateTime<Utc>,
) -> Result<ReceiptOutcome> {
    let mut tx = b.begin().await?;
    let mut changed = apply_receipt::<B>(&mut tx, provider_id, receipt, now).await?;
    // The id may be being recorded right now: wait for every `complete` storing ids to commit
    // (and keep new ones out until this receipt is settled), then look again.
    if changed.is_empty() && B::hold_provider_ids(&mut tx).await? {
        changed = apply_receipt::<B>(&mut tx, provider_id, receipt, now).await?;
    }
    let outcome = if !changed.is_empty() {
        if matches!(receipt, Receipt::Failed { .. }) {
            for id in changed {
                outbox::fall_back_to_email::<B>(&mut tx, id, now).await?;
            }
        }
        ReceiptOutcome::Applied
    } else {
        let known = B::fetch_optional(
            &mut tx,
            Sql::new("SELECT id FROM notices WHERE provider_id = $1 LIMIT 1").arg(provider_id),
        )
        .await?;
        if known.is_some() {
            ReceiptOutcome::Unchanged
        } else {
            let (status, reason) = receipt.status();
            B::execute(
                &mut tx,
                Sql::new("DELETE FROM early_receipts WHERE at < $1").arg(now - EARLY_RECEIPT_TTL),
            )
            .await?;
            B::execute(
                &mut tx,
                Sql::new(
                    "INSERT INTO early_receipts (provider_id, status, reason, at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (provider_id) DO UPDATE SET
                       status = excluded.status, reason = excluded.reason, at = excluded.at",
                )
                .arg(provider_id)
                .arg(status)
                .arg(reason)
                .arg(now),
            )
            .await?;
            ReceiptOutcome::Waiting
        }
    };
    B::commit(tx).await?;
    Ok(outcome)
}

/// Marks the `sent` SMS notices with this provider id delivered or failed; returns their ids.
async fn apply_receipt<B: Backend>(
    c: &mut B::Conn,
    provider_id: &str,
    receipt: &Receipt,
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let (status, reason) = receipt.status();
    let rows = B::fetch_all(
        c,
        Sql::new(
            "UPDATE notices SET status = $1,
                    delivered_at = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at END,
                    last_error = CASE WHEN $1 = 'failed' THEN $3 ELSE last_error END,
                    updated_at = $2
              WHERE provider_id = $4 AND channel = 'sms' AND status = 'sent'
             RETURNING id",
        )
        .arg(status)
        .arg(now)
        .arg(reason)
        .arg(provider_id),
    )
    .await?;
    rows.iter().map(|r| r.i64(0)).collect()
}

/// Opts a contact out of a channel at once: records the opt-out (idempotent) and withdraws its
/// notices still waiting in the outbox (`superseded`, reason "opted out"); a notice a worker
/// holds right now finishes. Returns how many notices were withdrawn.
pub(crate) async fn opt_out_and_withdraw<B: Backend>(
    b: &B,
    channel: Channel,
    address: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut tx = b.begin().await?;
    let inserted = customers::insert_opt_out::<B>(&mut tx, channel, address, source, now).await?;
    // Withdrawn at once unless handed over to the provider (then it may be on the wire and is
    // left to finish); a worker that only claimed it cannot hand it over now. On PostgreSQL a
    // notice being handed over right now is locked by that; this waits and sees the mark.
    let withdrawn = B::execute(
        &mut tx,
        Sql::new(
            "UPDATE notices SET status = 'superseded', last_error = 'opted out', in_doubt = 0,
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
             WHERE channel = $2 AND address = $3 AND status = 'pending' AND in_doubt = 0",
        )
        .arg(now)
        .arg(channel.as_str())
        .arg(address),
    )
    .await?;
    if inserted || withdrawn > 0 {
        audit::write::<B>(
            &mut tx,
            source,
            "contact.opt_out",
            None,
            &serde_json::json!({ "channel": channel.as_str(), "withdrawn": withdrawn }),
            now,
        )
        .await?;
    }
    B::commit(tx).await?;
    Ok(withdrawn)
}

/// Opts a contact back in (START). Returns whether it had been opted out. Notices withdrawn
/// while it was out stay withdrawn; the next event reaches it again.
pub(crate) async fn opt_in<B: Backend>(
    b: &B,
    channel: Channel,
    address: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = b.begin().await?;
    let removed = B::execute(
        &mut tx,
        Sql::new("DELETE FROM opt_outs WHERE channel = $1 AND address = $2")
            .arg(channel.as_str())
            .arg(address),
    )
    .await?;
    if removed > 0 {
        audit::write::<B>(
            &mut tx,
            source,
            "contact.opt_in",
            None,
            &serde_json::json!({ "channel": channel.as_str() }),
            now,
        )
        .await?;
    }
    B::commit(tx).await?;
    Ok(removed > 0)
}

/// Whether a contact has opted out of a channel.
pub(crate) async fn is_opted_out<B: Backend>(
    b: &B,
    channel: Channel,
    address: &str,
) -> Result<bool> {
    let row = B::fetch_optional(
        &mut *b.conn().await?,
        Sql::new("SELECT 1 FROM opt_outs WHERE channel = $1 AND address = $2")
            .arg(channel.as_str())
            .arg(address),
    )
    .await?;
    Ok(row.is_some())
}

/// The preferred language of a customer with this phone number (E.164) or email address, for
/// replying in it; the first account found when several share it.
pub(crate) async fn contact_language<B: Backend>(b: &B, address: &str) -> Result<Option<Language>> {
    let row = B::fetch_optional(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT cu.language FROM contacts c JOIN customers cu ON cu.id = c.customer_id
             WHERE c.value = $1 ORDER BY cu.id LIMIT 1",
        )
        .arg(address),
    )
    .await?;
    row.map(|r| stored(&r.text(0)?, Language::parse))
        .transpose()
}
