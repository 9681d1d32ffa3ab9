//! Reading street addresses out of an OpenStreetMap PBF extract.
//!
//! Every node and way that carries both `addr:street` and `addr:housenumber` is an address
//! feature. A way's point is the mean of its distinct node coordinates. Features are
//! deduplicated by `(street, housenumber)`; the best feature of each group gives the point (a
//! building way beats any other way, a way beats a node), and the others only fill in a
//! postcode or city that the best one lacks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context as _;
use osmpbf::{Element, ElementReader};

use crate::{Address, natural_cmp};

/// The city used when no feature of an address names a plausible one.
pub const DEFAULT_CITY: &str = "Helsinki";

/// Whether an address feature was an OSM node or way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeatureKind {
    Node,
    Way,
}

/// One OSM element carrying a street address, with its point already resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    pub kind: FeatureKind,
    pub id: i64,
    pub street: String,
    pub housenumber: String,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub building: Option<String>,
    pub lon: f64,
    pub lat: f64,
}

/// What reading the extract found, for the generator's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    pub nodes: usize,
    pub ways: usize,
    pub relations: usize,
    /// Nodes with both `addr:street` and `addr:housenumber`.
    pub address_nodes: usize,
    /// Ways with both `addr:street` and `addr:housenumber`.
    pub address_ways: usize,
    /// Relations with a full address: not used (only nodes and ways are read).
    pub address_relations_skipped: usize,
    /// Address ways none of whose nodes are in the extract (dropped).
    pub ways_without_nodes: usize,
    /// Address ways some of whose nodes are missing (point from the nodes present).
    pub ways_with_missing_nodes: usize,
    /// `addr:postcode` values that are not five digits (ignored).
    pub invalid_postcodes: usize,
    /// `addr:city` values without a letter in them (ignored).
    pub invalid_cities: usize,
}

/// Reads the distinct street addresses of an OSM PBF file, sorted by street and then
/// housenumber in natural order.
pub fn read_addresses(path: impl AsRef<Path>) -> anyhow::Result<Vec<Address>> {
    read_addresses_with_report(path).map(|(addresses, _)| addresses)
}

struct PendingWay {
    id: i64,
    tags: AddrTags,
    refs: Vec<i64>,
}

struct AddrTags {
    street: String,
    housenumber: String,
    postcode: Option<String>,
    city: Option<String>,
    building: Option<String>,
}

impl AddrTags {
    fn from_tags<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut street = None;
        let mut housenumber = None;
        let mut postcode = None;
        let mut city = None;
        let mut building = None;
        for (key, value) in tags {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let slot = match key {
                "addr:street" => &mut street,
                "addr:housenumber" => &mut housenumber,
                "addr:postcode" => &mut postcode,
                "addr:city" => &mut city,
                "building" => &mut building,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        Some(AddrTags {
            street: street?,
            housenumber: housenumber?,
            postcode,
            city,
            building,
        })
    }

    fn into_feature(self, kind: FeatureKind, id: i64, lon: f64, lat: f64) -> Feature {
        Feature {
            kind,
            id,
            street: self.street,
            housenumber: self.housenumber,
            postcode: self.postcode,
            city: self.city,
            building: self.building,
            lon,
            lat,
        }
    }
}

/// [`read_addresses`], also telling what it found and what it left out.
pub fn read_addresses_with_report(
    path: impl AsRef<Path>,
) -> anyhow::Result<(Vec<Address>, ReadReport)> {
    let path = path.as_ref();
    let reader = ElementReader::from_path(path)
        .with_context(|| format!("opening OSM extract {}", path.display()))?;

    let mut report = ReadReport::default();
    let mut coords: HashMap<i64, (f64, f64)> = HashMap::new();
    let mut features = Vec::new();
    let mut pending_ways = Vec::new();
    reader
        .for_each(|element| match element {
            Element::Node(node) => {
                report.nodes += 1;
                coords.insert(node.id(), (node.lon(), node.lat()));
                if let Some(tags) = AddrTags::from_tags(node.tags()) {
                    report.address_nodes += 1;
                    features.push(tags.into_feature(
                        FeatureKind::Node,
                        node.id(),
                        node.lon(),
                        node.lat(),
                    ));
                }
            }
            Element::DenseNode(node) => {
                report.nodes += 1;
                coords.insert(node.id(), (node.lon(), node.lat()));
                if let Some(tags) = AddrTags::from_tags(node.tags()) {
                    report.address_nodes += 1;
                    features.push(tags.into_feature(
                        FeatureKind::Node,
                        node.id(),
                        node.lon(),
                        node.lat(),
                    ));
                }
            }
            Element::Way(way) => {
                report.ways += 1;
                if let Some(tags) = AddrTags::from_tags(way.tags()) {
                    report.address_ways += 1;
                    pending_ways.push(PendingWay {
                        id: way.id(),
                        tags,
                        refs: way.refs().collect(),
                    });
                }
            }
            Element::Relation(relation) => {
                report.relations += 1;
                if AddrTags::from_tags(relation.tags()).is_some() {
                    report.address_relations_skipped += 1;
                }
            }
        })
        .with_context(|| format!("reading OSM extract {}", path.display()))?;

    for way in pending_ways {
        // Distinct nodes: a closed way repeats its first node at the end.
        let mut seen = HashSet::new();
        let mut points = Vec::new();
        let mut missing = false;
        for node_id in way.refs {
            if !seen.insert(node_id) {
                continue;
            }
            match coords.get(&node_id) {
                Some(&point) => points.push(point),
                None => missing = true,
            }
        }
        if points.is_empty() {
            report.ways_without_nodes += 1;
            continue;
        }
        if missing {
            report.ways_with_missing_nodes += 1;
        }
        let n = points.len() as f64;
        let lon = points.iter().map(|p| p.0).sum::<f64>() / n;
        let lat = points.iter().map(|p| p.1).sum::<f64>() / n;
        features.push(way.tags.into_feature(FeatureKind::Way, way.id, lon, lat));
    }

    report.invalid_postcodes = features
        .iter()
        .filter(|f| f.postcode.as_deref().is_some_and(|p| !valid_postcode(p)))
        .count();
    report.invalid_cities = features
        .iter()
        .filter(|f| f.city.as_deref().is_some_and(|c| !valid_city(c)))
        .count();
    Ok((addresses_from_features(features), report))
}

/// A Finnish postcode: exactly five ASCII digits.
fn valid_postcode(postcode: &str) -> bool {
    postcode.len() == 5 && postcode.bytes().all(|b| b.is_ascii_digit())
}

/// A city name has at least one letter (the extract has `addr:city=7` on some nodes).
fn valid_city(city: &str) -> bool {
    city.chars().any(char::is_alphabetic)
}

/// How good a feature is as the representative of its address: higher is better.
fn rank(feature: &Feature) -> (u8, u8) {
    let is_way = u8::from(feature.kind == FeatureKind::Way);
    let building_way = u8::from(feature.kind == FeatureKind::Way && feature.building.is_some());
    (building_way, is_way)
}

/// Deduplicates address features by `(street, housenumber)` and sorts the result.
///
/// The representative of each group is a way with a `building` tag if there is one, else any
/// way, else a node; ties go to the lowest OSM id. Its point and `building` are the address's.
/// A postcode (five digits) or city (with a letter in it) missing or invalid on the
/// representative is taken from the next-best feature that has a valid one; the city defaults
/// to [`DEFAULT_CITY`].
pub fn addresses_from_features(features: Vec<Feature>) -> Vec<Address> {
    let mut groups: BTreeMap<(String, String), Vec<Feature>> = BTreeMap::new();
    for feature in features {
        groups
            .entry((feature.street.clone(), feature.housenumber.clone()))
            .or_default()
            .push(feature);
    }

    let mut addresses: Vec<Address> = groups
        .into_values()
        .filter_map(|mut group| {
            group.sort_by(|a, b| rank(b).cmp(&rank(a)).then(a.id.cmp(&b.id)));
            let postcode = group
                .iter()
                .filter_map(|f| f.postcode.as_deref())
                .find(|p| valid_postcode(p))
                .map(str::to_owned);
            let city = group
                .iter()
                .filter_map(|f| f.city.as_deref())
                .find(|c| valid_city(c))
                .unwrap_or(DEFAULT_CITY)
                .to_owned();
            let best = group.into_iter().next()?;
            Some(Address {
                street: best.street,
                housenumber: best.housenumber,
                postcode,
                city,
                lon: best.lon,
                lat: best.lat,
                building: best.building,
                from_way: best.kind == FeatureKind::Way,
            })
        })
        .collect();
    sort_addresses(&mut addresses);
    addresses
}

/// Sorts by street, then housenumber in natural order (2 < 10 < 10a).
pub fn sort_addresses(addresses: &mut [Address]) {
    addresses.sort_by(|a, b| {
        a.street
            .cmp(&b.street)
            .then_with(|| natural_cmp(&a.housenumber, &b.housenumber))
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feature(kind: FeatureKind, id: i64, street: &str, number: &str) -> Feature {
        Feature {
            kind,
            id,
            street: street.into(),
            housenumber: number.into(),
            postcode: None,
            city: None,
            building: None,
            lon: id as f64,
            lat: 60.0,
        }
    }

    #[test]
    fn building_way_wins_over_nodes_and_fills_gaps_from_them() {
        let mut node = feature(FeatureKind::Node, 1, "Annankatu", "25");
        node.postcode = Some("00100".into());
        node.city = Some("Helsinki".into());
        let mut bare_way = feature(FeatureKind::Way, 2, "Annankatu", "25");
        bare_way.postcode = Some("000120".into());
        let mut building = feature(FeatureKind::Way, 3, "Annankatu", "25");
        building.building = Some("apartments".into());
        building.city = Some("7".into());
        let addresses = addresses_from_features(vec![node, bare_way, building]);
        assert_eq!(addresses.len(), 1);
        let a = &addresses[0];
        assert_eq!(a.lon, 3.0, "the building way's point");
        assert_eq!(a.building.as_deref(), Some("apartments"));
        assert!(a.from_way);
        assert_eq!(
            a.postcode.as_deref(),
            Some("00100"),
            "000120 is not a postcode"
        );
        assert_eq!(a.city, "Helsinki", "7 is not a city");
    }

    #[test]
    fn nodes_only_take_the_lowest_id_and_default_city() {
        let a = feature(FeatureKind::Node, 9, "Bulevardi", "7");
        let b = feature(FeatureKind::Node, 4, "Bulevardi", "7");
        let addresses = addresses_from_features(vec![a, b]);
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].lon, 4.0);
        assert!(!addresses[0].from_way);
        assert_eq!(addresses[0].city, DEFAULT_CITY);
        assert_eq!(addresses[0].postcode, None);
    }

    #[test]
    fn sorted_by_street_then_natural_housenumber() {
        let features = ["10a", "2", "10", "1-3", "10 B", "Keskuskatu 5"]
            .iter()
            .enumerate()
            .map(|(i, n)| feature(FeatureKind::Node, i as i64, "Kaivokatu", n))
            .chain([feature(FeatureKind::Node, 99, "Annankatu", "30")])
            .collect();
        let order: Vec<String> = addresses_from_features(features)
            .into_iter()
            .map(|a| format!("{} {}", a.street, a.housenumber))
            .collect();
        assert_eq!(
            order,
            [
                "Annankatu 30",
                "Kaivokatu 1-3",
                "Kaivokatu 2",
                "Kaivokatu 10",
                "Kaivokatu 10a",
                "Kaivokatu 10 B",
                "Kaivokatu Keskuskatu 5",
            ]
        );
    }

    /// The real extract, where it is at hand (a copy of shared/ beside the work tree).
    #[test]
    fn reads_the_helsinki_extract() {
        let path = crate::tests::helsinki_pbf();
        if !path.exists() {
            eprintln!("skipped: {} not found", path.display());
            return;
        }
        let (addresses, report) = read_addresses_with_report(&path).unwrap();
        assert_eq!(report.nodes, 24_260);
        assert_eq!(report.ways, 5_130);
        assert_eq!(report.relations, 620);
        assert_eq!(report.address_nodes + report.address_ways, 1_445);
        assert_eq!(addresses.len(), 600);
        let streets: HashSet<&str> = addresses.iter().map(|a| a.street.as_str()).collect();
        assert_eq!(streets.len(), 81);
        let kaivokatu_1 = addresses
            .iter()
            .find(|a| a.street == "Kaivokatu" && a.housenumber == "1")
            .unwrap();
        assert!(kaivokatu_1.from_way);
        assert_eq!(kaivokatu_1.building.as_deref(), Some("train_station"));
        for a in &addresses {
            assert!((24.9..25.0).contains(&a.lon), "{a:?}");
            assert!((60.1..60.2).contains(&a.lat), "{a:?}");
        }
    }
}
