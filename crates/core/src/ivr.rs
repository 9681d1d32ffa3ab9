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
/// where a `+` was URL-decoded (`?caller=+358…` read as ` 358…`), the `00` international
/// prefix, the default region's national form, and `tel:`/`sip:` URIs around any of these.
/// `None` for anything that is not a valid number (withheld, `anonymous`, garbage).
///
/// ```
/// use outagecast_core::contact::Region;
/// use outagecast_core::ivr::normalise_caller;
/// let fi = Some(Region::parse("FI").unwrap());
/// assert_eq!(normalise_caller(" 358401234567", fi).as_deref(), Some("+358401234567"));
/// assert_eq!(normalise_caller("sip:+358401234567@pbx.example", fi).as_deref(), Some("+358401234567"));
/// assert_eq!(normalise_caller("anonymous", fi), None);
/// ```
pub fn normalise_caller(raw: &str, default_region: Option<Region>) -> Option<String> {
    // Longer than any written-out number: not worth parsing (and bounds the parser's work).
    if raw.len() > 64 {
        return None;
    }
    let try_parse = |s: &str| PhoneNumber::parse(s, default_region).ok();
    let plus_was_decoded = raw
        .strip_prefix(' ')
        .map(str::trim_start)
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    let t = strip_uri(raw.trim());
    if t.is_empty() || t.len() > 40 {
        return None;
    }
    // A leading space stood for '+'; read that way first, as it is the likelier meaning.
    plus_was_decoded
        .and_then(|rest| try_parse(&format!("+{}", rest.trim_end())))
        // As given (national or international); then, for bare digits, as E.164 without '+'.
        .or_else(|| try_parse(t))
        .or_else(|| {
            if t.chars().all(|c| c.is_ascii_digit()) && !t.starts_with('0') {
                try_parse(&format!("+{t}"))
            } else {
                None
            }
        })
        .map(|p| p.e164().to_string())
}

/// `tel:+358…` → `+358…`; `sip:+358…@host;user=phone` → `+358…`; anything else as it is.
fn strip_uri(t: &str) -> &str {
    let lower_prefix = |p: &str| {
        t.get(..p.len())
            .filter(|head| head.eq_ignore_ascii_case(p))
            .map(|_| &t[p.len()..])
    };
    if let Some(rest) = lower_prefix("tel:") {
        return rest.split(';').next().unwrap_or_default().trim();
    }
    if let Some(rest) = lower_prefix("sip:").or_else(|| lower_prefix("sips:")) {
        return rest.split(['@', ';']).next().unwrap_or_default().trim();
    }
    t
}

/// Composes the answer from the caller's armed incidents (in any order): live ones first,
/// then most severe, then newest.
pub fn answer(caller: Option<String>, mut incidents: Vec<ArmedIncident>) -> IvrAnswer {
    // Live incidents before ones already restored (their "fixed" note comes last), then the
    // most severe, then the newest.
    incidents.sort_by(|a, b| {
        b.status
            .is_active()
            .cmp(&a.status.is_active())
            .then_with(|| b.severity.cmp(&a.severity))
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
            "tel:",
            "sip:@",
            " ",
        ] {
            assert_eq!(normalise_caller(raw, fi), None, "{raw}");
        }
    }

    #[test]
    fn more_caller_forms() {
        let fi = Some(Region::parse("FI").unwrap());
        for raw in [
            "+358 40 123 4567",
            " 358 40 123 4567",
            "  358401234567 ",
            "tel:+358401234567",
            "TEL:+358-40-123-4567;phone-context=x",
            "sip:+358401234567@pbx.example.com;user=phone",
            "sip:0401234567@10.0.0.1",
            "(040) 123 4567",
        ] {
            assert_eq!(
                normalise_caller(raw, fi).as_deref(),
                Some("+358401234567"),
                "{raw}"
            );
        }
        // Without a default region only international forms can be read.
        assert_eq!(
            normalise_caller("358401234567", None).as_deref(),
            Some("+358401234567")
        );
        assert_eq!(
            normalise_caller(" 12025550123", None).as_deref(),
            Some("+12025550123")
        );
        assert_eq!(normalise_caller("0401234567", None), None);
    }

    #[test]
    fn live_incidents_come_before_restored_ones() {
        let mut restored = armed(3, Severity::Extreme, "fixed.");
        restored.status = IncidentStatus::Restored;
        let a = answer(None, vec![restored, armed(4, Severity::Minor, "minor.")]);
        assert_eq!(a.announcement.as_deref(), Some("minor. fixed."));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a phone system sends: no panic, and what comes out is E.164 that reads
        /// back as itself.
        #[test]
        fn any_input_is_e164_or_nothing(raw in proptest::prop_oneof![
            ".*",
            "[ +0-9()\\-]{0,24}",
            "(tel:|sip:| |00|\\+)?[0-9]{0,16}(@[a-z.]{0,8})?",
        ]) {
            let fi = Some(Region::parse("FI").unwrap());
            for region in [fi, None] {
                if let Some(e164) = normalise_caller(&raw, region) {
                    proptest::prop_assert!(e164.starts_with('+'));
                    proptest::prop_assert!(e164[1..].chars().all(|c| c.is_ascii_digit()));
                    proptest::prop_assert_eq!(normalise_caller(&e164, region), Some(e164.clone()));
                }
            }
        }
    }
}
