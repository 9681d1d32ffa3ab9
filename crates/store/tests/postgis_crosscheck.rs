//! PostGIS as an independent oracle for the in-memory index: on the Helsinki sample, for many
//! seeded random circles, polygons (with holes, and multipolygons), corridors and unions,
//! `CustomerIndex::select` and `PgStore::select_ids` must select identical sets.
//!
//! The only tolerated difference is a point within [`TOLERANCE_M`] of the area's boundary,
//! where the two implementations' floating-point rounding may fall on different sides (see
//! `select.rs` for why). Every such point is rechecked: its distance to the boundary is
//! measured with the core's own metric, and a point farther than the tolerance fails the test.
//! Besides the random areas, each test builds areas whose boundary passes exactly through
//! customers (a radius equal to a customer's distance, rectangle edges on a customer's
//! coordinates, polygon corners at customers), where such differences would show first; the
//! number of borderline points is printed (`cargo test -- --nocapture`). Measured so far:
//! random areas agree exactly; on circles and corridors drawn through a customer, PostGIS's
//! `ST_DWithin` leaves the on-edge customers out in about half the areas (its own distance
//! for them is within 1e-8 m of the radius, 2e-7 m of the buffer), the core keeps them
//! (distance ≤ radius); rectangles and triangles through customers agree exactly.
//!
//! Needs `OUTAGECAST_TEST_PG_URL` (`scripts/pg-test-cluster start` prints one); without it
//! each test prints that it is skipped and passes. Every test loads the sample into a schema
//! of its own and drops it at the end.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use geo::{Closest, Coord, Distance, Geodesic, HaversineClosestPoint, LineString, MultiPolygon};
use geo::{Point, Polygon};
use outagecast_core::area::{Area, Circle, Corridor, LonLat, PolygonArea};
use outagecast_core::contact::Language;
use outagecast_core::customer::{CustomerId, RecordRules};
use outagecast_index::CustomerIndex;
use outagecast_store::Store;
use outagecast_store::pg::PgStore;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Points this close to an area's boundary may be decided either way by the two
/// implementations' rounding.
const TOLERANCE_M: f64 = 0.005;
/// Metres per degree of latitude (for placing shapes; not for deciding membership).
const M_PER_DEG: f64 = 111_320.0;

fn pg_url(test: &str) -> Option<String> {
    match std::env::var("OUTAGECAST_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "{test}: skipped, OUTAGECAST_TEST_PG_URL is not set (scripts/pg-test-cluster start prints one)"
            );
            None
        }
    }
}

/// The Helsinki sample in a fresh schema, with the in-memory index built from the same rows.
struct Loaded {
    store: PgStore,
    index: CustomerIndex,
    points: Vec<(CustomerId, LonLat)>,
}

async fn load(url: &str, test: &str) -> Loaded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/helsinki/customers.csv");
    let parsed = outagecast_ingest::customers::read_customers(
        File::open(&path).unwrap(),
        RecordRules {
            default_region: None,
            default_language: Language::Fi,
        },
    )
    .unwrap();
    assert!(parsed.customers.len() > 2000, "the sample loads");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("t_{test}_{}_{nanos}", std::process::id());
    let store = PgStore::connect_schema(url, &schema).await.unwrap();
    // The operations every caller uses go through the one handle, `Store`.
    let handle = Store::from(store.clone());
    handle
        .upsert_customers(
            &parsed.customers,
            "test",
            "customers.csv",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store.analyze().await.unwrap();
    let points = handle.service_points().await.unwrap();
    assert_eq!(points.len(), parsed.customers.len());
    let index = CustomerIndex::bulk_load(points.clone());
    Loaded {
        store,
        index,
        points,
    }
}

/// How far `p` is from the boundary of `area`, in metres, by the core's own metric: the
/// geodesic distance's difference from the radius or buffer; for polygons the planar distance
/// to the nearest edge, scaled to metres at the point's latitude.
fn boundary_distance_m(area: &Area, p: LonLat) -> f64 {
    match area {
        Area::Circle(c) => (Geodesic.distance(c.center().point(), p.point()) - c.radius_m()).abs(),
        Area::Corridor(c) => {
            let nearest = match c.line().haversine_closest_point(&p.point()) {
                Closest::Intersection(q) | Closest::SinglePoint(q) => q,
                Closest::Indeterminate => Point::from(c.line().0[0]),
            };
            (Geodesic.distance(p.point(), nearest) - c.buffer_m()).abs()
        }
        Area::Polygon(poly) => {
            let sx = M_PER_DEG * p.lat().to_radians().cos();
            let local = |c: &Coord| ((c.x - p.lon()) * sx, (c.y - p.lat()) * M_PER_DEG);
            let mut best = f64::INFINITY;
            for polygon in &poly.shape().0 {
                for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                    for seg in ring.lines() {
                        best = best.min(segment_distance(local(&seg.start), local(&seg.end)));
                    }
                }
            }
            best
        }
        Area::Union(u) => u
            .parts()
            .iter()
            .map(|part| boundary_distance_m(part, p))
            .fold(f64::INFINITY, f64::min),
    }
}

/// Distance from the origin to the segment a–b.
fn segment_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (-(a.0 * dx + a.1 * dy) / len2).clamp(0.0, 1.0)
    };
    let (x, y) = (a.0 + t * dx, a.1 + t * dy);
    (x * x + y * y).sqrt()
}

/// What comparing many areas found.
#[derive(Default, Debug)]
struct Tally {
    areas: usize,
    selected: usize,
    /// Points the two selected differently, all within the tolerance of the boundary: label,
    /// customer, whether the index selected it, its distance from the edge by the core's
    /// measure and by PostGIS's.
    borderline: Vec<(String, i64, bool, f64, f64)>,
}

impl Loaded {
    /// Compares the index with PostGIS on `area`; differences beyond the tolerance fail.
    async fn compare(&self, label: &str, area: &Area, tally: &mut Tally) {
        let mine: BTreeSet<i64> = self.index.select(area).into_iter().map(|i| i.0).collect();
        let theirs: Vec<i64> = self
            .store
            .select_ids(area)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.0)
            .collect();
        assert!(
            theirs.windows(2).all(|w| w[0] < w[1]),
            "{label}: PostGIS ids ascend"
        );
        assert_eq!(
            self.store.count_ids(area).await.unwrap(),
            theirs.len() as u64,
            "{label}: count agrees with select"
        );
        let theirs: BTreeSet<i64> = theirs.into_iter().collect();
        tally.areas += 1;
        tally.selected += mine.len();
        for &id in mine.symmetric_difference(&theirs) {
            let at = self
                .points
                .iter()
                .find(|(i, _)| i.0 == id)
                .map(|(_, p)| *p)
                .unwrap();
            let margin = boundary_distance_m(area, at);
            let index_has_it = mine.contains(&id);
            assert_eq!(
                index_has_it,
                area.contains(at),
                "{label}: the index disagrees with Area::contains on customer {id}"
            );
            assert!(
                margin <= TOLERANCE_M,
                "{label}: customer {id} at {},{} is {margin:.6} m from the boundary, yet the index {} it and PostGIS {}; area: {}",
                at.lon(),
                at.lat(),
                if index_has_it { "selects" } else { "leaves" },
                if index_has_it {
                    "leaves it"
                } else {
                    "selects it"
                },
                serde_json::to_string(area).unwrap()
            );
            // PostGIS must see the point on the edge too.
            let theirs_margin = self
                .store
                .edge_distance_m(area, CustomerId(id))
                .await
                .unwrap()
                .unwrap();
            assert!(
                theirs_margin <= TOLERANCE_M,
                "{label}: customer {id} is {margin:.3e} m from the edge by the core's measure but {theirs_margin:.6} m by PostGIS's"
            );
            tally
                .borderline
                .push((label.to_string(), id, index_has_it, margin, theirs_margin));
        }
    }

    fn report(&self, test: &str, tally: &Tally) {
        let worst = |pick: fn(&(String, i64, bool, f64, f64)) -> f64| {
            tally.borderline.iter().map(pick).fold(0.0, f64::max)
        };
        println!(
            "{test}: {} areas, {} customers selected in all; {} borderline point(s) decided differently \
             (index in / PostGIS out: {}; largest distance from the edge: {:.1e} m by the core, {:.1e} m by PostGIS; tolerance {} mm)",
            tally.areas,
            tally.selected,
            tally.borderline.len(),
            tally.borderline.iter().filter(|b| b.2).count(),
            worst(|b| b.3),
            worst(|b| b.4),
            TOLERANCE_M * 1000.0
        );
        let areas: BTreeSet<&str> = tally.borderline.iter().map(|b| b.0.as_str()).collect();
        for label in areas.iter().take(5) {
            let ids: Vec<String> = tally
                .borderline
                .iter()
                .filter(|b| b.0 == *label)
                .map(|b| b.1.to_string())
                .collect();
            println!("  {label}: customers {}", ids.join(", "));
        }
        if areas.len() > 5 {
            println!("  ... and {} more areas", areas.len() - 5);
        }
    }

    /// A box around the sample, widened by 300 m, to place shapes in.
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let (mut x0, mut y0, mut x1, mut y1) = (180.0f64, 90.0f64, -180.0f64, -90.0f64);
        for (_, p) in &self.points {
            x0 = x0.min(p.lon());
            x1 = x1.max(p.lon());
            y0 = y0.min(p.lat());
            y1 = y1.max(p.lat());
        }
        let dy = 300.0 / M_PER_DEG;
        let dx = dy / y0.to_radians().cos();
        (x0 - dx, y0 - dy, x1 + dx, y1 + dy)
    }

    fn random_point(&self, rng: &mut ChaCha8Rng) -> LonLat {
        // Half the time at a customer (crowded places), half anywhere in the box.
        if rng.random_bool(0.5) {
            self.points[rng.random_range(0..self.points.len())].1
        } else {
            let (x0, y0, x1, y1) = self.bounds();
            LonLat::parse(rng.random_range(x0..x1), rng.random_range(y0..y1)).unwrap()
        }
    }

    fn customer_at(&self, rng: &mut ChaCha8Rng) -> LonLat {
        self.points[rng.random_range(0..self.points.len())].1
    }
}

fn offset(centre: LonLat, east_m: f64, north_m: f64) -> Coord {
    Coord {
        x: centre.lon() + east_m / (M_PER_DEG * centre.lat().to_radians().cos()),
        y: centre.lat() + north_m / M_PER_DEG,
    }
}

/// Log-uniform between `lo` and `hi`.
fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

fn random_circle(l: &Loaded, rng: &mut ChaCha8Rng) -> Area {
    Area::Circle(Circle::new(l.random_point(rng), log_uniform(rng, 3.0, 1_500.0)).unwrap())
}

/// A star-shaped ring of `n` corners around `centre` with radii in `lo..hi` metres.
fn star(rng: &mut ChaCha8Rng, centre: LonLat, n: usize, lo: f64, hi: f64) -> LineString {
    let mut coords: Vec<Coord> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * (i as f64 + rng.random_range(0.0..0.8)) / n as f64;
            let r = rng.random_range(lo..hi);
            offset(centre, r * a.cos(), r * a.sin())
        })
        .collect();
    coords.push(coords[0]);
    LineString(coords)
}

/// A star-shaped polygon, often with a hole (a smaller star well inside the shell),
/// sometimes with a second polygon beside it.
fn random_polygon(l: &Loaded, rng: &mut ChaCha8Rng) -> Area {
    let mut polygons = Vec::new();
    let parts = if rng.random_bool(0.25) { 2 } else { 1 };
    let first = l.random_point(rng);
    for k in 0..parts {
        let scale = log_uniform(rng, 20.0, 1_200.0);
        let centre = if k == 0 {
            first
        } else {
            // Beside the first, far enough apart not to touch.
            let c = offset(first, 2.6 * 1_200.0, 0.0);
            LonLat::parse(c.x, c.y).unwrap()
        };
        // At least 6 corners with gaps under 110°: the shell's edges stay farther than
        // 0.3 × scale from the centre, so the hole (radii up to 0.25 × scale) is inside.
        let n = rng.random_range(6..24);
        let shell = star(rng, centre, n, 0.55 * scale, scale);
        let holes = if rng.random_bool(0.6) {
            let m = rng.random_range(3..10);
            vec![star(rng, centre, m, 0.05 * scale, 0.25 * scale)]
        } else {
            vec![]
        };
        polygons.push(Polygon::new(shell, holes));
    }
    Area::Polygon(PolygonArea::new(MultiPolygon(polygons)).unwrap())
}

fn random_corridor(l: &Loaded, rng: &mut ChaCha8Rng) -> Area {
    let start = l.random_point(rng);
    let n = rng.random_range(2..7);
    let mut heading = rng.random_range(0.0..std::f64::consts::TAU);
    let mut at = start;
    let mut coords = vec![Coord {
        x: start.lon(),
        y: start.lat(),
    }];
    for _ in 1..n {
        heading += rng.random_range(-1.2..1.2);
        let step = log_uniform(rng, 30.0, 900.0);
        let c = offset(at, step * heading.cos(), step * heading.sin());
        at = LonLat::parse(c.x, c.y).unwrap();
        coords.push(c);
    }
    Area::Corridor(Corridor::new(LineString(coords), log_uniform(rng, 2.0, 250.0)).unwrap())
}

/// Areas whose boundary passes exactly through customers.
fn boundary_circle(l: &Loaded, rng: &mut ChaCha8Rng) -> Area {
    let centre = l.random_point(rng);
    let on = l.customer_at(rng);
    let r = Geodesic.distance(centre.point(), on.point()).max(1.0);
    Area::Circle(Circle::new(centre, r).unwrap())
}

fn boundary_rectangle(l: &Loaded, rng: &mut ChaCha8Rng) -> Area {
    let a = l.customer_at(rng);
    let b = l.customer_at(rng);
    let (x0, x1) = (a.lon().min(b.lon()), a.lon().max(b.lon()));
    let (y0, y1) = (a.lat().min(b.lat()), a.lat().max(b.lat()));
    let (x1, y1) = (
        if x1 > x0 { x1 } else { x0 + 1e-4 },
        if y1 > y0 { y1 } else { y0 + 1e-4 },
    );
    let ring = LineString::from(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]);
    Area::Polygon(PolygonArea::new(MultiPolygon(vec![Polygon::new(ring, vec![])])).unwrap())
}

/// A triangle with corners at three customers (skipped when they are in a line).
fn customer_triangle(l: &Loaded, rng: &mut ChaCha8Rng) -> Option<Area> {
    let [a, b, c] = [l.customer_at(rng), l.customer_at(rng), l.customer_at(rng)];
    let ring = LineString::from(vec![
        (a.lon(), a.lat()),
        (b.lon(), b.lat()),
        (c.lon(), c.lat()),
        (a.lon(), a.lat()),
    ]);
    PolygonArea::new(MultiPolygon(vec![Polygon::new(ring, vec![])]))
        .ok()
        .map(Area::Polygon)
}

fn boundary_corridor(l: &Loaded, rng: &mut ChaCha8Rng) -> Area {
    let Area::Corridor(c) = random_corridor(l, rng) else {
        unreachable!("random_corridor makes corridors")
    };
    let on = l.customer_at(rng);
    let nearest = match c.line().haversine_closest_point(&on.point()) {
        Closest::Intersection(q) | Closest::SinglePoint(q) => q,
        Closest::Indeterminate => Point::from(c.line().0[0]),
    };
    let buffer = Geodesic
        .distance(on.point(), nearest)
        .clamp(1.0, 1_000_000.0);
    Area::Corridor(Corridor::new(c.line().clone(), buffer).unwrap())
}

#[tokio::test]
async fn circles_select_what_postgis_selects() {
    let test = "circles";
    let Some(url) = pg_url(test) else { return };
    let l = load(&url, test).await;
    let mut rng = ChaCha8Rng::seed_from_u64(7_001);
    let mut tally = Tally::default();
    for i in 0..300 {
        l.compare(
            &format!("circle #{i}"),
            &random_circle(&l, &mut rng),
            &mut tally,
        )
        .await;
    }
    for i in 0..150 {
        let area = boundary_circle(&l, &mut rng);
        l.compare(
            &format!("circle through a customer #{i}"),
            &area,
            &mut tally,
        )
        .await;
    }
    l.report(test, &tally);
    assert!(
        tally.selected > 10_000,
        "the circles selected enough to mean something"
    );
    l.store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn polygons_with_holes_select_what_postgis_selects() {
    let test = "polygons";
    let Some(url) = pg_url(test) else { return };
    let l = load(&url, test).await;
    let mut rng = ChaCha8Rng::seed_from_u64(7_002);
    let mut tally = Tally::default();
    for i in 0..300 {
        l.compare(
            &format!("polygon #{i}"),
            &random_polygon(&l, &mut rng),
            &mut tally,
        )
        .await;
    }
    for i in 0..100 {
        let area = boundary_rectangle(&l, &mut rng);
        l.compare(
            &format!("rectangle through customers #{i}"),
            &area,
            &mut tally,
        )
        .await;
        if let Some(area) = customer_triangle(&l, &mut rng) {
            l.compare(&format!("triangle on customers #{i}"), &area, &mut tally)
                .await;
        }
    }
    l.report(test, &tally);
    assert!(
        tally.selected > 10_000,
        "the polygons selected enough to mean something"
    );
    l.store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn corridors_select_what_postgis_selects() {
    let test = "corridors";
    let Some(url) = pg_url(test) else { return };
    let l = load(&url, test).await;
    let mut rng = ChaCha8Rng::seed_from_u64(7_003);
    let mut tally = Tally::default();
    for i in 0..300 {
        l.compare(
            &format!("corridor #{i}"),
            &random_corridor(&l, &mut rng),
            &mut tally,
        )
        .await;
    }
    for i in 0..150 {
        let area = boundary_corridor(&l, &mut rng);
        l.compare(
            &format!("corridor through a customer #{i}"),
            &area,
            &mut tally,
        )
        .await;
    }
    l.report(test, &tally);
    assert!(
        tally.selected > 10_000,
        "the corridors selected enough to mean something"
    );
    l.store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn unions_select_what_postgis_selects() {
    let test = "unions";
    let Some(url) = pg_url(test) else { return };
    let l = load(&url, test).await;
    let mut rng = ChaCha8Rng::seed_from_u64(7_004);
    let mut tally = Tally::default();
    for i in 0..150 {
        let n = rng.random_range(2..5);
        let parts: Vec<Area> = (0..n)
            .map(|_| match rng.random_range(0..3) {
                0 => random_circle(&l, &mut rng),
                1 => random_polygon(&l, &mut rng),
                _ => random_corridor(&l, &mut rng),
            })
            .collect();
        let area = Area::union(parts).unwrap();
        l.compare(&format!("union #{i}"), &area, &mut tally).await;
    }
    l.report(test, &tally);
    assert!(
        tally.selected > 10_000,
        "the unions selected enough to mean something"
    );
    l.store.drop_schema().await.unwrap();
}
