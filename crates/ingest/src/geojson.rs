//! Areas from GeoJSON (RFC 7946): a Geometry, a Feature or a FeatureCollection, of any shape
//! the core can select with.
//!
//! | geometry | area | needs |
//! |---|---|---|
//! | Point, MultiPoint | a circle around each point | `radius_m` property (or the caller's default) |
//! | LineString, MultiLineString | a corridor along each line | `buffer_m` property (or the caller's default) |
//! | Polygon, MultiPolygon | the polygon(s), holes included | rings closed, ≥ 4 positions, not crossing |
//! | GeometryCollection | each member, with the feature's properties | |
//!
//! Several geometries make a union. Rings are checked as written, before `geo` (which closes
//! open rings silently) sees them. Winding order is not checked: RFC 7946 §3.1.6 says parsers
//! should not reject rings that break the right-hand rule.

use geo::{Coord, LineString, MultiPolygon, Polygon};
use geojson::{GeoJson, Geometry, GeometryValue, JsonObject, Position};
use outagecast_core::area::{Area, Circle, Corridor, LonLat, PolygonArea};

use crate::error::{IngestError, Result, core_within};
use crate::limits::Limits;

/// Largest GeoJSON text accepted. A district's polygons are well below this; a larger file is
/// more likely a wrong file (a whole country's boundaries) than an outage.
pub const MAX_GEOJSON_BYTES: usize = 20 * 1024 * 1024;

/// Defaults for shapes that need a size and have none in their properties (a bare Point
/// geometry given with `--radius`, a LineString with `--buffer`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sizes {
    /// Circle radius in metres for points without a `radius_m` property.
    pub radius_m: Option<f64>,
    /// Corridor buffer in metres for lines without a `buffer_m` property.
    pub buffer_m: Option<f64>,
}

/// One geometry of the document with where it came from.
pub(crate) struct Located {
    /// JSON path of the geometry, e.g. `features[2].geometry`.
    pub path: String,
    /// The enclosing feature's properties, if any.
    pub properties: Option<JsonObject>,
    pub geometry: Geometry,
}

/// Parses GeoJSON text into its geometries; syntax errors carry the line and column.
pub(crate) fn located_geometries(text: &str, field: &str) -> Result<Vec<Located>> {
    if text.len() > MAX_GEOJSON_BYTES {
        return Err(IngestError::invalid(
            field,
            format!(
                "is {} bytes, more than the {MAX_GEOJSON_BYTES}-byte limit; simplify the shapes",
                text.len()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        IngestError::invalid(
            field,
            format!(
                "is not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let gj: GeoJson = serde_json::from_value(value).map_err(|e| {
        IngestError::invalid(
            field,
            format!("is not GeoJSON: {e}; give a Geometry, a Feature or a FeatureCollection"),
        )
    })?;
    Ok(match gj {
        GeoJson::Geometry(g) => vec![Located {
            path: "geometry".into(),
            properties: None,
            geometry: g,
        }],
        GeoJson::Feature(f) => f
            .geometry
            .map(|g| Located {
                path: "geometry".into(),
                properties: f.properties,
                geometry: g,
            })
            .into_iter()
            .collect(),
        GeoJson::FeatureCollection(fc) => fc
            .features
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let properties = f.properties;
                f.geometry.map(|g| Located {
                    path: format!("features[{i}].geometry"),
                    properties,
                    geometry: g,
                })
            })
            .collect(),
    })
}

/// An area from GeoJSON text: the union of every geometry in it.
///
/// ```
/// use outagecast_ingest::geojson::{area, Sizes};
/// let text = r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","properties":{"radius_m":250},
///    "geometry":{"type":"Point","coordinates":[24.9414,60.1710]}},
///   {"type":"Feature","properties":{},
///    "geometry":{"type":"Polygon","coordinates":[[[24.95,60.16],[24.96,60.16],[24.96,60.17],[24.95,60.16]]]}}]}"#;
/// let a = area(text, "--geojson", Sizes::default(), &Default::default()).unwrap();
/// assert!(a.describe().starts_with("union of 2 areas"));
/// ```
pub fn area(text: &str, field: &str, sizes: Sizes, limits: &Limits) -> Result<Area> {
    let located = nonempty(text, field, limits)?;
    let mut parts = Vec::new();
    for l in &located {
        parts.extend(geometry_areas(
            &l.geometry,
            l.properties.as_ref(),
            sizes,
            &l.path,
            field,
        )?);
    }
    Area::union(parts).map_err(|e| IngestError::from(e.renamed("area", field)))
}

/// A polygon area from GeoJSON holding only Polygon and MultiPolygon geometries (their union
/// as one multipolygon), for inputs that take a polygon and nothing else (`--polygon`).
pub fn polygon_area(text: &str, field: &str, limits: &Limits) -> Result<PolygonArea> {
    let located = nonempty(text, field, limits)?;
    let mut polygons = Vec::new();
    for l in &located {
        let at = format!("{field} {}.coordinates", l.path);
        match &l.geometry.value {
            GeometryValue::Polygon { coordinates } => polygons.push(polygon(coordinates, &at)?),
            GeometryValue::MultiPolygon { coordinates } => {
                for (i, p) in coordinates.iter().enumerate() {
                    polygons.push(polygon(p, &format!("{at}[{i}]"))?);
                }
            }
            other => {
                return Err(IngestError::invalid(
                    format!("{field} {}", l.path),
                    format!(
                        "is a {}, but {field} takes Polygon or MultiPolygon",
                        other.type_name()
                    ),
                ));
            }
        }
    }
    validated(polygons, field)
}

/// A corridor from GeoJSON holding exactly one line (a LineString, or a MultiLineString of one
/// part), for inputs that take one main and its buffer (`--corridor` with `--buffer`).
pub fn corridor_area(text: &str, field: &str, buffer_m: f64, limits: &Limits) -> Result<Corridor> {
    let located = nonempty(text, field, limits)?;
    let mut lines = Vec::new();
    for l in &located {
        let at = format!("{field} {}.coordinates", l.path);
        match &l.geometry.value {
            GeometryValue::LineString { coordinates } => lines.push((at, coordinates)),
            GeometryValue::MultiLineString { coordinates } => lines.extend(
                coordinates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("{at}[{i}]"), c)),
            ),
            other => {
                return Err(IngestError::invalid(
                    format!("{field} {}", l.path),
                    format!("is a {}, but {field} takes a LineString", other.type_name()),
                ));
            }
        }
    }
    let [(at, positions)] = lines.as_slice() else {
        return Err(IngestError::invalid(
            field,
            format!(
                "holds {} lines; {field} takes exactly one (declare one incident per main, or join them)",
                lines.len()
            ),
        ));
    };
    match corridor(positions, buffer_m, at)? {
        Area::Corridor(c) => Ok(c),
        _ => unreachable!("corridor() builds a corridor"),
    }
}

/// The document's geometries, at least one, within the vertex limit.
fn nonempty(text: &str, field: &str, limits: &Limits) -> Result<Vec<Located>> {
    let located = located_geometries(text, field)?;
    limits.vertices(located.iter().map(|l| positions(&l.geometry)).sum(), field)?;
    if located.is_empty() {
        return Err(IngestError::invalid(
            field,
            "holds no geometry (every feature's geometry is null); give at least one shape",
        ));
    }
    Ok(located)
}

/// How many positions a geometry is written with: what the vertex limit counts, before any
/// area (and its validity check) is built.
pub(crate) fn positions(g: &Geometry) -> usize {
    match &g.value {
        GeometryValue::Point { .. } => 1,
        GeometryValue::MultiPoint { coordinates } | GeometryValue::LineString { coordinates } => {
            coordinates.len()
        }
        GeometryValue::MultiLineString { coordinates } | GeometryValue::Polygon { coordinates } => {
            coordinates.iter().map(Vec::len).sum()
        }
        GeometryValue::MultiPolygon { coordinates } => {
            coordinates.iter().flatten().map(Vec::len).sum()
        }
        GeometryValue::GeometryCollection { geometries } => geometries.iter().map(positions).sum(),
    }
}

/// The areas of one geometry (a collection gives several).
pub(crate) fn geometry_areas(
    g: &Geometry,
    properties: Option<&JsonObject>,
    sizes: Sizes,
    path: &str,
    field: &str,
) -> Result<Vec<Area>> {
    let at = |suffix: &str| format!("{field} {path}{suffix}");
    Ok(match &g.value {
        GeometryValue::Point { coordinates } => {
            let radius = size(properties, "radius_m", sizes.radius_m, path, field, "Point")?;
            vec![circle(coordinates, radius, &at(".coordinates"))?]
        }
        GeometryValue::MultiPoint { coordinates } => {
            let radius = size(
                properties,
                "radius_m",
                sizes.radius_m,
                path,
                field,
                "MultiPoint",
            )?;
            coordinates
                .iter()
                .enumerate()
                .map(|(i, p)| circle(p, radius, &at(&format!(".coordinates[{i}]"))))
                .collect::<Result<_>>()?
        }
        GeometryValue::LineString { coordinates } => {
            let buffer = size(
                properties,
                "buffer_m",
                sizes.buffer_m,
                path,
                field,
                "LineString",
            )?;
            vec![corridor(coordinates, buffer, &at(".coordinates"))?]
        }
        GeometryValue::MultiLineString { coordinates } => {
            let buffer = size(
                properties,
                "buffer_m",
                sizes.buffer_m,
                path,
                field,
                "MultiLineString",
            )?;
            coordinates
                .iter()
                .enumerate()
                .map(|(i, l)| corridor(l, buffer, &at(&format!(".coordinates[{i}]"))))
                .collect::<Result<_>>()?
        }
        GeometryValue::Polygon { coordinates } => {
            let p = polygon(coordinates, &at(".coordinates"))?;
            vec![Area::Polygon(validated(vec![p], &at(""))?)]
        }
        GeometryValue::MultiPolygon { coordinates } => {
            let polygons = coordinates
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &at(&format!(".coordinates[{i}]"))))
                .collect::<Result<Vec<_>>>()?;
            vec![Area::Polygon(validated(polygons, &at(""))?)]
        }
        GeometryValue::GeometryCollection { geometries } => {
            let mut out = Vec::new();
            for (i, member) in geometries.iter().enumerate() {
                out.extend(geometry_areas(
                    member,
                    properties,
                    sizes,
                    &format!("{path}.geometries[{i}]"),
                    field,
                )?);
            }
            out
        }
    })
}

/// A positive size in metres from the feature's properties, else the caller's default.
fn size(
    properties: Option<&JsonObject>,
    key: &str,
    default: Option<f64>,
    path: &str,
    field: &str,
    kind: &str,
) -> Result<f64> {
    let feature = path.strip_suffix(".geometry").unwrap_or(path);
    match properties.and_then(|p| p.get(key)) {
        Some(v) => v.as_f64().ok_or_else(|| {
            IngestError::invalid(
                format!("{field} {feature}.properties.{key}"),
                format!("is {v}, not a number; give metres as a number, e.g. \"{key}\": 300"),
            )
        }),
        None => default.ok_or_else(|| {
            let flag = if key == "radius_m" { "--radius" } else { "--buffer" };
            IngestError::invalid(
                format!("{field} {path}"),
                format!(
                    "a {kind} needs a size: put it in a Feature with \"properties\": {{\"{key}\": METRES}}, or pass {flag} METRES"
                ),
            )
        }),
    }
}

fn coord(p: &Position, at: &str) -> Result<Coord<f64>> {
    let s = p.as_slice();
    if s.len() < 2 {
        return Err(IngestError::invalid(
            at,
            "a position needs [longitude, latitude]",
        ));
    }
    let ll = LonLat::parse(s[0], s[1]).map_err(|e| core_within(e, at))?;
    Ok(Coord {
        x: ll.lon(),
        y: ll.lat(),
    })
}

fn circle(p: &Position, radius_m: f64, at: &str) -> Result<Area> {
    let c = coord(p, at)?;
    let center = LonLat::parse(c.x, c.y).map_err(|e| core_within(e, at))?;
    Ok(Area::Circle(Circle::new(center, radius_m).map_err(
        |e| IngestError::from(e.renamed("radius", "radius_m")).within(at),
    )?))
}

fn corridor(positions: &[Position], buffer_m: f64, at: &str) -> Result<Area> {
    let coords = positions
        .iter()
        .enumerate()
        .map(|(i, p)| coord(p, &format!("{at}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Area::Corridor(
        Corridor::new(LineString(coords), buffer_m)
            .map_err(|e| IngestError::from(e.renamed("--buffer", "buffer_m")).within(at))?,
    ))
}

/// A ring as written: at least four positions, the last repeating the first.
pub(crate) fn ring(positions: &[Position], at: &str) -> Result<LineString<f64>> {
    if positions.len() < 4 {
        return Err(IngestError::invalid(
            at,
            format!(
                "has {} positions; a ring needs at least 4, the last repeating the first",
                positions.len()
            ),
        ));
    }
    let coords = positions
        .iter()
        .enumerate()
        .map(|(i, p)| coord(p, &format!("{at}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    if coords.first() != coords.last() {
        return Err(IngestError::invalid(
            at,
            "is not closed: repeat the first position at the end of the ring",
        ));
    }
    Ok(LineString(coords))
}

pub(crate) fn polygon(rings: &[Vec<Position>], at: &str) -> Result<Polygon<f64>> {
    let Some((shell, holes)) = rings.split_first() else {
        return Err(IngestError::invalid(
            at,
            "has no rings; a polygon needs an outer ring",
        ));
    };
    let exterior = ring(shell, &format!("{at}[0]"))?;
    let interiors = holes
        .iter()
        .enumerate()
        .map(|(i, r)| ring(r, &format!("{at}[{}]", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Polygon::new(exterior, interiors))
}

/// Validates polygons (self-intersection, holes outside, overlapping parts) as one area.
pub(crate) fn validated(polygons: Vec<Polygon<f64>>, at: &str) -> Result<PolygonArea> {
    PolygonArea::new(MultiPolygon(polygons))
        .map_err(|e| IngestError::from(e.renamed("polygon", at)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        area(text, "--geojson", Sizes::default(), &Limits::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_geometry_kind_becomes_an_area() {
        let point = r#"{"type":"Feature","properties":{"radius_m":300},"geometry":{"type":"Point","coordinates":[24.94,60.17]}}"#;
        assert!(
            matches!(area(point, "f", Sizes::default(), &Limits::default()).unwrap(), Area::Circle(c) if c.radius_m() == 300.0)
        );
        let line = r#"{"type":"Feature","properties":{"buffer_m":40},"geometry":{"type":"LineString","coordinates":[[24.93,60.17],[24.95,60.17]]}}"#;
        assert!(
            matches!(area(line, "f", Sizes::default(), &Limits::default()).unwrap(), Area::Corridor(c) if c.buffer_m() == 40.0)
        );
        let bare_line = r#"{"type":"LineString","coordinates":[[24.93,60.17],[24.95,60.17]]}"#;
        let sizes = Sizes {
            radius_m: None,
            buffer_m: Some(25.0),
        };
        assert!(matches!(
            area(bare_line, "f", sizes, &Limits::default()).unwrap(),
            Area::Corridor(_)
        ));
        let holes = r#"{"type":"Polygon","coordinates":[
            [[0,0],[4,0],[4,4],[0,4],[0,0]],
            [[1,1],[1,2],[2,2],[2,1],[1,1]]]}"#;
        let a = area(holes, "f", Sizes::default(), &Limits::default()).unwrap();
        assert!(!a.contains(LonLat::parse(1.5, 1.5).unwrap()), "in the hole");
        assert!(a.contains(LonLat::parse(3.0, 3.0).unwrap()));
        let multi = r#"{"type":"MultiPolygon","coordinates":[
            [[[0,0],[1,0],[1,1],[0,1],[0,0]]],
            [[[2,0],[3,0],[3,1],[2,1],[2,0]]]]}"#;
        assert!(
            matches!(area(multi, "f", Sizes::default(), &Limits::default()).unwrap(), Area::Polygon(p) if p.shape().0.len() == 2)
        );
        let collection = r#"{"type":"Feature","properties":{"radius_m":50,"buffer_m":10},
          "geometry":{"type":"GeometryCollection","geometries":[
            {"type":"Point","coordinates":[24.94,60.17]},
            {"type":"MultiLineString","coordinates":[[[24.93,60.17],[24.95,60.17]],[[24.93,60.18],[24.95,60.18]]]}]}}"#;
        let a = area(collection, "f", Sizes::default(), &Limits::default()).unwrap();
        assert_eq!(a.parts().len(), 3);
    }

    #[test]
    fn rings_breaking_the_right_hand_rule_are_accepted() {
        // Clockwise shell, counter-clockwise hole: the opposite of RFC 7946's advice.
        let text = r#"{"type":"Polygon","coordinates":[
            [[0,0],[0,4],[4,4],[4,0],[0,0]],
            [[1,1],[2,1],[2,2],[1,2],[1,1]]]}"#;
        let a = area(text, "f", Sizes::default(), &Limits::default()).unwrap();
        assert!(a.contains(LonLat::parse(3.0, 3.0).unwrap()));
        assert!(!a.contains(LonLat::parse(1.5, 1.5).unwrap()));
    }

    #[test]
    fn overlapping_features_are_a_union_not_an_invalid_multipolygon() {
        let text = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[2,0],[2,2],[0,2],[0,0]]]}},
          {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[1,1],[3,1],[3,3],[1,3],[1,1]]]}},
          {"type":"Feature","properties":{},"geometry":null}]}"#;
        let a = area(text, "f", Sizes::default(), &Limits::default()).unwrap();
        assert_eq!(a.parts().len(), 2);
        assert!(a.contains(LonLat::parse(2.5, 2.5).unwrap()));
    }

    #[test]
    fn errors_name_the_place_and_the_fix() {
        let e = err(r#"{"type":"Point","coordinates":[24.94,60.17]}"#);
        assert!(
            e.starts_with("--geojson geometry:") && e.contains("radius_m"),
            "{e}"
        );
        let e = err(
            r#"{"type":"Feature","properties":{"radius_m":"big"},"geometry":{"type":"Point","coordinates":[24.94,60.17]}}"#,
        );
        assert!(
            e.contains("properties.radius_m") && e.contains("not a number"),
            "{e}"
        );
        let e = err(
            r#"{"type":"Feature","properties":{"radius_m":-3},"geometry":{"type":"Point","coordinates":[24.94,60.17]}}"#,
        );
        assert!(e.contains("positive"), "{e}");
        let e = err(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#);
        assert!(
            e.contains("coordinates[0]") && e.contains("not closed"),
            "{e}"
        );
        let e = err(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#);
        assert!(e.contains("at least 4"), "{e}");
        let e = err(r#"{"type":"Polygon","coordinates":[[[0,0],[2,2],[2,0],[0,2],[0,0]]]}"#);
        assert!(
            e.contains("not a valid polygon") && e.contains("self-intersection"),
            "{e}"
        );
        let e = err(
            r#"{"type":"Polygon","coordinates":[[[60.17,124.9],[60.2,124.9],[60.2,125],[60.17,124.9]]]}"#,
        );
        assert!(
            e.contains("swapped") && e.contains("coordinates[0][0]"),
            "{e}"
        );
        let e = err(r#"{"type":"Polygon","coordinates":[[[200,0],[1,0],[1,1],[200,0]]]}"#);
        assert!(e.contains("longitude") && e.contains("-180..180"), "{e}");
        let e = err("{\n  \"type\": \"Polygon\",\n  \"coordinates\": [[[0,0],\n");
        assert!(e.contains("line 4"), "{e}");
        let e = err(r#"{"type":"Circle","coordinates":[0,0]}"#);
        assert!(e.contains("not GeoJSON"), "{e}");
        let e = err(r#"{"type":"FeatureCollection","features":[]}"#);
        assert!(e.contains("holds no geometry"), "{e}");
        let e = err(r#"{"type":"Point","coordinates":[24.94]}"#);
        assert!(!e.is_empty(), "{e}");
    }
    #[test]
    fn polygon_input_takes_polygons_only() {
        let text = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
          {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[2,0],[3,0],[3,1],[2,0]]]}}]}"#;
        let area = polygon_area(text, "--polygon", &Limits::default()).unwrap();
        assert_eq!(area.shape().0.len(), 2);
        let open = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#;
        let err = polygon_area(open, "--polygon", &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("not closed"), "{err}");
        let err = polygon_area("{\n  \"type\": ", "--polygon", &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let line = r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#;
        let err = polygon_area(line, "--polygon", &Limits::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a LineString, but --polygon takes Polygon"),
            "{err}"
        );
    }

    #[test]
    fn corridor_input_takes_one_line() {
        let limits = Limits::default();
        let line = r#"{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[24.93,60.17],[24.95,60.17]]}}"#;
        let c = corridor_area(line, "--corridor", 50.0, &limits).unwrap();
        assert_eq!(c.line().0.len(), 2);
        assert_eq!(c.buffer_m(), 50.0);
        let two = r#"{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2],[3,3]]]}"#;
        let err = corridor_area(two, "--corridor", 50.0, &limits).unwrap_err();
        assert!(err.to_string().contains("holds 2 lines"), "{err}");
        let bad = r#"{"type":"LineString","coordinates":[[24.93,95.17],[24.95,60.17]]}"#;
        let err = corridor_area(bad, "--corridor", 50.0, &limits).unwrap_err();
        assert!(err.to_string().contains("latitude"), "{err}");
    }

    /// The vertex limit is a count of the document's positions, made before any area is built:
    /// an oversized outline that also crosses itself is refused for its size, so its validity
    /// is never checked.
    #[test]
    fn vertex_limit_is_checked_before_the_area_is_built() {
        let limits = Limits {
            max_area_vertices: 100,
            ..Limits::default()
        };
        // A bow tie written with 202 positions: invalid, and over the limit.
        let mut ring: Vec<[f64; 2]> = (0..=100).map(|i| [f64::from(i) / 100.0, 0.0]).collect();
        ring.extend((0..100).map(|i| [f64::from(i) / 100.0, 1.0 - f64::from(i) / 100.0]));
        ring.push([0.0, 0.0]);
        let text = serde_json::json!({"type": "Polygon", "coordinates": [ring]}).to_string();
        for err in [
            area(&text, "--geojson", Sizes::default(), &limits).unwrap_err(),
            polygon_area(&text, "--polygon", &limits).unwrap_err(),
        ] {
            assert!(matches!(err, IngestError::TooLarge { .. }), "{err}");
            assert!(err.to_string().contains("202 vertices"), "{err}");
        }
        assert!(area(&text, "--geojson", Sizes::default(), &Limits::default()).is_err());
    }
}
