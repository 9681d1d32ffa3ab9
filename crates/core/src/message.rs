//! What customers read and callers hear, in Finnish, Swedish and English.
//!
//! Texts are short on purpose: an SMS should fit in as few segments as possible, and a spoken
//! announcement must be understood on the first hearing. Times are written in the utility's
//! time zone; spoken times are written the way a text-to-speech engine reads them well.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use crate::contact::Language;
use crate::incident::{EventKind, IncidentDraft, IncidentId, IncidentKind};

/// The rendered content of one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText {
    /// Email subject (unused for SMS).
    pub subject: String,
    /// The SMS text, or the plain-text email body.
    pub body: String,
}

/// Writes notices and announcements. The store calls it inside the declaring transaction,
/// once the incident has its id; [`Locale`] is the built-in wording, and operator-edited
/// templates can implement it too.
pub trait Wording: Sync {
    /// The notice for `event` in `lang`.
    fn notice(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        event: EventKind,
        lang: Language,
    ) -> MessageText;
    /// What a caller hears, in `lang`.
    fn announcement(&self, draft: &IncidentDraft, lang: Language) -> String;
    /// The notice to a contact that was told and whose premises a smaller area no longer
    /// holds, in `lang`. Built in for every wording: operators' templates are per event, and
    /// leaving an area is no event.
    fn no_longer_affected(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        lang: Language,
    ) -> MessageText {
        no_longer_affected_text(id, draft, lang)
    }
    /// What a voice call says for `event` in `lang`: written for the ear from the same words
    /// as the IVR announcement ([`Wording::announcement`]), so a customer who is called and one
    /// who calls in hear the same thing; no links, the reference spelled out.
    fn spoken(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        event: EventKind,
        lang: Language,
    ) -> MessageText {
        spoken_notice(id, draft, event, lang, &self.announcement(draft, lang))
    }
    /// [`Wording::no_longer_affected`] for a voice call.
    fn spoken_no_longer_affected(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        lang: Language,
    ) -> MessageText {
        spoken_no_longer_affected(id, draft, lang)
    }
}

impl Wording for Locale {
    fn notice(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        event: EventKind,
        lang: Language,
    ) -> MessageText {
        notice_text(id, draft, event, lang, *self)
    }
    fn announcement(&self, draft: &IncidentDraft, lang: Language) -> String {
        announcement(draft, lang, *self)
    }
}

/// Where messages are being written: the utility's time zone and the moment of writing, so the
/// ETR can say "15:00" for today and "26.11. 15:00" for another day.
#[derive(Debug, Clone, Copy)]
pub struct Locale {
    /// The utility's time zone.
    pub zone: Tz,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What the outage of `kind` is called in `lang` ("water outage", "vesikatko").
pub fn kind_noun(kind: IncidentKind, lang: Language) -> &'static str {
    use IncidentKind::*;
    use Language::*;
    match (kind, lang) {
        (Water, Fi) => "vesikatko",
        (Water, Sv) => "vattenavbrott",
        (Water, En) => "water outage",
        (Power, Fi) => "sähkökatko",
        (Power, Sv) => "strömavbrott",
        (Power, En) => "power outage",
        (Gas, Fi) => "kaasukatko",
        (Gas, Sv) => "gasavbrott",
        (Gas, En) => "gas outage",
        (Heating, Fi) => "kaukolämpökatko",
        (Heating, Sv) => "fjärrvärmeavbrott",
        (Heating, En) => "district heating outage",
        (Telecom, Fi) => "verkkokatko",
        (Telecom, Sv) => "nätavbrott",
        (Telecom, En) => "network outage",
        (Sewer, Fi) => "viemärikatko",
        (Sewer, Sv) => "avloppsavbrott",
        (Sewer, En) => "sewer outage",
    }
}

pub(crate) fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "15:00" today, "26.11. 15:00" another day (fi/sv write "klo"/"kl." before the time).
pub fn written_time(t: DateTime<Utc>, lang: Language, locale: Locale) -> String {
    let local = t.with_timezone(&locale.zone);
    let today = locale.now.with_timezone(&locale.zone).date_naive();
    let clock = match lang {
        Language::Fi => format!("klo {:02}.{:02}", local.hour(), local.minute()),
        Language::Sv => format!("kl. {:02}.{:02}", local.hour(), local.minute()),
        Language::En => format!("{:02}:{:02}", local.hour(), local.minute()),
    };
    if local.date_naive() == today {
        clock
    } else {
        format!("{}.{}. {clock}", local.day(), local.month())
    }
}

/// A time as a speech engine should read it: "3 PM", "kello 15.30", "klockan 15".
fn spoken_time(t: DateTime<Utc>, lang: Language, locale: Locale) -> String {
    let local = t.with_timezone(&locale.zone);
    let (h, m) = (local.hour(), local.minute());
    let today = locale.now.with_timezone(&locale.zone).date_naive();
    let tomorrow = today.succ_opt();
    let day = if local.date_naive() == today {
        ""
    } else if Some(local.date_naive()) == tomorrow {
        match lang {
            Language::Fi => "huomenna ",
            Language::Sv => "i morgon ",
            Language::En => "tomorrow ",
        }
    } else {
        ""
    };
    let clock = match lang {
        Language::Fi | Language::Sv => {
            let word = if lang == Language::Fi {
                "kello"
            } else {
                "klockan"
            };
            if m == 0 {
                format!("{word} {h}")
            } else {
                format!("{word} {h}.{m:02}")
            }
        }
        Language::En => {
            let (h12, half) = match h {
                0 => (12, "AM"),
                1..=11 => (h, "AM"),
                12 => (12, "PM"),
                _ => (h - 12, "PM"),
            };
            if m == 0 {
                format!("{h12} {half}")
            } else {
                format!("{h12}:{m:02} {half}")
            }
        }
    };
    if day.is_empty() && local.date_naive() != today {
        // Further away than tomorrow: say the date too.
        match lang {
            // Month names, not numbers: a speech engine reads "1.1." or "den 1 1" badly.
            Language::Fi => format!("{}. {} {clock}", local.day(), month_fi(local.month())),
            Language::Sv => format!("den {} {} {clock}", local.day(), month_sv(local.month())),
            Language::En => format!("{} on {} {}", clock, local.day(), month_en(local.month())),
        }
    } else {
        format!("{day}{clock}")
    }
}

/// "28. marraskuuta": the partitive, as a date is read aloud.
fn month_fi(m: u32) -> &'static str {
    const MONTHS: [&str; 12] = [
        "tammikuuta",
        "helmikuuta",
        "maaliskuuta",
        "huhtikuuta",
        "toukokuuta",
        "kesäkuuta",
        "heinäkuuta",
        "elokuuta",
        "syyskuuta",
        "lokakuuta",
        "marraskuuta",
        "joulukuuta",
    ];
    MONTHS
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("")
}

fn month_sv(m: u32) -> &'static str {
    const MONTHS: [&str; 12] = [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ];
    MONTHS
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("")
}

fn month_en(m: u32) -> &'static str {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    MONTHS
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("")
}

/// The text of a notice for `event` of incident `id`, in `lang`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_core::contact::Language;
/// use outagecast_core::incident::*;
/// use outagecast_core::message::{notice_text, Locale};
/// let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
/// let draft = IncidentDraft::new(DraftParts {
///     kind: IncidentKind::Water, severity: Severity::Moderate,
///     cause: Cause::parse("burst water main on Kaivokatu").unwrap(),
///     etr: Some(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()),
///     reference: None,
///     area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 300.0).unwrap()),
///     expires_at: None,
/// }, now).unwrap();
/// let locale = Locale { zone: chrono_tz::Europe::Helsinki, now };
/// let text = notice_text(IncidentId(7), &draft, EventKind::Declared, Language::En, locale);
/// assert_eq!(text.body, "Water outage: burst water main on Kaivokatu. Expected back by 15:00. We will text you when it is fixed. Ref INC-7");
/// ```
pub fn notice_text(
    id: IncidentId,
    draft: &IncidentDraft,
    event: EventKind,
    lang: Language,
    locale: Locale,
) -> MessageText {
    let noun = kind_noun(draft.kind(), lang);
    let cause = draft.cause().as_str();
    let reference = id.label();
    let etr = draft.etr().map(|t| written_time(t, lang, locale));
    use EventKind::*;
    use Language::*;
    let (subject, body) = match (event, lang) {
        (Declared, Fi) => (
            format!("{}: {cause}", capitalised(noun)),
            format!(
                "{}: {cause}.{} Ilmoitamme, kun vika on korjattu. Viite {reference}",
                capitalised(noun),
                etr.map(|t| format!(" Arvioitu korjausaika {t}."))
                    .unwrap_or_default()
            ),
        ),
        (Declared, Sv) => (
            format!("{}: {cause}", capitalised(noun)),
            format!(
                "{}: {cause}.{} Vi meddelar när felet är åtgärdat. Ref {reference}",
                capitalised(noun),
                etr.map(|t| format!(" Beräknas åtgärdat {t}."))
                    .unwrap_or_default()
            ),
        ),
        (Declared, En) => (
            format!("{}: {cause}", capitalised(noun)),
            format!(
                "{}: {cause}.{} We will text you when it is fixed. Ref {reference}",
                capitalised(noun),
                etr.map(|t| format!(" Expected back by {t}."))
                    .unwrap_or_default()
            ),
        ),
        (Updated, Fi) => (
            format!("Päivitys: {noun}"),
            format!(
                "Päivitys, {noun}: {cause}.{} Viite {reference}",
                etr.map(|t| format!(" Uusi arvioitu korjausaika {t}."))
                    .unwrap_or_default()
            ),
        ),
        (Updated, Sv) => (
            format!("Uppdatering: {noun}"),
            format!(
                "Uppdatering, {noun}: {cause}.{} Ref {reference}",
                etr.map(|t| format!(" Nu beräknat åtgärdat {t}."))
                    .unwrap_or_default()
            ),
        ),
        (Updated, En) => (
            format!("Update: {noun}"),
            format!(
                "Update on the {noun}: {cause}.{} Ref {reference}",
                etr.map(|t| format!(" Now expected back by {t}."))
                    .unwrap_or_default()
            ),
        ),
        (Restored, Fi) => (
            format!("Korjattu: {noun}"),
            format!(
                "{} on ohi: vika on korjattu. Kiitos kärsivällisyydestä. Viite {reference}",
                capitalised(noun)
            ),
        ),
        (Restored, Sv) => (
            format!("Åtgärdat: {noun}"),
            format!(
                "{} är över: felet är åtgärdat. Tack för ditt tålamod. Ref {reference}",
                capitalised(noun)
            ),
        ),
        (Restored, En) => (
            format!("Fixed: {noun}"),
            format!(
                "The {noun} is over: it has been fixed. Thank you for your patience. Ref {reference}"
            ),
        ),
        (Cancelled, Fi) => (
            format!("Peruttu: {noun}"),
            format!("Aiempi ilmoitus ({noun}) on peruttu. Pahoittelemme. Viite {reference}"),
        ),
        (Cancelled, Sv) => (
            format!("Återkallat: {noun}"),
            format!(
                "Det tidigare meddelandet ({noun}) är återkallat. Vi ber om ursäkt. Ref {reference}"
            ),
        ),
        (Cancelled, En) => (
            format!("Cancelled: {noun}"),
            format!(
                "Please ignore our earlier message about a {noun}: it was cancelled. Sorry for the trouble. Ref {reference}"
            ),
        ),
    };
    MessageText { subject, body }
}

/// The notice to a told contact that an update's smaller area no longer holds: the outage
/// does not reach them after all, and nothing more will come about it.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_core::contact::Language;
/// use outagecast_core::incident::*;
/// use outagecast_core::message::no_longer_affected_text;
/// let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
/// let draft = IncidentDraft::new(DraftParts {
///     kind: IncidentKind::Water, severity: Severity::Moderate,
///     cause: Cause::parse("burst water main on Kaivokatu").unwrap(),
///     etr: None, reference: None,
///     area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 300.0).unwrap()),
///     expires_at: None,
/// }, now).unwrap();
/// let text = no_longer_affected_text(IncidentId(7), &draft, Language::En);
/// assert_eq!(text.body, "Good news: the water outage (burst water main on Kaivokatu) no longer affects your address. No further messages about it. Ref INC-7");
/// ```
pub fn no_longer_affected_text(
    id: IncidentId,
    draft: &IncidentDraft,
    lang: Language,
) -> MessageText {
    let noun = kind_noun(draft.kind(), lang);
    let cause = draft.cause().as_str();
    let reference = id.label();
    let (subject, body) = match lang {
        Language::Fi => (
            format!("Ei enää koske sinua: {noun}"),
            format!(
                "Hyviä uutisia: {noun} ({cause}) ei enää koske osoitettasi. Emme lähetä siitä enempää viestejä. Viite {reference}"
            ),
        ),
        Language::Sv => (
            format!("Berör dig inte längre: {noun}"),
            format!(
                "Goda nyheter: {noun} ({cause}) berör inte längre din adress. Inga fler meddelanden om det. Ref {reference}"
            ),
        ),
        Language::En => (
            format!("No longer affected: {noun}"),
            format!(
                "Good news: the {noun} ({cause}) no longer affects your address. No further messages about it. Ref {reference}"
            ),
        ),
    };
    MessageText { subject, body }
}

/// What a caller from the affected area hears before the menu.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_core::contact::Language;
/// use outagecast_core::incident::*;
/// use outagecast_core::message::{announcement, Locale};
/// let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
/// let draft = IncidentDraft::new(DraftParts {
///     kind: IncidentKind::Water, severity: Severity::Moderate,
///     cause: Cause::parse("burst water main on Kaivokatu").unwrap(),
///     etr: Some(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()),
///     reference: None,
///     area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 300.0).unwrap()),
///     expires_at: None,
/// }, now).unwrap();
/// let locale = Locale { zone: chrono_tz::Europe::Helsinki, now };
/// assert_eq!(
///     announcement(&draft, Language::En, locale),
///     "We know about the water outage in your area: burst water main on Kaivokatu. We expect it to be fixed by 3 PM."
/// );
/// ```
pub fn announcement(draft: &IncidentDraft, lang: Language, locale: Locale) -> String {
    let noun = kind_noun(draft.kind(), lang);
    let cause = draft.cause().as_str();
    let etr = draft.etr().map(|t| spoken_time(t, lang, locale));
    match lang {
        Language::Fi => format!(
            "Tiedämme alueellanne olevan {noun}n: {cause}.{}",
            etr.map(|t| format!(" Arvioimme vian korjautuvan {t} mennessä."))
                .unwrap_or_else(|| " Korjaamme vikaa parhaillaan.".into())
        ),
        Language::Sv => format!(
            "Vi känner till {noun}et i ditt område: {cause}.{}",
            etr.map(|t| format!(" Vi räknar med att felet är åtgärdat {t}."))
                .unwrap_or_else(|| " Vi arbetar med att åtgärda felet.".into())
        ),
        Language::En => format!(
            "We know about the {noun} in your area: {cause}.{}",
            etr.map(|t| format!(" We expect it to be fixed by {t}."))
                .unwrap_or_else(|| " We are working to fix it.".into())
        ),
    }
}

/// The incident's reference as a text-to-speech engine should say it: letter by letter, then
/// the number ("I N C, 7"), after the word for reference in `lang`.
pub fn spoken_reference(id: IncidentId, lang: Language) -> String {
    let label = id.label();
    let (letters, number) = label.split_once('-').unwrap_or(("", label.as_str()));
    let spelled: Vec<String> = letters.chars().map(String::from).collect();
    let word = match lang {
        Language::Fi => "Viite",
        Language::Sv => "Referens",
        Language::En => "Reference",
    };
    if spelled.is_empty() {
        format!("{word} {number}.")
    } else {
        format!("{word} {}, {number}.", spelled.join(" "))
    }
}

/// A voice call's text for `event`: `announcement` (the IVR's words for the incident) framed
/// for the event, then the reference spelled out. Restored and cancelled say it is over.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_core::contact::Language;
/// use outagecast_core::incident::*;
/// use outagecast_core::message::{announcement, spoken_notice, Locale};
/// let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
/// let draft = IncidentDraft::new(DraftParts {
///     kind: IncidentKind::Water, severity: Severity::Moderate,
///     cause: Cause::parse("burst water main on Kaivokatu").unwrap(),
///     etr: Some(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()),
///     reference: None,
///     area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 300.0).unwrap()),
///     expires_at: None,
/// }, now).unwrap();
/// let locale = Locale { zone: chrono_tz::Europe::Helsinki, now };
/// let said = announcement(&draft, Language::En, locale);
/// let text = spoken_notice(IncidentId(7), &draft, EventKind::Declared, Language::En, &said);
/// assert_eq!(text.body, "We know about the water outage in your area: burst water main on Kaivokatu. We expect it to be fixed by 3 PM. Reference I N C, 7.");
/// ```
pub fn spoken_notice(
    id: IncidentId,
    draft: &IncidentDraft,
    event: EventKind,
    lang: Language,
    announcement: &str,
) -> MessageText {
    let noun = kind_noun(draft.kind(), lang);
    let reference = spoken_reference(id, lang);
    use EventKind::*;
    use Language::*;
    let said = match (event, lang) {
        (Declared, _) => announcement.to_string(),
        (Updated, Fi) => format!("Päivitys. {announcement}"),
        (Updated, Sv) => format!("En uppdatering. {announcement}"),
        (Updated, En) => format!("An update. {announcement}"),
        (Restored, _) => restored_announcement(draft.kind(), lang),
        (Cancelled, Fi) => {
            format!("Aiempi ilmoituksemme ({noun}) on peruttu. Pahoittelemme häiriötä.")
        }
        (Cancelled, Sv) => {
            format!("Vårt tidigare meddelande ({noun}et) är återkallat. Vi ber om ursäkt.")
        }
        (Cancelled, En) => {
            format!(
                "Please ignore our earlier call about a {noun}: it was cancelled. Sorry for the trouble."
            )
        }
    };
    MessageText {
        subject: capitalised(noun),
        body: format!("{said} {reference}"),
    }
}

/// [`no_longer_affected_text`] for a voice call.
pub fn spoken_no_longer_affected(
    id: IncidentId,
    draft: &IncidentDraft,
    lang: Language,
) -> MessageText {
    let noun = kind_noun(draft.kind(), lang);
    let said = match lang {
        Language::Fi => format!("Hyviä uutisia: {noun} ei enää koske osoitettanne."),
        Language::Sv => format!("Goda nyheter: {noun}et berör inte längre din adress."),
        Language::En => format!("Good news: the {noun} no longer affects your address."),
    };
    MessageText {
        subject: capitalised(noun),
        body: format!("{said} {}", spoken_reference(id, lang)),
    }
}

/// What a caller from the area hears for a while after the incident was restored, when the
/// IVR is set to keep announcing restorations (water can take a while to run clear; a caller
/// who still has trouble should know the fault itself is fixed before reaching the menu).
///
/// ```
/// use outagecast_core::contact::Language;
/// use outagecast_core::incident::IncidentKind;
/// use outagecast_core::message::restored_announcement;
/// assert_eq!(
///     restored_announcement(IncidentKind::Water, Language::En),
///     "The water outage in your area has been fixed. Thank you for your patience."
/// );
/// ```
pub fn restored_announcement(kind: IncidentKind, lang: Language) -> String {
    let noun = kind_noun(kind, lang);
    match lang {
        Language::Fi => {
            format!("Alueellanne ollut {noun} on korjattu. Kiitos kärsivällisyydestänne.")
        }
        Language::Sv => format!(
            "{} i ditt område är åtgärdat. Tack för ditt tålamod.",
            capitalised(&format!("{noun}et"))
        ),
        Language::En => {
            format!("The {noun} in your area has been fixed. Thank you for your patience.")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn locale() -> Locale {
        Locale {
            zone: chrono_tz::Europe::Helsinki,
            now: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        }
    }

    #[test]
    fn times_are_local_and_dated_when_not_today() {
        let l = locale();
        let later_today = Utc.with_ymd_and_hms(2026, 11, 25, 13, 30, 0).unwrap();
        assert_eq!(written_time(later_today, Language::Fi, l), "klo 15.30");
        assert_eq!(spoken_time(later_today, Language::En, l), "3:30 PM");
        let tomorrow = Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap();
        assert_eq!(written_time(tomorrow, Language::En, l), "26.11. 08:00");
        assert_eq!(spoken_time(tomorrow, Language::Fi, l), "huomenna kello 8");
        let later = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        assert_eq!(spoken_time(later, Language::En, l), "12 PM on 28 November");
        assert_eq!(
            spoken_time(later, Language::Fi, l),
            "28. marraskuuta kello 12"
        );
        assert_eq!(
            spoken_time(later, Language::Sv, l),
            "den 28 november klockan 12"
        );
    }

    #[test]
    fn every_kind_has_a_noun_in_every_language() {
        for k in IncidentKind::ALL {
            for l in Language::ALL {
                assert!(!kind_noun(*k, l).is_empty());
            }
        }
    }
}
