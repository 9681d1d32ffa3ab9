//! The network model from an EPANET `.inp` file (the text every hydraulic modelling package
//! exports), and the isolation-valve layer that goes with it.
//!
//! Read: `[JUNCTIONS]` (junctions), `[RESERVOIRS]` and `[TANKS]` (sources), `[PIPES]`,
//! `[PUMPS]`, `[VALVES]` (links), `[COORDINATES]` (one per node, required) and `[VERTICES]`
//! (a link's interior points, in order). Every other section (`[DEMANDS]`, `[CONTROLS]`,
//! `[OPTIONS]`, ...) is skipped; `[END]` ends the file. Section names are case-insensitive,
//! fields are separated by spaces or tabs, and `;` starts a comment.
//!
//! Two choices, both as WNTR makes them (its `valve_segments` works on `wn.to_graph()`, which
//! holds every link whatever its status):
//!
//! * EPANET's `[VALVES]` are control valves (PRV, PSV, FCV, TCV, ...), which regulate flow
//!   rather than isolate: for connectivity they are links like pipes
//!   ([`LinkKind::ControlValve`]). The isolation valves an operator closes are not in an
//!   `.inp` at all; they come as a separate layer ([`valves_from_csv`], or valve features
//!   read by [`valves_from_geojson`]).
//! * A pipe whose status is `Closed` (or `CV`) still connects, and so does a link that
//!   `[STATUS]` closes. Those statuses are the initial settings of a simulation, which
//!   `[CONTROLS]` and `[RULES]` change (Net3's pipe 330 is a bypass that opens when the pump
//!   stops), not valves shut for good; a trace that dropped such a pipe would miss the
//!   customers it feeds once it opens.
//!
//! Ids are compared as written (case-sensitive), as WNTR reads them. Coordinates are lon/lat
//! unless a [`Crs`] is given (`--crs EPSG:NNNN`); without one, a coordinate outside lon/lat's
//! range is refused with the advice to pass `--crs`. Errors name
//! the file, the section and the line, and say what to fix.

use std::collections::HashMap;

use outagecast_core::area::LonLat;
use outagecast_network::{
    DeviceInput, DeviceKind, LinkInput, LinkKind, NetworkInput, NodeInput, NodeKind,
};

use crate::crs::Crs;
use crate::error::{IngestError, Result, core_within};
use crate::network::{MAX_NETWORK_BYTES, network_from_geojson};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Junctions,
    Reservoirs,
    Tanks,
    Pipes,
    Pumps,
    Valves,
    Coordinates,
    Vertices,
    /// A section this import does not need.
    Other,
}

impl Section {
    fn parse(name: &str) -> Self {
        match name.trim().to_ascii_uppercase().as_str() {
            "JUNCTIONS" => Section::Junctions,
            "RESERVOIRS" => Section::Reservoirs,
            "TANKS" => Section::Tanks,
            "PIPES" => Section::Pipes,
            "PUMPS" => Section::Pumps,
            "VALVES" => Section::Valves,
            "COORDINATES" => Section::Coordinates,
            "VERTICES" => Section::Vertices,
            _ => Section::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Section::Junctions => "[JUNCTIONS]",
            Section::Reservoirs => "[RESERVOIRS]",
            Section::Tanks => "[TANKS]",
            Section::Pipes => "[PIPES]",
            Section::Pumps => "[PUMPS]",
            Section::Valves => "[VALVES]",
            Section::Coordinates => "[COORDINATES]",
            Section::Vertices => "[VERTICES]",
            Section::Other => "this section",
        }
    }
}

/// Where a record is: its section and 1-based line.
#[derive(Debug, Clone, Copy)]
struct At {
    section: Section,
    line: usize,
}

struct RawNode {
    id: String,
    kind: NodeKind,
    at: At,
}

struct RawLink {
    id: String,
    kind: LinkKind,
    from: String,
    to: String,
    at: At,
}

/// A model's coordinates as written, before any transformation.
struct RawPoint {
    x: f64,
    y: f64,
    at: At,
}

/// Reads a network model from the text of an EPANET `.inp` file named `field`. Without
/// `crs` the coordinates must be longitude, latitude in degrees. All or nothing: the first
/// problem refuses the file (`NET.inp: [PIPES] line 120: ...`). The result has no isolation
/// devices; add the valve layer's.
pub fn network_from_inp(text: &str, field: &str, crs: Option<&Crs>) -> Result<NetworkInput> {
    if text.len() > MAX_NETWORK_BYTES {
        return Err(IngestError::too_large(
            field,
            format!(
                "is {} bytes, more than the {MAX_NETWORK_BYTES}-byte limit for a network model",
                text.len()
            ),
        ));
    }
    let here = |at: At| format!("{field}: {} line {}", at.section.name(), at.line);
    let mut section: Option<Section> = None;
    let mut nodes: Vec<RawNode> = Vec::new();
    let mut links: Vec<RawLink> = Vec::new();
    let mut coordinates: HashMap<String, RawPoint> = HashMap::new();
    let mut vertices: HashMap<String, Vec<RawPoint>> = HashMap::new();
    let mut saw_coordinates = false;
    // A byte-order mark, as some Windows tools write one, is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split(';').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        if let Some(rest) = content.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(IngestError::invalid(
                    format!("{field}: line {line}"),
                    format!(
                        "{content:?} opens a section name without closing it; write it as [NAME]"
                    ),
                ));
            };
            if name.trim().eq_ignore_ascii_case("END") {
                break;
            }
            let s = Section::parse(name);
            saw_coordinates |= s == Section::Coordinates;
            section = Some(s);
            continue;
        }
        let Some(s) = section else {
            return Err(IngestError::invalid(
                format!("{field}: line {line}"),
                "comes before any [SECTION] header; an EPANET file starts with one such as [TITLE] or [JUNCTIONS]",
            ));
        };
        let at = At { section: s, line };
        let fields: Vec<&str> = content.split_whitespace().collect();
        let need = |n: usize, layout: &str| {
            if fields.len() < n {
                Err(IngestError::invalid(
                    here(at),
                    format!("has {} field(s); give at least {layout}", fields.len()),
                ))
            } else {
                Ok(())
            }
        };
        match s {
            Section::Other => {}
            Section::Junctions | Section::Reservoirs | Section::Tanks => {
                let kind = match s {
                    Section::Junctions => NodeKind::Junction,
                    Section::Reservoirs => NodeKind::Reservoir,
                    _ => NodeKind::Tank,
                };
                nodes.push(RawNode {
                    id: fields[0].to_string(),
                    kind,
                    at,
                });
            }
            Section::Pipes | Section::Pumps | Section::Valves => {
                need(3, "ID Node1 Node2")?;
                let kind = match s {
                    Section::Pipes => LinkKind::Pipe,
                    Section::Pumps => LinkKind::Pump,
                    // Control valves are links like pipes for connectivity (module docs).
                    _ => LinkKind::ControlValve,
                };
                if s == Section::Pipes {
                    check_pipe_fields(&fields, &here(at))?;
                }
                links.push(RawLink {
                    id: fields[0].to_string(),
                    kind,
                    from: fields[1].to_string(),
                    to: fields[2].to_string(),
                    at,
                });
            }
            Section::Coordinates | Section::Vertices => {
                let what = if s == Section::Coordinates {
                    "Node"
                } else {
                    "Link"
                };
                need(3, &format!("{what} X-Coord Y-Coord"))?;
                let x = number(fields[1], 2, "X-Coord", &here(at))?;
                let y = number(fields[2], 3, "Y-Coord", &here(at))?;
                let point = RawPoint { x, y, at };
                let id = fields[0].to_string();
                if s == Section::Coordinates {
                    if let Some(first) = coordinates.get(&id) {
                        return Err(IngestError::invalid(
                            here(at),
                            format!(
                                "gives node {id:?} coordinates again (first on line {}); give each node one line",
                                first.at.line
                            ),
                        ));
                    }
                    coordinates.insert(id, point);
                } else {
                    vertices.entry(id).or_default().push(point);
                }
            }
        }
    }

    // References, now that every section is read (EPANET allows any order).
    let mut node_at: HashMap<&str, (usize, At)> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some((_, first)) = node_at.insert(&n.id, (i, n.at)) {
            return Err(IngestError::invalid(
                here(n.at),
                format!(
                    "gives node {:?} again (first in {} line {}); every junction, reservoir and tank id must be unique",
                    n.id,
                    first.section.name(),
                    first.line
                ),
            ));
        }
    }
    if !nodes.iter().any(|n| n.kind.is_source()) {
        return Err(IngestError::invalid(
            field,
            "has no reservoir or tank, so no customer could be fed; add the sources under [RESERVOIRS] or [TANKS]",
        ));
    }
    let mut link_at: HashMap<&str, At> = HashMap::new();
    for l in &links {
        if let Some(first) = link_at.insert(&l.id, l.at) {
            return Err(IngestError::invalid(
                here(l.at),
                format!(
                    "gives link {:?} again (first in {} line {}); every pipe, pump and valve id must be unique",
                    l.id,
                    first.section.name(),
                    first.line
                ),
            ));
        }
        for end in [&l.from, &l.to] {
            if !node_at.contains_key(end.as_str()) {
                return Err(IngestError::invalid(
                    here(l.at),
                    format!(
                        "{} {:?} joins node {end:?}, which is in none of [JUNCTIONS], [RESERVOIRS] and [TANKS]; add the node or correct the id",
                        l.kind, l.id
                    ),
                ));
            }
        }
        if l.from == l.to {
            return Err(IngestError::invalid(
                here(l.at),
                format!(
                    "{} {:?} starts and ends at node {:?}; a link must join two different nodes",
                    l.kind, l.id, l.from
                ),
            ));
        }
    }
    for (id, p) in &coordinates {
        if !node_at.contains_key(id.as_str()) {
            return Err(IngestError::invalid(
                here(p.at),
                format!(
                    "places node {id:?}, which is in none of [JUNCTIONS], [RESERVOIRS] and [TANKS]; correct the id or remove the line"
                ),
            ));
        }
    }
    for (id, points) in &vertices {
        if !link_at.contains_key(id.as_str()) {
            return Err(IngestError::invalid(
                here(points[0].at),
                format!(
                    "bends link {id:?}, which is in none of [PIPES], [PUMPS] and [VALVES]; correct the id or remove the line"
                ),
            ));
        }
    }

    let place = |p: &RawPoint| to_lon_lat(p, crs, &here(p.at));
    let mut input = NetworkInput::default();
    let mut positions: HashMap<&str, LonLat> = HashMap::with_capacity(nodes.len());
    for n in &nodes {
        let Some(p) = coordinates.get(&n.id) else {
            let hint = if saw_coordinates {
                "add a line `ID X-Coord Y-Coord` for it under [COORDINATES]"
            } else {
                "the file has no [COORDINATES] section; export the model with its node coordinates"
            };
            return Err(IngestError::invalid(
                here(n.at),
                format!("{} {:?} has no coordinates; {hint}", n.kind, n.id),
            ));
        };
        let position = place(p)?;
        positions.insert(&n.id, position);
        input.nodes.push(NodeInput {
            id: n.id.clone(),
            kind: n.kind,
            position,
        });
    }
    for l in &links {
        // Every end is a known node with a position by now.
        let (Some(&from), Some(&to)) =
            (positions.get(l.from.as_str()), positions.get(l.to.as_str()))
        else {
            continue;
        };
        let mut path = vec![from];
        for v in vertices.get(&l.id).map(Vec::as_slice).unwrap_or_default() {
            path.push(place(v)?);
        }
        path.push(to);
        input.links.push(LinkInput {
            id: l.id.clone(),
            kind: l.kind,
            from: l.from.clone(),
            to: l.to.clone(),
            path,
        });
    }
    Ok(input)
}

/// `[PIPES]`: ID Node1 Node2 Length Diameter Roughness MinorLoss Status, the numbers checked
/// where given, the status one of Open, Closed, CV (EPANET lets the status stand in the
/// minor loss's place).
fn check_pipe_fields(fields: &[&str], at: &str) -> Result<()> {
    const NAMES: [&str; 4] = ["Length", "Diameter", "Roughness", "MinorLoss"];
    for (i, value) in fields.iter().enumerate().skip(3) {
        let is_status = ["open", "closed", "cv"]
            .iter()
            .any(|s| value.eq_ignore_ascii_case(s));
        if is_status && i >= 6 {
            if i + 1 < fields.len() {
                return Err(IngestError::invalid(
                    at,
                    format!(
                        "has {:?} after the status {value:?}; the status is the last field",
                        fields[i + 1]
                    ),
                ));
            }
            break;
        }
        if i >= 7 {
            return Err(IngestError::invalid(
                at,
                format!("field 8 (Status) is {value:?}; give Open, Closed or CV"),
            ));
        }
        number(value, i + 1, NAMES[i - 3], at)?;
    }
    Ok(())
}

/// A number in field `column` (1-based) called `name`.
fn number(text: &str, column: usize, name: &str, at: &str) -> Result<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            IngestError::invalid(
                at,
                format!("field {column} ({name}) is {text:?}, which is not a number; write it as e.g. 1234.5"),
            )
        })
}

fn to_lon_lat(p: &RawPoint, crs: Option<&Crs>, at: &str) -> Result<LonLat> {
    let (lon, lat) = match crs {
        Some(crs) => crs.to_lon_lat(p.x, p.y).ok_or_else(|| {
            IngestError::invalid(
                at,
                format!(
                    "({}, {}) is outside what {crs} can take to lon/lat; check that --crs is the model's coordinate system",
                    p.x, p.y
                ),
            )
        })?,
        None => {
            if p.x.abs() > 180.0 || p.y.abs() > 90.0 {
                return Err(IngestError::invalid(
                    at,
                    format!(
                        "({}, {}) is not a longitude and latitude; the model's coordinates are projected: pass --crs EPSG:NNNN with its coordinate system",
                        p.x, p.y
                    ),
                ));
            }
            (p.x, p.y)
        }
    };
    LonLat::parse(lon, lat).map_err(|e| core_within(e, at))
}

/// Header of the isolation-valve CSV.
pub const VALVES_HEADER: &str = "id,pipe,node";

/// Reads the isolation-valve layer as CSV `id,pipe,node`: valve `id` sits on link `pipe`
/// next to node `node` (one of its ends), placed at that node. An id given twice is refused
/// naming both lines; the pipes and nodes are checked against the model by `Network::new`.
pub fn valves_from_csv(text: &str, field: &str) -> Result<Vec<DeviceInput>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| IngestError::invalid(field, format!("cannot be read as CSV: {e}")))?
        .clone();
    let columns: Vec<&str> = header.iter().collect();
    if columns != ["id", "pipe", "node"] {
        return Err(IngestError::invalid(
            field,
            format!(
                "has the header {:?}; give the header {VALVES_HEADER}",
                columns.join(",")
            ),
        ));
    }
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut valves = Vec::new();
    for record in reader.records() {
        let record = record
            .map_err(|e| IngestError::invalid(field, format!("cannot be read as CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let at = format!("{field}: line {line}");
        let (Some(id), Some(pipe), Some(node)) = (record.get(0), record.get(1), record.get(2))
        else {
            return Err(IngestError::invalid(
                at,
                "needs three columns: id,pipe,node",
            ));
        };
        if id.is_empty() || pipe.is_empty() || node.is_empty() {
            return Err(IngestError::invalid(
                at,
                "has an empty id, pipe or node; give all three",
            ));
        }
        if let Some(first) = seen.insert(id.to_string(), line) {
            return Err(IngestError::invalid(
                at,
                format!(
                    "gives valve {id} again (first on line {first}); every valve id must be unique"
                ),
            ));
        }
        valves.push(DeviceInput {
            id: id.to_string(),
            kind: DeviceKind::Valve,
            link: pipe.to_string(),
            node: node.to_string(),
            position: None,
        });
    }
    Ok(valves)
}

/// Reads the isolation-valve layer as a GeoJSON FeatureCollection of valve features, the
/// same as the network GeoJSON's (`"kind": "valve"`, `"pipe"`, `"node"`, a Point in lon/lat
/// or no geometry). Nodes and links are refused: the model comes from the `.inp`.
pub fn valves_from_geojson(text: &str, field: &str) -> Result<Vec<DeviceInput>> {
    let input = network_from_geojson(text, field)?;
    if let Some(n) = input.nodes.first() {
        return Err(IngestError::invalid(
            field,
            format!(
                "holds {} {:?}; the valve layer holds only valve features (the model's nodes and links come from the .inp)",
                n.kind, n.id
            ),
        ));
    }
    if let Some(l) = input.links.first() {
        return Err(IngestError::invalid(
            field,
            format!(
                "holds {} {:?}; the valve layer holds only valve features (the model's nodes and links come from the .inp)",
                l.kind, l.id
            ),
        ));
    }
    Ok(input.devices)
}

/// Adds the valve layer read from `field` to a model, checking each valve against it first so
/// that a wrong pipe or node is reported under the valve file's name (not the model's): the
/// pipe must be a link of the model and the node one of that link's ends.
pub fn add_valves(input: &mut NetworkInput, valves: Vec<DeviceInput>, field: &str) -> Result<()> {
    let links: HashMap<&str, &LinkInput> = input.links.iter().map(|l| (l.id.as_str(), l)).collect();
    for v in &valves {
        let Some(link) = links.get(v.link.as_str()) else {
            return Err(IngestError::invalid(
                field,
                format!(
                    "valve {} sits on pipe {:?}, which is in none of the model's [PIPES], [PUMPS] and [VALVES]; correct its pipe",
                    v.id, v.link
                ),
            ));
        };
        if v.node != link.from && v.node != link.to {
            return Err(IngestError::invalid(
                field,
                format!(
                    "valve {} sits on {} {} next to node {:?}, but that {} joins {} and {}; give one of its end nodes",
                    v.id, link.kind, link.id, v.node, link.kind, link.from, link.to
                ),
            ));
        }
    }
    input.devices.extend(valves);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use outagecast_network::Network;

    use super::*;

    /// R1 —P1— J1 —P2 (bent)— J2, a pump PU1 from J2 to T1 and a PRV V9 from J1 to J2; mixed
    /// case, tabs, comments.
    const INP: &str = "[TITLE]\n a test ; model\n\n[junctions]\n;ID\tElev\tDemand\n J1\t10\t1 ; first\n J2\t12\t0\n\n[RESERVOIRS]\n R1\t50\n[Tanks]\n T1 20 1 0 5 10 0\n\n[PIPES]\n P1\tR1\tJ1\t100\t300\t100\t0\tOpen ;\n P2 J1 J2 120 300 100 Closed\n[PUMPS]\n PU1 J2 T1 HEAD 1\n[VALVES]\n V9 J1 J2 200 PRV 40 0\n[CONTROLS]\n LINK P2 OPEN IF NODE T1 BELOW 1\n[COORDINATES]\n J1 24.91 60.20\n J2\t24.92\t60.20\n R1 24.90 60.20\n T1 24.93 60.20\n[VERTICES]\n P2 24.913 60.201\n P2 24.917 60.201\n[END]\n trailing text is not read [PIPES]\n";

    fn refused(from: &str, to: &str) -> String {
        assert!(INP.contains(from), "{from}");
        network_from_inp(&INP.replacen(from, to, 1), "net.inp", None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_model_is_read_from_its_sections() {
        let input = network_from_inp(INP, "net.inp", None).unwrap();
        let with_bom = format!("\u{feff}{}", INP.replace('\n', "\r\n"));
        assert_eq!(network_from_inp(&with_bom, "net.inp", None).unwrap(), input);
        let ids: Vec<(&str, NodeKind)> = input
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.kind))
            .collect();
        assert_eq!(
            ids,
            [
                ("J1", NodeKind::Junction),
                ("J2", NodeKind::Junction),
                ("R1", NodeKind::Reservoir),
                ("T1", NodeKind::Tank)
            ]
        );
        let links: Vec<(&str, LinkKind, &str, &str)> = input
            .links
            .iter()
            .map(|l| (l.id.as_str(), l.kind, l.from.as_str(), l.to.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("P1", LinkKind::Pipe, "R1", "J1"),
                ("P2", LinkKind::Pipe, "J1", "J2"),
                ("PU1", LinkKind::Pump, "J2", "T1"),
                ("V9", LinkKind::ControlValve, "J1", "J2"),
            ]
        );
        // Vertices are the line's interior points, in order, between the end nodes.
        let p2: Vec<(f64, f64)> = input.links[1]
            .path
            .iter()
            .map(|p| (p.lon(), p.lat()))
            .collect();
        assert_eq!(
            p2,
            [
                (24.91, 60.2),
                (24.913, 60.201),
                (24.917, 60.201),
                (24.92, 60.2)
            ]
        );
        assert_eq!(input.links[0].path.len(), 2);
        assert!(input.devices.is_empty());
        // A closed pipe still connects (module docs): the model builds with it.
        let mut input = input;
        let e = add_valves(
            &mut input.clone(),
            valves_from_csv("id,pipe,node\nA,P2,R1\n", "v.csv").unwrap(),
            "v.csv",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "v.csv: valve A sits on pipe P2 next to node \"R1\", but that pipe joins J1 and J2; give one of its end nodes"
        );
        let e = add_valves(
            &mut input.clone(),
            valves_from_csv("id,pipe,node\nA,P7,J1\n", "v.csv").unwrap(),
            "v.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("v.csv: valve A sits on pipe \"P7\", which is in none of"),
            "{e}"
        );
        let valves = valves_from_csv("id,pipe,node\nA,P2,J1\n B , P2 , J2 \n", "v.csv").unwrap();
        add_valves(&mut input, valves, "v.csv").unwrap();
        let net = Network::new(input).unwrap();
        assert_eq!(net.devices()[1].id(), "B");
        assert_eq!(net.devices()[1].position(), net.nodes()[1].position());
    }

    #[test]
    fn every_problem_names_the_section_line_and_fix() {
        let e = refused(" P2 J1 J2 120", " P2 J1 J9 120");
        assert!(
            e.starts_with("net.inp: [PIPES] line 16: pipe \"P2\" joins node \"J9\", which is in none of [JUNCTIONS], [RESERVOIRS] and [TANKS]"),
            "{e}"
        );
        let e = refused(" PU1 J2", " P1 J2");
        assert!(
            e.starts_with(
                "net.inp: [PUMPS] line 18: gives link \"P1\" again (first in [PIPES] line 15)"
            ),
            "{e}"
        );
        let e = refused(" T1 20", " J2 20");
        assert!(
            e.starts_with(
                "net.inp: [TANKS] line 12: gives node \"J2\" again (first in [JUNCTIONS] line 7)"
            ),
            "{e}"
        );
        let e = refused(" J2\t24.92\t60.20", " J2\t24.92\t60.2O");
        assert!(
            e.starts_with("net.inp: [COORDINATES] line 25: field 3 (Y-Coord) is \"60.2O\", which is not a number"),
            "{e}"
        );
        let e = refused("120 300 100 Closed", "120 3OO 100 Closed");
        assert!(
            e.starts_with(
                "net.inp: [PIPES] line 16: field 5 (Diameter) is \"3OO\", which is not a number"
            ),
            "{e}"
        );
        let e = refused("120 300 100 Closed", "120 300 100 Shut");
        assert!(e.contains("field 7 (MinorLoss) is \"Shut\""), "{e}");
        let e = refused(" J1 24.91 60.20\n", "");
        assert!(
            e.starts_with("net.inp: [JUNCTIONS] line 6: junction \"J1\" has no coordinates; add a line `ID X-Coord Y-Coord` for it under [COORDINATES]"),
            "{e}"
        );
        let e = refused("[COORDINATES]", "[LABELS]");
        assert!(e.contains("the file has no [COORDINATES] section"), "{e}");
        let e = refused(
            "[RESERVOIRS]\n R1\t50\n[Tanks]\n T1 20 1 0 5 10 0\n",
            "[JUNCTIONS]\n R1 50\n T1 20\n",
        );
        assert!(
            e.starts_with("net.inp: has no reservoir or tank, so no customer could be fed; add the sources under [RESERVOIRS] or [TANKS]"),
            "{e}"
        );
        let e = refused(" R1 24.90 60.20", " R1 2490000 6020000");
        assert!(
            e.starts_with("net.inp: [COORDINATES] line 26: (2490000, 6020000) is not a longitude and latitude; the model's coordinates are projected: pass --crs EPSG:NNNN"),
            "{e}"
        );
        let e = refused(" J1 24.91 60.20", " J1 24.91 60.20\n J1 24.91 60.20");
        assert!(
            e.contains(
                "[COORDINATES] line 25: gives node \"J1\" coordinates again (first on line 24)"
            ),
            "{e}"
        );
        let e = refused(" P2 24.913 60.201", " P7 24.913 60.201");
        assert!(
            e.starts_with("net.inp: [VERTICES] line 29: bends link \"P7\""),
            "{e}"
        );
        let e = refused(" T1 24.93 60.20", " T9 24.93 60.20");
        assert!(
            e.starts_with("net.inp: [COORDINATES] line 27: places node \"T9\""),
            "{e}"
        );
        let e = refused(" V9 J1 J2 200 PRV 40 0", " V9 J1");
        assert!(
            e.starts_with(
                "net.inp: [VALVES] line 20: has 2 field(s); give at least ID Node1 Node2"
            ),
            "{e}"
        );
        let e = refused(" V9 J1 J2", " V9 J1 J1");
        assert!(
            e.contains("control_valve \"V9\" starts and ends at node \"J1\""),
            "{e}"
        );
        let e = refused("[TITLE]\n", "");
        assert!(
            e.starts_with("net.inp: line 1: comes before any [SECTION] header"),
            "{e}"
        );
        let e = refused("[PUMPS]", "[PUMPS");
        assert!(
            e.starts_with("net.inp: line 17: \"[PUMPS\" opens a section name"),
            "{e}"
        );
    }

    #[test]
    fn projected_coordinates_go_through_the_crs() {
        let crs = Crs::parse("EPSG:3067", "--crs").unwrap();
        let mut text = INP.to_string();
        let mut expected = Vec::new();
        for (lon, lat) in [
            ("24.91", "60.20"),
            ("24.92", "60.20"),
            ("24.90", "60.20"),
            ("24.93", "60.20"),
        ] {
            let (x, y) = crs
                .from_lon_lat(lon.parse().unwrap(), lat.parse().unwrap())
                .unwrap();
            expected.push((lon.parse::<f64>().unwrap(), lat.parse::<f64>().unwrap()));
            text = text.replacen(&format!("{lon} {lat}"), &format!("{x:.3} {y:.3}"), 1);
            text = text.replacen(&format!("{lon}\t{lat}"), &format!("{x:.3}\t{y:.3}"), 1);
        }
        for (lon, lat) in [("24.913", "60.201"), ("24.917", "60.201")] {
            let (x, y) = crs
                .from_lon_lat(lon.parse().unwrap(), lat.parse().unwrap())
                .unwrap();
            text = text.replacen(&format!("{lon} {lat}"), &format!("{x:.3} {y:.3}"), 1);
        }
        let e = network_from_inp(&text, "net.inp", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --crs EPSG:NNNN"), "{e}");
        let input = network_from_inp(&text, "net.inp", Some(&crs)).unwrap();
        for (n, (lon, lat)) in input.nodes.iter().zip(expected) {
            // Millimetres written, so well within a centimetre (1e-7° is 1.1 cm of latitude).
            assert!(
                (n.position.lon() - lon).abs() < 1e-7,
                "{} {}",
                n.id,
                n.position.lon()
            );
            assert!(
                (n.position.lat() - lat).abs() < 1e-7,
                "{} {}",
                n.id,
                n.position.lat()
            );
        }
        assert_eq!(input.links[1].path.len(), 4);
    }

    #[test]
    fn the_valve_layer_as_csv_or_geojson() {
        let e = valves_from_csv("id,link,node\n", "v.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("give the header id,pipe,node"), "{e}");
        let e = valves_from_csv("id,pipe,node\nA,P1,J1\nA,P2,J2\n", "v.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("v.csv: line 3: gives valve A again (first on line 2)"),
            "{e}"
        );
        let e = valves_from_csv("id,pipe,node\nA,,J1\n", "v.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("v.csv: line 2: has an empty id, pipe or node"),
            "{e}"
        );
        let gj = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"V1","kind":"valve","pipe":"P2","node":"J1"},"geometry":{"type":"Point","coordinates":[24.9101,60.2]}}]}"#;
        let valves = valves_from_geojson(gj, "v.geojson").unwrap();
        assert_eq!(
            (
                valves[0].id.as_str(),
                valves[0].link.as_str(),
                valves[0].node.as_str()
            ),
            ("V1", "P2", "J1")
        );
        assert!(valves[0].position.is_some());
        let e = valves_from_geojson(
            &gj.replace(
                r#""kind":"valve","pipe":"P2","node":"J1""#,
                r#""kind":"junction""#,
            ),
            "v.geojson",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("holds junction \"V1\"; the valve layer holds only valve features"),
            "{e}"
        );
    }

    use proptest::prelude::*;

    proptest::proptest! {
        /// Any mix of section headers, ids, numbers, comments and junk lines is read or
        /// refused with an error, never a panic, with or without a CRS.
        #[test]
        fn any_text_is_read_or_refused(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "[JUNCTIONS]", "[reservoirs]", "[TANKS]", "[PIPES]", "[PUMPS]",
                        "[VALVES]", "[COORDINATES]", "[VERTICES]", "[END]", "[OPTIONS]", "[",
                        ";", "",
                    ]).prop_map(str::to_string),
                    "[ \\t]?[A-C][0-2]( [A-C][0-2])?( [A-C][0-2])?( -?[0-9]{1,8}(\\.[0-9]{0,3})?)?( Closed)?( ;x)?",
                    "-?[0-9e.]{1,12}[ \\t]-?[0-9e.]{1,12}",
                ],
                0..40,
            ),
            projected in proptest::bool::ANY,
        ) {
            let text = lines.join("\n");
            let crs = Crs::parse("EPSG:3067", "--crs").unwrap();
            let _ = network_from_inp(&text, "net.inp", projected.then_some(&crs));
        }
    }
}
