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
use std::ops::Range;

use geo::{
    Bearing, Closest, Coord, Destination, Distance, Geodesic, Haversine, HaversineClosestPoint,
    Line, Point,
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

/// Metres added to the buffer when building the candidate boxes, and to every bound on geo's
/// nearest point below. The point geo returns on a segment is computed from
/// `acos(cos d₁ / cos xtd)`, ill-conditioned when the foot of the perpendicular is near the
/// segment's start: there it can sit up to ~0.2 m (√(2·4e-16) rad) along the circle from the
/// true foot. One metre covers that with room to spare, and costs nothing measurable.
const SLOP_M: f64 = 1.0;

/// Segments shorter than this are never used to take a node whole (their great circle is
/// ill-conditioned); they still take part in every point's nearest-point search.
const MIN_INSIDE_SEGMENT_M: f64 = 1.0;

/// `sin t` bound (t: along-track angle of a point's foot from a segment's start) away from
/// which geo's `acos(cos d₁ / cos xtd)` cannot see an argument beyond ±1 (which gives NaN and
/// silently drops the segment from the line's nearest-point search).
const MIN_SIN_ALONG: f64 = 1e-6;

pub(crate) struct CorridorQuery<'a> {
    corridor: &'a Corridor,
    /// The candidate boxes of all segments; `segments[i].envelopes` indexes its own.
    envelopes: Vec<AABB<[f64; 2]>>,
    segments: Vec<Segment>,
    band: Band,
    /// Haversine distances (metres) above this are outside the buffer anywhere on Earth; and
    /// every candidate that geo can return for a segment is farther than this from a point
    /// outside that segment's boxes.
    far_m: f64,
}

/// One segment of the line, as the query sees it.
struct Segment {
    line: Line,
    envelopes: Range<usize>,
    /// For taking nodes whole; `None` for a (nearly) degenerate segment.
    arc: Option<Arc>,
}

/// A segment as a minor great-circle arc, in unit vectors.
struct Arc {
    a: [f64; 3],
    b: [f64; 3],
    /// Unit normal of the arc's plane, `a × b / |a × b|`.
    n: [f64; 3],
    /// Unit tangent at `a` towards `b` (`n × a`).
    along_a: [f64; 3],
    /// Unit tangent at `b` pointing on past `b` (`n × b`).
    along_b: [f64; 3],
    /// How much farther than the arc's own distance geo's nearest point on this segment can
    /// be, for points within the buffer of the arc (see [`quirk_slack`]); metres.
    quirk_slack_m: f64,
    /// `tan(γ + 1e-8)` (∞ from 90° on): beyond `b`, a point whose foot is farther along than
    /// this times its cross-track sine surely fails geo's test at `b` (see [`Arc::bounds`]).
    tan_gamma: f64,
}

impl<'a> CorridorQuery<'a> {
    pub(crate) fn new(corridor: &'a Corridor) -> Self {
        let buffer = corridor.buffer_m();
        // A geodesic of length ≤ buffer (+ slop) spans at most this much latitude.
        let dlat = ((buffer + SLOP_M) / CONSERVATIVE_RADIUS_M).to_degrees() + PAD_DEG;
        let mut envelopes = Vec::new();
        let mut segments = Vec::new();
        let (mut lat_lo, mut lat_hi) = (90.0f64, -90.0f64);
        let mut boxes = Vec::new();
        for line in corridor.line().lines() {
            boxes.clear();
            arc_boxes(unit(line.start), unit(line.end), &mut boxes);
            let (from, to) = (Point::from(line.start), Point::from(line.end));
            if let Some(end) = extension_end(from, to, buffer) {
                arc_boxes(unit(line.end), unit(end), &mut boxes);
            }
            let first = envelopes.len();
            for b in &boxes {
                buffered(b, dlat, &mut envelopes);
                lat_lo = lat_lo.min(b.lat_lo);
                lat_hi = lat_hi.max(b.lat_hi);
            }
            segments.push(Segment {
                line,
                envelopes: first..envelopes.len(),
                arc: Arc::new(from, to, buffer),
            });
        }
        CorridorQuery {
            corridor,
            envelopes,
            segments,
            // Paths between a selected point and its nearest point on the line stay within
            // `dlat` of the line's latitudes, as `Band` requires.
            band: Band::new(buffer, lat_lo - dlat, lat_hi + dlat),
            // Latitude 0 has the smallest radius of curvature, so this band's outer threshold
            // holds for paths anywhere.
            far_m: Band::new(buffer, 0.0, 0.0).outside_m(),
        }
    }

    /// `Corridor::contains`, step for step, except that
    /// * most points are decided by [`CorridorQuery::quick`] from cheap bounds;
    /// * geo's nearest point is searched only on the segments whose boxes hold the point, and
    ///   the search's answer is used only when it provably equals the whole line's;
    /// * the final geodesic comparison is skipped when the haversine distance to the same
    ///   nearest point already decides it.
    ///
    /// Why the partial search is exact. geo's `LineString::haversine_closest_point` asks every
    /// segment in order, returns the first `Intersection` at once, and otherwise keeps the first
    /// `SinglePoint` of strictly smallest haversine distance (NaN distances never win). Every
    /// candidate of a segment whose boxes miss the point is farther than `far_m` (the boxes
    /// hold everything within `buffer + SLOP_M` of each place geo's candidate can be, see
    /// [`extension_end`]; a candidate beyond the extension has cross-track distance above
    /// `buffer / 0.9944 + SLOP_M`) and is never an `Intersection` (that needs the point on
    /// the arc or its extension). So if the nearest candidate among the searched segments is
    /// within `far_m`, the skipped ones are strictly farther and the whole line's search
    /// returns the same point; if it is farther than `far_m`, so is the whole line's answer,
    /// and no point farther than `far_m` by haversine is within the buffer geodesically
    /// (geodesic ≥ haversine × M(0)/R everywhere). If no searched segment gave a candidate,
    /// the whole line is searched as the exact rule does.
    fn decide(&self, at: [f64; 2]) -> bool {
        match self.quick(at) {
            Some(verdict) => verdict,
            None => self.search(at),
        }
    }

    /// The exact rule's verdict from bounds on geo's nearest point ([`Arc::bounds`]) on the
    /// segments near the point, without geo's trigonometry; `None` when they cannot tell.
    ///
    /// Inside: some segment's candidate is a number within the upper bound, so the line's
    /// nearest point is at most that far (1. of [`CorridorQuery::holds_box`]), surely inside
    /// by the band. Outside: every near segment's candidate (when a number) is at least the
    /// lower bound away, and every other segment's farther than `far_m` (see
    /// [`CorridorQuery::decide`]); if every candidate is NaN the exact rule falls back to the
    /// line's first vertex, which is a candidate end of the first segment and so bounded the
    /// same way. Beyond the band's outer threshold is surely outside.
    fn quick(&self, at: [f64; 2]) -> Option<bool> {
        let p = unit(Coord { x: at[0], y: at[1] });
        let (mut upper, mut lower) = (f64::INFINITY, f64::INFINITY);
        let mut searched = false;
        for segment in &self.segments {
            let near = self.envelopes[segment.envelopes.clone()]
                .iter()
                .any(|e| rect_holds(e, at));
            if !near {
                continue;
            }
            searched = true;
            let Some(arc) = &segment.arc else {
                lower = f64::NEG_INFINITY;
                continue;
            };
            let (u, l) = arc.bounds(p);
            upper = upper.min(u);
            lower = lower.min(l);
        }
        if !searched {
            return Some(false);
        }
        if (upper * (1.0 + 1e-12) + 1e-15) * SPHERE_RADIUS_M + SLOP_M <= self.band.inside_m() {
            return Some(true);
        }
        if (lower * (1.0 - 1e-12) - 1e-15) * SPHERE_RADIUS_M - SLOP_M > self.band.outside_m() {
            return Some(false);
        }
        None
    }

    /// The exact rule with geo's nearest-point search limited to the segments near the point.
    fn search(&self, at: [f64; 2]) -> bool {
        let point = Point::new(at[0], at[1]);
        let mut searched = false;
        let mut min_distance = f64::MAX;
        let mut found = None;
        for segment in &self.segments {
            let near = self.envelopes[segment.envelopes.clone()]
                .iter()
                .any(|e| rect_holds(e, at));
            if !near {
                continue;
            }
            searched = true;
            match segment.line.haversine_closest_point(&point) {
                Closest::Intersection(q) => return self.judge(point, q),
                Closest::SinglePoint(q) => {
                    let d = Haversine.distance(q, point);
                    if d < min_distance {
                        min_distance = d;
                        found = Some(q);
                    }
                }
                Closest::Indeterminate => return self.decide_whole_line(point, at),
            }
        }
        if !searched {
            return false;
        }
        match found {
            Some(q) if min_distance <= self.far_m => self.judge(point, q),
            Some(_) => false,
            None => self.decide_whole_line(point, at),
        }
    }

    /// `Corridor::contains` with geo's search over the whole line.
    fn decide_whole_line(&self, point: Point, at: [f64; 2]) -> bool {
        match self.corridor.line().haversine_closest_point(&point) {
            Closest::Intersection(q) | Closest::SinglePoint(q) => self.judge(point, q),
            Closest::Indeterminate => lon_lat(at).is_some_and(|p| self.corridor.contains(p)),
        }
    }

    /// The exact rule's last step, "geodesic distance to `nearest` ≤ buffer", decided by the
    /// haversine band when it can.
    fn judge(&self, point: Point, nearest: Point) -> bool {
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

    /// Whether every point of the lon/lat box is selected by the exact rule, proven.
    ///
    /// Notation: angles on the unit sphere; `g_j(p)` the haversine distance from `p` to the
    /// candidate geo's `Line::haversine_closest_point` returns for segment `j`; `D_j(p)` the
    /// true spherical distance from `p` to segment `j`'s arc; `q` the box's centre and `r` a
    /// bound on the distance from `q` to every point of the box.
    ///
    /// 1. The exact rule's nearest point `c*` has haversine distance `g(p) = min_j g_j(p)` over
    ///    the segments whose `g_j(p)` is a number (or it is an `Intersection`, `p` itself, and
    ///    `p` is selected). So `g(p) ≤ g_j(p)` for any one segment `j` that gives a number.
    /// 2. For a segment `j`, geo computes `g_j(p)` in one of two ways.
    ///    * Both bearing tests pass: the candidate is the foot of the perpendicular on the great
    ///      circle, `g_j(p) = x(p)`, the distance to the great circle (+ the acos rounding,
    ///      covered by `SLOP_M`), which is at most `D_j(p)` and at most the distance to either
    ///      end.
    ///    * Otherwise: the nearer end, `min(d(p,a), d(p,b))`. That is `D_j(p)` unless the
    ///      arc's nearest point is an interior foot F. Then the test at `a` passed (it is exact:
    ///      the angle at `a` is below 90°) and the one at `b` failed, which with geo's faulty
    ///      reference bearing (see [`extension_end`]) needs the true angle at `b` above
    ///      90° − γ, i.e. `sin(d(F,b)) ≤ tan x · tan γ`, so
    ///      `d(p,b) ≤ x + d(F,b) ≤ D_j(p) + quirk_slack` (triangle inequality).
    ///
    ///    So `g_j(p) ≤ min(d(p,a), d(p,b))` and `g_j(p) ≤ D_j(p) + quirk_slack`, plus
    ///    `SLOP_M`, as long as `x(p)` is at most the buffer (for the slack's bound).
    /// 3. `g_j(p)` is a number unless `acos(cos d₁ / cos xtd)` sees an argument beyond ±1; the
    ///    exact argument is `cos t` (t: along-track angle from `a`), so it cannot when
    ///    `|sin t| ≥ MIN_SIN_ALONG`, far above the rounding (~1e-15). `|sin t| ≥ |p · along_a|`,
    ///    the sine of the distance from `p` to the great circle through `a` perpendicular to
    ///    the arc; that distance is 1-Lipschitz, so `asin|q · along_a| − r ≥ asin
    ///    MIN_SIN_ALONG` makes it hold over the whole box.
    /// 4. Distances to a point and to an arc are 1-Lipschitz (triangle inequality on the
    ///    sphere): `d(p,a) ≤ d(q,a) + r` and `D_j(p) ≤ d(q,F_q) + r` for any point F_q of the
    ///    arc, e.g. `q`'s foot when it falls on the arc.
    ///
    /// Hence with `U = min(d(q,a), d(q,b), d(q,F_q) + quirk_slack) + r + SLOP_M`, every `p`
    /// in the box has `g(p) ≤ U`. When `U ≤ band.inside_m()` (< buffer, so `x(p) ≤ U` meets
    /// 2.'s condition), the haversine distance from `p` to the exact rule's nearest point is
    /// surely inside by [`Band`] (that point is a candidate within the buffer, so within the
    /// boxes, and the path to it within the band's latitudes), so the exact geodesic test
    /// selects `p`.
    fn holds_box(&self, env: &AABB<[f64; 2]>) -> bool {
        let limit = self.band.inside_m();
        let (lo, hi) = (env.lower(), env.upper());
        // A bound on the distance from the centre to any point of the box: each term of the
        // haversine formula at its largest.
        let (half_dlat, half_dlon) = (
            ((hi[1] - lo[1]) * 0.5).to_radians(),
            ((hi[0] - lo[0]) * 0.5).to_radians(),
        );
        let centre = [(lo[0] + hi[0]) * 0.5, (lo[1] + hi[1]) * 0.5];
        let cos_max = if lo[1] <= 0.0 && hi[1] >= 0.0 {
            1.0
        } else {
            lo[1].abs().min(hi[1].abs()).to_radians().cos()
        };
        let (s_lat, s_lon) = ((half_dlat * 0.5).sin(), (half_dlon * 0.5).sin());
        let h_r = s_lat * s_lat + centre[1].to_radians().cos() * cos_max * s_lon * s_lon;
        let r = 2.0 * h_r.clamp(0.0, 1.0).sqrt().asin() * (1.0 + 1e-12) + 1e-15;
        let budget = (limit - SLOP_M) / SPHERE_RADIUS_M - r;
        if budget <= 0.0 {
            return false;
        }
        let q = unit(Coord {
            x: centre[0],
            y: centre[1],
        });
        let clear = r + MIN_SIN_ALONG.asin() + 1e-12;
        self.segments.iter().any(|segment| {
            let Some(arc) = &segment.arc else {
                return false;
            };
            let along = dot(q, arc.along_a);
            if along.abs().min(1.0).asin() < clear {
                return false;
            }
            let mut bound = angle(q, arc.a).min(angle(q, arc.b));
            if along >= 0.0 && dot(q, arc.along_b) <= 0.0 {
                let x = dot(q, arc.n).abs().min(1.0).asin();
                bound = bound.min(x + arc.quirk_slack_m / SPHERE_RADIUS_M);
            }
            bound * (1.0 + 1e-12) + 1e-15 <= budget
        })
    }
}

impl Arc {
    /// For the point `p` (unit vector), angles `(upper, lower)` (radians) such that geo's
    /// candidate on this segment is at haversine distance at most `upper·R + SLOP_M`, when
    /// that distance is a number and `upper·R` is at most the buffer, and at least
    /// `lower·R − SLOP_M`. `upper` is ∞ where geo's `acos` could give NaN.
    ///
    /// The upper bound is [`CorridorQuery::holds_box`]'s for a box of one point. The lower
    /// one: geo's candidate is either its foot on the great circle (at least the cross-track
    /// distance `x` away, less the slop) or the nearer end (at least `x` away as well, since
    /// both ends are on the circle). When a bearing test surely fails, it is the nearer end:
    /// * behind `a`, the true angle at `a` is `90° + atan(sin|t| / tan x)` (right spherical
    ///   triangle), and `sin|t| / tan x = −(p·along_a) / |p·n|`;
    /// * past `b`, the true angle at `b` is `90° + atan(sin e / tan x)` with
    ///   `sin e / tan x = (p·along_b) / |p·n|`, and geo's reference bearing is off by γ.
    ///
    /// The bearings geo compares are good to ~3e-9 rad when the points are ≥ 1 m apart (the
    /// segment is ≥ 1 m long), so an excess of 1e-8 rad beyond 90° (+ γ at `b`) is decisive.
    /// Only for `|p·n| < 0.8` (x < 53°), where the right-triangle relations are used.
    fn bounds(&self, p: [f64; 3]) -> (f64, f64) {
        /// tan(1e-8), and 1 m in radians.
        const TAN_MARGIN: f64 = 1e-8;
        const ONE_METRE: f64 = 1.0 / SPHERE_RADIUS_M;
        let pn = dot(p, self.n).abs();
        if pn >= 0.8 {
            return (f64::INFINITY, f64::NEG_INFINITY);
        }
        let x = pn.asin();
        let (sa, sb) = (dot(p, self.along_a), dot(p, self.along_b));
        let (da, db) = (angle(p, self.a), angle(p, self.b));
        let ends = da.min(db);
        let upper = if sa.abs() >= MIN_SIN_ALONG {
            if sa >= 0.0 && sb <= 0.0 {
                ends.min(x + self.quirk_slack_m / SPHERE_RADIUS_M)
            } else {
                ends
            }
        } else {
            f64::INFINITY
        };
        let behind_a = -sa > pn * TAN_MARGIN + 1e-15 && da >= ONE_METRE;
        let past_b = sb > pn * self.tan_gamma + 1e-15 && db >= ONE_METRE;
        let lower = if behind_a || past_b { ends } else { x };
        (upper, lower)
    }

    fn new(a: Point, b: Point, buffer_m: f64) -> Option<Arc> {
        let length = Haversine.distance(a, b);
        if length.is_nan() || length < MIN_INSIDE_SEGMENT_M {
            return None;
        }
        let (ua, ub) = (unit(a.0), unit(b.0));
        // a × (b − a) = a × b, without the cancellation of two nearly equal vectors.
        let n = normalized(cross(ua, sub(ub, ua)))?;
        Some(Arc {
            a: ua,
            b: ub,
            n,
            along_a: cross(n, ua),
            along_b: cross(n, ub),
            quirk_slack_m: quirk_slack(a, b, buffer_m),
            tan_gamma: match convergence(a, b) {
                Some((_, _, gamma)) if gamma + 1e-8 < FRAC_PI_2 => (gamma + 1e-8).tan(),
                _ => f64::INFINITY,
            },
        })
    }
}

impl Query for CorridorQuery<'_> {
    fn node(&self, env: &AABB<[f64; 2]>) -> Cover {
        if !self.envelopes.iter().any(|e| rects_meet(e, env)) {
            Cover::Outside
        } else if self.holds_box(env) {
            Cover::Inside
        } else {
            Cover::Partial
        }
    }

    fn point(&self, at: [f64; 2]) -> bool {
        self.decide(at)
    }
}

/// geo's reference bearing at `b` and the true one differ by γ (see [`extension_end`]);
/// returns `(length in metres, initial bearing at a in radians, γ + rounding)`, or `None` for
/// a segment geo treats as a point.
fn convergence(a: Point, b: Point) -> Option<(f64, f64, f64)> {
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
    Some((length, crs_ab, gamma + 1e-9)) // + rounding of the bearings
}

/// For a point within `buffer_m` (spherical) of the arc `a`→`b` whose nearest point on the arc
/// is an interior foot F, a bound (metres) on how far F can be from `b` when geo's faulty test
/// at `b` sends it to an end instead: `sin d(F,b) ≤ tan x · tan γ` (see [`extension_end`]).
/// Infinite when that does not bound d(F,b) (γ ≥ 90°, or an arc so long that the far solution
/// `π − asin(…)` is possible).
fn quirk_slack(a: Point, b: Point, buffer_m: f64) -> f64 {
    let Some((length, _, gamma)) = convergence(a, b) else {
        return f64::INFINITY;
    };
    if gamma >= FRAC_PI_2 {
        return f64::INFINITY;
    }
    let x = buffer_m / SPHERE_RADIUS_M + 1e-12;
    let sin_e = x.tan() * gamma.tan();
    if sin_e.is_nan() || sin_e >= 1.0 {
        return f64::INFINITY;
    }
    let e = SPHERE_RADIUS_M * sin_e.asin() * (1.0 + 1e-6) + 1e-3;
    if length + e >= 0.99 * PI * SPHERE_RADIUS_M {
        return f64::INFINITY;
    }
    e
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
    let (length, crs_ab, gamma) = convergence(a, b)?;
    // Cross-track distances up to the buffer on the sphere (+ the slop on geo's foot).
    let x = (buffer_m / 0.9944 + SLOP_M) / SPHERE_RADIUS_M + 1e-12;
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

fn sub(u: [f64; 3], w: [f64; 3]) -> [f64; 3] {
    [u[0] - w[0], u[1] - w[1], u[2] - w[2]]
}

fn dot(u: [f64; 3], w: [f64; 3]) -> f64 {
    u[0] * w[0] + u[1] * w[1] + u[2] * w[2]
}

fn cross(u: [f64; 3], w: [f64; 3]) -> [f64; 3] {
    [
        u[1] * w[2] - u[2] * w[1],
        u[2] * w[0] - u[0] * w[2],
        u[0] * w[1] - u[1] * w[0],
    ]
}

fn normalized(v: [f64; 3]) -> Option<[f64; 3]> {
    let n = norm(v);
    (n > 0.0 && n.is_finite()).then(|| [v[0] / n, v[1] / n, v[2] / n])
}

/// The angle between two unit vectors, from the chord (accurate for small angles too).
fn angle(u: [f64; 3], w: [f64; 3]) -> f64 {
    2.0 * (norm(sub(u, w)) * 0.5).min(1.0).asin()
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

    /// A query that counts the nodes its inner query takes whole.
    struct Counting<'q, 'a> {
        inner: &'q CorridorQuery<'a>,
        inside: std::cell::Cell<usize>,
        points: std::cell::Cell<usize>,
    }

    impl Query for Counting<'_, '_> {
        fn node(&self, env: &AABB<[f64; 2]>) -> Cover {
            let cover = self.inner.node(env);
            if cover == Cover::Inside {
                self.inside.set(self.inside.get() + 1);
            }
            cover
        }
        fn point(&self, at: [f64; 2]) -> bool {
            self.points.set(self.points.get() + 1);
            self.inner.point(at)
        }
    }

    /// Every box the query takes whole is inside by the exact rule at its corners, along its
    /// edges and all over it; and it does take boxes whole.
    #[test]
    fn boxes_taken_whole_are_inside() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let lines = [
            vec![(24.930, 60.170), (24.950, 60.171), (24.955, 60.180)],
            vec![
                (121.45, 31.22),
                (121.46, 31.225),
                (121.47, 31.219),
                (121.48, 31.23),
            ],
            vec![(179.99, -10.0), (-179.99, -10.01)],
            vec![(10.0, 84.0), (30.0, 84.2)],
            vec![(-70.0, -33.4), (-70.0, -33.3)],
        ];
        let mut taken = 0;
        for line in lines {
            for buffer in [20.0, 50.0, 500.0, 2_000.0] {
                let corridor = Corridor::new(LineString::from(line.clone()), buffer).unwrap();
                let q = CorridorQuery::new(&corridor);
                let coords: Vec<Coord> = corridor.line().coords().copied().collect();
                for _ in 0..300 {
                    let i = (unit() * (coords.len() - 1) as f64) as usize;
                    let (a, b) = (Point::from(coords[i]), Point::from(coords[i + 1]));
                    let on = Haversine.point_at_ratio_between(a, b, unit());
                    let c = Haversine.destination(on, unit() * 360.0, buffer * unit());
                    let half = (buffer * unit() * 0.5 / 111_000.0).max(1e-9);
                    let wide = half / c.y().to_radians().cos().max(0.05) * (0.2 + unit());
                    let (lo, hi) = ([c.x() - wide, c.y() - half], [c.x() + wide, c.y() + half]);
                    if lo[0] < -180.0 || hi[0] > 180.0 {
                        continue;
                    }
                    if !q.holds_box(&AABB::from_corners(lo, hi)) {
                        continue;
                    }
                    taken += 1;
                    let mut probes = Vec::new();
                    for k in 0..=8 {
                        let t = f64::from(k) / 8.0;
                        let (x, y) = (lo[0] + (hi[0] - lo[0]) * t, lo[1] + (hi[1] - lo[1]) * t);
                        probes.extend([[x, lo[1]], [x, hi[1]], [lo[0], y], [hi[0], y]]);
                    }
                    for _ in 0..20 {
                        probes.push([
                            lo[0] + (hi[0] - lo[0]) * unit(),
                            lo[1] + (hi[1] - lo[1]) * unit(),
                        ]);
                    }
                    for p in probes {
                        let ll = LonLat::parse(p[0], p[1]).unwrap();
                        assert!(
                            corridor.contains(ll),
                            "{p:?} in a box taken whole ({lo:?}..{hi:?}) but not in {line:?}/{buffer}"
                        );
                    }
                }
            }
        }
        assert!(taken > 1000, "only {taken} boxes taken whole");
    }

    /// On a dense grid under a wide corridor, the walk takes nodes whole and tests fewer points
    /// than it selects (only those in nodes across the buffer's edge), and the selection
    /// equals the exact rule's.
    #[test]
    fn wide_corridor_takes_nodes_whole() {
        use crate::CustomerIndex;
        use outagecast_core::customer::CustomerId;
        let mut points = Vec::new();
        for i in 0..300 {
            for j in 0..150 {
                let (x, y) = (24.90 + f64::from(i) * 2e-4, 60.16 + f64::from(j) * 1e-4);
                points.push((
                    CustomerId(i64::from(i * 1000 + j)),
                    LonLat::parse(x, y).unwrap(),
                ));
            }
        }
        let line = LineString::from(vec![(24.91, 60.165), (24.93, 60.168), (24.95, 60.166)]);
        let corridor = Corridor::new(line, 500.0).unwrap();
        let area = Area::Corridor(corridor.clone());
        let index = CustomerIndex::bulk_load_sharded(points.clone(), 1);
        let query = CorridorQuery::new(&corridor);
        let counting = Counting {
            inner: &query,
            inside: std::cell::Cell::new(0),
            points: std::cell::Cell::new(0),
        };
        let mut ids = Vec::new();
        for tree in &index.shards {
            crate::walk(tree.root(), &counting, &mut ids);
        }
        ids.sort_unstable();
        let expected: Vec<i64> = points
            .iter()
            .filter(|(_, p)| area.contains(*p))
            .map(|(id, _)| id.0)
            .collect();
        let mut expected = expected;
        expected.sort_unstable();
        assert_eq!(ids, expected);
        assert!(
            counting.inside.get() > 100,
            "{} nodes taken whole",
            counting.inside.get()
        );
        assert!(
            counting.points.get() < ids.len(),
            "{} points tested for {} selected",
            counting.points.get(),
            ids.len()
        );
    }

    /// Whenever the cheap bounds decide a point, the exact rule agrees; and they decide all
    /// but a thin shell around the buffer's edge.
    #[test]
    fn quick_verdicts_agree_with_the_exact_rule() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let lines = [
            vec![(121.45, 31.22), (121.46, 31.225), (121.47, 31.219)],
            vec![
                (24.930, 60.170),
                (24.950, 60.171),
                (24.955, 60.180),
                (24.93, 60.18),
            ],
            vec![(179.995, 10.0), (-179.995, 10.003)],
            vec![(10.0, 85.0), (40.0, 85.3)],
        ];
        let (mut decided, mut total) = (0, 0);
        for line in lines {
            for buffer in [20.0, 100.0, 500.0, 2_000.0] {
                let corridor = Corridor::new(LineString::from(line.clone()), buffer).unwrap();
                let q = CorridorQuery::new(&corridor);
                let coords: Vec<Coord> = corridor.line().coords().copied().collect();
                for _ in 0..2000 {
                    let i = (unit() * (coords.len() - 1) as f64) as usize;
                    let (a, b) = (Point::from(coords[i]), Point::from(coords[i + 1]));
                    let base = if unit() < 0.2 {
                        Point::from(coords[(unit() * coords.len() as f64) as usize])
                    } else {
                        Haversine.point_at_ratio_between(a, b, unit())
                    };
                    let d = buffer
                        * if unit() < 0.5 {
                            2.0 * unit()
                        } else {
                            0.99 + 0.02 * unit()
                        };
                    let p = Geodesic.destination(base, unit() * 360.0, d);
                    total += 1;
                    if let Some(v) = q.quick([p.x(), p.y()]) {
                        decided += 1;
                        let ll = LonLat::parse(p.x(), p.y()).unwrap();
                        assert_eq!(v, corridor.contains(ll), "{p:?} {line:?} {buffer}");
                    }
                }
            }
        }
        assert!(decided * 10 > total * 6, "{decided} of {total} decided");
    }

    /// Points on the perpendicular at the line's first vertex, where geo's along-track `acos`
    /// can see an argument above 1 and drop the segment: the index follows the exact rule.
    #[test]
    fn points_on_the_perpendicular_at_the_start_follow_the_exact_rule() {
        let line = LineString::from(vec![(24.930, 60.170), (24.950, 60.171), (24.960, 60.168)]);
        let corridor = Corridor::new(line, 300.0).unwrap();
        let q = CorridorQuery::new(&corridor);
        let (a, b) = (Point::new(24.930, 60.170), Point::new(24.950, 60.171));
        let bearing = Haversine.bearing(a, b);
        for side in [90.0, -90.0] {
            for k in 0..400 {
                let along = (f64::from(k) - 200.0) * 1e-3;
                let foot = Haversine.destination(a, bearing, along);
                for d in [10.0, 100.0, 290.0, 299.9, 300.0, 300.1] {
                    let p = Haversine.destination(foot, bearing + side, d);
                    let ll = LonLat::parse(p.x(), p.y()).unwrap();
                    assert_eq!(
                        q.point([p.x(), p.y()]),
                        corridor.contains(ll),
                        "{along} {d}"
                    );
                }
            }
        }
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
