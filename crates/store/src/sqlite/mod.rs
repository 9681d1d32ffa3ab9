//! The embedded store on SQLite: one file, WAL journal, a busy timeout so that several
//! processes (a CLI next to a server) wait for each other instead of failing. Every operation
//! that writes more than one row runs in one transaction started with `BEGIN IMMEDIATE`, so a
//! failure leaves nothing half-written and two writers never deadlock upgrading a read lock.
//!
//! This module is the SQLite half of [`Backend`]: how arguments are bound (times as
//! fixed-width UTC text, JSON as text), how columns are read back, and the statements that
//! SQLite says its own way. It never imports the PostgreSQL half.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::model::outbox::lease_end;
use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::backend::{
    Arg, Backend, Bulk, ClaimQuery, Record, Sql, module_hooks, plain_columns, sqlx_plumbing,
};
use crate::model::{parse_ts, ts};
use crate::{Result, StoreError};

/// How long a writer waits for another process's write to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_with(options).await
    }

    /// Opens a `sqlite:` URL or a plain path.
    pub async fn open_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Self::open_with(SqliteConnectOptions::from_str(url)?).await
        } else {
            Self::open(Path::new(url)).await
        }
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a transaction is on disk when it commits, so a power cut cannot drop an
            // acknowledged STOP, declaration or recorded send (NORMAL in WAL mode can lose the
            // last commits). Measured with scripts/bench-dispatch 50000 on the 2-core VM: import
            // and declare unchanged (4.6 s, 3.3 s), dispatch 7.7k notices/s against 11.3k with
            // NORMAL (one fsync per recorded round).
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction that holds the write lock from its first statement.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// A list as the JSON array `json_each` reads.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    // A list of numbers or strings always serialises.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// `sql` as a sqlx query with its arguments bound the SQLite way.
fn bind(sql: Sql<'_>) -> Query<'static, Sqlite, SqliteArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.text));
    for arg in sql.args {
        q = match arg {
            Arg::I64(v) => q.bind(v),
            Arg::F64(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Text(v) => q.bind(v.map(|s| s.into_owned())),
            Arg::Time(v) => q.bind(v.map(ts)),
            Arg::Json(v) => q.bind(v.to_string()),
            Arg::Ints(v) => q.bind(json_list(&v)),
            Arg::Texts(v) => q.bind(json_list(&v)),
        };
    }
    q
}

impl Backend for SqliteStore {
    const BYTEWISE: &'static str = "";
    const LOCK_ROWS: &'static str = "";

    sqlx_plumbing!(Sqlite, SqliteConnection, SqliteRow);

    async fn begin(&self) -> Result<Self::Tx> {
        self.write_tx().await
    }

    async fn snapshot(&self) -> Result<Self::Tx> {
        // A deferred transaction reads one WAL snapshot from its first read to its end.
        Ok(self.pool.begin().await?)
    }

    fn in_list(n: usize) -> String {
        format!("IN (SELECT value FROM json_each(${n}))")
    }

    async fn hold_provider_ids(_tx: &mut SqliteConnection) -> Result<bool> {
        Ok(false)
    }

    module_hooks!(SqliteConnection);

    async fn after_bulk_write(&self, _tables: Bulk, _rows: usize) {}

    fn lease_clock(now_arg: usize) -> String {
        format!("${now_arg}")
    }

    fn push_lease_end<'a>(sql: &mut Sql<'a>, now: DateTime<Utc>, lease: Duration) {
        sql.push_arg(lease_end(now, lease));
    }

    fn claim(q: ClaimQuery<'_>) -> Sql<'_> {
        outbox::claim(q)
    }

    async fn storing_provider_ids(_tx: &mut SqliteConnection) -> Result<()> {
        // The one writer already orders a `complete` against a receipt.
        Ok(())
    }
}

impl Record for SqliteRow {
    plain_columns!();

    fn i64(&self, col: usize) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn opt_i64(&self, col: usize) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn time(&self, col: usize) -> Result<DateTime<Utc>> {
        parse_ts(&self.try_get::<String, _>(col)?)
    }
    fn opt_time(&self, col: usize) -> Result<Option<DateTime<Utc>>> {
        let text: Option<String> = self.try_get(col)?;
        text.as_deref().map(parse_ts).transpose()
    }
    fn json(&self, col: usize) -> Result<serde_json::Value> {
        let text: String = self.try_get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("JSON in column {col}: {e}")))
    }
}

mod customers;
mod incidents;
mod ivr;
mod outbox;
#[cfg(test)]
mod receipts;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support;

// The public behaviour of the store is in the contract suite (crates/store/tests/contract), run
// on both stores; what is left here looks at SQLite's files.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::test_support::fresh;
    use crate::ops::tokens;
    use outagecast_core::auth::{Role, TokenSecret};

    #[tokio::test]
    async fn the_secret_is_not_in_the_database_file() {
        let (store, dir) = fresh().await;
        let now = chrono::Utc::now();
        let s = TokenSecret::generate([0x5A; 32]);
        tokens::create_token(&store, "deploy", Role::Admin, &s, "cli:root", now)
            .await
            .unwrap();
        tokens::authenticate(&store, &s, now)
            .await
            .unwrap()
            .unwrap();
        tokens::revoke_token(&store, "deploy", "cli:root", now)
            .await
            .unwrap();
        let body = &s.expose()[3..];
        // Not anywhere in the database file, the WAL included.
        store.close().await;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(body.len()).any(|w| w == body.as_bytes()),
                "the secret is in the database"
            );
        }
    }
}
