//! CAP 1.2 out: an alert written from values the caller gathered (the engine maps an incident
//! to [`CapMessage`]), with the area as CAP shapes ([`cap_shapes`]). Pure.
//!
//! CAP has polygons without holes and circles, nothing else, and receivers take only so many
//! points:
//! * a circle is a `<circle>` (`lat,lon km`);
//! * a polygon is one `<polygon>` per outer ring; holes are dropped (the area grows a little)
//!   and `areaDesc` says so;
//! * a corridor (a line and a buffer) is one polygon per segment: a rectangle with half
//!   circles at both ends, together exactly the points within the buffer of the line, up to
//!   the arcs' chords (the arcs are drawn outside the buffer, so nothing inside is lost);
//! * a ring of more than [`MAX_CAP_POINTS`] points is simplified with `geo`'s
//!   topology-preserving Visvalingam–Whyatt until it fits (noted in `areaDesc`).
//!
//! Times are written as CAP's schema wants them: seconds, a numeric offset, UTC as `-00:00`.

use chrono::{DateTime, Utc};
use geo::{Coord, LineString, Polygon, SimplifyVwPreserve};
use outagecast_core::area::Area;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::cap::{CapReference, CapSeverity, Certainty, MsgType, Status, Urgency};

/// The most points one exported `<polygon>` has; receivers (and the national brokers) refuse
/// or cut larger ones.
pub const MAX_CAP_POINTS: usize = 1000;

/// Points on each half circle at a corridor segment's ends.
const CAP_ARC_POINTS: usize = 8;

/// The CAP 1.2 namespace.
pub const CAP_NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// One `info` block.
#[derive(Debug, Clone, PartialEq)]
pub struct CapInfoOut {
    /// `language` (RFC 3066: `fi`, `sv`, `en`).
    pub language: String,
    /// `category` values (`Infra`, `Safety`, ...).
    pub categories: Vec<&'static str>,
    /// `event`.
    pub event: String,
    /// `responseType`, if any (`AllClear` once it is over).
    pub response_type: Option<&'static str>,
    /// `urgency`.
    pub urgency: Urgency,
    /// `severity`.
    pub severity: CapSeverity,
    /// `certainty`.
    pub certainty: Certainty,
    /// `expires`.
    pub expires: Option<DateTime<Utc>>,
    /// `senderName`.
    pub sender_name: Option<String>,
    /// `headline`.
    pub headline: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `instruction`.
    pub instruction: Option<String>,
    /// `web`: a full URL.
    pub web: Option<String>,
    /// `parameter`s as (valueName, value).
    pub parameters: Vec<(String, String)>,
    /// `areaDesc`.
    pub area_desc: String,
}

/// A CAP alert to write.
#[derive(Debug, Clone, PartialEq)]
pub struct CapMessage {
    /// `identifier`: no spaces, commas, `<` or `&`.
    pub identifier: String,
    /// `sender`.
    pub sender: String,
    /// `sent`.
    pub sent: DateTime<Utc>,
    /// `status`.
    pub status: Status,
    /// `msgType`.
    pub msg_type: MsgType,
    /// `note`, if any.
    pub note: Option<String>,
    /// `references`.
    pub references: Vec<CapReference>,
    /// `info` blocks (each carries the same area).
    pub infos: Vec<CapInfoOut>,
}

/// An area as CAP shapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapShapes {
    /// `<polygon>` texts: closed `lat,lon` pairs.
    pub polygons: Vec<String>,
    /// `<circle>` texts: `lat,lon km`.
    pub circles: Vec<String>,
    /// What was changed to fit CAP (holes dropped, rings simplified), for `areaDesc`.
    pub notes: Vec<String>,
}

/// A time as CAP's schema writes it (`2026-11-25T13:00:00-00:00`).
pub fn cap_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S-00:00").to_string()
}

fn pair(c: Coord<f64>) -> String {
    // `{}` writes the shortest text that reads back as the same f64: a round trip is exact.
    format!("{},{}", c.y, c.x)
}

fn ring_text(ring: &LineString<f64>) -> String {
    ring.0
        .iter()
        .map(|c| pair(*c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ring` (closed) with at most `max` points: the smallest doubling of the tolerance that
/// fits, topology kept.
fn fitted(ring: &LineString<f64>, max: usize) -> LineString<f64> {
    if ring.0.len() <= max {
        return ring.clone();
    }
    let poly = Polygon::new(ring.clone(), vec![]);
    let mut epsilon = 1e-12;
    loop {
        let simple = poly.simplify_vw_preserve(epsilon);
        if simple.exterior().0.len() <= max || epsilon > 1.0 {
            return simple.exterior().clone();
        }
        epsilon *= 2.0;
    }
}

/// The CAP shapes of `area`.
pub fn cap_shapes(area: &Area) -> CapShapes {
    let mut out = CapShapes::default();
    add_shapes(area, &mut out);
    out
}

fn add_shapes(area: &Area, out: &mut CapShapes) {
    match area {
        Area::Circle(c) => out.circles.push(format!(
            "{},{} {}",
            c.center().lat(),
            c.center().lon(),
            c.radius_m() / 1000.0
        )),
        Area::Polygon(p) => {
            let mut holes = 0;
            for poly in &p.shape().0 {
                holes += poly.interiors().len();
                let ring = fitted(poly.exterior(), MAX_CAP_POINTS);
                if ring.0.len() < poly.exterior().0.len() {
                    out.notes.push(format!(
                        "a ring of {} points simplified to {}",
                        poly.exterior().0.len(),
                        ring.0.len()
                    ));
                }
                out.polygons.push(ring_text(&ring));
            }
            if holes > 0 {
                out.notes.push(format!(
                    "{holes} hole(s) left out: CAP polygons have none, so the area shown is larger"
                ));
            }
        }
        Area::Corridor(c) => {
            let line = c.line();
            for seg in line.0.windows(2) {
                out.polygons
                    .push(ring_text(&capsule(seg[0], seg[1], c.buffer_m())));
            }
            if line.0.len() == 1 {
                out.circles.push(format!(
                    "{},{} {}",
                    line.0[0].y,
                    line.0[0].x,
                    c.buffer_m() / 1000.0
                ));
            }
        }
        Area::Union(u) => {
            for part in u.parts() {
                add_shapes(part, out);
            }
        }
    }
}

/// Metres per degree of latitude on the WGS84 mean radius (good to a fraction of a percent
/// for the few hundred metres a corridor's buffer spans).
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// The points within `buffer_m` of the segment a–b: a rectangle along it with half circles
/// at both ends, in a local equirectangular frame, closed, counter-clockwise. The arcs'
/// vertices lie a little outside the buffer so that their chords do not cut into it.
fn capsule(a: Coord<f64>, b: Coord<f64>, buffer_m: f64) -> LineString<f64> {
    let k = (a.y.to_radians().cos()).max(1e-6);
    // Local metres.
    let to_m = |c: Coord<f64>| ((c.x - a.x) * k * M_PER_DEG, (c.y - a.y) * M_PER_DEG);
    let to_deg = |x: f64, y: f64| Coord {
        x: a.x + x / (k * M_PER_DEG),
        y: a.y + y / M_PER_DEG,
    };
    let (bx, by) = to_m(b);
    let angle = by.atan2(bx);
    let step = std::f64::consts::PI / CAP_ARC_POINTS as f64;
    let r = buffer_m / (step / 2.0).cos();
    let mut points = Vec::with_capacity(2 * CAP_ARC_POINTS + 3);
    // The half circle around b, from the right side of the direction of travel to the left.
    for i in 0..=CAP_ARC_POINTS {
        let t = angle - std::f64::consts::FRAC_PI_2 + step * i as f64;
        points.push(to_deg(bx + r * t.cos(), by + r * t.sin()));
    }
    // Then around a, from the left back to the right.
    for i in 0..=CAP_ARC_POINTS {
        let t = angle + std::f64::consts::FRAC_PI_2 + step * i as f64;
        points.push(to_deg(r * t.cos(), r * t.sin()));
    }
    points.push(points[0]);
    LineString::new(points)
}

/// Whether `text` is a CAP identifier (no spaces, commas, `<` or `&`).
pub fn is_cap_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '&')
}

/// Only characters XML 1.0 allows.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => c,
            _ => ' ',
        })
        .collect()
}

struct Out(Writer<Vec<u8>>);

impl Out {
    fn open(&mut self, name: &str) -> std::io::Result<()> {
        self.0.write_event(Event::Start(BytesStart::new(name)))
    }
    fn close(&mut self, name: &str) -> std::io::Result<()> {
        self.0.write_event(Event::End(BytesEnd::new(name)))
    }
    fn text(&mut self, name: &str, value: &str) -> std::io::Result<()> {
        self.open(name)?;
        self.0
            .write_event(Event::Text(BytesText::new(&xml_text(value))))?;
        self.close(name)
    }
    fn opt(&mut self, name: &str, value: Option<&str>) -> std::io::Result<()> {
        match value {
            Some(v) => self.text(name, v),
            None => Ok(()),
        }
    }
}

/// The alert as CAP 1.2 XML, every `info` with `shapes` as its area.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_ingest::cap::{self, CapSeverity, Certainty, MsgType, Status, Urgency};
/// use outagecast_ingest::cap_out::{self, CapInfoOut, CapMessage};
/// let area = Area::Circle(Circle::new(LonLat::parse(24.9414, 60.171).unwrap(), 300.0).unwrap());
/// let message = CapMessage {
///     identifier: "INC-1".into(), sender: "ops@example.org".into(),
///     sent: Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap(),
///     status: Status::Actual, msg_type: MsgType::Alert, note: None, references: vec![],
///     infos: vec![CapInfoOut {
///         language: "en".into(), categories: vec!["Infra"], event: "Water outage".into(),
///         response_type: None, urgency: Urgency::Immediate, severity: CapSeverity::Moderate,
///         certainty: Certainty::Observed, expires: None, sender_name: None,
///         headline: Some("burst main".into()), description: None, instruction: None,
///         web: None, parameters: vec![("outagecast:kind".into(), "water".into())],
///         area_desc: "Kaivokatu".into(),
///     }],
/// };
/// let xml = cap_out::write(&message, &cap_out::cap_shapes(&area));
/// let back = cap::parse(&xml, "cap").unwrap();
/// assert_eq!(back.area(|_| None).unwrap(), area);
/// assert_eq!(back.sent, message.sent);
/// ```
pub fn write(message: &CapMessage, shapes: &CapShapes) -> String {
    match write_alert(message, shapes) {
        Ok(xml) => xml,
        // Writing into memory does not fail.
        Err(e) => unreachable!("writing CAP into memory failed: {e}"),
    }
}

fn write_alert(m: &CapMessage, shapes: &CapShapes) -> std::io::Result<String> {
    let mut w = Out(Writer::new_with_indent(Vec::with_capacity(4096), b' ', 2));
    w.0.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut alert = BytesStart::new("alert");
    alert.push_attribute(("xmlns", CAP_NAMESPACE));
    w.0.write_event(Event::Start(alert))?;
    w.text("identifier", &m.identifier)?;
    w.text("sender", &m.sender)?;
    w.text("sent", &cap_time(m.sent))?;
    w.text("status", m.status.as_str())?;
    w.text("msgType", m.msg_type.as_str())?;
    w.text("scope", "Public")?;
    w.opt("note", m.note.as_deref())?;
    if !m.references.is_empty() {
        let refs: Vec<String> = m
            .references
            .iter()
            .map(|r| format!("{},{},{}", r.sender, r.identifier, r.sent))
            .collect();
        w.text("references", &refs.join(" "))?;
    }
    for info in &m.infos {
        w.open("info")?;
        w.text("language", &info.language)?;
        for c in &info.categories {
            w.text("category", c)?;
        }
        w.text("event", &info.event)?;
        w.opt("responseType", info.response_type)?;
        w.text("urgency", info.urgency.as_str())?;
        w.text("severity", info.severity.as_str())?;
        w.text("certainty", info.certainty.as_str())?;
        w.opt("expires", info.expires.map(cap_time).as_deref())?;
        w.opt("senderName", info.sender_name.as_deref())?;
        w.opt("headline", info.headline.as_deref())?;
        w.opt("description", info.description.as_deref())?;
        w.opt("instruction", info.instruction.as_deref())?;
        w.opt("web", info.web.as_deref())?;
        for (name, value) in &info.parameters {
            w.open("parameter")?;
            w.text("valueName", name)?;
            w.text("value", value)?;
            w.close("parameter")?;
        }
        w.open("area")?;
        let desc = if shapes.notes.is_empty() {
            info.area_desc.clone()
        } else {
            format!("{} ({})", info.area_desc, shapes.notes.join("; "))
        };
        w.text("areaDesc", &desc)?;
        for p in &shapes.polygons {
            w.text("polygon", p)?;
        }
        for c in &shapes.circles {
            w.text("circle", c)?;
        }
        w.close("area")?;
        w.close("info")?;
    }
    w.close("alert")?;
    String::from_utf8(w.0.into_inner()).map_err(std::io::Error::other)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::area::{Corridor, LonLat, PolygonArea};

    #[test]
    fn corridor_capsules_hold_the_buffer_and_little_more() {
        let line = LineString::from(vec![(24.93, 60.17), (24.95, 60.171), (24.96, 60.18)]);
        let corridor = Corridor::new(line, 50.0).unwrap();
        let area = Area::Corridor(corridor.clone());
        let shapes = cap_shapes(&area);
        assert_eq!(shapes.polygons.len(), 2);
        let parts: Vec<Area> = shapes
            .polygons
            .iter()
            .map(|p| Area::Polygon(crate::cap::polygon(p, "p").unwrap()))
            .collect();
        let union = Area::union(parts).unwrap();
        // A grid around the line: inside the corridor → inside the capsules; and the capsules
        // reach at most a few metres past the buffer.
        let mut inside = 0;
        for i in 0..200 {
            for j in 0..200 {
                let p = LonLat::parse(
                    24.928 + 0.034 * i as f64 / 200.0,
                    60.168 + 0.014 * j as f64 / 200.0,
                )
                .unwrap();
                if area.contains(p) {
                    inside += 1;
                    assert!(union.contains(p), "{p:?}");
                }
                if union.contains(p) {
                    let wider = Corridor::new(corridor.line().clone(), 55.0).unwrap();
                    assert!(wider.contains(p), "{p:?} far outside");
                }
            }
        }
        assert!(inside > 100, "{inside}");
    }

    #[test]
    fn big_rings_are_simplified_and_holes_noted() {
        let n = 5000;
        let mut ring: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let t = std::f64::consts::TAU * i as f64 / n as f64;
                let r = 0.01 * (1.0 + 0.05 * (7.0 * t).sin());
                [24.9 + r * t.cos() * 2.0, 60.2 + r * t.sin()]
            })
            .collect();
        ring.push(ring[0]);
        let poly: PolygonArea = outagecast_core::area::polygon_from_ring(&ring).unwrap();
        let shapes = cap_shapes(&Area::Polygon(poly));
        assert_eq!(shapes.polygons.len(), 1);
        let pairs = shapes.polygons[0].split(' ').count();
        assert!((4..=MAX_CAP_POINTS).contains(&pairs), "{pairs}");
        assert!(crate::cap::polygon(&shapes.polygons[0], "p").is_ok());
        assert_eq!(shapes.notes.len(), 1, "{:?}", shapes.notes);

        let with_hole = geo::MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (24.0, 60.0),
                (25.0, 60.0),
                (25.0, 61.0),
                (24.0, 61.0),
                (24.0, 60.0),
            ]),
            vec![LineString::from(vec![
                (24.4, 60.4),
                (24.6, 60.4),
                (24.6, 60.6),
                (24.4, 60.6),
                (24.4, 60.4),
            ])],
        )]);
        let shapes = cap_shapes(&Area::Polygon(PolygonArea::new(with_hole).unwrap()));
        assert!(shapes.notes[0].contains("1 hole"), "{:?}", shapes.notes);
    }

    #[test]
    fn times_are_in_the_schema_form() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T13:00:00.123+02:00").unwrap();
        let text = cap_time(t.with_timezone(&Utc));
        assert_eq!(text, "2026-11-25T11:00:00-00:00");
        assert!(DateTime::parse_from_rfc3339(&text).is_ok());
    }
}
