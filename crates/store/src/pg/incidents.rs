//! The incident statements PostgreSQL says its own way (the scripts are in
//! `crate::ops::incidents`): notices and id pairs written in bulk with `UNNEST` of arrays.

use sqlx::postgres::PgConnection;

use crate::Result;
use crate::backend::{Links, NoticeInsert};

/// Rows per `UNNEST` statement: large enough that per-statement costs vanish, small enough
/// that the arrays stay a few megabytes.
const CHUNK: usize = 10_000;

/// Each chunk is one statement: the contacts as arrays, each language's text sent once and
/// joined in; ids in the order of the recipients.
pub(super) async fn insert_notices(
    c: &mut PgConnection,
    n: NoticeInsert<'_>,
) -> Result<Vec<(i64, String, String)>> {
    let mut langs = Vec::with_capacity(n.texts.len());
    let mut subjects = Vec::with_capacity(n.texts.len());
    let mut bodies = Vec::with_capacity(n.texts.len());
    for (lang, text) in n.texts {
        langs.push(lang.code());
        subjects.push(text.subject.as_str());
        bodies.push(text.body.as_str());
    }
    let mut ids = Vec::with_capacity(n.recipients.len());
    for chunk in n.recipients.chunks(CHUNK) {
        let mut channels = Vec::with_capacity(chunk.len());
        let mut addresses = Vec::with_capacity(chunk.len());
        let mut languages = Vec::with_capacity(chunk.len());
        let mut priorities = Vec::with_capacity(chunk.len());
        for r in chunk {
            channels.push(r.channel.as_str());
            addresses.push(r.address.as_str());
            languages.push(r.language.code());
            priorities.push(r.priority);
        }
        ids.extend(
            sqlx::query_as::<_, (i64, String, String)>(
                "INSERT INTO notices (incident_id, event_id, channel, address, language, priority,
                                  subject, body, created_at, updated_at)
             SELECT $1, $2, u.ch, u.addr, u.lang, u.prio, t.subject, t.body, $3, $3
               FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bool[])
                    WITH ORDINALITY AS u(ch, addr, lang, prio, ord)
               JOIN UNNEST($8::text[], $9::text[], $10::text[]) AS t(lang, subject, body)
                 ON t.lang = u.lang
              ORDER BY u.ord
             RETURNING id, channel, address",
            )
            .bind(n.incident.0)
            .bind(n.event.0)
            .bind(n.now)
            .bind(&channels)
            .bind(&addresses)
            .bind(&languages)
            .bind(&priorities)
            .bind(&langs)
            .bind(&subjects)
            .bind(&bodies)
            .fetch_all(&mut *c)
            .await?,
        );
    }
    Ok(ids)
}

pub(super) async fn insert_links(c: &mut PgConnection, l: Links<'_>) -> Result<u64> {
    // The table and clause are this crate's constants, never input.
    let sql = format!(
        "INSERT INTO {} SELECT * FROM UNNEST($1::int8[], $2::int8[]){}",
        l.table.columns(),
        l.clause()
    );
    let mut written = 0;
    for chunk in l.rows.chunks(CHUNK) {
        let (xs, ys): (Vec<i64>, Vec<i64>) = chunk.iter().copied().unzip();
        written += sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&xs)
            .bind(&ys)
            .execute(&mut *c)
            .await?
            .rows_affected();
    }
    Ok(written)
}
