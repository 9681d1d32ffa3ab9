//! IVR flags and the change feed on PostgreSQL, with the SQLite store's semantics (see
//! `crate::ivr`).
//!
//! The one difference is what a cursor counts. Under SQLite's single writer, change-log ids
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

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{
    IncidentDraft, IncidentId, IncidentKind, IncidentStatus, Severity,
};
use outagecast_core::ivr::ArmedIncident;
use outagecast_core::message::Wording;
use outagecast_core::notice::ArmedNumber;
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};

use crate::ivr::{FLAG_COLUMNS, INCIDENT_COLUMNS, RELEVANT_FLAG, RELOAD_THRESHOLD};
use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::{
    IvrChanges, IvrFlagRow, IvrIncidentRow, IvrPoll, IvrSnapshot, RearmOutcome, Result, StoreError,
    stored,
};

type IncidentRow = (
    i64,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

type FlagRow = (String, i64, String, String, Option<DateTime<Utc>>);

type ArmedRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The last commit number visible in this snapshot, never below what was pruned.
const LAST_COMMIT: &str = "SELECT (SELECT COALESCE(MAX(seq), 0) FROM ivr_commits),
                                  (SELECT upto FROM ivr_changes_pruned WHERE singleton = 1)";

/// The change-log entries of the commits in `($1, $2]`.
const CHANGES_IN_RANGE: &str = "SELECT c.incident_id, c.phone
      FROM ivr_commits k JOIN ivr_changes c ON c.xid = k.xid
     WHERE k.seq > $1 AND k.seq <= $2";

fn incident(r: IncidentRow) -> Result<IvrIncidentRow> {
    let (id, kind, severity, status, etr, declared_at, updated_at, expires_at) = r;
    Ok(IvrIncidentRow {
        id: IncidentId(id),
        kind: stored(&kind, IncidentKind::parse)?,
        severity: stored(&severity, Severity::parse)?,
        status: stored(&status, IncidentStatus::parse)?,
        etr,
        declared_at,
        updated_at,
        expires_at,
    })
}

fn flag(r: FlagRow) -> Result<IvrFlagRow> {
    let (phone, incident_id, language, announcement, disarmed_at) = r;
    Ok(IvrFlagRow {
        phone,
        incident_id: IncidentId(incident_id),
        language: stored(&language, Language::parse)?,
        announcement,
        disarmed_at,
    })
}

fn armed(r: ArmedRow) -> Result<ArmedIncident> {
    let (id, language, announcement, kind, severity, status, etr, declared_at) = r;
    Ok(ArmedIncident {
        id: IncidentId(id),
        kind: stored(&kind, IncidentKind::parse)?,
        severity: stored(&severity, Severity::parse)?,
        status: stored(&status, IncidentStatus::parse)?,
        etr,
        declared_at,
        language: stored(&language, Language::parse)?,
        announcement,
    })
}

/// A read-only transaction on one snapshot.
async fn read_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

impl PgStore {
    /// The live incidents armed for `phone` (E.164) at `now`: not disarmed, not closed, not
    /// expired. Any order; [`outagecast_core::ivr::answer`] ranks them.
    pub async fn armed_for(&self, phone: &str, now: DateTime<Utc>) -> Result<Vec<ArmedIncident>> {
        let rows: Vec<ArmedRow> = sqlx::query_as(
            "SELECT i.id, f.language, f.announcement, i.kind, i.severity, i.status, i.etr, i.declared_at
               FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
              WHERE f.phone = $1 AND f.disarmed_at IS NULL
                AND i.status IN ('declared', 'updated')
                AND (i.expires_at IS NULL OR i.expires_at > $2)",
        )
        .bind(phone)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(armed).collect()
    }

    /// Everything the IVR may announce at `now`, with the change-log cursor it reflects.
    /// Restored incidents are included when they closed at or after `closed_since` (pass
    /// `now` for none). Expired ones are left out.
    pub async fn ivr_snapshot(
        &self,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        self.snapshot_of(now, closed_since, None).await
    }

    /// [`PgStore::ivr_snapshot`] for one number (E.164) only: what a one-off lookup needs.
    pub async fn ivr_snapshot_for(
        &self,
        phone: &str,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        self.snapshot_of(now, closed_since, Some(phone)).await
    }

    async fn snapshot_of(
        &self,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
        phone: Option<&str>,
    ) -> Result<IvrSnapshot> {
        // One snapshot: a commit is either in the rows or after the cursor, never lost.
        let mut tx = read_snapshot(&self.pool).await?;
        let (last, pruned): (i64, i64) = sqlx::query_as(LAST_COMMIT).fetch_one(&mut *tx).await?;
        // Active and not expired, or restored within the grace.
        let live = |q: &mut QueryBuilder<Postgres>| {
            q.push(" (i.status IN ('declared', 'updated') OR (i.status = 'restored' AND i.updated_at >= ")
                .push_bind(closed_since)
                .push(")) AND (i.expires_at IS NULL OR i.expires_at > ")
                .push_bind(now)
                .push(")");
        };
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE"
        ));
        live(&mut q);
        let incidents: Vec<IncidentRow> = q.build_query_as().fetch_all(&mut *tx).await?;
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {FLAG_COLUMNS} FROM incidents i JOIN ivr_flags f ON f.incident_id = i.id
             WHERE {RELEVANT_FLAG} AND"
        ));
        live(&mut q);
        if let Some(phone) = phone {
            q.push(" AND f.phone = ").push_bind(phone);
        }
        let flags: Vec<FlagRow> = q.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(IvrSnapshot {
            cursor: last.max(pruned),
            incidents: incidents.into_iter().map(incident).collect::<Result<_>>()?,
            flags: flags.into_iter().map(flag).collect::<Result<_>>()?,
        })
    }

    /// What changed after `cursor` (from a snapshot or an earlier poll). Cheap when nothing
    /// did: one read of the last commit number.
    pub async fn ivr_changes(&self, cursor: i64) -> Result<IvrPoll> {
        let mut tx = read_snapshot(&self.pool).await?;
        let (last, pruned): (i64, i64) = sqlx::query_as(LAST_COMMIT).fetch_one(&mut *tx).await?;
        if pruned > cursor {
            return Ok(IvrPoll::Lost);
        }
        if last <= cursor {
            return Ok(IvrPoll::Unchanged);
        }
        // Per incident: how many numbers changed, and whether the incident itself did.
        let groups: Vec<(i64, i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT incident_id, COUNT(DISTINCT phone), bool_or(phone IS NULL)
               FROM ({CHANGES_IN_RANGE}) c GROUP BY incident_id ORDER BY incident_id"
        )))
        .bind(cursor)
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
        let mut changes = IvrChanges {
            cursor: last,
            ..IvrChanges::default()
        };
        let mut singles: Vec<i64> = Vec::new();
        for (incident_id, phones, whole) in groups {
            changes.touched.push(IncidentId(incident_id));
            if whole || phones > RELOAD_THRESHOLD {
                changes.reloaded.push(IncidentId(incident_id));
            } else {
                singles.push(incident_id);
            }
        }
        let reloaded: Vec<i64> = changes.reloaded.iter().map(|id| id.0).collect();
        let mut flags: Vec<FlagRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FLAG_COLUMNS} FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
              WHERE f.incident_id = ANY($1) AND {RELEVANT_FLAG}
              ORDER BY f.incident_id, f.phone"
        )))
        .bind(&reloaded)
        .fetch_all(&mut *tx)
        .await?;
        if !singles.is_empty() {
            let pairs: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT incident_id, phone FROM ({CHANGES_IN_RANGE}) c
                  WHERE incident_id = ANY($3) AND phone IS NOT NULL
                  ORDER BY incident_id, phone"
            )))
            .bind(cursor)
            .bind(last)
            .bind(&singles)
            .fetch_all(&mut *tx)
            .await?;
            let (ids, phones): (Vec<i64>, Vec<String>) = pairs.iter().cloned().unzip();
            flags.extend(
                sqlx::query_as::<_, FlagRow>(sqlx::AssertSqlSafe(format!(
                    "SELECT {FLAG_COLUMNS} FROM ivr_flags f
                       JOIN UNNEST($1::int8[], $2::text[]) AS u(incident_id, phone)
                         ON f.incident_id = u.incident_id AND f.phone = u.phone
                      ORDER BY f.incident_id, f.phone"
                )))
                .bind(&ids)
                .bind(&phones)
                .fetch_all(&mut *tx)
                .await?,
            );
            changes.phones = pairs
                .into_iter()
                .map(|(id, phone)| (IncidentId(id), phone))
                .collect();
        }
        let touched: Vec<i64> = changes.touched.iter().map(|id| id.0).collect();
        let incidents: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id = ANY($1) ORDER BY i.id"
        )))
        .bind(&touched)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        changes.incidents = incidents.into_iter().map(incident).collect::<Result<_>>()?;
        changes.flags = flags.into_iter().map(flag).collect::<Result<_>>()?;
        Ok(IvrPoll::Changed(changes))
    }

    /// Forgets change-log entries of commits made before `before`; followers that had not
    /// read them yet get [`IvrPoll::Lost`] and reload. Returns how many entries went.
    pub async fn prune_ivr_changes(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // Every commit up to this one is finished, so the deletes below see all of them.
        let (upto,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(seq) FROM ivr_commits WHERE at < $1")
                .bind(before)
                .fetch_one(&mut *tx)
                .await?;
        let Some(upto) = upto else {
            return Ok(0);
        };
        let gone = sqlx::query(
            "DELETE FROM ivr_changes c USING ivr_commits k WHERE c.xid = k.xid AND k.seq <= $1",
        )
        .bind(upto)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM ivr_commits WHERE seq <= $1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE ivr_changes_pruned SET upto = GREATEST(upto, $1) WHERE singleton = 1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Brings an active incident's IVR flags in line with the numbers that should be armed now
    /// (see `SqliteStore::rearm_ivr`): new numbers armed, numbers no longer in the area
    /// disarmed, a changed language re-announced; nothing for a closed incident. New flags
    /// reuse the incident's current announcement in their language; `wording` writes it only
    /// for a language the incident has not been announced in yet. One statement writes
    /// every flag; the incident row is locked first, so a concurrent transition (which locks
    /// it too) runs before or after, never in between.
    pub async fn rearm_ivr(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        armed: &[ArmedNumber],
        wording: &dyn Wording,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RearmOutcome> {
        let mut tx = self.pool.begin().await?;
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status FROM incidents WHERE id = $1 FOR NO KEY UPDATE")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
        let active = match status {
            Some((s,)) => stored(&s, IncidentStatus::parse)?.is_active(),
            None => false,
        };
        if !active {
            return Ok(RearmOutcome::default());
        }
        let current: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT ON (language) language, announcement FROM ivr_flags
              WHERE incident_id = $1 AND disarmed_at IS NULL ORDER BY language",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut texts: BTreeMap<Language, String> = BTreeMap::new();
        for (lang, text) in current {
            texts.insert(stored(&lang, Language::parse)?, text);
        }
        let languages: BTreeSet<Language> = armed.iter().map(|n| n.language).collect();
        for lang in languages {
            texts
                .entry(lang)
                .or_insert_with(|| wording.announcement(draft, lang));
        }
        let (text_langs, text_bodies): (Vec<&str>, Vec<&str>) = texts
            .iter()
            .map(|(lang, text)| (lang.code(), text.as_str()))
            .unzip();
        let phones: Vec<&str> = armed.iter().map(|n| n.e164.as_str()).collect();
        let langs: Vec<&str> = armed.iter().map(|n| n.language.code()).collect();
        // The first entry of a number wins, as on SQLite.
        let (armed_n, disarmed, relanguaged, written): (i64, i64, i64, i64) = sqlx::query_as(
            "WITH wanted AS (
                 SELECT DISTINCT ON (u.phone) u.phone, u.lang
                   FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS u(phone, lang, ord)
                  ORDER BY u.phone, u.ord
             ), armed AS (
                 SELECT phone, language FROM ivr_flags WHERE incident_id = $1 AND disarmed_at IS NULL
             ), changed AS (
                 SELECT w.phone, w.lang, a.phone IS NOT NULL AS relanguaged
                   FROM wanted w LEFT JOIN armed a ON a.phone = w.phone
                  WHERE a.language IS DISTINCT FROM w.lang
             ), written AS (
                 INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at)
                 SELECT c.phone, $1, c.lang, t.text, $6
                   FROM changed c JOIN UNNEST($4::text[], $5::text[]) AS t(lang, text)
                     ON t.lang = c.lang
                 ON CONFLICT (phone, incident_id) DO UPDATE
                    SET language = EXCLUDED.language, announcement = EXCLUDED.announcement,
                        armed_at = EXCLUDED.armed_at, disarmed_at = NULL
                 RETURNING 1
             ), disarmed AS (
                 UPDATE ivr_flags f SET disarmed_at = $6
                   FROM armed a
                  WHERE f.incident_id = $1 AND f.phone = a.phone
                    AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.phone = a.phone)
                 RETURNING 1
             )
             SELECT (SELECT COUNT(*) FROM changed WHERE NOT relanguaged),
                    (SELECT COUNT(*) FROM disarmed),
                    (SELECT COUNT(*) FROM changed WHERE relanguaged),
                    (SELECT COUNT(*) FROM written)",
        )
        .bind(id.0)
        .bind(&phones)
        .bind(&langs)
        .bind(&text_langs)
        .bind(&text_bodies)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if written != armed_n + relanguaged {
            // Every language has a text above; a row left out would be a bug, not a rearm.
            return Err(StoreError::Corrupt(format!(
                "rearming incident {id}: wrote {written} of {} flags",
                armed_n + relanguaged
            )));
        }
        let outcome = RearmOutcome {
            armed: count(armed_n),
            disarmed: count(disarmed),
            relanguaged: count(relanguaged),
        };
        if outcome != RearmOutcome::default() {
            audit(
                &mut tx,
                actor,
                "incident.ivr_rearm",
                Some(&format!("incident:{id}")),
                &serde_json::json!(outcome),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}
