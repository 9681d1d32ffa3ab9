//! The embedded geocoder: an in-memory list of known addresses with their points, matched on
//! normalised text.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;

use outagecast_core::area::LonLat;

use super::normalise::{self, Parsed};
use super::{Candidate, Geocoder};
use crate::error::{IngestError, Result};

/// One gazetteer CSV row: `street,housenumber,postcode,city,lon,lat`.
#[derive(Debug, Clone, PartialEq)]
pub struct GazetteerRow {
    /// The address written as customers' addresses are: "Street 12, 00100 City".
    pub label: String,
    /// Its point.
    pub point: LonLat,
}

/// Reads a gazetteer CSV (the columns of `data/helsinki/addresses.csv`). Every bad row is an
/// error naming its line: a gazetteer is reference data, better fixed than half-loaded.
pub fn parse_gazetteer_csv(text: &str, field: &str) -> Result<Vec<GazetteerRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| IngestError::invalid(field, format!("cannot read the header: {e}")))?
        .clone();
    let want = ["street", "housenumber", "postcode", "city", "lon", "lat"];
    let columns: Vec<usize> = want
        .iter()
        .map(|w| {
            headers.iter().position(|h| h.trim() == *w).ok_or_else(|| {
                IngestError::invalid(
                    field,
                    format!("has no {w:?} column; the header must be street,housenumber,postcode,city,lon,lat"),
                )
            })
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| IngestError::invalid(format!("{field} line {line}"), e))?;
        let get = |k: usize| record.get(columns[k]).unwrap_or("").trim();
        let number = |k: usize, name: &str| -> Result<f64> {
            get(k).parse::<f64>().map_err(|_| {
                IngestError::invalid(
                    format!("{field} line {line}: {name}"),
                    format!("{:?} is not a number", get(k)),
                )
            })
        };
        let point = LonLat::parse(number(4, "lon")?, number(5, "lat")?)
            .map_err(|e| IngestError::from(e).within(format!("{field} line {line}")))?;
        if get(0).is_empty() {
            return Err(IngestError::invalid(
                format!("{field} line {line}: street"),
                "is empty",
            ));
        }
        let place = [get(2), get(3)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut label = format!("{} {}", get(0), get(1)).trim().to_string();
        if !place.is_empty() {
            label = format!("{label}, {place}");
        }
        rows.push(GazetteerRow { label, point });
    }
    Ok(rows)
}

#[derive(Debug, Clone)]
struct Entry {
    label: String,
    point: LonLat,
    parsed: Parsed,
    /// The label with white space collapsed, for the exact-spelling tie-break.
    exact: String,
}

/// The embedded geocoder.
///
/// ```
/// use outagecast_core::area::LonLat;
/// use outagecast_ingest::geocode::{pick, Gazetteer};
/// let g = Gazetteer::new([
///     ("Kaivokatu 1, 00101 Helsinki".to_string(), LonLat::parse(24.9412, 60.1712).unwrap()),
///     ("Kaivokatu 2, 00100 Helsinki".to_string(), LonLat::parse(24.9442, 60.1700).unwrap()),
/// ]);
/// let best = pick("--address", "kaivok. 1, helsingfors", g.search("kaivok. 1, helsingfors")).unwrap();
/// assert_eq!(best.label, "Kaivokatu 1, 00101 Helsinki");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    entries: Vec<Entry>,
    /// Street keys, and the entries on each (same index).
    streets: Vec<(String, Vec<usize>)>,
    /// Character bigram of a street key (padded at both ends) → (street, how many times).
    /// A plain map rather than an FST or a trie: the filter needs counts per street, the
    /// gazetteer is rebuilt from the store on every request, and a few thousand streets
    /// index in well under a millisecond.
    bigrams: HashMap<(char, char), Vec<(u32, u32)>>,
    /// Characters in the longest street key.
    longest: usize,
    cities: HashSet<String>,
}

/// The bigrams of `text` padded with a sentinel at both ends: `len + 1` of them.
fn padded_bigrams(text: &str) -> HashMap<(char, char), u32> {
    let mut grams = HashMap::new();
    let chars: Vec<char> = std::iter::once('\u{0}')
        .chain(text.chars())
        .chain(std::iter::once('\u{0}'))
        .collect();
    for w in chars.windows(2) {
        *grams.entry((w[0], w[1])).or_insert(0) += 1;
    }
    grams
}

impl Gazetteer {
    /// Builds the gazetteer from address texts and their points. Repeats (every account at
    /// one address) are kept once.
    pub fn new(addresses: impl IntoIterator<Item = (String, LonLat)>) -> Self {
        let mut raw: Vec<(String, LonLat)> = Vec::new();
        let mut seen: HashSet<(String, u64, u64)> = HashSet::new();
        for (label, point) in addresses {
            let key = (
                label.trim().to_string(),
                point.lon().to_bits(),
                point.lat().to_bits(),
            );
            if seen.insert(key) {
                raw.push((label.trim().to_string(), point));
            }
        }
        // Cities first: the last comma-separated part of each address, less its postcode.
        let mut cities: HashSet<String> = HashSet::new();
        for (label, _) in &raw {
            if let Some((_, last)) = label.rsplit_once(',') {
                let words: String = last
                    .split_whitespace()
                    .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
                    .collect();
                let key = normalise::city_key(&words);
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic()) {
                    cities.insert(key);
                }
            }
        }
        let is_city = |t: &str| cities.contains(t);
        let mut entries = Vec::with_capacity(raw.len());
        let mut by_street: HashMap<String, Vec<usize>> = HashMap::new();
        for (label, point) in raw {
            let parsed = normalise::parse(&label, &is_city);
            let key = parsed.street_key();
            if key.is_empty() {
                continue; // No street to match on: nothing could find it.
            }
            by_street.entry(key).or_default().push(entries.len());
            entries.push(Entry {
                exact: collapse(&label),
                label,
                point,
                parsed,
            });
        }
        let mut streets: Vec<(String, Vec<usize>)> = by_street.into_iter().collect();
        streets.sort();
        let mut bigrams: HashMap<(char, char), Vec<(u32, u32)>> = HashMap::new();
        let mut longest = 0;
        for (i, (key, _)) in streets.iter().enumerate() {
            longest = longest.max(key.chars().count());
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for (gram, n) in padded_bigrams(key) {
                bigrams.entry(gram).or_default().push((i, n));
            }
        }
        Gazetteer {
            entries,
            streets,
            bigrams,
            longest,
            cities,
        }
    }

    /// The streets that may be at least 0.75 similar to `asked` under
    /// [`normalise::street_similarity`]; the others cannot be, so only these get the edit
    /// distance. Two exact filters on padded bigrams (each edit changes at most two):
    /// within edit distance d of a key, with L the longer length, the two share at least
    /// L + 1 - 2d bigrams, and 0.75 similarity allows d ≤ L / 4; a prefix of a key (the
    /// other way to 0.75) shares at least its own length.
    fn candidates(&self, asked: &str) -> Vec<usize> {
        let la = asked.chars().count();
        let mut shared: HashMap<u32, u32> = HashMap::new();
        for (gram, n) in padded_bigrams(asked) {
            for &(street, m) in self.bigrams.get(&gram).map_or(&[][..], Vec::as_slice) {
                *shared.entry(street).or_insert(0) += n.min(m);
            }
        }
        let mut out: Vec<usize> = shared
            .into_iter()
            .filter(|&(street, common)| {
                let key = &self.streets[street as usize].0;
                let longer = la.max(key.chars().count());
                // One edit more than 0.75 allows, so that rounding in the similarity's
                // division can never drop a street the full test would keep.
                let edits = longer / 4 + 1;
                let by_distance = (common as usize + 2 * edits) > longer;
                // `street_similarity` asks for 4 bytes, not characters.
                let by_prefix = asked.len() >= 4 && common as usize >= la;
                by_distance || by_prefix
            })
            .map(|(street, _)| street as usize)
            .collect();
        out.sort_unstable();
        out
    }

    /// Adds gazetteer rows to addresses already known.
    #[must_use]
    pub fn with_rows(self, rows: Vec<GazetteerRow>) -> Self {
        let existing = self.entries.into_iter().map(|e| (e.label, e.point));
        Gazetteer::new(existing.chain(rows.into_iter().map(|r| (r.label, r.point))))
    }

    /// Number of distinct addresses known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ranked candidates for `query`, best first (at most 10).
    pub fn search(&self, query: &str) -> Vec<Candidate> {
        let is_city = |t: &str| self.cities.contains(t);
        let mut q = normalise::parse(query, &is_city);
        if q.street.is_empty() {
            // No house number: the words are the street ("Kaivokatu, Helsinki").
            let words: Vec<String> = q
                .extra
                .iter()
                .filter(|t| t.chars().any(|c| c.is_ascii_alphabetic()))
                .cloned()
                .collect();
            q.extra.retain(|t| !words.contains(t));
            q.street = words;
        }
        // The street-and-number part as typed, for the exact-spelling tie-break.
        let exact = collapse(
            query
                .split(',')
                .find(|p| p.chars().any(|c| c.is_ascii_digit()))
                .unwrap_or(""),
        );
        let mut scored: Vec<(f64, usize)> = Vec::new();
        // Try the street as the last 1..n street words: "Asemahalli Kaivokatu 1" is Kaivokatu.
        let n = q.street.len();
        let mut best_per_entry: HashMap<usize, f64> = HashMap::new();
        for k in 1..=n {
            let asked = q.street[n - k..].concat();
            // Windows only grow. One over 4/3 of the longest street cannot be 0.75 similar to
            // any (a prefix is shorter than its street; the edit distance is at least the
            // difference in length): the rest of a long text costs nothing.
            if 3 * asked.chars().count() > 4 * self.longest + 4 {
                break;
            }
            let leading: Vec<String> = q.street[..n - k].to_vec();
            for street in self.candidates(&asked) {
                let (key, ids) = &self.streets[street];
                let sim = normalise::street_similarity(&asked, key);
                if sim < 0.75 {
                    continue;
                }
                for &id in ids {
                    let e = &self.entries[id];
                    let score = score(&q, &leading, sim, e, &exact, &is_city);
                    let slot = best_per_entry.entry(id).or_insert(f64::MIN);
                    if score > *slot {
                        *slot = score;
                    }
                }
            }
        }
        scored.extend(best_per_entry.into_iter().map(|(id, s)| (s, id)));
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(10)
            .map(|(confidence, id)| Candidate {
                label: self.entries[id].label.clone(),
                point: self.entries[id].point,
                confidence: confidence.clamp(0.0, 1.0),
            })
            .collect()
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How well entry `e` matches the query `q` whose street, less its `leading` words, was
/// `sim`-similar to the entry's street.
fn score(
    q: &Parsed,
    leading: &[String],
    sim: f64,
    e: &Entry,
    exact: &str,
    is_city: &dyn Fn(&str) -> bool,
) -> f64 {
    let exact = exact.trim();
    let number = match (q.number, e.parsed.number) {
        (Some(asked), Some(on_record)) => asked.fit(on_record),
        // A street without a number: listed, never accepted on its own.
        (None, _) => 0.6,
        (Some(_), None) => 0.5,
    };
    let mut s = sim * number;
    match (&q.postcode, &e.parsed.postcode) {
        (Some(a), Some(b)) if a != b => s -= 0.15,
        (Some(_), None) => s -= 0.01,
        _ => {}
    }
    // Leading street words that are a city ("Helsinki Kaivokatu 1") count as the city.
    let mut city = q.city.clone();
    let mut extra: Vec<&String> = q.extra.iter().collect();
    for w in leading {
        if city.is_none() && is_city(w) {
            city = Some(w.clone());
        } else {
            extra.push(w);
        }
    }
    if let (Some(a), Some(b)) = (&city, &e.parsed.city)
        && a != b
    {
        s -= 0.3;
    }
    // Extras (building names, floors): what both mention helps, what only one side has
    // costs a little. Small weights: they decide between entries at one address, never more.
    let on_record: HashSet<&str> = e.parsed.extra.iter().map(String::as_str).collect();
    let asked: HashSet<&str> = extra.iter().map(|s| s.as_str()).collect();
    let shared = asked.intersection(&on_record).count() as f64;
    let asked_only = asked.difference(&on_record).count() as f64;
    let record_only = on_record.difference(&asked).count() as f64;
    s += (0.02 * shared).min(0.06);
    s -= (0.05 * asked_only).min(0.15);
    s -= (0.04 * record_only).min(0.12);
    // The spelling on record, typed exactly (case and all), wins a tie between two spellings
    // of one address ("Alvar Aallon katu 3" and "Alvar Aallon Katu 3" are both in OSM).
    // Added after the cap at 1 so that it still tells two perfect matches apart; the
    // candidate's confidence is clamped to 1 when it is reported.
    let tie = if !exact.is_empty() && e.exact.starts_with(exact) {
        0.001
    } else {
        0.0
    };
    s.min(1.0) + tie
}

impl Geocoder for Gazetteer {
    type Error = Infallible;

    fn candidates(
        &self,
        query: &str,
    ) -> impl Future<Output = std::result::Result<Vec<Candidate>, Infallible>> + Send {
        std::future::ready(Ok(self.search(query)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::pick;
    use super::*;

    fn g() -> Gazetteer {
        let at = |lon, lat| LonLat::parse(lon, lat).unwrap();
        Gazetteer::new([
            (
                "Kaivokatu 1, 00101 Helsinki".to_string(),
                at(24.9411971, 60.1712045),
            ),
            (
                "Asemahalli, Kaivokatu 1, 00100 Helsinki".to_string(),
                at(24.9414937, 60.1711182),
            ),
            (
                "Rautatieasema, Kaivokatu 1, 00100 Helsinki".to_string(),
                at(24.9422072, 60.1709180),
            ),
            (
                "Kaivokatu 2, 00100 Helsinki".to_string(),
                at(24.9442191, 60.1700180),
            ),
            (
                "Kaivokatu 12, 00100 Helsinki".to_string(),
                at(24.9393383, 60.1699967),
            ),
            (
                "Snellmaninkatu 14A, Helsinki".to_string(),
                at(24.9527642, 60.1735611),
            ),
            (
                "Snellmaninkatu 14B, Helsinki".to_string(),
                at(24.9528538, 60.1739038),
            ),
            (
                "Iso Roobertinkatu 3-5, 00120 Helsinki".to_string(),
                at(24.9422, 60.1630),
            ),
            (
                "Mannerheimintie 8, Floor 6, 00100 Helsinki".to_string(),
                at(24.9417355, 60.1672477),
            ),
            ("Kirkkokatu 4, Helsinki".to_string(), at(24.9535, 60.1712)),
            ("Kirkkokatu 4, Espoo".to_string(), at(24.6500, 60.2050)),
            (
                "Kaivokatu 1, 00101 Helsinki".to_string(),
                at(24.9411971, 60.1712045),
            ),
        ])
    }

    fn best(query: &str) -> String {
        pick("--address", query, g().search(query)).unwrap().label
    }

    #[test]
    fn normalised_queries_find_the_building() {
        assert_eq!(g().len(), 11, "repeats kept once");
        assert_eq!(best("Kaivokatu 1, Helsinki"), "Kaivokatu 1, 00101 Helsinki");
        assert_eq!(best("KAIVOKATU 1"), "Kaivokatu 1, 00101 Helsinki");
        assert_eq!(
            best("kaivok. 1, 00101 helsingfors"),
            "Kaivokatu 1, 00101 Helsinki"
        );
        assert_eq!(
            best("Rautatieasema, Kaivokatu 1"),
            "Rautatieasema, Kaivokatu 1, 00100 Helsinki"
        );
        assert_eq!(best("Kaivokattu 12"), "Kaivokatu 12, 00100 Helsinki");
        assert_eq!(best("snellmaninkatu 14 b"), "Snellmaninkatu 14B, Helsinki");
        assert_eq!(
            best("Iso Roobertink. 5"),
            "Iso Roobertinkatu 3-5, 00120 Helsinki"
        );
        assert_eq!(
            best("Mannerheimintie 8, Helsinki"),
            "Mannerheimintie 8, Floor 6, 00100 Helsinki"
        );
        assert_eq!(best("Kirkkokatu 4, Espoo"), "Kirkkokatu 4, Espoo");
        assert_eq!(best("Helsinki Kirkkokatu 4"), "Kirkkokatu 4, Helsinki");
    }

    #[test]
    fn unknown_and_ambiguous_addresses_list_candidates() {
        let e = pick("--address", "Kirkkokatu 4", g().search("Kirkkokatu 4"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ambiguous") && e.contains("Espoo") && e.contains("Helsinki"),
            "{e}"
        );
        let e = pick("--address", "Kaivokatu", g().search("Kaivokatu"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no address matches") && e.contains("Kaivokatu 1"),
            "{e}"
        );
        let e = pick("--address", "Kaivokatu 99", g().search("Kaivokatu 99"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no address matches"), "{e}");
        let e = pick("--address", "Bulevardi 1", g().search("Bulevardi 1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no address matches \"Bulevardi 1\"; check"),
            "{e}"
        );
        assert!(g().search("").is_empty());
    }

    #[test]
    fn gazetteer_csv_rows_become_addresses() {
        let rows = parse_gazetteer_csv(
            "street,housenumber,postcode,city,lon,lat\nBulevardi,1,00120,Helsinki,24.9390,60.1660\nBulevardi,2,,Helsinki,24.9395,60.1662\n",
            "--gazetteer",
        )
        .unwrap();
        assert_eq!(rows[0].label, "Bulevardi 1, 00120 Helsinki");
        assert_eq!(rows[1].label, "Bulevardi 2, Helsinki");
        let g = g().with_rows(rows);
        assert_eq!(
            pick("--address", "Bulevardi 2", g.search("Bulevardi 2"))
                .unwrap()
                .label,
            "Bulevardi 2, Helsinki"
        );
        let e = parse_gazetteer_csv("street,lon,lat\n", "--gazetteer")
            .unwrap_err()
            .to_string();
        assert!(e.contains("housenumber"), "{e}");
        let e = parse_gazetteer_csv(
            "street,housenumber,postcode,city,lon,lat\nA,1,,X,24.9,95\n",
            "--gazetteer",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("latitude"), "{e}");
    }

    fn streets_gazetteer() -> Gazetteer {
        let names = [
            "Kaivokatu",
            "Mannerheimintie",
            "Alvar Aallon katu",
            "Aleksanterinkatu",
            "Itäinen Papinkatu",
            "Töölönkatu",
            "Ratakatu",
            "Runeberginkatu",
            "Keskuskatu",
            "Yrjönkatu",
            "Esplanadi",
            "Ääkkösentie",
        ];
        let at = LonLat::parse(24.94, 60.17).unwrap();
        Gazetteer::new(names.iter().map(|n| (format!("{n} 1, 00100 Helsinki"), at)))
    }

    proptest::proptest! {
        /// The bigram filter never drops a street the full similarity test would keep.
        #[test]
        fn pruning_keeps_every_street_that_could_match(
            pick in 0usize..12,
            edits in proptest::collection::vec((0usize..40, proptest::char::range('a', 'ö'), 0u8..4), 0..4),
            cut in 0usize..20,
        ) {
            let g = streets_gazetteer();
            let mut asked: Vec<char> = g.streets[pick % g.streets.len()].0.chars().collect();
            for (at, c, op) in edits {
                let at = at % (asked.len() + 1);
                match op {
                    0 if at < asked.len() => { asked.remove(at); }
                    1 if at < asked.len() => asked[at] = c,
                    _ => asked.insert(at, c),
                }
            }
            asked.truncate(asked.len().saturating_sub(cut % 6));
            let asked: String = asked.into_iter().collect();
            let kept = g.candidates(&asked);
            for (i, (key, _)) in g.streets.iter().enumerate() {
                if normalise::street_similarity(&asked, key) >= 0.75 {
                    proptest::prop_assert!(kept.contains(&i), "{asked:?} dropped {key:?}");
                }
            }
        }
    }

    #[test]
    fn a_thousand_word_address_is_answered() {
        let g = streets_gazetteer();
        // The engine refuses this before geocoding (the address length limit); the gazetteer
        // on its own stays bounded too: long windows stop, and only streets sharing enough
        // bigrams are compared.
        let query = format!("{}Kaivokatu 1, Helsinki", "lorem ipsum dolor ".repeat(333));
        let found = g.search(&query);
        assert!(
            found
                .first()
                .is_some_and(|c| c.label.starts_with("Kaivokatu 1")),
            "{found:?}"
        );
    }
}
