//! Voice calls: what a call's final status callback does to its notice, and how many calls are
//! in progress (the simultaneous-calls cap, shared by every node through the store).

use chrono::{DateTime, Utc};

use outagecast_core::contact::Language;

use crate::Result;
use crate::backend::{Backend, Record, Sql};
use crate::model::receipts::{CallOutcome, CallResult, CallRetry};
use crate::model::stored;

/// Records the final status of the call with the provider's sid `provider_id`: answered
/// (a person or a voicemail) → delivered; busy or no answer → pending again after
/// `retry.delay` while fewer than `retry.attempts` calls were made, else failed; failed or
/// canceled → failed with the reason. Every call is kept in `call_attempts` for the report.
/// Only a `sent` voice notice changes, once per call sid (a repeated callback is `Unchanged`).
pub(crate) async fn record_call_status<B: Backend>(
    b: &B,
    provider_id: &str,
    result: &CallResult,
    retry: CallRetry,
    now: DateTime<Utc>,
) -> Result<CallOutcome> {
    let mut tx = b.begin().await?;
    let find = || {
        Sql::built(format!(
            "SELECT id FROM notices WHERE provider_id = $1 AND channel = 'voice' AND status = 'sent'{}",
            B::LOCK_ROWS
        ))
        .arg(provider_id.to_string())
    };
    let mut row = B::fetch_optional(&mut tx, find()).await?;
    // The sid may be being recorded right now: wait for the `complete`s storing ids, then
    // look again (as delivery receipts do).
    if row.is_none() && B::hold_provider_ids(&mut tx).await? {
        row = B::fetch_optional(&mut tx, find()).await?;
    }
    let Some(row) = row else {
        let known = B::fetch_optional(
            &mut tx,
            Sql::new("SELECT 1 FROM call_attempts WHERE provider_id = $1").arg(provider_id),
        )
        .await?;
        B::commit(tx).await?;
        return Ok(if known.is_some() {
            CallOutcome::Unchanged
        } else {
            CallOutcome::Unknown
        });
    };
    let id = row.i64(0)?;
    let answered_by = match result {
        CallResult::Answered { by } => by.clone(),
        _ => None,
    };
    let inserted = B::execute(
        &mut tx,
        Sql::new(
            "INSERT INTO call_attempts (provider_id, notice_id, outcome, answered_by, at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider_id) DO NOTHING",
        )
        .arg(provider_id)
        .arg(id)
        .arg(result.outcome())
        .arg(answered_by)
        .arg(now),
    )
    .await?;
    if inserted == 0 {
        B::commit(tx).await?;
        return Ok(CallOutcome::Unchanged);
    }
    let calls = B::fetch_one(
        &mut tx,
        Sql::new("SELECT COUNT(*) FROM call_attempts WHERE notice_id = $1").arg(id),
    )
    .await?
    .i64(0)?;
    let calls = u32::try_from(calls).unwrap_or(u32::MAX);
    let fail = |reason: String| {
        Sql::new(
            "UPDATE notices SET status = 'failed', last_error = $1, updated_at = $2 WHERE id = $3",
        )
        .arg(reason)
        .arg(now)
        .arg(id)
    };
    let outcome = match result {
        CallResult::Answered { .. } => {
            B::execute(
                &mut tx,
                Sql::new(
                    "UPDATE notices SET status = 'delivered', delivered_at = $1, last_error = NULL,
                            updated_at = $1 WHERE id = $2",
                )
                .arg(now)
                .arg(id),
            )
            .await?;
            CallOutcome::Delivered
        }
        CallResult::Unanswered { status } if calls < retry.attempts => {
            let at = now + retry.delay;
            let reason = format!(
                "{status} on call {calls} of {}: calling again at {}",
                retry.attempts,
                at.format("%Y-%m-%d %H:%M:%S UTC")
            );
            // Pending again, due after the delay: claimed and called like any waiting notice
            // (the hand-over fence still applies: a closed incident's call is withdrawn).
            B::execute(
                &mut tx,
                Sql::new(
                    "UPDATE notices SET status = 'pending', not_before = $1, provider_id = NULL,
                            in_doubt = 0, lease_owner = NULL, lease_expires_at = NULL,
                            last_error = $2, updated_at = $3
                      WHERE id = $4",
                )
                .arg(at)
                .arg(reason)
                .arg(now)
                .arg(id),
            )
            .await?;
            CallOutcome::CallAgain { at }
        }
        CallResult::Unanswered { status } => {
            let reason = format!(
                "{status} on call {calls} of {} (no more calls: OUTAGECAST_VOICE_ATTEMPTS)",
                retry.attempts
            );
            B::execute(&mut tx, fail(reason.clone())).await?;
            CallOutcome::Failed { reason }
        }
        CallResult::Failed { status, reason } => {
            let reason = match reason {
                Some(code) => format!("call {status}: error {code}"),
                None => format!("call {status}"),
            };
            B::execute(&mut tx, fail(reason.clone())).await?;
            CallOutcome::Failed { reason }
        }
    };
    B::commit(tx).await?;
    Ok(outcome)
}

/// Voice notices sent since `since` and not yet settled by a status callback: the calls that
/// may still be ringing or talking (a call is counted no longer than the longest call).
pub(crate) async fn calls_in_progress<B: Backend>(b: &B, since: DateTime<Utc>) -> Result<u64> {
    let row = B::fetch_one(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT COUNT(*) FROM notices
              WHERE channel = 'voice' AND status = 'sent' AND sent_at >= $1",
        )
        .arg(since),
    )
    .await?;
    Ok(u64::try_from(row.i64(0)?).unwrap_or_default())
}

/// The sids of voice calls placed before `sent_before` whose final status never came (a lost
/// callback: the node was down, or the call was found by a look-up after its callback gave
/// up), oldest first, at most `limit`: the dispatcher asks the provider about each.
pub(crate) async fn unsettled_calls<B: Backend>(
    b: &B,
    sent_before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<String>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT provider_id FROM notices
              WHERE channel = 'voice' AND status = 'sent' AND provider_id IS NOT NULL
                AND sent_at < $1
              ORDER BY sent_at, id LIMIT $2",
        )
        .arg(sent_before)
        .arg(i64::from(limit)),
    )
    .await?;
    rows.iter().map(|r| r.text(0)).collect()
}

/// Calls placed, by final outcome (`answered`, `busy`, `no-answer`, `failed`, `canceled`),
/// for `/metrics`.
pub(crate) async fn call_totals<B: Backend>(b: &B) -> Result<Vec<(String, u64)>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new("SELECT outcome, COUNT(*) FROM call_attempts GROUP BY outcome ORDER BY outcome"),
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.text(0)?, u64::try_from(r.i64(1)?).unwrap_or_default())))
        .collect()
}

/// The text and language of the voice notice whose call has the sid `provider_id` (for the
/// gather's "press 1 to hear it again").
pub(crate) async fn call_text<B: Backend>(
    b: &B,
    provider_id: &str,
) -> Result<Option<(String, Language)>> {
    let row = B::fetch_optional(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT body, language FROM notices WHERE provider_id = $1 AND channel = 'voice'
              ORDER BY id LIMIT 1",
        )
        .arg(provider_id),
    )
    .await?;
    row.map(|r| Ok((r.text(0)?, stored(&r.text(1)?, Language::parse)?)))
        .transpose()
}
