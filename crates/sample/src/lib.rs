//! A deterministic sample customer base placed at real street addresses.
//!
//! [`read_addresses`] takes the distinct street addresses out of an OpenStreetMap extract;
//! [`generate`] puts made-up utility customers at them, the same rows for the same seed. The
//! generation itself is pure: it reads no file and writes none ([`write_customers`] and
//! [`write_addresses`] write CSV to any writer).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;

use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

pub mod osm;

pub use osm::{ReadReport, read_addresses, read_addresses_with_report};

/// A distinct street address with its point (WGS84).
#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    pub street: String,
    pub housenumber: String,
    pub postcode: Option<String>,
    pub city: String,
    pub lon: f64,
    pub lat: f64,
    /// The OSM `building` tag of the feature the point comes from.
    pub building: Option<String>,
    /// Whether the point comes from a way (a building outline) rather than a node.
    pub from_way: bool,
}

impl Address {
    /// `"{street} {housenumber}, {postcode} {city}"`, or without the postcode if unknown.
    pub fn label(&self) -> String {
        match &self.postcode {
            Some(postcode) => format!(
                "{} {}, {} {}",
                self.street, self.housenumber, postcode, self.city
            ),
            None => format!("{} {}, {}", self.street, self.housenumber, self.city),
        }
    }

    /// An apartment block: many accounts share its service connection.
    pub fn is_multi_dwelling(&self) -> bool {
        match self.building.as_deref() {
            Some("apartments" | "residential") => true,
            Some("yes") => self.from_way,
            _ => false,
        }
    }
}

/// One account of the sample customer base (a row of `customers.csv`).
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerRow {
    pub account_id: String,
    pub lon: f64,
    pub lat: f64,
    pub address: String,
    /// E.164 numbers, mobile first.
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub language: &'static str,
    pub priority: bool,
}

/// The `customers.csv` header (the importer's format).
pub const CUSTOMERS_HEADER: [&str; 8] = [
    "account_id",
    "lon",
    "lat",
    "address",
    "phone",
    "email",
    "language",
    "priority",
];

/// The `addresses.csv` header.
pub const ADDRESSES_HEADER: [&str; 6] = ["street", "housenumber", "postcode", "city", "lon", "lat"];

/// Prefix of the sample's mobile numbers: +358 48, a Finnish mobile prefix not known to be
/// assigned to any operator (Finland publishes no fictional range).
pub const MOBILE_PREFIX: &str = "+35848";
/// Prefix of the sample's landlines: Helsinki fixed-line numbers (area code 09).
pub const LANDLINE_PREFIX: &str = "+3589";
/// Digits after either prefix.
pub const SUBSCRIBER_DIGITS: usize = 7;

/// Accounts at an apartment block.
const MULTI_DWELLING_ACCOUNTS: std::ops::RangeInclusive<usize> = 4..=30;
/// Accounts at any other address (a shop, an office, a plain address point).
const OTHER_ACCOUNTS: std::ops::RangeInclusive<usize> = 1..=4;

// Phones: 85% mobile only, 10% landline only, 2% both, 3% none. (So 87% have a mobile and
// 12% a landline: "85% mobile, 10% landline, some both, 3% none" cannot all hold exactly.)
const P_NO_PHONE: f64 = 0.03;
const P_LANDLINE_ONLY: f64 = 0.10;
const P_BOTH: f64 = 0.02;
/// Chance that an account's mobile is one already on an earlier account (the same person with
/// a second flat), which makes about 2% of the distinct mobile numbers shared by two accounts.
const P_SHARED_MOBILE: f64 = 0.02;
const P_EMAIL: f64 = 0.60;
/// Of the accounts with an email, those with two (3% of all accounts).
const P_SECOND_EMAIL: f64 = 0.05;
const P_SWEDISH: f64 = 0.06;
const P_ENGLISH: f64 = 0.14;
const P_PRIORITY: f64 = 0.10;

const FINNISH_FIRST: &[&str] = &[
    "Aino", "Eino", "Väinö", "Helmi", "Matti", "Liisa", "Juha", "Päivi", "Mikko", "Sanna", "Jukka",
    "Tiina", "Antti", "Leena", "Pekka", "Sari", "Timo", "Anne", "Kari", "Minna", "Ville", "Elina",
    "Jari", "Hanna", "Tuomas", "Satu", "Eeva", "Ilkka", "Kaisa", "Otto",
];
const FINNISH_LAST: &[&str] = &[
    "Korhonen",
    "Virtanen",
    "Mäkinen",
    "Nieminen",
    "Mäkelä",
    "Hämäläinen",
    "Laine",
    "Heikkinen",
    "Koskinen",
    "Järvinen",
    "Lehtonen",
    "Lehtinen",
    "Saarinen",
    "Salminen",
    "Heinonen",
    "Niemi",
    "Heikkilä",
    "Kinnunen",
    "Salonen",
    "Turunen",
    "Salo",
    "Laitinen",
    "Tuominen",
    "Rantanen",
    "Karjalainen",
    "Jokinen",
    "Mattila",
    "Savolainen",
    "Lahtinen",
    "Ahonen",
];
const SWEDISH_FIRST: &[&str] = &[
    "Björn", "Elsa", "Erik", "Ebba", "Johan", "Linnea", "Anders", "Ingrid", "Mats", "Karin",
    "Nils", "Astrid", "Gustav", "Sofia", "Henrik", "Märta",
];
const SWEDISH_LAST: &[&str] = &[
    "Lindqvist",
    "Lindholm",
    "Nyström",
    "Sjöberg",
    "Holmström",
    "Forsman",
    "Ekström",
    "Westerlund",
    "Blomqvist",
    "Grönroos",
    "Åkerman",
    "Sundström",
    "Backman",
    "Lundberg",
];
const ENGLISH_FIRST: &[&str] = &[
    "James", "Emily", "Oliver", "Sarah", "Daniel", "Grace", "Thomas", "Hannah", "George", "Lucy",
    "David", "Chloe",
];
const ENGLISH_LAST: &[&str] = &[
    "Smith", "Brown", "Taylor", "Wilson", "Evans", "Walker", "Wright", "Clarke", "Hughes",
    "Turner", "Murphy", "Bennett",
];
/// Reserved for documentation and examples (RFC 2606): mail to them goes nowhere.
const EMAIL_DOMAINS: [&str; 2] = ["example.com", "example.org"];

/// Plain ASCII for an email local part: ä→a, ö→o, å→a, lowercase.
pub fn transliterate(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ä' | 'å' | 'Ä' | 'Å' => 'a',
            'ö' | 'Ö' => 'o',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// Compares housenumbers in natural order: digit runs as numbers, other text case-insensitively
/// with surrounding spaces ignored, numbers before text; so `1-3 < 2 < 10 < 10a < 10 B`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(first) = rest.chars().next() {
            let is_digit = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != is_digit)
                .unwrap_or(rest.len());
            let (chunk, tail) = rest.split_at(end);
            out.push(if is_digit {
                Ok(chunk.parse().unwrap_or(u64::MAX))
            } else {
                Err(chunk.trim().to_lowercase())
            });
            rest = tail;
        }
        out
    }
    chunks(a).cmp(&chunks(b)).then_with(|| a.cmp(b))
}

#[derive(Clone)]
struct Person {
    mobile: String,
    emails: Vec<String>,
    language: &'static str,
}

struct Generator {
    rng: ChaCha8Rng,
    numbers: HashSet<String>,
    emails: HashSet<String>,
    /// Earlier accounts' owners whose mobile is not shared yet.
    shareable: Vec<Person>,
}

impl Generator {
    fn number(&mut self, prefix: &str) -> String {
        loop {
            // No leading 9: libphonenumber's plan has no Helsinki fixed lines at 09 9xx xxxx,
            // and every sample number must pass the importer's validation.
            let subscriber = self.rng.random_range(1_000_000..9_000_000_u32);
            let number = format!("{prefix}{subscriber:07}");
            if self.numbers.insert(number.clone()) {
                return number;
            }
        }
    }

    fn language(&mut self) -> &'static str {
        let u: f64 = self.rng.random();
        if u < P_SWEDISH {
            "sv"
        } else if u < P_SWEDISH + P_ENGLISH {
            "en"
        } else {
            "fi"
        }
    }

    fn pick(&mut self, names: &[&'static str]) -> &'static str {
        names[self.rng.random_range(0..names.len())]
    }

    fn email(&mut self, language: &str) -> String {
        let (first, last) = match language {
            "sv" => (SWEDISH_FIRST, SWEDISH_LAST),
            "en" => (ENGLISH_FIRST, ENGLISH_LAST),
            _ => (FINNISH_FIRST, FINNISH_LAST),
        };
        loop {
            let first = transliterate(self.pick(first));
            let last = transliterate(self.pick(last));
            let n = self.rng.random_range(1..100_u32);
            let domain = EMAIL_DOMAINS[self.rng.random_range(0..EMAIL_DOMAINS.len())];
            let email = format!("{first}.{last}{n}@{domain}");
            if self.emails.insert(email.clone()) {
                return email;
            }
        }
    }

    fn account(&mut self, account_id: String, address: &Address) -> CustomerRow {
        let u: f64 = self.rng.random();
        let (has_mobile, has_landline) = if u < P_NO_PHONE {
            (false, false)
        } else if u < P_NO_PHONE + P_LANDLINE_ONLY {
            (false, true)
        } else if u < P_NO_PHONE + P_LANDLINE_ONLY + P_BOTH {
            (true, true)
        } else {
            (true, false)
        };

        // The owner of an earlier account with a second flat: same person, same contacts.
        let owner =
            if has_mobile && !self.shareable.is_empty() && self.rng.random_bool(P_SHARED_MOBILE) {
                let i = self.rng.random_range(0..self.shareable.len());
                Some(self.shareable.swap_remove(i))
            } else {
                None
            };

        let (mobile, emails, language) = match owner {
            Some(person) => (Some(person.mobile), person.emails, person.language),
            None => {
                let mobile = has_mobile.then(|| self.number(MOBILE_PREFIX));
                let language = self.language();
                let mut emails = Vec::new();
                if self.rng.random_bool(P_EMAIL) {
                    emails.push(self.email(language));
                    if self.rng.random_bool(P_SECOND_EMAIL) {
                        let household = self.language();
                        emails.push(self.email(household));
                    }
                }
                if let Some(mobile) = &mobile {
                    self.shareable.push(Person {
                        mobile: mobile.clone(),
                        emails: emails.clone(),
                        language,
                    });
                }
                (mobile, emails, language)
            }
        };

        let mut phones: Vec<String> = mobile.into_iter().collect();
        if has_landline {
            phones.push(self.number(LANDLINE_PREFIX));
        }
        CustomerRow {
            account_id,
            lon: address.lon,
            lat: address.lat,
            address: address.label(),
            phones,
            emails,
            language,
            priority: self.rng.random_bool(P_PRIORITY),
        }
    }
}

/// Puts made-up customer accounts at the addresses, in address order: 4 to 30 at an apartment
/// block ([`Address::is_multi_dwelling`]), 1 to 4 elsewhere. The same addresses and seed give
/// the same rows.
pub fn generate(addresses: &[Address], seed: u64) -> Vec<CustomerRow> {
    let mut generator = Generator {
        rng: ChaCha8Rng::seed_from_u64(seed),
        numbers: HashSet::new(),
        emails: HashSet::new(),
        shareable: Vec::new(),
    };
    let mut rows = Vec::new();
    for address in addresses {
        let accounts = if address.is_multi_dwelling() {
            MULTI_DWELLING_ACCOUNTS
        } else {
            OTHER_ACCOUNTS
        };
        let count = generator.rng.random_range(accounts);
        for _ in 0..count {
            let account_id = format!("HEL-{:06}", rows.len() + 1);
            rows.push(generator.account(account_id, address));
        }
    }
    rows
}

/// A coordinate as written to the CSV files: 7 decimals (about 1 cm).
pub fn coordinate(value: f64) -> String {
    format!("{value:.7}")
}

/// Writes `customers.csv`.
pub fn write_customers<W: io::Write>(writer: W, rows: &[CustomerRow]) -> csv::Result<()> {
    let mut csv = csv::Writer::from_writer(writer);
    csv.write_record(CUSTOMERS_HEADER)?;
    for row in rows {
        csv.write_record([
            row.account_id.as_str(),
            &coordinate(row.lon),
            &coordinate(row.lat),
            &row.address,
            &row.phones.join(";"),
            &row.emails.join(";"),
            row.language,
            if row.priority { "true" } else { "false" },
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// Writes `addresses.csv`: one row per distinct address, postcode empty where unknown.
pub fn write_addresses<W: io::Write>(writer: W, addresses: &[Address]) -> csv::Result<()> {
    let mut csv = csv::Writer::from_writer(writer);
    csv.write_record(ADDRESSES_HEADER)?;
    for a in addresses {
        csv.write_record([
            a.street.as_str(),
            &a.housenumber,
            a.postcode.as_deref().unwrap_or(""),
            &a.city,
            &coordinate(a.lon),
            &coordinate(a.lat),
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// Counts over a generated customer base, for the generator's report.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub customers: usize,
    pub with_mobile: usize,
    pub with_landline: usize,
    pub without_phone: usize,
    pub distinct_mobiles: usize,
    /// Mobile numbers on two or more accounts.
    pub shared_mobiles: usize,
    pub distinct_landlines: usize,
    pub with_email: usize,
    pub with_two_emails: usize,
    pub priority: usize,
    pub languages: BTreeMap<&'static str, usize>,
}

impl Summary {
    pub fn of(rows: &[CustomerRow]) -> Self {
        let mut mobiles: BTreeMap<&str, usize> = BTreeMap::new();
        let mut landlines = HashSet::new();
        let mut languages = BTreeMap::new();
        for row in rows {
            for phone in &row.phones {
                if phone.starts_with(MOBILE_PREFIX) {
                    *mobiles.entry(phone).or_default() += 1;
                } else {
                    landlines.insert(phone.as_str());
                }
            }
            *languages.entry(row.language).or_default() += 1;
        }
        let count = |f: &dyn Fn(&CustomerRow) -> bool| rows.iter().filter(|r| f(r)).count();
        Summary {
            customers: rows.len(),
            with_mobile: count(&|r| r.phones.iter().any(|p| p.starts_with(MOBILE_PREFIX))),
            with_landline: count(&|r| r.phones.iter().any(|p| p.starts_with(LANDLINE_PREFIX))),
            without_phone: count(&|r| r.phones.is_empty()),
            distinct_mobiles: mobiles.len(),
            shared_mobiles: mobiles.values().filter(|&&n| n > 1).count(),
            distinct_landlines: landlines.len(),
            with_email: count(&|r| !r.emails.is_empty()),
            with_two_emails: count(&|r| r.emails.len() > 1),
            priority: count(&|r| r.priority),
            languages,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = |n: usize| 100.0 * n as f64 / self.customers.max(1) as f64;
        writeln!(f, "customers: {}", self.customers)?;
        writeln!(
            f,
            "  with a mobile: {} ({:.1}%), {} distinct numbers, {} shared by two accounts ({:.1}%)",
            self.with_mobile,
            share(self.with_mobile),
            self.distinct_mobiles,
            self.shared_mobiles,
            100.0 * self.shared_mobiles as f64 / self.distinct_mobiles.max(1) as f64
        )?;
        writeln!(
            f,
            "  with a landline: {} ({:.1}%); without a phone: {} ({:.1}%)",
            self.with_landline,
            share(self.with_landline),
            self.without_phone,
            share(self.without_phone)
        )?;
        writeln!(
            f,
            "  with an email: {} ({:.1}%), with two: {} ({:.1}%)",
            self.with_email,
            share(self.with_email),
            self.with_two_emails,
            share(self.with_two_emails)
        )?;
        writeln!(
            f,
            "  priority: {} ({:.1}%)",
            self.priority,
            share(self.priority)
        )?;
        let languages: Vec<String> = self
            .languages
            .iter()
            .map(|(language, &n)| format!("{language} {n} ({:.1}%)", share(n)))
            .collect();
        write!(f, "  languages: {}", languages.join(", "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Where the OSM extract is when shared/ is beside the work tree.
    pub(crate) fn helsinki_pbf() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/Helsinki.osm.pbf")
    }

    fn address(i: usize, building: Option<&str>, from_way: bool) -> Address {
        Address {
            street: format!("Testikatu{}", i / 50),
            housenumber: (i % 50 + 1).to_string(),
            postcode: (!i.is_multiple_of(3)).then(|| "00100".to_owned()),
            city: "Helsinki".to_owned(),
            lon: 24.94 + i as f64 * 1e-5,
            lat: 60.17 + i as f64 * 1e-5,
            building: building.map(str::to_owned),
            from_way,
        }
    }

    /// 500 apartment blocks and 500 other addresses: about 10,000 accounts.
    fn addresses() -> Vec<Address> {
        (0..1000)
            .map(|i| match i % 4 {
                0 => address(i, Some("apartments"), true),
                1 => address(i, Some("yes"), true),
                2 => address(i, None, false),
                _ => address(i, Some("yes"), false),
            })
            .collect()
    }

    fn is_number(phone: &str, prefix: &str) -> bool {
        phone.strip_prefix(prefix).is_some_and(|digits| {
            digits.len() == SUBSCRIBER_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())
        })
    }

    #[test]
    fn same_seed_same_rows_other_seed_other_rows() {
        let addresses = addresses();
        let a = generate(&addresses, 2026);
        assert_eq!(a, generate(&addresses, 2026));
        assert_ne!(a, generate(&addresses, 2027));
    }

    #[test]
    fn every_address_has_accounts_in_range_and_ids_run_in_order() {
        let addresses = addresses();
        let rows = generate(&addresses, 7);
        let mut start = 0;
        for a in &addresses {
            let n = rows[start..]
                .iter()
                .take_while(|r| r.address == a.label())
                .count();
            let range = if a.is_multi_dwelling() { 4..=30 } else { 1..=4 };
            assert!(range.contains(&n), "{n} accounts at {}", a.label());
            assert!(rows[start..start + n].iter().all(|r| r.lon == a.lon));
            start += n;
        }
        assert_eq!(start, rows.len());
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.account_id, format!("HEL-{:06}", i + 1));
        }
    }

    #[test]
    fn phone_numbers_are_mobile_or_helsinki_landline_and_distinct_unless_shared() {
        let rows = generate(&addresses(), 2026);
        let mut accounts_per_number: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &rows {
            assert!(row.phones.len() <= 2, "{row:?}");
            if row.phones.len() == 2 {
                assert!(is_number(&row.phones[0], MOBILE_PREFIX), "{row:?}");
                assert!(is_number(&row.phones[1], LANDLINE_PREFIX), "{row:?}");
            }
            for phone in &row.phones {
                assert!(
                    is_number(phone, MOBILE_PREFIX) || is_number(phone, LANDLINE_PREFIX),
                    "{phone}"
                );
                *accounts_per_number.entry(phone).or_default() += 1;
            }
        }
        for (number, &n) in &accounts_per_number {
            assert!(n == 1 || (n == 2 && number.starts_with(MOBILE_PREFIX)));
        }
    }

    #[test]
    fn proportions_are_roughly_as_specified() {
        let rows = generate(&addresses(), 2026);
        let s = Summary::of(&rows);
        assert!(s.customers > 5000, "{s}");
        let share = |n: usize| n as f64 / s.customers as f64;
        let near = |n: usize, want: f64, tolerance: f64| (share(n) - want).abs() < tolerance;
        assert!(near(s.with_mobile, 0.87, 0.02), "{s}");
        assert!(near(s.with_landline, 0.12, 0.02), "{s}");
        assert!(near(s.without_phone, 0.03, 0.01), "{s}");
        assert!(near(s.with_email, 0.60, 0.03), "{s}");
        assert!(near(s.with_two_emails, 0.03, 0.01), "{s}");
        assert!(near(s.priority, 0.10, 0.02), "{s}");
        assert!(near(s.languages["fi"], 0.80, 0.03), "{s}");
        assert!(near(s.languages["sv"], 0.06, 0.015), "{s}");
        assert!(near(s.languages["en"], 0.14, 0.02), "{s}");
        let shared = s.shared_mobiles as f64 / s.distinct_mobiles as f64;
        assert!((0.01..0.03).contains(&shared), "{s}");
    }

    #[test]
    fn a_shared_mobile_is_one_person_with_two_accounts() {
        let rows = generate(&addresses(), 2026);
        let mut owners: BTreeMap<&str, Vec<&CustomerRow>> = BTreeMap::new();
        for row in &rows {
            if let Some(mobile) = row.phones.first().filter(|p| p.starts_with(MOBILE_PREFIX)) {
                owners.entry(mobile).or_default().push(row);
            }
        }
        let shared: Vec<_> = owners.values().filter(|r| r.len() == 2).collect();
        assert!(!shared.is_empty());
        for pair in shared {
            assert_eq!(pair[0].language, pair[1].language);
            assert_eq!(pair[0].emails, pair[1].emails);
        }
    }

    #[test]
    fn emails_are_lowercase_ascii_at_reserved_domains() {
        let rows = generate(&addresses(), 2026);
        for row in &rows {
            assert!(row.emails.len() <= 2);
            for email in &row.emails {
                let (local, domain) = email.split_once('@').unwrap();
                assert!(EMAIL_DOMAINS.contains(&domain), "{email}");
                let (first, last) = local.split_once('.').unwrap();
                assert!(!first.is_empty());
                assert!(first.bytes().all(|b| b.is_ascii_lowercase()), "{email}");
                let name = last.trim_end_matches(|c: char| c.is_ascii_digit());
                assert!(!name.is_empty() && name.len() < last.len(), "{email}");
                assert!(name.bytes().all(|b| b.is_ascii_lowercase()), "{email}");
            }
        }
    }

    #[test]
    fn csv_has_the_importer_header_and_quotes_addresses() {
        let addresses = vec![
            address(1, Some("apartments"), true),
            address(3, None, false),
        ];
        let rows = generate(&addresses, 1);
        let mut out = Vec::new();
        write_customers(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("account_id,lon,lat,address,phone,email,language,priority")
        );
        let first = lines.next().unwrap();
        assert!(
            first.starts_with("HEL-000001,24.9400100,60.1700100,\"Testikatu0 2, 00100 Helsinki\","),
            "{first}"
        );
        assert!(text.contains("\"Testikatu0 4, Helsinki\""), "{text}");
        assert_eq!(text.lines().count(), rows.len() + 1);

        let mut out = Vec::new();
        write_addresses(&mut out, &addresses).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "street,housenumber,postcode,city,lon,lat\n\
             Testikatu0,2,00100,Helsinki,24.9400100,60.1700100\n\
             Testikatu0,4,,Helsinki,24.9400300,60.1700300\n"
        );
    }

    #[test]
    fn transliteration_and_natural_order() {
        assert_eq!(transliterate("Väinö"), "vaino");
        assert_eq!(transliterate("Åkerman"), "akerman");
        assert_eq!(natural_cmp("2", "10"), Ordering::Less);
        assert_eq!(natural_cmp("10", "10a"), Ordering::Less);
        assert_eq!(natural_cmp("10a", "10 B"), Ordering::Less);
        assert_eq!(natural_cmp("9-11", "10"), Ordering::Less);
        assert_eq!(natural_cmp("99", "Keskuskatu 5"), Ordering::Less);
    }

    /// The committed CSVs are what the generator makes from the extract: a change to the
    /// generator, or to the random streams of a new rand version, shows up here.
    #[test]
    fn committed_sample_matches_the_generator() {
        let path = helsinki_pbf();
        if !path.exists() {
            eprintln!("skipped: {} not found", path.display());
            return;
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/helsinki");
        let addresses = read_addresses(&path).unwrap();
        let mut out = Vec::new();
        write_addresses(&mut out, &addresses).unwrap();
        let committed = std::fs::read(dir.join("addresses.csv")).unwrap();
        assert!(out == committed, "data/helsinki/addresses.csv is stale");
        let mut out = Vec::new();
        write_customers(&mut out, &generate(&addresses, 2026)).unwrap();
        let committed = std::fs::read(dir.join("customers.csv")).unwrap();
        assert!(out == committed, "data/helsinki/customers.csv is stale");
    }
}
