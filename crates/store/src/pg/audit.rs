//! The audit log on PostgreSQL: written inside the transaction of the change it describes
//! ([`audit`]), read newest first a page at a time, with the SQLite store's filters.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Transaction};

use crate::pg::PgStore;
use crate::{AuditEntry, AuditQuery, MAX_AUDIT_PAGE, Result};

type AuditRow = (
    i64,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    sqlx::types::Json<serde_json::Value>,
);

impl PgStore {
    /// Records an operator action in the audit log on its own.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        details: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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

    /// A page of the audit log, newest first, keyset-paged by id (see the SQLite store).
    pub async fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>> {
        let limit = q.limit.min(MAX_AUDIT_PAGE);
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT id, at, actor, action, subject, details FROM audit_log WHERE true",
        );
        if let Some(after) = q.after_id {
            sql.push(" AND id < ").push_bind(after);
        }
        if let Some(actor) = q.actor {
            sql.push(" AND actor = ").push_bind(actor);
        }
        // A family is a text range, as in the SQLite store; `COLLATE "C"` makes the range
        // bytewise whatever the database's collation.
        if let Some(action) = q.action {
            sql.push(" AND (action = ")
                .push_bind(action.clone())
                .push(" OR (action COLLATE \"C\" >= ")
                .push_bind(format!("{action}."))
                .push(" AND action COLLATE \"C\" < ")
                .push_bind(format!("{action}/"))
                .push("))");
        }
        if let Some(entity) = q.entity {
            sql.push(" AND (subject = ")
                .push_bind(entity.clone())
                .push(" OR (subject COLLATE \"C\" >= ")
                .push_bind(format!("{entity}:"))
                .push(" AND subject COLLATE \"C\" < ")
                .push_bind(format!("{entity};"))
                .push("))");
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<AuditRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, subject, details)| AuditEntry {
                id,
                at,
                actor,
                action,
                subject,
                details: details.0,
            })
            .collect())
    }
}

/// Writes an audit entry inside `tx`, so it commits or rolls back with the change it describes.
pub(crate) async fn audit(
    tx: &mut Transaction<'static, Postgres>,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    details: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, subject, details) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(sqlx::types::Json(details))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
