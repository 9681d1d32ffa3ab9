//! Polygon validity on big rings: `PolygonArea::new` (the sweep in `core::validity`) on
//! 60,000- and 100,000-vertex rings, valid and with one crossing, as a browser-drawn or
//! imported outline would arrive at the API.
//!
//! Run: `cargo bench --bench polygon_validity`
//!
//! Each ring's verdict is asserted before it is timed, so a fast wrong answer cannot pass.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use outagecast_core::area::polygon_from_ring;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 20_261_203;

/// A star-shaped ring around Helsinki: vertices at increasing angles with random radii
/// (0.5 to 1.5 km), so it never crosses itself however jagged it is.
fn star(n: usize, rng: &mut ChaCha8Rng) -> Vec<[f64; 2]> {
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / n as f64;
            let r = rng.random_range(0.005..0.015);
            [24.94 + 2.0 * r * angle.cos(), 60.17 + r * angle.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group("polygon_validity");
    for n in [60_000, 100_000] {
        let valid = star(n, &mut rng);
        let mut crossing = valid.clone();
        // Two vertices a quarter turn apart swap places: their edges now cross.
        crossing.swap(n / 8, n / 8 + n / 4);
        assert!(
            polygon_from_ring(&valid).is_ok(),
            "the {n}-vertex star is valid"
        );
        let err = polygon_from_ring(&crossing)
            .expect_err("the swapped star crosses itself")
            .to_string();
        assert!(err.contains("self-intersection"), "{err}");
        g.bench_with_input(BenchmarkId::new("valid", n), &valid, |b, ring| {
            b.iter(|| polygon_from_ring(black_box(ring)).is_ok())
        });
        g.bench_with_input(BenchmarkId::new("crossing", n), &crossing, |b, ring| {
            b.iter(|| polygon_from_ring(black_box(ring)).is_err())
        });
    }
    g.finish();
    c.final_summary();
}
