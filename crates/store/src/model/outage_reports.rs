//! Outage reports from customers: what an "OUT" by SMS leaves for the operators when no open
//! incident covers the number, and what `GET /v1/reports` reads back.

use chrono::{DateTime, Duration, Utc};
use outagecast_core::contact::Channel;
use serde::{Deserialize, Serialize};

/// The longest report text kept, in characters (a long message is cut, not refused).
pub const MAX_REPORT_TEXT_CHARS: usize = 320;

/// The most reports one page returns.
pub const MAX_REPORT_PAGE: u32 = 1000;

/// A number reporting again within this long of its last report adds to that report's
/// `repeats` instead of a new row.
pub const REPORT_DEDUPE_WINDOW: Duration = Duration::minutes(30);

/// How long reports are kept, in days (the numbers are personal data).
pub const REPORT_DAYS: i64 = 90;

/// One report as received: from whom, what they wrote, by which channel, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReport<'a> {
    /// The number, E.164.
    pub phone: &'a str,
    /// What they wrote (cut to [`MAX_REPORT_TEXT_CHARS`] when stored).
    pub text: &'a str,
    /// How it came (SMS today).
    pub channel: Channel,
    /// When.
    pub at: DateTime<Utc>,
}

/// One of the reporting number's accounts, where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedAccount {
    /// The utility's account id.
    pub account_id: String,
    /// The service location's longitude (WGS84).
    pub lon: f64,
    /// Its latitude.
    pub lat: f64,
}

/// A stored outage report.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageReport {
    /// Its id.
    pub id: i64,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// When the number last reported it (the first time, or its latest repeat).
    pub last_at: DateTime<Utc>,
    /// The number, E.164.
    pub phone: String,
    /// How it came.
    pub channel: Channel,
    /// The number's accounts when it was received; empty for a number no customer has.
    pub accounts: Vec<ReportedAccount>,
    /// What the first message said (bounded).
    pub text: String,
    /// How many more times the number reported within the window of its last report.
    pub repeats: u64,
}

/// What recording a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOutcome {
    /// The report it made or added to.
    pub id: i64,
    /// True when it added a row; false when it counted a repeat.
    pub new: bool,
    /// The report's repeats after this one.
    pub repeats: u64,
    /// How many of the number's accounts were found.
    pub accounts: usize,
}

/// Which reports to read: the newest first, those active since `since`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    /// Only reports received or repeated at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (clamped to 1..=[`MAX_REPORT_PAGE`]).
    pub limit: u32,
}

/// `text` cut to [`MAX_REPORT_TEXT_CHARS`] characters, control characters (but newlines)
/// dropped and surrounding space trimmed.
pub(crate) fn bounded_text(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(MAX_REPORT_TEXT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_bounded_and_cleaned() {
        assert_eq!(bounded_text("  OUT\u{0} \n"), "OUT");
        assert_eq!(bounded_text("a\nb"), "a\nb");
        let long = "ä".repeat(1000);
        assert_eq!(bounded_text(&long).chars().count(), MAX_REPORT_TEXT_CHARS);
    }
}
