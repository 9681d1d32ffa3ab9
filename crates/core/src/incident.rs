//! An outage and its life: declared → updated* → restored | cancelled.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::area::Area;
use crate::error::{CoreError, Result};

/// The store's id for an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub i64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl IncidentId {
    /// Parses an id as typed (`12`, or `INC-12` as printed in messages).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let digits = t
            .strip_prefix("INC-")
            .or_else(|| t.strip_prefix("inc-"))
            .unwrap_or(t);
        digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(IncidentId)
            .ok_or_else(|| {
                CoreError::invalid(
                    "incident id",
                    format!("{t:?} is not an incident id; use the number printed by `incident declare` or `incident list`"),
                )
            })
    }

    /// The reference printed in messages: `INC-12`.
    pub fn label(self) -> String {
        format!("INC-{}", self.0)
    }
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used on the command line, in JSON and in the store.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// The inverse of `as_str`; the error lists the accepted words.
            pub fn parse(text: &str) -> Result<Self> {
                let t = text.trim().to_ascii_lowercase();
                match t.as_str() {
                    $($word => Ok($name::$variant),)+
                    _ => Err(CoreError::invalid(
                        $field,
                        format!(
                            "{text:?} is not one of {}",
                            [$($word),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// What kind of service is out.
    IncidentKind, "--kind" {
        /// Drinking water.
        Water = "water",
        /// Electricity.
        Power = "power",
        /// Gas.
        Gas = "gas",
        /// District heating.
        Heating = "heating",
        /// Telephone and internet.
        Telecom = "telecom",
        /// Sewerage.
        Sewer = "sewer",
    }
);

word_enum!(
    /// How bad it is, in CAP 1.2's words. Severe and extreme bypass quiet hours.
    Severity, "--severity" {
        /// Minor.
        Minor = "minor",
        /// Moderate (the default).
        Moderate = "moderate",
        /// Severe.
        Severe = "severe",
        /// Extreme.
        Extreme = "extreme",
    }
);

word_enum!(
    /// Where an incident is in its life.
    IncidentStatus, "status" {
        /// Declared, nothing changed since.
        Declared = "declared",
        /// Declared and updated at least once.
        Updated = "updated",
        /// Service is back (final).
        Restored = "restored",
        /// Withdrawn, e.g. declared in error (final).
        Cancelled = "cancelled",
    }
);

word_enum!(
    /// One transition in an incident's life; notices are planned per event.
    EventKind, "event" {
        /// The incident was declared.
        Declared = "declared",
        /// Its ETR, message or area changed.
        Updated = "updated",
        /// Service is back.
        Restored = "restored",
        /// It was withdrawn.
        Cancelled = "cancelled",
    }
);

impl IncidentStatus {
    /// Whether callers should still hear about it.
    pub fn is_active(self) -> bool {
        matches!(self, IncidentStatus::Declared | IncidentStatus::Updated)
    }

    /// The status after `event`, or why the event is not allowed now.
    ///
    /// ```
    /// use outagecast_core::incident::{EventKind, IncidentStatus};
    /// let s = IncidentStatus::Declared.after(EventKind::Updated).unwrap();
    /// let s = s.after(EventKind::Restored).unwrap();
    /// assert_eq!(s, IncidentStatus::Restored);
    /// assert!(s.after(EventKind::Cancelled).is_err());
    /// ```
    pub fn after(self, event: EventKind) -> Result<IncidentStatus> {
        let action = match event {
            EventKind::Declared => "declared again",
            EventKind::Updated => "updated",
            EventKind::Restored => "restored",
            EventKind::Cancelled => "cancelled",
        };
        match (self.is_active(), event) {
            (true, EventKind::Updated) => Ok(IncidentStatus::Updated),
            (true, EventKind::Restored) => Ok(IncidentStatus::Restored),
            (true, EventKind::Cancelled) => Ok(IncidentStatus::Cancelled),
            (true, EventKind::Declared) => Err(CoreError::Transition {
                from: self,
                action,
                allowed: "update, restore, cancel",
            }),
            (false, _) => Err(CoreError::Transition {
                from: self,
                action,
                allowed: "nothing: it is closed; declare a new incident",
            }),
        }
    }
}

impl Severity {
    /// Severe and extreme incidents are sent even in quiet hours.
    pub fn bypasses_quiet_hours(self) -> bool {
        matches!(self, Severity::Severe | Severity::Extreme)
    }
}

/// The operator's free-text cause ("burst water main"): 1–200 characters, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cause(String);

impl Cause {
    /// Trims and checks the text.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.is_empty() {
            return Err(CoreError::invalid(
                "--cause",
                "is empty; say what happened, e.g. \"burst water main\"",
            ));
        }
        if t.chars().count() > 200 {
            return Err(CoreError::invalid(
                "--cause",
                "is longer than 200 characters; keep it short, it goes into every SMS",
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "--cause",
                "contains a line break or control character; use one line",
            ));
        }
        Ok(Cause(t.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Cause {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        Cause::parse(&s)
    }
}

impl From<Cause> for String {
    fn from(c: Cause) -> Self {
        c.0
    }
}

/// What an operator declares. Built only by [`IncidentDraft::new`], which checks the times
/// against `now` (passed in: the core reads no clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDraft {
    kind: IncidentKind,
    severity: Severity,
    cause: Cause,
    etr: Option<DateTime<Utc>>,
    reference: Option<String>,
    area: Area,
    expires_at: Option<DateTime<Utc>>,
}

/// The fields of a declaration; a struct so call sites name each one.
#[derive(Debug, Clone)]
pub struct DraftParts {
    /// Service kind.
    pub kind: IncidentKind,
    /// CAP severity.
    pub severity: Severity,
    /// What happened.
    pub cause: Cause,
    /// Estimated time of restoration.
    pub etr: Option<DateTime<Utc>>,
    /// The operator's own id for it.
    pub reference: Option<String>,
    /// Where.
    pub area: Area,
    /// When callers stop hearing about it if nobody restores it.
    pub expires_at: Option<DateTime<Utc>>,
}

impl IncidentDraft {
    /// Checks that the ETR and expiry lie in the future and the reference is sane.
    pub fn new(parts: DraftParts, now: DateTime<Utc>) -> Result<Self> {
        if let Some(etr) = parts.etr {
            check_future("--etr", etr, now)?;
        }
        if let Some(exp) = parts.expires_at {
            check_future("--expires", exp, now)?;
        }
        let reference = match parts.reference.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(r) if r.chars().count() > 64 || r.chars().any(char::is_control) => {
                return Err(CoreError::invalid(
                    "--reference",
                    "must be one line of at most 64 characters",
                ));
            }
            Some(r) => Some(r.to_string()),
        };
        Ok(IncidentDraft {
            kind: parts.kind,
            severity: parts.severity,
            cause: parts.cause,
            etr: parts.etr,
            reference,
            area: parts.area,
            expires_at: parts.expires_at,
        })
    }

    /// Service kind.
    pub fn kind(&self) -> IncidentKind {
        self.kind
    }
    /// Severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }
    /// Cause.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }
    /// Estimated restoration.
    pub fn etr(&self) -> Option<DateTime<Utc>> {
        self.etr
    }
    /// The operator's reference.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }
    /// The area.
    pub fn area(&self) -> &Area {
        &self.area
    }
    /// Expiry.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }
}

fn check_future(field: &str, t: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if t <= now {
        return Err(CoreError::invalid(
            field,
            format!(
                "{} is in the past (now is {}); give a future time such as {}",
                t.to_rfc3339(),
                now.to_rfc3339(),
                (now + chrono::Duration::hours(3)).format("%Y-%m-%dT%H:%M:00Z")
            ),
        ));
    }
    Ok(())
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Store id.
    pub id: IncidentId,
    /// What was declared, as last updated.
    pub draft: IncidentDraft,
    /// Current status.
    pub status: IncidentStatus,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Incident {
    /// Whether callers should hear about it at `now`: active and not expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.status.is_active() && self.draft.expires_at.is_none_or(|e| e > now)
    }
}

/// The new values an `incident update` brings; `None` leaves a field as it was.
#[derive(Debug, Clone, Default)]
pub struct IncidentChanges {
    /// A new ETR.
    pub etr: Option<DateTime<Utc>>,
    /// A new cause text.
    pub cause: Option<Cause>,
    /// A new severity.
    pub severity: Option<Severity>,
    /// A new area. Customers it adds are told as if newly declared; nobody already told hears
    /// about the change of shape.
    pub area: Option<Area>,
}

impl IncidentDraft {
    /// The draft with `changes` applied. Only what changes is checked: an ETR that has passed
    /// stays as it was when the operator only corrects the cause.
    pub fn with_changes(&self, changes: &IncidentChanges, now: DateTime<Utc>) -> Result<Self> {
        if changes.etr.is_none()
            && changes.cause.is_none()
            && changes.severity.is_none()
            && changes.area.is_none()
        {
            return Err(CoreError::invalid(
                "update",
                "changes nothing; give --etr, --cause, --severity or a new area",
            ));
        }
        if let Some(etr) = changes.etr {
            check_future("--etr", etr, now)?;
        }
        let mut next = self.clone();
        if let Some(etr) = changes.etr {
            next.etr = Some(etr);
        }
        if let Some(cause) = &changes.cause {
            next.cause = cause.clone();
        }
        if let Some(severity) = changes.severity {
            next.severity = severity;
        }
        if let Some(area) = &changes.area {
            next.area = area.clone();
        }
        Ok(next)
    }

    /// The draft with the ETR and expiry read back from the store. They were checked against
    /// the clock when written and may have passed since, so they are not checked again.
    #[must_use]
    pub fn with_stored_times(
        mut self,
        etr: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        self.etr = etr;
        self.expires_at = expires_at;
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::area::{Circle, LonLat};

    fn parts() -> DraftParts {
        DraftParts {
            kind: IncidentKind::Water,
            severity: Severity::Moderate,
            cause: Cause::parse("burst water main").unwrap(),
            etr: None,
            reference: Some("  WO-1  ".into()),
            area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 200.0).unwrap()),
            expires_at: None,
        }
    }

    #[test]
    fn past_etr_is_refused_with_an_example() {
        let now = Utc::now();
        let mut p = parts();
        p.etr = Some(now - chrono::Duration::minutes(5));
        let err = IncidentDraft::new(p, now).unwrap_err().to_string();
        assert!(err.starts_with("--etr"), "{err}");
        assert!(err.contains("in the past"), "{err}");
    }

    #[test]
    fn reference_is_trimmed_and_kind_words_are_listed() {
        let d = IncidentDraft::new(parts(), Utc::now()).unwrap();
        assert_eq!(d.reference(), Some("WO-1"));
        let err = IncidentKind::parse("electric").unwrap_err().to_string();
        assert!(err.contains("water, power"), "{err}");
        assert_eq!(Severity::parse("SEVERE").unwrap(), Severity::Severe);
    }

    #[test]
    fn closed_incidents_accept_no_events() {
        for closed in [IncidentStatus::Restored, IncidentStatus::Cancelled] {
            for e in EventKind::ALL {
                assert!(closed.after(*e).is_err());
            }
        }
        assert!(IncidentStatus::Declared.after(EventKind::Declared).is_err());
    }

    #[test]
    fn ids_parse_with_or_without_prefix() {
        assert_eq!(IncidentId::parse("INC-7").unwrap(), IncidentId(7));
        assert_eq!(IncidentId::parse("7").unwrap(), IncidentId(7));
        assert!(IncidentId::parse("0").is_err());
        assert!(IncidentId::parse("x").is_err());
    }

    #[test]
    fn an_update_must_change_something() {
        let d = IncidentDraft::new(parts(), Utc::now()).unwrap();
        assert!(
            d.with_changes(&IncidentChanges::default(), Utc::now())
                .is_err()
        );
        let later = Utc::now() + chrono::Duration::hours(2);
        let changed = d
            .with_changes(
                &IncidentChanges {
                    etr: Some(later),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        assert_eq!(changed.etr(), Some(later));
    }
}
