//! Incidents: the declaration, the transitions (update with area growth, restore, cancel) and
//! the reads, with the notices and IVR flags they write.
//!
//! SQLite serialises writers with `BEGIN IMMEDIATE`; on PostgreSQL a transition locks its
//! incident row ([`Backend::LOCK_ROWS`]) before reading it, so two transitions of one incident
//! run one after the other and the second sees the first's status, while other incidents go
//! on in parallel.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{AccountId, CustomerId};
use outagecast_core::incident::{EventKind, Incident, IncidentDraft, IncidentId};
use outagecast_core::message::{MessageText, Wording};
use outagecast_core::notice::{ArmedNumber, EventId, Recipient};

use crate::backend::{
    Arming, Backend, Bulk, FlagConflict, LinkTable, Links, NoticeInsert, Record, Sql,
};
use crate::model::incidents::{
    Declaration, DeclareOutcome, INCIDENT_COLUMNS, IncidentSummary, NoticeCount, Transition,
    TransitionAudit, TransitionOutcome, after_transition, check_transition, declare_audit,
    event_details, fresh_recipients, incident_from_record, notice_count, tells_the_told,
};
use crate::model::{count, stored};
use crate::ops::{audit, provenance};
use crate::{Result, StoreError};

/// Writes a declared incident, its event, the affected set, every planned notice, the IVR
/// flags and its provenance in one transaction: a failure anywhere leaves nothing behind.
pub(crate) async fn declare<B: Backend>(
    b: &B,
    d: Declaration<'_>,
    wording: &dyn Wording,
) -> Result<DeclareOutcome> {
    let mut tx = b.begin().await?;
    let id = B::fetch_one(
        &mut tx,
        Sql::new(
            "INSERT INTO incidents (reference, kind, severity, cause, etr, area, status, expires_at,
                                    declared_at, updated_at, declared_by)
             VALUES ($1, $2, $3, $4, $5, $6, 'declared', $7, $8, $8, $9) RETURNING id",
        )
        .arg(d.draft.reference())
        .arg(d.draft.kind().as_str())
        .arg(d.draft.severity().as_str())
        .arg(d.draft.cause().as_str())
        .arg(d.draft.etr())
        .arg(area_json(d.draft)?)
        .arg(d.draft.expires_at())
        .arg(d.now)
        .arg(d.actor),
    )
    .await?
    .i64(0)?;
    let incident_id = IncidentId(id);
    let event_id = insert_event::<B>(
        &mut tx,
        incident_id,
        EventKind::Declared,
        d.actor,
        d.now,
        &serde_json::json!({}),
    )
    .await?;
    add_affected::<B>(&mut tx, incident_id, d.affected, false).await?;
    let notices = insert_notices::<B>(
        &mut tx,
        incident_id,
        event_id,
        &d.plan.recipients,
        |lang| wording.notice(incident_id, d.draft, EventKind::Declared, lang),
        |lang| wording.spoken(incident_id, d.draft, EventKind::Declared, lang),
        d.now,
    )
    .await?;
    let armed = arm::<B>(
        &mut tx,
        incident_id,
        d.draft,
        &d.plan.armed,
        wording,
        d.now,
        FlagConflict::Refuse,
    )
    .await?;
    audit::write::<B>(
        &mut tx,
        d.actor,
        "incident.declare",
        Some(&format!("incident:{id}")),
        &declare_audit(&d, &notices),
        d.now,
    )
    .await?;
    if let Some(p) = d.provenance {
        provenance::record::<B>(&mut tx, incident_id, Some(event_id), p, d.now).await?;
    }
    let incident = fetch_incident::<B>(&mut tx, incident_id, "").await?;
    B::commit(tx).await?;
    b.after_bulk_write(Bulk::Declaration, d.affected.len())
        .await;
    Ok(DeclareOutcome {
        incident,
        event_id,
        notices,
        armed,
    })
}

/// Applies an update, restore or cancel in one transaction:
/// - the incident row (locked first) and a new event;
/// - `Updated`: pending notices of earlier events are rewritten with the new details (so
///   nobody is first told the old ETR), and armed announcements are rewritten;
/// - `Restored`/`Cancelled`: pending notices of earlier events are withdrawn (a customer
///   who never heard of the outage must not hear that it is over) and IVR flags cleared;
/// - an `Updated` with growth: the added customers, notices to contacts new to the incident
///   (declared wording) and their numbers armed;
/// - a follow-up notice to every contact that was already told, unless opted out since;
/// - the provenance, if any.
pub(crate) async fn transition<B: Backend>(
    b: &B,
    t: Transition<'_>,
    wording: &dyn Wording,
) -> Result<TransitionOutcome> {
    check_transition(&t)?;
    let mut tx = b.begin().await?;
    let before = fetch_incident::<B>(&mut tx, t.id, B::LOCK_ROWS).await?;
    let (status, draft) = after_transition(&before, &t)?;
    let now = t.now;
    B::execute(
        &mut tx,
        Sql::new(
            "UPDATE incidents SET status = $1, severity = $2, cause = $3, etr = $4, updated_at = $5
              WHERE id = $6",
        )
        .arg(status.as_str())
        .arg(draft.severity().as_str())
        .arg(draft.cause().as_str())
        .arg(draft.etr())
        .arg(now)
        .arg(t.id.0),
    )
    .await?;
    let event_id =
        insert_event::<B>(&mut tx, t.id, t.event, t.actor, now, &event_details(&draft)).await?;

    let mut superseded = 0;
    let mut rewritten = 0;
    let mut disarmed = 0;
    if status.is_active() {
        rewritten = rewrite_pending::<B>(&mut tx, t.id, &draft, wording, now).await?;
        rewrite_announcements::<B>(&mut tx, t.id, &draft, wording).await?;
    } else {
        // Every notice not yet handed to a provider is withdrawn, leased or not: a worker
        // that claimed it cannot hand it over now (the fence in `ops::outbox`). One handed
        // over (in doubt) may be on the wire; it counts as told, below.
        superseded = B::execute(
            &mut tx,
            Sql::new(
                "UPDATE notices SET status = 'superseded', updated_at = $1
                  WHERE incident_id = $2 AND status = 'pending' AND in_doubt = 0",
            )
            .arg(now)
            .arg(t.id.0),
        )
        .await?;
        disarmed = B::execute(
            &mut tx,
            Sql::new(
                "UPDATE ivr_flags SET disarmed_at = $1 WHERE incident_id = $2 AND disarmed_at IS NULL",
            )
            .arg(now)
            .arg(t.id.0),
        )
        .await?;
    }

    // An area changes only with an update.
    let growth = t.growth.filter(|_| t.event == EventKind::Updated);
    let mut added_notices = BTreeMap::new();
    let mut added_customers = 0;
    let mut removed_customers = 0;
    if let Some(g) = growth {
        B::execute(
            &mut tx,
            Sql::new("UPDATE incidents SET area = $1 WHERE id = $2")
                .arg(area_json(&draft)?)
                .arg(t.id.0),
        )
        .await?;
        added_customers = add_affected::<B>(&mut tx, t.id, g.added, true).await?;
        if !g.left.is_empty() {
            let gone = leave::<B>(&mut tx, t.id, g.left, now).await?;
            removed_customers = gone.removed;
            superseded += gone.withdrawn;
            disarmed += gone.disarmed;
        }
        let mut known = HashSet::new();
        for r in B::fetch_all(
            &mut tx,
            Sql::new("SELECT channel, address FROM notices WHERE incident_id = $1").arg(t.id.0),
        )
        .await?
        {
            known.insert((r.text(0)?, r.text(1)?));
        }
        let fresh = fresh_recipients(&known, g.plan);
        // The newly affected hear of the outage for the first time: the declared wording.
        added_notices = insert_notices::<B>(
            &mut tx,
            t.id,
            event_id,
            &fresh,
            |lang| wording.notice(t.id, &draft, EventKind::Declared, lang),
            |lang| wording.spoken(t.id, &draft, EventKind::Declared, lang),
            now,
        )
        .await?;
        // Numbers armed before stay as they are.
        arm::<B>(
            &mut tx,
            t.id,
            &draft,
            &g.plan.armed,
            wording,
            now,
            FlagConflict::Skip,
        )
        .await?;
    }

    let left: HashSet<CustomerId> = growth
        .map(|g| g.left.iter().copied().collect())
        .unwrap_or_default();
    let (told, gone) = if tells_the_told(&t) || !left.is_empty() {
        told_contacts::<B>(&mut tx, t.id).await?
    } else {
        (vec![], vec![])
    };
    let notices = if tells_the_told(&t) {
        insert_notices::<B>(
            &mut tx,
            t.id,
            event_id,
            &told,
            |lang| wording.notice(t.id, &draft, t.event, lang),
            |lang| wording.spoken(t.id, &draft, t.event, lang),
            now,
        )
        .await?
    } else {
        BTreeMap::new()
    };
    // Only those who leave now: one told earlier that it was no longer affected is not told
    // again.
    let leaving: Vec<Recipient> = gone
        .into_iter()
        .filter(|r| r.customers.iter().any(|c| left.contains(c)))
        .collect();
    let left_notices = insert_notices::<B>(
        &mut tx,
        t.id,
        event_id,
        &leaving,
        |lang| wording.no_longer_affected(t.id, &draft, lang),
        |lang| wording.spoken_no_longer_affected(t.id, &draft, lang),
        now,
    )
    .await?;

    let details = TransitionAudit {
        before: &before,
        status,
        draft: &draft,
        notices: &notices,
        superseded,
        disarmed,
        added_customers,
        added_notices: &added_notices,
        removed_customers,
        left_notices: &left_notices,
    }
    .details();
    audit::write::<B>(
        &mut tx,
        t.actor,
        TransitionAudit::action(t.event),
        Some(&format!("incident:{}", t.id)),
        &details,
        now,
    )
    .await?;
    if let Some(p) = t.provenance {
        provenance::record::<B>(&mut tx, t.id, Some(event_id), p, now).await?;
    }
    let incident = fetch_incident::<B>(&mut tx, t.id, "").await?;
    B::commit(tx).await?;
    let written: u64 = notices
        .values()
        .chain(added_notices.values())
        .chain(left_notices.values())
        .sum::<u64>()
        + superseded
        + rewritten
        + disarmed;
    b.after_bulk_write(
        Bulk::Declaration,
        usize::try_from(written).unwrap_or(usize::MAX),
    )
    .await;
    Ok(TransitionOutcome {
        incident,
        event_id,
        notices,
        superseded,
        rewritten,
        disarmed,
        added_customers,
        added_notices,
        removed_customers,
        left_notices,
    })
}

/// One incident.
pub(crate) async fn incident<B: Backend>(b: &B, id: IncidentId) -> Result<Incident> {
    fetch_incident::<B>(&mut *b.conn().await?, id, "").await
}

/// Incidents with their counts, newest first; only active ones unless `include_closed`.
pub(crate) async fn incidents<B: Backend>(
    b: &B,
    include_closed: bool,
) -> Result<Vec<IncidentSummary>> {
    let mut c = b.conn().await?;
    let rows = B::fetch_all(
        &mut c,
        Sql::built(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
              WHERE $1 OR status IN ('declared', 'updated') ORDER BY id DESC"
        ))
        .arg(include_closed),
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(summary_on::<B>(&mut c, incident_from_record(row)?).await?);
    }
    Ok(out)
}

/// An incident with its counts.
pub(crate) async fn summary<B: Backend>(b: &B, incident: Incident) -> Result<IncidentSummary> {
    summary_on::<B>(&mut *b.conn().await?, incident).await
}

async fn summary_on<B: Backend>(c: &mut B::Conn, incident: Incident) -> Result<IncidentSummary> {
    // Maintained counters (migrations sqlite 0011, postgres 0007): O(1) rows per incident, not
    // a count over its customers and flags. PostgreSQL keeps deltas, hence the sums.
    let counts = B::fetch_one(
        c,
        Sql::new(
            "SELECT CAST(COALESCE(SUM(affected_customers), 0) AS BIGINT),
                    CAST(COALESCE(SUM(armed_numbers), 0) AS BIGINT)
               FROM incident_counts WHERE incident_id = $1",
        )
        .arg(incident.id.0),
    )
    .await?;
    let notices = counts_on::<B>(c, Some(incident.id)).await?;
    Ok(IncidentSummary {
        incident,
        affected_customers: count(counts.i64(0)?),
        armed_numbers: count(counts.i64(1)?),
        notices,
    })
}

/// Outbox counts of an incident by channel and status.
pub(crate) async fn notice_counts<B: Backend>(b: &B, id: IncidentId) -> Result<Vec<NoticeCount>> {
    counts_on::<B>(&mut *b.conn().await?, Some(id)).await
}

/// Every notice of every incident, by channel and status (for metrics).
pub(crate) async fn notice_totals<B: Backend>(b: &B) -> Result<Vec<NoticeCount>> {
    counts_on::<B>(&mut *b.conn().await?, None).await
}

/// Outbox counts by channel and shown status, of one incident or of all, read from the
/// counters the notices' triggers maintain (never a scan of the notices).
async fn counts_on<B: Backend>(
    c: &mut B::Conn,
    id: Option<IncidentId>,
) -> Result<Vec<NoticeCount>> {
    let filter = if id.is_some() {
        "WHERE incident_id = $1"
    } else {
        ""
    };
    let mut sql = Sql::built(format!(
        "SELECT channel, status, CAST(SUM(n) AS BIGINT)
           FROM incident_notice_counts {filter}
          GROUP BY channel, status HAVING SUM(n) <> 0
          ORDER BY channel{b}, status{b}",
        b = B::BYTEWISE
    ));
    if let Some(id) = id {
        sql = sql.arg(id.0);
    }
    B::fetch_all(c, sql)
        .await?
        .iter()
        .map(notice_count)
        .collect()
}

/// Incidents declared or updated and not expired at `now`.
pub(crate) async fn active_incident_count<B: Backend>(b: &B, now: DateTime<Utc>) -> Result<u64> {
    let row = B::fetch_one(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT COUNT(*) FROM incidents WHERE status IN ('declared', 'updated')
               AND (expires_at IS NULL OR expires_at > $1)",
        )
        .arg(now),
    )
    .await?;
    Ok(count(row.i64(0)?))
}

/// Ids of the customers the incident affects (selected at declaration or added since).
pub(crate) async fn affected_ids<B: Backend>(b: &B, id: IncidentId) -> Result<Vec<CustomerId>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT customer_id FROM incident_customers WHERE incident_id = $1 ORDER BY customer_id",
        )
        .arg(id.0),
    )
    .await?;
    rows.iter().map(|r| Ok(CustomerId(r.i64(0)?))).collect()
}

/// Account ids of the customers the incident affects, sorted bytewise.
pub(crate) async fn affected_accounts<B: Backend>(b: &B, id: IncidentId) -> Result<Vec<AccountId>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT c.account_id FROM incident_customers ic JOIN customers c ON c.id = ic.customer_id
              WHERE ic.incident_id = $1 ORDER BY c.account_id{}",
            B::BYTEWISE
        ))
        .arg(id.0),
    )
    .await?;
    rows.iter()
        .map(|r| stored(&r.text(0)?, AccountId::parse))
        .collect()
}

/// Pending notices of an incident, in the order a dispatcher would claim them (priority
/// first, then oldest): `(channel, address, priority, body)`.
pub(crate) async fn pending_notices<B: Backend>(
    b: &B,
    id: IncidentId,
) -> Result<Vec<(Channel, String, bool, String)>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT channel, address, priority, body FROM notices
              WHERE incident_id = $1 AND status = 'pending' ORDER BY priority DESC, id",
        )
        .arg(id.0),
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                stored(&r.text(0)?, Channel::parse)?,
                r.text(1)?,
                r.bool(2)?,
                r.text(3)?,
            ))
        })
        .collect()
}

/// The area as stored: JSON.
fn area_json(draft: &IncidentDraft) -> Result<serde_json::Value> {
    serde_json::to_value(draft.area()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The incident, read with `lock` appended ([`Backend::LOCK_ROWS`] or nothing).
async fn fetch_incident<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
    lock: &str,
) -> Result<Incident> {
    let row = B::fetch_optional(
        c,
        Sql::built(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1{lock}"
        ))
        .arg(id.0),
    )
    .await?;
    row.as_ref()
        .map(incident_from_record)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
}

async fn insert_event<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
    kind: EventKind,
    actor: &str,
    now: DateTime<Utc>,
    details: &serde_json::Value,
) -> Result<EventId> {
    let row = B::fetch_one(
        c,
        Sql::new(
            "INSERT INTO incident_events (incident_id, kind, at, actor, details)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .arg(id.0)
        .arg(kind.as_str())
        .arg(now)
        .arg(actor)
        .arg(details),
    )
    .await?;
    Ok(EventId(row.i64(0)?))
}

/// Adds `customers` to the incident's affected set (`skip_known`: those in it already are
/// left, else refused); how many were added.
async fn add_affected<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
    customers: &[CustomerId],
    skip_known: bool,
) -> Result<u64> {
    let rows: Vec<(i64, i64)> = customers.iter().map(|c| (id.0, c.0)).collect();
    B::insert_links(
        c,
        Links {
            table: LinkTable::Affected,
            rows: &rows,
            skip_known,
        },
    )
    .await
}

/// Inserts one notice per recipient (and which accounts led to it) with `text` in its
/// language (`spoken` for a voice call); returns counts per channel.
#[allow(clippy::too_many_arguments)]
async fn insert_notices<B: Backend>(
    c: &mut B::Conn,
    incident: IncidentId,
    event_id: EventId,
    recipients: &[Recipient],
    text: impl Fn(Language) -> MessageText,
    spoken: impl Fn(Language) -> MessageText,
    now: DateTime<Utc>,
) -> Result<BTreeMap<Channel, u64>> {
    let mut counts = BTreeMap::new();
    if recipients.is_empty() {
        return Ok(counts);
    }
    let texts = Language::ALL
        .iter()
        .map(|&lang| (lang, text(lang)))
        .collect();
    let ids = B::insert_notices(
        c,
        NoticeInsert {
            incident,
            event: event_id,
            recipients,
            texts: &texts,
            now,
        },
    )
    .await?;
    if ids.len() != recipients.len() {
        return Err(StoreError::Corrupt(format!(
            "planning {} notices wrote {}",
            recipients.len(),
            ids.len()
        )));
    }
    let by_contact: HashMap<(&str, &str), i64> = ids
        .iter()
        .map(|(id, ch, addr)| ((ch.as_str(), addr.as_str()), *id))
        .collect();
    // Calls say the text written for the ear: the voice notices get it in their language.
    let mut voice: HashMap<Language, Vec<i64>> = HashMap::new();
    for r in recipients.iter().filter(|r| r.channel == Channel::Voice) {
        if let Some(&n) = by_contact.get(&(r.channel.as_str(), r.address.as_str())) {
            voice.entry(r.language).or_default().push(n);
        }
    }
    for (lang, ids) in voice {
        let said = spoken(lang);
        B::execute(
            c,
            Sql::built(format!(
                "UPDATE notices SET subject = $1, body = $2 WHERE id {}",
                B::in_list(3)
            ))
            .arg(said.subject)
            .arg(said.body)
            .arg(ids),
        )
        .await?;
    }
    let mut links = Vec::new();
    for r in recipients {
        if let Some(&n) = by_contact.get(&(r.channel.as_str(), r.address.as_str())) {
            links.extend(r.customers.iter().map(|c| (n, c.0)));
        }
        *counts.entry(r.channel).or_insert(0) += 1;
    }
    B::insert_links(
        c,
        Links {
            table: LinkTable::NoticeCustomers,
            rows: &links,
            skip_known: false,
        },
    )
    .await?;
    Ok(counts)
}

/// Arms `numbers` for the incident with the announcement in each caller's language; how many
/// flags were written.
async fn arm<B: Backend>(
    c: &mut B::Conn,
    incident: IncidentId,
    draft: &IncidentDraft,
    numbers: &[ArmedNumber],
    wording: &dyn Wording,
    now: DateTime<Utc>,
    conflict: FlagConflict,
) -> Result<u64> {
    let mut texts = BTreeMap::new();
    for n in numbers {
        texts
            .entry(n.language)
            .or_insert_with(|| wording.announcement(draft, n.language));
    }
    let numbers: Vec<(&str, Language)> = numbers
        .iter()
        .map(|n| (n.e164.as_str(), n.language))
        .collect();
    B::arm_flags(
        c,
        Arming {
            incident,
            numbers: &numbers,
            texts: &texts,
            now,
            conflict,
        },
    )
    .await
}

/// Contacts that were told about this incident (a notice of any event reached them, or was
/// handed to a provider and may have), minus those who opted out since: each with the
/// language of its first notice, priority if any of its notices was, and every account that
/// led to one; priority contacts first, then in the order they were first told. Split in
/// those still affected (an account of theirs is, or none is linked) and those whose
/// accounts all left the area.
async fn told_contacts<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
) -> Result<(Vec<Recipient>, Vec<Recipient>)> {
    let rows = B::fetch_all(
        c,
        Sql::new(
            "SELECT n.channel, n.address, n.language, n.priority, nc.customer_id,
                    nc.customer_id IS NULL
                    OR EXISTS (SELECT 1 FROM incident_customers ic
                                WHERE ic.incident_id = n.incident_id
                                  AND ic.customer_id = nc.customer_id)
               FROM notices n
               LEFT JOIN notice_customers nc ON nc.notice_id = n.id
              WHERE n.incident_id = $1
                AND (n.status IN ('sent', 'delivered') OR (n.status = 'pending' AND n.in_doubt <> 0))
                AND NOT EXISTS (SELECT 1 FROM opt_outs o
                                 WHERE o.channel = n.channel AND o.address = n.address)
              ORDER BY n.id",
        )
        .arg(id.0),
    )
    .await?;
    // Grouped here rather than in SQL: the aggregates differ (`json_group_array` and
    // `array_agg`), the rows are the same.
    let mut told: Vec<(Recipient, bool)> = Vec::new();
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for r in &rows {
        let i = match at.entry((r.text(0)?, r.text(1)?)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let (channel, address) = e.key();
                let recipient = Recipient {
                    channel: stored(channel, Channel::parse)?,
                    address: address.clone(),
                    language: stored(&r.text(2)?, Language::parse)?,
                    priority: false,
                    customers: Vec::new(),
                };
                told.push((recipient, false));
                *e.insert(told.len() - 1)
            }
        };
        let (recipient, affected) = &mut told[i];
        recipient.priority |= r.bool(3)?;
        if let Some(customer) = r.opt_i64(4)? {
            recipient.customers.push(CustomerId(customer));
        }
        *affected |= r.bool(5)?;
    }
    // Stable: within each group, the order they were first told.
    told.sort_by_key(|(r, _)| !r.priority);
    let (mut still, mut gone) = (Vec::new(), Vec::new());
    for (mut r, affected) in told {
        r.customers.sort_unstable();
        r.customers.dedup();
        if affected {
            still.push(r);
        } else {
            gone.push(r);
        }
    }
    Ok((still, gone))
}

/// What customers leaving an incident's area changed.
struct Left {
    removed: u64,
    withdrawn: u64,
    disarmed: u64,
}

/// Takes `left` out of the incident's affected set, withdraws the waiting notices that were
/// only theirs (one shared with an account still affected stays) and disarms the numbers only
/// they had.
async fn leave<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
    left: &[CustomerId],
    now: DateTime<Utc>,
) -> Result<Left> {
    let ids = || left.iter().map(|c| c.0).collect::<Vec<i64>>();
    let removed = B::execute(
        c,
        Sql::built(format!(
            "DELETE FROM incident_customers WHERE incident_id = $1 AND customer_id {}",
            B::in_list(2)
        ))
        .arg(id.0)
        .arg(ids()),
    )
    .await?;
    // As a close does: not yet handed to a provider, leased or not.
    let withdrawn = B::execute(
        c,
        Sql::built(format!(
            "UPDATE notices SET status = 'superseded', last_error = 'no longer affected',
                    updated_at = $1
              WHERE incident_id = $2 AND status = 'pending' AND in_doubt = 0
                AND id IN (SELECT nc.notice_id FROM notice_customers nc
                            WHERE nc.customer_id {})
                AND NOT EXISTS (SELECT 1 FROM notice_customers nc
                                  JOIN incident_customers ic ON ic.customer_id = nc.customer_id
                                 WHERE nc.notice_id = notices.id AND ic.incident_id = $2)",
            B::in_list(3)
        ))
        .arg(now)
        .arg(id.0)
        .arg(ids()),
    )
    .await?;
    let disarmed = B::execute(
        c,
        Sql::built(format!(
            "UPDATE ivr_flags SET disarmed_at = $1
              WHERE incident_id = $2 AND disarmed_at IS NULL
                AND phone IN (SELECT k.value FROM contacts k
                               WHERE k.medium = 'phone' AND k.customer_id {})
                AND NOT EXISTS (SELECT 1 FROM contacts k
                                  JOIN incident_customers ic ON ic.customer_id = k.customer_id
                                 WHERE ic.incident_id = $2 AND k.medium = 'phone'
                                   AND k.value = ivr_flags.phone)",
            B::in_list(3)
        ))
        .arg(now)
        .arg(id.0)
        .arg(ids()),
    )
    .await?;
    Ok(Left {
        removed,
        withdrawn,
        disarmed,
    })
}

/// Rewrites not-yet-sent notices of earlier events with the current details; how many.
async fn rewrite_pending<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
    draft: &IncidentDraft,
    wording: &dyn Wording,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut n = 0;
    for event in [EventKind::Declared, EventKind::Updated] {
        for lang in Language::ALL {
            // Texts and mails get the written words, calls the spoken ones.
            for (voice, text) in [
                (false, wording.notice(id, draft, event, lang)),
                (true, wording.spoken(id, draft, event, lang)),
            ] {
                n += B::execute(
                    c,
                    Sql::built(format!(
                        "UPDATE notices SET subject = $1, body = $2, updated_at = $3
                          WHERE incident_id = $4 AND status = 'pending' AND language = $5
                            AND in_doubt = 0 AND channel {} 'voice'
                            AND event_id IN (SELECT id FROM incident_events
                                              WHERE incident_id = $4 AND kind = $6)",
                        if voice { "=" } else { "<>" }
                    ))
                    .arg(text.subject)
                    .arg(text.body)
                    .arg(now)
                    .arg(id.0)
                    .arg(lang.code())
                    .arg(event.as_str()),
                )
                .await?;
            }
        }
    }
    Ok(n)
}

/// Rewrites the announcements of the incident's armed flags with the current details.
async fn rewrite_announcements<B: Backend>(
    c: &mut B::Conn,
    id: IncidentId,
    draft: &IncidentDraft,
    wording: &dyn Wording,
) -> Result<()> {
    for lang in Language::ALL {
        B::execute(
            c,
            Sql::new(
                "UPDATE ivr_flags SET announcement = $1
                  WHERE incident_id = $2 AND language = $3 AND disarmed_at IS NULL",
            )
            .arg(wording.announcement(draft, lang))
            .arg(id.0)
            .arg(lang.code()),
        )
        .await?;
    }
    Ok(())
}
