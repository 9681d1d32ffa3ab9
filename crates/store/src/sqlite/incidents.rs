//! Incidents, their events, the notice outbox and the IVR flags they arm.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{AccountId, CustomerId};
use outagecast_core::incident::{EventKind, Incident, IncidentDraft, IncidentId};
use outagecast_core::message::Wording;
use outagecast_core::notice::{EventId, Recipient};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::model::incidents::{
    Declaration, DeclareOutcome, IncidentParts, IncidentSummary, NoticeCount, Transition,
    TransitionAudit, TransitionOutcome, after_transition, check_transition, declare_audit,
    event_details, fresh_recipients, notice_count_rows, tells_the_told,
};
use crate::model::{parse_ts, stored, ts};
use crate::sqlite::{audit, parse_opt_ts};
use crate::{Result, SqliteStore, StoreError};

/// Rows per multi-row INSERT: well under SQLite's bound-variable limit at 10 columns a row.
const CHUNK: usize = 500;

type IncidentRow = (
    i64,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    String,
);

const INCIDENT_COLUMNS: &str =
    "id, reference, kind, severity, cause, etr, area, status, expires_at, declared_at, updated_at";

fn incident_from_row(r: IncidentRow) -> Result<Incident> {
    let (
        id,
        reference,
        kind,
        severity,
        cause,
        etr,
        area,
        status,
        expires_at,
        declared_at,
        updated_at,
    ) = r;
    IncidentParts {
        id,
        reference,
        kind,
        severity,
        cause,
        etr: parse_opt_ts(etr)?,
        area,
        status,
        expires_at: parse_opt_ts(expires_at)?,
        declared_at: parse_ts(&declared_at)?,
        updated_at: parse_ts(&updated_at)?,
    }
    .into_incident()
}

impl SqliteStore {
    /// Writes a declared incident, its event, the affected set, every planned notice and the
    /// IVR flags in one transaction: a failure anywhere leaves nothing behind.
    pub async fn declare(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
    ) -> Result<DeclareOutcome> {
        self.declare_recorded(d, wording, None).await
    }

    /// [`SqliteStore::declare`], also recording where the incident came from (see
    /// `provenance.rs`) in the same transaction.
    pub(crate) async fn declare_recorded(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
        record: Option<&crate::Provenance>,
    ) -> Result<DeclareOutcome> {
        let mut tx = self.write_tx().await?;
        let now = ts(d.now);
        let area = serde_json::to_string(d.draft.area())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO incidents (reference, kind, severity, cause, etr, area, status, expires_at, declared_at, updated_at, declared_by)
             VALUES (?, ?, ?, ?, ?, ?, 'declared', ?, ?, ?, ?) RETURNING id",
        )
        .bind(d.draft.reference())
        .bind(d.draft.kind().as_str())
        .bind(d.draft.severity().as_str())
        .bind(d.draft.cause().as_str())
        .bind(d.draft.etr().map(ts))
        .bind(&area)
        .bind(d.draft.expires_at().map(ts))
        .bind(&now)
        .bind(&now)
        .bind(d.actor)
        .fetch_one(&mut *tx)
        .await?;
        let incident_id = IncidentId(id);
        let event_id = insert_event(
            &mut tx,
            incident_id,
            EventKind::Declared,
            d,
            &serde_json::json!({}),
        )
        .await?;

        for chunk in d.affected.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO incident_customers (incident_id, customer_id) ",
            );
            q.push_values(chunk, |mut b, c| {
                b.push_bind(id).push_bind(c.0);
            });
            q.build().execute(&mut *tx).await?;
        }

        let notices = insert_notices(
            &mut tx,
            incident_id,
            event_id,
            EventKind::Declared,
            d.draft,
            &d.plan.recipients,
            wording,
            &now,
        )
        .await?;

        let mut announcements: HashMap<Language, String> = HashMap::new();
        for chunk in d.plan.armed.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at) ",
            );
            q.push_values(chunk, |mut b, n| {
                let text = announcements
                    .entry(n.language)
                    .or_insert_with(|| wording.announcement(d.draft, n.language))
                    .clone();
                b.push_bind(n.e164.clone())
                    .push_bind(id)
                    .push_bind(n.language.code())
                    .push_bind(text)
                    .push_bind(now.clone());
            });
            q.build().execute(&mut *tx).await?;
        }

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
            crate::ops::provenance::record::<SqliteStore>(
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
        Ok(DeclareOutcome {
            incident,
            event_id,
            notices,
            armed: d.plan.armed.len() as u64,
        })
    }

    /// Applies an update, restore or cancel in one transaction:
    /// - the incident row and a new event;
    /// - `Updated`: pending notices of earlier events are rewritten with the new details (so
    ///   nobody is first told the old ETR), and armed announcements are rewritten;
    /// - `Restored`/`Cancelled`: pending notices of earlier events are withdrawn (a customer
    ///   who never heard of the outage must not hear that it is over) and IVR flags cleared;
    /// - a follow-up notice to every contact that was already told, unless opted out since.
    pub async fn transition(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
    ) -> Result<TransitionOutcome> {
        self.transition_recorded(t, wording, None).await
    }

    /// [`SqliteStore::transition`], also recording the message that caused it (see
    /// `provenance.rs`) in the same transaction.
    pub(crate) async fn transition_recorded(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
        record: Option<&crate::Provenance>,
    ) -> Result<TransitionOutcome> {
        check_transition(&t)?;
        let mut tx = self.write_tx().await?;
        let before = fetch_incident(&mut tx, t.id).await?;
        let (status, draft) = after_transition(&before, &t)?;
        let now = ts(t.now);
        sqlx::query(
            "UPDATE incidents SET status = ?, severity = ?, cause = ?, etr = ?, updated_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(draft.severity().as_str())
        .bind(draft.cause().as_str())
        .bind(draft.etr().map(ts))
        .bind(&now)
        .bind(t.id.0)
        .execute(&mut *tx)
        .await?;
        let details = event_details(&draft);
        let event_id = insert_event_raw(&mut tx, t.id, t.event, t.actor, &now, &details).await?;

        let mut superseded = 0;
        let mut rewritten = 0;
        let mut disarmed = 0;
        if status.is_active() {
            rewritten = rewrite_pending(&mut tx, t.id, &draft, wording, &now).await?;
            rewrite_announcements(&mut tx, t.id, &draft, wording).await?;
        } else {
            // Every notice not yet handed to a provider is withdrawn, leased or not: a worker
            // that claimed it cannot hand it over now (the fence in outbox.rs). One handed over
            // (in doubt) may be on the wire; it counts as told, below.
            superseded = sqlx::query(
                "UPDATE notices SET status = 'superseded', updated_at = ?
                 WHERE incident_id = ? AND status = 'pending' AND in_doubt = 0",
            )
            .bind(&now)
            .bind(t.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            disarmed = sqlx::query(
                "UPDATE ivr_flags SET disarmed_at = ? WHERE incident_id = ? AND disarmed_at IS NULL",
            )
            .bind(&now)
            .bind(t.id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }

        let mut added_notices = BTreeMap::new();
        let mut added_customers = 0;
        if let Some(g) = t.growth.filter(|_| t.event == EventKind::Updated) {
            let area = serde_json::to_string(draft.area())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query("UPDATE incidents SET area = ? WHERE id = ?")
                .bind(&area)
                .bind(t.id.0)
                .execute(&mut *tx)
                .await?;
            for chunk in g.added.chunks(CHUNK) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO incident_customers (incident_id, customer_id) ",
                );
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(t.id.0).push_bind(c.0);
                });
                q.push(" ON CONFLICT DO NOTHING");
                added_customers += q.build().execute(&mut *tx).await?.rows_affected();
            }
            let known: std::collections::HashSet<(String, String)> =
                sqlx::query_as("SELECT channel, address FROM notices WHERE incident_id = ?")
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
                &now,
            )
            .await?;
            for n in &g.plan.armed {
                sqlx::query(
                    "INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at)
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (phone, incident_id) DO NOTHING",
                )
                .bind(&n.e164)
                .bind(t.id.0)
                .bind(n.language.code())
                .bind(wording.announcement(&draft, n.language))
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
        }

        let told = if tells_the_told(&t) {
            told_contacts(&mut tx, t.id).await?
        } else {
            vec![]
        };
        let notices = insert_notices(
            &mut tx, t.id, event_id, t.event, &draft, &told, wording, &now,
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
            t.now,
        )
        .await?;
        if let Some(p) = record {
            crate::ops::provenance::record::<SqliteStore>(&mut tx, t.id, Some(event_id), p, t.now)
                .await?;
        }
        let incident = fetch_incident(&mut tx, t.id).await?;
        tx.commit().await?;
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
        let mut conn = self.pool.acquire().await?;
        let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?"
        )))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(incident_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
    }

    /// Incidents, newest first; only active ones unless `include_closed`.
    pub async fn incidents(&self, include_closed: bool) -> Result<Vec<IncidentSummary>> {
        let filter = if include_closed {
            ""
        } else {
            "WHERE status IN ('declared', 'updated')"
        };
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents {filter} ORDER BY id DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let incident = incident_from_row(row)?;
            out.push(self.summary(incident).await?);
        }
        Ok(out)
    }

    /// An incident with its counts.
    pub async fn summary(&self, incident: Incident) -> Result<IncidentSummary> {
        let id = incident.id.0;
        let (affected,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM incident_customers WHERE incident_id = ?")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        let (armed,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM ivr_flags WHERE incident_id = ? AND disarmed_at IS NULL",
        )
        .bind(id)
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
            "SELECT channel, status, COUNT(*) FROM notices WHERE incident_id = ?
             GROUP BY channel, status ORDER BY channel, status",
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
             GROUP BY channel, status ORDER BY channel, status",
        )
        .fetch_all(&self.pool)
        .await?;
        notice_count_rows(rows)
    }

    /// Incidents declared or updated and not expired at `now`.
    pub async fn active_incident_count(&self, now: DateTime<Utc>) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM incidents WHERE status IN ('declared', 'updated')
               AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

impl SqliteStore {
    /// Ids of the customers the incident affects (selected at declaration or added since).
    pub async fn affected_ids(&self, id: IncidentId) -> Result<Vec<CustomerId>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT customer_id FROM incident_customers WHERE incident_id = ? ORDER BY customer_id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(c,)| CustomerId(c)).collect())
    }

    /// Account ids of the customers selected at declaration, sorted.
    pub async fn affected_accounts(&self, id: IncidentId) -> Result<Vec<AccountId>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT c.account_id FROM incident_customers ic JOIN customers c ON c.id = ic.customer_id
             WHERE ic.incident_id = ? ORDER BY c.account_id",
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
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT channel, address, priority, body FROM notices
             WHERE incident_id = ? AND status = 'pending' ORDER BY priority DESC, id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(ch, addr, p, body)| Ok((stored(&ch, Channel::parse)?, addr, p != 0, body)))
            .collect()
    }
}

pub(crate) async fn fetch_incident(
    tx: &mut Transaction<'static, Sqlite>,
    id: IncidentId,
) -> Result<Incident> {
    let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?"
    )))
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(incident_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))
}

async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    id: IncidentId,
    kind: EventKind,
    d: Declaration<'_>,
    details: &serde_json::Value,
) -> Result<EventId> {
    insert_event_raw(tx, id, kind, d.actor, &ts(d.now), details).await
}

async fn insert_event_raw(
    tx: &mut Transaction<'static, Sqlite>,
    id: IncidentId,
    kind: EventKind,
    actor: &str,
    now: &str,
    details: &serde_json::Value,
) -> Result<EventId> {
    let (event_id,): (i64,) = sqlx::query_as(
        "INSERT INTO incident_events (incident_id, kind, at, actor, details) VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(id.0)
    .bind(kind.as_str())
    .bind(now)
    .bind(actor)
    .bind(details.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(EventId(event_id))
}

/// Inserts one notice per recipient (and which accounts led to it); returns counts per channel.
#[allow(clippy::too_many_arguments)]
async fn insert_notices(
    tx: &mut Transaction<'static, Sqlite>,
    incident: IncidentId,
    event_id: EventId,
    event: EventKind,
    draft: &IncidentDraft,
    recipients: &[Recipient],
    wording: &dyn Wording,
    now: &str,
) -> Result<BTreeMap<Channel, u64>> {
    let mut texts = HashMap::new();
    for lang in Language::ALL {
        texts.insert(lang, wording.notice(incident, draft, event, lang));
    }
    let mut counts = BTreeMap::new();
    for chunk in recipients.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO notices (incident_id, event_id, channel, address, language, priority, subject, body, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, r| {
            let text = &texts[&r.language];
            b.push_bind(incident.0)
                .push_bind(event_id.0)
                .push_bind(r.channel.as_str())
                .push_bind(r.address.clone())
                .push_bind(r.language.code())
                .push_bind(i64::from(r.priority))
                .push_bind(text.subject.clone())
                .push_bind(text.body.clone())
                .push_bind(now.to_string())
                .push_bind(now.to_string());
        });
        q.push(" RETURNING id, channel, address");
        let ids: Vec<(i64, String, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        let by_contact: HashMap<(&str, &str), i64> = ids
            .iter()
            .map(|(id, ch, addr)| ((ch.as_str(), addr.as_str()), *id))
            .collect();
        let links: Vec<(i64, i64)> = chunk
            .iter()
            .flat_map(|r| {
                let nid = by_contact
                    .get(&(r.channel.as_str(), r.address.as_str()))
                    .copied();
                r.customers
                    .iter()
                    .filter_map(move |c| nid.map(|n| (n, c.0)))
            })
            .collect();
        for links in links.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO notice_customers (notice_id, customer_id) ",
            );
            q.push_values(links, |mut b, (n, c)| {
                b.push_bind(*n).push_bind(*c);
            });
            q.build().execute(&mut **tx).await?;
        }
        for r in chunk {
            *counts.entry(r.channel).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// Contacts that were told about this incident (a notice of any event reached them), minus
/// those who opted out since, each with the language and priority of their first notice.
async fn told_contacts(
    tx: &mut Transaction<'static, Sqlite>,
    id: IncidentId,
) -> Result<Vec<Recipient>> {
    let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
        "SELECT n.channel, n.address, n.language, MAX(n.priority),
                COALESCE(json_group_array(DISTINCT nc.customer_id), '[]')
         FROM notices n
         LEFT JOIN notice_customers nc ON nc.notice_id = n.id
         WHERE n.incident_id = ? AND (n.status IN ('sent', 'delivered') OR (n.status = 'pending' AND n.in_doubt <> 0))
           AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = n.channel AND o.address = n.address)
         GROUP BY n.channel, n.address
         ORDER BY MAX(n.priority) DESC, MIN(n.id)",
    )
    .bind(id.0)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(ch, address, lang, priority, customers)| {
            let customers: Vec<Option<i64>> =
                serde_json::from_str(&customers).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Recipient {
                channel: stored(&ch, Channel::parse)?,
                address,
                language: stored(&lang, Language::parse)?,
                priority: priority != 0,
                customers: customers.into_iter().flatten().map(CustomerId).collect(),
            })
        })
        .collect()
}

/// Rewrites not-yet-sent notices of earlier events with the current details.
async fn rewrite_pending(
    tx: &mut Transaction<'static, Sqlite>,
    id: IncidentId,
    draft: &IncidentDraft,
    wording: &dyn Wording,
    now: &str,
) -> Result<u64> {
    let mut n = 0;
    for event in [EventKind::Declared, EventKind::Updated] {
        for lang in Language::ALL {
            let text = wording.notice(id, draft, event, lang);
            n += sqlx::query(
                "UPDATE notices SET subject = ?, body = ?, updated_at = ?
                 WHERE incident_id = ? AND status = 'pending' AND language = ?
                   AND in_doubt = 0
                   AND event_id IN (SELECT id FROM incident_events WHERE incident_id = ? AND kind = ?)",
            )
            .bind(&text.subject)
            .bind(&text.body)
            .bind(now)
            .bind(id.0)
            .bind(lang.code())
            .bind(id.0)
            .bind(event.as_str())
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
    }
    Ok(n)
}

async fn rewrite_announcements(
    tx: &mut Transaction<'static, Sqlite>,
    id: IncidentId,
    draft: &IncidentDraft,
    wording: &dyn Wording,
) -> Result<()> {
    for lang in Language::ALL {
        sqlx::query(
            "UPDATE ivr_flags SET announcement = ? WHERE incident_id = ? AND language = ? AND disarmed_at IS NULL",
        )
        .bind(wording.announcement(draft, lang))
        .bind(id.0)
        .bind(lang.code())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl SqliteStore {
    /// [`SqliteStore::declare`] recording `p` in the same transaction.
    pub async fn declare_with(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
        p: &crate::Provenance,
    ) -> Result<DeclareOutcome> {
        self.declare_recorded(d, wording, Some(p)).await
    }

    /// [`SqliteStore::transition`] recording `p` in the same transaction.
    pub async fn transition_with(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
        p: &crate::Provenance,
    ) -> Result<TransitionOutcome> {
        self.transition_recorded(t, wording, Some(p)).await
    }
}
