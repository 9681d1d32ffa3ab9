//! IVR flags: which live incidents a caller number is armed for, and the change feed that lets
//! a running server follow every change to them, whichever process made it.
//!
//! The feed is the `ivr_changes` log (migration 0003), filled by triggers on `incidents` and
//! `ivr_flags`. A follower reads a [`IvrSnapshot`] once, then polls [`SqliteStore::ivr_changes`]
//! with the cursor it got; each answer says exactly what to re-read, already read in the same
//! database snapshot as the cursor, so nothing falls between two polls.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{
    IncidentDraft, IncidentId, IncidentKind, IncidentStatus, Severity,
};
use outagecast_core::ivr::ArmedIncident;
use outagecast_core::message::Wording;
use outagecast_core::notice::ArmedNumber;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::{Result, SqliteStore, audit, parse_opt_ts, parse_ts, stored, ts};

type FlagRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
);

/// More changed numbers than this for one incident in one poll, and the follower re-reads all
/// of the incident's flags instead of each number: one indexed range read beats a long IN list.
pub(crate) const RELOAD_THRESHOLD: i64 = 1000;

/// Numbers per `IN (...)` list, well under SQLite's bound-variable limit.
const CHUNK: usize = 500;

/// An incident as the IVR needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrIncidentRow {
    /// Incident id.
    pub id: IncidentId,
    /// Service kind.
    pub kind: IncidentKind,
    /// Severity.
    pub severity: Severity,
    /// Current status.
    pub status: IncidentStatus,
    /// Estimated restoration.
    pub etr: Option<DateTime<Utc>>,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// When it last changed; for a restored or cancelled incident, when it closed.
    pub updated_at: DateTime<Utc>,
    /// When callers stop hearing about it, if set.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One `ivr_flags` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrFlagRow {
    /// Caller number, E.164.
    pub phone: String,
    /// Incident.
    pub incident_id: IncidentId,
    /// The caller's language.
    pub language: Language,
    /// What they hear.
    pub announcement: String,
    /// When it was disarmed (by a restore, a cancel, or a re-import that moved the number out).
    pub disarmed_at: Option<DateTime<Utc>>,
}

/// Everything the IVR may announce, read in one database snapshot.
#[derive(Debug, Clone, Default)]
pub struct IvrSnapshot {
    /// The last change already reflected here; poll [`SqliteStore::ivr_changes`] from it.
    pub cursor: i64,
    /// Active incidents that have not expired, and incidents restored since `closed_since`.
    pub incidents: Vec<IvrIncidentRow>,
    /// Their flags: armed ones, and for restored incidents the ones the restore disarmed.
    pub flags: Vec<IvrFlagRow>,
}

/// What changed after a cursor, read in one database snapshot.
#[derive(Debug, Clone, Default)]
pub struct IvrChanges {
    /// The last change reflected here; poll again from it.
    pub cursor: i64,
    /// Every incident something changed for.
    pub touched: Vec<IncidentId>,
    /// Those of them that still exist, as they are now.
    pub incidents: Vec<IvrIncidentRow>,
    /// Incidents whose flags were all re-read: `flags` holds every relevant flag of each, and
    /// any other number held for them is stale.
    pub reloaded: Vec<IncidentId>,
    /// Single (incident, number) pairs re-read: `flags` holds the row if it still exists.
    pub phones: Vec<(IncidentId, String)>,
    /// The rows re-read.
    pub flags: Vec<IvrFlagRow>,
}

/// The answer to a poll.
#[derive(Debug, Clone)]
pub enum IvrPoll {
    /// Nothing changed since the cursor.
    Unchanged,
    /// The log was pruned past the cursor (the follower stalled for a long time): take a new
    /// [`IvrSnapshot`].
    Lost,
    /// These changes.
    Changed(IvrChanges),
}

/// What re-arming an incident after a customer import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RearmOutcome {
    /// Numbers newly armed (new customers in the area, new numbers).
    pub armed: u64,
    /// Numbers disarmed (no longer on any customer in the area).
    pub disarmed: u64,
    /// Numbers whose language changed.
    pub relanguaged: u64,
}

type IncidentRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
);

type StoredFlagRow = (String, i64, String, String, Option<String>);

/// The flags worth holding: armed, or disarmed by the restore of their incident (for the
/// "restored" announcement). A flag disarmed earlier (its number left the area) is not.
pub(crate) const RELEVANT_FLAG: &str =
    "(f.disarmed_at IS NULL OR (i.status = 'restored' AND f.disarmed_at >= i.updated_at))";

fn incident_row(r: IncidentRow) -> Result<IvrIncidentRow> {
    let (id, kind, severity, status, etr, declared_at, updated_at, expires_at) = r;
    Ok(IvrIncidentRow {
        id: IncidentId(id),
        kind: stored(&kind, IncidentKind::parse)?,
        severity: stored(&severity, Severity::parse)?,
        status: stored(&status, IncidentStatus::parse)?,
        etr: parse_opt_ts(etr)?,
        declared_at: parse_ts(&declared_at)?,
        updated_at: parse_ts(&updated_at)?,
        expires_at: parse_opt_ts(expires_at)?,
    })
}

fn flag_row(r: StoredFlagRow) -> Result<IvrFlagRow> {
    let (phone, incident_id, language, announcement, disarmed_at) = r;
    Ok(IvrFlagRow {
        phone,
        incident_id: IncidentId(incident_id),
        language: stored(&language, Language::parse)?,
        announcement,
        disarmed_at: parse_opt_ts(disarmed_at)?,
    })
}

pub(crate) const INCIDENT_COLUMNS: &str =
    "i.id, i.kind, i.severity, i.status, i.etr, i.declared_at, i.updated_at, i.expires_at";
pub(crate) const FLAG_COLUMNS: &str =
    "f.phone, f.incident_id, f.language, f.announcement, f.disarmed_at";

impl SqliteStore {
    /// The live incidents armed for `phone` (E.164) at `now`: not disarmed, not closed, not
    /// expired. Any order; [`outagecast_core::ivr::answer`] ranks them.
    pub async fn armed_for(&self, phone: &str, now: DateTime<Utc>) -> Result<Vec<ArmedIncident>> {
        let rows: Vec<FlagRow> = sqlx::query_as(
            "SELECT i.id, f.language, f.announcement, i.kind, i.severity, i.status, i.etr, i.declared_at
             FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
             WHERE f.phone = ? AND f.disarmed_at IS NULL
               AND i.status IN ('declared', 'updated')
               AND (i.expires_at IS NULL OR i.expires_at > ?)",
        )
        .bind(phone)
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(id, lang, text, kind, severity, status, etr, declared_at)| {
                    Ok(ArmedIncident {
                        id: IncidentId(id),
                        kind: stored(&kind, IncidentKind::parse)?,
                        severity: stored(&severity, Severity::parse)?,
                        status: stored(&status, IncidentStatus::parse)?,
                        etr: parse_opt_ts(etr)?,
                        declared_at: parse_ts(&declared_at)?,
                        language: stored(&lang, Language::parse)?,
                        announcement: text,
                    })
                },
            )
            .collect()
    }

    /// Everything the IVR may announce at `now`, with the change-log cursor it reflects.
    /// Restored incidents are included when they closed at or after `closed_since` (the
    /// caller's "restored" grace period; pass `now` for none). Expired ones are left out.
    pub async fn ivr_snapshot(
        &self,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        self.snapshot_of(now, closed_since, None).await
    }

    /// [`SqliteStore::ivr_snapshot`] for one number (E.164) only: what a one-off lookup needs.
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
        // One read transaction: the cursor and the rows come from the same snapshot, so a
        // change committed meanwhile is either in the rows or after the cursor, never lost.
        let mut tx = self.pool.begin().await?;
        // The log may have been pruned empty: the cursor never goes below what was pruned.
        let (cursor,): (i64,) = sqlx::query_as(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM ivr_changes), 0),
                        (SELECT upto FROM ivr_changes_pruned WHERE singleton = 1))",
        )
        .fetch_one(&mut *tx)
        .await?;
        let incident_filter = "(i.status IN ('declared', 'updated') OR (i.status = 'restored' AND i.updated_at >= ?1))
               AND (i.expires_at IS NULL OR i.expires_at > ?2)";
        let incidents: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE {incident_filter}"
        )))
        .bind(ts(closed_since))
        .bind(ts(now))
        .fetch_all(&mut *tx)
        .await?;
        let phone_filter = if phone.is_some() {
            " AND f.phone = ?3"
        } else {
            ""
        };
        let flags: Vec<StoredFlagRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FLAG_COLUMNS} FROM incidents i JOIN ivr_flags f ON f.incident_id = i.id
             WHERE {incident_filter} AND {RELEVANT_FLAG}{phone_filter}"
        )))
        .bind(ts(closed_since))
        .bind(ts(now))
        .bind(phone.unwrap_or_default())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IvrSnapshot {
            cursor,
            incidents: incidents
                .into_iter()
                .map(incident_row)
                .collect::<Result<_>>()?,
            flags: flags.into_iter().map(flag_row).collect::<Result<_>>()?,
        })
    }

    /// What changed after `cursor` (from a snapshot or an earlier poll). Cheap when nothing
    /// did: one read of the log's last id.
    pub async fn ivr_changes(&self, cursor: i64) -> Result<IvrPoll> {
        let mut tx = self.pool.begin().await?;
        let (last, pruned): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM ivr_changes),
                    (SELECT upto FROM ivr_changes_pruned WHERE singleton = 1)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if pruned > cursor {
            return Ok(IvrPoll::Lost);
        }
        if last <= cursor {
            return Ok(IvrPoll::Unchanged);
        }
        // Per incident: how many numbers changed, and whether the incident itself did.
        let groups: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT incident_id, COUNT(DISTINCT phone), MAX(phone IS NULL)
             FROM ivr_changes WHERE id > ? AND id <= ? GROUP BY incident_id ORDER BY incident_id",
        )
        .bind(cursor)
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
        let mut changes = IvrChanges {
            cursor: last,
            ..IvrChanges::default()
        };
        let mut flags: Vec<StoredFlagRow> = Vec::new();
        for (incident_id, phones, whole) in groups {
            changes.touched.push(IncidentId(incident_id));
            if whole != 0 || phones > RELOAD_THRESHOLD {
                changes.reloaded.push(IncidentId(incident_id));
                flags.extend(incident_flags(&mut tx, incident_id).await?);
            } else {
                let changed: Vec<(String,)> = sqlx::query_as(
                    "SELECT DISTINCT phone FROM ivr_changes
                     WHERE id > ? AND id <= ? AND incident_id = ? AND phone IS NOT NULL",
                )
                .bind(cursor)
                .bind(last)
                .bind(incident_id)
                .fetch_all(&mut *tx)
                .await?;
                for chunk in changed.chunks(CHUNK) {
                    let mut q = QueryBuilder::<Sqlite>::new(format!(
                        "SELECT {FLAG_COLUMNS} FROM ivr_flags f WHERE f.incident_id = "
                    ));
                    q.push_bind(incident_id).push(" AND f.phone IN (");
                    let mut list = q.separated(", ");
                    for (phone,) in chunk {
                        list.push_bind(phone.clone());
                    }
                    list.push_unseparated(")");
                    flags.extend(
                        q.build_query_as::<StoredFlagRow>()
                            .fetch_all(&mut *tx)
                            .await?,
                    );
                }
                changes.phones.extend(
                    changed
                        .into_iter()
                        .map(|(phone,)| (IncidentId(incident_id), phone)),
                );
            }
        }
        for chunk in changes.touched.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id IN ("
            ));
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            list.push_unseparated(")");
            let rows = q
                .build_query_as::<IncidentRow>()
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                changes.incidents.push(incident_row(row)?);
            }
        }
        tx.commit().await?;
        changes.flags = flags.into_iter().map(flag_row).collect::<Result<_>>()?;
        Ok(IvrPoll::Changed(changes))
    }

    /// Forgets change-log entries written before `before`; followers that had not read them
    /// yet get [`IvrPoll::Lost`] and reload. Returns how many entries went.
    pub async fn prune_ivr_changes(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let (upto,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(id) FROM ivr_changes WHERE at < ?")
                .bind(ts(before))
                .fetch_one(&mut *tx)
                .await?;
        let Some(upto) = upto else {
            return Ok(0);
        };
        let gone = sqlx::query("DELETE FROM ivr_changes WHERE id <= ?")
            .bind(upto)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE ivr_changes_pruned SET upto = MAX(upto, ?) WHERE singleton = 1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Brings an active incident's IVR flags in line with the numbers that should be armed now
    /// (`armed`: every number of every customer in its area, as the engine selects it after a
    /// customer import). New numbers are armed, numbers no longer in the area are disarmed, a
    /// changed language gets the announcement in the new language. Nothing happens to a
    /// closed incident. New flags reuse the incident's current announcement in their language,
    /// so every caller of an incident hears the same words; `wording` writes it only for a
    /// language the incident has not been announced in yet.
    pub async fn rearm_ivr(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        armed: &[ArmedNumber],
        wording: &dyn Wording,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RearmOutcome> {
        let mut tx = self.write_tx().await?;
        let status: Option<(String,)> = sqlx::query_as("SELECT status FROM incidents WHERE id = ?")
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
        let current: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT phone, language, disarmed_at, announcement FROM ivr_flags WHERE incident_id = ?",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut texts: BTreeMap<Language, String> = BTreeMap::new();
        let mut armed_now: HashMap<String, Language> = HashMap::new();
        let mut known: BTreeSet<String> = BTreeSet::new();
        for (phone, lang, disarmed_at, text) in current {
            let lang = stored(&lang, Language::parse)?;
            known.insert(phone.clone());
            if disarmed_at.is_none() {
                texts.entry(lang).or_insert(text);
                armed_now.insert(phone, lang);
            }
        }
        let now_s = ts(now);
        let mut outcome = RearmOutcome::default();
        let mut wanted: HashMap<&str, Language> = HashMap::new();
        for n in armed {
            wanted.entry(n.e164.as_str()).or_insert(n.language);
        }
        for (phone, lang) in &wanted {
            let change = match armed_now.get(*phone) {
                Some(l) if l == lang => continue,
                Some(_) => &mut outcome.relanguaged,
                None => &mut outcome.armed,
            };
            *change += 1;
            let text = texts
                .entry(*lang)
                .or_insert_with(|| wording.announcement(draft, *lang))
                .clone();
            // A number seen before (disarmed by an earlier re-import) is armed again in place:
            // the key is (phone, incident).
            let sql = if known.contains(*phone) {
                "UPDATE ivr_flags SET language = ?3, announcement = ?4, armed_at = ?5, disarmed_at = NULL
                 WHERE phone = ?1 AND incident_id = ?2"
            } else {
                "INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)"
            };
            sqlx::query(sql)
                .bind(*phone)
                .bind(id.0)
                .bind(lang.code())
                .bind(text)
                .bind(&now_s)
                .execute(&mut *tx)
                .await?;
        }
        for phone in armed_now.keys() {
            if !wanted.contains_key(phone.as_str()) {
                sqlx::query(
                    "UPDATE ivr_flags SET disarmed_at = ? WHERE phone = ? AND incident_id = ?",
                )
                .bind(&now_s)
                .bind(phone)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                outcome.disarmed += 1;
            }
        }
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

async fn incident_flags(
    tx: &mut Transaction<'static, Sqlite>,
    incident_id: i64,
) -> Result<Vec<StoredFlagRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {FLAG_COLUMNS} FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
         WHERE f.incident_id = ? AND {RELEVANT_FLAG}"
    )))
    .bind(incident_id)
    .fetch_all(&mut **tx)
    .await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The contract suite (`tests/contract/ivr.rs`) covers the feed on both backends; this is
    //! what only SQLite has: several pools on one file.

    use super::*;
    use crate::Transition;
    use crate::test_support::{customer, declare_with, locale, seeded};
    use outagecast_core::customer::{Customer, CustomerId};
    use outagecast_core::incident::{EventKind, IncidentChanges};
    use outagecast_core::notice::plan_recipients;

    #[tokio::test]
    async fn a_change_made_through_another_pool_on_the_same_file_is_followed() {
        let (store, dir, loaded) = seeded(&[customer("A", "+358481111111", "")]).await;
        let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
        let now = Utc::now();
        let plan = plan_recipients(&refs, |_, _| false);
        let id = declare_with(&store, &loaded, &plan, now)
            .await
            .unwrap()
            .incident
            .id;
        let cursor = store.ivr_snapshot(now, now).await.unwrap().cursor;

        // Another process: its own pool on the same file.
        let other = SqliteStore::open(&dir.path().join("test.db"))
            .await
            .unwrap();
        let t = Transition {
            id,
            event: EventKind::Restored,
            changes: IncidentChanges::default(),
            actor: "test",
            now,
            growth: None,
        };
        other.transition(t, &locale(now)).await.unwrap();
        let IvrPoll::Changed(c) = store.ivr_changes(cursor).await.unwrap() else {
            panic!("the other pool's change is in the log");
        };
        assert_eq!((c.touched, c.reloaded), (vec![id], vec![id]));
        assert_eq!(c.incidents[0].status, IncidentStatus::Restored);
    }
}
