//! Where an outage is: service points (`LonLat`) and the shapes that select them (`Area`).
//!
//! Coordinates are WGS84 longitude/latitude in degrees, in that order (GeoJSON's order).
//! The exact membership rule of each shape is [`Area::contains`]; the spatial index answers the
//! same question faster and is property-tested against it.

use geo::{
    BoundingRect, Coord, Distance, Geodesic, HaversineClosestPoint, Intersects, LineString,
    MultiPolygon, Point, Polygon, Rect,
};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Largest circle radius or corridor buffer accepted, in metres. An outage wider than this is
/// a region, and is better drawn as a polygon or picked as a zone.
pub const MAX_RADIUS_M: f64 = 1_000_000.0;

/// A smaller radius than any of the Earth's radii of curvature (the meridional radius at the
/// equator is 6 335 439 m). Dividing a distance by it over-estimates the angle, so envelopes
/// built with it always hold the whole shape.
const CONSERVATIVE_EARTH_RADIUS_M: f64 = 6_335_000.0;

/// A WGS84 position: longitude then latitude, in degrees. Only built through [`LonLat::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f64; 2]", into = "[f64; 2]")]
pub struct LonLat {
    lon: f64,
    lat: f64,
}

impl LonLat {
    /// Checks that both numbers are finite and in range. A pair that only makes sense the other
    /// way round (a latitude beyond ±90 with a longitude within it) is called out as swapped.
    ///
    /// ```
    /// use outagecast_core::area::LonLat;
    /// let kaivokatu = LonLat::parse(24.9413, 60.1699).unwrap();
    /// assert_eq!(kaivokatu.lat(), 60.1699);
    /// let err = LonLat::parse(60.1699, 124.9413).unwrap_err();
    /// assert!(err.to_string().contains("latitude"));
    /// ```
    pub fn parse(lon: f64, lat: f64) -> Result<Self> {
        if !lon.is_finite() {
            return Err(CoreError::invalid(
                "longitude",
                format!("{lon} is not a number; give degrees east between -180 and 180"),
            ));
        }
        if !lat.is_finite() {
            return Err(CoreError::invalid(
                "latitude",
                format!("{lat} is not a number; give degrees north between -90 and 90"),
            ));
        }
        if !(-90.0..=90.0).contains(&lat) {
            let hint = if (-90.0..=90.0).contains(&lon) && lat.abs() <= 180.0 {
                format!(
                    "; it looks like longitude and latitude are swapped: the order is lon,lat, e.g. {lat},{lon}"
                )
            } else {
                String::new()
            };
            return Err(CoreError::invalid(
                "latitude",
                format!("{lat} is outside -90..90{hint}"),
            ));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(CoreError::invalid(
                "longitude",
                format!("{lon} is outside -180..180"),
            ));
        }
        Ok(LonLat { lon, lat })
    }

    /// Degrees east.
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Degrees north.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// As a `geo` point (x = lon, y = lat).
    pub fn point(self) -> Point<f64> {
        Point::new(self.lon, self.lat)
    }

    /// Parses `"LON,LAT"` as typed on a command line.
    pub fn parse_pair(text: &str, field: &str) -> Result<Self> {
        let numbers = parse_numbers(text, field, 2, "LON,LAT")?;
        LonLat::parse(numbers[0], numbers[1]).map_err(|e| e.within(field))
    }
}

impl TryFrom<[f64; 2]> for LonLat {
    type Error = CoreError;
    fn try_from([lon, lat]: [f64; 2]) -> Result<Self> {
        LonLat::parse(lon, lat)
    }
}

impl From<LonLat> for [f64; 2] {
    fn from(p: LonLat) -> Self {
        [p.lon, p.lat]
    }
}

/// Splits `"a,b,c"` into exactly `count` finite numbers, or says which form was expected.
fn parse_numbers(text: &str, field: &str, count: usize, form: &str) -> Result<Vec<f64>> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != count {
        return Err(CoreError::invalid(
            field,
            format!("expected {form} ({count} comma-separated numbers), got {text:?}"),
        ));
    }
    parts
        .iter()
        .map(|p| {
            p.parse::<f64>().map_err(|_| {
                CoreError::invalid(field, format!("{p:?} is not a number (expected {form})"))
            })
        })
        .collect()
}

fn check_distance(field: &str, metres: f64) -> Result<f64> {
    if !metres.is_finite() || metres <= 0.0 {
        return Err(CoreError::invalid(
            field,
            format!("{metres} must be a positive number of metres"),
        ));
    }
    if metres > MAX_RADIUS_M {
        return Err(CoreError::invalid(
            field,
            format!(
                "{metres} m is more than the {MAX_RADIUS_M} m limit; draw a polygon or use a zone for a region this large"
            ),
        ));
    }
    Ok(metres)
}

/// A circle on the WGS84 ellipsoid: every point whose geodesic distance from `center` is at
/// most `radius_m` metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CircleRepr", into = "CircleRepr")]
pub struct Circle {
    center: LonLat,
    radius_m: f64,
}

#[derive(Serialize, Deserialize)]
struct CircleRepr {
    center: LonLat,
    radius_m: f64,
}

impl TryFrom<CircleRepr> for Circle {
    type Error = CoreError;
    fn try_from(r: CircleRepr) -> Result<Self> {
        Circle::new(r.center, r.radius_m)
    }
}

impl From<Circle> for CircleRepr {
    fn from(c: Circle) -> Self {
        CircleRepr {
            center: c.center,
            radius_m: c.radius_m,
        }
    }
}

impl Circle {
    /// A circle of `radius_m` metres (0 < radius ≤ 1000 km) around `center`.
    pub fn new(center: LonLat, radius_m: f64) -> Result<Self> {
        Ok(Circle {
            center,
            radius_m: check_distance("radius", radius_m)?,
        })
    }

    /// Parses `"LON,LAT,METRES"` as given to `--circle`.
    pub fn parse_cli(text: &str) -> Result<Self> {
        let n = parse_numbers(text, "--circle", 3, "LON,LAT,METRES")?;
        let center = LonLat::parse(n[0], n[1]).map_err(|e| e.within("--circle"))?;
        Circle::new(center, n[2]).map_err(|e| e.within("--circle"))
    }

    /// The centre.
    pub fn center(&self) -> LonLat {
        self.center
    }

    /// The radius in metres.
    pub fn radius_m(&self) -> f64 {
        self.radius_m
    }

    /// The exact rule: geodesic (WGS84) distance from the centre ≤ radius.
    pub fn contains(&self, p: LonLat) -> bool {
        Geodesic.distance(self.center.point(), p.point()) <= self.radius_m
    }
}

/// A polygon area: one or more polygons, each with optional holes, in lon/lat with straight
/// edges (RFC 7946). Built only through [`PolygonArea::new`], which refuses invalid geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PolygonRepr", into = "PolygonRepr")]
pub struct PolygonArea {
    shape: MultiPolygon<f64>,
}

/// Stored and printed as GeoJSON MultiPolygon coordinates: polygons → rings → `[lon, lat]`.
#[derive(Serialize, Deserialize)]
struct PolygonRepr {
    coordinates: Vec<Vec<Vec<[f64; 2]>>>,
}

fn ring_positions(ring: &LineString<f64>) -> Vec<[f64; 2]> {
    ring.coords().map(|c| [c.x, c.y]).collect()
}

fn positions_ring(positions: &[[f64; 2]]) -> LineString<f64> {
    positions.iter().map(|&[x, y]| Coord { x, y }).collect()
}

impl PolygonRepr {
    /// The shape as written, not yet checked.
    fn shape(&self) -> MultiPolygon<f64> {
        MultiPolygon(
            self.coordinates
                .iter()
                .map(|rings| {
                    let mut rings = rings.iter().map(|r| positions_ring(r));
                    let exterior = rings.next().unwrap_or_else(|| LineString(vec![]));
                    Polygon::new(exterior, rings.collect())
                })
                .collect(),
        )
    }
}

impl TryFrom<PolygonRepr> for PolygonArea {
    type Error = CoreError;
    fn try_from(r: PolygonRepr) -> Result<Self> {
        PolygonArea::new(r.shape())
    }
}

impl From<PolygonArea> for PolygonRepr {
    fn from(p: PolygonArea) -> Self {
        PolygonRepr {
            coordinates: p
                .shape
                .0
                .iter()
                .map(|poly| {
                    std::iter::once(poly.exterior())
                        .chain(poly.interiors())
                        .map(ring_positions)
                        .collect()
                })
                .collect(),
        }
    }
}

impl PolygonArea {
    /// Validates the shape: coordinates in range, at least one polygon, rings of at least four
    /// positions that do not cross themselves or each other, holes inside their shell.
    ///
    /// `geo` closes rings on construction, so checking that a ring as *written* is closed
    /// belongs to the parser of the text format (GeoJSON in `outagecast-ingest`).
    pub fn new(shape: MultiPolygon<f64>) -> Result<Self> {
        if shape.0.is_empty() {
            return Err(CoreError::invalid(
                "polygon",
                "has no polygons; give at least one ring of 4 or more positions",
            ));
        }
        for (pi, polygon) in shape.0.iter().enumerate() {
            for (ri, ring) in std::iter::once(polygon.exterior())
                .chain(polygon.interiors())
                .enumerate()
            {
                for c in ring.coords() {
                    LonLat::parse(c.x, c.y)
                        .map_err(|e| e.within(format!("polygon[{pi}].ring[{ri}]")))?;
                }
                if ring.0.len() < 4 {
                    return Err(CoreError::invalid(
                        format!("polygon[{pi}].ring[{ri}]"),
                        format!(
                            "has {} positions; a ring needs at least 4 (three corners and the first repeated to close it)",
                            ring.0.len()
                        ),
                    ));
                }
            }
        }
        // `geo`'s own `check_validation` tests edge pairs in O(n²); `validity` gives its answer
        // in O(n log n).
        if let Some(problem) = crate::validity::first_problem(&shape) {
            return Err(CoreError::invalid(
                "polygon",
                format!("is not a valid polygon: {problem}; redraw it so that edges do not cross"),
            ));
        }
        Ok(PolygonArea { shape })
    }

    /// The shape.
    pub fn shape(&self) -> &MultiPolygon<f64> {
        &self.shape
    }

    /// The exact rule: inside or on the boundary (planar lon/lat, as RFC 7946 draws edges).
    pub fn contains(&self, p: LonLat) -> bool {
        self.shape.intersects(&p.point())
    }

    /// Whether the whole rectangle lies inside (boundary included). The index uses this to take
    /// every point below an R-tree node without testing each one.
    pub fn covers_rect(&self, rect: &Rect<f64>) -> bool {
        use geo::Covers;
        self.shape.covers(rect)
    }
}

/// A buffer of `buffer_m` metres around a line: a water main or a street.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CorridorRepr", into = "CorridorRepr")]
pub struct Corridor {
    line: LineString<f64>,
    buffer_m: f64,
}

/// Stored and printed with the line as GeoJSON LineString coordinates.
#[derive(Serialize, Deserialize)]
struct CorridorRepr {
    line: Vec<[f64; 2]>,
    buffer_m: f64,
}

impl TryFrom<CorridorRepr> for Corridor {
    type Error = CoreError;
    fn try_from(r: CorridorRepr) -> Result<Self> {
        Corridor::new(positions_ring(&r.line), r.buffer_m)
    }
}

impl From<Corridor> for CorridorRepr {
    fn from(c: Corridor) -> Self {
        CorridorRepr {
            line: ring_positions(&c.line),
            buffer_m: c.buffer_m,
        }
    }
}

impl Corridor {
    /// A corridor around a line of at least two positions, `buffer_m` metres to each side.
    pub fn new(line: LineString<f64>, buffer_m: f64) -> Result<Self> {
        if line.0.len() < 2 {
            return Err(CoreError::invalid(
                "line",
                format!("has {} position(s); a line needs at least 2", line.0.len()),
            ));
        }
        for (i, c) in line.coords().enumerate() {
            LonLat::parse(c.x, c.y).map_err(|e| e.within(format!("line[{i}]")))?;
        }
        Ok(Corridor {
            line,
            buffer_m: check_distance("--buffer", buffer_m)?,
        })
    }

    /// The centre line.
    pub fn line(&self) -> &LineString<f64> {
        &self.line
    }

    /// Metres to each side of the line.
    pub fn buffer_m(&self) -> f64 {
        self.buffer_m
    }

    /// The exact rule: the nearest point of the line (segments as great-circle arcs) is at most
    /// `buffer_m` metres away, measured geodesically on WGS84.
    pub fn contains(&self, p: LonLat) -> bool {
        let point = p.point();
        let nearest = match self.line.haversine_closest_point(&point) {
            geo::Closest::Intersection(q) | geo::Closest::SinglePoint(q) => q,
            // Only for a degenerate line; the constructor refuses those, but stay total.
            geo::Closest::Indeterminate => match self.line.0.first() {
                Some(c) => Point::from(*c),
                None => return false,
            },
        };
        Geodesic.distance(point, nearest) <= self.buffer_m
    }
}

/// Most parts a union may have. A CAP alert or a GeoJSON file with more shapes than this is
/// better merged into a multipolygon first; the bound keeps selection time predictable.
pub const MAX_UNION_PARTS: usize = 10_000;

/// Several areas taken together (a CAP alert with a polygon and a circle, a FeatureCollection
/// mixing shapes): a point is inside when it is inside any part. Built only through
/// [`Area::union`], which flattens nested unions and drops repeated parts, so a union
/// always has at least two distinct parts and never holds another union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UnionRepr", into = "UnionRepr")]
pub struct AreaUnion {
    parts: Vec<Area>,
}

/// Stored and printed as `{"type":"union","parts":[<area>, ...]}`.
#[derive(Serialize, Deserialize)]
struct UnionRepr {
    parts: Vec<Area>,
}

impl TryFrom<UnionRepr> for AreaUnion {
    type Error = CoreError;
    fn try_from(r: UnionRepr) -> Result<Self> {
        match Area::union(r.parts)? {
            Area::Union(u) => Ok(u),
            _ => Err(CoreError::invalid(
                "area.parts",
                "a union needs at least two different parts; store a single shape as itself",
            )),
        }
    }
}

impl From<AreaUnion> for UnionRepr {
    fn from(u: AreaUnion) -> Self {
        UnionRepr { parts: u.parts }
    }
}

impl AreaUnion {
    /// The parts (never unions themselves), in the order given, without repeats.
    pub fn parts(&self) -> &[Area] {
        &self.parts
    }
}

/// An area as this program stored it: the same JSON as [`Area`], read without validating the
/// geometry again. See [`Area::deserialize_stored`].
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StoredArea {
    Circle(CircleRepr),
    Polygon(PolygonRepr),
    Corridor(CorridorRepr),
    Union { parts: Vec<StoredArea> },
}

impl StoredArea {
    /// Built as written: these values passed the checking constructors when they were stored.
    fn trusted(self) -> Area {
        match self {
            StoredArea::Circle(c) => Area::Circle(Circle {
                center: c.center,
                radius_m: c.radius_m,
            }),
            StoredArea::Polygon(p) => Area::Polygon(PolygonArea { shape: p.shape() }),
            StoredArea::Corridor(c) => Area::Corridor(Corridor {
                line: positions_ring(&c.line),
                buffer_m: c.buffer_m,
            }),
            StoredArea::Union { parts } => Area::Union(AreaUnion {
                parts: parts.into_iter().map(StoredArea::trusted).collect(),
            }),
        }
    }
}

/// The area an incident affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Area {
    /// A geodesic circle.
    Circle(Circle),
    /// A polygon or multipolygon with holes.
    Polygon(PolygonArea),
    /// A buffered line.
    Corridor(Corridor),
    /// Several areas: inside any of them.
    Union(AreaUnion),
}

impl Area {
    /// An area this program stored, read back: the JSON must have [`Area`]'s form, but the
    /// geometry is not validated again. It was validated once, when it was written, and
    /// validating a big polygon costs O(n log n) on every read: listing incidents or a progress
    /// stream reading them every 500 ms would redo it each time. The one way to build an area
    /// without its checks (an invariant exception in ARCHITECTURE.md): only for values the
    /// store wrote from a checked `Area`, never for input.
    pub fn deserialize_stored<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Area, D::Error> {
        StoredArea::deserialize(deserializer).map(StoredArea::trusted)
    }

    /// The union of `parts`: nested unions are flattened and repeated parts dropped; one
    /// distinct part is returned as itself. Refuses no parts and more than
    /// [`MAX_UNION_PARTS`].
    ///
    /// ```
    /// use outagecast_core::area::{Area, Circle, LonLat};
    /// let a = Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 100.0).unwrap());
    /// let b = Area::Circle(Circle::new(LonLat::parse(24.95, 60.17).unwrap(), 100.0).unwrap());
    /// assert_eq!(Area::union(vec![a.clone(), a.clone()]).unwrap(), a);
    /// let both = Area::union(vec![a.clone(), b]).unwrap();
    /// assert!(matches!(both, Area::Union(ref u) if u.parts().len() == 2));
    /// assert!(both.contains(LonLat::parse(24.95, 60.17).unwrap()));
    /// ```
    pub fn union(parts: Vec<Area>) -> Result<Area> {
        let mut flat: Vec<Area> = Vec::with_capacity(parts.len());
        let mut stack: Vec<Area> = parts.into_iter().rev().collect();
        while let Some(part) = stack.pop() {
            match part {
                Area::Union(u) => stack.extend(u.parts.into_iter().rev()),
                other => {
                    // Quadratic, but unions are small and repeats are common (a CAP alert
                    // repeats its area in every language's info block).
                    if !flat.contains(&other) {
                        if flat.len() == MAX_UNION_PARTS {
                            return Err(CoreError::invalid(
                                "area",
                                format!(
                                    "has more than {MAX_UNION_PARTS} shapes; merge them into fewer polygons"
                                ),
                            ));
                        }
                        flat.push(other);
                    }
                }
            }
        }
        match flat.len() {
            0 => Err(CoreError::invalid(
                "area",
                "has no shapes; give at least one polygon, circle or line",
            )),
            1 => Ok(flat.remove(0)),
            _ => Ok(Area::Union(AreaUnion { parts: flat })),
        }
    }

    /// How many positions describe the area: every ring of every polygon (closing positions
    /// included), every line position, one per circle. What size limits count.
    pub fn vertex_count(&self) -> usize {
        match self {
            Area::Circle(_) => 1,
            Area::Polygon(p) => geo::CoordsIter::coords_count(&p.shape),
            Area::Corridor(c) => geo::CoordsIter::coords_count(&c.line),
            Area::Union(u) => u.parts.iter().map(Area::vertex_count).sum(),
        }
    }

    /// The simple shapes this area is made of: itself, or a union's parts.
    pub fn parts(&self) -> &[Area] {
        match self {
            Area::Union(u) => &u.parts,
            other => std::slice::from_ref(other),
        }
    }

    /// The exact membership rule for a service point. This is the oracle that the spatial index
    /// must agree with.
    ///
    /// ```
    /// use outagecast_core::area::{Area, Circle, LonLat};
    /// let station = LonLat::parse(24.9414, 60.1710).unwrap();
    /// let area = Area::Circle(Circle::new(station, 300.0).unwrap());
    /// assert!(area.contains(LonLat::parse(24.9440, 60.1712).unwrap())); // ~145 m east
    /// assert!(!area.contains(LonLat::parse(24.9500, 60.1710).unwrap())); // ~477 m east
    /// ```
    pub fn contains(&self, p: LonLat) -> bool {
        match self {
            Area::Circle(c) => c.contains(p),
            Area::Polygon(poly) => poly.contains(p),
            Area::Corridor(c) => c.contains(p),
            Area::Union(u) => u.parts.iter().any(|a| a.contains(p)),
        }
    }

    /// Lon/lat rectangles that together hold the whole area; a shape that crosses the
    /// antimeridian gets one rectangle on each side. Never empty.
    pub fn envelopes(&self) -> Vec<Rect<f64>> {
        match self {
            Area::Circle(c) => {
                let p = c.center.point();
                buffered_envelopes(Rect::new(p.0, p.0), c.radius_m)
            }
            Area::Polygon(poly) => match poly.shape.bounding_rect() {
                Some(r) => vec![r],
                None => vec![],
            },
            Area::Corridor(c) => match c.line.bounding_rect() {
                Some(r) => buffered_envelopes(r, c.buffer_m),
                None => vec![],
            },
            Area::Union(u) => u.parts.iter().flat_map(Area::envelopes).collect(),
        }
    }

    /// A short description for operators: "circle of 300 m around 24.94140,60.17100".
    pub fn describe(&self) -> String {
        match self {
            Area::Circle(c) => format!(
                "circle of {} m around {:.5},{:.5}",
                c.radius_m,
                c.center.lon(),
                c.center.lat()
            ),
            Area::Polygon(p) => {
                let n = p.shape.0.len();
                if n == 1 {
                    "polygon".to_string()
                } else {
                    format!("{n} polygons")
                }
            }
            Area::Corridor(c) => format!(
                "corridor of {} m along a {}-point line",
                c.buffer_m,
                c.line.0.len()
            ),
            Area::Union(u) => {
                // Operators need the gist, not every vertex: name the first few parts.
                const SHOWN: usize = 3;
                let mut text = format!("union of {} areas: ", u.parts.len());
                let named: Vec<String> = u.parts.iter().take(SHOWN).map(Area::describe).collect();
                text.push_str(&named.join("; "));
                if u.parts.len() > SHOWN {
                    text.push_str(&format!("; and {} more", u.parts.len() - SHOWN));
                }
                text
            }
        }
    }
}

/// Grows a lon/lat rectangle by `metres` on every side, conservatively (the result always holds
/// every point within `metres` of the rectangle), split at the antimeridian.
fn buffered_envelopes(rect: Rect<f64>, metres: f64) -> Vec<Rect<f64>> {
    let dlat = (metres / CONSERVATIVE_EARTH_RADIUS_M).to_degrees();
    let min_lat = (rect.min().y - dlat).max(-90.0);
    let max_lat = (rect.max().y + dlat).min(90.0);
    let widest = min_lat.abs().max(max_lat.abs());
    // Near a pole a small circle can span every longitude.
    let cos = widest.to_radians().cos();
    let dlon = if cos < 1e-6 { 360.0 } else { dlat / cos };
    let (min_lon, max_lon) = (rect.min().x - dlon, rect.max().x + dlon);
    if max_lon - min_lon >= 360.0 {
        return vec![Rect::new(
            Coord {
                x: -180.0,
                y: min_lat,
            },
            Coord {
                x: 180.0,
                y: max_lat,
            },
        )];
    }
    let mut out = vec![Rect::new(
        Coord {
            x: min_lon.max(-180.0),
            y: min_lat,
        },
        Coord {
            x: max_lon.min(180.0),
            y: max_lat,
        },
    )];
    if min_lon < -180.0 {
        out.push(Rect::new(
            Coord {
                x: min_lon + 360.0,
                y: min_lat,
            },
            Coord {
                x: 180.0,
                y: max_lat,
            },
        ));
    }
    if max_lon > 180.0 {
        out.push(Rect::new(
            Coord {
                x: -180.0,
                y: min_lat,
            },
            Coord {
                x: max_lon - 360.0,
                y: max_lat,
            },
        ));
    }
    out
}

/// A polygon from one exterior ring of `[lon, lat]` pairs (a convenience for tests and docs).
pub fn polygon_from_ring(ring: &[[f64; 2]]) -> Result<PolygonArea> {
    let exterior: LineString<f64> = ring.iter().map(|&[x, y]| Coord { x, y }).collect();
    PolygonArea::new(MultiPolygon(vec![Polygon::new(exterior, vec![])]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ll(lon: f64, lat: f64) -> LonLat {
        LonLat::parse(lon, lat).unwrap()
    }

    #[test]
    fn swapped_coordinates_are_called_out() {
        let err = LonLat::parse(60.17, 124.94).unwrap_err().to_string();
        assert!(err.contains("swapped"), "{err}");
        let err = LonLat::parse(24.94, 91.0).unwrap_err().to_string();
        assert!(err.contains("latitude"), "{err}");
        assert!(LonLat::parse(f64::NAN, 0.0).is_err());
        assert!(LonLat::parse(181.0, 0.0).is_err());
    }

    #[test]
    fn circle_cli_form_names_the_flag() {
        let c = Circle::parse_cli("24.9414,60.1710,300").unwrap();
        assert_eq!(c.radius_m(), 300.0);
        let err = Circle::parse_cli("24.94,60.17").unwrap_err().to_string();
        assert!(err.starts_with("--circle"), "{err}");
        let err = Circle::parse_cli("24.94,60.17,-5").unwrap_err().to_string();
        assert!(err.contains("positive"), "{err}");
        let err = Circle::parse_cli("24.94,60.17,abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a number"), "{err}");
    }

    #[test]
    fn polygon_boundary_counts_as_inside_and_holes_do_not() {
        let shell: LineString<f64> =
            vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)].into();
        let hole: LineString<f64> =
            vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0), (1.0, 1.0)].into();
        let area = PolygonArea::new(MultiPolygon(vec![Polygon::new(shell, vec![hole])])).unwrap();
        assert!(area.contains(ll(0.0, 2.0)), "on the shell");
        assert!(area.contains(ll(3.0, 3.0)), "inside");
        assert!(!area.contains(ll(1.5, 1.5)), "in the hole");
        assert!(area.contains(ll(1.0, 1.5)), "on the hole's edge");
        assert!(!area.contains(ll(5.0, 1.0)), "outside");
    }

    #[test]
    fn self_intersecting_polygon_is_refused() {
        let err = polygon_from_ring(&[[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid polygon"), "{err}");
        let err = polygon_from_ring(&[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 4"), "{err}");
    }

    #[test]
    fn corridor_measures_distance_to_the_segment_not_its_ends() {
        let line: LineString<f64> = vec![(24.930, 60.170), (24.950, 60.170)].into();
        let corridor = Corridor::new(line, 100.0).unwrap();
        // Mid-segment, ~55 m north: inside though ~560 m from either end.
        assert!(corridor.contains(ll(24.940, 60.1705)));
        // ~111 m north: outside.
        assert!(!corridor.contains(ll(24.940, 60.171)));
        // Beyond the end by ~110 m: outside.
        assert!(!corridor.contains(ll(24.952, 60.170)));
        assert!(Corridor::new(vec![(24.9, 60.1)].into(), 10.0).is_err());
    }

    #[test]
    fn envelopes_hold_the_circle_and_split_at_the_antimeridian() {
        let c = Circle::new(ll(179.999, -17.8), 5_000.0).unwrap();
        let envs = Area::Circle(c).envelopes();
        assert_eq!(envs.len(), 2);
        let near_pole = Circle::new(ll(0.0, 89.99), 5_000.0).unwrap();
        let envs = Area::Circle(near_pole).envelopes();
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].width(), 360.0);
    }

    #[test]
    fn every_area_round_trips_through_json() {
        let circle = Area::Circle(Circle::new(ll(24.94, 60.17), 250.0).unwrap());
        let json = serde_json::to_string(&circle).unwrap();
        assert_eq!(
            json,
            r#"{"type":"circle","center":[24.94,60.17],"radius_m":250.0}"#
        );
        assert_eq!(serde_json::from_str::<Area>(&json).unwrap(), circle);
        let bad = json.replace("250.0", "-1.0");
        assert!(serde_json::from_str::<Area>(&bad).is_err());

        let shell: LineString<f64> =
            vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)].into();
        let hole: LineString<f64> =
            vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0), (1.0, 1.0)].into();
        let polygon = Area::Polygon(
            PolygonArea::new(MultiPolygon(vec![Polygon::new(shell, vec![hole])])).unwrap(),
        );
        let json = serde_json::to_string(&polygon).unwrap();
        assert!(
            json.starts_with(r#"{"type":"polygon","coordinates":[[[[0.0,0.0],"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Area>(&json).unwrap(), polygon);

        let corridor = Area::Corridor(
            Corridor::new(vec![(24.93, 60.17), (24.95, 60.17)].into(), 40.0).unwrap(),
        );
        let json = serde_json::to_string(&corridor).unwrap();
        assert_eq!(
            json,
            r#"{"type":"corridor","line":[[24.93,60.17],[24.95,60.17]],"buffer_m":40.0}"#
        );
        assert_eq!(serde_json::from_str::<Area>(&json).unwrap(), corridor);

        let union = Area::union(vec![circle.clone(), corridor.clone(), polygon.clone()]).unwrap();
        let json = serde_json::to_string(&union).unwrap();
        assert!(
            json.starts_with(r#"{"type":"union","parts":[{"type":"circle","center":[24.94,60.17]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Area>(&json).unwrap(), union);
        // Checked on the way in: an invalid part or an empty union is refused.
        assert!(serde_json::from_str::<Area>(r#"{"type":"union","parts":[]}"#).is_err());
        let bad_part = json.replace("250.0", "-1.0");
        assert!(serde_json::from_str::<Area>(&bad_part).is_err());
        // A stored nested union is flattened on the way in.
        let nested = format!(
            r#"{{"type":"union","parts":[{json},{}]}}"#,
            serde_json::to_string(&circle).unwrap()
        );
        assert_eq!(serde_json::from_str::<Area>(&nested).unwrap(), union);
    }

    #[test]
    fn stored_areas_read_back_equal_without_validating_again() {
        let ring: Vec<[f64; 2]> = (0..32_000)
            .map(|i| {
                let a = f64::from(i) / 32_000.0 * std::f64::consts::TAU;
                [24.94 + 0.02 * a.cos(), 60.17 + 0.01 * a.sin()]
            })
            .chain(std::iter::once([24.96, 60.17]))
            .collect();
        let polygon = Area::Polygon(polygon_from_ring(&ring).unwrap());
        let circle = Area::Circle(Circle::new(ll(24.94, 60.17), 250.0).unwrap());
        let union = Area::union(vec![polygon.clone(), circle.clone()]).unwrap();
        for area in [polygon, circle, union] {
            let json = serde_json::to_string(&area).unwrap();
            let before = crate::validity::validations();
            let stored =
                Area::deserialize_stored(&mut serde_json::Deserializer::from_str(&json)).unwrap();
            assert_eq!(
                crate::validity::validations(),
                before,
                "not validated on read"
            );
            // Equal to what the checking path reads (serde_json's float parsing may differ from
            // the written value in the last digit, the same way for both).
            let checked: Area = serde_json::from_str(&json).unwrap();
            assert!(stored == checked, "read back equal: {}", area.describe());
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert!(Area::deserialize_stored(value).unwrap() == checked);
        }
        // Input still goes through the checks.
        let before = crate::validity::validations();
        let json =
            serde_json::to_string(&Area::Polygon(polygon_from_ring(&ring).unwrap())).unwrap();
        let _: Area = serde_json::from_str(&json).unwrap();
        assert!(crate::validity::validations() > before);
        // The JSON form is still required.
        assert!(Area::deserialize_stored(serde_json::json!({"type": "blob"})).is_err());
    }

    #[test]
    fn a_union_holds_what_any_part_holds() {
        let west = Area::Circle(Circle::new(ll(24.93, 60.17), 200.0).unwrap());
        let square = Area::Polygon(
            polygon_from_ring(&[
                [24.95, 60.16],
                [24.96, 60.16],
                [24.96, 60.17],
                [24.95, 60.17],
                [24.95, 60.16],
            ])
            .unwrap(),
        );
        let nested = Area::union(vec![west.clone(), square.clone()]).unwrap();
        let union = Area::union(vec![nested, west.clone(), square.clone()]).unwrap();
        let Area::Union(u) = &union else {
            panic!("expected a union, got {union:?}")
        };
        assert_eq!(
            u.parts(),
            &[west.clone(), square.clone()],
            "flattened, no repeats"
        );
        assert!(union.contains(ll(24.93, 60.1701)));
        assert!(union.contains(ll(24.955, 60.165)));
        assert!(!union.contains(ll(24.94, 60.165)));
        assert_eq!(union.envelopes().len(), 2);
        assert!(
            union.describe().starts_with("union of 2 areas: circle"),
            "{}",
            union.describe()
        );
        assert_eq!(union.parts().len(), 2);
        assert_eq!(west.parts(), std::slice::from_ref(&west));
        let err = Area::union(vec![]).unwrap_err().to_string();
        assert!(err.starts_with("area: has no shapes"), "{err}");
    }
}
