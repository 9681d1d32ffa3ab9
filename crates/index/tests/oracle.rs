//! Property tests: `CustomerIndex::select` against the brute-force oracle
//! `points.filter(|p| area.contains(p))`, on point sets that crowd the places where a fast path
//! could go wrong (rims, vertices, edges, the antimeridian, high latitudes, duplicates).
#![allow(clippy::unwrap_used)]

use geo::{Destination, Geodesic, InterpolatePoint, LineString, MultiPolygon, Point, Polygon};
use outagecast_core::area::{Area, Circle, Corridor, LonLat, PolygonArea};
use outagecast_core::customer::CustomerId;
use outagecast_index::CustomerIndex;
use proptest::prelude::*;

/// A small deterministic generator (SplitMix64), so that one proptest-chosen seed expands into
/// thousands of points without proptest having to shrink them one by one.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
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

fn wrap_lon(lon: f64) -> f64 {
    let mut x = lon;
    while x > 180.0 {
        x -= 360.0;
    }
    while x < -180.0 {
        x += 360.0;
    }
    x
}

/// A valid `LonLat` for any `(lon, lat)`: longitude wrapped, latitude clamped.
fn at(lon: f64, lat: f64) -> LonLat {
    LonLat::parse(wrap_lon(lon), lat.clamp(-90.0, 90.0)).unwrap()
}

fn destination(from: LonLat, bearing: f64, metres: f64) -> LonLat {
    let p = Geodesic.destination(from.point(), bearing, metres);
    at(p.x(), p.y())
}

/// Adds re-used points (several customers at one building) and numbers everything.
fn with_duplicates(points: Vec<LonLat>, rng: &mut Mix) -> Vec<(CustomerId, LonLat)> {
    let mut all = points.clone();
    if !points.is_empty() {
        for _ in 0..points.len() / 5 {
            let p = points[rng.below(points.len())];
            for _ in 0..=rng.below(4) {
                all.push(p);
            }
        }
    }
    all.into_iter()
        .enumerate()
        .map(|(i, p)| (CustomerId(i as i64 * 3 - 1000), p))
        .collect()
}

fn brute_force(points: &[(CustomerId, LonLat)], area: &Area) -> Vec<CustomerId> {
    let mut ids: Vec<CustomerId> = points
        .iter()
        .filter(|(_, p)| area.contains(*p))
        .map(|(id, _)| *id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn check(
    points: Vec<(CustomerId, LonLat)>,
    area: &Area,
    shards: usize,
) -> Result<(), TestCaseError> {
    let expected = brute_force(&points, area);
    let index = CustomerIndex::bulk_load_sharded(points, shards);
    let got = index.select(area);
    prop_assert_eq!(
        got.len(),
        expected.len(),
        "count differs for {}",
        area.describe()
    );
    prop_assert_eq!(got, expected);
    Ok(())
}

/// Circle centres: anywhere, near the antimeridian, or at high latitude.
fn centre() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        (-180.0..=180.0f64, -85.0..=85.0f64),
        (
            prop_oneof![179.0..=180.0f64, -180.0..=-179.0f64],
            -60.0..=60.0f64
        ),
        (
            -180.0..=180.0f64,
            prop_oneof![70.0..=89.99f64, -89.99..=-70.0f64]
        ),
    ]
}

/// Radii (and buffers) spread evenly over orders of magnitude.
fn metres(lo_exp: f64, hi_exp: f64) -> impl Strategy<Value = f64> {
    (lo_exp..=hi_exp).prop_map(|e| 10f64.powf(e))
}

/// 48 cases per property keep the suite at a few seconds in a debug build;
/// `PROPTEST_CASES=5000 cargo test -p outagecast-index --release` soaks it.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 48;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    /// Circles from a metre to 100 km (sometimes up to 1000 km).
    #[test]
    fn circles_match_the_oracle(
        (lon, lat) in centre(),
        radius in prop_oneof![4 => metres(0.0, 5.0), 1 => metres(5.0, 6.0)],
        seed in any::<u64>(),
        shards in 1usize..=4,
    ) {
        let mut rng = Mix(seed);
        let c = at(lon, lat);
        let circle = Circle::new(c, radius).unwrap();
        let mut points = vec![c];
        for _ in 0..1200 {
            let bearing = rng.range(0.0, 360.0);
            let p = match rng.below(10) {
                // Spread over 1.5 radii, evenly by area.
                0..=5 => destination(c, bearing, radius * 1.5 * rng.unit().sqrt()),
                // On the rim, or within a hair of it.
                6 | 7 => {
                    let hair = [0.0, 1e-9, -1e-9, 1e-7, -1e-7, 1e-4, -1e-4][rng.below(7)];
                    destination(c, bearing, radius * (1.0 + hair))
                }
                // Anywhere in the envelope, wrapped across the antimeridian.
                _ => {
                    let dlat = (radius / 6_335_000.0).to_degrees();
                    let dlon = (dlat / lat.to_radians().cos().max(1e-3)).min(180.0);
                    at(lon + rng.range(-dlon, dlon), lat + rng.range(-dlat, dlat))
                }
            };
            points.push(p);
        }
        check(with_duplicates(points, &mut rng), &Area::Circle(circle), shards)?;
    }

    /// Star-shaped polygons with an optional star hole, alone or several as a multipolygon,
    /// from a few metres to hundreds of kilometres across; points on every vertex, exactly on
    /// edges, and scattered around.
    #[test]
    fn polygons_match_the_oracle(
        cx in -170.0..170.0f64,
        cy in -75.0..75.0f64,
        size_exp in -4.0..0.5f64,
        parts in 1usize..=3,
        seed in any::<u64>(),
        shards in 1usize..=4,
    ) {
        let mut rng = Mix(seed);
        let size = 10f64.powf(size_exp);
        let mut polygons = Vec::new();
        for part in 0..parts {
            // Parts side by side, 3 sizes apart, so they never overlap.
            let centre = (cx + 3.0 * size * part as f64, cy);
            let shell = star(&mut rng, centre, size, 0.5);
            let holes = if rng.below(2) == 0 {
                vec![star(&mut rng, centre, size * 0.2, 0.3)]
            } else {
                vec![]
            };
            polygons.push(Polygon::new(shell, holes));
        }
        let Ok(area) = PolygonArea::new(MultiPolygon(polygons)) else {
            // A star whose snapped vertices happen to coincide; rare, and not what we test.
            return Err(TestCaseError::reject("invalid polygon"));
        };
        let mut points = Vec::new();
        for polygon in area.shape() {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                for line in ring.lines() {
                    points.push(at(line.start.x, line.start.y));
                    // Exactly on the edge: the vertices are multiples of 2^-20, so these
                    // quarter points are computed without rounding.
                    for k in 1..4 {
                        let t = f64::from(k) / 4.0;
                        points.push(at(
                            line.start.x + (line.end.x - line.start.x) * t,
                            line.start.y + (line.end.y - line.start.y) * t,
                        ));
                    }
                }
            }
        }
        let width = 3.0 * size * parts as f64;
        for _ in 0..1500 {
            points.push(at(
                cx - 1.3 * size + rng.range(0.0, width + 0.6 * size),
                cy + rng.range(-1.3 * size, 1.3 * size),
            ));
        }
        check(with_duplicates(points, &mut rng), &Area::Polygon(area), shards)?;
    }

    /// Rectilinear polygons on a grid that the points share, so that points and whole tree
    /// nodes lie on the edges and vertices.
    #[test]
    fn grid_polygons_match_the_oracle(
        x0 in -100i32..100,
        y0 in -60i32..60,
        w in 4u32..40,
        h in 4u32..40,
        hole in proptest::option::of((1u32..10, 1u32..10, 1u32..5, 1u32..5)),
        shards in 1usize..=4,
        seed in any::<u64>(),
    ) {
        let step = 1.0 / 1024.0;
        let gx = |i: i64| f64::from(x0) + i as f64 * step;
        let gy = |j: i64| f64::from(y0) + j as f64 * step;
        let (w, h) = (i64::from(w), i64::from(h));
        let rect = |x: i64, y: i64, rw: i64, rh: i64| -> LineString {
            vec![(gx(x), gy(y)), (gx(x + rw), gy(y)), (gx(x + rw), gy(y + rh)), (gx(x), gy(y + rh)), (gx(x), gy(y))].into()
        };
        let holes = match hole {
            Some((hx, hy, hw, hh)) if i64::from(hx + hw) < w && i64::from(hy + hh) < h => {
                vec![rect(i64::from(hx), i64::from(hy), i64::from(hw), i64::from(hh))]
            }
            _ => vec![],
        };
        let area = PolygonArea::new(MultiPolygon(vec![Polygon::new(rect(0, 0, w, h), holes)])).unwrap();
        let mut rng = Mix(seed);
        let mut points = Vec::new();
        for i in -3..=w + 3 {
            for j in -3..=h + 3 {
                points.push(at(gx(i), gy(j)));
                if rng.below(3) == 0 {
                    points.push(at(gx(i) + step * 0.5, gy(j)));
                }
            }
        }
        check(with_duplicates(points, &mut rng), &Area::Polygon(area), shards)?;
    }

    /// Corridors of 2–5 points with segments from 10 m to 20 km (sometimes 500 km, where the
    /// great-circle arcs bulge), buffers from 1 m to 5 km, anywhere including the antimeridian
    /// and high latitudes.
    #[test]
    fn corridors_match_the_oracle(
        (lon, lat) in centre(),
        vertices in 2usize..=5,
        segment in prop_oneof![4 => metres(1.0, 4.3), 1 => metres(5.0, 5.7)],
        buffer in metres(0.0, 3.7),
        seed in any::<u64>(),
        shards in 1usize..=4,
    ) {
        let mut rng = Mix(seed);
        let mut line = vec![at(lon, lat)];
        for _ in 1..vertices {
            let last = line[line.len() - 1];
            line.push(destination(last, rng.range(0.0, 360.0), segment * rng.range(0.2, 1.0)));
        }
        let corridor = Corridor::new(
            line.iter().map(|p| (p.lon(), p.lat())).collect::<Vec<_>>().into(),
            buffer,
        )
        .unwrap();
        let mut points = line.clone();
        for _ in 0..1200 {
            let bearing = rng.range(0.0, 360.0);
            let i = rng.below(line.len() - 1);
            let (a, b) = (line[i].point(), line[i + 1].point());
            let along = geo::Haversine.point_at_ratio_between(a, b, rng.unit());
            let along = at(along.x(), along.y());
            let p = match rng.below(10) {
                0..=5 => destination(along, bearing, buffer * 2.0 * rng.unit()),
                6 | 7 => {
                    let v = line[rng.below(line.len())];
                    let hair = [0.0, 1e-9, -1e-9, 1e-6, -1e-6][rng.below(5)];
                    destination(v, bearing, buffer * (1.0 + hair))
                }
                8 => along,
                _ => destination(along, bearing, buffer * 10.0 * rng.unit()),
            };
            points.push(p);
        }
        check(with_duplicates(points, &mut rng), &Area::Corridor(corridor), shards)?;
    }

    /// Unions of overlapping circles, a polygon and a corridor: inside any part, each id once.
    #[test]
    fn unions_match_the_oracle(
        (lon, lat) in (-170.0..170.0f64, -70.0..70.0f64),
        parts in 2usize..=4,
        seed in any::<u64>(),
        shards in 1usize..=3,
    ) {
        let mut rng = Mix(seed);
        let c = at(lon, lat);
        let mut areas = Vec::new();
        for i in 0..parts {
            let centre = destination(c, rng.range(0.0, 360.0), rng.range(0.0, 800.0));
            let area = match i % 3 {
                0 => Area::Circle(Circle::new(centre, rng.range(50.0, 700.0)).unwrap()),
                1 => {
                    let d = rng.range(0.001, 0.008);
                    let ring = [
                        [centre.lon() - d, centre.lat() - d],
                        [centre.lon() + d, centre.lat() - d],
                        [centre.lon() + d, centre.lat() + d],
                        [centre.lon() - d, centre.lat() + d],
                        [centre.lon() - d, centre.lat() - d],
                    ];
                    Area::Polygon(outagecast_core::area::polygon_from_ring(&ring).unwrap())
                }
                _ => {
                    let end = destination(centre, rng.range(0.0, 360.0), 900.0);
                    let line = vec![(centre.lon(), centre.lat()), (end.lon(), end.lat())];
                    Area::Corridor(Corridor::new(line.into(), rng.range(5.0, 100.0)).unwrap())
                }
            };
            areas.push(area);
        }
        let area = Area::union(areas).unwrap();
        let points: Vec<LonLat> = (0..1500)
            .map(|_| destination(c, rng.range(0.0, 360.0), 1_800.0 * rng.unit().sqrt()))
            .collect();
        check(with_duplicates(points, &mut rng), &area, shards)?;
    }

    /// Inserts and removes (including of entries that are not there) keep the index equal to
    /// the multiset it should hold.
    #[test]
    fn inserts_and_removes_match_a_model(seed in any::<u64>(), shards in 1usize..=3) {
        let mut rng = Mix(seed);
        let spot = |rng: &mut Mix| at(24.9 + rng.range(0.0, 0.02), 60.16 + rng.range(0.0, 0.01));
        let mut model: Vec<(CustomerId, LonLat)> =
            (0..300).map(|i| (CustomerId(i), spot(&mut rng))).collect();
        let mut index = CustomerIndex::bulk_load_sharded(model.clone(), shards);
        for step in 0..300 {
            if rng.below(2) == 0 || model.is_empty() {
                let entry = if rng.below(4) == 0 && !model.is_empty() {
                    model[rng.below(model.len())] // a repeat of an existing entry
                } else {
                    (CustomerId(1000 + step), spot(&mut rng))
                };
                index.insert(entry.0, entry.1);
                model.push(entry);
            } else if rng.below(5) == 0 {
                prop_assert!(!index.remove(CustomerId(-1), spot(&mut rng)));
            } else {
                let entry = model.swap_remove(rng.below(model.len()));
                prop_assert!(index.remove(entry.0, entry.1));
            }
            prop_assert_eq!(index.len(), model.len());
        }
        let area = Area::Circle(Circle::new(at(24.91, 60.165), 400.0).unwrap());
        prop_assert_eq!(index.select(&area), brute_force(&model, &area));
    }
}

/// A star-shaped ring around `centre`: 6–17 sorted angles (no gap over 114°) and radii between
/// `inner` and 1 times `size`, so that it is simple and holds a disc of a quarter of `inner`
/// (where a hole of at most 0.2 × size fits). Vertices snapped to multiples of 2^-20 degrees.
fn star(rng: &mut Mix, centre: (f64, f64), size: f64, inner: f64) -> LineString {
    let n = 6 + rng.below(12);
    let mut angles: Vec<f64> = (0..n)
        .map(|i| (i as f64 + rng.range(0.0, 0.9)) * std::f64::consts::TAU / n as f64)
        .collect();
    angles.sort_by(f64::total_cmp);
    let snap = |v: f64| (v * 1_048_576.0).round() / 1_048_576.0;
    let mut ring: Vec<(f64, f64)> = angles
        .iter()
        .map(|a| {
            let r = size * rng.range(inner, 1.0);
            (snap(centre.0 + r * a.cos()), snap(centre.1 + r * a.sin()))
        })
        .collect();
    ring.push(ring[0]);
    ring.into()
}

/// Fixed cases worth keeping whatever proptest draws.
#[test]
fn known_awkward_cases() {
    let mut rng = Mix(7);
    // A circle crossing the antimeridian near Fiji, with points on both sides.
    let c = at(179.999, -17.8);
    let points: Vec<LonLat> = (0..2000)
        .map(|i| destination(c, f64::from(i) * 0.18, 5_000.0 * rng.unit().sqrt() * 1.2))
        .collect();
    let area = Area::Circle(Circle::new(c, 5_000.0).unwrap());
    check(with_duplicates(points, &mut rng), &area, 2).unwrap();

    // A circle over the north pole.
    let c = at(10.0, 89.95);
    let points: Vec<LonLat> = (0..2000)
        .map(|i| destination(c, f64::from(i) * 0.18, 20_000.0 * rng.unit()))
        .collect();
    let area = Area::Circle(Circle::new(c, 10_000.0).unwrap());
    check(with_duplicates(points, &mut rng), &area, 3).unwrap();

    // A long east–west corridor at 60° N: the arc bulges 42 km north of its ends.
    let corridor = Corridor::new(vec![(0.0, 60.0), (20.0, 60.0)].into(), 2_000.0).unwrap();
    let points: Vec<LonLat> = (0..3000)
        .map(|_| at(rng.range(-1.0, 21.0), rng.range(59.9, 60.5)))
        .chain((0..=100).map(|i| {
            let p = geo::Haversine.point_at_ratio_between(
                Point::new(0.0, 60.0),
                Point::new(20.0, 60.0),
                f64::from(i) / 100.0,
            );
            at(p.x(), p.y())
        }))
        .collect();
    let area = Area::Corridor(corridor);
    let expected_hits = brute_force(&with_duplicates(points.clone(), &mut Mix(1)), &area);
    assert!(expected_hits.len() > 100);
    check(with_duplicates(points, &mut Mix(1)), &area, 2).unwrap();

    // A corridor across the antimeridian.
    let corridor = Corridor::new(vec![(179.95, 10.0), (-179.95, 10.02)].into(), 300.0).unwrap();
    let points: Vec<LonLat> = (0..3000)
        .map(|_| at(179.9 + rng.range(0.0, 0.2), 10.0 + rng.range(-0.01, 0.03)))
        .collect();
    check(
        with_duplicates(points, &mut rng),
        &Area::Corridor(corridor),
        2,
    )
    .unwrap();
}
