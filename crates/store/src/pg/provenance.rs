//! CAP provenance on PostgreSQL, with the SQLite store's semantics (see
//! `crate::provenance`): written in the same transaction as the declaration or transition it
//! belongs to.

use chrono::{DateTime, Utc};
use outagecast_core::incident::IncidentId;
use outagecast_core::message::Wording;
use outagecast_core::notice::EventId;
use sqlx::{Postgres, Transaction};

use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::provenance::{
    MessageRow, OriginRow, cap_recorded_audit, message_from_row, origin_from, refuse_closed,
};
use crate::{
    CapMessageRow, Declaration, DeclareOutcome, IncidentOrigin, Provenance, Result, StoreError,
    Transition, TransitionOutcome, ts,
};

/// Records `p` for the incident and the event just written, inside `tx`.
pub(crate) async fn record(
    tx: &mut Transaction<'static, Postgres>,
    incident: IncidentId,
    event: EventId,
    p: &Provenance,
    now: DateTime<Utc>,
) -> Result<()> {
    record_event(tx, incident, Some(event), p, now).await
}

async fn record_event(
    tx: &mut Transaction<'static, Postgres>,
    incident: IncidentId,
    event: Option<EventId>,
    p: &Provenance,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(source) = &p.area_source {
        sqlx::query("UPDATE incidents SET area_source = $1 WHERE id = $2")
            .bind(source)
            .bind(incident.0)
            .execute(&mut **tx)
            .await?;
    }
    let Some(cap) = &p.cap else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE incidents SET urgency = COALESCE($1, urgency), certainty = COALESCE($2, certainty),
           headline = COALESCE($3, headline), description = COALESCE($4, description),
           expires_at = COALESCE($5, expires_at)
         WHERE id = $6",
    )
    .bind(&cap.urgency)
    .bind(&cap.certainty)
    .bind(&cap.headline)
    .bind(&cap.description)
    .bind(cap.expires_at)
    .bind(incident.0)
    .execute(&mut **tx)
    .await?;
    // `sent` is text on both backends: CAP's time as the SQLite store writes it.
    sqlx::query(
        "INSERT INTO cap_messages (sender, identifier, sent, msg_type, refs, incident_id, event_id, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&cap.sender)
    .bind(&cap.identifier)
    .bind(ts(cap.sent))
    .bind(&cap.msg_type)
    .bind(&cap.references)
    .bind(incident.0)
    .bind(event.map(|e| e.0))
    .bind(now)
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
        p: &Provenance,
    ) -> Result<DeclareOutcome> {
        self.declare_recorded(d, wording, Some(p)).await
    }

    /// [`PgStore::transition`] recording `p` in the same transaction.
    pub async fn transition_with(
        &self,
        t: Transition<'_>,
        wording: &dyn Wording,
        p: &Provenance,
    ) -> Result<TransitionOutcome> {
        self.transition_recorded(t, wording, Some(p)).await
    }

    /// Records a CAP message that changes nothing customers hear (a new expiry or
    /// description only): the incident's CAP fields and the message, with an audit entry, in
    /// one transaction; no event, no notices. The incident row is locked first, so a
    /// concurrent close is seen.
    pub async fn record_cap_only(
        &self,
        id: IncidentId,
        p: &Provenance,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let (status,): (String,) =
            sqlx::query_as("SELECT status FROM incidents WHERE id = $1 FOR UPDATE")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
        refuse_closed(id, &status)?;
        record_event(&mut tx, id, None, p, now).await?;
        audit(
            &mut tx,
            actor,
            "incident.cap_recorded",
            Some(&format!("incident:{id}")),
            &cap_recorded_audit(p),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The CAP message `(sender, identifier)` if it was applied already.
    pub async fn cap_message(
        &self,
        sender: &str,
        identifier: &str,
    ) -> Result<Option<CapMessageRow>> {
        let row: Option<MessageRow> = sqlx::query_as(
            "SELECT sender, identifier, sent, msg_type, incident_id FROM cap_messages
             WHERE sender = $1 AND identifier = $2",
        )
        .bind(sender)
        .bind(identifier)
        .fetch_optional(&self.pool)
        .await?;
        row.map(message_from_row).transpose()
    }

    /// The incidents that the referenced messages (`(sender, identifier)` pairs) acted on,
    /// without repeats, in id order.
    pub async fn cap_incidents(&self, refs: &[(String, String)]) -> Result<Vec<IncidentId>> {
        if refs.is_empty() {
            return Ok(vec![]);
        }
        let (senders, identifiers): (Vec<&str>, Vec<&str>) =
            refs.iter().map(|(s, i)| (s.as_str(), i.as_str())).unzip();
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT m.incident_id
               FROM cap_messages m
               JOIN UNNEST($1::text[], $2::text[]) AS r(sender, identifier)
                 ON m.sender = r.sender AND m.identifier = r.identifier
              ORDER BY m.incident_id",
        )
        .bind(&senders)
        .bind(&identifiers)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| IncidentId(id)).collect())
    }

    /// Where an incident came from.
    pub async fn origin(&self, id: IncidentId) -> Result<IncidentOrigin> {
        let row: Option<OriginRow> = sqlx::query_as(
            "SELECT area_source, urgency, certainty, headline, description FROM incidents WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("incident {id}")));
        };
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT sender, identifier, sent, msg_type, incident_id FROM cap_messages
             WHERE incident_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        origin_from(row, rows)
    }
}
