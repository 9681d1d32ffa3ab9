//! Incidents as the store keeps them: the declare and transition commands and outcomes, the
//! decoded incident row, and the rules both backends' scripts apply (which transitions are
//! allowed, who a follow-up tells, what the audit entries say).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use outagecast_core::contact::Channel;
use outagecast_core::customer::CustomerId;
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, Incident, IncidentChanges, IncidentDraft, IncidentId,
    IncidentKind, IncidentStatus, Severity,
};
use outagecast_core::notice::{EventId, NoticeStatus, Recipient, RecipientPlan};
use serde::Serialize;

use crate::backend::Record;
use crate::model::provenance::Provenance;
use crate::model::{count, stored, ts};
use crate::{Result, StoreError};

/// Everything a declaration writes, planned by the caller from the index and the core.
#[derive(Debug, Clone, Copy)]
pub struct Declaration<'a> {
    /// What was declared.
    pub draft: &'a IncidentDraft,
    /// The affected customers, as the index selected them.
    pub affected: &'a [CustomerId],
    /// Who is told over which channel, and which numbers are armed.
    pub plan: &'a RecipientPlan,
    /// Who declared it (for the audit log).
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
    /// Where it came from (a CAP alert, an area's source), recorded in the same transaction.
    pub provenance: Option<&'a Provenance>,
}

/// What a declaration wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DeclareOutcome {
    /// The new incident.
    pub incident: Incident,
    /// Its `declared` event.
    pub event_id: EventId,
    /// Notices planned, per channel.
    pub notices: BTreeMap<Channel, u64>,
    /// Phone numbers armed in the IVR.
    pub armed: u64,
}

/// An update, restore or cancel.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    /// Which incident.
    pub id: IncidentId,
    /// `Updated`, `Restored` or `Cancelled`.
    pub event: EventKind,
    /// For `Updated`: what changes.
    pub changes: IncidentChanges,
    /// Who (for the audit log).
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
    /// For an `Updated` with a new area: the customers it adds and who they are told through.
    pub growth: Option<Growth<'a>>,
    /// The message that caused it (a CAP update or cancel), recorded in the same transaction.
    pub provenance: Option<&'a Provenance>,
}

/// Customers a grown area adds, planned by the caller from the index and the core.
#[derive(Debug, Clone, Copy)]
pub struct Growth<'a> {
    /// Customers in the new area that were not affected before.
    pub added: &'a [CustomerId],
    /// Customers affected before that the new area no longer holds: they leave the affected
    /// set, their waiting notices are withdrawn, their numbers disarmed (unless shared with
    /// someone still affected), and those already told hear that they are no longer affected.
    pub left: &'a [CustomerId],
    /// Their recipients and numbers; contacts this incident already has notices for are
    /// skipped, so a phone shared with an earlier-affected account is not told twice.
    pub plan: &'a RecipientPlan,
}

/// What a transition wrote.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionOutcome {
    /// The incident after the transition.
    pub incident: Incident,
    /// The new event.
    pub event_id: EventId,
    /// Follow-up notices planned, per channel: only to contacts already told.
    pub notices: BTreeMap<Channel, u64>,
    /// Pending notices of earlier events withdrawn because the incident closed.
    pub superseded: u64,
    /// Pending notices of earlier events rewritten with the new details.
    pub rewritten: u64,
    /// IVR flags cleared.
    pub disarmed: u64,
    /// Customers a grown area added.
    pub added_customers: u64,
    /// Notices to the newly affected, per channel (declared wording).
    pub added_notices: BTreeMap<Channel, u64>,
    /// Customers a smaller area removed from the affected set.
    pub removed_customers: u64,
    /// "No longer affected" notices to the told contacts of those removed, per channel.
    pub left_notices: BTreeMap<Channel, u64>,
}

/// Outbox counts for one channel and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NoticeCount {
    /// Channel.
    pub channel: Channel,
    /// Status.
    pub status: NoticeStatus,
    /// How many.
    pub count: u64,
}

/// An incident with its headline numbers, for lists.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentSummary {
    /// The incident.
    pub incident: Incident,
    /// Customers in the area at declaration.
    pub affected_customers: u64,
    /// Phone numbers armed now.
    pub armed_numbers: u64,
    /// Outbox counts.
    pub notices: Vec<NoticeCount>,
}

/// The columns [`incident_from_record`] reads, in order; `area` as JSON text on both backends
/// (PostgreSQL keeps it as `jsonb`), so both decode the same text the same way.
pub(crate) const INCIDENT_COLUMNS: &str = "id, reference, kind, severity, cause, etr, CAST(area AS TEXT) AS area, status, expires_at, declared_at, updated_at";

/// The incident of a row of [`INCIDENT_COLUMNS`], refusing damaged values.
pub(crate) fn incident_from_record(r: &impl Record) -> Result<Incident> {
    IncidentParts {
        id: r.i64(0)?,
        reference: r.opt_text(1)?,
        kind: r.text(2)?,
        severity: r.text(3)?,
        cause: r.text(4)?,
        etr: r.opt_time(5)?,
        area: r.text(6)?,
        status: r.text(7)?,
        expires_at: r.opt_time(8)?,
        declared_at: r.time(9)?,
        updated_at: r.time(10)?,
    }
    .into_incident()
}

/// An incident row with its times decoded; `area` is JSON text.
struct IncidentParts {
    id: i64,
    reference: Option<String>,
    kind: String,
    severity: String,
    cause: String,
    etr: Option<DateTime<Utc>>,
    area: String,
    status: String,
    expires_at: Option<DateTime<Utc>>,
    declared_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl IncidentParts {
    /// The incident, refusing damaged values.
    fn into_incident(self) -> Result<Incident> {
        let id = self.id;
        // Validated once when it was declared; not again on every read (a list or a progress
        // stream would redo it for every big polygon each time).
        let area = Area::deserialize_stored(&mut serde_json::Deserializer::from_str(&self.area))
            .map_err(|e| StoreError::Corrupt(format!("incident {id} area: {e}")))?;
        // Rebuilt as of its declaration so the "ETR in the future" rule holds as it did then.
        let draft = IncidentDraft::new(
            DraftParts {
                kind: stored(&self.kind, IncidentKind::parse)?,
                severity: stored(&self.severity, Severity::parse)?,
                cause: stored(&self.cause, Cause::parse)?,
                etr: None,
                reference: self.reference,
                area,
                expires_at: None,
            },
            self.declared_at,
        )
        .map_err(|e| StoreError::Corrupt(format!("incident {id}: {e}")))?;
        Ok(Incident {
            id: IncidentId(id),
            draft: draft.with_stored_times(self.etr, self.expires_at),
            status: stored(&self.status, IncidentStatus::parse)?,
            declared_at: self.declared_at,
            updated_at: self.updated_at,
        })
    }
}

/// The audit details of a declaration.
pub(crate) fn declare_audit(
    d: &Declaration<'_>,
    notices: &BTreeMap<Channel, u64>,
) -> serde_json::Value {
    serde_json::json!({
        "kind": d.draft.kind().as_str(),
        "severity": d.draft.severity().as_str(),
        "cause": d.draft.cause().as_str(),
        "reference": d.draft.reference(),
        "area": d.draft.area().describe(),
        "affected_customers": d.affected.len(),
        "notices": notices,
        "armed_numbers": d.plan.armed.len(),
    })
}

/// Refuses `Declared` as a transition.
pub(crate) fn check_transition(t: &Transition<'_>) -> Result<()> {
    if t.event == EventKind::Declared {
        return Err(StoreError::Rule(outagecast_core::CoreError::invalid(
            "event",
            "declare creates a new incident; it is not a transition",
        )));
    }
    Ok(())
}

/// The status and details `before` has after `t`, or the rule that refuses it.
pub(crate) fn after_transition(
    before: &Incident,
    t: &Transition<'_>,
) -> Result<(IncidentStatus, IncidentDraft)> {
    let status = before.status.after(t.event)?;
    let draft = if t.event == EventKind::Updated {
        before.draft.with_changes(&t.changes, t.now)?
    } else {
        before.draft.clone()
    };
    Ok((status, draft))
}

/// The details stored on a transition's event.
pub(crate) fn event_details(draft: &IncidentDraft) -> serde_json::Value {
    serde_json::json!({
        "etr": draft.etr().map(ts),
        "cause": draft.cause().as_str(),
        "severity": draft.severity().as_str(),
    })
}

/// Recipients of a grown area's plan that this incident has no notice for yet.
pub(crate) fn fresh_recipients(
    known: &std::collections::HashSet<(String, String)>,
    plan: &RecipientPlan,
) -> Vec<Recipient> {
    plan.recipients
        .iter()
        .filter(|r| !known.contains(&(r.channel.as_str().to_string(), r.address.clone())))
        .cloned()
        .collect()
}

/// Whether `t` is news to the contacts already told: a change of shape alone is news only to
/// the newly affected.
pub(crate) fn tells_the_told(t: &Transition<'_>) -> bool {
    let only_area = t.event == EventKind::Updated
        && t.changes.etr.is_none()
        && t.changes.cause.is_none()
        && t.changes.severity.is_none();
    !only_area
}

/// What a transition wrote, before the incident is read back: for the audit log.
pub(crate) struct TransitionAudit<'a> {
    pub(crate) before: &'a Incident,
    pub(crate) status: IncidentStatus,
    pub(crate) draft: &'a IncidentDraft,
    pub(crate) notices: &'a BTreeMap<Channel, u64>,
    pub(crate) superseded: u64,
    pub(crate) disarmed: u64,
    pub(crate) added_customers: u64,
    pub(crate) added_notices: &'a BTreeMap<Channel, u64>,
    pub(crate) removed_customers: u64,
    pub(crate) left_notices: &'a BTreeMap<Channel, u64>,
}

impl TransitionAudit<'_> {
    /// The audit action of `event`.
    pub(crate) fn action(event: EventKind) -> &'static str {
        match event {
            EventKind::Updated => "incident.update",
            EventKind::Restored => "incident.restore",
            _ => "incident.cancel",
        }
    }

    /// The audit details.
    pub(crate) fn details(&self) -> serde_json::Value {
        let (before, status, draft) = (self.before, self.status, self.draft);
        serde_json::json!({
            "before": { "status": before.status.as_str(), "etr": before.draft.etr().map(ts),
                        "cause": before.draft.cause().as_str(), "severity": before.draft.severity().as_str() },
            "after": { "status": status.as_str(), "etr": draft.etr().map(ts),
                       "cause": draft.cause().as_str(), "severity": draft.severity().as_str() },
            "follow_up_notices": self.notices,
            "superseded": self.superseded,
            "disarmed": self.disarmed,
            "added_customers": self.added_customers,
            "added_notices": self.added_notices,
            "removed_customers": self.removed_customers,
            "left_notices": self.left_notices,
        })
    }
}

/// One row of `channel, status, COUNT(*)`.
pub(crate) fn notice_count(r: &impl Record) -> Result<NoticeCount> {
    Ok(NoticeCount {
        channel: stored(&r.text(0)?, Channel::parse)?,
        status: stored(&r.text(1)?, NoticeStatus::parse)?,
        count: count(r.i64(2)?),
    })
}
