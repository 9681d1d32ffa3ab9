//! The IVR's call log and what an incident's report makes of it: the calls the notices
//! avoided, or did not.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One caller the phone system asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRecord<'a> {
    /// The caller's number, E.164.
    pub caller: &'a str,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether an announcement was armed for them.
    pub announced: bool,
}

/// One caller of an incident's area who reached the IVR while it was armed for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCaller {
    /// Their first call while armed.
    pub first_call: DateTime<Utc>,
    /// Whether any of those calls got the announcement.
    pub heard: bool,
    /// When the incident's first notice reached one of their accounts (any channel), if it
    /// did before the end of the report.
    pub told_at: Option<DateTime<Utc>>,
}

/// The calls of an incident's area, as its report gives them (the figure a utility shows its
/// regulator: how many of the callers had been told before they called, and how long before).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallsAvoided {
    /// Callers from the area (numbers armed for the incident) who reached the IVR while it was
    /// armed for them.
    pub callers: u64,
    /// Of those, how many heard the announcement.
    pub heard_announcement: u64,
    /// Of those, how many had been told (SMS, email or call to one of their accounts) before
    /// their first call.
    pub told_before_calling: u64,
    /// How long before their first call those were told: the median, in seconds.
    pub median_told_before_seconds: Option<i64>,
    /// Numbers of the area that called in the hour before the declaration (reporting it).
    pub callers_before_declaration: u64,
}

impl CallsAvoided {
    /// The summary of the area's callers; `before` counts the hour before the declaration.
    pub fn of(callers: &[AreaCaller], before: u64) -> Self {
        let mut leads: Vec<i64> = callers
            .iter()
            .filter_map(|c| {
                c.told_at
                    .filter(|t| *t <= c.first_call)
                    .map(|t| (c.first_call - t).num_seconds())
            })
            .collect();
        leads.sort_unstable();
        CallsAvoided {
            callers: callers.len() as u64,
            heard_announcement: callers.iter().filter(|c| c.heard).count() as u64,
            told_before_calling: leads.len() as u64,
            median_told_before_seconds: leads
                .get(leads.len() / 2)
                .copied()
                .filter(|_| !leads.is_empty()),
            callers_before_declaration: before,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn told_before_calling_counts_only_those_told_first() {
        let t = |m: u32| Utc.with_ymd_and_hms(2026, 12, 3, 12, m, 0).unwrap();
        let callers = [
            AreaCaller {
                first_call: t(10),
                heard: true,
                told_at: Some(t(4)),
            },
            AreaCaller {
                first_call: t(10),
                heard: true,
                told_at: Some(t(8)),
            },
            AreaCaller {
                first_call: t(10),
                heard: true,
                told_at: Some(t(9)),
            },
            // Told after calling, and never told.
            AreaCaller {
                first_call: t(5),
                heard: true,
                told_at: Some(t(6)),
            },
            AreaCaller {
                first_call: t(5),
                heard: false,
                told_at: None,
            },
        ];
        let c = CallsAvoided::of(&callers, 2);
        assert_eq!(c.callers, 5);
        assert_eq!(c.heard_announcement, 4);
        assert_eq!(c.told_before_calling, 3);
        assert_eq!(c.median_told_before_seconds, Some(120));
        assert_eq!(c.callers_before_declaration, 2);
        assert_eq!(CallsAvoided::of(&[], 0).median_told_before_seconds, None);
    }
}
