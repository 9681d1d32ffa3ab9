//! The audit log: written inside the transaction of the change it describes ([`write`]), read
//! newest first a page at a time ([`audit_page`]).

use chrono::{DateTime, Utc};

use crate::Result;
use crate::backend::{Backend, Sql};
use crate::model::audit::{AUDIT_COLUMNS, AuditEntry, AuditQuery, MAX_AUDIT_PAGE, entry};

/// Writes an audit entry on `c` (a write transaction), so it commits or rolls back with the
/// change it describes.
pub(crate) async fn write<B: Backend>(
    c: &mut B::Conn,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    details: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    B::execute(
        c,
        Sql::new(
            "INSERT INTO audit_log (at, actor, action, subject, details) VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(now)
        .arg(actor)
        .arg(action)
        .arg(subject)
        .arg(details),
    )
    .await?;
    Ok(())
}

/// Records an operator action in the audit log on its own.
pub(crate) async fn audit<B: Backend>(
    b: &B,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    details: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = b.begin().await?;
    write::<B>(&mut tx, actor, action, subject, details, now).await?;
    B::commit(tx).await
}

/// A page of the audit log, newest first. For the next page pass the last entry's id as
/// `after_id`: entries written meanwhile do not shift the pages (keyset pagination). A page
/// shorter than `limit` is the last.
pub(crate) async fn audit_page<B: Backend>(b: &B, q: AuditQuery) -> Result<Vec<AuditEntry>> {
    let limit = q.limit.min(MAX_AUDIT_PAGE);
    if limit == 0 {
        return Ok(vec![]);
    }
    let mut sql = Sql::built(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"));
    if let Some(after) = q.after_id {
        sql.push(" AND id < ").push_arg(after);
    }
    if let Some(actor) = q.actor {
        sql.push(" AND actor = ").push_arg(actor);
    }
    // A family is a text range: `incident.` ≤ action < `incident/` ('/' follows '.'), which
    // needs no LIKE escaping and can use an index; compared bytewise whatever the database's
    // collation.
    if let Some(action) = q.action {
        family::<B>(&mut sql, "action", action, ['.', '/']);
    }
    if let Some(entity) = q.entity {
        family::<B>(&mut sql, "subject", entity, [':', ';']);
    }
    sql.push(" ORDER BY id DESC LIMIT ").push_arg(limit);
    let rows = B::fetch_all(&mut *b.conn().await?, sql).await?;
    rows.iter().map(entry).collect()
}

/// ` AND (column = exact OR exact+lo <= column < exact+hi)`, bytewise.
fn family<B: Backend>(sql: &mut Sql<'_>, column: &str, exact: String, [lo, hi]: [char; 2]) {
    let bytewise = B::BYTEWISE;
    sql.push(&format!(" AND ({column} = "))
        .push_arg(exact.clone())
        .push(&format!(" OR ({column}{bytewise} >= "))
        .push_arg(format!("{exact}{lo}"))
        .push(&format!(" AND {column}{bytewise} < "))
        .push_arg(format!("{exact}{hi}"))
        .push("))");
}
