//! IVR flags and the change feed: armed incidents for a number, the snapshot a follower starts
//! from, the changes after its cursor, and re-arming an incident after an import.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{IncidentDraft, IncidentId, IncidentStatus};
use outagecast_core::ivr::ArmedIncident;
use outagecast_core::message::Wording;
use outagecast_core::notice::ArmedNumber;

use crate::Result;
use crate::backend::{Arming, Backend, FlagConflict, Record, Sql};
use crate::model::ivr::{
    ARMED_COLUMNS, FLAG_COLUMNS, INCIDENT_COLUMNS, IvrChanges, IvrPoll, IvrSnapshot, RELEVANT_FLAG,
    RELOAD_THRESHOLD, RearmOutcome, armed_incident, flag_row, incident_row,
};
use crate::model::stored;
use crate::ops::audit;

/// The live incidents armed for `phone` (E.164) at `now`: not disarmed, not closed, not
/// expired. Any order; [`outagecast_core::ivr::answer`] ranks them.
pub(crate) async fn armed_for<B: Backend>(
    b: &B,
    phone: &str,
    now: DateTime<Utc>,
) -> Result<Vec<ArmedIncident>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT {ARMED_COLUMNS}
               FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
              WHERE f.phone = $1 AND f.disarmed_at IS NULL
                AND i.status IN ('declared', 'updated')
                AND (i.expires_at IS NULL OR i.expires_at > $2)"
        ))
        .arg(phone)
        .arg(now),
    )
    .await?;
    rows.iter().map(armed_incident).collect()
}

/// Everything the IVR may announce at `now` (for one number, or all), with the change-log
/// cursor it reflects. Restored incidents are included when they closed at or after
/// `closed_since` (the caller's "restored" grace period; pass `now` for none). Expired ones
/// are left out.
pub(crate) async fn ivr_snapshot<B: Backend>(
    b: &B,
    phone: Option<&str>,
    now: DateTime<Utc>,
    closed_since: DateTime<Utc>,
) -> Result<IvrSnapshot> {
    // One snapshot: the cursor and the rows agree, so a change committed meanwhile is either
    // in the rows or after the cursor, never lost.
    let mut tx = b.snapshot().await?;
    let cursor = B::fetch_one(&mut tx, Sql::new(B::IVR_LAST)).await?;
    // The log may have been pruned empty: the cursor never goes below what was pruned.
    let cursor = cursor.i64(0)?.max(cursor.i64(1)?);
    // Active and not expired, or restored within the grace.
    let live =
        "(i.status IN ('declared', 'updated') OR (i.status = 'restored' AND i.updated_at >= $1))
               AND (i.expires_at IS NULL OR i.expires_at > $2)";
    let incidents = B::fetch_all(
        &mut tx,
        Sql::built(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE {live}"
        ))
        .arg(closed_since)
        .arg(now),
    )
    .await?;
    let phone_filter = if phone.is_some() {
        " AND f.phone = $3"
    } else {
        ""
    };
    let mut flags = Sql::built(format!(
        "SELECT {FLAG_COLUMNS} FROM incidents i JOIN ivr_flags f ON f.incident_id = i.id
          WHERE {live} AND {RELEVANT_FLAG}{phone_filter}"
    ))
    .arg(closed_since)
    .arg(now);
    if let Some(phone) = phone {
        flags = flags.arg(phone);
    }
    let flags = B::fetch_all(&mut tx, flags).await?;
    B::commit(tx).await?;
    Ok(IvrSnapshot {
        cursor,
        incidents: incidents.iter().map(incident_row).collect::<Result<_>>()?,
        flags: flags.iter().map(flag_row).collect::<Result<_>>()?,
    })
}

/// What changed after `cursor` (from a snapshot or an earlier poll). Cheap when nothing did:
/// one read of the log's end.
pub(crate) async fn ivr_changes<B: Backend>(b: &B, cursor: i64) -> Result<IvrPoll> {
    let mut tx = b.snapshot().await?;
    let end = B::fetch_one(&mut tx, Sql::new(B::IVR_LAST)).await?;
    let (last, pruned) = (end.i64(0)?, end.i64(1)?);
    if pruned > cursor {
        return Ok(IvrPoll::Lost);
    }
    if last <= cursor {
        return Ok(IvrPoll::Unchanged);
    }
    let range = B::IVR_CHANGES_IN_RANGE;
    // Per incident: how many numbers changed, and whether the incident itself did.
    let groups = B::fetch_all(
        &mut tx,
        Sql::built(format!(
            "SELECT incident_id, COUNT(DISTINCT phone),
                    MAX(CASE WHEN phone IS NULL THEN 1 ELSE 0 END)
               FROM ({range}) c GROUP BY incident_id ORDER BY incident_id"
        ))
        .arg(cursor)
        .arg(last),
    )
    .await?;
    let mut changes = IvrChanges {
        cursor: last,
        ..IvrChanges::default()
    };
    let mut singles: Vec<i64> = Vec::new();
    for g in &groups {
        let incident = g.i64(0)?;
        changes.touched.push(IncidentId(incident));
        if g.i64(2)? != 0 || g.i64(1)? > RELOAD_THRESHOLD {
            changes.reloaded.push(IncidentId(incident));
        } else {
            singles.push(incident);
        }
    }
    let mut flags = Vec::new();
    if !changes.reloaded.is_empty() {
        flags = B::fetch_all(
            &mut tx,
            Sql::built(format!(
                "SELECT {FLAG_COLUMNS} FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
                  WHERE f.incident_id {} AND {RELEVANT_FLAG}
                  ORDER BY f.incident_id, f.phone",
                B::in_list(1)
            ))
            .arg(changes.reloaded.iter().map(|id| id.0).collect::<Vec<_>>()),
        )
        .await?;
    }
    if !singles.is_empty() {
        let pairs = format!(
            "SELECT DISTINCT incident_id, phone FROM ({range}) c
              WHERE incident_id {} AND phone IS NOT NULL",
            B::in_list(3)
        );
        let rows = B::fetch_all(
            &mut tx,
            Sql::built(format!("{pairs} ORDER BY incident_id, phone"))
                .arg(cursor)
                .arg(last)
                .arg(singles.clone()),
        )
        .await?;
        for r in &rows {
            changes.phones.push((IncidentId(r.i64(0)?), r.text(1)?));
        }
        flags.extend(
            B::fetch_all(
                &mut tx,
                Sql::built(format!(
                    "SELECT {FLAG_COLUMNS} FROM ivr_flags f
                       JOIN ({pairs}) u ON f.incident_id = u.incident_id AND f.phone = u.phone
                      ORDER BY f.incident_id, f.phone"
                ))
                .arg(cursor)
                .arg(last)
                .arg(singles),
            )
            .await?,
        );
    }
    let incidents = B::fetch_all(
        &mut tx,
        Sql::built(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id {} ORDER BY i.id",
            B::in_list(1)
        ))
        .arg(changes.touched.iter().map(|id| id.0).collect::<Vec<_>>()),
    )
    .await?;
    B::commit(tx).await?;
    changes.incidents = incidents.iter().map(incident_row).collect::<Result<_>>()?;
    changes.flags = flags.iter().map(flag_row).collect::<Result<_>>()?;
    Ok(IvrPoll::Changed(changes))
}

/// Brings an active incident's IVR flags in line with the numbers that should be armed now
/// (`armed`: every number of every customer in its area, as the engine selects it after a
/// customer import). New numbers are armed, numbers no longer in the area are disarmed, a
/// changed language gets the announcement in the new language; the first entry of a number
/// wins. Nothing happens to a closed incident. New flags reuse the incident's current
/// announcement in their language, so every caller of an incident hears the same words;
/// `wording` writes it only for a language the incident has not been announced in yet. The
/// incident row is locked first, so a concurrent transition runs before or after, never in
/// between.
pub(crate) async fn rearm_ivr<B: Backend>(
    b: &B,
    id: IncidentId,
    draft: &IncidentDraft,
    armed: &[ArmedNumber],
    wording: &dyn Wording,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<RearmOutcome> {
    let mut tx = b.begin().await?;
    let status = B::fetch_optional(
        &mut tx,
        Sql::built(format!(
            "SELECT status FROM incidents WHERE id = $1{}",
            B::LOCK_ROWS
        ))
        .arg(id.0),
    )
    .await?;
    let active = match status {
        Some(s) => stored(&s.text(0)?, IncidentStatus::parse)?.is_active(),
        None => false,
    };
    if !active {
        return Ok(RearmOutcome::default());
    }
    let mut texts: BTreeMap<Language, String> = BTreeMap::new();
    for r in B::fetch_all(
        &mut tx,
        Sql::new(
            "SELECT language, MAX(announcement) FROM ivr_flags
              WHERE incident_id = $1 AND disarmed_at IS NULL GROUP BY language",
        )
        .arg(id.0),
    )
    .await?
    {
        texts.insert(stored(&r.text(0)?, Language::parse)?, r.text(1)?);
    }
    let mut armed_now: HashMap<String, Language> = HashMap::new();
    for r in B::fetch_all(
        &mut tx,
        Sql::new(
            "SELECT phone, language FROM ivr_flags WHERE incident_id = $1 AND disarmed_at IS NULL",
        )
        .arg(id.0),
    )
    .await?
    {
        armed_now.insert(r.text(0)?, stored(&r.text(1)?, Language::parse)?);
    }

    let mut outcome = RearmOutcome::default();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut write: Vec<(&str, Language)> = Vec::new();
    for n in armed {
        if !seen.insert(n.e164.as_str()) {
            continue;
        }
        match armed_now.get(n.e164.as_str()) {
            Some(l) if *l == n.language => continue,
            Some(_) => outcome.relanguaged += 1,
            None => outcome.armed += 1,
        }
        texts
            .entry(n.language)
            .or_insert_with(|| wording.announcement(draft, n.language));
        write.push((n.e164.as_str(), n.language));
    }
    // A number seen before (disarmed by an earlier re-import) is armed again in place: the
    // key is (phone, incident).
    let written = B::arm_flags(
        &mut tx,
        Arming {
            incident: id,
            numbers: &write,
            texts: &texts,
            now,
            conflict: FlagConflict::Replace,
        },
    )
    .await?;
    if written != outcome.armed + outcome.relanguaged {
        // Every language has a text above; a row left out would be a bug, not a rearm.
        return Err(crate::StoreError::Corrupt(format!(
            "rearming incident {id}: wrote {written} of {} flags",
            outcome.armed + outcome.relanguaged
        )));
    }
    let gone: Vec<&str> = armed_now
        .keys()
        .map(String::as_str)
        .filter(|phone| !seen.contains(phone))
        .collect();
    if !gone.is_empty() {
        outcome.disarmed = B::execute(
            &mut tx,
            Sql::built(format!(
                "UPDATE ivr_flags SET disarmed_at = $1 WHERE incident_id = $2 AND phone {}",
                B::in_list(3)
            ))
            .arg(now)
            .arg(id.0)
            .arg(gone),
        )
        .await?;
    }
    if outcome != RearmOutcome::default() {
        audit::write::<B>(
            &mut tx,
            actor,
            "incident.ivr_rearm",
            Some(&format!("incident:{id}")),
            &serde_json::json!(outcome),
            now,
        )
        .await?;
    }
    B::commit(tx).await?;
    Ok(outcome)
}

/// Forgets the change-log entries written before `before`; followers that had not read them
/// yet get [`IvrPoll::Lost`] and reload. Returns how many entries went.
pub(crate) async fn prune_ivr_changes<B: Backend>(b: &B, before: DateTime<Utc>) -> Result<u64> {
    let mut tx = b.begin().await?;
    let upto = B::fetch_one(&mut tx, Sql::new(B::IVR_PRUNE_UPTO).arg(before))
        .await?
        .opt_i64(0)?;
    let Some(upto) = upto else {
        return Ok(0);
    };
    let mut gone = None;
    for statement in B::IVR_PRUNE {
        let n = B::execute(&mut tx, Sql::new(statement).arg(upto)).await?;
        gone.get_or_insert(n);
    }
    B::execute(
        &mut tx,
        Sql::new(
            "UPDATE ivr_changes_pruned SET upto = CASE WHEN upto < $1 THEN $1 ELSE upto END
              WHERE singleton = 1",
        )
        .arg(upto),
    )
    .await?;
    B::commit(tx).await?;
    Ok(gone.unwrap_or_default())
}
