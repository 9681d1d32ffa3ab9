//! Areas from WKT (OGC Well-Known Text), as GIS tools and databases print geometries:
//! `POLYGON((24.93 60.16, 24.95 60.16, 24.95 60.17, 24.93 60.16))`. Coordinates are `x y`,
//! that is longitude then latitude, in WGS84 (an EWKT `SRID=4326;` prefix is accepted).
//!
//! Shapes map as in GeoJSON: POINT needs a radius, LINESTRING a buffer (both from the caller),
//! POLYGON and MULTIPOLYGON are polygons, several geometries make a union.

use std::str::FromStr;

use geo::{Coord, LineString, Polygon};
use outagecast_core::area::{Area, Circle, Corridor, LonLat};
use wkt::Wkt;

use crate::error::{IngestError, Result, core_within};
use crate::geojson::{Sizes, validated};
use crate::limits::Limits;

/// Longest WKT text accepted (a command-line argument or a file's content).
pub const MAX_WKT_BYTES: usize = 20 * 1024 * 1024;

/// Deepest nesting of parentheses accepted. Real geometries nest at most four deep
/// (a GEOMETRYCOLLECTION of MULTIPOLYGONs); the bound keeps the parser's recursion shallow.
const MAX_DEPTH: usize = 16;

/// An area from WKT text.
///
/// ```
/// use outagecast_ingest::{geojson::Sizes, wkt::area};
/// let a = area("POLYGON((24.93 60.16, 24.95 60.16, 24.95 60.17, 24.93 60.16))", "--wkt", Sizes::default(), &Default::default()).unwrap();
/// assert_eq!(a.describe(), "polygon");
/// let e = area("POINT(24.94 60.17)", "--wkt", Sizes::default(), &Default::default()).unwrap_err();
/// assert!(e.to_string().contains("--radius"));
/// ```
pub fn area(text: &str, field: &str, sizes: Sizes, limits: &Limits) -> Result<Area> {
    if text.len() > MAX_WKT_BYTES {
        return Err(IngestError::invalid(
            field,
            format!("is longer than {MAX_WKT_BYTES} bytes; simplify the shape"),
        ));
    }
    let mut body = text.trim();
    if let Some(rest) = strip_prefix_ignore_case(body, "SRID=") {
        let (srid, geometry) = rest.split_once(';').unwrap_or((rest, ""));
        if srid.trim() != "4326" {
            return Err(IngestError::invalid(
                field,
                format!(
                    "has SRID={}; give WGS84 longitude/latitude (SRID=4326), e.g. transform with ST_Transform(geom, 4326)",
                    srid.trim()
                ),
            ));
        }
        body = geometry.trim();
    }
    check_depth(body, field)?;
    let parsed = Wkt::<f64>::from_str(body).map_err(|e| {
        IngestError::invalid(
            field,
            format!(
                "is not valid WKT ({e}); write e.g. POLYGON((24.93 60.16, 24.95 60.16, 24.95 60.17, 24.93 60.16)) with longitude first"
            ),
        )
    })?;
    limits.vertices(positions(&parsed), field)?;
    let mut parts = Vec::new();
    collect(&parsed, field, sizes, &mut parts)?;
    if parts.is_empty() {
        return Err(IngestError::invalid(
            field,
            "is EMPTY; give a geometry with coordinates",
        ));
    }
    Area::union(parts).map_err(|e| IngestError::from(e.renamed("area", field)))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn check_depth(text: &str, field: &str) -> Result<()> {
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(IngestError::invalid(
                        field,
                        format!(
                            "nests parentheses more than {MAX_DEPTH} deep; flatten the geometry collection"
                        ),
                    ));
                }
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn coord(c: &wkt::types::Coord<f64>, at: &str) -> Result<Coord<f64>> {
    let ll = LonLat::parse(c.x, c.y).map_err(|e| core_within(e, at))?;
    Ok(Coord {
        x: ll.lon(),
        y: ll.lat(),
    })
}

fn ring(line: &wkt::types::LineString<f64>, at: &str) -> Result<LineString<f64>> {
    let coords = line.coords();
    if coords.len() < 4 {
        return Err(IngestError::invalid(
            at,
            format!(
                "has {} positions; a ring needs at least 4, the last repeating the first",
                coords.len()
            ),
        ));
    }
    let out = coords
        .iter()
        .enumerate()
        .map(|(i, c)| coord(c, &format!("{at}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    if out.first() != out.last() {
        return Err(IngestError::invalid(
            at,
            "is not closed: repeat the first position at the end of the ring",
        ));
    }
    Ok(LineString(out))
}

fn polygon(p: &wkt::types::Polygon<f64>, at: &str) -> Result<Option<Polygon<f64>>> {
    let Some((shell, holes)) = p.rings().split_first() else {
        return Ok(None); // POLYGON EMPTY
    };
    let exterior = ring(shell, &format!("{at}.ring[0]"))?;
    let interiors = holes
        .iter()
        .enumerate()
        .map(|(i, r)| ring(r, &format!("{at}.ring[{}]", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Polygon::new(exterior, interiors)))
}

fn need(size: Option<f64>, what: &str, flag: &str, at: &str) -> Result<f64> {
    size.ok_or_else(|| {
        IngestError::invalid(at, format!("a {what} needs a size: pass {flag} METRES"))
    })
}

/// How many positions the geometry is written with: what the vertex limit counts, before any
/// area (and its validity check) is built.
fn positions(g: &Wkt<f64>) -> usize {
    let line = |l: &wkt::types::LineString<f64>| l.coords().len();
    let polygon = |p: &wkt::types::Polygon<f64>| p.rings().iter().map(line).sum::<usize>();
    match g {
        Wkt::Point(p) => usize::from(p.coord().is_some()),
        Wkt::MultiPoint(mp) => mp.points().iter().filter(|p| p.coord().is_some()).count(),
        Wkt::LineString(l) => line(l),
        Wkt::MultiLineString(ml) => ml.line_strings().iter().map(line).sum(),
        Wkt::Polygon(p) => polygon(p),
        Wkt::MultiPolygon(mp) => mp.polygons().iter().map(polygon).sum(),
        Wkt::GeometryCollection(gc) => gc.geometries().iter().map(positions).sum(),
    }
}

fn collect(g: &Wkt<f64>, at: &str, sizes: Sizes, out: &mut Vec<Area>) -> Result<()> {
    match g {
        Wkt::Point(p) => {
            if let Some(c) = p.coord() {
                let radius = need(sizes.radius_m, "POINT", "--radius", at)?;
                out.push(point_circle(c, radius, at)?);
            }
        }
        Wkt::MultiPoint(mp) => {
            for (i, p) in mp.points().iter().enumerate() {
                if let Some(c) = p.coord() {
                    let radius = need(sizes.radius_m, "MULTIPOINT", "--radius", at)?;
                    out.push(point_circle(c, radius, &format!("{at}.point[{i}]"))?);
                }
            }
        }
        Wkt::LineString(l) => {
            if !l.coords().is_empty() {
                let buffer = need(sizes.buffer_m, "LINESTRING", "--buffer", at)?;
                out.push(line_corridor(l, buffer, at)?);
            }
        }
        Wkt::MultiLineString(ml) => {
            for (i, l) in ml.line_strings().iter().enumerate() {
                if !l.coords().is_empty() {
                    let buffer = need(sizes.buffer_m, "MULTILINESTRING", "--buffer", at)?;
                    out.push(line_corridor(l, buffer, &format!("{at}.line[{i}]"))?);
                }
            }
        }
        Wkt::Polygon(p) => {
            if let Some(p) = polygon(p, &format!("{at}.polygon"))? {
                out.push(Area::Polygon(validated(vec![p], at)?));
            }
        }
        Wkt::MultiPolygon(mp) => {
            let mut polygons = Vec::new();
            for (i, p) in mp.polygons().iter().enumerate() {
                polygons.extend(polygon(p, &format!("{at}.polygon[{i}]"))?);
            }
            if !polygons.is_empty() {
                out.push(Area::Polygon(validated(polygons, at)?));
            }
        }
        Wkt::GeometryCollection(gc) => {
            for (i, member) in gc.geometries().iter().enumerate() {
                collect(member, &format!("{at}.geometry[{i}]"), sizes, out)?;
            }
        }
    }
    Ok(())
}

fn point_circle(c: &wkt::types::Coord<f64>, radius_m: f64, at: &str) -> Result<Area> {
    let c = coord(c, at)?;
    let center = LonLat::parse(c.x, c.y).map_err(|e| core_within(e, at))?;
    Circle::new(center, radius_m)
        .map(Area::Circle)
        .map_err(|e| IngestError::from(e.renamed("radius", "--radius")))
}

fn line_corridor(l: &wkt::types::LineString<f64>, buffer_m: f64, at: &str) -> Result<Area> {
    let coords = l
        .coords()
        .iter()
        .enumerate()
        .map(|(i, c)| coord(c, &format!("{at}[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Corridor::new(LineString(coords), buffer_m)
        .map(Area::Corridor)
        .map_err(|e| IngestError::from(e.renamed("line", at)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        area(text, "--wkt", Sizes::default(), &Limits::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn shapes_map_to_areas() {
        let sizes = Sizes {
            radius_m: Some(200.0),
            buffer_m: Some(30.0),
        };
        let a = area("POINT (24.94 60.17)", "--wkt", sizes, &Limits::default()).unwrap();
        assert!(matches!(a, Area::Circle(c) if c.radius_m() == 200.0));
        let a = area(
            "LINESTRING(24.93 60.17, 24.95 60.17)",
            "--wkt",
            sizes,
            &Limits::default(),
        )
        .unwrap();
        assert!(matches!(a, Area::Corridor(_)));
        let a = area(
            "SRID=4326;MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)),((2 0,3 0,3 1,2 1,2 0)))",
            "--wkt",
            sizes,
            &Limits::default(),
        )
        .unwrap();
        assert!(matches!(a, Area::Polygon(p) if p.shape().0.len() == 2));
        let a = area(
            "POLYGON Z ((0 0 5, 4 0 5, 4 4 5, 0 4 5, 0 0 5), (1 1 5, 2 1 5, 2 2 5, 1 2 5, 1 1 5))",
            "--wkt",
            sizes,
            &Limits::default(),
        )
        .unwrap();
        assert!(!a.contains(LonLat::parse(1.5, 1.5).unwrap()));
        let a = area(
            "GEOMETRYCOLLECTION(POINT(24.94 60.17), POLYGON((0 0,1 0,1 1,0 0)))",
            "--wkt",
            sizes,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(a.parts().len(), 2);
    }

    #[test]
    fn bad_wkt_is_explained() {
        assert!(err("POLYGON((0 0, 1 0, 1 1, 0 1))").contains("not closed"));
        assert!(err("POLYGON((0 0, 1 0, 0 0))").contains("at least 4"));
        assert!(err("POLYGON((0 0, 2 2, 2 0, 0 2, 0 0))").contains("not a valid polygon"));
        assert!(
            err("POLYGON((60.17 124.9, 60.2 124.9, 60.2 125, 60.17 124.9))").contains("swapped")
        );
        assert!(err("POINT(24.94 60.17)").contains("--radius"));
        assert!(err("LINESTRING(24.94 60.17, 24.95 60.17)").contains("--buffer"));
        assert!(err("POLYGON EMPTY").contains("EMPTY"));
        assert!(err("CIRCLE(1 2 3)").contains("not valid WKT"));
        assert!(err("SRID=3067;POINT(385000 6672000)").contains("4326"));
        let deep = format!(
            "{}POINT(1 2){}",
            "GEOMETRYCOLLECTION(".repeat(40),
            ")".repeat(40)
        );
        assert!(err(&deep).contains("nests"));
    }
    #[test]
    fn vertex_limit_is_counted_on_the_parsed_text() {
        let limits = Limits {
            max_area_vertices: 4,
            ..Limits::default()
        };
        let square = "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))";
        let err = area(square, "--wkt", Sizes::default(), &limits).unwrap_err();
        assert!(matches!(err, IngestError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("5 vertices"), "{err}");
        let triangle = "POLYGON((0 0, 1 0, 1 1, 0 0))";
        assert!(area(triangle, "--wkt", Sizes::default(), &limits).is_ok());
    }
}
