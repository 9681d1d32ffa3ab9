//! Reading IVR flags: which live incidents is a caller number armed for?

use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{IncidentId, IncidentKind, IncidentStatus, Severity};
use outagecast_core::ivr::ArmedIncident;

use crate::{Result, SqliteStore, parse_opt_ts, parse_ts, stored, ts};

type FlagRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
);

impl SqliteStore {
    /// The live incidents armed for `phone` (E.164) at `now`: not disarmed, not closed, not
    /// expired. Any order; [`outagecast_core::ivr::answer`] ranks them.
    pub async fn armed_for(&self, phone: &str, now: DateTime<Utc>) -> Result<Vec<ArmedIncident>> {
        let rows: Vec<FlagRow> = sqlx::query_as(
            "SELECT i.id, f.language, f.announcement, i.kind, i.severity, i.status, i.etr, i.declared_at
             FROM ivr_flags f JOIN incidents i ON i.id = f.incident_id
             WHERE f.phone = ? AND f.disarmed_at IS NULL
               AND i.status IN ('declared', 'updated')
               AND (i.expires_at IS NULL OR i.expires_at > ?)",
        )
        .bind(phone)
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(id, lang, text, kind, severity, status, etr, declared_at)| {
                    Ok(ArmedIncident {
                        id: IncidentId(id),
                        kind: stored(&kind, IncidentKind::parse)?,
                        severity: stored(&severity, Severity::parse)?,
                        status: stored(&status, IncidentStatus::parse)?,
                        etr: parse_opt_ts(etr)?,
                        declared_at: parse_ts(&declared_at)?,
                        language: stored(&lang, Language::parse)?,
                        announcement: text,
                    })
                },
            )
            .collect()
    }
}
