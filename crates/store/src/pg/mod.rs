//! The durable store on PostgreSQL + PostGIS, for several engine nodes sharing one database
//! (issue 7). `PgStore` has the same operations as [`SqliteStore`](crate::SqliteStore), with
//! the same signatures and meaning (`crates/store/tests/contract` runs one suite on both), so
//! [`Store`](crate::Store) can hand every call to either.
//!
//! What differs underneath:
//! * the schema (`migrations/postgres/`) has the SQLite table and column names with
//!   PostgreSQL's own types, plus a PostGIS `geography(Point, 4326)` per customer;
//! * the outbox claim is `FOR UPDATE SKIP LOCKED` under a lease, so any number of nodes share
//!   the queue without handing one notice to two of them;
//! * triggers `NOTIFY` [`IVR_CHANNEL`] and [`CUSTOMERS_CHANNEL`] so that other nodes refresh
//!   their caches at once ([`PgStore::listen`]);
//! * [`PgStore::select_ids`] is a PostGIS selection path, an independent implementation of
//!   [`Area::contains`](outagecast_core::area::Area::contains) that tests use to cross-check
//!   the in-memory R-tree and the `postgis` bench uses as the peer to beat.

mod customers;
mod incidents;
mod ivr;
mod outbox;
#[cfg(test)]
mod receipts;
mod select;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPoolOptions, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::{Column, Connection, PgPool, Row, TypeInfo};

use crate::backend::{
    Arg, Backend, Bulk, ClaimQuery, Record, Sql, module_hooks, plain_columns, sqlx_plumbing,
};
use crate::{Result, StoreError};

/// The notification channel PostgreSQL triggers raise when the IVR change log grows
/// (`migrations/postgres/0002_*`).
pub const IVR_CHANNEL: &str = "outagecast_ivr";
/// The notification channel raised when the customers generation moves (an import or a
/// deletion on any node).
pub const CUSTOMERS_CHANNEL: &str = "outagecast_customers";

/// The tables a customer import fills.
const CUSTOMER_TABLES: &str = "customers, contacts";
/// The tables a declaration (or a grown area) fills.
const DECLARATION_TABLES: &str = "notices, notice_customers, incident_customers, ivr_flags";

/// Rows written at once from which the statistics are refreshed at once (see
/// [`PgStore::refresh_statistics`]).
pub(crate) const BULK_ROWS: usize = 5_000;

/// Connections per store (per engine node). Selection and claims are short statements.
const MAX_CONNECTIONS: u32 = 8;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The schema this store lives in when it is not the database's default (tests).
    schema: Option<String>,
}

impl PgStore {
    /// Connects to a `postgres://` (or `postgresql://`) URL and brings the schema up to date.
    /// The database needs the PostGIS extension available (the migration creates it).
    pub async fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        Self::open(options, None).await
    }

    /// Connects with the store's tables in `schema` (created if missing) instead of the
    /// database's default: several stores side by side in one database, as the tests use it.
    /// PostGIS stays where it is installed (normally `public`), which stays on the search path.
    /// `schema` is lower-case ASCII letters, digits and `_`, starting with a letter or `_`.
    pub async fn connect_schema(url: &str, schema: &str) -> Result<Self> {
        check_schema_name(schema)?;
        let options: PgConnectOptions = url.parse()?;
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        // The name was checked above: only [a-z0-9_], so quoting it is enough.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        let options = options.options([("search_path", format!("{schema},public"))]);
        Self::open(options, Some(schema.to_string())).await
    }

    async fn open(options: PgConnectOptions, schema: Option<String>) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(PgStore { pool, schema })
    }

    /// A connection that listens on [`IVR_CHANNEL`] and [`CUSTOMERS_CHANNEL`]: how a node
    /// learns within milliseconds that another node changed something.
    pub async fn listen(&self) -> Result<sqlx::postgres::PgListener> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([IVR_CHANNEL, CUSTOMERS_CHANNEL])
            .await?;
        Ok(listener)
    }

    /// The schema given to [`PgStore::connect_schema`], if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Drops the schema given to [`PgStore::connect_schema`] with everything in it, and closes
    /// the store. Refused for a store opened with [`PgStore::connect`].
    pub async fn drop_schema(self) -> Result<()> {
        let Some(schema) = self.schema.clone() else {
            return Err(StoreError::Invalid {
                field: "schema",
                problem: "this store uses the database's default schema; drop the database instead"
                    .into(),
            });
        };
        check_schema_name(&schema)?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&self.pool)
        .await?;
        self.pool.close().await;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Refreshes the planner's statistics (after a bulk import, before timing queries).
    pub async fn analyze(&self) -> Result<()> {
        self.analyze_tables(CUSTOMER_TABLES).await
    }

    /// `ANALYZE tables`; `tables` is one of this crate's constant lists, never input.
    async fn analyze_tables(&self, tables: &str) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {tables}")))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Refreshes the planner's statistics of `tables` after a bulk write. Without it the
    /// queries that follow at once (the workers' claims, reports) are planned on the
    /// statistics of the empty tables until autovacuum catches up, and a plan made for a few
    /// rows (a sequential scan per row) over 100,000 takes minutes. A failure only costs
    /// speed, so it is logged, not returned: the write it follows has committed.
    pub(crate) async fn refresh_statistics(&self, tables: &str) {
        if let Err(e) = self.analyze_tables(tables).await {
            tracing::warn!(error = %e, tables, "refreshing statistics after a bulk write failed");
        }
    }

    /// Rewrites the customers table in the order of its location index, so that customers
    /// near each other share pages, then refreshes the statistics. It locks the table for the
    /// whole rewrite: for benchmarks (PostGIS's best case), not for a live system.
    #[doc(hidden)]
    pub async fn cluster_by_location(&self) -> Result<()> {
        sqlx::query("CLUSTER customers USING customers_location")
            .execute(&self.pool)
            .await?;
        self.analyze().await
    }
}

/// `sql` as a sqlx query with its arguments bound the PostgreSQL way.
fn bind(sql: Sql<'_>) -> Query<'static, Postgres, PgArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.text));
    for arg in sql.args {
        q = match arg {
            Arg::I64(v) => q.bind(v),
            Arg::F64(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Text(v) => q.bind(v.map(|s| s.into_owned())),
            Arg::Time(v) => q.bind(v),
            Arg::Json(v) => q.bind(sqlx::types::Json(v.into_owned())),
            Arg::Ints(v) => q.bind(v),
            Arg::Texts(v) => q.bind(v),
        };
    }
    q
}

impl Backend for PgStore {
    const BYTEWISE: &'static str = " COLLATE \"C\"";
    const LOCK_ROWS: &'static str = " FOR UPDATE";

    sqlx_plumbing!(Postgres, PgConnection, PgRow);

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin().await?)
    }

    async fn snapshot(&self) -> Result<Self::Tx> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?)
    }

    fn in_list(n: usize) -> String {
        format!("= ANY(${n})")
    }

    async fn hold_provider_ids(tx: &mut PgConnection) -> Result<bool> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(outbox::EARLY_RECEIPT_LOCK)
            .execute(tx)
            .await?;
        Ok(true)
    }

    module_hooks!(PgConnection);

    async fn after_bulk_write(&self, tables: Bulk, rows: usize) {
        if rows >= BULK_ROWS {
            self.refresh_statistics(match tables {
                Bulk::Customers => CUSTOMER_TABLES,
                Bulk::Declaration => DECLARATION_TABLES,
            })
            .await;
        }
    }

    fn lease_clock(_now_arg: usize) -> String {
        "now()".into()
    }

    fn push_lease_end<'a>(sql: &mut Sql<'a>, _now: DateTime<Utc>, lease: Duration) {
        sql.push("now() + make_interval(secs => ")
            .push_arg(lease.as_secs_f64())
            .push(")");
    }

    fn claim(q: ClaimQuery<'_>) -> Sql<'_> {
        outbox::claim(q)
    }

    async fn storing_provider_ids(tx: &mut PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(outbox::EARLY_RECEIPT_LOCK)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// PostgreSQL's integers come in three widths (`smallint` for flags, `integer` for counts,
/// `bigint` for ids); the scripts read them all as `i64`.
fn pg_int(row: &PgRow, col: usize) -> Result<Option<i64>> {
    Ok(match row.columns()[col].type_info().name() {
        "INT2" => row.try_get::<Option<i16>, _>(col)?.map(i64::from),
        "INT4" => row.try_get::<Option<i32>, _>(col)?.map(i64::from),
        _ => row.try_get(col)?,
    })
}

impl Record for PgRow {
    plain_columns!();

    fn i64(&self, col: usize) -> Result<i64> {
        pg_int(self, col)?.ok_or_else(|| StoreError::Corrupt(format!("NULL in column {col}")))
    }
    fn opt_i64(&self, col: usize) -> Result<Option<i64>> {
        pg_int(self, col)
    }
    fn time(&self, col: usize) -> Result<DateTime<Utc>> {
        Ok(self.try_get(col)?)
    }
    fn opt_time(&self, col: usize) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get(col)?)
    }
    fn json(&self, col: usize) -> Result<serde_json::Value> {
        Ok(self
            .try_get::<sqlx::types::Json<serde_json::Value>, _>(col)?
            .0)
    }
}

fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: "schema",
            problem: format!(
                "{schema:?} is not a plain schema name; use 1 to 63 lower-case letters, digits and _, not starting with a digit or pg_"
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    //! A store in a schema of its own on the cluster named by `OUTAGECAST_TEST_PG_URL`.

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The test cluster's URL, or `None` (and a line saying the test is skipped).
    pub fn url(test: &str) -> Option<String> {
        match std::env::var("OUTAGECAST_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                eprintln!(
                    "{test}: skipped, OUTAGECAST_TEST_PG_URL is not set (scripts/pg-test-cluster start prints one)"
                );
                None
            }
        }
    }

    /// A unique schema name for this process and call.
    pub fn schema_name(prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!(
            "t_{prefix}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("t_outbox_1").is_ok());
        for bad in ["", "1abc", "a-b", "A", "pg_x", "x\"; DROP", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
    }
}
