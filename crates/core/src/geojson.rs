//! Areas from GeoJSON text (RFC 7946): a Geometry, a Feature or a FeatureCollection.
//!
//! Rings are checked as written (closed, at least four positions) before `geo` sees them,
//! because `geo` silently closes open rings. Winding order is not checked: RFC 7946 §3.1.6 says
//! parsers should not reject rings that break the right-hand rule.

use geo::{Coord, LineString, MultiPolygon, Polygon};
use geojson::{GeoJson, Geometry, GeometryValue, Position};

use crate::area::{Corridor, LonLat, PolygonArea};
use crate::error::{CoreError, Result};

/// Reads the geometries out of GeoJSON text; errors carry the line and column.
fn geometries(text: &str, field: &str) -> Result<Vec<Geometry>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        CoreError::invalid(
            field,
            format!(
                "is not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let gj: GeoJson = serde_json::from_value(value)
        .map_err(|e| CoreError::invalid(field, format!("is not GeoJSON: {e}")))?;
    let out: Vec<Geometry> = match gj {
        GeoJson::Geometry(g) => vec![g],
        GeoJson::Feature(f) => f.geometry.into_iter().collect(),
        GeoJson::FeatureCollection(fc) => {
            fc.features.into_iter().filter_map(|f| f.geometry).collect()
        }
    };
    if out.is_empty() {
        return Err(CoreError::invalid(field, "holds no geometry"));
    }
    Ok(out)
}

fn coord(p: &Position, at: &str, field: &str) -> Result<Coord<f64>> {
    let s = p.as_slice();
    if s.len() < 2 {
        return Err(CoreError::invalid(
            format!("{field} {at}"),
            "a position needs [longitude, latitude]",
        ));
    }
    let ll = LonLat::parse(s[0], s[1]).map_err(|e| e.within(format!("{field} {at}")))?;
    Ok(Coord {
        x: ll.lon(),
        y: ll.lat(),
    })
}

fn ring(positions: &[Position], at: &str, field: &str) -> Result<LineString<f64>> {
    if positions.len() < 4 {
        return Err(CoreError::invalid(
            format!("{field} {at}"),
            format!(
                "has {} positions; a ring needs at least 4, the last repeating the first",
                positions.len()
            ),
        ));
    }
    let coords = positions
        .iter()
        .enumerate()
        .map(|(i, p)| coord(p, &format!("{at}[{i}]"), field))
        .collect::<Result<Vec<_>>>()?;
    if coords.first() != coords.last() {
        return Err(CoreError::invalid(
            format!("{field} {at}"),
            "is not closed: repeat the first position at the end of the ring",
        ));
    }
    Ok(LineString(coords))
}

fn polygon(rings: &[Vec<Position>], at: &str, field: &str) -> Result<Polygon<f64>> {
    let mut it = rings.iter().enumerate();
    let (_, shell) = it
        .next()
        .ok_or_else(|| CoreError::invalid(format!("{field} {at}"), "has no rings"))?;
    let exterior = ring(shell, &format!("{at}.rings[0]"), field)?;
    let holes = it
        .map(|(i, r)| ring(r, &format!("{at}.rings[{i}]"), field))
        .collect::<Result<Vec<_>>>()?;
    Ok(Polygon::new(exterior, holes))
}

/// A polygon area from GeoJSON holding Polygon and/or MultiPolygon geometries (their union).
pub fn polygon_area(text: &str, field: &str) -> Result<PolygonArea> {
    let mut polygons = Vec::new();
    for (gi, g) in geometries(text, field)?.iter().enumerate() {
        match &g.value {
            GeometryValue::Polygon { coordinates } => {
                polygons.push(polygon(coordinates, &format!("geometry[{gi}]"), field)?)
            }
            GeometryValue::MultiPolygon { coordinates } => {
                for (pi, p) in coordinates.iter().enumerate() {
                    polygons.push(polygon(p, &format!("geometry[{gi}].polygon[{pi}]"), field)?);
                }
            }
            other => {
                return Err(CoreError::invalid(
                    field,
                    format!(
                        "geometry[{gi}] is a {}, but --polygon takes Polygon or MultiPolygon",
                        other.type_name()
                    ),
                ));
            }
        }
    }
    PolygonArea::new(MultiPolygon(polygons)).map_err(|e| e.renamed("polygon", field))
}

/// A corridor from GeoJSON holding one LineString (or a one-part MultiLineString).
pub fn corridor(text: &str, field: &str, buffer_m: f64) -> Result<Corridor> {
    let gs = geometries(text, field)?;
    let mut lines = Vec::new();
    for (gi, g) in gs.iter().enumerate() {
        match &g.value {
            GeometryValue::LineString { coordinates } => lines.push((gi, coordinates.clone())),
            GeometryValue::MultiLineString { coordinates } => {
                lines.extend(coordinates.iter().map(|c| (gi, c.clone())))
            }
            other => {
                return Err(CoreError::invalid(
                    field,
                    format!(
                        "geometry[{gi}] is a {}, but --corridor takes a LineString",
                        other.type_name()
                    ),
                ));
            }
        }
    }
    let [(gi, positions)] = lines.as_slice() else {
        return Err(CoreError::invalid(
            field,
            format!(
                "holds {} lines; --corridor takes exactly one (declare one incident per main, or join them)",
                lines.len()
            ),
        ));
    };
    let coords = positions
        .iter()
        .enumerate()
        .map(|(i, p)| coord(p, &format!("geometry[{gi}][{i}]"), field))
        .collect::<Result<Vec<_>>>()?;
    Corridor::new(LineString(coords), buffer_m).map_err(|e| e.renamed("line", field))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn feature_collection_of_polygons_is_their_union() {
        let text = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
          {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[2,0],[3,0],[3,1],[2,0]]]}}]}"#;
        let area = polygon_area(text, "--polygon").unwrap();
        assert_eq!(area.shape().0.len(), 2);
    }

    #[test]
    fn open_rings_and_bad_json_are_explained() {
        let open = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#;
        let err = polygon_area(open, "--polygon").unwrap_err().to_string();
        assert!(err.contains("not closed"), "{err}");
        let err = polygon_area("{\n  \"type\": ", "--polygon")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        let line = r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#;
        let err = polygon_area(line, "--polygon").unwrap_err().to_string();
        assert!(err.contains("LineString"), "{err}");
    }

    #[test]
    fn corridor_takes_one_line() {
        let line = r#"{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[24.93,60.17],[24.95,60.17]]}}"#;
        let c = corridor(line, "--corridor", 50.0).unwrap();
        assert_eq!(c.line().0.len(), 2);
        let two = r#"{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2],[3,3]]]}"#;
        assert!(corridor(two, "--corridor", 50.0).is_err());
        let bad = r#"{"type":"LineString","coordinates":[[24.93,95.17],[24.95,60.17]]}"#;
        let err = corridor(bad, "--corridor", 50.0).unwrap_err().to_string();
        assert!(err.contains("latitude"), "{err}");
    }
}
