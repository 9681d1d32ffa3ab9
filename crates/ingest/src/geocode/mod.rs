//! Geocoding: address text → a point, with ranked candidates and a confidence.
//!
//! [`Gazetteer`] is the embedded, offline geocoder: built from the customers' addresses in
//! the store and an optional gazetteer CSV, it matches on normalised text (see [`normalise`]).
//! [`Geocoder`] is the seam for others (the `outagecast-nominatim` crate speaks Nominatim's
//! `/search` API). [`pick`] is the one policy deciding whether the best candidate is good and
//! clear enough to declare an incident at.

pub mod normalise;

mod gazetteer;

use std::future::Future;

use geo::{Distance, Haversine};
use outagecast_core::area::LonLat;
use serde::Serialize;

pub use gazetteer::{Gazetteer, GazetteerRow, parse_gazetteer_csv};

use crate::error::{IngestError, Result};

/// A place an address may mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The address as on record ("Kaivokatu 1, 00101 Helsinki").
    pub label: String,
    /// Where it is.
    pub point: LonLat,
    /// How well it matches what was asked, 0..1.
    pub confidence: f64,
}

/// Something that turns address text into ranked candidates, best first.
pub trait Geocoder {
    /// What can go wrong asking it.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Candidates for `query`, best first. An empty list means nothing matched.
    fn candidates(
        &self,
        query: &str,
    ) -> impl Future<Output = std::result::Result<Vec<Candidate>, Self::Error>> + Send;
}

/// Below this confidence a candidate is only listed, never used.
pub const ACCEPT: f64 = 0.75;

/// Candidates this close to the best one in confidence compete with it...
pub const MARGIN: f64 = 0.03;

/// ...unless they are within this many metres of it: the same building or block under two
/// spellings (OpenStreetMap often has an address on an entrance node and on the building), and
/// an outage circle of a few hundred metres around either selects the same customers.
pub const SAME_PLACE_M: f64 = 100.0;

/// Decides which candidate `query` means, or why none can be used: nothing good enough
/// (`UnknownAddress`) or good candidates in different places (`AmbiguousAddress`). Both errors
/// list the best candidates so the operator can retype.
pub fn pick(field: &str, query: &str, mut candidates: Vec<Candidate>) -> Result<Candidate> {
    candidates.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let Some(best) = candidates.first().cloned() else {
        return Err(IngestError::UnknownAddress {
            field: field.into(),
            query: query.into(),
            candidates,
        });
    };
    if best.confidence < ACCEPT {
        candidates.truncate(5);
        return Err(IngestError::UnknownAddress {
            field: field.into(),
            query: query.into(),
            candidates,
        });
    }
    let rivals: Vec<Candidate> = candidates
        .iter()
        .skip(1)
        .filter(|c| {
            c.confidence >= best.confidence - MARGIN
                && Haversine.distance(c.point.point(), best.point.point()) > SAME_PLACE_M
        })
        .cloned()
        .collect();
    if !rivals.is_empty() {
        let mut listed = vec![best];
        listed.extend(rivals.into_iter().take(4));
        return Err(IngestError::AmbiguousAddress {
            field: field.into(),
            query: query.into(),
            candidates: listed,
        });
    }
    Ok(best)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(label: &str, lon: f64, lat: f64, confidence: f64) -> Candidate {
        Candidate {
            label: label.into(),
            point: LonLat::parse(lon, lat).unwrap(),
            confidence,
        }
    }

    #[test]
    fn pick_takes_a_clear_winner_and_explains_the_rest() {
        let got = pick(
            "--address",
            "x",
            vec![c("b", 24.95, 60.17, 0.8), c("a", 24.94, 60.17, 1.0)],
        )
        .unwrap();
        assert_eq!(got.label, "a");
        // Close rivals in the same place do not make it ambiguous.
        let got = pick(
            "--address",
            "x",
            vec![c("a", 24.94, 60.17, 1.0), c("a'", 24.9401, 60.1701, 0.99)],
        )
        .unwrap();
        assert_eq!(got.label, "a");
        let e = pick(
            "--address",
            "Kirkkokatu 4",
            vec![
                c("Kirkkokatu 4, Helsinki", 24.95, 60.17, 0.9),
                c("Kirkkokatu 4, Espoo", 24.65, 60.2, 0.9),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, IngestError::AmbiguousAddress { .. }));
        let text = e.to_string();
        assert!(
            text.starts_with("--address: \"Kirkkokatu 4\" is ambiguous")
                && text.contains("Espoo (90%"),
            "{text}"
        );
        let e = pick(
            "--address",
            "Nowhere 1",
            vec![c("Kaivokatu 1", 24.94, 60.17, 0.4)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no address matches") && e.contains("Kaivokatu 1 (40%"),
            "{e}"
        );
        let e = pick("--address", "Nowhere 1", vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no address matches \"Nowhere 1\"; check"), "{e}");
    }
}
