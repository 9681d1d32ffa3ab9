//! The in-memory index against PostGIS, the peer to beat (issue 7): the same 1M synthetic
//! customers as `benches/selection.rs` (GeoNames towns weighted by population, the same seed),
//! loaded into PostgreSQL through `PgStore::upsert_customers` and into a `CustomerIndex` from
//! the store's own service points, so both hold identical ids. Each query is answered by both
//! in one run; the counts are printed side by side and the selected sets must be identical.
//! The goal: the in-memory index at least 30× faster on every query type.
//!
//! Run: `scripts/bench-data && OUTAGECAST_TEST_PG_URL=$(scripts/pg-test-cluster start)
//! cargo bench --bench postgis` (or `OUTAGECAST_BENCH_PG_URL`). Without a URL it says so and
//! exits successfully. The customers are loaded once into the schema `bench_postgis_1m_*` and
//! reused by later runs on the same database.
//!
//! PostGIS gets its best shot: GiST indexes on the geography and on its geometry cast, the
//! table clustered by location (neighbours share pages, as they share nodes in the R-tree),
//! fresh statistics, a warm cache, prepared statements, and the same sorted-ids answer shape.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use geo::{Coord, Distance, Haversine, LineString, MultiPolygon, Polygon};
use outagecast_core::area::{Area, Circle, Corridor, LonLat, PolygonArea};
use outagecast_core::contact::{Language, PhoneKind, PhoneNumber};
use outagecast_core::customer::{AccountId, Customer, CustomerId, CustomerParts};
use outagecast_index::CustomerIndex;
use outagecast_store::Store;
use outagecast_store::pg::PgStore;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

const DATA: &str = "bench-data/cities500.json";
/// The generator below is `benches/selection.rs`'s, with its seed: the first 1M customers of
/// its 10M stream.
const SEED: u64 = 20_240_611;
const CUSTOMERS: usize = 1_000_000;
/// How many customers the polygon is scaled to hold.
const POLYGON_TARGET: usize = 200_000;
/// Metres per degree of latitude (near enough for placing synthetic customers).
const M_PER_DEG: f64 = 111_320.0;
/// The goal of issue 7.
const GOAL: f64 = 30.0;

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

/// `n` service points, exactly as `benches/selection.rs` places them.
fn service_points(towns: &[Town], n: usize) -> Vec<LonLat> {
    let mut cumulative = Vec::with_capacity(towns.len());
    let mut total = 0.0;
    for t in towns {
        total += t.population;
        cumulative.push(total);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    (0..n)
        .map(|_| {
            let pick = rng.random_range(0.0..total);
            let town = &towns[cumulative
                .partition_point(|&c| c <= pick)
                .min(towns.len() - 1)];
            let sigma = 200.0 + 1.5 * town.population.sqrt();
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
            LonLat::parse(lon, lat).expect("generated coordinates are in range")
        })
        .collect()
}

/// A customer at each point, with one mobile number (so contacts are written too).
fn synthetic_customers(points: &[LonLat]) -> Vec<Customer> {
    points
        .iter()
        .enumerate()
        .map(|(i, &location)| {
            Customer::new(CustomerParts {
                account_id: AccountId::parse(&format!("B{i:07}")).expect("valid account id"),
                location,
                address: format!("Synthetic street {i}"),
                phones: vec![PhoneNumber::from_stored(
                    format!("+35840{i:07}"),
                    PhoneKind::Mobile,
                )],
                emails: vec![],
                language: Language::Fi,
                priority: i % 50 == 0,
                channel: None,
            })
        })
        .collect()
}

/// A point `east_m`, `north_m` metres from `centre` (flat approximation).
fn offset(centre: LonLat, east_m: f64, north_m: f64) -> LonLat {
    let lat = centre.lat() + north_m / M_PER_DEG;
    let lon = centre.lon() + east_m / (M_PER_DEG * centre.lat().to_radians().cos());
    LonLat::parse(lon, lat).expect("offset stays in range")
}

/// `benches/selection.rs`'s irregular 14-pointed district with a hole.
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
    // Up to 4000 km: at 1M customers it takes a wider district than at 10M.
    let (mut lo, mut hi) = (1_000.0f64, 4_000_000.0f64);
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

/// The median of `f`'s run times over at least `min_runs` runs and about `budget`.
fn median_time(min_runs: usize, budget: Duration, mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < min_runs || started.elapsed() < budget {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
        if times.len() >= 100_000 {
            break;
        }
    }
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let url = ["OUTAGECAST_BENCH_PG_URL", "OUTAGECAST_TEST_PG_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let Some(url) = url else {
        println!(
            "postgis bench: skipped, neither OUTAGECAST_BENCH_PG_URL nor OUTAGECAST_TEST_PG_URL is set \
             (OUTAGECAST_TEST_PG_URL=$(scripts/pg-test-cluster start) cargo bench --bench postgis)"
        );
        return;
    };
    let Some(towns) = load_towns() else {
        eprintln!("{DATA} not found: run scripts/bench-data first");
        std::process::exit(1);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Bump the suffix when the data or its preparation changes.
    let schema = format!("bench_postgis_1m_{SEED}_v2");
    let store = rt
        .block_on(PgStore::connect_schema(&url, &schema))
        .expect("connect to PostgreSQL");
    let existing = rt
        .block_on(Store::from(store.clone()).customer_count())
        .expect("count customers");
    if existing == CUSTOMERS as u64 {
        println!("reusing {CUSTOMERS} customers in schema {schema}");
    } else {
        if existing != 0 {
            rt.block_on(store.clone().drop_schema())
                .expect("drop the stale bench schema");
        }
        let store = rt
            .block_on(PgStore::connect_schema(&url, &schema))
            .expect("connect to PostgreSQL");
        let started = Instant::now();
        let customers = synthetic_customers(&service_points(&towns, CUSTOMERS));
        let generated = started.elapsed();
        let started = Instant::now();
        let summary = rt
            .block_on(Store::from(store.clone()).upsert_customers(
                &customers,
                "bench",
                "postgis.rs",
                chrono::Utc::now(),
            ))
            .expect("load the customers");
        assert_eq!(summary.inserted, CUSTOMERS);
        let loaded = started.elapsed();
        let started = Instant::now();
        rt.block_on(store.cluster_by_location())
            .expect("cluster and analyze");
        println!(
            "generated {CUSTOMERS} customers in {generated:.1?}; upsert_customers (one transaction, with contacts and GiST indexes) took {loaded:.1?}; CLUSTER by location + ANALYZE {:.1?}",
            started.elapsed()
        );
    }
    let store = rt
        .block_on(PgStore::connect_schema(&url, &schema))
        .expect("connect to PostgreSQL");

    let started = Instant::now();
    let points: Vec<(CustomerId, LonLat)> = rt
        .block_on(Store::from(store.clone()).service_points())
        .expect("service points");
    let read = started.elapsed();
    let started = Instant::now();
    let index = CustomerIndex::bulk_load(points);
    println!(
        "read {} service points from PostgreSQL in {read:.1?}; built the index in {:.1?}",
        index.len(),
        started.elapsed()
    );

    // The densest place: the most populous town's centre, as in benches/selection.rs.
    let biggest = towns
        .iter()
        .max_by(|a, b| a.population.total_cmp(&b.population))
        .expect("there are towns");
    let centre = LonLat::parse(biggest.lon, biggest.lat).expect("town coordinates are valid");
    let (scale, district) = tune_district(&index, centre, POLYGON_TARGET);
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
    let queries = [
        (
            "circle_500m",
            Area::Circle(Circle::new(centre, 500.0).expect("valid circle")),
        ),
        (
            "circle_5km",
            Area::Circle(Circle::new(centre, 5_000.0).expect("valid circle")),
        ),
        ("polygon_200k", Area::Polygon(district)),
        (
            "corridor",
            Area::Corridor(Corridor::new(line.clone(), 50.0).expect("valid corridor")),
        ),
        (
            "corridor_500m",
            Area::Corridor(Corridor::new(line, 500.0).expect("valid corridor")),
        ),
    ];
    println!(
        "centre {:.5},{:.5}; polygon: 14 vertices + a hole, radius {:.1} km; corridors: {length:.0} m line, 50 m and 500 m buffers",
        centre.lon(),
        centre.lat(),
        scale / 1000.0
    );

    // Identical answers first, then one timing table for both, then criterion's statistics.
    println!(
        "\n{:<13} {:>9} {:>9}  {:>12} {:>12} {:>8}",
        "query", "index", "PostGIS", "index", "PostGIS", "ratio"
    );
    let mut ratios = Vec::new();
    for (name, area) in &queries {
        let mine = index.select(area);
        let theirs = rt.block_on(store.select_ids(area)).expect("PostGIS select");
        if mine != theirs {
            let a: std::collections::BTreeSet<_> = mine.iter().map(|i| i.0).collect();
            let b: std::collections::BTreeSet<_> = theirs.iter().map(|i| i.0).collect();
            let only_index: Vec<_> = a.difference(&b).take(10).collect();
            let only_postgis: Vec<_> = b.difference(&a).take(10).collect();
            panic!(
                "{name}: the index selects {} and PostGIS {}; only the index: {only_index:?}; only PostGIS: {only_postgis:?}",
                mine.len(),
                theirs.len()
            );
        }
        let t_index = median_time(20, Duration::from_secs(2), || {
            black_box(index.select(black_box(area)));
        });
        let t_pg = median_time(5, Duration::from_secs(4), || {
            black_box(
                rt.block_on(store.select_ids(black_box(area)))
                    .expect("select"),
            );
        });
        let ratio = t_pg.as_secs_f64() / t_index.as_secs_f64();
        ratios.push((name, ratio));
        println!(
            "{name:<13} {:>9} {:>9}  {:>12} {:>12} {:>7.0}×",
            mine.len(),
            theirs.len(),
            format!("{t_index:.2?}"),
            format!("{t_pg:.2?}"),
            ratio
        );
    }
    let short: Vec<_> = ratios.iter().filter(|(_, r)| *r < GOAL).collect();
    if short.is_empty() {
        println!("identical sets on every query; the index is ≥ {GOAL}× faster on every one\n");
    } else {
        println!("identical sets on every query; BELOW the {GOAL}× goal: {short:?}\n");
    }

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    for (name, area) in &queries {
        let mut group = c.benchmark_group(format!("postgis_vs_index/{name}"));
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function(BenchmarkId::from_parameter("index"), |b| {
            b.iter(|| index.select(black_box(area)));
        });
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        group.bench_function(BenchmarkId::from_parameter("postgis"), |b| {
            b.iter(|| {
                rt.block_on(store.select_ids(black_box(area)))
                    .expect("select")
            });
        });
        group.finish();
    }
    c.final_summary();
    rt.block_on(store.close());
}
