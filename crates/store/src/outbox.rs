//! The outbox as the dispatcher sees it: claim due notices under a lease, record outcomes.
//!
//! A claim marks its notices *in doubt* and leases them to one worker; recording the outcome
//! clears both. A worker that dies leaves its leases to expire; whoever claims such a notice
//! next sees `in_doubt` and must ask the provider before sending again. Only the lease holder
//! can record an outcome, so a worker that lost its lease cannot overwrite another's result.
//! On PostgreSQL the same shape is `SELECT … FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::incident::{EventKind, Severity};
use outagecast_core::notice::NoticeStatus;
use serde::Serialize;

use crate::{Result, SqliteStore, StoreError, parse_opt_ts, stored, ts};

/// A notice handed to one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedNotice {
    /// Notice id.
    pub id: i64,
    /// Incident id.
    pub incident_id: i64,
    /// The event this notice is for.
    pub event: EventKind,
    /// The incident's severity (severe and extreme bypass quiet hours).
    pub severity: Severity,
    /// SMS or email.
    pub channel: Channel,
    /// E.164 number or email address.
    pub address: String,
    /// Language of the text.
    pub language: Language,
    /// A priority customer's contact.
    pub priority: bool,
    /// Email subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Attempts including this one.
    pub attempts: u32,
    /// An earlier attempt's outcome was never recorded: it may have reached the provider.
    pub in_doubt: bool,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
}

/// The outcome of one claimed notice.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider accepted it.
    Sent {
        /// The provider's message id.
        provider_id: String,
        /// SMS segments (1 for email).
        segments: u32,
    },
    /// Try again at `not_before`.
    Retry {
        /// When.
        not_before: DateTime<Utc>,
        /// What went wrong.
        reason: String,
        /// The provider may have acted on the attempt (a timeout): ask before resending.
        in_doubt: bool,
    },
    /// Give up. A failed SMS falls back to the email addresses of its accounts.
    Failed {
        /// The provider's reason.
        reason: String,
    },
    /// Held back without an attempt (quiet hours) until `not_before`.
    Held {
        /// When.
        not_before: DateTime<Utc>,
    },
}

/// Outbox totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    /// Pending and due now.
    pub due: u64,
    /// Pending but waiting: a retry's backoff or quiet hours.
    pub waiting: u64,
    /// Leased to a worker right now.
    pub leased: u64,
    /// Sent or delivered.
    pub sent: u64,
    /// Failed.
    pub failed: u64,
}

/// One recipient's outcome, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// Notice id.
    pub notice_id: i64,
    /// Event kind.
    pub event: EventKind,
    /// Channel.
    pub channel: Channel,
    /// Number or email address.
    pub address: String,
    /// Accounts that led to it, comma separated.
    pub accounts: String,
    /// Status.
    pub status: NoticeStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// The provider's message id.
    pub provider_id: Option<String>,
    /// The last error or the provider's failure reason.
    pub last_error: Option<String>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

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
);

impl SqliteStore {
    /// Leases up to `limit` due notices on `channels` to `owner` for `lease`, priority first
    /// then oldest.
    pub async fn claim(
        &self,
        owner: &str,
        channels: &[Channel],
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedNotice>> {
        let channels = channel_list(channels)?;
        let now_s = ts(now);
        let until =
            ts(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5)));
        let mut tx = self.write_tx().await?;
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "SELECT n.id, n.incident_id, e.kind, i.severity, n.channel, n.address, n.language, n.priority,
                    n.subject, n.body, n.attempts, n.in_doubt, n.created_at
             FROM notices n
             JOIN incident_events e ON e.id = n.event_id
             JOIN incidents i ON i.id = n.incident_id
             WHERE n.status = 'pending'
               AND (n.not_before IS NULL OR n.not_before <= ?1)
               AND (n.lease_expires_at IS NULL OR n.lease_expires_at < ?1)
               AND n.channel IN (SELECT value FROM json_each(?3))
             ORDER BY n.priority DESC, n.id
             LIMIT ?2",
        )
        .bind(&now_s)
        .bind(i64::from(limit))
        .bind(&channels)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(vec![]);
        }
        let ids = serde_json::to_string(&rows.iter().map(|r| r.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE notices SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1,
                    in_doubt = 1, updated_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(owner)
        .bind(&until)
        .bind(&now_s)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
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
                        attempts: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                        in_doubt: in_doubt != 0,
                        created_at: crate::parse_ts(&created_at)?,
                    })
                },
            )
            .collect()
    }

    /// Records the outcomes of `owner`'s claimed notices in one transaction. Outcomes for
    /// notices whose lease `owner` no longer holds are ignored (another worker has them);
    /// returns how many were recorded.
    pub async fn complete(
        &self,
        owner: &str,
        outcomes: &[(i64, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let now_s = ts(now);
        let mut tx = self.write_tx().await?;
        let mut recorded = 0;
        for (id, outcome) in outcomes {
            let q = match outcome {
                Outcome::Sent { provider_id, segments } => sqlx::query(
                    "UPDATE notices SET status = 'sent', provider_id = ?, segments = ?, sent_at = ?,
                            in_doubt = 0, lease_owner = NULL, lease_expires_at = NULL, last_error = NULL,
                            updated_at = ?
                     WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                )
                .bind(provider_id)
                .bind(i64::from(*segments))
                .bind(&now_s)
                .bind(&now_s),
                Outcome::Retry { not_before, reason, in_doubt } => sqlx::query(
                    "UPDATE notices SET not_before = ?, last_error = ?, in_doubt = ?,
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                     WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                )
                .bind(ts(*not_before))
                .bind(reason)
                .bind(i64::from(*in_doubt))
                .bind(&now_s),
                Outcome::Failed { reason } => sqlx::query(
                    "UPDATE notices SET status = 'failed', last_error = ?, in_doubt = 0,
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                     WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                )
                .bind(reason)
                .bind(&now_s),
                Outcome::Held { not_before } => sqlx::query(
                    "UPDATE notices SET not_before = ?, attempts = attempts - 1, in_doubt = 0,
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                     WHERE id = ? AND lease_owner = ? AND status = 'pending'",
                )
                .bind(ts(*not_before))
                .bind(&now_s),
            };
            let n = q
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            recorded += n;
            if n == 1 && matches!(outcome, Outcome::Failed { .. }) {
                fall_back_to_email(&mut tx, *id, &now_s).await?;
            }
        }
        tx.commit().await?;
        Ok(recorded)
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
        let (due, waiting, leased, sent, failed): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT
               COALESCE(SUM(status = 'pending' AND (not_before IS NULL OR not_before <= ?1)
                            AND (lease_expires_at IS NULL OR lease_expires_at < ?1)), 0),
               COALESCE(SUM(status = 'pending' AND not_before > ?1), 0),
               COALESCE(SUM(status = 'pending' AND lease_expires_at >= ?1), 0),
               COALESCE(SUM(status IN ('sent', 'delivered')), 0),
               COALESCE(SUM(status = 'failed'), 0)
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
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT n.id, e.kind, n.channel, n.address,
                    (SELECT group_concat(c.account_id, ',') FROM notice_customers nc
                       JOIN customers c ON c.id = nc.customer_id WHERE nc.notice_id = n.id),
                    n.status, n.attempts, n.provider_id, n.last_error, n.sent_at
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
                    })
                },
            )
            .collect()
    }
}

fn channel_list(channels: &[Channel]) -> Result<String> {
    serde_json::to_string(&channels.iter().map(|c| c.as_str()).collect::<Vec<_>>())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A permanently failed SMS (a failed send here, or a failed delivery receipt in `receipts.rs`):
/// tell the same accounts by email instead, where they have one, have not opted out, and are
/// not already being emailed for this event. The early-receipt trigger in `0005_receipts.sql`
/// repeats this rule in SQL, since a trigger cannot call Rust.
pub(crate) async fn fall_back_to_email(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    notice_id: i64,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO notices (incident_id, event_id, channel, address, language, priority, subject, body, created_at, updated_at)
         SELECT DISTINCT n.incident_id, n.event_id, 'email', c.value, n.language, n.priority, n.subject, n.body, ?, ?
         FROM notices n
         JOIN notice_customers nc ON nc.notice_id = n.id
         JOIN contacts c ON c.customer_id = nc.customer_id AND c.medium = 'email'
         WHERE n.id = ? AND n.channel = 'sms'
           AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = 'email' AND o.address = c.value)
         ON CONFLICT (incident_id, event_id, channel, address) DO NOTHING",
    )
    .bind(now)
    .bind(now)
    .bind(notice_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::{customer, declare_with, seeded};
    use outagecast_core::notice::plan_recipients;

    const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];

    /// Two customers (A with a mobile and an email, B with a mobile), declared with SMS only
    /// planned, so that the email fallback has something to add.
    async fn declared() -> (SqliteStore, tempfile::TempDir) {
        let (store, dir, loaded) = seeded(&[
            customer("A", "+358481111111", "a@example.com"),
            customer("B", "+358482222222", ""),
        ])
        .await;
        let refs: Vec<_> = loaded.iter().map(|(i, c)| (*i, c)).collect();
        let mut plan = plan_recipients(&refs, |_, _| false);
        plan.recipients.retain(|r| r.channel == Channel::Sms);
        declare_with(&store, &loaded, &plan, Utc::now())
            .await
            .unwrap();
        (store, dir)
    }

    #[tokio::test]
    async fn leases_keep_workers_apart_and_only_the_holder_records() {
        let (store, _dir) = declared().await;
        let now = Utc::now();
        let lease = Duration::from_secs(60);
        let a = store.claim("a", &ALL, 10, lease, now).await.unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|n| n.attempts == 1 && !n.in_doubt));
        assert!(
            store
                .claim("b", &ALL, 10, lease, now)
                .await
                .unwrap()
                .is_empty(),
            "leased"
        );
        // Worker a dies; after the lease, b takes over and sees the notices in doubt.
        let later = now + chrono::Duration::seconds(61);
        let b = store.claim("b", &ALL, 10, lease, later).await.unwrap();
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|n| n.in_doubt && n.attempts == 2));
        let sent = Outcome::Sent {
            provider_id: "SM1".into(),
            segments: 1,
        };
        assert_eq!(
            store
                .complete("a", &[(b[0].id, sent.clone())], later)
                .await
                .unwrap(),
            0,
            "a lost its lease"
        );
        assert_eq!(
            store
                .complete("b", &[(b[0].id, sent)], later)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.release("b").await.unwrap(), 1);
        let counts = store.outbox_counts(&ALL, later).await.unwrap();
        assert_eq!((counts.sent, counts.due), (1, 1));
    }

    #[tokio::test]
    async fn a_permanent_sms_failure_falls_back_to_email() {
        let (store, _dir) = declared().await;
        let now = Utc::now();
        let claimed = store
            .claim("a", &[Channel::Sms], 10, Duration::from_secs(60), now)
            .await
            .unwrap();
        let failed: Vec<(i64, Outcome)> = claimed
            .iter()
            .map(|n| {
                (
                    n.id,
                    Outcome::Failed {
                        reason: "HTTP 400 code 21211".into(),
                    },
                )
            })
            .collect();
        assert_eq!(store.complete("a", &failed, now).await.unwrap(), 2);
        let emails = store
            .claim("a", &[Channel::Email], 10, Duration::from_secs(60), now)
            .await
            .unwrap();
        assert_eq!(emails.len(), 1, "only A has an email");
        assert_eq!(emails[0].address, "a@example.com");
        // Retry and held keep the notice pending; held does not count as an attempt.
        let later = now + chrono::Duration::minutes(5);
        store
            .complete(
                "a",
                &[(emails[0].id, Outcome::Held { not_before: later })],
                now,
            )
            .await
            .unwrap();
        assert!(
            store
                .claim("a", &ALL, 10, Duration::from_secs(60), now)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store
            .claim("a", &ALL, 10, Duration::from_secs(60), later)
            .await
            .unwrap();
        assert_eq!(again[0].attempts, 1);
    }
}
