//! Provenance: written in the same transaction as the declaration or transition it belongs to
//! ([`record`]), or on its own for a CAP message that changes nothing customers hear.

use chrono::{DateTime, Utc};
use outagecast_core::incident::IncidentId;
use outagecast_core::notice::EventId;

use crate::backend::{Backend, Record, Sql};
use crate::model::provenance::{
    CapMessageRow, IncidentOrigin, MESSAGE_COLUMNS, ORIGIN_COLUMNS, Provenance, cap_recorded_audit,
    message, origin as origin_from, refuse_closed,
};
use crate::model::ts;
use crate::ops::audit;
use crate::{Result, StoreError};

/// Records `p` for `incident` and the event just written (`None`: no event), on `c` (the
/// write transaction of that event).
pub(crate) async fn record<B: Backend>(
    c: &mut B::Conn,
    incident: IncidentId,
    event: Option<EventId>,
    p: &Provenance,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(source) = &p.area_source {
        B::execute(
            c,
            Sql::new("UPDATE incidents SET area_source = $1 WHERE id = $2")
                .arg(source)
                .arg(incident.0),
        )
        .await?;
    }
    let Some(cap) = &p.cap else {
        return Ok(());
    };
    B::execute(
        c,
        Sql::new(
            "UPDATE incidents SET urgency = COALESCE($1, urgency), certainty = COALESCE($2, certainty),
               headline = COALESCE($3, headline), description = COALESCE($4, description),
               expires_at = COALESCE($5, expires_at)
             WHERE id = $6",
        )
        .arg(cap.urgency.as_ref())
        .arg(cap.certainty.as_ref())
        .arg(cap.headline.as_ref())
        .arg(cap.description.as_ref())
        .arg(cap.expires_at)
        .arg(incident.0),
    )
    .await?;
    // `sent` is text on both backends: CAP's time as fixed-width UTC.
    B::execute(
        c,
        Sql::new(
            "INSERT INTO cap_messages (sender, identifier, sent, msg_type, refs, incident_id, event_id, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .arg(&cap.sender)
        .arg(&cap.identifier)
        .arg(ts(cap.sent))
        .arg(&cap.msg_type)
        .arg(&cap.references)
        .arg(incident.0)
        .arg(event.map(|e| e.0))
        .arg(now),
    )
    .await?;
    Ok(())
}

/// Records a CAP message that changes nothing customers hear (a new expiry or description
/// only): the incident's CAP fields and the message, with an audit entry, in one transaction;
/// no event, no notices. The incident row is locked first, so a concurrent close is seen.
pub(crate) async fn record_cap_only<B: Backend>(
    b: &B,
    id: IncidentId,
    p: &Provenance,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = b.begin().await?;
    let row = B::fetch_optional(
        &mut tx,
        Sql::built(format!(
            "SELECT status FROM incidents WHERE id = $1{}",
            B::LOCK_ROWS
        ))
        .arg(id.0),
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
    refuse_closed(id, &row.text(0)?)?;
    record::<B>(&mut tx, id, None, p, now).await?;
    audit::write::<B>(
        &mut tx,
        actor,
        "incident.cap_recorded",
        Some(&format!("incident:{id}")),
        &cap_recorded_audit(p),
        now,
    )
    .await?;
    B::commit(tx).await
}

/// The CAP message `(sender, identifier)` if it was applied already.
pub(crate) async fn cap_message<B: Backend>(
    b: &B,
    sender: &str,
    identifier: &str,
) -> Result<Option<CapMessageRow>> {
    let row = B::fetch_optional(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT {MESSAGE_COLUMNS} FROM cap_messages WHERE sender = $1 AND identifier = $2"
        ))
        .arg(sender)
        .arg(identifier),
    )
    .await?;
    row.as_ref().map(message).transpose()
}

/// The incidents that the referenced messages (`(sender, identifier)` pairs) acted on,
/// without repeats, in id order.
pub(crate) async fn cap_incidents<B: Backend>(
    b: &B,
    refs: &[(String, String)],
) -> Result<Vec<IncidentId>> {
    let mut out: Vec<IncidentId> = Vec::new();
    for (sender, identifier) in refs {
        if let Some(m) = cap_message(b, sender, identifier).await?
            && !out.contains(&m.incident)
        {
            out.push(m.incident);
        }
    }
    out.sort();
    Ok(out)
}

/// Where an incident came from.
pub(crate) async fn origin<B: Backend>(b: &B, id: IncidentId) -> Result<IncidentOrigin> {
    let mut c = b.conn().await?;
    let Some(row) = B::fetch_optional(
        &mut c,
        Sql::built(format!(
            "SELECT {ORIGIN_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .arg(id.0),
    )
    .await?
    else {
        return Err(StoreError::NotFound(format!("incident {id}")));
    };
    let messages = B::fetch_all(
        &mut c,
        Sql::built(format!(
            "SELECT {MESSAGE_COLUMNS} FROM cap_messages WHERE incident_id = $1 ORDER BY id"
        ))
        .arg(id.0),
    )
    .await?;
    let messages = messages.iter().map(message).collect::<Result<_>>()?;
    origin_from(&row, messages)
}
