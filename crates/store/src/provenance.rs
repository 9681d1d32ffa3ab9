//! Where an incident and its changes came from: the area's source ("zone DMA 7", "address
//! Kaivokatu 1, Helsinki") and CAP alerts (the message ids that Updates and Cancels refer to,
//! and CAP's fields kept on the incident). Written in the same transaction as the declaration
//! or transition it belongs to (see `declare_recorded` and `transition_recorded`).

use chrono::{DateTime, Utc};
use outagecast_core::incident::IncidentId;
use outagecast_core::notice::EventId;
use serde::Serialize;
use sqlx::{Sqlite, Transaction};

use crate::incidents::{Declaration, DeclareOutcome, Transition, TransitionOutcome};
use crate::{Result, SqliteStore, StoreError, parse_ts, ts};
use outagecast_core::message::Wording;

/// What to record with a declaration or transition.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// How the area was given, for operators ("zone DMA 7").
    pub area_source: Option<String>,
    /// The CAP message behind it.
    pub cap: Option<CapRecord>,
}

/// A CAP message and the fields it sets on the incident.
#[derive(Debug, Clone)]
pub struct CapRecord {
    /// `sender`.
    pub sender: String,
    /// `identifier`.
    pub identifier: String,
    /// `sent`.
    pub sent: DateTime<Utc>,
    /// `msgType`: Alert, Update or Cancel.
    pub msg_type: String,
    /// `references` as written.
    pub references: String,
    /// `urgency`, `certainty`, `headline`, `description`: kept on the incident (a `None`
    /// leaves the stored value).
    pub urgency: Option<String>,
    /// See `urgency`.
    pub certainty: Option<String>,
    /// See `urgency`.
    pub headline: Option<String>,
    /// See `urgency`.
    pub description: Option<String>,
    /// A new expiry from an Update (an Alert's is part of the draft).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A CAP message as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapMessageRow {
    /// `sender`.
    pub sender: String,
    /// `identifier`.
    pub identifier: String,
    /// `sent`, as stored.
    pub sent: DateTime<Utc>,
    /// Alert, Update or Cancel.
    pub msg_type: String,
    /// The incident it acted on.
    pub incident: IncidentId,
}

/// Where an incident came from, for `incident show`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentOrigin {
    /// How the area was given.
    pub area_source: Option<String>,
    /// CAP `urgency`.
    pub urgency: Option<String>,
    /// CAP `certainty`.
    pub certainty: Option<String>,
    /// CAP `headline`.
    pub headline: Option<String>,
    /// CAP `description`.
    pub description: Option<String>,
    /// CAP messages applied, oldest first.
    pub cap_messages: Vec<CapMessageRow>,
}

pub(crate) async fn record(
    tx: &mut Transaction<'static, Sqlite>,
    incident: IncidentId,
    event: EventId,
    p: &Provenance,
    now: DateTime<Utc>,
) -> Result<()> {
    record_event(tx, incident, Some(event), p, now).await
}

async fn record_event(
    tx: &mut Transaction<'static, Sqlite>,
    incident: IncidentId,
    event: Option<EventId>,
    p: &Provenance,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(source) = &p.area_source {
        sqlx::query("UPDATE incidents SET area_source = ? WHERE id = ?")
            .bind(source)
            .bind(incident.0)
            .execute(&mut **tx)
            .await?;
    }
    let Some(cap) = &p.cap else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE incidents SET urgency = COALESCE(?, urgency), certainty = COALESCE(?, certainty),
           headline = COALESCE(?, headline), description = COALESCE(?, description),
           expires_at = COALESCE(?, expires_at)
         WHERE id = ?",
    )
    .bind(&cap.urgency)
    .bind(&cap.certainty)
    .bind(&cap.headline)
    .bind(&cap.description)
    .bind(cap.expires_at.map(ts))
    .bind(incident.0)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO cap_messages (sender, identifier, sent, msg_type, refs, incident_id, event_id, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&cap.sender)
    .bind(&cap.identifier)
    .bind(ts(cap.sent))
    .bind(&cap.msg_type)
    .bind(&cap.references)
    .bind(incident.0)
    .bind(event.map(|e| e.0))
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// [`SqliteStore::declare`] recording `p` in the same transaction.
    pub async fn declare_with(
        &self,
        d: Declaration<'_>,
        wording: &dyn Wording,
        p: &Provenance,
    ) -> Result<DeclareOutcome> {
        self.declare_recorded(d, wording, Some(p)).await
    }

    /// [`SqliteStore::transition`] recording `p` in the same transaction.
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
    /// one transaction; no event, no notices.
    pub async fn record_cap_only(
        &self,
        id: IncidentId,
        p: &Provenance,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let (status,): (String,) = sqlx::query_as("SELECT status FROM incidents WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
        refuse_closed(id, &status)?;
        record_event(&mut tx, id, None, p, now).await?;
        crate::audit(
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
             WHERE sender = ? AND identifier = ?",
        )
        .bind(sender)
        .bind(identifier)
        .fetch_optional(&self.pool)
        .await?;
        row.map(message_from_row).transpose()
    }

    /// The incidents that the referenced messages (`(sender, identifier)` pairs) acted on,
    /// without repeats, oldest first.
    pub async fn cap_incidents(&self, refs: &[(String, String)]) -> Result<Vec<IncidentId>> {
        let mut out: Vec<IncidentId> = Vec::new();
        for (sender, identifier) in refs {
            if let Some(m) = self.cap_message(sender, identifier).await?
                && !out.contains(&m.incident)
            {
                out.push(m.incident);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Where an incident came from.
    pub async fn origin(&self, id: IncidentId) -> Result<IncidentOrigin> {
        let row: Option<OriginRow> = sqlx::query_as(
            "SELECT area_source, urgency, certainty, headline, description FROM incidents WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("incident {id}")));
        };
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT sender, identifier, sent, msg_type, incident_id FROM cap_messages
             WHERE incident_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        origin_from(row, rows)
    }
}

/// An incident's `area_source, urgency, certainty, headline, description`.
pub(crate) type OriginRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A `cap_messages` row: `sender, identifier, sent, msg_type, incident_id`.
pub(crate) type MessageRow = (String, String, String, String, i64);

/// The origin from the incident's columns and its messages, oldest first.
pub(crate) fn origin_from(row: OriginRow, messages: Vec<MessageRow>) -> Result<IncidentOrigin> {
    let (area_source, urgency, certainty, headline, description) = row;
    Ok(IncidentOrigin {
        area_source,
        urgency,
        certainty,
        headline,
        description,
        cap_messages: messages
            .into_iter()
            .map(message_from_row)
            .collect::<Result<_>>()?,
    })
}

/// Refuses a CAP-only record on an incident whose stored status is not active.
pub(crate) fn refuse_closed(id: IncidentId, status: &str) -> Result<()> {
    if !matches!(status, "declared" | "updated") {
        return Err(StoreError::Rule(outagecast_core::CoreError::invalid(
            "incident",
            format!(
                "{} is {status}; a closed incident takes no updates",
                id.label()
            ),
        )));
    }
    Ok(())
}

/// The audit details of [`SqliteStore::record_cap_only`].
pub(crate) fn cap_recorded_audit(p: &Provenance) -> serde_json::Value {
    serde_json::json!({
        "identifier": p.cap.as_ref().map(|c| c.identifier.as_str()),
        "msg_type": p.cap.as_ref().map(|c| c.msg_type.as_str()),
    })
}

pub(crate) fn message_from_row(
    (sender, identifier, sent, msg_type, incident): MessageRow,
) -> Result<CapMessageRow> {
    Ok(CapMessageRow {
        sender,
        identifier,
        sent: parse_ts(&sent)?,
        msg_type,
        incident: IncidentId(incident),
    })
}
