//! IVR flags: which live incidents a caller number is armed for, and the change feed that lets
//! a running server follow every change to them, whichever process made it.
//!
//! The feed is the `ivr_changes` log, filled by triggers on `incidents` and `ivr_flags`. A
//! follower reads a [`IvrSnapshot`] once, then polls for [`IvrChanges`] with the cursor it
//! got; each answer says exactly what to re-read, already read in the same database snapshot
//! as the cursor, so nothing falls between two polls. What a cursor counts differs (a change
//! id under SQLite's single writer, a commit number on PostgreSQL): see the backends.

use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{IncidentId, IncidentKind, IncidentStatus, Severity};
use outagecast_core::ivr::ArmedIncident;

use crate::Result;
use crate::backend::Record;
use crate::model::stored;

/// More changed numbers than this for one incident in one poll, and the follower re-reads all
/// of the incident's flags instead of each number: one indexed range read beats a long IN list.
pub(crate) const RELOAD_THRESHOLD: i64 = 1000;

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
    /// The last change already reflected here; poll `Store::ivr_changes` from it.
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

/// The flags worth holding: armed, or disarmed by the restore of their incident (for the
/// "restored" announcement). A flag disarmed earlier (its number left the area) is not.
pub(crate) const RELEVANT_FLAG: &str =
    "(f.disarmed_at IS NULL OR (i.status = 'restored' AND f.disarmed_at >= i.updated_at))";

/// The incident columns [`incident_row`] reads, in order.
pub(crate) const INCIDENT_COLUMNS: &str =
    "i.id, i.kind, i.severity, i.status, i.etr, i.declared_at, i.updated_at, i.expires_at";
/// The flag columns [`flag_row`] reads, in order.
pub(crate) const FLAG_COLUMNS: &str =
    "f.phone, f.incident_id, f.language, f.announcement, f.disarmed_at";
/// The columns [`armed_incident`] reads, in order.
pub(crate) const ARMED_COLUMNS: &str =
    "i.id, f.language, f.announcement, i.kind, i.severity, i.status, i.etr, i.declared_at";

/// An incident from [`INCIDENT_COLUMNS`].
pub(crate) fn incident_row(r: &impl Record) -> Result<IvrIncidentRow> {
    Ok(IvrIncidentRow {
        id: IncidentId(r.i64(0)?),
        kind: stored(&r.text(1)?, IncidentKind::parse)?,
        severity: stored(&r.text(2)?, Severity::parse)?,
        status: stored(&r.text(3)?, IncidentStatus::parse)?,
        etr: r.opt_time(4)?,
        declared_at: r.time(5)?,
        updated_at: r.time(6)?,
        expires_at: r.opt_time(7)?,
    })
}

/// A flag from [`FLAG_COLUMNS`].
pub(crate) fn flag_row(r: &impl Record) -> Result<IvrFlagRow> {
    Ok(IvrFlagRow {
        phone: r.text(0)?,
        incident_id: IncidentId(r.i64(1)?),
        language: stored(&r.text(2)?, Language::parse)?,
        announcement: r.text(3)?,
        disarmed_at: r.opt_time(4)?,
    })
}

/// An armed incident from [`ARMED_COLUMNS`].
pub(crate) fn armed_incident(r: &impl Record) -> Result<ArmedIncident> {
    Ok(ArmedIncident {
        id: IncidentId(r.i64(0)?),
        language: stored(&r.text(1)?, Language::parse)?,
        announcement: r.text(2)?,
        kind: stored(&r.text(3)?, IncidentKind::parse)?,
        severity: stored(&r.text(4)?, Severity::parse)?,
        status: stored(&r.text(5)?, IncidentStatus::parse)?,
        etr: r.opt_time(6)?,
        declared_at: r.time(7)?,
    })
}
