//! Incidents on PostgreSQL: declare, transition and the reads, with the SQLite store's
//! semantics (see `crate::incidents`).
//!
//! SQLite serialises writers with `BEGIN IMMEDIATE`; here a transition locks its incident row
//! (`SELECT … FOR UPDATE`) before reading it, so two transitions of one incident run one after
//! the other and the second sees the first's status, while other incidents go on in parallel.
//! Rows are written in bulk with `UNNEST`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{AccountId, CustomerId};
use outagecast_core::incident::{EventKind, Incident, IncidentDraft, IncidentId};
use outagecast_core::message::Wording;
use outagecast_core::notice::{ArmedNumber, EventId, Recipient};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use crate::backend::{Arming, Backend, Bulk, FlagConflict};
use crate::model::incidents::{
    IncidentParts, TransitionAudit, after_transition, check_transition, declare_audit,
    event_details, fresh_recipients, notice_count_rows, tells_the_told,
};
use crate::model::stored;
use crate::pg::PgStore;
use crate::pg::audit;
use crate::{
    Declaration, DeclareOutcome, IncidentSummary, NoticeCount, Provenance, Result, StoreError,
    Transition, TransitionOutcome,
};

/// Rows per `UNNEST` statement: large enough that per-statement costs vanish, small enough
/// that the arrays stay a few megabytes.
const CHUNK: usize = 10_000;

/// `area` as text so that both backends decode the same JSON the same way.
const INCIDENT_COLUMNS: &str = "id, reference, kind, severity, cause, etr, area::text AS area, status, expires_at, declared_at, updated_at";

fn area_json(draft: &IncidentDraft) -> Result<serde_json::Value> {
    serde_json::to_value(draft.area()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl PgStore {
    /// Writes a declared incident, its event, the affected set, every planned notice and the
    /// IVR flags in one transaction: a failure anywhere leaves nothing behind.
    pub async fn declare(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
    ) -> Result<DeclareOutcome> {
        self.declare_recorded(d, wording, None).await
    }

    /// [`PgStore::declare`], also recording where the incident came from in the same
    /// transaction.
    pub(crate) async fn declare_recorded(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
        record: Option<&Provenance>,
    ) -> Result<DeclareOutcome> {
        let mut tx = self.pool.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO incidents (reference, kind, severity, cause, etr, area, status, expires_at, declared_at, updated_at, declared_by)
             VALUES ($1, $2, $3, $4, $5, $6, 'declared', $7, $8, $8, $9) RETURNING id",
        )
        .bind(d.draft.reference())
        .bind(d.draft.kind().as_str())
        .bind(d.draft.severity().as_str())
        .bind(d.draft.cause().as_str())
        .bind(d.draft.etr())
        .bind(Json(area_json(d.draft)?))
        .bind(d.draft.expires_at())
        .bind(d.now)
        .bind(d.actor)
        .fetch_one(&mut *tx)
        .await?;
        let incident_id = IncidentId(id);
        let event_id = insert_event(
            &mut tx,
            incident_id,
            EventKind::Declared,
            d.actor,
            d.now,
            &serde_json::json!({}),
        )
        .await?;

        for chunk in d.affected.chunks(CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|c| c.0).collect();
            sqlx::query(
                "INSERT INTO incident_customers (incident_id, customer_id)
                 SELECT $1, c FROM UNNEST($2::int8[]) AS u(c)",
            )
            .bind(id)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        }

        let notices = insert_notices(
            &mut tx,
            incident_id,
            event_id,
            EventKind::Declared,
            d.draft,
            &d.plan.recipients,
            wording,
            d.now,
        )
        .await?;
        arm(
            &mut tx,
            incident_id,
            d.draft,
            &d.plan.armed,
            wording,
            d.now,
            FlagConflict::Refuse,
        )
        .await?;

        audit(
            &mut tx,
            d.actor,
            "incident.declare",
            Some(&format!("incident:{id}")),
            &declare_audit(&d, &notices),
            d.now,
        )
        .await?;
        if let Some(p) = record {
            crate::ops::provenance::record::<PgStore>(
                &mut tx,
                incident_id,
                Some(event_id),
                p,
                d.now,
            )
            .await?;
        }
        let incident = fetch_incident(&mut tx, incident_id).await?;
        tx.commit().await?;
        self.after_bulk_write(Bulk::Declaration, d.affected.len())
            .await;
        Ok(DeclareOutcome {
            incident,
            event_id,
            notices,
            armed: d.plan.armed.len() as u64,
        })
    }

    /// Applies an update, restore or cancel in one transaction, as
    /// `SqliteStore::transition` does; the incident row is locked first.
    pub async fn transition(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
    ) -> Result<TransitionOutcome> {
        self.transition_recorded(t, wording, None).await
    }

    /// [`PgStore::transition`], also recording the message that caused it in the same
    /// transaction.
    pub(crate) async fn transition_recorded(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
        record: Option<&Provenance>,
    ) -> Result<TransitionOutcome> {
        check_transition(&t)?;
        let mut tx = self.pool.begin().await?;
        let before = fetch_incident(&mut tx, t.id).await?;
        let (status, draft) = after_transition(&before, &t)?;
        let now = t.now;
        sqlx::query(
            "UPDATE incidents SET status = $1, severity = $2, cause = $3, etr = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(draft.severity().as_str())
        .bind(draft.cause().as_str())
        .bind(draft.etr())
        .bind(now)
        .bind(t.id.0)
        .execute(&mut *tx)
        .await?;
        let event_id =
            insert_event(&mut tx, t.id, t.event, t.actor, now, &event_details(&draft)).await?;

        let mut superseded = 0;
        let mut rewritten = 0;
        let mut disarmed = 0;
        if status.is_active() {
            rewritten = rewrite_pending(&mut tx, t.id, &draft, wording, now).await?;
            rewrite_announcements(&mut tx, t.id, &draft, wording).await?;
        } else {
            // Every notice not yet handed to a provider is withdrawn, leased or not (see the
            // SQLite store); one handed over may be on the wire and counts as told, below.
            superseded = sqlx::query(
                "UPDATE notices SET status = 'superseded', updated_at = $1
                 WHERE incident_id = $2 AND status = 'pending' AND in_doubt = 0",
            )
            .bind(now)
            .bind(t.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            disarmed = sqlx::query(
                "UPDATE ivr_flags SET disarmed_at = $1 WHERE incident_id = $2 AND disarmed_at IS NULL",
            )
            .bind(now)
            .bind(t.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }

        let mut added_notices = BTreeMap::new();
        let mut added_customers = 0;
        if let Some(g) = t.growth.filter(|_| t.event == EventKind::Updated) {
            sqlx::query("UPDATE incidents SET area = $1 WHERE id = $2")
                .bind(Json(area_json(&draft)?))
                .bind(t.id.0)
                .execute(&mut *tx)
                .await?;
            for chunk in g.added.chunks(CHUNK) {
                let ids: Vec<i64> = chunk.iter().map(|c| c.0).collect();
                added_customers += sqlx::query(
                    "INSERT INTO incident_customers (incident_id, customer_id)
                     SELECT $1, c FROM UNNEST($2::int8[]) AS u(c)
                     ON CONFLICT DO NOTHING",
                )
                .bind(t.id.0)
                .bind(&ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            let known: HashSet<(String, String)> =
                sqlx::query_as("SELECT channel, address FROM notices WHERE incident_id = $1")
                    .bind(t.id.0)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
            let fresh = fresh_recipients(&known, g.plan);
            // The newly affected hear of the outage for the first time: the declared wording.
            added_notices = insert_notices(
                &mut tx,
                t.id,
                event_id,
                EventKind::Declared,
                &draft,
                &fresh,
                wording,
                now,
            )
            .await?;
            arm(
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

        let told = if tells_the_told(&t) {
            told_contacts(&mut tx, t.id).await?
        } else {
            vec![]
        };
        let notices = insert_notices(
            &mut tx, t.id, event_id, t.event, &draft, &told, wording, now,
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
        }
        .details();
        audit(
            &mut tx,
            t.actor,
            TransitionAudit::action(t.event),
            Some(&format!("incident:{}", t.id)),
            &details,
            now,
        )
        .await?;
        if let Some(p) = record {
            crate::ops::provenance::record::<PgStore>(&mut tx, t.id, Some(event_id), p, now)
                .await?;
        }
        let incident = fetch_incident(&mut tx, t.id).await?;
        tx.commit().await?;
        let written: u64 = notices.values().chain(added_notices.values()).sum::<u64>()
            + superseded
            + rewritten
            + disarmed;
        self.after_bulk_write(
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
        })
    }

    /// One incident.
    pub async fn incident(&self, id: IncidentId) -> Result<Incident> {
        let row: Option<IncidentParts> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(IncidentParts::into_incident)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
    }

    /// Incidents, newest first; only active ones unless `include_closed`.
    pub async fn incidents(&self, include_closed: bool) -> Result<Vec<IncidentSummary>> {
        let rows: Vec<IncidentParts> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE $1 OR status IN ('declared', 'updated') ORDER BY id DESC"
        )))
        .bind(include_closed)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let incident = row.into_incident()?;
            out.push(self.summary(incident).await?);
        }
        Ok(out)
    }

    /// An incident with its counts.
    pub async fn summary(&self, incident: Incident) -> Result<IncidentSummary> {
        let (affected, armed): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM incident_customers WHERE incident_id = $1),
                    (SELECT COUNT(*) FROM ivr_flags WHERE incident_id = $1 AND disarmed_at IS NULL)",
        )
        .bind(incident.id.0)
        .fetch_one(&self.pool)
        .await?;
        let notices = self.notice_counts(incident.id).await?;
        Ok(IncidentSummary {
            incident,
            affected_customers: u64::try_from(affected).unwrap_or_default(),
            armed_numbers: u64::try_from(armed).unwrap_or_default(),
            notices,
        })
    }

    /// Outbox counts of an incident by channel and status.
    pub async fn notice_counts(&self, id: IncidentId) -> Result<Vec<NoticeCount>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT channel, status, COUNT(*) FROM notices WHERE incident_id = $1
             GROUP BY channel, status ORDER BY channel COLLATE \"C\", status COLLATE \"C\"",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        notice_count_rows(rows)
    }

    /// Every notice of every incident, by channel and status (for metrics).
    pub async fn notice_totals(&self) -> Result<Vec<NoticeCount>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT channel, status, COUNT(*) FROM notices
             GROUP BY channel, status ORDER BY channel COLLATE \"C\", status COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        notice_count_rows(rows)
    }

    /// Incidents declared or updated and not expired at `now`.
    pub async fn active_incident_count(&self, now: DateTime<Utc>) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM incidents WHERE status IN ('declared', 'updated')
               AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Ids of the customers the incident affects (selected at declaration or added since).
    pub async fn affected_ids(&self, id: IncidentId) -> Result<Vec<CustomerId>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT customer_id FROM incident_customers WHERE incident_id = $1 ORDER BY customer_id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(c,)| CustomerId(c)).collect())
    }

    /// Account ids of the customers selected at declaration, sorted (bytewise, as on SQLite).
    pub async fn affected_accounts(&self, id: IncidentId) -> Result<Vec<AccountId>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT c.account_id FROM incident_customers ic JOIN customers c ON c.id = ic.customer_id
             WHERE ic.incident_id = $1 ORDER BY c.account_id COLLATE \"C\"",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(a,)| stored(&a, AccountId::parse))
            .collect()
    }

    /// Pending notices of an incident, in the order a dispatcher would claim them
    /// (priority first, then oldest): `(channel, address, priority, body)`.
    pub async fn pending_notices(
        &self,
        id: IncidentId,
    ) -> Result<Vec<(Channel, String, bool, String)>> {
        let rows: Vec<(String, String, bool, String)> = sqlx::query_as(
            "SELECT channel, address, priority, body FROM notices
             WHERE incident_id = $1 AND status = 'pending' ORDER BY priority DESC, id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(ch, addr, p, body)| Ok((stored(&ch, Channel::parse)?, addr, p, body)))
            .collect()
    }
}

/// The incident, its row locked until the transaction ends (see the module's note).
pub(crate) async fn fetch_incident(
    tx: &mut Transaction<'static, Postgres>,
    id: IncidentId,
) -> Result<Incident> {
    let row: Option<IncidentParts> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1 FOR UPDATE"
    )))
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(IncidentParts::into_incident)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
}

async fn insert_event(
    tx: &mut Transaction<'static, Postgres>,
    id: IncidentId,
    kind: EventKind,
    actor: &str,
    now: DateTime<Utc>,
    details: &serde_json::Value,
) -> Result<EventId> {
    let (event_id,): (i64,) = sqlx::query_as(
        "INSERT INTO incident_events (incident_id, kind, at, actor, details)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(id.0)
    .bind(kind.as_str())
    .bind(now)
    .bind(actor)
    .bind(Json(details))
    .fetch_one(&mut **tx)
    .await?;
    Ok(EventId(event_id))
}

/// Inserts one notice per recipient (and which accounts led to it), ids in the order of
/// `recipients`; returns counts per channel.
#[allow(clippy::too_many_arguments)]
async fn insert_notices(
    tx: &mut Transaction<'static, Postgres>,
    incident: IncidentId,
    event_id: EventId,
    event: EventKind,
    draft: &IncidentDraft,
    recipients: &[Recipient],
    wording: &dyn Wording,
    now: DateTime<Utc>,
) -> Result<BTreeMap<Channel, u64>> {
    let mut counts = BTreeMap::new();
    if recipients.is_empty() {
        return Ok(counts);
    }
    let mut langs = Vec::new();
    let mut subjects = Vec::new();
    let mut bodies = Vec::new();
    for lang in Language::ALL {
        let text = wording.notice(incident, draft, event, lang);
        langs.push(lang.code());
        subjects.push(text.subject);
        bodies.push(text.body);
    }
    for chunk in recipients.chunks(CHUNK) {
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
        let ids: Vec<(i64, String, String)> = sqlx::query_as(
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
        .bind(incident.0)
        .bind(event_id.0)
        .bind(now)
        .bind(&channels)
        .bind(&addresses)
        .bind(&languages)
        .bind(&priorities)
        .bind(&langs)
        .bind(&subjects)
        .bind(&bodies)
        .fetch_all(&mut **tx)
        .await?;
        if ids.len() != chunk.len() {
            return Err(StoreError::Corrupt(format!(
                "planning {} notices wrote {}",
                chunk.len(),
                ids.len()
            )));
        }
        let by_contact: HashMap<(&str, &str), i64> = ids
            .iter()
            .map(|(id, ch, addr)| ((ch.as_str(), addr.as_str()), *id))
            .collect();
        let mut notice_ids = Vec::new();
        let mut customer_ids = Vec::new();
        for r in chunk {
            if let Some(&n) = by_contact.get(&(r.channel.as_str(), r.address.as_str())) {
                for c in &r.customers {
                    notice_ids.push(n);
                    customer_ids.push(c.0);
                }
            }
        }
        if !notice_ids.is_empty() {
            sqlx::query(
                "INSERT INTO notice_customers (notice_id, customer_id)
                 SELECT * FROM UNNEST($1::int8[], $2::int8[])",
            )
            .bind(&notice_ids)
            .bind(&customer_ids)
            .execute(&mut **tx)
            .await?;
        }
        for r in chunk {
            *counts.entry(r.channel).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Arms `numbers` for the incident with the announcement in each caller's language.
async fn arm(
    tx: &mut Transaction<'static, Postgres>,
    incident: IncidentId,
    draft: &IncidentDraft,
    numbers: &[ArmedNumber],
    wording: &dyn Wording,
    now: DateTime<Utc>,
    conflict: FlagConflict,
) -> Result<()> {
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
    PgStore::arm_flags(
        tx,
        Arming {
            incident,
            numbers: &numbers,
            texts: &texts,
            now,
            conflict,
        },
    )
    .await?;
    Ok(())
}

/// Contacts that were told about this incident (a notice of any event reached them), minus
/// those who opted out since, each with the language of their first notice and whether any
/// of their notices was a priority one.
async fn told_contacts(
    tx: &mut Transaction<'static, Postgres>,
    id: IncidentId,
) -> Result<Vec<Recipient>> {
    let rows: Vec<(String, String, String, bool, Vec<i64>)> = sqlx::query_as(
        "SELECT n.channel, n.address, (array_agg(n.language ORDER BY n.id))[1], bool_or(n.priority),
                COALESCE(array_agg(DISTINCT nc.customer_id) FILTER (WHERE nc.customer_id IS NOT NULL),
                         '{}')
         FROM notices n
         LEFT JOIN notice_customers nc ON nc.notice_id = n.id
         WHERE n.incident_id = $1 AND (n.status IN ('sent', 'delivered') OR (n.status = 'pending' AND n.in_doubt <> 0))
           AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = n.channel AND o.address = n.address)
         GROUP BY n.channel, n.address
         ORDER BY bool_or(n.priority) DESC, MIN(n.id)",
    )
    .bind(id.0)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(ch, address, lang, priority, customers)| {
            Ok(Recipient {
                channel: stored(&ch, Channel::parse)?,
                address,
                language: stored(&lang, Language::parse)?,
                priority,
                customers: customers.into_iter().map(CustomerId).collect(),
            })
        })
        .collect()
}

/// Rewrites not-yet-sent notices of earlier events with the current details.
async fn rewrite_pending(
    tx: &mut Transaction<'static, Postgres>,
    id: IncidentId,
    draft: &IncidentDraft,
    wording: &dyn Wording,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut kinds = Vec::new();
    let mut langs = Vec::new();
    let mut subjects = Vec::new();
    let mut bodies = Vec::new();
    for event in [EventKind::Declared, EventKind::Updated] {
        for lang in Language::ALL {
            let text = wording.notice(id, draft, event, lang);
            kinds.push(event.as_str());
            langs.push(lang.code());
            subjects.push(text.subject);
            bodies.push(text.body);
        }
    }
    Ok(sqlx::query(
        "UPDATE notices n SET subject = t.subject, body = t.body, updated_at = $2
           FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) AS t(kind, lang, subject, body),
                incident_events e
          WHERE n.incident_id = $1 AND n.status = 'pending' AND n.language = t.lang
            AND n.in_doubt = 0
            AND e.id = n.event_id AND e.incident_id = $1 AND e.kind = t.kind",
    )
    .bind(id.0)
    .bind(now)
    .bind(&kinds)
    .bind(&langs)
    .bind(&subjects)
    .bind(&bodies)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

async fn rewrite_announcements(
    tx: &mut Transaction<'static, Postgres>,
    id: IncidentId,
    draft: &IncidentDraft,
    wording: &dyn Wording,
) -> Result<()> {
    let langs: Vec<&str> = Language::ALL.iter().map(|l| l.code()).collect();
    let texts: Vec<String> = Language::ALL
        .iter()
        .map(|l| wording.announcement(draft, *l))
        .collect();
    sqlx::query(
        "UPDATE ivr_flags f SET announcement = t.text
           FROM UNNEST($2::text[], $3::text[]) AS t(lang, text)
          WHERE f.incident_id = $1 AND f.language = t.lang AND f.disarmed_at IS NULL",
    )
    .bind(id.0)
    .bind(&langs)
    .bind(&texts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl PgStore {
    /// [`PgStore::declare`] recording `p` in the same transaction.
    pub async fn declare_with(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
        p: &crate::Provenance,
    ) -> Result<DeclareOutcome> {
        self.declare_recorded(d, wording, Some(p)).await
    }

    /// [`PgStore::transition`] recording `p` in the same transaction.
    pub async fn transition_with(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
        p: &crate::Provenance,
    ) -> Result<TransitionOutcome> {
        self.transition_recorded(t, wording, Some(p)).await
    }
}
