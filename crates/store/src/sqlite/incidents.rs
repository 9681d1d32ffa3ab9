//! The incident statements SQLite says its own way (the scripts are in `crate::ops::incidents`):
//! notices and id pairs as multi-row `VALUES` with plain `?` placeholders (SQLite looks a
//! numbered one up by a linear search, which over thousands of parameters costs more than the
//! insert itself).

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use crate::backend::{Links, NoticeInsert};
use crate::model::ts;
use crate::{Result, StoreError};

/// Rows per multi-row INSERT: well under SQLite's bound-variable limit at 10 columns a row.
const CHUNK: usize = 500;

pub(super) async fn insert_notices(
    c: &mut SqliteConnection,
    n: NoticeInsert<'_>,
) -> Result<Vec<(i64, String, String)>> {
    let now = ts(n.now);
    if let Some(r) = n
        .recipients
        .iter()
        .find(|r| !n.texts.contains_key(&r.language))
    {
        return Err(StoreError::Corrupt(format!(
            "no notice text in {}",
            r.language.code()
        )));
    }
    let mut ids = Vec::with_capacity(n.recipients.len());
    for chunk in n.recipients.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO notices (incident_id, event_id, channel, address, language, priority, subject, body, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, r| {
            let text = &n.texts[&r.language];
            b.push_bind(n.incident.0)
                .push_bind(n.event.0)
                .push_bind(r.channel.as_str())
                .push_bind(r.address.clone())
                .push_bind(r.language.code())
                .push_bind(i64::from(r.priority))
                .push_bind(text.subject.clone())
                .push_bind(text.body.clone())
                .push_bind(now.clone())
                .push_bind(now.clone());
        });
        q.push(" RETURNING id, channel, address");
        ids.extend(
            q.build_query_as::<(i64, String, String)>()
                .fetch_all(&mut *c)
                .await?,
        );
    }
    Ok(ids)
}

pub(super) async fn insert_links(c: &mut SqliteConnection, l: Links<'_>) -> Result<u64> {
    let mut written = 0;
    for chunk in l.rows.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO ");
        q.push(l.table.columns()).push(" ");
        q.push_values(chunk, |mut b, (x, y)| {
            b.push_bind(*x).push_bind(*y);
        });
        q.push(l.clause());
        written += q.build().execute(&mut *c).await?.rows_affected();
    }
    Ok(written)
}
