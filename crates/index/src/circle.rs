//! Circles: geodesic distance from the centre ≤ radius, decided by haversine distance wherever
//! the sphere and the ellipsoid provably agree.

use outagecast_core::area::{Area, Circle};
use rstar::AABB;

use crate::sphere::{Anchor, Band, CONSERVATIVE_RADIUS_M, Local, Verdict, hav_of_distance};
use crate::{Cover, Query, lon_lat, rect_holds, rects_meet};

pub(crate) struct CircleQuery<'a> {
    circle: &'a Circle,
    /// The core's conservative envelopes (two when the circle crosses the antimeridian).
    envelopes: Vec<AABB<[f64; 2]>>,
    centre: Anchor,
    centre_lon: f64,
    /// First test: the flat metric at the centre (no trigonometry; decides nearly every point
    /// of a small circle).
    local: Local,
    /// Second test: haversine distance (decides most points of a large circle).
    band: Band,
    /// Whether nodes are judged by the flat metric's corners (small circles) rather than the
    /// haversine corners (large ones): whichever proves more of the circle inside.
    flat_nodes: bool,
}

pub(crate) fn envelopes_of(area: &Area) -> Vec<AABB<[f64; 2]>> {
    area.envelopes()
        .iter()
        .map(|r| AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]))
        .collect()
}

impl<'a> CircleQuery<'a> {
    pub(crate) fn new(circle: &'a Circle) -> Self {
        let c = circle.center();
        // Every geodesic from the centre no longer than the radius, and every great circle
        // from it shorter than the radius, stays within these latitudes (see `Band`).
        let dlat = (circle.radius_m() / CONSERVATIVE_RADIUS_M).to_degrees();
        let local = Local::new(
            c.lon(),
            c.lat(),
            circle.radius_m(),
            c.lat() - dlat,
            c.lat() + dlat,
        );
        let band = Band::new(circle.radius_m(), c.lat() - dlat, c.lat() + dlat);
        CircleQuery {
            circle,
            envelopes: envelopes_of(&Area::Circle(*circle)),
            centre: Anchor::new(c.lon(), c.lat()),
            centre_lon: c.lon(),
            flat_nodes: local.spread() <= band.spread(),
            local,
            band,
        }
    }

    /// Whether every point of the rectangle is surely inside: all four corners are in the
    /// "surely inside" part of the band, and the spherical distance from the centre over the
    /// rectangle peaks at a corner.
    ///
    /// Why the peak is at a corner: along a parallel, `cos d = sin φc sin φ + cos φc cos φ
    /// cos Δλ` falls as |Δλ| grows (for |Δλ| ≤ 180°), so d peaks at an end; along a meridian,
    /// `cos d = A sin φ + B cos φ` with `B = cos φc cos Δλ ≥ 0` when |Δλ| ≤ 90°, which is
    /// unimodal in φ ∈ [-90°, 90°], so d again peaks at an end. Every point of the rectangle is
    /// on a meridian segment between the two parallel edges, so its distance is at most a
    /// corner's. Hence the |Δλ| ≤ 90° guard (after unwrapping across the antimeridian); it only
    /// fails for nodes spanning a quarter of the globe or near a pole, which are walked into.
    fn corners_inside(&self, env: &AABB<[f64; 2]>) -> bool {
        let (lo, hi) = (env.lower(), env.upper());
        let (mut west, mut east) = (lo[0] - self.centre_lon, hi[0] - self.centre_lon);
        if east < -180.0 {
            west += 360.0;
            east += 360.0;
        } else if west > 180.0 {
            west -= 360.0;
            east -= 360.0;
        }
        if west < -90.0 || east > 90.0 {
            return false;
        }
        let limit = self.band.hav_inside();
        [
            [lo[0], lo[1]],
            [lo[0], hi[1]],
            [hi[0], lo[1]],
            [hi[0], hi[1]],
        ]
        .iter()
        .all(|c| self.centre.hav_to(c[0], c[1]) <= limit)
    }

    /// Whether every point of the node is proven inside, by the test with the narrower band.
    fn holds(&self, env: &AABB<[f64; 2]>) -> bool {
        if self.flat_nodes {
            self.local.holds_rect(env.lower(), env.upper())
        } else {
            self.corners_inside(env)
        }
    }

    fn in_envelopes(&self, at: [f64; 2]) -> bool {
        self.envelopes.iter().any(|e| rect_holds(e, at))
    }
}

impl Query for CircleQuery<'_> {
    fn node(&self, env: &AABB<[f64; 2]>) -> Cover {
        if !self.envelopes.iter().any(|e| rects_meet(e, env)) {
            Cover::Outside
        } else if self.holds(env) {
            Cover::Inside
        } else {
            Cover::Partial
        }
    }

    fn point(&self, at: [f64; 2]) -> bool {
        // The flat test is proven for every point, in or out of the envelope (see `Local`),
        // and costs a few multiplications, so it goes first; for a small circle it decides
        // nearly everything.
        match self.local.verdict(at[0], at[1]) {
            Verdict::Inside => return true,
            Verdict::Outside => return false,
            Verdict::Unsure => {}
        }
        // The envelope test is a few comparisons and spares the trigonometry for points of
        // straddling leaves that the flat test could not place (large or polar circles).
        if !self.in_envelopes(at) {
            return false;
        }
        match self.band.verdict(self.centre.hav_to(at[0], at[1])) {
            Verdict::Inside => true,
            Verdict::Outside => false,
            Verdict::Unsure => lon_lat(at).is_some_and(|p| self.circle.contains(p)),
        }
    }
}

/// The benchmark's reference: the same walk and candidates, decided by haversine alone.
pub(crate) struct HaversineOnly {
    envelopes: Vec<AABB<[f64; 2]>>,
    centre: Anchor,
    limit: f64,
}

impl HaversineOnly {
    pub(crate) fn new(circle: &Circle) -> Self {
        let c = circle.center();
        HaversineOnly {
            envelopes: envelopes_of(&Area::Circle(*circle)),
            centre: Anchor::new(c.lon(), c.lat()),
            limit: hav_of_distance(circle.radius_m()),
        }
    }
}

impl Query for HaversineOnly {
    fn node(&self, env: &AABB<[f64; 2]>) -> Cover {
        if self.envelopes.iter().any(|e| rects_meet(e, env)) {
            Cover::Partial
        } else {
            Cover::Outside
        }
    }

    fn point(&self, at: [f64; 2]) -> bool {
        self.envelopes.iter().any(|e| rect_holds(e, at))
            && self.centre.hav_to(at[0], at[1]) <= self.limit
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use geo::{Destination, Geodesic, Point};
    use outagecast_core::area::LonLat;

    fn circle(lon: f64, lat: f64, r: f64) -> Circle {
        Circle::new(LonLat::parse(lon, lat).unwrap(), r).unwrap()
    }

    /// Every point of a rectangle the node shortcuts (flat corners, haversine corners) accept
    /// is inside by the exact rule.
    #[test]
    fn corner_shortcut_only_takes_rectangles_inside() {
        let cases = [
            circle(24.94, 60.17, 500.0),
            circle(179.99, -17.8, 5_000.0),
            circle(0.0, 0.0, 100_000.0),
            circle(-70.0, 80.0, 300_000.0),
        ];
        for c in &cases {
            let q = CircleQuery::new(c);
            let (cx, cy) = (c.center().lon(), c.center().lat());
            let dlat = (c.radius_m() / 6_335_000.0).to_degrees();
            let dlon = dlat / cy.to_radians().cos();
            let mut taken = 0;
            for i in 0..20 {
                for j in 0..20 {
                    let x0 = cx - dlon + 2.0 * dlon * f64::from(i) / 20.0;
                    let y0 = cy - dlat + 2.0 * dlat * f64::from(j) / 20.0;
                    for size in [0.05, 0.2, 0.5] {
                        let (x1, y1) = (x0 + size * dlon, y0 + size * dlat);
                        let (x0, x1) = (wrap(x0), wrap(x1));
                        if x1 < x0 || y1 > 90.0 {
                            continue;
                        }
                        let env = AABB::from_corners([x0, y0], [x1, y1]);
                        let flat = q.local.holds_rect(env.lower(), env.upper());
                        let round = q.corners_inside(&env);
                        if !flat && !round {
                            continue;
                        }
                        taken += 1;
                        for a in 0..=8 {
                            for b in 0..=8 {
                                let x = x0 + (x1 - x0) * f64::from(a) / 8.0;
                                let y = y0 + (y1 - y0) * f64::from(b) / 8.0;
                                let p = LonLat::parse(x, y).unwrap();
                                assert!(c.contains(p), "{c:?} {env:?} {x},{y}");
                            }
                        }
                    }
                }
            }
            assert!(taken > 0, "the shortcut never fired for {c:?}");
        }
    }

    fn wrap(lon: f64) -> f64 {
        if lon > 180.0 {
            lon - 360.0
        } else if lon < -180.0 {
            lon + 360.0
        } else {
            lon
        }
    }

    /// Points a hair inside and outside the geodesic radius land in the band and are decided
    /// by the exact rule.
    #[test]
    fn points_on_the_rim_follow_the_exact_rule() {
        for c in [circle(24.94, 60.17, 500.0), circle(0.0, 0.0, 5.0)] {
            let q = CircleQuery::new(&c);
            let centre = c.center().point();
            for bearing in (0..360).step_by(7) {
                for scale in [0.999_999, 1.0, 1.000_001] {
                    let p: Point =
                        Geodesic.destination(centre, f64::from(bearing), c.radius_m() * scale);
                    let ll = LonLat::parse(p.x(), p.y()).unwrap();
                    assert_eq!(q.point([p.x(), p.y()]), c.contains(ll), "{bearing} {scale}");
                }
            }
        }
    }
}
