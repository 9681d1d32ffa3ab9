//! The network model from GeoJSON (RFC 7946, longitude first), and the services CSV.
//!
//! | feature | geometry | properties |
//! |---|---|---|
//! | node | `Point` | `id`, `kind`: `junction`, `reservoir`, `tank` (power: `substation`) |
//! | link | `LineString` | `id`, `kind`: `pipe`, `pump` (power: `section`), `from`, `to` (node ids) |
//! | isolation device | `Point` | `id`, `kind`: `valve` (power: `switch`, `fuse`), `pipe` (or `section`, `link`), `node` |
//!
//! Ids may be strings or integers. This module checks each feature on its own (shape, kinds,
//! coordinates) and names it by its place in the file; the references between features
//! (unknown nodes, a valve on a pipe that does not touch its node, duplicate ids, no source)
//! are checked by `outagecast_network::Network::new`, which names the feature by its id.

use std::collections::HashMap;

use geojson::{GeoJson, GeometryValue, JsonObject, Position};
use outagecast_core::area::LonLat;
use outagecast_network::{DeviceInput, Kind, LinkInput, NetworkInput, NodeInput};
use serde_json::Value;

use crate::error::{IngestError, Result, core_within};

/// Largest network file accepted: a 100,000-pipe model with drawn lines is about 40 MB.
pub const MAX_NETWORK_BYTES: usize = 256 * 1024 * 1024;

/// Reads a network model from GeoJSON text. All or nothing: the first bad feature refuses the
/// file, naming it (`NET.geojson: features[12] (pipe "P-9"): ...`).
pub fn network_from_geojson(text: &str, field: &str) -> Result<NetworkInput> {
    if text.len() > MAX_NETWORK_BYTES {
        return Err(IngestError::TooLarge {
            field: field.to_string(),
            problem: format!(
                "is {} bytes, more than the {MAX_NETWORK_BYTES}-byte limit for a network model",
                text.len()
            ),
        });
    }
    let gj: GeoJson = serde_json::from_str(text).map_err(|e| {
        IngestError::invalid(
            field,
            format!(
                "is not a GeoJSON FeatureCollection at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let GeoJson::FeatureCollection(fc) = gj else {
        return Err(IngestError::invalid(
            field,
            "is not a FeatureCollection; give one feature per node, pipe and valve",
        ));
    };
    let mut input = NetworkInput::default();
    for (i, f) in fc.features.into_iter().enumerate() {
        let props = f.properties.unwrap_or_default();
        let here = |extra: &str| format!("{field}: features[{i}]{extra}");
        let id = id_property(&props, "id").map_err(|p| IngestError::invalid(here(""), p))?;
        let kind_text = match props.get("kind") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(IngestError::invalid(
                    here(&format!(" ({id:?})")),
                    format!("has no \"kind\"; give one of {}", Kind::SPELLINGS),
                ));
            }
        };
        let Some(kind) = Kind::parse(&kind_text) else {
            return Err(IngestError::invalid(
                here(&format!(" ({id:?})")),
                format!("has kind {kind_text:?}; give one of {}", Kind::SPELLINGS),
            ));
        };
        let name = here(&format!(
            " ({} {id:?})",
            kind_text.trim().to_ascii_lowercase()
        ));
        let prop = |key: &str| id_property(&props, key).map_err(|p| IngestError::invalid(&name, p));
        let geometry = f.geometry.map(|g| g.value);
        match kind {
            Kind::Node(kind) => {
                let Some(GeometryValue::Point { coordinates }) = geometry else {
                    return Err(IngestError::invalid(
                        &name,
                        "is a node; give it a Point geometry",
                    ));
                };
                let position = lon_lat(&coordinates, &name)?;
                input.nodes.push(NodeInput { id, kind, position });
            }
            Kind::Link(kind) => {
                let Some(GeometryValue::LineString { coordinates }) = geometry else {
                    return Err(IngestError::invalid(
                        &name,
                        "is a link; give it a LineString geometry from its \"from\" node to its \"to\" node",
                    ));
                };
                let path = coordinates
                    .iter()
                    .map(|p| lon_lat(p, &name))
                    .collect::<Result<Vec<_>>>()?;
                input.links.push(LinkInput {
                    id,
                    kind,
                    from: prop("from")?,
                    to: prop("to")?,
                    path,
                });
            }
            Kind::Device(kind) => {
                let position = match geometry {
                    Some(GeometryValue::Point { coordinates }) => {
                        Some(lon_lat(&coordinates, &name)?)
                    }
                    None => None,
                    Some(_) => {
                        return Err(IngestError::invalid(
                            &name,
                            "is an isolation device; give it a Point geometry (or none: it is placed at its node)",
                        ));
                    }
                };
                let link = ["pipe", "section", "link"]
                    .into_iter()
                    .find(|k| props.contains_key(*k))
                    .map(prop)
                    .unwrap_or_else(|| {
                        Err(IngestError::invalid(
                            &name,
                            "has no \"pipe\"; give the id of the pipe (power: \"section\") it sits on",
                        ))
                    })?;
                input.devices.push(DeviceInput {
                    id,
                    kind,
                    link,
                    node: prop("node")?,
                    position,
                });
            }
        }
    }
    Ok(input)
}

/// An id-like property: a non-empty string or an integer.
fn id_property(props: &JsonObject, key: &str) -> std::result::Result<String, String> {
    match props.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(format!(
            "has {key:?} {other}; give a non-empty string or an integer"
        )),
        None => Err(format!("has no {key:?}; give it as a string or an integer")),
    }
}

fn lon_lat(p: &Position, name: &str) -> Result<LonLat> {
    match p.as_slice() {
        [lon, lat, ..] => LonLat::parse(*lon, *lat).map_err(|e| core_within(e, name)),
        _ => Err(IngestError::invalid(
            name,
            "has a position with fewer than 2 numbers; give [lon, lat]",
        )),
    }
}

/// Header of the services CSV.
pub const SERVICES_HEADER: &str = "account_id,pipe_id";

/// Reads the services CSV (`account_id,pipe_id`): which link feeds each account. An account
/// given twice is refused (naming both lines); ids are checked against the network and the
/// customers by the caller.
pub fn services_from_csv(text: &str, field: &str) -> Result<Vec<(String, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| IngestError::invalid(field, format!("cannot be read as CSV: {e}")))?
        .clone();
    let columns: Vec<&str> = header.iter().collect();
    if columns != ["account_id", "pipe_id"] {
        return Err(IngestError::invalid(
            field,
            format!(
                "has the header {:?}; give the header {SERVICES_HEADER}",
                columns.join(",")
            ),
        ));
    }
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record
            .map_err(|e| IngestError::invalid(field, format!("cannot be read as CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let at = format!("{field}: line {line}");
        let (Some(account), Some(pipe)) = (record.get(0), record.get(1)) else {
            return Err(IngestError::invalid(
                at,
                "needs two columns: account_id,pipe_id",
            ));
        };
        if account.is_empty() || pipe.is_empty() {
            return Err(IngestError::invalid(
                at,
                "has an empty account_id or pipe_id",
            ));
        }
        if let Some(first) = seen.insert(account.to_string(), line) {
            return Err(IngestError::invalid(
                at,
                format!(
                    "gives account {account} again (first on line {first}); give each account one pipe"
                ),
            ));
        }
        rows.push((account.to_string(), pipe.to_string()));
    }
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use outagecast_network::{LinkKind, Network, NodeKind};

    use super::*;

    const NET: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"id":"R1","kind":"reservoir"},"geometry":{"type":"Point","coordinates":[24.90,60.20]}},
      {"type":"Feature","properties":{"id":7,"kind":"Junction"},"geometry":{"type":"Point","coordinates":[24.91,60.20]}},
      {"type":"Feature","properties":{"id":"P-1","kind":"pipe","from":"R1","to":7},"geometry":{"type":"LineString","coordinates":[[24.90,60.20],[24.905,60.201],[24.91,60.20]]}},
      {"type":"Feature","properties":{"id":"V1","kind":"valve","pipe":"P-1","node":"R1"},"geometry":{"type":"Point","coordinates":[24.9001,60.20]}},
      {"type":"Feature","properties":{"id":"V2","kind":"valve","pipe":"P-1","node":"7"},"geometry":null}
    ]}"#;

    #[test]
    fn a_network_is_read_from_its_features() {
        let input = network_from_geojson(NET, "net.geojson").unwrap();
        assert_eq!(input.nodes[1].id, "7");
        assert_eq!(input.nodes[0].kind, NodeKind::Reservoir);
        assert_eq!(input.links[0].kind, LinkKind::Pipe);
        assert_eq!(input.links[0].to, "7");
        assert_eq!(input.links[0].path.len(), 3);
        assert_eq!(input.devices[1].position, None);
        let net = Network::new(input).unwrap();
        assert_eq!(net.devices()[1].position(), net.nodes()[1].position());
    }

    fn refused(from: &str, to: &str) -> String {
        network_from_geojson(&NET.replacen(from, to, 1), "net.geojson")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_features_are_named_by_their_place() {
        let e = refused(r#""kind":"pipe""#, r#""kind":"main""#);
        assert!(
            e.starts_with(
                "net.geojson: features[2] (\"P-1\"): has kind \"main\"; give one of junction"
            ),
            "{e}"
        );
        let e = refused(r#""from":"R1","#, "");
        assert!(
            e.starts_with("net.geojson: features[2] (pipe \"P-1\"): has no \"from\""),
            "{e}"
        );
        let e = refused(r#""pipe":"P-1","node":"R1""#, r#""node":"R1""#);
        assert!(
            e.contains("features[3] (valve \"V1\"): has no \"pipe\""),
            "{e}"
        );
        let e = refused(r#"[24.91,60.20]}}"#, r#"[60.20,124.91]}}"#);
        assert!(e.contains("features[1] (junction \"7\")"), "{e}");
        assert!(e.contains("latitude"), "{e}");
        let e = refused(
            r#""type":"LineString","coordinates":[[24.90,60.20],[24.905,60.201],[24.91,60.20]]"#,
            r#""type":"Point","coordinates":[24.9,60.2]"#,
        );
        assert!(e.contains("is a link; give it a LineString"), "{e}");
        let e = refused(
            r#"{"type":"FeatureCollection""#,
            r#"{"type":"FeatureCollection",,"#,
        );
        assert!(
            e.starts_with("net.geojson: is not a GeoJSON FeatureCollection at line 1, column"),
            "{e}"
        );
        let e = refused(r#""id":"R1","#, r#""id":"","#);
        assert!(e.contains("features[0]: has \"id\" \"\""), "{e}");
    }

    #[test]
    fn the_services_csv_maps_accounts_to_pipes() {
        let rows = services_from_csv("account_id,pipe_id\nA1,P-1\n A2 , P-2 \n", "s.csv").unwrap();
        assert_eq!(
            rows,
            [("A1".into(), "P-1".into()), ("A2".into(), "P-2".into())]
        );
        let e = services_from_csv("account,pipe\n", "s.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("give the header account_id,pipe_id"), "{e}");
        let e = services_from_csv("account_id,pipe_id\nA1,P-1\nA1,P-2\n", "s.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.csv: line 3: gives account A1 again (first on line 2)"),
            "{e}"
        );
    }
}
