//! Where an incident and its changes came from: the area's source ("zone DMA 7", "address
//! Kaivokatu 1, Helsinki") and CAP alerts (the message ids that Updates and Cancels refer to,
//! and CAP's fields kept on the incident).

use chrono::{DateTime, Utc};
use outagecast_core::incident::IncidentId;
use serde::Serialize;

use crate::backend::Record;
use crate::model::parse_ts;
use crate::{Result, StoreError};

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

/// The incident columns [`origin`] reads, in order.
pub(crate) const ORIGIN_COLUMNS: &str = "area_source, urgency, certainty, headline, description";

/// The `cap_messages` columns [`message`] reads, in order.
pub(crate) const MESSAGE_COLUMNS: &str = "sender, identifier, sent, msg_type, incident_id";

/// The origin from [`ORIGIN_COLUMNS`] and its messages, oldest first.
pub(crate) fn origin(row: &impl Record, messages: Vec<CapMessageRow>) -> Result<IncidentOrigin> {
    Ok(IncidentOrigin {
        area_source: row.opt_text(0)?,
        urgency: row.opt_text(1)?,
        certainty: row.opt_text(2)?,
        headline: row.opt_text(3)?,
        description: row.opt_text(4)?,
        cap_messages: messages,
    })
}

/// A message from [`MESSAGE_COLUMNS`]; `sent` is CAP's time as fixed-width text on both stores.
pub(crate) fn message(r: &impl Record) -> Result<CapMessageRow> {
    Ok(CapMessageRow {
        sender: r.text(0)?,
        identifier: r.text(1)?,
        sent: parse_ts(&r.text(2)?)?,
        msg_type: r.text(3)?,
        incident: IncidentId(r.i64(4)?),
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

/// The audit details of a CAP-only record.
pub(crate) fn cap_recorded_audit(p: &Provenance) -> serde_json::Value {
    serde_json::json!({
        "identifier": p.cap.as_ref().map(|c| c.identifier.as_str()),
        "msg_type": p.cap.as_ref().map(|c| c.msg_type.as_str()),
    })
}
