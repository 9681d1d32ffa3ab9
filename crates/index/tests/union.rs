//! A union of areas selects exactly what its parts select together, each customer once
//! (property test against the brute-force rule `Area::contains`).
#![allow(clippy::unwrap_used)]

use outagecast_core::area::{Area, Circle, Corridor, LonLat, polygon_from_ring};
use outagecast_core::customer::CustomerId;
use outagecast_index::CustomerIndex;
use proptest::prelude::*;

fn at(lon: f64, lat: f64) -> LonLat {
    LonLat::parse(lon, lat).unwrap()
}

/// A grid of service points around central Helsinki, two customers at every tenth point.
fn customers(n: i64) -> Vec<(CustomerId, LonLat)> {
    let mut out = Vec::new();
    for i in 0..n * n {
        let p = at(
            24.93 + (i % n) as f64 * 0.03 / n as f64,
            60.16 + (i / n) as f64 * 0.02 / n as f64,
        );
        out.push((CustomerId(i), p));
        if i % 10 == 0 {
            out.push((CustomerId(100_000 + i), p));
        }
    }
    out
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

fn part(kind: u8, lon: f64, lat: f64, size: f64) -> Area {
    match kind % 3 {
        0 => Area::Circle(Circle::new(at(lon, lat), 50.0 + size * 400.0).unwrap()),
        1 => {
            let d = 0.001 + size * 0.006;
            Area::Polygon(
                polygon_from_ring(&[
                    [lon, lat],
                    [lon + d, lat],
                    [lon + d, lat + d / 2.0],
                    [lon, lat + d / 2.0],
                    [lon, lat],
                ])
                .unwrap(),
            )
        }
        _ => Area::Corridor(
            Corridor::new(
                vec![(lon, lat), (lon + 0.01, lat + 0.003)].into(),
                20.0 + size * 80.0,
            )
            .unwrap(),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn union_selects_what_its_parts_select(
        shapes in prop::collection::vec((0u8..3, 24.93f64..24.96, 60.16f64..60.18, 0f64..1.0), 1..5)
    ) {
        let points = customers(40);
        let index = CustomerIndex::bulk_load(points.clone());
        let parts: Vec<Area> = shapes.iter().map(|&(k, lon, lat, s)| part(k, lon, lat, s)).collect();
        let union = Area::union(parts.clone()).unwrap();
        let got = index.select(&union);
        prop_assert_eq!(&got, &brute_force(&points, &union));
        let mut by_parts: Vec<CustomerId> = parts.iter().flat_map(|p| index.select(p)).collect();
        by_parts.sort();
        by_parts.dedup();
        prop_assert_eq!(got, by_parts);
    }
}

#[test]
fn overlapping_parts_report_each_customer_once() {
    let points = customers(20);
    let index = CustomerIndex::bulk_load(points.clone());
    let a = part(0, 24.945, 60.17, 0.5);
    let b = part(1, 24.944, 60.169, 0.5);
    let union = Area::union(vec![a.clone(), b.clone()]).unwrap();
    let got = index.select(&union);
    let mut sorted = got.clone();
    sorted.dedup();
    assert_eq!(got, sorted);
    assert!(
        got.len() < index.count(&a) + index.count(&b),
        "the parts overlap"
    );
    assert_eq!(got, brute_force(&points, &union));
}
