//! CAP 1.2 (OASIS Common Alerting Protocol) alerts: what they declare, update or cancel, and
//! where.
//!
//! * `msgType` Alert declares an incident; Update updates, and Cancel cancels, the incident
//!   that an earlier message named in `references` declared.
//! * The area is the union of every `polygon` and `circle` of every `area` of every `info`
//!   block (alerts repeat their area once per language; repeats count once). CAP writes
//!   coordinates **latitude first**: a polygon is space-separated `lat,lon` pairs, closed, at
//!   least four; a circle is `lat,lon radius` with the radius in kilometres.
//! * A `geocode` whose value names an imported zone selects that zone. Geocodes that name no
//!   zone are other systems' codes for the same place (FIPS, EMMA, postcode lists) and are
//!   ignored when the block also has a polygon or circle; a block with only unknown geocodes
//!   is refused, listing them.
//! * `severity`, `urgency`, `certainty`, `headline`, `description` and `expires` are kept on
//!   the incident. The service kind and the ETR come from `parameter`s named
//!   `outagecast:kind` and `outagecast:etr` (or `ETR`); the kind can also be read from the
//!   `event` text (water, power, gas, heating, telecom, sewer, in English, Finnish or
//!   Swedish).

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, Circle, LonLat, PolygonArea};
use outagecast_core::incident::{Cause, IncidentKind, Severity};
use serde::Serialize;

use crate::error::{IngestError, Result};
use crate::xml::{self, Element};

/// Largest CAP document accepted: a real alert is a few kilobytes, one with a detailed polygon
/// per language some hundreds.
pub const MAX_CAP_BYTES: usize = 1024 * 1024;
/// Most elements in one CAP document (a real alert has a few dozen).
pub const MAX_CAP_ELEMENTS: usize = xml::MAX_ELEMENTS;

macro_rules! cap_words {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum $name {
            $(#[doc = $word] $variant),+
        }

        impl $name {
            /// CAP's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// CAP's spelling, compared without regard to case; the error lists the words.
            pub fn parse(text: &str, field: &str) -> Result<Self> {
                $(if text.trim().eq_ignore_ascii_case($word) {
                    return Ok($name::$variant);
                })+
                Err(IngestError::invalid(
                    field,
                    format!("{text:?} is not a CAP {}; use one of {}", $what, [$($word),+].join(", ")),
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

cap_words!(
    /// What the message does.
    MsgType, "msgType" { Alert = "Alert", Update = "Update", Cancel = "Cancel", Ack = "Ack", Error = "Error" }
);
cap_words!(
    /// Whether the message is real.
    Status, "status" { Actual = "Actual", Exercise = "Exercise", System = "System", Test = "Test", Draft = "Draft" }
);
cap_words!(
    /// How soon to act.
    Urgency, "urgency" { Immediate = "Immediate", Expected = "Expected", Future = "Future", Past = "Past", Unknown = "Unknown" }
);
cap_words!(
    /// How sure the sender is.
    Certainty, "certainty" { Observed = "Observed", Likely = "Likely", Possible = "Possible", Unlikely = "Unlikely", Unknown = "Unknown" }
);
cap_words!(
    /// CAP's severity, with its `Unknown`.
    CapSeverity, "severity" { Extreme = "Extreme", Severe = "Severe", Moderate = "Moderate", Minor = "Minor", Unknown = "Unknown" }
);

impl CapSeverity {
    /// The incident's severity; `Unknown` is none.
    pub fn severity(self) -> Option<Severity> {
        match self {
            CapSeverity::Extreme => Some(Severity::Extreme),
            CapSeverity::Severe => Some(Severity::Severe),
            CapSeverity::Moderate => Some(Severity::Moderate),
            CapSeverity::Minor => Some(Severity::Minor),
            CapSeverity::Unknown => None,
        }
    }
}

/// An earlier message, as named in `references`: `sender,identifier,sent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapReference {
    /// Its sender.
    pub sender: String,
    /// Its identifier.
    pub identifier: String,
    /// Its `sent` time as written.
    pub sent: String,
}

/// A `geocode` of an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Geocode {
    /// The code system (`valueName`).
    pub value_name: String,
    /// The code.
    pub value: String,
}

/// One `area` block.
#[derive(Debug, Clone, PartialEq)]
pub struct CapArea {
    /// `areaDesc`.
    pub description: String,
    /// Its polygons and circles.
    pub shapes: Vec<Area>,
    /// Its geocodes.
    pub geocodes: Vec<Geocode>,
    /// Where it is in the document, for errors.
    pub field: String,
}

/// One `info` block.
#[derive(Debug, Clone, PartialEq)]
pub struct CapInfo {
    /// `language` (default en-US).
    pub language: String,
    /// `event`.
    pub event: String,
    /// `urgency`.
    pub urgency: Urgency,
    /// `severity`.
    pub severity: CapSeverity,
    /// `certainty`.
    pub certainty: Certainty,
    /// `headline`.
    pub headline: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `instruction`.
    pub instruction: Option<String>,
    /// `expires`.
    pub expires: Option<DateTime<Utc>>,
    /// `parameter`s as (valueName, value).
    pub parameters: Vec<(String, String)>,
    /// `area` blocks.
    pub areas: Vec<CapArea>,
    field: String,
}

/// A parsed CAP alert.
#[derive(Debug, Clone, PartialEq)]
pub struct CapAlert {
    /// `identifier`: unique for the sender.
    pub identifier: String,
    /// `sender`.
    pub sender: String,
    /// `sent`.
    pub sent: DateTime<Utc>,
    /// `status`.
    pub status: Status,
    /// `msgType`.
    pub msg_type: MsgType,
    /// `references`: the earlier messages an Update or Cancel is about.
    pub references: Vec<CapReference>,
    /// `info` blocks.
    pub infos: Vec<CapInfo>,
    field: String,
}

/// The field name of an element: `--cap alert/info[0]/area[1] (line 12, column 5)`.
fn place(input: &str, path: &str, e: &Element) -> String {
    format!("{input} {path} ({})", e.at())
}

fn required<'a>(parent: &'a Element, name: &str, input: &str, path: &str) -> Result<&'a str> {
    parent.text_of(name).ok_or_else(|| {
        IngestError::invalid(
            format!("{input} {path}/{name}"),
            format!("is missing; a CAP 1.2 <{path}> must have a <{name}>"),
        )
    })
}

fn time(text: &str, field: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            IngestError::invalid(
                field,
                format!(
                    "{text:?} is not a CAP date-time ({e}); write it like 2026-11-25T15:00:00+02:00"
                ),
            )
        })
}

/// Parses a CAP 1.2 document. Errors name the element and its line and column.
///
/// ```
/// let xml = r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
///   <identifier>HSY-2026-0042</identifier><sender>ops@example.org</sender>
///   <sent>2026-11-25T13:00:00+02:00</sent><status>Actual</status>
///   <msgType>Alert</msgType><scope>Public</scope>
///   <info><category>Infra</category><event>Water outage</event><urgency>Immediate</urgency>
///     <severity>Severe</severity><certainty>Observed</certainty>
///     <area><areaDesc>Kaivokatu</areaDesc><circle>60.1710,24.9414 0.3</circle></area>
///   </info></alert>"#;
/// let alert = outagecast_ingest::cap::parse(xml, "--cap").unwrap();
/// let area = alert.area(|_| None).unwrap();
/// assert_eq!(area.describe(), "circle of 300 m around 24.94140,60.17100");
/// ```
pub fn parse(text: &str, input: &str) -> Result<CapAlert> {
    if text.len() > MAX_CAP_BYTES {
        return Err(IngestError::too_large(
            input,
            format!(
                "is {} bytes, more than the CAP limit of {MAX_CAP_BYTES} bytes; a CAP alert is a few kilobytes",
                text.len()
            ),
        ));
    }
    let root = xml::parse(text, input)?;
    if root.name != "alert" {
        return Err(IngestError::invalid(
            place(input, &root.name, &root),
            format!(
                "the root element is <{}>; a CAP 1.2 document starts with <alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">",
                root.name
            ),
        ));
    }
    let identifier = required(&root, "identifier", input, "alert")?.to_string();
    if identifier.contains([' ', ',', '<', '&']) {
        return Err(IngestError::invalid(
            format!("{input} alert/identifier"),
            format!("{identifier:?} contains a space, comma, < or &, which CAP forbids"),
        ));
    }
    let sender = required(&root, "sender", input, "alert")?.to_string();
    let sent = time(
        required(&root, "sent", input, "alert")?,
        &format!("{input} alert/sent"),
    )?;
    let status = Status::parse(
        required(&root, "status", input, "alert")?,
        &format!("{input} alert/status"),
    )?;
    let msg_type = MsgType::parse(
        required(&root, "msgType", input, "alert")?,
        &format!("{input} alert/msgType"),
    )?;
    if matches!(msg_type, MsgType::Ack | MsgType::Error) {
        return Err(IngestError::invalid(
            format!("{input} alert/msgType"),
            format!(
                "is {msg_type}: an acknowledgement, not an outage; send Alert, Update or Cancel"
            ),
        ));
    }
    let references = match root.text_of("references") {
        None => Vec::new(),
        Some(text) => parse_references(text, &format!("{input} alert/references"))?,
    };
    if msg_type != MsgType::Alert && references.is_empty() {
        return Err(IngestError::invalid(
            format!("{input} alert/references"),
            format!(
                "is missing; an {msg_type} must name the message it is about as sender,identifier,sent"
            ),
        ));
    }
    let infos = root
        .all("info")
        .enumerate()
        .map(|(i, info)| parse_info(info, input, &format!("alert/info[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    if msg_type == MsgType::Alert && infos.iter().all(|i| i.areas.is_empty()) {
        return Err(IngestError::invalid(
            format!("{input} alert/info/area"),
            "is missing; an Alert must say where, with an <area> holding a <polygon>, <circle> or zone <geocode>",
        ));
    }
    Ok(CapAlert {
        identifier,
        sender,
        sent,
        status,
        msg_type,
        references,
        infos,
        field: input.to_string(),
    })
}

fn parse_references(text: &str, field: &str) -> Result<Vec<CapReference>> {
    text.split_whitespace()
        .map(|triple| {
            let parts: Vec<&str> = triple.split(',').collect();
            match parts.as_slice() {
                [sender, identifier, sent] if !sender.is_empty() && !identifier.is_empty() => {
                    Ok(CapReference {
                        sender: (*sender).to_string(),
                        identifier: (*identifier).to_string(),
                        sent: (*sent).to_string(),
                    })
                }
                _ => Err(IngestError::invalid(
                    field,
                    format!(
                        "{triple:?} is not sender,identifier,sent; separate several with spaces"
                    ),
                )),
            }
        })
        .collect()
}

fn parse_info(info: &Element, input: &str, path: &str) -> Result<CapInfo> {
    let word = |name: &str| -> Result<&str> { required(info, name, input, path) };
    let field = |name: &str| format!("{input} {path}/{name}");
    let parameters = info
        .all("parameter")
        .filter_map(|p| {
            Some((
                p.text_of("valueName")?.to_string(),
                p.text_of("value").unwrap_or("").to_string(),
            ))
        })
        .collect();
    let expires = info
        .text_of("expires")
        .map(|t| time(t, &field("expires")))
        .transpose()?;
    let areas = info
        .all("area")
        .enumerate()
        .map(|(i, a)| parse_area(a, input, &format!("{path}/area[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(CapInfo {
        language: info.text_of("language").unwrap_or("en-US").to_string(),
        event: word("event")?.to_string(),
        urgency: Urgency::parse(word("urgency")?, &field("urgency"))?,
        severity: CapSeverity::parse(word("severity")?, &field("severity"))?,
        certainty: Certainty::parse(word("certainty")?, &field("certainty"))?,
        headline: info.text_of("headline").map(str::to_string),
        description: info.text_of("description").map(str::to_string),
        instruction: info.text_of("instruction").map(str::to_string),
        expires,
        parameters,
        areas,
        field: place(input, path, info),
    })
}

fn parse_area(area: &Element, input: &str, path: &str) -> Result<CapArea> {
    let mut shapes = Vec::new();
    for (i, p) in area.all("polygon").enumerate() {
        let field = place(input, &format!("{path}/polygon[{i}]"), p);
        shapes.push(Area::Polygon(polygon(&p.text, &field)?));
    }
    for (i, c) in area.all("circle").enumerate() {
        let field = place(input, &format!("{path}/circle[{i}]"), c);
        shapes.push(Area::Circle(circle(&c.text, &field)?));
    }
    let geocodes = area
        .all("geocode")
        .filter_map(|g| {
            Some(Geocode {
                value_name: g.text_of("valueName").unwrap_or("").to_string(),
                value: g.text_of("value")?.to_string(),
            })
        })
        .collect::<Vec<_>>();
    if shapes.is_empty() && geocodes.is_empty() {
        return Err(IngestError::invalid(
            place(input, path, area),
            "has no <polygon>, <circle> or <geocode>; say where the outage is",
        ));
    }
    Ok(CapArea {
        description: area.text_of("areaDesc").unwrap_or("").to_string(),
        shapes,
        geocodes,
        field: place(input, path, area),
    })
}

/// One `lat,lon` pair of CAP text, checked, as a position. `n` counts pairs from 1.
fn pair(text: &str, n: usize, field: &str) -> Result<LonLat> {
    let bad = || {
        IngestError::invalid(
            field,
            format!(
                "pair {n} {text:?} is not lat,lon (two numbers separated by a comma, e.g. 60.1699,24.9384)"
            ),
        )
    };
    let (a, b) = text.split_once(',').ok_or_else(bad)?;
    let lat: f64 = a.trim().parse().map_err(|_| bad())?;
    let lon: f64 = b.trim().parse().map_err(|_| bad())?;
    if !lat.is_finite() || !lon.is_finite() {
        return Err(bad());
    }
    if lat.abs() > 90.0 {
        let hint = if lat.abs() <= 180.0 && lon.abs() <= 90.0 {
            format!(
                "; it looks like longitude and latitude are swapped: CAP writes latitude first, so write {lon},{lat}"
            )
        } else {
            String::new()
        };
        return Err(IngestError::invalid(
            field,
            format!("pair {n}: latitude {lat} is outside -90..90{hint}"),
        ));
    }
    if lon.abs() > 180.0 {
        return Err(IngestError::invalid(
            field,
            format!("pair {n}: longitude {lon} is outside -180..180"),
        ));
    }
    LonLat::parse(lon, lat).map_err(|e| IngestError::from(e).within(field))
}

/// A CAP polygon: `lat,lon lat,lon …`, closed, at least four pairs.
pub fn polygon(text: &str, field: &str) -> Result<PolygonArea> {
    let pairs: Vec<&str> = text.split_whitespace().collect();
    if pairs.len() < 4 {
        return Err(IngestError::invalid(
            field,
            format!(
                "has {} pairs; a CAP polygon needs at least 4 lat,lon pairs, the last repeating the first",
                pairs.len()
            ),
        ));
    }
    let points = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| pair(p, i + 1, field))
        .collect::<Result<Vec<_>>>()?;
    if points.first() != points.last() {
        return Err(IngestError::invalid(
            field,
            "is not closed: repeat the first lat,lon pair at the end",
        ));
    }
    let ring: Vec<[f64; 2]> = points.iter().map(|p| [p.lon(), p.lat()]).collect();
    outagecast_core::area::polygon_from_ring(&ring)
        .map_err(|e| IngestError::from(e.renamed("polygon", field)))
}

/// A CAP circle: `lat,lon radius` with the radius in kilometres.
pub fn circle(text: &str, field: &str) -> Result<Circle> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [center, radius] = parts.as_slice() else {
        return Err(IngestError::invalid(
            field,
            format!(
                "{:?} is not \"lat,lon radius\" (radius in kilometres, e.g. 60.1699,24.9384 0.5)",
                text.trim()
            ),
        ));
    };
    let center = pair(center, 1, field)?;
    let km: f64 = radius.parse().map_err(|_| {
        IngestError::invalid(
            field,
            format!("radius {radius:?} is not a number of kilometres"),
        )
    })?;
    if !km.is_finite() || km <= 0.0 {
        return Err(IngestError::invalid(
            field,
            format!(
                "radius {radius} km must be more than 0 (CAP circles are in kilometres: 0.3 is 300 m)"
            ),
        ));
    }
    Circle::new(center, km * 1000.0).map_err(|e| IngestError::from(e.renamed("radius", field)))
}

/// Turns free text into a one-line cause of at most 200 characters.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cleaned: String = joined.chars().filter(|c| !c.is_control()).collect();
    if cleaned.chars().count() <= 200 {
        return cleaned;
    }
    let mut short: String = cleaned.chars().take(199).collect();
    short.push('…');
    short
}

impl CapAlert {
    /// The field name the document came in under (`--cap`).
    pub fn input(&self) -> &str {
        &self.field
    }

    /// The union of every area of every info block. `zone` looks a geocode value up among
    /// the imported zones.
    pub fn area(&self, mut zone: impl FnMut(&str) -> Option<Area>) -> Result<Area> {
        let mut parts = Vec::new();
        for info in &self.infos {
            for area in &info.areas {
                parts.extend(area.shapes.iter().cloned());
                let mut named = 0;
                for g in &area.geocodes {
                    if let Some(z) = zone(&g.value) {
                        parts.push(z);
                        named += 1;
                    }
                }
                if area.shapes.is_empty() && named == 0 {
                    let codes: Vec<String> = area
                        .geocodes
                        .iter()
                        .map(|g| format!("{}={}", g.value_name, g.value))
                        .collect();
                    return Err(IngestError::invalid(
                        format!("{}/geocode", area.field),
                        format!(
                            "{} names no imported zone; import it with `outagecast zones import FILE.geojson --name-property PROP` (see `outagecast zones list`), or add a <polygon> or <circle>",
                            codes.join(", ")
                        ),
                    ));
                }
            }
        }
        Area::union(parts).map_err(|e| {
            IngestError::from(e.renamed("area", &format!("{} alert/info/area", self.field)))
        })
    }

    /// The highest severity of the info blocks; Moderate when every block says Unknown.
    pub fn severity(&self) -> Severity {
        self.infos
            .iter()
            .filter_map(|i| i.severity.severity())
            .max()
            .unwrap_or(Severity::Moderate)
    }

    /// The first info block's urgency.
    pub fn urgency(&self) -> Option<Urgency> {
        self.infos.first().map(|i| i.urgency)
    }

    /// The first info block's certainty.
    pub fn certainty(&self) -> Option<Certainty> {
        self.infos.first().map(|i| i.certainty)
    }

    /// The first headline given.
    pub fn headline(&self) -> Option<&str> {
        self.infos.iter().find_map(|i| i.headline.as_deref())
    }

    /// The first description given.
    pub fn description(&self) -> Option<&str> {
        self.infos.iter().find_map(|i| i.description.as_deref())
    }

    /// The latest expiry of the info blocks.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        self.infos.iter().filter_map(|i| i.expires).max()
    }

    /// The cause for messages: the headline, else the event, on one line.
    pub fn cause(&self) -> Result<Cause> {
        let text = self
            .headline()
            .or_else(|| self.infos.first().map(|i| i.event.as_str()))
            .ok_or_else(|| {
                IngestError::invalid(
                    format!("{} alert/info", self.field),
                    "is missing, so there is no headline or event to use as the cause; add an <info> or pass --cause",
                )
            })?;
        Cause::parse(&one_line(text)).map_err(|e| {
            IngestError::from(e.renamed("--cause", &format!("{} alert/info/headline", self.field)))
        })
    }

    fn parameter(&self, names: &[&str]) -> Option<(&CapInfo, &str)> {
        self.infos.iter().find_map(|i| {
            i.parameters
                .iter()
                .find(|(n, _)| names.iter().any(|want| n.eq_ignore_ascii_case(want)))
                .map(|(_, v)| (i, v.as_str()))
        })
    }

    /// The service kind: the `outagecast:kind` parameter, else a word in the event text.
    pub fn kind(&self) -> Result<Option<IncidentKind>> {
        if let Some((info, value)) = self.parameter(&["outagecast:kind", "kind"]) {
            return IncidentKind::parse(value).map(Some).map_err(|e| {
                IngestError::from(e.renamed(
                    "--kind",
                    &format!("{}/parameter[outagecast:kind]", info.field),
                ))
            });
        }
        Ok(self.infos.iter().find_map(|i| kind_from_words(&i.event)))
    }

    /// The ETR from the `outagecast:etr` (or `ETR`) parameter.
    pub fn etr(&self) -> Result<Option<DateTime<Utc>>> {
        self.parameter(&["outagecast:etr", "ETR"])
            .map(|(info, v)| time(v, &format!("{}/parameter[outagecast:etr]", info.field)))
            .transpose()
    }
}

/// The service kind named in free text, in English, Finnish or Swedish.
fn kind_from_words(text: &str) -> Option<IncidentKind> {
    let t = deunicode::deunicode(text).to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&["sewer", "sewage", "viemari", "avlopp"]) {
        Some(IncidentKind::Sewer)
    } else if has(&[
        "district heat",
        "heating",
        "kaukolampo",
        "lampo",
        "fjarrvarme",
    ]) {
        Some(IncidentKind::Heating)
    } else if has(&["water", "vesi", "veden", "vatten"]) {
        Some(IncidentKind::Water)
    } else if has(&["power", "electric", "sahko", "strom", "elavbrott"]) {
        Some(IncidentKind::Power)
    } else if has(&["gas", "kaasu"]) {
        Some(IncidentKind::Gas)
    } else if has(&[
        "telecom",
        "internet",
        "broadband",
        "phone",
        "puhelin",
        "tele",
    ]) {
        Some(IncidentKind::Telecom)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(msg_type: &str, refs: &str, areas: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>HSY-2026-0042</identifier>
  <sender>control@hsy.example.org</sender>
  <sent>2026-11-25T13:00:00+02:00</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  <info>
    <language>fi-FI</language>
    <category>Infra</category>
    <event>Vesikatko</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Observed</certainty>
    <expires>2099-11-25T20:00:00+02:00</expires>
    <headline>Vesijohtovuoto Kaivokadulla</headline>
    <description>Vesi on poikki.</description>
    {areas}
  </info>
  <info>
    <language>en-GB</language>
    <category>Infra</category>
    <event>Water outage</event>
    <urgency>Immediate</urgency>
    <severity>Moderate</severity>
    <certainty>Observed</certainty>
    <headline>Burst water main on Kaivokatu</headline>
    {areas}
  </info>
</alert>"#
        )
    }

    const SQUARE: &str = "<area><areaDesc>Kluuvi</areaDesc><polygon>60.168,24.940 60.168,24.946 60.172,24.946 60.172,24.940 60.168,24.940</polygon></area>";

    fn err(doc: &str) -> String {
        parse(doc, "--cap")
            .and_then(|a| a.area(|_| None))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_alert_gives_area_metadata_and_kind() {
        let doc = alert(
            "Alert",
            "",
            &format!(
                "{SQUARE}<area><areaDesc>Asema</areaDesc><circle>60.1710,24.9414 0.2</circle></area>"
            ),
        );
        let a = parse(&doc, "--cap").unwrap();
        assert_eq!(a.msg_type, MsgType::Alert);
        assert_eq!(a.status, Status::Actual);
        assert_eq!(a.identifier, "HSY-2026-0042");
        let area = a.area(|_| None).unwrap();
        assert_eq!(area.parts().len(), 2, "the repeated info block counts once");
        assert!(area.contains(LonLat::parse(24.943, 60.170).unwrap()));
        assert_eq!(a.severity(), Severity::Severe, "the highest of the blocks");
        assert_eq!(a.urgency(), Some(Urgency::Immediate));
        assert_eq!(a.certainty(), Some(Certainty::Observed));
        assert_eq!(a.headline(), Some("Vesijohtovuoto Kaivokadulla"));
        assert_eq!(a.description(), Some("Vesi on poikki."));
        assert_eq!(
            a.expires().unwrap().to_rfc3339(),
            "2099-11-25T18:00:00+00:00"
        );
        assert_eq!(a.cause().unwrap().as_str(), "Vesijohtovuoto Kaivokadulla");
        assert_eq!(a.kind().unwrap(), Some(IncidentKind::Water));
        assert_eq!(a.etr().unwrap(), None);
    }

    #[test]
    fn geocodes_select_imported_zones() {
        let zone_area =
            Area::Circle(Circle::new(LonLat::parse(24.95, 60.17).unwrap(), 100.0).unwrap());
        let doc = alert(
            "Alert",
            "",
            "<area><areaDesc>DMA 7</areaDesc><geocode><valueName>outagecast:zone</valueName><value>DMA 7</value></geocode></area>",
        );
        let a = parse(&doc, "--cap").unwrap();
        let got = a
            .area(|name| (name == "DMA 7").then(|| zone_area.clone()))
            .unwrap();
        assert_eq!(got, zone_area);
        let e = a.area(|_| None).unwrap_err().to_string();
        assert!(
            e.contains("outagecast:zone=DMA 7") && e.contains("zones import"),
            "{e}"
        );
        // Other systems' codes next to a polygon are ignored.
        let doc = alert(
            "Alert",
            "",
            &SQUARE.replace(
                "</area>",
                "<geocode><valueName>EMMA_ID</valueName><value>FI001</value></geocode></area>",
            ),
        );
        assert!(parse(&doc, "--cap").unwrap().area(|_| None).is_ok());
    }

    #[test]
    fn updates_and_cancels_need_references() {
        let refs = "<references>control@hsy.example.org,HSY-2026-0041,2026-11-25T12:00:00+02:00</references>";
        let a = parse(&alert("Update", refs, SQUARE), "--cap").unwrap();
        assert_eq!(a.references[0].identifier, "HSY-2026-0041");
        let e = parse(&alert("Cancel", "", SQUARE), "--cap")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alert/references") && e.contains("Cancel"),
            "{e}"
        );
        let e = parse(
            &alert("Update", "<references>just-an-id</references>", SQUARE),
            "--cap",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sender,identifier,sent"), "{e}");
        let e = parse(&alert("Ack", refs, SQUARE), "--cap")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Ack"), "{e}");
    }

    #[test]
    fn bad_coordinates_are_explained_with_the_place() {
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><polygon>95.5,100.1 95.6,100.1 95.6,100.2 95.5,100.1</polygon></area>",
        ));
        assert!(e.contains("polygon[0] (line "), "{e}");
        assert!(e.contains("latitude 95.5") && !e.contains("swapped"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><polygon>124.94,60.16 124.95,60.16 124.95,60.17 124.94,60.16</polygon></area>",
        ));
        assert!(e.contains("swapped") && e.contains("latitude first"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><polygon>60.16,24.94 60.16,24.95 60.17,24.95 60.17,24.94</polygon></area>",
        ));
        assert!(e.contains("not closed"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><polygon>60.16,24.94 60.16,24.95 60.16,24.94</polygon></area>",
        ));
        assert!(e.contains("at least 4"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><polygon>60.16,24.94 60.17,24.95 60.16,24.95 60.17,24.94 60.16,24.94</polygon></area>",
        ));
        assert!(e.contains("not a valid polygon"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><polygon>60.16;24.94 60.16,24.95 60.17,24.95 60.16;24.94</polygon></area>",
        ));
        assert!(e.contains("pair 1") && e.contains("not lat,lon"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><circle>60.17,24.94</circle></area>",
        ));
        assert!(e.contains("lat,lon radius"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><circle>60.17,24.94 0</circle></area>",
        ));
        assert!(e.contains("more than 0"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>x</areaDesc><circle>60.17,24.94 5000</circle></area>",
        ));
        assert!(e.contains("limit"), "{e}");
        let e = err(&alert(
            "Alert",
            "",
            "<area><areaDesc>nowhere</areaDesc></area>",
        ));
        assert!(e.contains("has no <polygon>"), "{e}");
        let e = err(&alert("Alert", "", ""));
        assert!(
            e.contains("alert/info/area") && e.contains("is missing"),
            "{e}"
        );
    }

    #[test]
    fn header_errors_name_the_element() {
        let good = alert("Alert", "", SQUARE);
        for (from, to, want) in [
            (
                "<status>Actual</status>",
                "<status>Real</status>",
                "alert/status",
            ),
            (
                "<identifier>HSY-2026-0042</identifier>",
                "",
                "alert/identifier: is missing",
            ),
            (
                "<identifier>HSY-2026-0042</identifier>",
                "<identifier>a b</identifier>",
                "forbids",
            ),
            (
                "<sent>2026-11-25T13:00:00+02:00</sent>",
                "<sent>yesterday</sent>",
                "alert/sent",
            ),
            (
                "<urgency>Immediate</urgency>",
                "<urgency>Now</urgency>",
                "info[0]/urgency",
            ),
            (
                "<severity>Severe</severity>",
                "<severity>Bad</severity>",
                "info[0]/severity",
            ),
            (
                "<expires>2099-11-25T20:00:00+02:00</expires>",
                "<expires>soon</expires>",
                "info[0]/expires",
            ),
            ("<alert xmlns", "<alarm xmlns", "root element"),
        ] {
            let doc = good.replacen(from, to, 1).replacen(
                "</alert>",
                if from.starts_with("<alert") {
                    "</alarm>"
                } else {
                    "</alert>"
                },
                1,
            );
            let e = parse(&doc, "--cap").unwrap_err().to_string();
            assert!(e.contains(want), "{to}: {e}");
        }
        let e = parse(
            "<alert>\n  <identifier>x</identifier>\n  <sender>y\n</alert>",
            "--cap",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn parameters_give_kind_and_etr() {
        let doc = alert("Alert", "", SQUARE).replacen(
            "<headline>",
            "<parameter><valueName>outagecast:kind</valueName><value>power</value></parameter><parameter><valueName>ETR</valueName><value>2099-01-01T10:00:00Z</value></parameter><headline>",
            1,
        );
        let a = parse(&doc, "--cap").unwrap();
        assert_eq!(a.kind().unwrap(), Some(IncidentKind::Power));
        assert!(a.etr().unwrap().is_some());
        let bad = doc.replace("<value>power</value>", "<value>plasma</value>");
        let e = parse(&bad, "--cap")
            .unwrap()
            .kind()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("outagecast:kind") && e.contains("water, power"),
            "{e}"
        );
        assert_eq!(kind_from_words("Sähkökatko"), Some(IncidentKind::Power));
        assert_eq!(
            kind_from_words("Avbrott i fjärrvärme"),
            Some(IncidentKind::Heating)
        );
        assert_eq!(kind_from_words("Storm"), None);
        let long = "x".repeat(300);
        assert_eq!(one_line(&long).chars().count(), 200);
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }

    #[test]
    fn oversized_documents_are_refused_naming_the_limit() {
        // 4.8 MB: refused on its size, before any parsing.
        let area = format!(
            "<area><areaDesc>{}</areaDesc></area>",
            "x".repeat(4_800_000)
        );
        let big = alert("Alert", "", &area);
        let e = parse(&big, "--cap").unwrap_err();
        assert!(matches!(e, IngestError::TooLarge { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("more than the CAP limit of 1048576 bytes"),
            "{e}"
        );
        // Under the size limit but with too many elements, all on one line.
        let many = "<parameter/>".repeat(MAX_CAP_ELEMENTS);
        let e = parse(&alert("Alert", "", &many), "--cap").unwrap_err();
        assert!(matches!(e, IngestError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("CAP limit of 20000 elements"), "{e}");
        // Just under both, a mistake at the very end of one long line is still placed exactly
        // (one pass over the text, not one per element).
        let line = "<p/>".repeat(MAX_CAP_ELEMENTS - 10);
        let doc = format!("<alert>{line}</alrt>");
        let e = parse(&doc, "--cap").unwrap_err().to_string();
        let column = doc.len() - "</alrt>".len() + 1;
        assert!(e.contains(&format!("line 1, column {column}")), "{e}");
    }
}
