//! Property tests for corridors against the brute-force oracle, aimed at the shortcuts of the
//! corridor query: whole tree nodes taken without testing their points, and each point's
//! nearest-point search limited to the segments near it. Long lines with many vertices, buffers
//! from 20 m to 2 km, and points crowded onto the buffer's edge, around the vertices and onto
//! the perpendiculars at the segments' ends (where geo's along-track `acos` is ill-conditioned).
#![allow(clippy::unwrap_used)]

use geo::{Bearing, Destination, Geodesic, Haversine, InterpolatePoint, Point};
use outagecast_core::area::{Area, Corridor, LonLat};
use outagecast_core::customer::CustomerId;
use outagecast_index::CustomerIndex;
use proptest::prelude::*;

/// SplitMix64: one proptest-chosen seed expands into thousands of points.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn at(lon: f64, lat: f64) -> LonLat {
    let mut x = lon;
    while x > 180.0 {
        x -= 360.0;
    }
    while x < -180.0 {
        x += 360.0;
    }
    LonLat::parse(x, lat.clamp(-90.0, 90.0)).unwrap()
}

fn geodesic_destination(from: Point, bearing: f64, metres: f64) -> LonLat {
    let p = Geodesic.destination(from, bearing, metres);
    at(p.x(), p.y())
}

fn check(points: &[LonLat], corridor: &Corridor, shards: usize) -> Result<(), TestCaseError> {
    let area = Area::Corridor(corridor.clone());
    let numbered: Vec<(CustomerId, LonLat)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (CustomerId(i as i64), *p))
        .collect();
    let expected: Vec<CustomerId> = numbered
        .iter()
        .filter(|(_, p)| area.contains(*p))
        .map(|(id, _)| *id)
        .collect();
    let index = CustomerIndex::bulk_load_sharded(numbered, shards);
    let got = index.select(&area);
    prop_assert_eq!(
        got.len(),
        expected.len(),
        "count differs for {}",
        area.describe()
    );
    prop_assert_eq!(got, expected);
    Ok(())
}

/// A wandering line of `vertices` points starting at `(lon, lat)`.
fn wandering_line(
    rng: &mut Mix,
    lon: f64,
    lat: f64,
    vertices: usize,
    segment_m: f64,
) -> Vec<LonLat> {
    let mut line = vec![at(lon, lat)];
    let mut heading = rng.range(0.0, 360.0);
    for _ in 1..vertices {
        let last = line[line.len() - 1];
        heading += rng.range(-100.0, 100.0);
        let length = segment_m * rng.range(0.05, 1.0);
        line.push(geodesic_destination(last.point(), heading, length));
    }
    line
}

/// Points that crowd the corridor's edge and its awkward places, plus a uniform scatter.
fn points_around(rng: &mut Mix, line: &[LonLat], buffer: f64, n: usize) -> Vec<LonLat> {
    let mut points = line.to_vec();
    let hairs = [0.0, 1e-9, -1e-9, 1e-6, -1e-6, 1e-3, -1e-3, 0.01, -0.01];
    for _ in 0..n {
        let i = rng.below(line.len() - 1);
        let (a, b) = (line[i].point(), line[i + 1].point());
        let p = match rng.below(12) {
            // On the edge along a segment, within a hair.
            0..=3 => {
                let foot = Haversine.point_at_ratio_between(a, b, rng.unit());
                let side = if rng.below(2) == 0 { 90.0 } else { -90.0 };
                let bearing = Haversine.bearing(foot, b) + side + rng.range(-2.0, 2.0);
                let hair = hairs[rng.below(hairs.len())];
                geodesic_destination(foot, bearing, buffer * (1.0 + hair))
            }
            // Around a vertex, on its rim.
            4 | 5 => {
                let v = line[rng.below(line.len())].point();
                let hair = hairs[rng.below(hairs.len())];
                geodesic_destination(v, rng.range(0.0, 360.0), buffer * (1.0 + hair))
            }
            // On the perpendicular at a segment's start or end, within centimetres.
            6 | 7 => {
                let (end, other) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
                let side = if rng.below(2) == 0 { 90.0 } else { -90.0 };
                let bearing = Haversine.bearing(end, other) + side;
                let foot = Haversine.destination(end, bearing + 90.0, rng.range(-0.05, 0.05));
                let p = Haversine.destination(foot, bearing, buffer * rng.range(0.0, 1.2));
                at(p.x(), p.y())
            }
            // Anywhere within 1.5 buffers of the segment, evenly.
            8..=10 => {
                let foot = Haversine.point_at_ratio_between(a, b, rng.unit());
                geodesic_destination(foot, rng.range(0.0, 360.0), buffer * 1.5 * rng.unit())
            }
            // Past the ends of the line.
            _ => {
                let end = if rng.below(2) == 0 {
                    line[0]
                } else {
                    line[line.len() - 1]
                };
                geodesic_destination(
                    end.point(),
                    rng.range(0.0, 360.0),
                    buffer * rng.range(0.5, 1.5),
                )
            }
        };
        points.push(p);
    }
    points
}

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 32;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    /// Long lines (up to 40 vertices) with buffers from 20 m to 2 km, at ordinary and high
    /// latitudes and across the antimeridian.
    #[test]
    fn many_vertex_corridors_match_the_oracle(
        (lon, lat) in prop_oneof![
            (-180.0..=180.0f64, -70.0..=70.0f64),
            (prop_oneof![179.9..=180.0f64, -180.0..=-179.9f64], -60.0..=60.0f64),
            (-180.0..=180.0f64, prop_oneof![75.0..=89.0f64, -89.0..=-75.0f64]),
        ],
        vertices in 2usize..=40,
        buffer in (1.3..=3.3f64).prop_map(|e| 10f64.powf(e)),
        segment_factor in (-1.0..=1.5f64).prop_map(|e| 10f64.powf(e)),
        seed in any::<u64>(),
        shards in 1usize..=3,
    ) {
        let mut rng = Mix(seed);
        let line = wandering_line(&mut rng, lon, lat, vertices, buffer * segment_factor);
        let corridor = Corridor::new(
            line.iter().map(|p| (p.lon(), p.lat())).collect::<Vec<_>>().into(),
            buffer,
        )
        .unwrap();
        let points = points_around(&mut rng, &line, buffer, 2500);
        check(&points, &corridor, shards)?;
    }

    /// A dense grid under a wide corridor: most of the tree's nodes lie wholly inside and are
    /// taken whole; the answer must not change.
    #[test]
    fn dense_grid_under_a_wide_corridor_matches_the_oracle(
        lon in -170.0..=170.0f64,
        lat in -65.0..=65.0f64,
        buffer in 300.0..=2_000.0f64,
        vertices in 2usize..=6,
        seed in any::<u64>(),
    ) {
        let mut rng = Mix(seed);
        let line = wandering_line(&mut rng, lon, lat, vertices, buffer * 2.0);
        let corridor = Corridor::new(
            line.iter().map(|p| (p.lon(), p.lat())).collect::<Vec<_>>().into(),
            buffer,
        )
        .unwrap();
        // A grid over the line's neighbourhood, 60 × 60, spaced to span it.
        let (mut lo_x, mut hi_x, mut lo_y, mut hi_y) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in &line {
            lo_x = lo_x.min(p.lon());
            hi_x = hi_x.max(p.lon());
            lo_y = lo_y.min(p.lat());
            hi_y = hi_y.max(p.lat());
        }
        let dlat = (buffer * 1.3 / 6_335_000.0).to_degrees();
        let dlon = dlat / lat.to_radians().cos();
        let mut points = Vec::new();
        for i in 0..60 {
            for j in 0..60 {
                let x = lo_x - dlon + (hi_x - lo_x + 2.0 * dlon) * f64::from(i) / 59.0;
                let y = lo_y - dlat + (hi_y - lo_y + 2.0 * dlat) * f64::from(j) / 59.0;
                points.push(at(x, y));
            }
        }
        check(&points, &corridor, 1)?;
    }
}

/// The benchmark's shape (a 2.2 km line of three points with a 50 m and a 500 m buffer) over a
/// dense uniform grid.
#[test]
fn benchmark_shaped_corridors_match_the_oracle() {
    let centre = Point::new(121.4581, 31.2222);
    let offset = |east: f64, north: f64| {
        let p = Geodesic.destination(centre, 90.0, east);
        Geodesic.destination(p, 0.0, north)
    };
    let line: Vec<(f64, f64)> = [
        offset(-1_000.0, 0.0),
        offset(-200.0, 120.0),
        offset(1_000.0, -60.0),
    ]
    .iter()
    .map(|p| (p.x(), p.y()))
    .collect();
    let mut rng = Mix(7);
    let points: Vec<LonLat> = (0..40_000)
        .map(|_| {
            let p = offset(rng.range(-1_700.0, 1_700.0), rng.range(-700.0, 700.0));
            at(p.x(), p.y())
        })
        .collect();
    for buffer in [50.0, 500.0] {
        let corridor = Corridor::new(line.clone().into(), buffer).unwrap();
        check(&points, &corridor, 2).unwrap();
    }
}
