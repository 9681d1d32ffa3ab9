//! Cheap spherical distances with proven bounds against the exact ellipsoidal (WGS84) ones.
//!
//! The exact rules in `outagecast_core::area` measure geodesic distance on the WGS84 ellipsoid
//! (Karney's algorithm, about a microsecond a call). Most points are nowhere near the edge of a
//! circle or corridor, so the index first measures the spherical (haversine) distance, which
//! costs a few trigonometric calls, and calls the exact rule only when the spherical distance
//! falls in a narrow band where the two could disagree. [`Band`] says how narrow that band can
//! safely be.

use std::f64::consts::FRAC_PI_2;

/// Radius of the sphere the haversine distances are measured on: the IUGG mean Earth radius
/// (geo's `Haversine` uses the same). Any radius would do, since [`Band`] relates it to the
/// ellipsoid's radii of curvature; this one keeps the band centred near 1.
pub(crate) const SPHERE_RADIUS_M: f64 = 6_371_008.8;

/// A radius smaller than every radius of curvature of WGS84 (the smallest, the meridional
/// radius at the equator, is 6 335 439 m), so `metres / CONSERVATIVE_RADIUS_M` over-estimates
/// the angle a geodesic of that length can span in latitude. The same value as the core's
/// envelopes use.
pub(crate) const CONSERVATIVE_RADIUS_M: f64 = 6_335_000.0;

const WGS84_A: f64 = 6_378_137.0;
const WGS84_F: f64 = 1.0 / 298.257_223_563;
const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);

/// Meridional radius of curvature M(φ) (north–south), in metres.
fn meridional_radius(lat_rad: f64) -> f64 {
    let s = lat_rad.sin();
    let w = 1.0 - WGS84_E2 * s * s;
    WGS84_A * (1.0 - WGS84_E2) / (w * w.sqrt())
}

/// Prime-vertical radius of curvature N(φ) (east–west), in metres.
fn prime_vertical_radius(lat_rad: f64) -> f64 {
    let s = lat_rad.sin();
    WGS84_A / (1.0 - WGS84_E2 * s * s).sqrt()
}

/// The haversine of the central angle between two points given in radians:
/// `sin²(Δφ/2) + cos φ₁ cos φ₂ sin²(Δλ/2)`. It grows monotonically with distance, so comparing
/// it with a precomputed threshold saves the `asin` and `sqrt` of a full haversine distance.
#[inline]
pub(crate) fn hav(lat1: f64, cos_lat1: f64, lon1: f64, lat2: f64, cos_lat2: f64, lon2: f64) -> f64 {
    let sdlat = ((lat2 - lat1) * 0.5).sin();
    let sdlon = ((lon2 - lon1) * 0.5).sin();
    sdlat * sdlat + cos_lat1 * cos_lat2 * sdlon * sdlon
}

/// The haversine value of a spherical distance of `metres` (saturating at the antipode).
pub(crate) fn hav_of_distance(metres: f64) -> f64 {
    let half_angle = (metres / (2.0 * SPHERE_RADIUS_M)).min(FRAC_PI_2);
    let s = half_angle.sin();
    s * s
}

/// A position prepared for repeated haversine values against other points.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    lon: f64,
    lat: f64,
    cos_lat: f64,
}

impl Anchor {
    pub(crate) fn new(lon_deg: f64, lat_deg: f64) -> Self {
        let lat = lat_deg.to_radians();
        Anchor {
            lon: lon_deg.to_radians(),
            lat,
            cos_lat: lat.cos(),
        }
    }

    /// Haversine value of the angle between this anchor and `(lon, lat)` in degrees.
    #[inline]
    pub(crate) fn hav_to(&self, lon_deg: f64, lat_deg: f64) -> f64 {
        let lat = lat_deg.to_radians();
        hav(
            self.lat,
            self.cos_lat,
            self.lon,
            lat,
            lat.cos(),
            lon_deg.to_radians(),
        )
    }
}

/// What the spherical distance says about "ellipsoidal distance ≤ limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Inside,
    Outside,
    /// Too close to the limit to tell: ask the exact rule.
    Unsure,
}

/// Thresholds on the haversine value that decide "geodesic distance ≤ limit" without computing
/// the geodesic, for pairs of points whose connecting paths stay between two latitudes.
///
/// Why it is safe. Write lengths on the sphere of radius R as `ds² = R²(dφ² + cos²φ dλ²)` and on
/// the ellipsoid (same φ, λ as geodetic coordinates) as `ds² = M²dφ² + N²cos²φ dλ²`. At every
/// point the ratio of the two lies between `M(φ)/R` and `N(φ)/R` (it is a weighted mean of
/// them), and `M ≤ N`, both growing with `|φ|`. So along any path that stays within the
/// latitude range, `ellipsoidal length / spherical length ∈ [M(min|φ|)/R, N(max|φ|)/R]`:
/// * the great circle from A to B is a path on the ellipsoid, so
///   `geodesic ≤ ratio_max × haversine`: a haversine below `limit / ratio_max` is inside;
/// * the geodesic from A to B is a path on the sphere, so `haversine ≤ geodesic / ratio_min`:
///   a haversine above `limit / ratio_min` is outside.
///
/// Over the whole globe this is the familiar 0.56 % bound of a mean-radius sphere
/// (`M(0)/R = 0.99441`, `N(90°)/R = 1.00448`); restricted to the latitudes a small circle
/// actually spans it is much narrower (at 60° N: 1.00196…1.00364, a 0.17 % band), so fewer
/// points need the exact geodesic. The brief's fixed 0.7 % margin would be safe too; this is
/// the same bound, only tighter.
///
/// Callers must guarantee the latitude range: every path that matters (the geodesic when it is
/// no longer than the limit, the great circle when its haversine is below `limit / ratio_max`)
/// must stay within it. A range of `±limit / CONSERVATIVE_RADIUS_M` around the anchors does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Band {
    hav_inside: f64,
    hav_outside: f64,
    /// The same thresholds as spherical distances in metres (`inside_m` may be ≤ 0: nothing
    /// is surely inside).
    inside_m: f64,
    outside_m: f64,
}

/// Slack for rounding, on top of the bound above: 1e-9 relative and 1 µm absolute. The
/// haversine value in f64 is good to ~1e-15 relative plus ~1e-9 m from converting degrees to
/// radians, and geographiclib's geodesic to 15 nm, so this only ever moves a handful of points
/// from "decided" to "ask the exact rule", never the other way.
const RELATIVE_SLACK: f64 = 1e-9;
const ABSOLUTE_SLACK_M: f64 = 1e-6;

impl Band {
    /// Thresholds for `distance ≤ limit_m` between points whose relevant paths stay within
    /// latitudes `lat_lo_deg ..= lat_hi_deg`.
    pub(crate) fn new(limit_m: f64, lat_lo_deg: f64, lat_hi_deg: f64) -> Self {
        let lo = lat_lo_deg.clamp(-90.0, 90.0).to_radians();
        let hi = lat_hi_deg.clamp(-90.0, 90.0).to_radians();
        let min_abs = if lo <= 0.0 && hi >= 0.0 {
            0.0
        } else {
            lo.abs().min(hi.abs())
        };
        let max_abs = lo.abs().max(hi.abs());
        let ratio_min = meridional_radius(min_abs) / SPHERE_RADIUS_M;
        let ratio_max = prime_vertical_radius(max_abs) / SPHERE_RADIUS_M;
        let inside_m = limit_m / ratio_max * (1.0 - RELATIVE_SLACK) - ABSOLUTE_SLACK_M;
        let outside_m = limit_m / ratio_min * (1.0 + RELATIVE_SLACK) + ABSOLUTE_SLACK_M;
        Band {
            // A negative threshold never matches: everything goes to the exact rule.
            hav_inside: if inside_m > 0.0 {
                hav_of_distance(inside_m)
            } else {
                -1.0
            },
            hav_outside: hav_of_distance(outside_m),
            inside_m,
            outside_m,
        }
    }

    /// Largest spherical distance (metres, on the sphere of [`SPHERE_RADIUS_M`]) that is surely
    /// inside; ≤ 0 when none is.
    pub(crate) fn inside_m(&self) -> f64 {
        self.inside_m
    }

    /// Spherical distances (metres) above this are surely outside.
    pub(crate) fn outside_m(&self) -> f64 {
        self.outside_m
    }

    /// Largest haversine value that is surely inside.
    pub(crate) fn hav_inside(&self) -> f64 {
        self.hav_inside
    }

    /// How wide the undecided band is: (outer / inner radius)², comparable with
    /// [`Local::spread`].
    pub(crate) fn spread(&self) -> f64 {
        if self.hav_inside > 0.0 {
            self.hav_outside / self.hav_inside
        } else {
            f64::INFINITY
        }
    }

    /// Decides from a haversine value. NaN (from a degenerate input) is `Unsure`, so the exact
    /// rule has the last word on it too.
    #[inline]
    pub(crate) fn verdict(&self, hav: f64) -> Verdict {
        if hav <= self.hav_inside {
            Verdict::Inside
        } else if hav > self.hav_outside {
            Verdict::Outside
        } else {
            Verdict::Unsure
        }
    }
}

/// A cheaper first test for small circles: a flat metric frozen at the centre, with proven
/// bounds against the ellipsoid, needing no trigonometry per point.
///
/// Why it is safe. Give lon/lat the constant metric `ds² = M₀²dφ² + (N₀ cos φ₀)² dλ²` of the
/// ellipsoid at the centre (latitude φ₀). In it the shortest path from the centre to a point
/// is the coordinate-straight line, of length `D = √((M₀Δφ)² + (N₀ cos φ₀ Δλ)²)`. The true
/// metric `M(φ)²dφ² + (N(φ) cos φ)² dλ²` differs from it at each point by a factor between
/// `M(φ)/M₀` and `N(φ) cos φ / (N₀ cos φ₀)`, which depend only on φ: `M` grows with |φ|, the
/// parallel's radius `N cos φ` shrinks with it. Over a latitude range that contains φ₀ this
/// bounds the factor to `[ratio_min, ratio_max]` with `ratio_min ≤ 1 ≤ ratio_max`, so
/// * the coordinate line (which stays between the two latitudes) shows
///   `geodesic ≤ ratio_max × D`;
/// * the geodesic, when no longer than the limit, stays within the range and is a path of
///   constant-metric length at least `D`, so `geodesic ≥ ratio_min × D`.
///
/// For a 500 m circle at 31° N the factors are 1 ± 5·10⁻⁵: the band is a few centimetres,
/// against 2.5 m for the haversine [`Band`]. For large circles the band widens (and at a pole
/// `ratio_min` is 0), so callers fall back to the haversine band, then to the geodesic.
///
/// The range must hold every latitude within `limit` of the centre: `±limit /
/// CONSERVATIVE_RADIUS_M` does. `D` is convex in (Δφ, Δλ), so over a lon/lat rectangle it
/// peaks at a corner: a rectangle whose corners are all inside is inside.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    lon: f64,
    lat: f64,
    /// Metres per degree of latitude and of longitude at the centre.
    m_per_deg_lat: f64,
    m_per_deg_lon: f64,
    /// Thresholds on D² (m²).
    inside_sq: f64,
    outside_sq: f64,
}

impl Local {
    pub(crate) fn new(
        lon_deg: f64,
        lat_deg: f64,
        limit_m: f64,
        lat_lo_deg: f64,
        lat_hi_deg: f64,
    ) -> Self {
        let lat0 = lat_deg.to_radians();
        let lo = lat_lo_deg.clamp(-90.0, 90.0).to_radians();
        let hi = lat_hi_deg.clamp(-90.0, 90.0).to_radians();
        let min_abs = if lo <= 0.0 && hi >= 0.0 {
            0.0
        } else {
            lo.abs().min(hi.abs())
        };
        let max_abs = lo.abs().max(hi.abs());
        let (m0, n0) = (meridional_radius(lat0), prime_vertical_radius(lat0));
        let parallel = |phi: f64| prime_vertical_radius(phi) * phi.cos();
        let parallel0 = parallel(lat0);
        let (ratio_min, ratio_max) = if parallel0 > 0.0 {
            (
                (meridional_radius(min_abs) / m0).min(parallel(max_abs) / parallel0),
                (meridional_radius(max_abs) / m0).max(parallel(min_abs) / parallel0),
            )
        } else {
            (0.0, f64::INFINITY) // centre on a pole: no use, leave it to the haversine band
        };
        let inside_m = limit_m / ratio_max * (1.0 - RELATIVE_SLACK) - ABSOLUTE_SLACK_M;
        let outside_m = if ratio_min > 0.0 {
            limit_m / ratio_min * (1.0 + RELATIVE_SLACK) + ABSOLUTE_SLACK_M
        } else {
            f64::INFINITY
        };
        let per_rad_to_deg = std::f64::consts::PI / 180.0;
        Local {
            lon: lon_deg,
            lat: lat_deg,
            m_per_deg_lat: m0 * per_rad_to_deg,
            m_per_deg_lon: n0 * lat0.cos() * per_rad_to_deg,
            inside_sq: if inside_m > 0.0 {
                inside_m * inside_m
            } else {
                -1.0
            },
            outside_sq: outside_m * outside_m,
        }
    }

    /// How wide the undecided band is: (outer / inner radius)², comparable with
    /// [`Band::spread`].
    pub(crate) fn spread(&self) -> f64 {
        if self.inside_sq > 0.0 {
            self.outside_sq / self.inside_sq
        } else {
            f64::INFINITY
        }
    }

    /// D² from the centre to `(lon, lat)` in degrees, with `dlon` the longitude difference to
    /// use (any representative modulo 360 is an upper bound; the one in [-180, 180] is exact).
    #[inline]
    fn dist_sq(&self, dlon: f64, lat: f64) -> f64 {
        let y = (lat - self.lat) * self.m_per_deg_lat;
        let x = dlon * self.m_per_deg_lon;
        x * x + y * y
    }

    /// The verdict for a point: `Inside`/`Outside` only when proven.
    #[inline]
    pub(crate) fn verdict(&self, lon: f64, lat: f64) -> Verdict {
        let mut dlon = lon - self.lon;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let d = self.dist_sq(dlon, lat);
        if d <= self.inside_sq {
            Verdict::Inside
        } else if d > self.outside_sq {
            Verdict::Outside
        } else {
            Verdict::Unsure
        }
    }

    /// Whether every point of the rectangle is proven inside: its four corners are, measured
    /// with one consistent longitude offset (the rectangle shifted by a whole turn when that
    /// brings it nearer the centre).
    pub(crate) fn holds_rect(&self, lo: [f64; 2], hi: [f64; 2]) -> bool {
        let (mut west, mut east) = (lo[0] - self.lon, hi[0] - self.lon);
        if east < -180.0 {
            west += 360.0;
            east += 360.0;
        } else if west > 180.0 {
            west -= 360.0;
            east -= 360.0;
        }
        [west, east].iter().all(|&dlon| {
            self.dist_sq(dlon, lo[1]) <= self.inside_sq
                && self.dist_sq(dlon, hi[1]) <= self.inside_sq
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use geo::{Distance, Geodesic, Haversine, Point};

    #[test]
    fn radii_of_curvature_match_the_textbook_values() {
        assert!((meridional_radius(0.0) - 6_335_439.327).abs() < 0.01);
        assert!((prime_vertical_radius(0.0) - 6_378_137.0).abs() < 1e-6);
        assert!((meridional_radius(FRAC_PI_2) - 6_399_593.626).abs() < 0.01);
        assert!((prime_vertical_radius(FRAC_PI_2) - 6_399_593.626).abs() < 0.01);
        assert!(CONSERVATIVE_RADIUS_M < meridional_radius(0.0));
    }

    #[test]
    fn hav_matches_geo_haversine() {
        let a = Anchor::new(24.94, 60.17);
        for &(lon, lat) in &[
            (24.95, 60.18),
            (-170.0, -45.0),
            (24.94, 60.17),
            (25.0, 61.0),
        ] {
            let h = a.hav_to(lon, lat);
            let d = 2.0 * SPHERE_RADIUS_M * h.sqrt().asin();
            let expect = Haversine.distance(Point::new(24.94, 60.17), Point::new(lon, lat));
            assert!(
                (d - expect).abs() < 1e-6 * expect.max(1.0),
                "{d} vs {expect}"
            );
        }
    }

    /// Checks the band against the geodesic for many directions, latitudes and distances,
    /// including the worst cases (north–south at the equator, east–west near the poles).
    #[test]
    fn band_never_contradicts_the_geodesic() {
        for &lat in &[0.0, 0.3, 15.0, 45.0, 60.17, 75.0, 89.0, -33.0, -89.9] {
            for &limit in &[1.0, 500.0, 5_000.0, 100_000.0, 1_000_000.0] {
                let dlat = (limit / CONSERVATIVE_RADIUS_M).to_degrees();
                let band = Band::new(limit, lat - dlat, lat + dlat);
                let centre = Point::new(10.0, lat);
                let anchor = Anchor::new(10.0, lat);
                for bearing in (0..360).step_by(15) {
                    for &scale in &[0.9, 0.99, 0.995, 0.999, 1.0, 1.001, 1.005, 1.01, 1.1] {
                        use geo::Destination;
                        let p = Geodesic.destination(centre, f64::from(bearing), limit * scale);
                        let exact = Geodesic.distance(centre, p) <= limit;
                        match band.verdict(anchor.hav_to(p.x(), p.y())) {
                            Verdict::Inside => assert!(exact, "{lat} {limit} {bearing} {scale}"),
                            Verdict::Outside => assert!(!exact, "{lat} {limit} {bearing} {scale}"),
                            Verdict::Unsure => {}
                        }
                    }
                }
            }
        }
    }

    /// The local flat bound against the geodesic, as for the haversine band.
    #[test]
    fn local_never_contradicts_the_geodesic() {
        use geo::Destination;
        let mut decided = 0;
        for &lat in &[0.0, 0.3, 15.0, 31.2, 60.17, 75.0, 89.0, -33.0, -89.9, 90.0] {
            for &lon in &[10.0, 179.9999, -179.9999] {
                for &limit in &[1.0, 500.0, 5_000.0, 100_000.0, 1_000_000.0] {
                    let dlat = (limit / CONSERVATIVE_RADIUS_M).to_degrees();
                    let local = Local::new(lon, lat, limit, lat - dlat, lat + dlat);
                    let centre = Point::new(lon, lat);
                    for bearing in (0..360).step_by(15) {
                        for &scale in &[0.0, 0.5, 0.99, 0.9999, 1.0, 1.0001, 1.01, 1.5] {
                            let p = Geodesic.destination(centre, f64::from(bearing), limit * scale);
                            let exact = Geodesic.distance(centre, p) <= limit;
                            match local.verdict(p.x(), p.y()) {
                                Verdict::Inside => {
                                    assert!(exact, "{lat} {limit} {bearing} {scale}")
                                }
                                Verdict::Outside => {
                                    assert!(!exact, "{lat} {limit} {bearing} {scale}")
                                }
                                Verdict::Unsure => continue,
                            }
                            decided += 1;
                        }
                    }
                }
            }
        }
        assert!(decided > 3000, "{decided}");
    }

    #[test]
    fn local_band_is_centimetres_for_a_small_circle() {
        let dlat = (500.0 / CONSERVATIVE_RADIUS_M).to_degrees();
        let local = Local::new(121.458, 31.222, 500.0, 31.222 - dlat, 31.222 + dlat);
        let (inside, outside) = (local.inside_sq.sqrt(), local.outside_sq.sqrt());
        assert!(
            inside < 500.0 && outside > 500.0 && outside - inside < 0.1,
            "{inside}..{outside}"
        );
    }

    #[test]
    fn band_is_narrow_for_a_small_circle() {
        let band = Band::new(500.0, 60.16, 60.18);
        let inside = 2.0 * SPHERE_RADIUS_M * band.hav_inside.sqrt().asin();
        let outside = 2.0 * SPHERE_RADIUS_M * band.hav_outside.sqrt().asin();
        assert!(outside - inside < 1.0, "{inside}..{outside}");
        assert!(inside < 500.0 && outside > 497.0);
    }
}
