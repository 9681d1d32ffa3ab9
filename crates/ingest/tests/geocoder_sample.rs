//! The embedded geocoder on the Helsinki sample: built, as the binary builds it, from the
//! customers' addresses, it must resolve at least 98 % of the sample's distinct street
//! addresses (`data/helsinki/addresses.csv`) to the right building, written three ways:
//! as on record, as an operator types it (no postcode), and mangled (lower case, no
//! diacritics, street type abbreviated, letter stuck to the number, Swedish city name).
//!
//! "The right building": the chosen point is within 30 m of the row's own point (the row's
//! own entry, or the same building under another OSM feature of the same address). Two
//! spellings of one address farther apart count as a miss, as does any error.
#![allow(clippy::unwrap_used)]

use geo::{Distance, Haversine};
use outagecast_core::area::LonLat;
use outagecast_ingest::geocode::{Gazetteer, pick};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/helsinki");
/// Two entries of one building (an entrance node and the building way) lie this close.
const SAME_BUILDING_M: f64 = 30.0;

struct Row {
    street: String,
    number: String,
    postcode: String,
    city: String,
    point: LonLat,
}

fn rows() -> Vec<Row> {
    let mut r = csv::Reader::from_path(format!("{ROOT}/addresses.csv")).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            Row {
                street: rec[0].to_string(),
                number: rec[1].to_string(),
                postcode: rec[2].to_string(),
                city: rec[3].to_string(),
                point: LonLat::parse(rec[4].parse().unwrap(), rec[5].parse().unwrap()).unwrap(),
            }
        })
        .collect()
}

fn gazetteer() -> Gazetteer {
    let mut r = csv::Reader::from_path(format!("{ROOT}/customers.csv")).unwrap();
    Gazetteer::new(r.records().map(|rec| {
        let rec = rec.unwrap();
        (
            rec[3].to_string(),
            LonLat::parse(rec[1].parse().unwrap(), rec[2].parse().unwrap()).unwrap(),
        )
    }))
}

fn as_on_record(r: &Row) -> String {
    let place = [r.postcode.as_str(), r.city.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{} {}, {place}", r.street, r.number)
}

fn as_typed(r: &Row) -> String {
    format!("{} {}, {}", r.street, r.number, r.city)
}

fn mangled(r: &Row, i: usize) -> String {
    let street = deunicode::deunicode(&r.street).to_lowercase();
    let street = if let Some(stem) = street.strip_suffix("katu") {
        format!("{stem}k.")
    } else if let Some(stem) = street.strip_suffix("tie") {
        format!("{stem}t.")
    } else {
        street
    };
    // "7 B" → "7b"; the rest (floors, building names) is kept, only folded.
    let number = deunicode::deunicode(&r.number).to_lowercase();
    let number = match number.split_once(' ') {
        Some((n, rest))
            if n.chars().all(|c| c.is_ascii_digit())
                && rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && rest.chars().nth(1).is_none_or(|c| c == ',') =>
        {
            format!("{n}{rest}")
        }
        _ => number,
    };
    let city = if i.is_multiple_of(3) {
        "helsingfors"
    } else {
        "hki"
    };
    format!("{street} {number} {city}")
}

/// (hits, misses as "query → got").
fn measure(
    g: &Gazetteer,
    rows: &[Row],
    query: impl Fn(&Row, usize) -> String,
) -> (usize, Vec<String>) {
    let mut hits = 0;
    let mut misses = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let q = query(r, i);
        match pick("--address", &q, g.search(&q)) {
            Ok(c) if Haversine.distance(c.point.point(), r.point.point()) <= SAME_BUILDING_M => {
                hits += 1
            }
            Ok(c) => misses.push(format!(
                "{q:?} → {:?} ({:.0} m away)",
                c.label,
                Haversine.distance(c.point.point(), r.point.point())
            )),
            Err(e) => misses.push(format!("{q:?} → {e}")),
        }
    }
    (hits, misses)
}

#[test]
fn geocoder_resolves_at_least_98_percent_of_the_sample() {
    let g = gazetteer();
    let rows = rows();
    assert_eq!(rows.len(), 600);
    for (name, query) in [
        (
            "as on record",
            &(|r: &Row, _| as_on_record(r)) as &dyn Fn(&Row, usize) -> String,
        ),
        ("as typed (no postcode)", &|r: &Row, _| as_typed(r)),
        ("mangled", &mangled),
    ] {
        let (hits, misses) = measure(&g, &rows, query);
        let rate = hits as f64 / rows.len() as f64;
        println!("{name}: {hits}/{} = {:.1}%", rows.len(), rate * 100.0);
        for m in &misses {
            println!("  miss: {m}");
        }
        assert!(
            rate >= 0.98,
            "{name}: {:.1}% < 98%: {misses:#?}",
            rate * 100.0
        );
    }
}
