//! Outage reports from customers: recorded by the inbound SMS webhook ([`record_report`]),
//! one row per number and report (a repeat within [`REPORT_DEDUPE_WINDOW`] of the row's last
//! message is counted on it), listed newest first for the operators ([`outage_reports`]),
//! kept [`REPORT_DAYS`] days (pruned as reports arrive).

use chrono::Duration;
use outagecast_core::contact::Channel;
use serde_json::json;

use crate::Result;
use crate::backend::{Backend, Record, Sql};
use crate::model::outage_reports::{
    MAX_REPORT_PAGE, NewReport, OutageReport, REPORT_DAYS, REPORT_DEDUPE_WINDOW, ReportOutcome,
    ReportQuery, ReportedAccount, bounded_text,
};
use crate::model::{count, stored};

const REPORT_COLUMNS: &str = "id, received_at, last_at, phone, channel, accounts, text, repeats";

/// Records `report` in one transaction: forgets reports older than [`REPORT_DAYS`], closes
/// the number's current report when its last message is older than the window, then adds a
/// report with the number's accounts and their locations, or counts a repeat on the current
/// one. The partial unique index on the current report makes concurrent reports from one
/// number (two nodes, a provider's retry) one row on either database.
pub(crate) async fn record_report<B: Backend>(b: &B, r: NewReport<'_>) -> Result<ReportOutcome> {
    let mut tx = b.begin().await?;
    B::execute(
        &mut tx,
        Sql::new("DELETE FROM outage_reports WHERE last_at < $1")
            .arg(r.at - Duration::days(REPORT_DAYS)),
    )
    .await?;
    B::execute(
        &mut tx,
        Sql::new(
            "UPDATE outage_reports SET current = 0
              WHERE phone = $1 AND current = 1 AND last_at < $2",
        )
        .arg(r.phone)
        .arg(r.at - REPORT_DEDUPE_WINDOW),
    )
    .await?;
    let rows = B::fetch_all(
        &mut tx,
        Sql::built(format!(
            "SELECT c.account_id, c.lon, c.lat FROM contacts k
               JOIN customers c ON c.id = k.customer_id
              WHERE k.medium = 'phone' AND k.value = $1
              ORDER BY c.account_id{}",
            B::BYTEWISE
        ))
        .arg(r.phone),
    )
    .await?;
    let accounts = rows
        .iter()
        .map(|row| Ok(json!({"account_id": row.text(0)?, "lon": row.f64(1)?, "lat": row.f64(2)?})))
        .collect::<Result<Vec<_>>>()?;
    let found = accounts.len();
    let row = B::fetch_one(
        &mut tx,
        Sql::new(
            "INSERT INTO outage_reports (received_at, last_at, phone, channel, accounts, text)
             VALUES ($1, $1, $2, $3, $4, $5)
             ON CONFLICT (phone) WHERE current = 1 DO UPDATE
                SET repeats = outage_reports.repeats + 1,
                    last_at = CASE WHEN excluded.last_at > outage_reports.last_at
                                   THEN excluded.last_at ELSE outage_reports.last_at END
             RETURNING id, repeats",
        )
        .arg(r.at)
        .arg(r.phone)
        .arg(r.channel.as_str())
        .arg(serde_json::Value::Array(accounts))
        .arg(bounded_text(r.text)),
    )
    .await?;
    let (id, repeats) = (row.i64(0)?, count(row.i64(1)?));
    B::commit(tx).await?;
    Ok(ReportOutcome {
        id,
        new: repeats == 0,
        repeats,
        accounts: found,
    })
}

/// The reports received or repeated since `q.since`, the latest activity first (ties by id,
/// newest first), at most `q.limit` (1..=[`MAX_REPORT_PAGE`]).
pub(crate) async fn outage_reports<B: Backend>(b: &B, q: ReportQuery) -> Result<Vec<OutageReport>> {
    let limit = i64::from(q.limit.clamp(1, MAX_REPORT_PAGE));
    let sql = match q.since {
        Some(since) => Sql::built(format!(
            "SELECT {REPORT_COLUMNS} FROM outage_reports WHERE last_at >= $1
              ORDER BY last_at DESC, id DESC LIMIT $2"
        ))
        .arg(since)
        .arg(limit),
        None => Sql::built(format!(
            "SELECT {REPORT_COLUMNS} FROM outage_reports
              ORDER BY last_at DESC, id DESC LIMIT $1"
        ))
        .arg(limit),
    };
    let rows = B::fetch_all(&mut *b.conn().await?, sql).await?;
    rows.iter().map(report_from_record).collect()
}

fn report_from_record(r: &impl Record) -> Result<OutageReport> {
    let accounts: Vec<ReportedAccount> = serde_json::from_value(r.json(5)?)
        .map_err(|e| crate::StoreError::Corrupt(format!("outage report accounts: {e}")))?;
    Ok(OutageReport {
        id: r.i64(0)?,
        received_at: r.time(1)?,
        last_at: r.time(2)?,
        phone: r.text(3)?,
        channel: stored(&r.text(4)?, Channel::parse)?,
        accounts,
        text: r.text(6)?,
        repeats: count(r.i64(7)?),
    })
}
