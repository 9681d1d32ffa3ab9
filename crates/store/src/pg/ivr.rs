//! The IVR statements PostgreSQL says its own way.
//!
//! The one difference that matters is what a cursor counts. Under SQLite's single writer, change-log ids
//! become visible in id order, so a cursor is the last change id read. Here ids come from a
//! sequence and writers commit in any order, so "every id after N" could skip an id still
//! being written. The cursor is therefore a commit number instead (migration 0002): each
//! transaction that wrote changes gets the next number as it commits, under a lock held until
//! the commit is visible, so numbers become visible in order and a reader that sees commit N
//! has seen every commit below it. Cursors stay opaque `i64`s that only grow; a poll returns
//! the changes of the commits after its cursor, each exactly once, as soon as they commit.
//!
//! Reads that hand out a cursor run in one `REPEATABLE READ` snapshot, so the cursor and the
//! rows agree, as SQLite's read transaction makes them.

use sqlx::postgres::PgConnection;

use crate::Result;
use crate::backend::Arming;

/// The last commit number visible in this snapshot, and the number pruned up to.
pub(super) const IVR_LAST: &str = "SELECT (SELECT COALESCE(MAX(seq), 0) FROM ivr_commits),
                                         (SELECT upto FROM ivr_changes_pruned WHERE singleton = 1)";

/// The change-log entries of the commits in `($1, $2]`.
pub(super) const IVR_CHANGES_IN_RANGE: &str = "SELECT c.incident_id, c.phone
      FROM ivr_commits k JOIN ivr_changes c ON c.xid = k.xid
     WHERE k.seq > $1 AND k.seq <= $2";

/// The last commit made before `$1`: every commit up to it is finished, so the deletes see
/// all of them.
pub(super) const IVR_PRUNE_UPTO: &str = "SELECT MAX(seq) FROM ivr_commits WHERE at < $1";

/// Deletes the change log up to the commit `$1`.
pub(super) const IVR_PRUNE: &[&str] = &[
    "DELETE FROM ivr_changes c USING ivr_commits k WHERE c.xid = k.xid AND k.seq <= $1",
    "DELETE FROM ivr_commits WHERE seq <= $1",
];

/// Flags per insert statement.
const FLAG_CHUNK: usize = 10_000;

/// One statement per chunk: the numbers and their languages as arrays, each language's text
/// sent once and joined in.
pub(super) async fn arm_flags(c: &mut PgConnection, a: Arming<'_>) -> Result<u64> {
    let (langs, bodies): (Vec<&str>, Vec<&str>) = a
        .texts
        .iter()
        .map(|(lang, text)| (lang.code(), text.as_str()))
        .unzip();
    let sql = format!(
        "INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at)
         SELECT u.phone, $1, u.lang, t.text, $2
           FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS u(phone, lang, ord)
           JOIN UNNEST($5::text[], $6::text[]) AS t(lang, text) ON t.lang = u.lang
          ORDER BY u.ord{}",
        a.conflict.clause()
    );
    let mut written = 0;
    for part in a.numbers.chunks(FLAG_CHUNK) {
        let phones: Vec<&str> = part.iter().map(|(phone, _)| *phone).collect();
        let languages: Vec<&str> = part.iter().map(|(_, lang)| lang.code()).collect();
        written += sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(a.incident.0)
            .bind(a.now)
            .bind(&phones)
            .bind(&languages)
            .bind(&langs)
            .bind(&bodies)
            .execute(&mut *c)
            .await?
            .rows_affected();
    }
    Ok(written)
}
