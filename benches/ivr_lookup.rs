//! In-process IVR lookup over a caller index holding 10 million armed numbers (the whole
//! customer base of a large utility armed at once: far beyond any real outage, so the index is
//! as large and as cold in cache as it will ever be). Target: median ≤ 100 ns per lookup.
//!
//! Run: `cargo bench --bench ivr_lookup` (`IVR_BENCH_NUMBERS=1000000` for a smaller index).
//!
//! Benchmarks, each over keys drawn at random from a pre-generated list (so every lookup goes
//! to a different, usually uncached, place in the table):
//! - `key_hit` / `key_miss`: `CallerIndex::lookup` with a parsed key, armed and not;
//! - `e164_hit` / `e164_miss`: `with_caller` with the text a Twilio webhook sends (`+358…`),
//!   the E.164 shortcut parse included;
//! - `national_miss`: `with_caller` with a national number (`040…`) as an Asterisk trunk may
//!   send it: the libphonenumber parse dominates;
//! - `owned_hit`: `lookup`, which copies the answer out (allocates), for comparison.
//!
//! `key_*` and `e164_*` use `CallerIndex::with`, the borrowed view the front ends format from.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput};
use outagecast_core::contact::{Language, Region};
use outagecast_core::incident::{IncidentId, IncidentKind, IncidentStatus, Severity};
use outagecast_ivr::{
    Announcements, CallerIndex, CallerKey, FlagInput, IncidentInfo, IndexSettings,
};

/// Incidents the numbers are spread over; one in twenty numbers is in two.
const INCIDENTS: i64 = 50;
const PROBES: usize = 1 << 20;

/// SplitMix64: a fixed, dependency-free stream of well-mixed numbers.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The i-th armed number: distinct Finnish mobile numbers, +358 4x xxx xxxx, spread over the
/// numbering range by a bijection so neighbours in `i` are not neighbours in the table.
fn armed_number(i: u64) -> u64 {
    358_400_000_000 + (i.wrapping_mul(2_654_435_761) % 100_000_000)
}

fn main() {
    let n: u64 = std::env::var("IVR_BENCH_NUMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    // Distinct while n ≤ 10^8: 2654435761 is odd and coprime with 10^8.
    assert!(n <= 100_000_000);
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let incidents: Vec<IncidentInfo> = (1..=INCIDENTS)
        .map(|id| IncidentInfo {
            id: IncidentId(id),
            kind: IncidentKind::Water,
            severity: Severity::Moderate,
            status: IncidentStatus::Declared,
            etr: Some(now + chrono::TimeDelta::hours(3)),
            declared_at: now,
            closed_at: None,
            expires_at: None,
        })
        .collect();
    let text = "Tiedämme alueellanne olevan vesikatkon: putkirikko Kaivokadulla. \
                Arvioimme vian korjautuvan kello 15 mennessä.";
    let flag = |i: u64, incident: i64| FlagInput {
        key: CallerKey::parse(&format!("+{}", armed_number(i))).expect("valid key"),
        incident: IncidentId(incident),
        language: Language::Fi,
        announcement: text.to_string(),
        disarmed_at: None,
    };
    // Every number on one incident, one in twenty on a second one too. Built lazily (ten
    // million strings at once would be a gigabyte), with an exact size for the table sizing.
    let flags = (0..n)
        .map(|i| flag(i, (i % INCIDENTS as u64) as i64 + 1))
        .chain((0..n / 20).map(|j| flag(j * 20, ((j * 20 + 1) % INCIDENTS as u64) as i64 + 1)));
    let index = CallerIndex::new(IndexSettings::default());
    let start = Instant::now();
    index.replace_all(incidents, flags, now);
    eprintln!(
        "built the index: {} numbers in {:.1?}",
        index.len(),
        start.elapsed()
    );

    let mut mix = Mix(20_261_125);
    let hits: Vec<u64> = (0..PROBES).map(|_| armed_number(mix.next() % n)).collect();
    // Outside the armed block (+358 4x…): +358 5x… never armed.
    let misses: Vec<u64> = (0..PROBES)
        .map(|_| 358_500_000_000 + mix.next() % 100_000_000)
        .collect();
    let hit_keys: Vec<CallerKey> = hits
        .iter()
        .map(|d| CallerKey::parse(&format!("+{d}")).expect("key"))
        .collect();
    let miss_keys: Vec<CallerKey> = misses
        .iter()
        .map(|d| CallerKey::parse(&format!("+{d}")).expect("key"))
        .collect();
    let hit_text: Vec<String> = hits.iter().map(|d| format!("+{d}")).collect();
    let miss_text: Vec<String> = misses.iter().map(|d| format!("+{d}")).collect();
    let national: Vec<String> = misses
        .iter()
        .map(|d| format!("0{}", d - 358_000_000_000))
        .collect();
    assert!(index.lookup(hit_keys[0], now).armed());
    assert!(!index.lookup(miss_keys[0], now).armed());
    let fi = Some(Region::parse("FI").expect("FI"));

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group(format!("ivr_lookup_{}M", n / 1_000_000));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) & (PROBES - 1);
        i
    };
    // What a front end does with the answer, minus the formatting: is it armed, and what to say.
    let use_it = |a: &Announcements<'_>| (a.armed(), a.announcement().map(|t| t.len()));
    g.bench_function("key_hit", |b| {
        b.iter(|| index.with(black_box(hit_keys[next()]), now, use_it))
    });
    g.bench_function("key_miss", |b| {
        b.iter(|| index.with(black_box(miss_keys[next()]), now, use_it))
    });
    g.bench_function("e164_hit", |b| {
        b.iter(|| index.with_caller(black_box(&hit_text[next()]), fi, now, use_it))
    });
    g.bench_function("e164_miss", |b| {
        b.iter(|| index.with_caller(black_box(&miss_text[next()]), fi, now, use_it))
    });
    g.bench_function("national_miss", |b| {
        b.iter(|| index.with_caller(black_box(&national[next()]), fi, now, use_it))
    });
    // The owned copy (allocates), for comparison.
    g.bench_function("owned_hit", |b| {
        b.iter(|| index.lookup(black_box(hit_keys[next()]), now))
    });
    g.finish();
    c.final_summary();
}
