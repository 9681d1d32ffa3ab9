//! What the phone system is told when a number calls in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contact::{Language, PhoneNumber, Region};
use crate::incident::{IncidentId, IncidentKind, IncidentStatus, Severity};

/// One armed incident for one caller number, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrFlag {
    /// The caller number, E.164.
    pub phone: String,
    /// The incident.
    pub incident_id: IncidentId,
    /// The caller's language.
    pub language: Language,
    /// What they hear, already in their language.
    pub announcement: String,
}

/// An incident as the IVR describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedIncident {
    /// Incident id.
    pub id: IncidentId,
    /// Service kind.
    pub kind: IncidentKind,
    /// Severity.
    pub severity: Severity,
    /// Status.
    pub status: IncidentStatus,
    /// Estimated restoration.
    pub etr: Option<DateTime<Utc>>,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// The caller's language.
    pub language: Language,
    /// The announcement.
    pub announcement: String,
}

/// The answer to "is there something to tell this caller?". Always well-formed: an unknown or
/// garbled number is simply not armed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrAnswer {
    /// Whether to play an announcement.
    pub armed: bool,
    /// The caller number in E.164, when it could be read.
    pub caller: Option<String>,
    /// Language of the announcement.
    pub language: Option<Language>,
    /// Every armed announcement joined, most severe first; `None` when not armed.
    pub announcement: Option<String>,
    /// The armed incidents, most severe first, then newest first.
    pub incidents: Vec<ArmedIncident>,
}

/// Reads a caller number the way phone systems send it: E.164 with or without `+`, a space
/// where a `+` was URL-decoded, `00` international prefix, or the default region's national
/// form. `None` for anything that is not a valid number (withheld, `anonymous`, garbage).
///
/// ```
/// use outagecast_core::contact::Region;
/// use outagecast_core::ivr::normalise_caller;
/// let fi = Some(Region::parse("FI").unwrap());
/// assert_eq!(normalise_caller(" 358401234567", fi).as_deref(), Some("+358401234567"));
/// assert_eq!(normalise_caller("anonymous", fi), None);
/// ```
pub fn normalise_caller(raw: &str, default_region: Option<Region>) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 40 {
        return None;
    }
    let try_parse = |s: &str| PhoneNumber::parse(s, default_region).ok();
    // As given first (national or international); then, for bare digits, as E.164 without '+'.
    try_parse(t)
        .or_else(|| {
            if t.chars().all(|c| c.is_ascii_digit()) && !t.starts_with('0') {
                try_parse(&format!("+{t}"))
            } else {
                None
            }
        })
        .map(|p| p.e164().to_string())
}

/// Composes the answer from the caller's armed incidents (in any order).
pub fn answer(caller: Option<String>, mut incidents: Vec<ArmedIncident>) -> IvrAnswer {
    incidents.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.declared_at.cmp(&a.declared_at))
            .then_with(|| b.id.cmp(&a.id))
    });
    let armed = !incidents.is_empty();
    let language = incidents.first().map(|i| i.language);
    let announcement = armed.then(|| {
        incidents
            .iter()
            .map(|i| i.announcement.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    });
    IvrAnswer {
        armed,
        caller,
        language,
        announcement,
        incidents,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn armed(id: i64, severity: Severity, text: &str) -> ArmedIncident {
        ArmedIncident {
            id: IncidentId(id),
            kind: IncidentKind::Water,
            severity,
            status: IncidentStatus::Declared,
            etr: None,
            declared_at: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
            language: Language::En,
            announcement: text.into(),
        }
    }

    #[test]
    fn most_severe_first() {
        let a = answer(
            Some("+358401234567".into()),
            vec![
                armed(1, Severity::Minor, "minor."),
                armed(2, Severity::Severe, "severe."),
            ],
        );
        assert!(a.armed);
        assert_eq!(a.announcement.as_deref(), Some("severe. minor."));
        assert_eq!(a.incidents[0].id, IncidentId(2));
    }

    #[test]
    fn nothing_armed_is_a_plain_no() {
        let a = answer(None, vec![]);
        assert!(!a.armed);
        assert_eq!(a.announcement, None);
    }

    #[test]
    fn caller_forms_are_normalised() {
        let fi = Some(Region::parse("FI").unwrap());
        for raw in [
            "+358401234567",
            "358401234567",
            " 358401234567",
            "00358401234567",
            "0401234567",
        ] {
            assert_eq!(
                normalise_caller(raw, fi).as_deref(),
                Some("+358401234567"),
                "{raw}"
            );
        }
        for raw in [
            "",
            "anonymous",
            "+",
            "12",
            "<script>",
            "9999999999999999999999999999999999999999999",
        ] {
            assert_eq!(normalise_caller(raw, fi), None, "{raw}");
        }
    }
}
