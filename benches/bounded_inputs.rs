//! Inputs that used to take minutes, now bounded: geocoding a 1,000-word address against the
//! Helsinki sample's addresses (the gazetteer alone, without the engine's length limit that
//! refuses it first), and rejecting CAP documents of 4.8 MB (over the size limit) and of
//! just under 1 MB with a mistake at the very end (line and column found in one pass).
//!
//! Run: `cargo bench --bench bounded_inputs`
//!
//! Each outcome is asserted before it is timed.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use outagecast_core::area::LonLat;
use outagecast_ingest::cap;
use outagecast_ingest::geocode::Gazetteer;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/helsinki/customers.csv");

fn gazetteer() -> Gazetteer {
    let mut reader = csv::Reader::from_path(SAMPLE).expect("the Helsinki sample");
    Gazetteer::new(reader.records().map(|r| {
        let r = r.expect("a sample row");
        let point = LonLat::parse(r[1].parse().expect("lon"), r[2].parse().expect("lat"))
            .expect("a sample point");
        (r[3].to_string(), point)
    }))
}

fn main() {
    let g = gazetteer();
    let long = format!(
        "{}Aleksanterinkatu 5, Helsinki",
        "lorem ipsum dolor ".repeat(333)
    );
    assert!(long.split_whitespace().count() >= 1_000);
    let found = g.search(&long);
    assert!(
        found
            .first()
            .is_some_and(|c| c.label.starts_with("Aleksanterinkatu 5")),
        "{found:?}"
    );
    let big = format!("<alert>{}</alert>", "x".repeat(4_800_000));
    assert!(cap::parse(&big, "--cap").is_err());
    let near = format!(
        "<alert>{}</alrt>",
        "<p/>".repeat(cap::MAX_CAP_ELEMENTS - 10)
    );
    let err = cap::parse(&near, "--cap")
        .expect_err("a mismatched end tag")
        .to_string();
    assert!(err.contains("line 1, column"), "{err}");

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("bounded_inputs");
    group.bench_function("geocode_1000_words", |b| {
        b.iter(|| g.search(black_box(&long)).len())
    });
    group.bench_function("geocode_typical", |b| {
        b.iter(|| g.search(black_box("Aleksanterinkatu 5, Helsinki")).len())
    });
    group.bench_function("cap_reject_4_8_mb", |b| {
        b.iter(|| cap::parse(black_box(&big), "--cap").is_err())
    });
    group.bench_function("cap_reject_1_mb_error_at_end", |b| {
        b.iter(|| cap::parse(black_box(&near), "--cap").is_err())
    });
    group.finish();
    c.final_summary();
}
