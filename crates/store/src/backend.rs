//! The seam between the transaction scripts (`crate::ops`, written once) and the two
//! databases (`crate::sqlite`, `crate::pg`).
//!
//! A script builds its statements as [`Sql`]: SQL text with `$1, $2, …` placeholders (sqlx's
//! SQLite driver reads `$N` as the N-th argument, as PostgreSQL does) and backend-neutral
//! [`Arg`]s. Each backend binds the arguments its own way (a time is fixed-width UTC text on
//! SQLite, a `timestamptz` on PostgreSQL; JSON is text or `jsonb`) and reads columns back
//! through [`Record`]. What cannot be said in one text for both (row locks, `UNNEST` over
//! arrays, the bulk writes, the claim with `SKIP LOCKED`, the IVR change log, `ANALYZE`) is a
//! method of [`Backend`] or a constant the scripts splice in.
//!
//! Why not generic over `sqlx::Database` or the `Any` driver: neither has PostgreSQL's
//! arrays, `timestamptz` and PostGIS, which the PostgreSQL statements need.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::DerefMut;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::Customer;
use outagecast_core::incident::IncidentId;
use outagecast_core::message::MessageText;
use outagecast_core::notice::{EventId, Recipient};

use crate::Result;
use crate::model::outbox::Outcome;

/// One argument of a statement, as the scripts know it.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    /// An integer (ids, counts, flags stored as numbers).
    I64(Option<i64>),
    /// A floating-point number (coordinates).
    F64(Option<f64>),
    /// A boolean (SQLite stores it as 0/1).
    Bool(Option<bool>),
    /// Text.
    Text(Option<Cow<'a, str>>),
    /// A time: fixed-width UTC text on SQLite, `timestamptz` on PostgreSQL.
    Time(Option<DateTime<Utc>>),
    /// A JSON document: text on SQLite, `jsonb` on PostgreSQL.
    Json(Cow<'a, serde_json::Value>),
    /// A list of integers for [`Backend::in_list`]: a JSON array on SQLite, `int8[]` on
    /// PostgreSQL.
    Ints(Vec<i64>),
    /// A list of texts for [`Backend::in_list`]: a JSON array on SQLite, `text[]` on
    /// PostgreSQL.
    Texts(Vec<&'a str>),
}

/// Turns a Rust value into an [`Arg`]; `Option`s become SQL `NULL` when `None`.
pub(crate) trait IntoArg<'a> {
    fn into_arg(self) -> Arg<'a>;
}

macro_rules! into_arg {
    ($($ty:ty => $variant:ident($conv:expr)),* $(,)?) => {
        $(
            impl<'a> IntoArg<'a> for $ty {
                fn into_arg(self) -> Arg<'a> {
                    Arg::$variant(Some(($conv)(self)))
                }
            }
            impl<'a> IntoArg<'a> for Option<$ty> {
                fn into_arg(self) -> Arg<'a> {
                    Arg::$variant(self.map($conv))
                }
            }
        )*
    };
}

into_arg! {
    i64 => I64(|v| v),
    u32 => I64(i64::from),
    f64 => F64(|v| v),
    bool => Bool(|v| v),
    DateTime<Utc> => Time(|v| v),
    &'a str => Text(Cow::Borrowed),
    String => Text(Cow::Owned),
    &'a String => Text(|s: &'a String| Cow::Borrowed(s.as_str())),
}

impl<'a> IntoArg<'a> for &'a serde_json::Value {
    fn into_arg(self) -> Arg<'a> {
        Arg::Json(Cow::Borrowed(self))
    }
}

impl<'a> IntoArg<'a> for serde_json::Value {
    fn into_arg(self) -> Arg<'a> {
        Arg::Json(Cow::Owned(self))
    }
}

impl<'a> IntoArg<'a> for Vec<i64> {
    fn into_arg(self) -> Arg<'a> {
        Arg::Ints(self)
    }
}

impl<'a> IntoArg<'a> for Vec<&'a str> {
    fn into_arg(self) -> Arg<'a> {
        Arg::Texts(self)
    }
}

/// A statement: its text with `$N` placeholders and its arguments in order.
#[derive(Debug, Clone)]
pub(crate) struct Sql<'a> {
    pub(crate) text: Cow<'static, str>,
    pub(crate) args: Vec<Arg<'a>>,
}

impl<'a> Sql<'a> {
    /// A statement whose text is fixed; its `$N` are given by [`Sql::arg`] in order.
    pub(crate) fn new(text: &'static str) -> Self {
        Sql {
            text: Cow::Borrowed(text),
            args: Vec::new(),
        }
    }

    /// A statement whose text is put together from this crate's constants, never from input.
    pub(crate) fn built(text: String) -> Self {
        Sql {
            text: Cow::Owned(text),
            args: Vec::new(),
        }
    }

    /// The next argument (`$1`, then `$2`, …).
    pub(crate) fn arg(mut self, value: impl IntoArg<'a>) -> Self {
        self.args.push(value.into_arg());
        self
    }

    /// Appends text (a constant of this crate, never input).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.to_mut().push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn push_arg(&mut self, value: impl IntoArg<'a>) -> &mut Self {
        self.args.push(value.into_arg());
        let n = self.args.len();
        self.text.to_mut().push_str(&format!("${n}"));
        self
    }
}

/// A row read back, column by position, in the scripts' types.
pub(crate) trait Record {
    fn i64(&self, col: usize) -> Result<i64>;
    fn opt_i64(&self, col: usize) -> Result<Option<i64>>;
    fn f64(&self, col: usize) -> Result<f64>;
    fn opt_f64(&self, col: usize) -> Result<Option<f64>>;
    fn bool(&self, col: usize) -> Result<bool>;
    fn text(&self, col: usize) -> Result<String>;
    fn opt_text(&self, col: usize) -> Result<Option<String>>;
    fn time(&self, col: usize) -> Result<DateTime<Utc>>;
    fn opt_time(&self, col: usize) -> Result<Option<DateTime<Utc>>>;
    fn json(&self, col: usize) -> Result<serde_json::Value>;
}

/// A contact row to insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContactInsert<'a> {
    pub customer_id: i64,
    pub medium: &'static str,
    pub value: &'a str,
    pub kind: Option<&'static str>,
    pub position: i64,
}

/// Which tables a bulk write filled (for [`Backend::after_bulk_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bulk {
    /// An import: customers and contacts.
    Customers,
    /// A declaration or a grown area: the affected set, notices and their links, IVR flags.
    Declaration,
}

/// What arming a number does to a flag the incident already has for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagConflict {
    /// There can be none (a new incident): one is an error.
    Refuse,
    /// Keep the one there (a grown area: those armed before stay as they are).
    Skip,
    /// Arm it again in place with the new language and announcement (a re-arm).
    Replace,
}

impl FlagConflict {
    /// The `ON CONFLICT` clause of an `INSERT INTO ivr_flags`.
    pub(crate) fn clause(self) -> &'static str {
        match self {
            FlagConflict::Refuse => "",
            FlagConflict::Skip => " ON CONFLICT (phone, incident_id) DO NOTHING",
            FlagConflict::Replace => {
                " ON CONFLICT (phone, incident_id) DO UPDATE
                    SET language = excluded.language, announcement = excluded.announcement,
                        armed_at = excluded.armed_at, disarmed_at = NULL"
            }
        }
    }
}

/// Numbers to arm for one incident.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arming<'a> {
    pub incident: IncidentId,
    /// Each number with the language it hears.
    pub numbers: &'a [(&'a str, Language)],
    /// The announcement of each language of `numbers`.
    pub texts: &'a BTreeMap<Language, String>,
    pub now: DateTime<Utc>,
    pub conflict: FlagConflict,
}

/// The notices of one incident event to insert, all at `now` (see [`Backend::insert_notices`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoticeInsert<'a> {
    pub incident: IncidentId,
    pub event: EventId,
    /// One notice each; no two share a channel and address.
    pub recipients: &'a [Recipient],
    /// The subject and body in every language.
    pub texts: &'a BTreeMap<Language, MessageText>,
    pub now: DateTime<Utc>,
}

/// A table of id pairs that [`Backend::insert_links`] fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkTable {
    /// `incident_customers (incident_id, customer_id)`: the affected set.
    Affected,
    /// `notice_customers (notice_id, customer_id)`: the accounts that led to a notice.
    NoticeCustomers,
}

impl LinkTable {
    /// The table with its two columns, for an `INSERT INTO`.
    pub(crate) fn columns(self) -> &'static str {
        match self {
            LinkTable::Affected => "incident_customers (incident_id, customer_id)",
            LinkTable::NoticeCustomers => "notice_customers (notice_id, customer_id)",
        }
    }
}

/// Id pairs to insert (see [`Backend::insert_links`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Links<'a> {
    pub table: LinkTable,
    pub rows: &'a [(i64, i64)],
    /// Skip a pair that is there already (a grown area), instead of refusing it.
    pub skip_known: bool,
}

impl Links<'_> {
    /// The `ON CONFLICT` clause of the insert.
    pub(crate) fn clause(&self) -> &'static str {
        if self.skip_known {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        }
    }
}

/// A claim of due notices for [`Backend::claim`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimQuery<'a> {
    pub owner: &'a str,
    /// Not empty.
    pub channels: &'a [Channel],
    /// More than 0.
    pub limit: u32,
    pub lease: Duration,
    pub now: DateTime<Utc>,
    /// Whether to read the first account's service point too.
    pub locate: bool,
}

/// Outcomes to record for [`Backend::write_outcomes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutcomeWrite<'a> {
    /// Only notices leased to it change.
    pub owner: &'a str,
    /// Each notice's id with its outcome.
    pub outcomes: &'a [&'a (i64, Outcome)],
    pub now: DateTime<Utc>,
}

/// What a database must offer the transaction scripts.
///
/// The general statements run on a connection (`Self::Conn`), which is either a pooled
/// connection ([`Backend::conn`], for reads) or a write transaction ([`Backend::begin`]); both
/// dereference to it.
pub(crate) trait Backend: Sync {
    /// The bytewise collation for text ranges and orderings (SQLite's default is bytewise).
    const BYTEWISE: &'static str;
    /// What a `SELECT … FROM one table` appends to lock its rows until the commit. SQLite's
    /// `BEGIN IMMEDIATE` already holds the one write lock, so it appends nothing.
    const LOCK_ROWS: &'static str;

    /// Customers per [`Backend::upsert_customer_rows`] statement.
    const CUSTOMER_CHUNK: usize;

    /// A `SELECT` of one row: the IVR change log's last cursor and the cursor it was pruned
    /// up to.
    const IVR_LAST: &'static str;
    /// A `SELECT incident_id, phone` of the change-log entries after the cursor `$1` up to
    /// `$2`.
    const IVR_CHANGES_IN_RANGE: &'static str;
    /// A `SELECT` of the last cursor of the change-log entries written before `$1`.
    const IVR_PRUNE_UPTO: &'static str;
    /// The statements that delete the change log up to the cursor `$1`; the first says how
    /// many entries went.
    const IVR_PRUNE: &'static [&'static str];

    /// The hand-over (`crate::ops::outbox`): `$1` now, `$2` the owner, `$3` the ids (a list
    /// argument). Marks in doubt the notices still pending and leased to the owner whose
    /// incident is open or that belong to its last event; returns `id, subject, body` of each.
    /// On PostgreSQL the incident rows are read `FOR SHARE`, the fence against a transition.
    const HAND_OVER: &'static str;

    type Conn: Send;
    type Tx: DerefMut<Target = Self::Conn> + Send;
    type Pooled: DerefMut<Target = Self::Conn> + Send;
    type Row: Record + Send;

    /// A pooled connection for reads.
    async fn conn(&self) -> Result<Self::Pooled>;
    /// A write transaction (`BEGIN IMMEDIATE` on SQLite, so two writers never deadlock
    /// upgrading a read lock; `BEGIN` on PostgreSQL, where statements lock rows).
    async fn begin(&self) -> Result<Self::Tx>;
    async fn commit(tx: Self::Tx) -> Result<()>;
    /// A read-only transaction whose statements all see one snapshot (customers with their
    /// contacts); ended with [`Backend::commit`].
    async fn snapshot(&self) -> Result<Self::Tx>;

    /// What follows a column in a `WHERE` for "is one of the list argument `$n`" ([`Arg::Ints`],
    /// [`Arg::Texts`]): `IN (SELECT value FROM json_each($n))` on SQLite, `= ANY($n)` on
    /// PostgreSQL. One argument however long the list: no bound-variable limit.
    fn in_list(n: usize) -> String;

    async fn fetch_all(c: &mut Self::Conn, sql: Sql<'_>) -> Result<Vec<Self::Row>>;
    async fn fetch_optional(c: &mut Self::Conn, sql: Sql<'_>) -> Result<Option<Self::Row>>;
    /// Runs a statement; the number of rows it changed.
    async fn execute(c: &mut Self::Conn, sql: Sql<'_>) -> Result<u64>;

    /// Before parking a receipt for a provider id no notice has: waits until every
    /// `complete` storing provider ids has committed and keeps new ones out until this
    /// transaction ends, so that the caller may look again. Returns whether it waited (on
    /// SQLite the one writer already excludes them: it returns `false`).
    async fn hold_provider_ids(tx: &mut Self::Conn) -> Result<bool>;

    /// Inserts or updates one chunk of customers (distinct accounts) by account id; for each
    /// row, its account id, its row id and whether it is new. New accounts get ids in the
    /// order of the chunk.
    async fn upsert_customer_rows(
        c: &mut Self::Conn,
        chunk: &[&Customer],
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, i64, bool)>>;
    /// Inserts contacts, however many.
    async fn insert_contacts(c: &mut Self::Conn, contacts: &[ContactInsert<'_>]) -> Result<()>;
    /// After a committed bulk write of `rows` rows into `tables`: PostgreSQL refreshes the
    /// planner's statistics (see `PgStore::refresh_statistics`); SQLite does nothing.
    async fn after_bulk_write(&self, tables: Bulk, rows: usize);

    /// Writes the flags of `a`; returns how many it wrote.
    async fn arm_flags(c: &mut Self::Conn, a: Arming<'_>) -> Result<u64>;
    /// Inserts the notices of `n`, however many; returns `id, channel, address` of each, in
    /// any order.
    async fn insert_notices(
        c: &mut Self::Conn,
        n: NoticeInsert<'_>,
    ) -> Result<Vec<(i64, String, String)>>;
    /// Inserts the pairs of `l`, however many; returns how many were new.
    async fn insert_links(c: &mut Self::Conn, l: Links<'_>) -> Result<u64>;

    /// The time leases are measured against in a statement whose argument `$now_arg` is the
    /// caller's now: that argument on SQLite, the database's clock `now()` on PostgreSQL (so
    /// that nodes whose clocks disagree never take each other's notices over early or late).
    fn lease_clock(now_arg: usize) -> String;
    /// Appends the end of a lease of `lease` taken at `now`, on the clock of
    /// [`Backend::lease_clock`].
    fn push_lease_end<'a>(sql: &mut Sql<'a>, now: DateTime<Utc>, lease: Duration);
    /// The claim: one statement that leases the due notices of `q` and returns them (in any
    /// order) as `id, incident_id, event kind, severity, channel, address, language, priority,
    /// subject, body, attempts, in_doubt, created_at, lon, lat`. It counts the attempt and
    /// leaves `in_doubt` as it is. On PostgreSQL it skips rows other claims hold locked.
    fn claim(q: ClaimQuery<'_>) -> Sql<'_>;

    /// Before a transaction stores provider ids (records sent outcomes): PostgreSQL takes the
    /// early-receipt lock shared (see [`Backend::hold_provider_ids`]); SQLite does nothing.
    async fn storing_provider_ids(tx: &mut Self::Conn) -> Result<()>;
    /// Records the outcomes of `w` (not empty) of notices still pending and leased to its
    /// owner; returns the ids recorded. Held, released, deferred and withdrawn notices were
    /// not attempted: the attempt is not counted and their doubt stays as it was.
    async fn write_outcomes(tx: &mut Self::Conn, w: OutcomeWrite<'_>) -> Result<Vec<i64>>;

    /// Exactly one row.
    async fn fetch_one(c: &mut Self::Conn, sql: Sql<'_>) -> Result<Self::Row> {
        Self::fetch_optional(c, sql)
            .await?
            .ok_or_else(|| crate::StoreError::Database(sqlx::Error::RowNotFound))
    }
}

/// The part of a [`Backend`] impl that is only sqlx plumbing, the same for both databases:
/// the associated types, the pool and transaction calls, and the three statement runners over
/// the calling module's own `bind` (where the two differ).
macro_rules! sqlx_plumbing {
    ($db:ty, $conn:ty, $row:ty) => {
        type Conn = $conn;
        type Tx = sqlx::Transaction<'static, $db>;
        type Pooled = sqlx::pool::PoolConnection<$db>;
        type Row = $row;

        async fn conn(&self) -> Result<Self::Pooled> {
            Ok(self.pool.acquire().await?)
        }

        async fn commit(tx: Self::Tx) -> Result<()> {
            Ok(tx.commit().await?)
        }

        async fn fetch_all(c: &mut $conn, sql: Sql<'_>) -> Result<Vec<$row>> {
            Ok(bind(sql).fetch_all(c).await?)
        }

        async fn fetch_optional(c: &mut $conn, sql: Sql<'_>) -> Result<Option<$row>> {
            Ok(bind(sql).fetch_optional(c).await?)
        }

        async fn execute(c: &mut $conn, sql: Sql<'_>) -> Result<u64> {
            Ok(bind(sql).execute(c).await?.rows_affected())
        }
    };
}
pub(crate) use sqlx_plumbing;

/// The [`Record`] columns both databases decode alike (`sqlx::Row::try_get`).
macro_rules! plain_columns {
    () => {
        fn f64(&self, col: usize) -> Result<f64> {
            Ok(self.try_get(col)?)
        }
        fn opt_f64(&self, col: usize) -> Result<Option<f64>> {
            Ok(self.try_get(col)?)
        }
        fn bool(&self, col: usize) -> Result<bool> {
            Ok(self.try_get(col)?)
        }
        fn text(&self, col: usize) -> Result<String> {
            Ok(self.try_get(col)?)
        }
        fn opt_text(&self, col: usize) -> Result<Option<String>> {
            Ok(self.try_get(col)?)
        }
    };
}
pub(crate) use plain_columns;

/// The constants and hooks both backends write under the same names in their own modules
/// (`customers`, `ivr`, `incidents`, `outbox` next to the calling `mod.rs`), forwarded alike.
macro_rules! module_hooks {
    ($conn:ty) => {
        const CUSTOMER_CHUNK: usize = customers::CUSTOMER_CHUNK;
        const IVR_LAST: &'static str = ivr::IVR_LAST;
        const IVR_CHANGES_IN_RANGE: &'static str = ivr::IVR_CHANGES_IN_RANGE;
        const IVR_PRUNE_UPTO: &'static str = ivr::IVR_PRUNE_UPTO;
        const IVR_PRUNE: &'static [&'static str] = ivr::IVR_PRUNE;
        const HAND_OVER: &'static str = outbox::HAND_SQL;

        async fn upsert_customer_rows(
            c: &mut $conn,
            chunk: &[&outagecast_core::customer::Customer],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<Vec<(String, i64, bool)>> {
            customers::upsert_customer_rows(c, chunk, now).await
        }

        async fn insert_contacts(
            c: &mut $conn,
            contacts: &[$crate::backend::ContactInsert<'_>],
        ) -> $crate::Result<()> {
            customers::insert_contacts(c, contacts).await
        }

        async fn arm_flags(c: &mut $conn, a: $crate::backend::Arming<'_>) -> $crate::Result<u64> {
            ivr::arm_flags(c, a).await
        }

        async fn insert_notices(
            c: &mut $conn,
            n: $crate::backend::NoticeInsert<'_>,
        ) -> $crate::Result<Vec<(i64, String, String)>> {
            incidents::insert_notices(c, n).await
        }

        async fn insert_links(c: &mut $conn, l: $crate::backend::Links<'_>) -> $crate::Result<u64> {
            incidents::insert_links(c, l).await
        }

        async fn write_outcomes(
            tx: &mut $conn,
            w: $crate::backend::OutcomeWrite<'_>,
        ) -> $crate::Result<Vec<i64>> {
            outbox::write_outcomes(tx, w).await
        }
    };
}
pub(crate) use module_hooks;
