//! Corridors: geodesic distance from a point to the line's nearest point (segments are
//! great-circle arcs, as `Corridor::contains` measures them) ≤ buffer.
//!
//! The candidates come from envelopes built here rather than from `Area::envelopes`: the
//! core's corridor envelope buffers the bounding box of the line's *vertices*, but a
//! great-circle arc bulges poleward of its ends (a 20° east–west segment at 60° N reaches
//! 60.38° N) and an arc across the antimeridian spans the short way round, outside
//! `[min lon, max lon]`. The exact rule selects points there, so the index must look there.
//!
//! They also cover a quirk of geo 0.33's `Line::haversine_closest_point`, which the exact rule
//! relies on: see [`extension_end`].

use std::f64::consts::{FRAC_PI_2, PI};

use geo::{
    Bearing, Closest, Coord, Destination, Distance, Geodesic, Haversine, HaversineClosestPoint,
    Point,
};
use outagecast_core::area::Corridor;
use rstar::AABB;

use crate::sphere::{Band, CONSERVATIVE_RADIUS_M, SPHERE_RADIUS_M, Verdict, hav};
use crate::{Cover, Query, lon_lat, rect_holds, rects_meet};

/// Rounding slack in degrees (~0.1 mm) added to every box: far above the error of the
/// trigonometry here and of geo's nearest point, far below anything that changes the candidates.
const PAD_DEG: f64 = 1e-9;

/// Arcs longer than this (in radians of half-angle, ~64 km of half-length) are split at their
/// midpoint, so that each piece's latitude bound stays tight.
const MAX_HALF_ANGLE: f64 = 0.01;

pub(crate) struct CorridorQuery<'a> {
    corridor: &'a Corridor,
    envelopes: Vec<AABB<[f64; 2]>>,
    band: Band,
}

impl<'a> CorridorQuery<'a> {
    pub(crate) fn new(corridor: &'a Corridor) -> Self {
        let buffer = corridor.buffer_m();
        let mut boxes = Vec::new();
        for segment in corridor.line().lines() {
            arc_boxes(unit(segment.start), unit(segment.end), &mut boxes);
            let (from, to) = (Point::from(segment.start), Point::from(segment.end));
            if let Some(end) = extension_end(from, to, buffer) {
                arc_boxes(unit(segment.end), unit(end), &mut boxes);
            }
        }
        // A geodesic of length ≤ buffer spans at most this much latitude.
        let dlat = (buffer / CONSERVATIVE_RADIUS_M).to_degrees() + PAD_DEG;
        let mut envelopes = Vec::new();
        let (mut lat_lo, mut lat_hi) = (90.0f64, -90.0f64);
        for b in &boxes {
            buffered(b, dlat, &mut envelopes);
            lat_lo = lat_lo.min(b.lat_lo);
            lat_hi = lat_hi.max(b.lat_hi);
        }
        CorridorQuery {
            corridor,
            envelopes,
            // Paths between a selected point and its nearest point on the line stay within
            // `dlat` of the line's latitudes, as `Band` requires.
            band: Band::new(buffer, lat_lo - dlat, lat_hi + dlat),
        }
    }

    /// `Corridor::contains`, step for step, except that the final geodesic comparison is
    /// skipped when the haversine distance to the same nearest point already decides it.
    fn decide(&self, at: [f64; 2]) -> bool {
        let point = Point::new(at[0], at[1]);
        let nearest = match self.corridor.line().haversine_closest_point(&point) {
            Closest::Intersection(q) | Closest::SinglePoint(q) => q,
            Closest::Indeterminate => {
                return lon_lat(at).is_some_and(|p| self.corridor.contains(p));
            }
        };
        let (lat1, lat2) = (point.y().to_radians(), nearest.y().to_radians());
        let h = hav(
            lat1,
            lat1.cos(),
            point.x().to_radians(),
            lat2,
            lat2.cos(),
            nearest.x().to_radians(),
        );
        match self.band.verdict(h) {
            Verdict::Inside => true,
            Verdict::Outside => false,
            Verdict::Unsure => Geodesic.distance(point, nearest) <= self.corridor.buffer_m(),
        }
    }
}

impl Query for CorridorQuery<'_> {
    fn node(&self, env: &AABB<[f64; 2]>) -> Cover {
        if self.envelopes.iter().any(|e| rects_meet(e, env)) {
            Cover::Partial
        } else {
            Cover::Outside
        }
    }

    fn point(&self, at: [f64; 2]) -> bool {
        self.envelopes.iter().any(|e| rect_holds(e, at)) && self.decide(at)
    }
}

/// Where the "nearest point" that geo finds for a point near the segment `a`→`b` can lie
/// beyond `b`, as the far end of the great circle's extension past `b`; `None` if nowhere.
///
/// geo 0.33's `Line::haversine_closest_point` decides whether the foot of the perpendicular
/// falls within the segment by two bearing tests. The one at `b` compares the bearing from `b`
/// to the point with `crs_ab ± 180°`, the reverse of the initial bearing at `a`, instead of the
/// bearing from `b` back to `a`. They differ by the convergence of the meridians over the
/// segment, γ. Points past `b` in a wedge of angle γ pass the test, and their "nearest point"
/// is their foot on the great circle beyond `b`, so `Corridor::contains` selects points around
/// that extension too (reported upstream of this crate; the index follows the exact rule).
///
/// How far past `b` can the foot be? In the right spherical triangle (b, foot, point) with
/// legs e (along the circle) and x (across it), the angle at b is θ with tan θ = tan x / sin e.
/// The faulty test passes only when θ ≥ 90° − γ, i.e. sin e ≤ tan x · tan γ, and a selected
/// point has x at most the buffer (spherically, buffer / 0.9944). So e ≤ asin(tan x tan γ),
/// or, on the far side of the circle, e ≥ π − asin(tan x tan γ), which a foot (at most π from
/// `a`) can only reach when the segment is shorter than asin(tan x tan γ); then, and when
/// γ ≥ 90°, the whole rest of the great circle is possible. For a 2 km street at 60° N,
/// γ ≈ 0.03° and a 50 m buffer give e ≈ 3 cm; near a pole the extension can be long.
fn extension_end(a: Point, b: Point, buffer_m: f64) -> Option<Coord> {
    let length = Haversine.distance(a, b);
    if length <= f64::EPSILON {
        return None; // geo answers `a` for a degenerate segment
    }
    // Exactly as geo computes its reference bearing at `b`.
    let crs_ab = Haversine.bearing(a, b).to_radians();
    let crs_ba_geo = if crs_ab > 0.0 {
        crs_ab - PI
    } else {
        crs_ab + PI
    };
    let crs_ba = Haversine.bearing(b, a).to_radians();
    let mut gamma = (crs_ba_geo - crs_ba).rem_euclid(2.0 * PI);
    if gamma > PI {
        gamma = 2.0 * PI - gamma;
    }
    let gamma = gamma + 1e-9; // rounding of the bearings
    let x = buffer_m / 0.9944 / SPHERE_RADIUS_M + 1e-12;
    let sin_e = if gamma >= FRAC_PI_2 {
        1.0
    } else {
        (x.tan() * gamma.tan()).min(1.0)
    };
    let near = SPHERE_RADIUS_M * sin_e.asin() * (1.0 + 1e-6) + 1e-3;
    let rest = PI * SPHERE_RADIUS_M - length;
    let extra = if near >= length { rest } else { near.min(rest) };
    if extra <= 0.0 {
        return None;
    }
    // At most the antipode of `a`; an arc from `b` to (nearly) there is ambiguous, and
    // `arc_boxes` takes the whole globe for it.
    Some(
        Haversine
            .destination(a, crs_ab.to_degrees(), length + extra)
            .0,
    )
}

/// A lon/lat box holding (a piece of) a great-circle arc, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ArcBox {
    lat_lo: f64,
    lat_hi: f64,
    /// `(west, east)` with `west ≤ east ≤ west + 360`, `east` possibly beyond 180 when the
    /// arc crosses the antimeridian; `None` for every longitude.
    lon: Option<(f64, f64)>,
}

fn unit(c: Coord) -> [f64; 3] {
    let (lat, lon) = (c.y.to_radians(), c.x.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn add(u: [f64; 3], w: [f64; 3]) -> [f64; 3] {
    [u[0] + w[0], u[1] + w[1], u[2] + w[2]]
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn lon_deg(v: [f64; 3]) -> f64 {
    v[1].atan2(v[0]).to_degrees()
}

/// Boxes holding the minor great-circle arc from `u` to `w` (unit vectors).
///
/// The latitude bound: every point of the arc is `c / |c|` for some point `c` of the chord
/// from `u` to `w`, and `|c| ≥ cos h` where `h` is half the arc's angle. The chord's z (sine of
/// latitude) lies between the ends', so the arc's z is at most `max z / cos h` (when positive)
/// and at least `min z / cos h` (when negative). This is tight to second order in `h` and
/// needs no ill-conditioned vertex computation; `cos h = |u + w| / 2` is exact to rounding.
///
/// The longitude range: along a minor arc longitude moves monotonically the short way round
/// (the half great circle from `u` to `−u` spans exactly 180° of longitude), unless the arc
/// runs through a pole, when it jumps by 180°: then all longitudes.
fn arc_boxes(u: [f64; 3], w: [f64; 3], out: &mut Vec<ArcBox>) {
    let sum = add(u, w);
    let cos_h = norm(sum) / 2.0;
    if cos_h < 1e-6 {
        // (Nearly) antipodal ends: the arc is not well defined. Take the whole globe.
        out.push(ArcBox {
            lat_lo: -90.0,
            lat_hi: 90.0,
            lon: None,
        });
        return;
    }
    if cos_h < MAX_HALF_ANGLE.cos() {
        let mid = {
            let n = norm(sum);
            [sum[0] / n, sum[1] / n, sum[2] / n]
        };
        arc_boxes(u, mid, out);
        arc_boxes(mid, w, out);
        return;
    }
    let (z_min, z_max) = (u[2].min(w[2]), u[2].max(w[2]));
    let z_hi = if z_max > 0.0 { z_max / cos_h } else { z_max };
    let z_lo = if z_min < 0.0 { z_min / cos_h } else { z_min };
    let lat_hi = z_hi.min(1.0).asin().to_degrees() + PAD_DEG;
    let lat_lo = z_lo.max(-1.0).asin().to_degrees() - PAD_DEG;
    let reaches_pole = z_hi >= 1.0 || z_lo <= -1.0;

    let (lu, lw) = (lon_deg(u), lon_deg(w));
    let d = lw - lu;
    let lon = if reaches_pole || (d.abs() - 180.0).abs() < 1e-6 {
        None
    } else if d.abs() < 180.0 {
        Some((lu.min(lw) - PAD_DEG, lu.max(lw) + PAD_DEG))
    } else if d > 180.0 {
        // From u westward across the antimeridian to w.
        Some((lw - PAD_DEG, lu + 360.0 + PAD_DEG))
    } else {
        Some((lu - PAD_DEG, lw + 360.0 + PAD_DEG))
    };
    out.push(ArcBox {
        lat_lo,
        lat_hi,
        lon,
    });
}

/// Grows an arc's box by a geodesic distance whose latitude span is `dlat` degrees, like the
/// core's `buffered_envelopes`: within the grown latitude range a geodesic of that length
/// moves at most `dlat / cos(widest latitude)` in longitude (the east–west radius of
/// curvature is never below the conservative radius). Splits at the antimeridian.
fn buffered(b: &ArcBox, dlat: f64, out: &mut Vec<AABB<[f64; 2]>>) {
    let lat_lo = (b.lat_lo - dlat).max(-90.0);
    let lat_hi = (b.lat_hi + dlat).min(90.0);
    let all = |out: &mut Vec<AABB<[f64; 2]>>| {
        out.push(AABB::from_corners([-180.0, lat_lo], [180.0, lat_hi]));
    };
    let Some((west, east)) = b.lon else {
        return all(out);
    };
    let cos = lat_lo.abs().max(lat_hi.abs()).to_radians().cos();
    if cos < 1e-6 {
        return all(out);
    }
    let dlon = dlat / cos;
    let (west, east) = (west - dlon, east + dlon);
    if east - west >= 360.0 {
        return all(out);
    }
    // `[west, east]` lies within [-540, 540]; its images under whole turns that meet
    // [-180, 180] are the pieces.
    for turn in [-360.0, 0.0, 360.0] {
        let (w, e) = ((west + turn).max(-180.0), (east + turn).min(180.0));
        if w <= e {
            out.push(AABB::from_corners([w, lat_lo], [e, lat_hi]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use geo::{Destination, Haversine, InterpolatePoint, LineString};
    use outagecast_core::area::{Area, LonLat};

    fn boxes_of(a: (f64, f64), b: (f64, f64)) -> Vec<ArcBox> {
        let mut out = Vec::new();
        arc_boxes(unit(a.into()), unit(b.into()), &mut out);
        out
    }

    fn holds(boxes: &[ArcBox], p: Point) -> bool {
        let mut envs = Vec::new();
        for b in boxes {
            buffered(b, 0.0, &mut envs);
        }
        envs.iter().any(|e| rect_holds(e, [p.x(), p.y()]))
    }

    /// Points along the arcs (by geo's own great-circle interpolation) are inside the boxes.
    #[test]
    fn arc_boxes_hold_the_whole_arc() {
        let cases = [
            ((0.0, 60.0), (20.0, 60.0)),
            ((179.9, 0.0), (-179.9, 0.5)),
            ((-179.0, -40.0), (170.0, -45.0)),
            ((24.93, 60.17), (24.95, 60.17)),
            ((10.0, 89.0), (170.0, 89.5)),
            ((0.0, -10.0), (100.0, -80.0)),
            ((-60.0, 10.0), (-60.0, 30.0)),
            ((5.0, 5.0), (5.0, 5.0)),
        ];
        for (a, b) in cases {
            let boxes = boxes_of(a, b);
            let (pa, pb) = (Point::new(a.0, a.1), Point::new(b.0, b.1));
            for i in 0..=200 {
                let p = Haversine.point_at_ratio_between(pa, pb, f64::from(i) / 200.0);
                assert!(holds(&boxes, p), "{a:?}-{b:?}: {p:?} not in {boxes:?}");
            }
        }
    }

    #[test]
    fn arc_bulge_is_bounded_tightly() {
        let boxes = boxes_of((0.0, 60.0), (20.0, 60.0));
        let top = boxes.iter().map(|b| b.lat_hi).fold(f64::MIN, f64::max);
        // The vertex of this great circle is at 60.3787° N.
        assert!(top > 60.378 && top < 60.380, "{top}");
        let short = boxes_of((24.93, 60.17), (24.95, 60.17));
        assert_eq!(short.len(), 1);
        assert!(short[0].lat_hi - 60.17 < 1e-5, "{short:?}");
    }

    /// The two places where the core's envelope would miss corridor points, and that this
    /// module's envelopes cover (the point is in the corridor by the exact rule).
    #[test]
    fn corridor_points_beyond_the_vertex_bounding_box_are_candidates() {
        let cases = [
            (vec![(0.0, 60.0), (20.0, 60.0)], 1_000.0, (10.0, 60.3787)),
            (vec![(179.9, 0.0), (-179.9, 0.0)], 100.0, (180.0, 0.0005)),
        ];
        for (line, buffer, (x, y)) in cases {
            let corridor = Corridor::new(LineString::from(line), buffer).unwrap();
            let p = LonLat::parse(x, y).unwrap();
            assert!(corridor.contains(p), "premise: {x},{y} is in the corridor");
            let q = CorridorQuery::new(&corridor);
            assert!(q.point([x, y]), "{x},{y}");
            let core = Area::Corridor(corridor.clone()).envelopes();
            assert!(
                !core
                    .iter()
                    .any(|r| r.min().x <= x && x <= r.max().x && r.min().y <= y && y <= r.max().y),
                "premise: the core's envelope misses {x},{y}"
            );
        }
    }

    /// geo's nearest point can lie past the end of a segment (see `extension_end`); the exact
    /// rule then selects a point 2.5 km past the end of a line buffered by 411 m, and so must
    /// the index. If this premise ever fails, geo or the core has been fixed and the extension
    /// boxes are no longer needed.
    #[test]
    fn follows_geos_nearest_point_past_the_end_of_a_segment() {
        let (a, b) = (
            (72.420_593_083_198_87, -88.600_178_044_795_92),
            (-55.860_004_384_690_455, -87.276_717_734_181_64),
        );
        let corridor = Corridor::new(LineString::from(vec![a, b]), 411.3).unwrap();
        let (x, y) = (-56.030_418_345_071_055, -87.255_366_454_450_48);
        let p = LonLat::parse(x, y).unwrap();
        assert!(corridor.contains(p), "premise: the exact rule selects it");
        let past_end = Geodesic.distance(Point::new(x, y), Point::new(b.0, b.1));
        assert!(
            past_end > 2_000.0,
            "premise: {past_end} m from the line's end"
        );
        assert!(CorridorQuery::new(&corridor).point([x, y]));
        // Without the extension, the segment's own boxes miss it.
        let mut boxes = Vec::new();
        arc_boxes(unit(a.into()), unit(b.into()), &mut boxes);
        let mut envs = Vec::new();
        for bx in &boxes {
            buffered(bx, (411.3 / CONSERVATIVE_RADIUS_M).to_degrees(), &mut envs);
        }
        assert!(!envs.iter().any(|e| rect_holds(e, [x, y])));
    }

    #[test]
    fn extension_is_negligible_for_a_street() {
        let a = Point::new(24.930, 60.170);
        let b = Point::new(24.966, 60.170); // ~2 km east
        let end = extension_end(a, b, 50.0).unwrap();
        let past = Haversine.distance(b, Point::from(end));
        assert!(past < 0.1, "{past} m");
    }

    #[test]
    fn points_on_the_buffer_edge_follow_the_exact_rule() {
        let line = LineString::from(vec![(24.930, 60.170), (24.950, 60.171), (24.955, 60.180)]);
        let corridor = Corridor::new(line.clone(), 50.0).unwrap();
        let q = CorridorQuery::new(&corridor);
        for (i, c) in line.coords().enumerate() {
            for bearing in (0..360).step_by(10) {
                for d in [49.999_999, 50.0, 50.000_001, 49.8, 50.2] {
                    let p = Geodesic.destination(Point::from(*c), f64::from(bearing), d);
                    let ll = LonLat::parse(p.x(), p.y()).unwrap();
                    assert_eq!(
                        q.point([p.x(), p.y()]),
                        corridor.contains(ll),
                        "{i} {bearing} {d}"
                    );
                }
            }
        }
    }
}
