//! Selection benchmarks for `CustomerIndex` on 1M and 10M synthetic customers placed around
//! real towns (GeoNames cities500, weighted by population), so that density is realistic:
//! crowded city centres, sparse countryside.
//!
//! Run: `scripts/bench-data && cargo bench --bench selection`
//!
//! Every query's count is checked against a brute-force scan with the exact rule
//! (`Area::contains` over every customer) before it is timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode};
use geo::{Coord, Distance, Haversine, LineString, MultiPolygon, Polygon};
use outagecast_core::area::{Area, Circle, Corridor, LonLat, PolygonArea};
use outagecast_core::customer::CustomerId;
use outagecast_index::CustomerIndex;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

const DATA: &str = "bench-data/cities500.json";
const SEED: u64 = 20_240_611;
const SMALL: usize = 1_000_000;
const LARGE: usize = 10_000_000;
/// How many customers the polygon benchmark's polygon is scaled to hold at 10M.
const POLYGON_TARGET: usize = 200_000;
/// Metres per degree of latitude (near enough for placing synthetic customers).
const M_PER_DEG: f64 = 111_320.0;

#[derive(Deserialize)]
struct Place {
    geonameid: u64,
    longitude: f64,
    latitude: f64,
    population: u64,
}

struct Town {
    lon: f64,
    lat: f64,
    population: f64,
}

fn load_towns() -> Option<Vec<Town>> {
    let text = std::fs::read_to_string(DATA).ok()?;
    let places: std::collections::HashMap<String, Place> =
        serde_json::from_str(&text).expect("bench-data/cities500.json is GeoNames JSON");
    let mut places: Vec<Place> = places.into_values().collect();
    // The map's order is random; sort so that the seeded generator sees the same towns in the
    // same order on every run.
    places.sort_by_key(|p| p.geonameid);
    Some(
        places
            .into_iter()
            .filter(|p| p.population > 0)
            .map(|p| Town {
                lon: p.longitude,
                lat: p.latitude,
                population: p.population as f64,
            })
            .collect(),
    )
}

/// `n` customers: each at a town drawn with probability ∝ population, offset by a normal
/// distance with σ = 200 m + 1.5 m × √population (≈ 230 m for a village of 500, ≈ 4.5 km
/// for a city of 8M), ids 0..n in generation order.
fn customers(towns: &[Town], n: usize) -> Vec<(CustomerId, LonLat)> {
    let mut cumulative = Vec::with_capacity(towns.len());
    let mut total = 0.0;
    for t in towns {
        total += t.population;
        cumulative.push(total);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    (0..n)
        .map(|i| {
            let pick = rng.random_range(0.0..total);
            let town = &towns[cumulative
                .partition_point(|&c| c <= pick)
                .min(towns.len() - 1)];
            let sigma = 200.0 + 1.5 * town.population.sqrt();
            // Box–Muller: two independent standard normals.
            let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt() * sigma;
            let angle = std::f64::consts::TAU * rng.random::<f64>();
            let lat = (town.lat + radius * angle.sin() / M_PER_DEG).clamp(-90.0, 90.0);
            let cos = town.lat.to_radians().cos().max(0.01);
            let mut lon = town.lon + radius * angle.cos() / (M_PER_DEG * cos);
            if lon > 180.0 {
                lon -= 360.0;
            } else if lon < -180.0 {
                lon += 360.0;
            }
            let at = LonLat::parse(lon, lat).expect("generated coordinates are in range");
            (CustomerId(i as i64), at)
        })
        .collect()
}

/// The exact rule over every customer, on all cores.
fn brute_force(points: &[(CustomerId, LonLat)], area: &Area) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let chunk = points.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = points
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().filter(|(_, p)| area.contains(*p)).count()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("brute-force thread finishes"))
            .sum()
    })
}

/// A point `east_m`, `north_m` metres from `centre` (flat approximation, fine at this scale).
fn offset(centre: LonLat, east_m: f64, north_m: f64) -> LonLat {
    let lat = centre.lat() + north_m / M_PER_DEG;
    let lon = centre.lon() + east_m / (M_PER_DEG * centre.lat().to_radians().cos());
    LonLat::parse(lon, lat).expect("offset stays in range")
}

/// An irregular 14-pointed "district" with a hole, `scale_m` metres in radius.
fn district(centre: LonLat, scale_m: f64) -> PolygonArea {
    const SHELL: [f64; 14] = [
        1.0, 0.72, 0.95, 0.6, 0.88, 1.05, 0.7, 0.93, 0.55, 0.98, 0.8, 1.02, 0.66, 0.9,
    ];
    let ring = |radii: &[f64], size: f64| -> LineString {
        let mut coords: Vec<Coord> = radii
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let a = std::f64::consts::TAU * i as f64 / radii.len() as f64;
                let p = offset(centre, r * size * a.cos(), r * size * a.sin());
                Coord {
                    x: p.lon(),
                    y: p.lat(),
                }
            })
            .collect();
        coords.push(coords[0]);
        LineString(coords)
    };
    let hole = ring(&[1.0, 0.8, 1.0, 0.8, 1.0, 0.8], scale_m * 0.08);
    let shell = ring(&SHELL, scale_m);
    // The hole is off the centre: a lake or a park in the middle of the district.
    let hole = LineString(
        hole.0
            .iter()
            .map(|c| Coord {
                x: c.x + scale_m * 0.2 / M_PER_DEG,
                y: c.y,
            })
            .collect(),
    );
    PolygonArea::new(MultiPolygon(vec![Polygon::new(shell, vec![hole])]))
        .expect("the district is a valid polygon")
}

/// Scales the district until it holds about `target` customers of `index`.
fn tune_district(index: &CustomerIndex, centre: LonLat, target: usize) -> (f64, PolygonArea) {
    let (mut lo, mut hi) = (1_000.0f64, 2_000_000.0f64);
    for _ in 0..40 {
        let mid = (lo * hi).sqrt();
        if index.count(&Area::Polygon(district(centre, mid))) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (hi, district(centre, hi))
}

struct Queries {
    circle_500m: Area,
    circle_5km: Area,
    polygon: Area,
    corridor: Area,
    circle_500m_plain: Circle,
}

fn main() {
    let Some(towns) = load_towns() else {
        eprintln!("{DATA} not found: run scripts/bench-data first");
        std::process::exit(1);
    };

    let started = Instant::now();
    let large = customers(&towns, LARGE);
    // The first 1M of the same stream: the same distribution, at a tenth of the density.
    let small: Vec<(CustomerId, LonLat)> = large[..SMALL].to_vec();
    println!(
        "generated {} customers around {} towns in {:.1?}",
        LARGE,
        towns.len(),
        started.elapsed()
    );

    // The densest place: the most populous town's centre (Shanghai in cities500).
    let biggest = towns
        .iter()
        .max_by(|a, b| a.population.total_cmp(&b.population))
        .expect("there are towns");
    let centre = LonLat::parse(biggest.lon, biggest.lat).expect("town coordinates are valid");

    let large_index = CustomerIndex::bulk_load(large.clone());
    let small_index = CustomerIndex::bulk_load(small.clone());

    let circle_500m_plain = Circle::new(centre, 500.0).expect("valid circle");
    let (scale, district) = tune_district(&large_index, centre, POLYGON_TARGET);
    let vertex_count = district.shape().0[0].exterior().0.len() - 1;
    let line: LineString = vec![
        offset(centre, -1_000.0, 0.0),
        offset(centre, -200.0, 120.0),
        offset(centre, 1_000.0, -60.0),
    ]
    .into_iter()
    .map(|p| (p.lon(), p.lat()))
    .collect::<Vec<_>>()
    .into();
    let length: f64 = line
        .lines()
        .map(|l| Haversine.distance(l.start.into(), l.end.into()))
        .sum();
    let queries = Queries {
        circle_500m: Area::Circle(circle_500m_plain),
        circle_5km: Area::Circle(Circle::new(centre, 5_000.0).expect("valid circle")),
        polygon: Area::Polygon(district),
        corridor: Area::Corridor(Corridor::new(line, 50.0).expect("valid corridor")),
        circle_500m_plain,
    };
    println!(
        "centre {:.5},{:.5}; polygon: {vertex_count} vertices + a hole, radius {:.1} km; corridor: {:.0} m line, 50 m buffer",
        centre.lon(),
        centre.lat(),
        scale / 1000.0,
        length
    );

    let started = Instant::now();
    for (label, points, index) in [("1M", &small, &small_index), ("10M", &large, &large_index)] {
        for (name, area) in [
            ("circle_500m", &queries.circle_500m),
            ("circle_5km", &queries.circle_5km),
            ("polygon_200k", &queries.polygon),
            ("corridor", &queries.corridor),
        ] {
            let expected = brute_force(points, area);
            let got = index.count(area);
            assert_eq!(got, expected, "{label} {name}: index vs brute force");
            println!("{label:>3} {name:<13} selects {got:>7} (brute force agrees)");
        }
        let haversine = index.select_haversine(&queries.circle_500m_plain).len();
        let exact = index.count(&queries.circle_500m);
        assert!(
            haversine.abs_diff(exact) <= exact / 100 + 2,
            "the haversine reference should select nearly the same: {haversine} vs {exact}"
        );
        println!("{label:>3} circle_500m_haversine_only selects {haversine:>7} (exact: {exact})");
    }
    println!("brute-force checks took {:.1?}", started.elapsed());

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();

    {
        let mut group = c.benchmark_group("build");
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
        for (label, points, time) in [("1M", &small, 5), ("10M", &large, 40)] {
            group.measurement_time(Duration::from_secs(time));
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter_batched(
                    || points.clone(),
                    |p| CustomerIndex::bulk_load(black_box(p)),
                    BatchSize::LargeInput,
                );
            });
        }
        group.finish();
    }

    let indexes = [("1M", &small_index), ("10M", &large_index)];
    for (name, area) in [
        ("circle_500m", &queries.circle_500m),
        ("circle_5km", &queries.circle_5km),
        ("polygon_200k", &queries.polygon),
        ("corridor", &queries.corridor),
    ] {
        let mut group = c.benchmark_group(name);
        for (label, index) in indexes {
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| index.select(black_box(area)));
            });
        }
        group.finish();
    }
    {
        let mut group = c.benchmark_group("circle_500m_haversine_only");
        for (label, index) in indexes {
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| index.select_haversine(black_box(&queries.circle_500m_plain)));
            });
        }
        group.finish();
    }

    c.final_summary();
}
