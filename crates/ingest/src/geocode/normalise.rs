//! Address text → comparable parts: folded tokens (case, diacritics and punctuation gone),
//! street-type abbreviations expanded, the house number read with its letter or range, the
//! postcode and city picked out, and whatever is left (building names, floors) kept as extras.

/// A house number: `12`, `12a`, `12 A`, `3-5` (a building spanning 3 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HouseNumber {
    /// The (first) number.
    pub first: u32,
    /// The last number of a range; equal to `first` otherwise.
    pub last: u32,
    /// A staircase or building letter, folded to lower case.
    pub letter: Option<char>,
}

impl HouseNumber {
    /// Reads a folded token: digits, an optional `-digits` range, an optional letter.
    pub fn parse(token: &str) -> Option<HouseNumber> {
        let digits_end = token
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(token.len());
        if digits_end == 0 || digits_end > 6 {
            return None;
        }
        let first: u32 = token[..digits_end].parse().ok()?;
        let mut rest = &token[digits_end..];
        let mut last = first;
        if let Some(range) = rest.strip_prefix('-') {
            let end = range
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(range.len());
            if end == 0 || end > 6 {
                return None;
            }
            last = range[..end].parse().ok()?;
            if last < first {
                return None;
            }
            rest = &range[end..];
        }
        let letter = match rest.len() {
            0 => None,
            1 => Some(rest.chars().next().filter(char::is_ascii_lowercase)?),
            _ => return None,
        };
        Some(HouseNumber {
            first,
            last,
            letter,
        })
    }

    /// How well a number asked for (`self`) fits one on record: 1 exact, less for a missing
    /// or different letter or a number inside a range, low for another number.
    pub fn fit(self, on_record: HouseNumber) -> f64 {
        if self.first == on_record.first && self.last == on_record.last {
            return match (self.letter, on_record.letter) {
                (a, b) if a == b => 1.0,
                // "12" for "12 A", or "12a" for "12": the same building, another door.
                (None, Some(_)) | (Some(_), None) => 0.9,
                _ => 0.8,
            };
        }
        let inside = on_record.first <= self.first && self.last <= on_record.last;
        // Finnish and most European numbering puts odd and even numbers on opposite sides.
        // Below an exact match by more than `pick`'s margin: a block spanning 14-20 is a
        // fallback for "16", not a rival to an entry for "16" itself.
        if inside && self.first % 2 == on_record.first % 2 {
            return 0.85;
        }
        0.2
    }
}

/// An address split into its parts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// Street words in order, folded (`["alvar", "aallon", "katu"]`).
    pub street: Vec<String>,
    /// The house number.
    pub number: Option<HouseNumber>,
    /// A five-digit postcode.
    pub postcode: Option<String>,
    /// The city, folded (aliases resolved: `helsingfors` → `helsinki`).
    pub city: Option<String>,
    /// Other tokens: building names, floors, staircases written out.
    pub extra: Vec<String>,
}

impl Parsed {
    /// The street as one key, e.g. `alvaraallonkatu`.
    pub fn street_key(&self) -> String {
        self.street.concat()
    }
}

/// Swedish and Finnish names of a few cities, and common shorthand, to the name on record.
const CITY_ALIASES: &[(&str, &str)] = &[
    ("helsingfors", "helsinki"),
    ("hki", "helsinki"),
    ("helsinginkaupunki", "helsinki"),
    ("helsingforsstad", "helsinki"),
    ("hel", "helsinki"),
    ("esbo", "espoo"),
    ("vanda", "vantaa"),
    ("grankulla", "kauniainen"),
    ("abo", "turku"),
    ("tammerfors", "tampere"),
    ("uleaborg", "oulu"),
];

/// A city token as compared.
pub fn city_key(token: &str) -> String {
    let t = fold(token).replace(|c: char| !c.is_alphanumeric(), "");
    CITY_ALIASES
        .iter()
        .find(|(alias, _)| *alias == t)
        .map_or(t, |(_, city)| (*city).to_string())
}

/// Lower case, ASCII (`Töölönlahdenkatu` → `toolonlahdenkatu`).
pub fn fold(text: &str) -> String {
    deunicode::deunicode(text).to_lowercase()
}

/// Street-type words written on their own after a name, and what they stand for.
const STANDALONE: &[(&str, &str)] = &[
    ("k", "katu"),
    ("t", "tie"),
    ("kj", "kuja"),
    ("g", "gatan"),
    ("v", "vagen"),
    ("st", "street"),
    ("rd", "road"),
    ("ave", "avenue"),
    ("av", "avenue"),
    ("blvd", "boulevard"),
    ("dr", "drive"),
    ("ln", "lane"),
    ("sq", "square"),
];

/// Abbreviated endings of compound street names (`Mannerheimint.`), written with a dot.
const SUFFIXES: &[(&str, &str)] = &[
    ("kj.", "kuja"),
    ("espl.", "esplanadi"),
    ("k.", "katu"),
    ("t.", "tie"),
    ("g.", "gatan"),
    ("v.", "vagen"),
];

/// Expands an abbreviation; `standalone` when the token follows another street word.
fn expand(token: &str, standalone: bool) -> String {
    if standalone {
        let bare = token.trim_end_matches('.');
        if let Some((_, full)) = STANDALONE.iter().find(|(abbr, _)| *abbr == bare) {
            return (*full).to_string();
        }
    }
    for (abbr, full) in SUFFIXES {
        if let Some(stem) = token.strip_suffix(abbr)
            && stem.len() >= 3
            && stem.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
        {
            return format!("{stem}{full}");
        }
    }
    token.to_string()
}

/// Keeps letters and digits, and a dash inside a house-number range.
fn strip(token: &str) -> String {
    if HouseNumber::parse(token).is_some() {
        return token.to_string();
    }
    token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn is_postcode(token: &str) -> bool {
    token.len() == 5 && token.chars().all(|c| c.is_ascii_digit())
}

fn is_word(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_alphabetic()) && HouseNumber::parse(token).is_none()
}

/// Splits address text into its parts. `is_city` says whether a folded token names a city
/// (the gazetteer knows its cities); the last comma-separated part is taken as
/// "[postcode] city" when it holds no house number.
pub fn parse(text: &str, is_city: &dyn Fn(&str) -> bool) -> Parsed {
    let folded = fold(text);
    // Segments by comma; tokens by white space and the separators people put between floors.
    let segments: Vec<Vec<String>> = folded
        .split([',', ';', '\n'])
        .map(|segment| {
            let raw: Vec<&str> = segment
                .split(|c: char| c.is_whitespace() || matches!(c, '/' | '(' | ')' | ':' | '"'))
                .filter(|t| !t.is_empty())
                .collect();
            raw.iter()
                .enumerate()
                .map(|(i, t)| {
                    let follows_word = i > 0 && is_word(raw[i - 1]);
                    strip(&expand(t, follows_word))
                })
                .filter(|t| !t.is_empty())
                .collect()
        })
        .filter(|s: &Vec<String>| !s.is_empty())
        .collect();

    let mut out = Parsed::default();
    let mut used: Vec<Vec<bool>> = segments.iter().map(|s| vec![false; s.len()]).collect();

    // Street and number: "Street words 12a" (Nordic order), else "12 Street words" (English).
    'find: for (si, seg) in segments.iter().enumerate() {
        for (ti, token) in seg.iter().enumerate() {
            let Some(mut number) = HouseNumber::parse(token) else {
                continue;
            };
            if is_postcode(token) && ti + 1 < seg.len() {
                continue; // "00100 Helsinki"
            }
            let before: Vec<usize> = (0..ti).rev().take_while(|&j| is_word(&seg[j])).collect();
            let after: Vec<usize> = (ti + 1..seg.len())
                .take_while(|&j| is_word(&seg[j]))
                .collect();
            let street_at: Vec<usize> = if !before.is_empty() {
                before.into_iter().rev().collect()
            } else if ti == 0 && !after.is_empty() && !after.iter().all(|&j| is_city(&seg[j])) {
                after
            } else {
                continue;
            };
            used[si][ti] = true;
            // "13 A": a lone letter after the number is its letter.
            if number.letter.is_none()
                && let Some(next) = seg.get(ti + 1)
                && next.len() == 1
                && next.chars().all(|c| c.is_ascii_lowercase())
                && !street_at.contains(&(ti + 1))
            {
                number.letter = next.chars().next();
                used[si][ti + 1] = true;
            }
            for &j in &street_at {
                used[si][j] = true;
            }
            out.street = street_at.iter().map(|&j| seg[j].clone()).collect();
            out.number = Some(number);
            break 'find;
        }
    }

    // Postcode: a five-digit token not used as the house number (the last one wins).
    for (si, seg) in segments.iter().enumerate() {
        for (ti, token) in seg.iter().enumerate() {
            if !used[si][ti] && is_postcode(token) {
                out.postcode = Some(token.clone());
                used[si][ti] = true;
            }
        }
    }

    // City: a known city token anywhere, else the words of a final "[postcode] city" part.
    for (si, seg) in segments.iter().enumerate() {
        for (ti, token) in seg.iter().enumerate() {
            if !used[si][ti] && is_city(&city_key(token)) {
                out.city = Some(city_key(token));
                used[si][ti] = true;
            }
        }
    }
    if out.city.is_none() && segments.len() > 1 {
        let last = segments.len() - 1;
        let unused: Vec<usize> = (0..segments[last].len())
            .filter(|&j| !used[last][j])
            .collect();
        if !unused.is_empty() && unused.iter().all(|&j| is_word(&segments[last][j])) {
            out.city = Some(city_key(
                &unused
                    .iter()
                    .map(|&j| segments[last][j].as_str())
                    .collect::<String>(),
            ));
            for j in unused {
                used[last][j] = true;
            }
        }
    }

    for (si, seg) in segments.iter().enumerate() {
        for (ti, token) in seg.iter().enumerate() {
            if !used[si][ti] {
                out.extra.push(token.clone());
            }
        }
    }
    out
}

/// Edit distance between two short strings (by characters).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// How alike two street keys are, 0..1: 1 equal; 0.9 when the asked key is a leading part
/// of the one on record (a typed abbreviation); otherwise by edit distance.
pub fn street_similarity(asked: &str, on_record: &str) -> f64 {
    if asked == on_record {
        return 1.0;
    }
    if asked.len() >= 4 && on_record.starts_with(asked) {
        return 0.9;
    }
    let longest = asked.chars().count().max(on_record.chars().count());
    if longest == 0 {
        return 0.0;
    }
    1.0 - levenshtein(asked, on_record) as f64 / longest as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(text: &str) -> Parsed {
        parse(text, &|t| t == "helsinki" || t == "espoo")
    }

    #[test]
    fn house_numbers() {
        let n = |t| HouseNumber::parse(t).unwrap();
        assert_eq!(
            n("12a"),
            HouseNumber {
                first: 12,
                last: 12,
                letter: Some('a')
            }
        );
        assert_eq!(
            n("3-5"),
            HouseNumber {
                first: 3,
                last: 5,
                letter: None
            }
        );
        assert!(HouseNumber::parse("a12").is_none());
        assert!(HouseNumber::parse("12ab").is_none());
        assert!(HouseNumber::parse("5-3").is_none());
        assert!(HouseNumber::parse("99999999999").is_none());
        assert_eq!(n("12").fit(n("12")), 1.0);
        assert_eq!(n("12").fit(n("12a")), 0.9);
        assert_eq!(n("5").fit(n("3-5")), 0.85);
        assert_eq!(n("4").fit(n("3-5")), 0.2);
        assert_eq!(n("14").fit(n("12")), 0.2);
    }

    #[test]
    fn addresses_split_into_parts() {
        let a = p("Aleksanterinkatu 13 A, 5. krs./Floor 5, 00100 Helsinki");
        assert_eq!(a.street, ["aleksanterinkatu"]);
        assert_eq!(a.number.unwrap().letter, Some('a'));
        assert_eq!(a.postcode.as_deref(), Some("00100"));
        assert_eq!(a.city.as_deref(), Some("helsinki"));
        assert_eq!(a.extra, ["5", "krs", "floor", "5"]);

        let a = p("Asemahalli, Kaivokatu 1, 00100 Helsinki");
        assert_eq!(a.street, ["kaivokatu"]);
        assert_eq!(a.extra, ["asemahalli"]);

        let a = p("alvar aallon k. 3 helsingfors");
        assert_eq!(a.street_key(), "alvaraallonkatu");
        assert_eq!(a.city.as_deref(), Some("helsinki"));

        let a = p("MANNERHEIMINT. 8");
        assert_eq!(a.street_key(), "mannerheimintie");
        let a = p("Töölönlahdenkatu 2");
        assert_eq!(a.street_key(), "toolonlahdenkatu");
        let a = p("Asema-aukio 2 C");
        assert_eq!(a.street_key(), "asemaaukio");
        assert_eq!(a.number.unwrap().letter, Some('c'));
        let a = p("10 Downing St., London");
        assert_eq!(a.street_key(), "downingstreet");
        assert_eq!(a.city.as_deref(), Some("london"));
        let a = p("Storg. 4, Espoo");
        assert_eq!(a.street_key(), "storgatan");
        assert_eq!(a.city.as_deref(), Some("espoo"));
        let a = p("Iso Roobertinkatu 3-5, Helsinki");
        assert_eq!(a.number.unwrap().last, 5);
        let a = p("Kaivokatu 1 Helsinki");
        assert_eq!(
            (a.street_key().as_str(), a.city.as_deref()),
            ("kaivokatu", Some("helsinki"))
        );
        let a = p("Pohjoisesplanadi 33 Keskuskatu 5, 00130 Helsinki");
        assert_eq!(a.street, ["pohjoisesplanadi"]);
        assert_eq!(a.extra, ["keskuskatu", "5"]);
        assert_eq!(p("").street_key(), "");
    }

    #[test]
    fn similarity() {
        assert_eq!(street_similarity("kaivokatu", "kaivokatu"), 1.0);
        assert_eq!(street_similarity("kaivo", "kaivokatu"), 0.9);
        assert!(street_similarity("kaivokattu", "kaivokatu") > 0.85);
        assert!(street_similarity("snellmankatu", "snellmaninkatu") > 0.8);
        assert!(street_similarity("bulevardi", "kaivokatu") < 0.5);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}
