//! The IVR's call log: written in batches by the server's call recorder ([`record_calls`]),
//! read by an incident's report ([`calls_avoided`]), kept [`CALL_LOG_DAYS`] days
//! ([`prune_calls`]).

use chrono::{DateTime, Duration, Utc};
use outagecast_core::incident::IncidentId;

use crate::Result;
use crate::backend::{Backend, Record, Sql};
use crate::model::call_log::{AreaCaller, CallRecord, CallsAvoided};

/// How long the call log keeps a call: the numbers are personal data, and a quarter covers
/// any incident's report.
pub const CALL_LOG_DAYS: i64 = 90;

/// Rows per INSERT: three arguments each, far under either database's limit.
const ROWS_PER_STATEMENT: usize = 500;

/// Appends `calls` to the log in one transaction; how many.
pub(crate) async fn record_calls<B: Backend>(b: &B, calls: &[CallRecord<'_>]) -> Result<u64> {
    if calls.is_empty() {
        return Ok(0);
    }
    let mut tx = b.begin().await?;
    let mut written = 0;
    for chunk in calls.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new("INSERT INTO ivr_calls (caller, at, announced) VALUES ");
        for (i, call) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .push_arg(call.caller)
                .push(", ")
                .push_arg(call.at)
                .push(", ")
                .push_arg(i64::from(call.announced))
                .push(")");
        }
        written += B::execute(&mut tx, sql).await?;
    }
    B::commit(tx).await?;
    Ok(written)
}

/// Forgets the calls older than [`CALL_LOG_DAYS`] at `now`; how many.
pub(crate) async fn prune_calls<B: Backend>(b: &B, now: DateTime<Utc>) -> Result<u64> {
    let mut tx = b.begin().await?;
    let gone = B::execute(
        &mut tx,
        Sql::new("DELETE FROM ivr_calls WHERE at < $1").arg(now - Duration::days(CALL_LOG_DAYS)),
    )
    .await?;
    B::commit(tx).await?;
    Ok(gone)
}

/// The calls of `incident`'s area: every number armed for it that reached the IVR while armed
/// (its first such call, whether it heard the announcement, when the incident first reached
/// one of its accounts), and the numbers that called in the hour before it was declared.
pub(crate) async fn calls_avoided<B: Backend>(b: &B, incident: IncidentId) -> Result<CallsAvoided> {
    let mut c = b.snapshot().await?;
    let rows = B::fetch_all(
        &mut c,
        Sql::new(
            "WITH firsts AS (
                 SELECT f.phone, MIN(c.at) AS first_call, MAX(c.announced) AS heard
                   FROM ivr_flags f
                   JOIN ivr_calls c ON c.caller = f.phone
                  WHERE f.incident_id = $1
                    AND c.at >= f.armed_at
                    AND (f.disarmed_at IS NULL OR c.at < f.disarmed_at)
                  GROUP BY f.phone)
             SELECT fi.first_call, fi.heard,
                    (SELECT MIN(n.sent_at)
                       FROM contacts k
                       JOIN notice_customers nc ON nc.customer_id = k.customer_id
                       JOIN notices n ON n.id = nc.notice_id
                      WHERE k.medium = 'phone' AND k.value = fi.phone
                        AND n.incident_id = $1 AND n.sent_at IS NOT NULL)
               FROM firsts fi",
        )
        .arg(incident.0),
    )
    .await?;
    let callers = rows
        .iter()
        .map(|r| {
            Ok(AreaCaller {
                first_call: r.time(0)?,
                heard: r.i64(1)? != 0,
                told_at: r.opt_time(2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let declared = B::fetch_one(
        &mut c,
        Sql::new("SELECT declared_at FROM incidents WHERE id = $1").arg(incident.0),
    )
    .await?
    .time(0)?;
    let before = B::fetch_one(
        &mut c,
        Sql::new(
            "SELECT COUNT(DISTINCT c.caller)
               FROM ivr_flags f
               JOIN ivr_calls c ON c.caller = f.phone
              WHERE f.incident_id = $1 AND c.at >= $2 AND c.at < $3",
        )
        .arg(incident.0)
        .arg(declared - Duration::hours(1))
        .arg(declared),
    )
    .await?
    .i64(0)?;
    B::commit(c).await?;
    Ok(CallsAvoided::of(
        &callers,
        u64::try_from(before).unwrap_or(0),
    ))
}
