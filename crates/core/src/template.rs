//! Operator-edited notice texts: per incident kind (or every kind), event and language, with
//! the built-in wording ([`crate::message::notice_text`]) wherever the operator wrote nothing.
//!
//! A template is text with variables in braces; `{{` and `}}` are literal braces:
//!
//! | variable | what it becomes |
//! |---|---|
//! | `{cause}` | the operator's cause text |
//! | `{etr}` | the estimated restoration time in the utility's zone (`klo 15.00`, `26.11. 15:00`) |
//! | `{reference}` | the incident's reference customers quote back (`INC-12`) |
//! | `{kind}`, `{Kind}` | the outage in the language (`vesikatko`, `Vesikatko`) |
//! | `{area}` | the area's description |
//! | `{status_link}` | the incident's status page (the `status_link` setting, with `{reference}`) |
//!
//! When there is no ETR, `body_without_etr` is used if given, and otherwise `{etr}` says
//! "not known yet" in the language. Unknown variables, stray braces and a `{status_link}`
//! without a `status_link` setting are refused when the templates are loaded, naming the field.
//! Parsing the file format (TOML) is the binary's business: this module takes the texts.

use std::collections::HashMap;
use std::sync::Arc;

use crate::contact::Language;
use crate::error::{CoreError, Result};
use crate::incident::{EventKind, IncidentDraft, IncidentId, IncidentKind};
use crate::message::{
    Locale, MessageText, Wording, announcement, capitalised, kind_noun, notice_text, written_time,
};

/// A variable a template can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Cause,
    Etr,
    Reference,
    Kind,
    KindCapitalised,
    Area,
    StatusLink,
}

impl Var {
    const ALL: [(&'static str, Var); 7] = [
        ("cause", Var::Cause),
        ("etr", Var::Etr),
        ("reference", Var::Reference),
        ("kind", Var::Kind),
        ("Kind", Var::KindCapitalised),
        ("area", Var::Area),
        ("status_link", Var::StatusLink),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// One template, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`, allowing the variables in `allowed`; errors name `field`.
    fn parse_with(text: &str, field: &str, allowed: &[Var]) -> Result<Self> {
        let names = || {
            Var::ALL
                .iter()
                .filter(|(_, v)| allowed.contains(v))
                .map(|(n, _)| format!("{{{n}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(CoreError::invalid(
                            field,
                            format!(
                                "the {{ at character {} is never closed; write {{{{ for a literal brace",
                                at + 1
                            ),
                        ));
                    }
                    let var = Var::ALL
                        .iter()
                        .find(|(n, _)| *n == name.trim())
                        .map(|(_, v)| *v)
                        .filter(|v| allowed.contains(v))
                        .ok_or_else(|| {
                            CoreError::invalid(
                                field,
                                format!("unknown variable {{{name}}}; use {}", names()),
                            )
                        })?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(var));
                }
                '}' => {
                    return Err(CoreError::invalid(
                        field,
                        format!(
                            "the }} at character {} has no {{; write }}}} for a literal brace",
                            at + 1
                        ),
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if pieces.is_empty() {
            return Err(CoreError::invalid(
                field,
                "is empty; leave the key out to use the built-in text",
            ));
        }
        Ok(Template { pieces })
    }

    /// Parses a notice template (every variable allowed).
    pub fn parse(text: &str, field: &str) -> Result<Self> {
        Template::parse_with(text, field, &Var::ALL.map(|(_, v)| v))
    }

    fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    fn render(&self, value: impl Fn(Var) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&value(*v)),
            }
        }
        out
    }
}

/// Which part of a notice a template writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The email subject.
    Subject,
    /// The SMS text and plain-text email body.
    Body,
    /// The body when the incident has no ETR.
    BodyWithoutEtr,
}

impl Part {
    /// The key in the templates file.
    pub fn key(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Body => "body",
            Part::BodyWithoutEtr => "body_without_etr",
        }
    }

    /// The inverse of [`Part::key`].
    pub fn parse(key: &str, field: &str) -> Result<Self> {
        [Part::Subject, Part::Body, Part::BodyWithoutEtr]
            .into_iter()
            .find(|p| p.key() == key)
            .ok_or_else(|| {
                CoreError::invalid(
                    field,
                    format!("{key:?} is not one of subject, body, body_without_etr"),
                )
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    subject: Option<Template>,
    body: Option<Template>,
    body_without_etr: Option<Template>,
}

/// Where a template came from, for errors found after all are read.
type Key = (Option<IncidentKind>, EventKind, Language);

/// The operator's templates, checked; built with [`TemplateSet::insert`] and
/// [`TemplateSet::set_status_link`], then [`TemplateSet::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet {
    entries: HashMap<Key, Entry>,
    fields: HashMap<(Key, &'static str), String>,
    status_link: Option<Template>,
}

impl TemplateSet {
    /// An empty set: every text built in.
    pub fn new() -> Self {
        TemplateSet::default()
    }

    /// Adds one template for `kind` (`None`: every kind without its own), `event` and
    /// `language`. `field` names it in errors (`water.declared.fi.body`).
    pub fn insert(
        &mut self,
        kind: Option<IncidentKind>,
        event: EventKind,
        language: Language,
        part: Part,
        text: &str,
        field: &str,
    ) -> Result<()> {
        let template = Template::parse(text, field)?;
        let key = (kind, event, language);
        let entry = self.entries.entry(key).or_default();
        let slot = match part {
            Part::Subject => &mut entry.subject,
            Part::Body => &mut entry.body,
            Part::BodyWithoutEtr => &mut entry.body_without_etr,
        };
        *slot = Some(template);
        self.fields.insert((key, part.key()), field.to_string());
        Ok(())
    }

    /// Sets the status page link; it may use `{reference}`.
    pub fn set_status_link(&mut self, text: &str, field: &str) -> Result<()> {
        self.status_link = Some(Template::parse_with(text, field, &[Var::Reference])?);
        Ok(())
    }

    /// Checks the set as a whole: `{status_link}` needs the `status_link` setting.
    pub fn check(&self) -> Result<()> {
        if self.status_link.is_some() {
            return Ok(());
        }
        let mut uses: Vec<&String> = self
            .entries
            .iter()
            .flat_map(|(key, e)| {
                [
                    (&e.subject, "subject"),
                    (&e.body, "body"),
                    (&e.body_without_etr, "body_without_etr"),
                ]
                .into_iter()
                .filter(|(t, _)| t.as_ref().is_some_and(|t| t.uses(Var::StatusLink)))
                .filter_map(|(_, part)| self.fields.get(&(*key, part)))
                .collect::<Vec<_>>()
            })
            .collect();
        uses.sort();
        match uses.first() {
            Some(field) => Err(CoreError::invalid(
                field.as_str(),
                "uses {status_link} but no status_link is set; add status_link = \"https://…/{reference}\" at the top of the file",
            )),
            None => Ok(()),
        }
    }

    /// How many templates the set holds.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the set holds no templates.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The kind's own texts, then the texts for every kind.
    fn entries(&self, kind: IncidentKind, event: EventKind, lang: Language) -> [Option<&Entry>; 2] {
        [
            self.entries.get(&(Some(kind), event, lang)),
            self.entries.get(&(None, event, lang)),
        ]
    }

    /// The notice for `event` in `lang`: the operator's templates where given, the built-in
    /// text otherwise (subject and body separately).
    pub fn notice(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        event: EventKind,
        lang: Language,
        locale: Locale,
    ) -> MessageText {
        let [own, any] = self.entries(draft.kind(), event, lang);
        let pick = |f: fn(&Entry) -> &Option<Template>| {
            own.and_then(|e| f(e).as_ref())
                .or_else(|| any.and_then(|e| f(e).as_ref()))
        };
        let subject = pick(|e| &e.subject);
        // The most specific text wins: the kind's own, then the one for every kind; without an
        // ETR, a text written for that case first.
        let body = match draft.etr() {
            Some(_) => pick(|e| &e.body),
            None => own
                .and_then(|e| e.body_without_etr.as_ref().or(e.body.as_ref()))
                .or_else(|| any.and_then(|e| e.body_without_etr.as_ref().or(e.body.as_ref()))),
        };
        if subject.is_none() && body.is_none() {
            return notice_text(id, draft, event, lang, locale);
        }
        let noun = kind_noun(draft.kind(), lang);
        let value = |v: Var| match v {
            Var::Cause => draft.cause().as_str().to_string(),
            Var::Etr => draft
                .etr()
                .map(|t| written_time(t, lang, locale))
                .unwrap_or_else(|| not_known(lang).to_string()),
            Var::Reference => id.label(),
            Var::Kind => noun.to_string(),
            Var::KindCapitalised => capitalised(noun),
            Var::Area => draft.area().describe(),
            Var::StatusLink => self
                .status_link
                .as_ref()
                .map(|t| t.render(|_| id.label()))
                .unwrap_or_default(),
        };
        let fallback = (subject.is_none() || body.is_none())
            .then(|| notice_text(id, draft, event, lang, locale));
        let or_built_in = |t: Option<&Template>, built: fn(MessageText) -> String| match t {
            Some(t) => t.render(value),
            None => fallback.clone().map(built).unwrap_or_default(),
        };
        MessageText {
            subject: or_built_in(subject, |m| m.subject),
            body: or_built_in(body, |m| m.body),
        }
    }
}

/// `{etr}` when there is none.
fn not_known(lang: Language) -> &'static str {
    match lang {
        Language::Fi => "ei vielä tiedossa",
        Language::Sv => "ännu inte känd",
        Language::En => "not known yet",
    }
}

/// The operator's templates at a moment in a time zone: a [`Wording`] for the store.
#[derive(Debug, Clone)]
pub struct Templates {
    set: Arc<TemplateSet>,
    locale: Locale,
}

impl Templates {
    /// Checks the set and fixes the zone and moment that times are written for.
    pub fn new(set: TemplateSet, locale: Locale) -> Result<Self> {
        set.check()?;
        Ok(Templates {
            set: Arc::new(set),
            locale,
        })
    }

    /// The same templates for another moment (cheap).
    #[must_use]
    pub fn at(&self, locale: Locale) -> Self {
        Templates {
            set: Arc::clone(&self.set),
            locale,
        }
    }

    /// The templates.
    pub fn set(&self) -> &TemplateSet {
        &self.set
    }
}

impl Wording for Templates {
    fn notice(
        &self,
        id: IncidentId,
        draft: &IncidentDraft,
        event: EventKind,
        lang: Language,
    ) -> MessageText {
        self.set.notice(id, draft, event, lang, self.locale)
    }

    fn announcement(&self, draft: &IncidentDraft, lang: Language) -> String {
        announcement(draft, lang, self.locale)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::area::{Area, Circle, LonLat};
    use crate::incident::{Cause, DraftParts, Severity};
    use chrono::{TimeZone, Utc};

    fn locale() -> Locale {
        Locale {
            zone: chrono_tz::Europe::Helsinki,
            now: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        }
    }

    fn draft(kind: IncidentKind, etr: bool) -> IncidentDraft {
        IncidentDraft::new(
            DraftParts {
                kind,
                severity: Severity::Moderate,
                cause: Cause::parse("burst main on Kaivokatu").unwrap(),
                etr: etr.then(|| Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()),
                reference: None,
                area: Area::Circle(
                    Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 300.0).unwrap(),
                ),
                expires_at: None,
            },
            locale().now,
        )
        .unwrap()
    }

    #[test]
    fn variables_are_filled_and_the_rest_is_built_in() {
        let mut set = TemplateSet::new();
        set.set_status_link("https://vesi.example.fi/katkot/{reference}", "status_link")
            .unwrap();
        set.insert(
            Some(IncidentKind::Water),
            EventKind::Declared,
            Language::Fi,
            Part::Body,
            "{Kind}: {cause}. Korjattu {etr}. {status_link} {{{reference}}}",
            "water.declared.fi.body",
        )
        .unwrap();
        let t = Templates::new(set, locale()).unwrap();
        let d = draft(IncidentKind::Water, true);
        let text = t.notice(IncidentId(7), &d, EventKind::Declared, Language::Fi);
        assert_eq!(
            text.body,
            "Vesikatko: burst main on Kaivokatu. Korjattu klo 15.00. https://vesi.example.fi/katkot/INC-7 {INC-7}"
        );
        let built_in = notice_text(
            IncidentId(7),
            &d,
            EventKind::Declared,
            Language::Fi,
            locale(),
        );
        assert_eq!(
            text.subject, built_in.subject,
            "no subject template: built in"
        );
        // Other languages, events and kinds are untouched.
        for (kind, event, lang) in [
            (IncidentKind::Water, EventKind::Declared, Language::Sv),
            (IncidentKind::Water, EventKind::Restored, Language::Fi),
            (IncidentKind::Power, EventKind::Declared, Language::Fi),
        ] {
            let d = draft(kind, true);
            assert_eq!(
                t.notice(IncidentId(7), &d, event, lang),
                notice_text(IncidentId(7), &d, event, lang, locale())
            );
        }
    }

    #[test]
    fn a_kind_overrides_the_default_and_no_etr_has_its_own_text() {
        let mut set = TemplateSet::new();
        let mut add = |kind, part, text: &str| {
            set.insert(kind, EventKind::Declared, Language::En, part, text, "f")
                .unwrap()
        };
        add(None, Part::Body, "Any: {cause}, back {etr}");
        add(None, Part::Subject, "{Kind}");
        add(Some(IncidentKind::Gas), Part::Body, "Gas: {cause}");
        let t = Templates::new(set, locale()).unwrap();
        let n = |kind, etr| {
            t.notice(
                IncidentId(1),
                &draft(kind, etr),
                EventKind::Declared,
                Language::En,
            )
        };
        assert_eq!(
            n(IncidentKind::Gas, true).body,
            "Gas: burst main on Kaivokatu"
        );
        assert_eq!(
            n(IncidentKind::Gas, true).subject,
            "Gas outage",
            "the gas texts have no subject: the one for every kind"
        );
        assert_eq!(
            n(IncidentKind::Power, true).body,
            "Any: burst main on Kaivokatu, back 15:00"
        );
        assert_eq!(n(IncidentKind::Power, true).subject, "Power outage");
        assert_eq!(
            n(IncidentKind::Power, false).body,
            "Any: burst main on Kaivokatu, back not known yet"
        );

        let mut set = TemplateSet::new();
        set.insert(
            None,
            EventKind::Declared,
            Language::En,
            Part::Body,
            "{cause} until {etr}",
            "b",
        )
        .unwrap();
        set.insert(
            None,
            EventKind::Declared,
            Language::En,
            Part::BodyWithoutEtr,
            "{cause}",
            "c",
        )
        .unwrap();
        let t = Templates::new(set, locale()).unwrap();
        let n = |etr| {
            t.notice(
                IncidentId(1),
                &draft(IncidentKind::Water, etr),
                EventKind::Declared,
                Language::En,
            )
            .body
        };
        assert_eq!(n(true), "burst main on Kaivokatu until 15:00");
        assert_eq!(n(false), "burst main on Kaivokatu");
    }

    #[test]
    fn bad_templates_are_refused_naming_the_field() {
        let cases = [
            ("{couse}", "unknown variable {couse}"),
            ("Ref {reference", "never closed"),
            ("a } b", "has no {"),
            ("", "is empty"),
        ];
        for (text, problem) in cases {
            let e = Template::parse(text, "water.declared.fi.body")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("water.declared.fi.body: "), "{e}");
            assert!(e.contains(problem), "{text:?}: {e}");
        }
        let e = Template::parse("{x}", "f").unwrap_err().to_string();
        assert!(
            e.contains("{cause}, {etr}, {reference}, {kind}, {Kind}, {area}, {status_link}"),
            "{e}"
        );
        let mut set = TemplateSet::new();
        let e = set
            .set_status_link("https://x/{cause}", "status_link")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("status_link: unknown variable {cause}; use {reference}"),
            "{e}"
        );
        set.insert(
            None,
            EventKind::Updated,
            Language::Sv,
            Part::Body,
            "Se {status_link}",
            "default.updated.sv.body",
        )
        .unwrap();
        let e = Templates::new(set, locale()).unwrap_err().to_string();
        assert!(
            e.starts_with("default.updated.sv.body: uses {status_link}"),
            "{e}"
        );
        assert!(Part::parse("bdy", "water.declared.fi.bdy").is_err());
    }
}
