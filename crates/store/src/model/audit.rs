//! The audit log's rows and queries: every operator action with who, what, when and a JSON
//! summary.

use chrono::{DateTime, Utc};

use crate::Result;
use crate::backend::Record;

/// The most entries one page returns, whatever the caller asks for.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// One audit log entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`cli:alice`, later a token name).
    pub actor: String,
    /// What (`incident.declare`).
    pub action: String,
    /// On what (`incident:12`).
    pub subject: Option<String>,
    /// A summary of the change.
    pub details: serde_json::Value,
}

/// Which audit entries to read: newest first, a page after a cursor, optionally filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The last id of the previous page: only older entries (smaller ids) are returned.
    /// `None` for the first page.
    pub after_id: Option<i64>,
    /// At most this many entries (capped at [`MAX_AUDIT_PAGE`]; 0 returns none).
    pub limit: u32,
    /// Only this actor, exactly (`cli:alice`, a token name).
    pub actor: Option<String>,
    /// Only this action (`incident.declare`), or a whole family by its first part
    /// (`incident` matches `incident.declare`, `incident.restore`, ...).
    pub action: Option<String>,
    /// Only entries about this subject (`incident:12`), or about any of a kind by the part
    /// before the colon (`incident` matches `incident:12`, `token` matches `token:ci`).
    pub entity: Option<String>,
}

/// The columns [`entry`] reads, in order.
pub(crate) const AUDIT_COLUMNS: &str = "id, at, actor, action, subject, details";

/// An entry from [`AUDIT_COLUMNS`].
pub(crate) fn entry(r: &impl Record) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.i64(0)?,
        at: r.time(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        subject: r.opt_text(4)?,
        details: r.json(5)?,
    })
}
