//! Times as an operator writes them (`--etr 15:00`, `+3h`) and as people read them
//! (`2026-12-03 15:00 EET`), in the utility's time zone. Machines keep RFC 3339 in UTC.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{CoreError, Result};
use crate::message::Locale;

/// The longest relative time accepted (`+366d`): anything longer is a typo.
const LONGEST_AHEAD_DAYS: i64 = 366;

/// Parses a time given to `field` (`--etr`, `"etr"`), in `locale`'s zone at `locale.now`:
///
/// - RFC 3339 with an offset: `2026-11-25T15:00:00+02:00`;
/// - a local date and time: `2026-11-25 15:00` (or `T`, with or without seconds);
/// - a local time of day: `15:00`, the next one (today while it is still ahead, else tomorrow);
/// - `today 15:00`, `tomorrow 08:00`;
/// - a time from now: `+3h`, `+90m`, `+1h30m`, `+2d`.
///
/// A local time that the clocks skip (the spring-forward hour) is refused; one they pass twice
/// (autumn) is the first.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use outagecast_core::{message::Locale, when::parse_time};
/// let locale = Locale { zone: chrono_tz::Europe::Helsinki, now: Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap() };
/// // 15:00 in Helsinki (UTC+2 in December) is 13:00 UTC.
/// assert_eq!(parse_time("15:00", "--etr", &locale).unwrap(), Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap());
/// assert_eq!(parse_time("+3h", "--etr", &locale).unwrap(), Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap());
/// ```
pub fn parse_time(text: &str, field: &str, locale: &Locale) -> Result<DateTime<Utc>> {
    let t = text.trim();
    let bad = |why: &str| {
        CoreError::invalid(
            field,
            format!(
                "{text:?} {why}; write 15:00, \"tomorrow 08:00\", +3h, 2026-11-25 15:00 (all in {}) or 2026-11-25T15:00:00+02:00",
                locale.zone
            ),
        )
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(ahead) = t.strip_prefix('+') {
        let ahead = relative(ahead).ok_or_else(|| bad("is not a time from now"))?;
        return Ok(locale.now + ahead);
    }
    let today = locale.now.with_timezone(&locale.zone).date_naive();
    let lower = t.to_ascii_lowercase();
    let (day, time) = if let Some(rest) = lower.strip_prefix("tomorrow") {
        (Some(today + Duration::days(1)), rest.trim())
    } else if let Some(rest) = lower.strip_prefix("today") {
        (Some(today), rest.trim())
    } else {
        (None, lower.as_str())
    };
    if let Some(time) = time_of_day(time) {
        let day = match day {
            Some(day) => day,
            // The next such time: an ETR of 02:00 said at 23:00 is tomorrow's.
            None if local(locale.zone, today.and_time(time)).is_some_and(|t| t > locale.now) => {
                today
            }
            None => today + Duration::days(1),
        };
        return local(locale.zone, day.and_time(time)).ok_or_else(|| bad(&skipped(locale.zone)));
    }
    if day.is_none() {
        for format in [
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
        ] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
                return local(locale.zone, naive).ok_or_else(|| bad(&skipped(locale.zone)));
            }
        }
        if NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() {
            return Err(bad("has no time of day"));
        }
    }
    Err(bad("is not a time"))
}

fn skipped(zone: Tz) -> String {
    format!("does not exist in {zone} (the clocks skip it)")
}

/// `HH:MM` or `HH.MM` (as Finnish writes it), or `HH:MM:SS`.
fn time_of_day(text: &str) -> Option<NaiveTime> {
    ["%H:%M", "%H.%M", "%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(text, f).ok())
}

/// `3h`, `90m`, `1h30m`, `2d`: positive and at most a year.
fn relative(text: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().ok().filter(|n| *n <= 100_000)?;
        digits.clear();
        total += match c {
            'd' => Duration::days(n),
            'h' => Duration::hours(n),
            'm' => Duration::minutes(n),
            _ => return None,
        };
    }
    (digits.is_empty() && total > Duration::zero() && total <= Duration::days(LONGEST_AHEAD_DAYS))
        .then_some(total)
}

/// The UTC instant of a local wall-clock time: the first of two in the autumn hour, none in the
/// spring one.
fn local(zone: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// A time as a person reads it in a table or a log: local, to the minute, with the zone's
/// abbreviation (`2026-12-03 15:00 EET`).
pub fn local_label(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn helsinki(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Helsinki
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(now: DateTime<Utc>) -> Locale {
        Locale {
            zone: chrono_tz::Europe::Helsinki,
            now,
        }
    }

    #[test]
    fn every_form_an_operator_writes() {
        let l = at(helsinki(2026, 12, 3, 12, 0));
        let p = |t: &str| parse_time(t, "--etr", &l).unwrap();
        assert_eq!(p("15:00"), helsinki(2026, 12, 3, 15, 0));
        assert_eq!(p("15.30"), helsinki(2026, 12, 3, 15, 30));
        // Already past today: tomorrow's.
        assert_eq!(p("08:00"), helsinki(2026, 12, 4, 8, 0));
        assert_eq!(p("tomorrow 08:00"), helsinki(2026, 12, 4, 8, 0));
        assert_eq!(p("Tomorrow 8:00"), helsinki(2026, 12, 4, 8, 0));
        assert_eq!(p("today 18:00"), helsinki(2026, 12, 3, 18, 0));
        assert_eq!(p("+3h"), helsinki(2026, 12, 3, 15, 0));
        assert_eq!(p("+1h30m"), helsinki(2026, 12, 3, 13, 30));
        assert_eq!(p("+90m"), helsinki(2026, 12, 3, 13, 30));
        assert_eq!(p("+2d"), helsinki(2026, 12, 5, 12, 0));
        assert_eq!(p("2026-12-24 09:15"), helsinki(2026, 12, 24, 9, 15));
        assert_eq!(p("2026-12-24T09:15:00"), helsinki(2026, 12, 24, 9, 15));
        assert_eq!(
            p("2026-12-24T09:15:00+02:00"),
            helsinki(2026, 12, 24, 9, 15)
        );
        assert_eq!(p("2026-12-24T07:15:00Z"), helsinki(2026, 12, 24, 9, 15));
    }

    #[test]
    fn the_clock_changes() {
        // 2027-03-28 03:00 → 04:00 in Helsinki: 03:30 never happens.
        let l = at(helsinki(2027, 3, 27, 12, 0));
        let e = parse_time("tomorrow 03:30", "--etr", &l)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--etr") && e.contains("skip"), "{e}");
        // 2026-10-25 04:00 → 03:00: 03:30 happens twice, the first (summer time) is meant.
        let l = at(helsinki(2026, 10, 24, 12, 0));
        assert_eq!(
            parse_time("tomorrow 03:30", "--etr", &l).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()
        );
    }

    #[test]
    fn what_is_not_a_time_names_the_field_and_the_forms() {
        let l = at(helsinki(2026, 12, 3, 12, 0));
        for bad in [
            "soon",
            "25:00",
            "+0h",
            "+3x",
            "+h",
            "+400d",
            "2026-12-24",
            "tomorrow",
            "",
            "+3h5",
        ] {
            let e = parse_time(bad, "--etr", &l).unwrap_err().to_string();
            assert!(e.contains("--etr") && e.contains("+3h"), "{bad}: {e}");
        }
    }

    #[test]
    fn labels_are_local_to_the_minute() {
        let t = Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 59).unwrap();
        assert_eq!(
            local_label(t, chrono_tz::Europe::Helsinki),
            "2026-12-03 15:00 EET"
        );
        assert_eq!(local_label(t, chrono_tz::UTC), "2026-12-03 13:00 UTC");
    }
}
