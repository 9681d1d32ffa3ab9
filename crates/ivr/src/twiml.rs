//! The answer to Twilio's voice webhook: TwiML that says the announcement, then hands the call
//! to the utility's main menu.

use std::fmt;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::error::IvrError;
use crate::index::Announcements;

/// Twilio refuses a `<Say>` longer than this many characters.
const MAX_SAY_CHARS: usize = 4000;

/// Where the call goes after the announcement (`OUTAGECAST_IVR_MENU_URL`): an absolute `http`
/// or `https` URL, or a path that Twilio resolves against the webhook's own URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuUrl(String);

impl MenuUrl {
    /// ```
    /// use outagecast_ivr::twiml::MenuUrl;
    /// assert!(MenuUrl::parse("https://ivr.example.com/menu?x=1&y=2").is_ok());
    /// assert!(MenuUrl::parse("/menu").is_ok());
    /// assert!(MenuUrl::parse("ftp://example.com/menu").is_err());
    /// ```
    pub fn parse(text: &str) -> crate::Result<Self> {
        let t = text.trim();
        let bad = |problem: &str| IvrError::Invalid {
            field: "OUTAGECAST_IVR_MENU_URL",
            problem: format!("{t:?} {problem}"),
        };
        let lower = t.to_ascii_lowercase();
        let absolute = ["http://", "https://"]
            .iter()
            .any(|p| lower.starts_with(p) && lower.len() > p.len());
        if !(absolute || t.starts_with('/')) {
            return Err(bad(
                "is not a URL; give the main menu's http(s) URL (https://ivr.example.com/menu) or a path (/menu)",
            ));
        }
        if t.len() > 2000 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "must be one URL of at most 2000 characters without spaces",
            ));
        }
        Ok(MenuUrl(t.to_string()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MenuUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Only characters XML 1.0 allows (escaping cannot make a control character legal), and no
/// line breaks in spoken text; at most `max` characters.
fn speakable(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => c,
            _ => ' ',
        })
        .take(max)
        .collect()
}

/// The TwiML for a call: one `<Say>` per incident in its own language (a caller on two
/// accounts may have two languages), then `<Redirect>` to the menu. Nothing armed: only the
/// `<Redirect>`. Without a menu URL the call ends after the announcement.
///
/// ```
/// use outagecast_ivr::{Announcements, twiml::{voice_response, MenuUrl}};
/// let menu = MenuUrl::parse("https://ivr.example.com/menu?a=1&b=2").unwrap();
/// assert_eq!(
///     voice_response(&Announcements::nothing(), Some(&menu)),
///     r#"<?xml version="1.0" encoding="UTF-8"?><Response><Redirect method="POST">https://ivr.example.com/menu?a=1&amp;b=2</Redirect></Response>"#
/// );
/// ```
pub fn voice_response(lookup: &Announcements<'_>, menu: Option<&MenuUrl>) -> String {
    match write_response(lookup, menu) {
        Ok(xml) => xml,
        // Writing into memory does not fail; should it ever, the call still goes on.
        Err(_) => r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#.to_string(),
    }
}

fn write_response(lookup: &Announcements<'_>, menu: Option<&MenuUrl>) -> std::io::Result<String> {
    let mut w = Writer::new(Vec::with_capacity(512));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Start(BytesStart::new("Response")))?;
    for item in lookup.items() {
        let mut say = BytesStart::new("Say");
        say.push_attribute(("language", item.language.speech_tag()));
        w.write_event(Event::Start(say))?;
        w.write_event(Event::Text(BytesText::new(&speakable(
            item.announcement,
            MAX_SAY_CHARS,
        ))))?;
        w.write_event(Event::End(BytesEnd::new("Say")))?;
    }
    if let Some(menu) = menu {
        let mut redirect = BytesStart::new("Redirect");
        redirect.push_attribute(("method", "POST"));
        w.write_event(Event::Start(redirect))?;
        w.write_event(Event::Text(BytesText::new(menu.as_str())))?;
        w.write_event(Event::End(BytesEnd::new("Redirect")))?;
    }
    w.write_event(Event::End(BytesEnd::new("Response")))?;
    // Every piece written came from a &str, so the buffer is UTF-8.
    String::from_utf8(w.into_inner()).map_err(std::io::Error::other)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{CallerIndex, CallerKey, FlagInput, IncidentInfo, IndexSettings, Lookup};
    use chrono::{TimeZone, Utc};
    use outagecast_core::contact::Language;
    use outagecast_core::incident::{IncidentId, IncidentKind, IncidentStatus, Severity};
    use proptest::prelude::*;
    use quick_xml::Reader;

    fn armed(texts: &[(Language, &str)]) -> Lookup {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let index = CallerIndex::new(IndexSettings::default());
        let key = CallerKey::parse("+358401234567").unwrap();
        let incidents = (0..texts.len())
            .map(|i| IncidentInfo {
                id: IncidentId(i as i64 + 1),
                kind: IncidentKind::Water,
                severity: Severity::Moderate,
                status: IncidentStatus::Declared,
                etr: None,
                declared_at: now - chrono::TimeDelta::minutes(i as i64),
                closed_at: None,
                expires_at: None,
            })
            .collect();
        let flags = texts.iter().enumerate().map(|(i, (lang, text))| FlagInput {
            key,
            incident: IncidentId(i as i64 + 1),
            language: *lang,
            announcement: (*text).to_string(),
            disarmed_at: None,
        });
        index.replace_all(incidents, flags, now);
        index.lookup(key, now)
    }

    /// An element read back: name, attributes, text.
    type Element = (String, Vec<(String, String)>, String);

    /// Parses TwiML back: every element inside `<Response>`.
    fn parse(xml: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(xml);
        let mut out = Vec::new();
        let mut stack: Vec<Element> = Vec::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().into_owned(),
                            )
                        })
                        .collect();
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    stack.push((name, attrs, String::new()));
                }
                Event::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.2.push_str(&t.decode().unwrap());
                    }
                }
                Event::GeneralRef(r) => {
                    // quick-xml reports entity references apart; resolve the five XML ones.
                    let text = match &*r.decode().unwrap() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unexpected entity {other}"),
                    };
                    if let Some(top) = stack.last_mut() {
                        top.2.push_str(text);
                    }
                }
                Event::End(_) => {
                    let element = stack.pop().unwrap();
                    if !stack.is_empty() {
                        out.push(element);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed elements in {xml}");
        out
    }

    #[test]
    fn armed_callers_hear_each_incident_in_its_language_then_the_menu() {
        let lookup = armed(&[
            (Language::Fi, "Vesikatko <Kaivokatu> & \"Esplanadi\"."),
            (Language::Sv, "Vattenavbrott."),
        ]);
        let menu = MenuUrl::parse("https://ivr.example.com/menu?a=1&b=<2>").unwrap();
        let xml = voice_response(&lookup.view(), Some(&menu));
        let elements = parse(&xml);
        assert_eq!(elements.len(), 3, "{xml}");
        assert_eq!(elements[0].0, "Say");
        assert_eq!(
            elements[0].1,
            [("language".to_string(), "fi-FI".to_string())]
        );
        assert_eq!(elements[0].2, "Vesikatko <Kaivokatu> & \"Esplanadi\".");
        assert_eq!(elements[1].1[0].1, "sv-SE");
        assert_eq!(elements[2].0, "Redirect");
        assert_eq!(elements[2].2, "https://ivr.example.com/menu?a=1&b=<2>");
    }

    #[test]
    fn without_a_menu_the_call_ends_after_the_announcement() {
        let xml = voice_response(&armed(&[(Language::En, "Hello.")]).view(), None);
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-GB">Hello.</Say></Response>"#
        );
        assert_eq!(
            voice_response(&Announcements::nothing(), None),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any announcement text gives well-formed XML that reads back as the text (minus what
        /// XML cannot carry).
        #[test]
        fn any_text_is_well_formed(text in "\\PC{0,200}|.{0,50}") {
            let xml = voice_response(&armed(&[(Language::En, &text)]).view(), None);
            let elements = parse(&xml);
            prop_assert_eq!(elements.len(), 1);
            prop_assert_eq!(&elements[0].2, &speakable(&text, MAX_SAY_CHARS));
        }
    }
}
