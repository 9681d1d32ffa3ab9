//! The audit log: every operator action with who, what, when and a JSON summary. Written
//! inside the transaction of the change it describes ([`audit`]), read newest first a page at
//! a time ([`SqliteStore::audit_page`]).

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::{Result, SqliteStore, StoreError, parse_ts, ts};

/// The most entries one page returns, whatever the caller asks for.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// One audit log entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`cli:alice`, later a token name).
    pub actor: String,
    /// What (`incident.declare`).
    pub action: String,
    /// On what (`incident:12`).
    pub subject: Option<String>,
    /// A summary of the change.
    pub details: serde_json::Value,
}

/// Which audit entries to read: newest first, a page after a cursor, optionally filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The last id of the previous page: only older entries (smaller ids) are returned.
    /// `None` for the first page.
    pub after_id: Option<i64>,
    /// At most this many entries (capped at [`MAX_AUDIT_PAGE`]; 0 returns none).
    pub limit: u32,
    /// Only this actor, exactly (`cli:alice`, a token name).
    pub actor: Option<String>,
    /// Only this action (`incident.declare`), or a whole family by its first part
    /// (`incident` matches `incident.declare`, `incident.restore`, ...).
    pub action: Option<String>,
    /// Only entries about this subject (`incident:12`), or about any of a kind by the part
    /// before the colon (`incident` matches `incident:12`, `token` matches `token:ci`).
    pub entity: Option<String>,
}

type AuditRow = (i64, String, String, String, Option<String>, String);

impl SqliteStore {
    /// Records an operator action in the audit log on its own.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        details: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        audit(&mut tx, actor, action, subject, details, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_page(AuditQuery {
            limit,
            ..AuditQuery::default()
        })
        .await
    }

    /// A page of the audit log, newest first. For the next page pass the last entry's id as
    /// `after_id`: entries written meanwhile do not shift the pages (keyset pagination). A page
    /// shorter than `limit` is the last.
    pub async fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>> {
        let limit = q.limit.min(MAX_AUDIT_PAGE);
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT id, at, actor, action, subject, details FROM audit_log WHERE 1 = 1",
        );
        if let Some(after) = q.after_id {
            sql.push(" AND id < ").push_bind(after);
        }
        if let Some(actor) = q.actor {
            sql.push(" AND actor = ").push_bind(actor);
        }
        // A family is a text range: `incident.` ≤ action < `incident/` ('/' follows '.'),
        // which needs no LIKE escaping and can use an index.
        if let Some(action) = q.action {
            sql.push(" AND (action = ")
                .push_bind(action.clone())
                .push(" OR (action >= ")
                .push_bind(format!("{action}."))
                .push(" AND action < ")
                .push_bind(format!("{action}/"))
                .push("))");
        }
        if let Some(entity) = q.entity {
            sql.push(" AND (subject = ")
                .push_bind(entity.clone())
                .push(" OR (subject >= ")
                .push_bind(format!("{entity}:"))
                .push(" AND subject < ")
                .push_bind(format!("{entity};"))
                .push("))");
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<AuditRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(entry).collect()
    }
}

fn entry((id, at, actor, action, subject, details): AuditRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id,
        at: parse_ts(&at)?,
        actor,
        action,
        subject,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::Corrupt(format!("audit {id}: {e}")))?,
    })
}

/// Writes an audit entry inside `tx`, so it commits or rolls back with the change it describes.
pub(crate) async fn audit(
    tx: &mut Transaction<'static, Sqlite>,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    details: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, subject, details) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(ts(now))
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(details.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
