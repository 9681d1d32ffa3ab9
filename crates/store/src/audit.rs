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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::fresh;

    async fn write(store: &SqliteStore, actor: &str, action: &str, subject: Option<&str>) {
        store
            .audit(
                actor,
                action,
                subject,
                &serde_json::json!({ "n": 1 }),
                Utc::now(),
            )
            .await
            .unwrap();
    }

    fn ids(page: &[AuditEntry]) -> Vec<i64> {
        page.iter().map(|e| e.id).collect()
    }

    #[tokio::test]
    async fn pages_go_newest_first_and_do_not_shift_when_entries_are_added() {
        let (store, _dir) = fresh().await;
        for i in 0..7 {
            write(
                &store,
                "cli:alice",
                "incident.declare",
                Some(&format!("incident:{i}")),
            )
            .await;
        }
        let q = |after_id| AuditQuery {
            after_id,
            limit: 3,
            ..AuditQuery::default()
        };
        let first = store.audit_page(q(None)).await.unwrap();
        assert_eq!(ids(&first), [7, 6, 5]);
        // A new entry arrives between pages: the next page still continues where we were.
        write(&store, "cli:bob", "incident.update", Some("incident:1")).await;
        let second = store.audit_page(q(Some(5))).await.unwrap();
        assert_eq!(ids(&second), [4, 3, 2]);
        let last = store.audit_page(q(Some(2))).await.unwrap();
        assert_eq!(ids(&last), [1]);
        assert!(store.audit_page(q(Some(1))).await.unwrap().is_empty());
        // The old entry point is the first page without filters.
        assert_eq!(ids(&store.audit_log(2).await.unwrap()), [8, 7]);
        assert!(
            store
                .audit_page(AuditQuery::default())
                .await
                .unwrap()
                .is_empty(),
            "limit 0 reads nothing"
        );
        assert_eq!(
            store
                .audit_page(AuditQuery {
                    limit: u32::MAX,
                    ..AuditQuery::default()
                })
                .await
                .unwrap()
                .len(),
            8,
            "a huge limit is capped, not an error"
        );
    }

    #[tokio::test]
    async fn filters_by_actor_action_family_and_entity() {
        let (store, _dir) = fresh().await;
        write(&store, "cli:alice", "incident.declare", Some("incident:1")).await; // 1
        write(&store, "cli:bob", "incident.restore", Some("incident:1")).await; // 2
        write(&store, "cli:alice", "customers.import", Some("a.csv")).await; // 3
        write(&store, "cli:alice", "incident.declare", Some("incident:12")).await; // 4
        write(&store, "admin", "token.create", Some("token:ci")).await; // 5
        write(&store, "cli:alice", "incidents", Some("incidents")).await; // 6: not a family member
        write(&store, "cli:alice", "contact.opt_out", None).await; // 7
        let page = |actor: Option<&str>, action: Option<&str>, entity: Option<&str>| {
            let store = store.clone();
            let q = AuditQuery {
                after_id: None,
                limit: 100,
                actor: actor.map(str::to_string),
                action: action.map(str::to_string),
                entity: entity.map(str::to_string),
            };
            async move { ids(&store.audit_page(q).await.unwrap()) }
        };
        assert_eq!(page(Some("cli:alice"), None, None).await, [7, 6, 4, 3, 1]);
        assert_eq!(page(Some("cli:ali"), None, None).await, Vec::<i64>::new());
        assert_eq!(page(None, Some("incident.declare"), None).await, [4, 1]);
        assert_eq!(page(None, Some("incident"), None).await, [4, 2, 1]);
        assert_eq!(page(None, Some("token"), None).await, [5]);
        assert_eq!(page(None, None, Some("incident:1")).await, [2, 1]);
        assert_eq!(page(None, None, Some("incident")).await, [4, 2, 1]);
        assert_eq!(page(None, None, Some("a.csv")).await, [3]);
        assert_eq!(
            page(Some("cli:alice"), Some("incident"), Some("incident")).await,
            [4, 1]
        );
        // Filters and the cursor together.
        let q = AuditQuery {
            after_id: Some(4),
            limit: 10,
            actor: Some("cli:alice".into()),
            action: Some("incident".into()),
            entity: None,
        };
        assert_eq!(ids(&store.audit_page(q).await.unwrap()), [1]);
        // Wildcards mean nothing special.
        assert!(page(None, Some("%"), None).await.is_empty());
        assert!(page(None, None, Some("_")).await.is_empty());
    }
}
