//! Customer import: the customer CSV and GeoJSON FeatureCollections of service points.
//!
//! Both formats are read into the core's [`CustomerRecord`] (text, before checking) and go
//! through one path to a [`Customer`]: [`CustomerRecord::parse`] and the
//! one-account-once-per-file rule. Every record is checked on its own, so one bad row or
//! feature is reported as a [`Rejected`] and never takes the rest of the file down with it.
//! Only a file that cannot be read as a whole is refused: a CSV header with unknown or missing
//! columns; for GeoJSON, invalid JSON, anything but a FeatureCollection, a geometry that is
//! not a Point, malformed coordinates, or an unknown property name.
//!
//! | CSV column | GeoJSON | |
//! |---|---|---|
//! | `account_id` | `properties.account_id` | required; a string (or an integer) |
//! | `lon`, `lat` | `geometry`: `{"type":"Point","coordinates":[lon, lat]}` | required; an altitude is ignored |
//! | `address` | `properties.address` | a string |
//! | `phone`, `email` | `properties.phone`, `properties.email` | a string, several separated by `;`, or an array of strings |
//! | `language` | `properties.language` | `fi`, `sv` or `en`; empty or absent: the default |
//! | `priority` | `properties.priority` | `true`/`false` (a boolean or a string); absent: false |
//! | `channel` | `properties.channel` | `sms`, `email` or `voice`: the one channel the customer asked for (used when they have a contact for it); empty or absent: every contact by default (mobiles texted, landlines called, emails mailed) |
//!
//! A `null` property is the same as an absent one (an empty CSV field).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use outagecast_core::CoreError;
use outagecast_core::customer::{CSV_HEADER, Customer, CustomerRecord, RecordRules};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{IngestError, Result};

/// A row or feature that was not imported.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// Where it is. CSV: the 1-based line in the file (the header is line 1). GeoJSON: the
    /// 1-based feature number, so `features[0]` is 1; the reason names the feature by its
    /// JSON path (`features[3].properties.phone: ...` is feature 4).
    pub line: u64,
    /// The account id as written, when the row had one.
    pub account_id: Option<String>,
    /// Which field is wrong and how to fix it.
    pub reason: String,
}

/// The records of a file, sorted into good and bad.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFile {
    /// Valid customers, in file order.
    pub customers: Vec<Customer>,
    /// Rejected rows or features, in file order.
    pub rejected: Vec<Rejected>,
}

/// The formats customers are imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerFormat {
    /// The customer CSV ([`read_customers`]).
    Csv,
    /// A GeoJSON FeatureCollection of Point features ([`read_customers_geojson`]).
    GeoJson,
}

impl CustomerFormat {
    /// The format of an HTTP body by its `Content-Type`: `text/csv`; `application/geo+json`
    /// or `application/json`. Parameters (`; charset=utf-8`) and case are ignored.
    ///
    /// ```
    /// use outagecast_ingest::customers::CustomerFormat;
    /// assert_eq!(CustomerFormat::from_content_type("text/csv; charset=utf-8"), Some(CustomerFormat::Csv));
    /// assert_eq!(CustomerFormat::from_content_type("application/geo+json"), Some(CustomerFormat::GeoJson));
    /// assert_eq!(CustomerFormat::from_content_type("text/plain"), None);
    /// ```
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Some(CustomerFormat::Csv),
            "application/geo+json" | "application/json" => Some(CustomerFormat::GeoJson),
            _ => None,
        }
    }

    /// The format of a file by its extension (any case): `.csv`; `.geojson` or `.json`.
    ///
    /// ```
    /// use std::path::Path;
    /// use outagecast_ingest::customers::CustomerFormat;
    /// assert_eq!(CustomerFormat::from_path(Path::new("a/customers.GeoJSON")), Some(CustomerFormat::GeoJson));
    /// assert_eq!(CustomerFormat::from_path(Path::new("customers")), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(CustomerFormat::Csv),
            "geojson" | "json" => Some(CustomerFormat::GeoJson),
            _ => None,
        }
    }

    /// The media type to answer with or to list as accepted.
    pub fn media_type(self) -> &'static str {
        match self {
            CustomerFormat::Csv => "text/csv",
            CustomerFormat::GeoJson => "application/geo+json",
        }
    }

    /// Reads `bytes` (a request body, a file's contents) in this format. GeoJSON must be
    /// UTF-8.
    pub fn read(self, bytes: &[u8], rules: RecordRules) -> Result<ParsedFile> {
        match self {
            CustomerFormat::Csv => read_customers(bytes, rules),
            CustomerFormat::GeoJson => {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    IngestError::invalid(GEOJSON, format!("is not UTF-8 text: {e}"))
                })?;
                read_customers_geojson(text, rules)
            }
        }
    }
}

/// Where a record came from: names fields and earlier records in reasons.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// `line` is the line; fields are CSV columns.
    Csv,
    /// `line` is the 1-based feature number; fields are JSON paths.
    GeoJson,
}

impl Origin {
    /// The field as the user wrote it: `phone` in CSV, `features[3].properties.phone`.
    fn field(self, line: u64, column: &str) -> String {
        match self {
            Origin::Csv => column.to_string(),
            Origin::GeoJson => {
                let f = feature_path(line);
                match column {
                    "lon" => format!("{f}.geometry.coordinates[0]"),
                    "lat" => format!("{f}.geometry.coordinates[1]"),
                    other => format!("{f}.properties.{other}"),
                }
            }
        }
    }

    /// An earlier record, as in "already given on line 2".
    fn place(self, line: u64) -> String {
        match self {
            Origin::Csv => format!("on line {line}"),
            Origin::GeoJson => format!("in {}", feature_path(line)),
        }
    }

    fn reason(self, line: u64, e: CoreError) -> String {
        match (self, e) {
            (Origin::Csv, e) => e.to_string(),
            (Origin::GeoJson, CoreError::Invalid { field, problem }) => {
                format!("{}: {problem}", self.field(line, &field))
            }
            (Origin::GeoJson, other) => format!("{}: {other}", feature_path(line)),
        }
    }
}

/// `features[i]` for the 1-based feature number `i + 1`.
fn feature_path(line: u64) -> String {
    format!("features[{}]", line.saturating_sub(1))
}

/// Sorts records into customers and rejects: the one path from a [`CustomerRecord`] to a
/// [`Customer`] for every format.
struct Sorter {
    origin: Origin,
    rules: RecordRules,
    parsed: ParsedFile,
    first_line_of: HashMap<String, u64>,
}

impl Sorter {
    fn new(origin: Origin, rules: RecordRules) -> Self {
        Sorter {
            origin,
            rules,
            parsed: ParsedFile::default(),
            first_line_of: HashMap::new(),
        }
    }

    fn reject(&mut self, line: u64, account_id: Option<String>, reason: String) {
        self.parsed.rejected.push(Rejected {
            line,
            account_id,
            reason,
        });
    }

    /// Checks one record; a good one becomes a customer unless its account came earlier.
    fn take(&mut self, line: u64, record: &CustomerRecord) {
        match record.parse(self.rules) {
            Ok(customer) => {
                let account = customer.account_id().as_str().to_string();
                if let Some(&first) = self.first_line_of.get(&account) {
                    let reason = format!(
                        "{}: already given {}; each account once per file",
                        self.origin.field(line, "account_id"),
                        self.origin.place(first)
                    );
                    self.reject(line, Some(account), reason);
                    return;
                }
                self.first_line_of.insert(account, line);
                self.parsed.customers.push(customer);
            }
            Err(e) => {
                let account = Some(record.account_id.trim().to_string()).filter(|a| !a.is_empty());
                let reason = self.origin.reason(line, e);
                self.reject(line, account, reason);
            }
        }
    }
}

/// Reads customer CSV with the header `account_id,lon,lat,address,phone,email,language,priority`
/// ([`CSV_HEADER`]; columns in any order, `account_id`, `lon` and `lat` required). A header
/// with unknown or missing columns refuses the whole file, since a misspelt column
/// (`phone_number`) would otherwise silently drop every phone. So does a read error of
/// `input`; a row that is not valid CSV or UTF-8 is only rejected.
pub fn read_customers(input: impl Read, rules: RecordRules) -> Result<ParsedFile> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| IngestError::invalid("header", format!("cannot read the CSV header: {e}")))?
        .clone();
    check_header(&header)?;

    let mut sorter = Sorter::new(Origin::Csv, rules);
    for result in reader.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(IngestError::invalid(
                    "input",
                    format!("cannot be read: {e}"),
                ));
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or_default();
                sorter.reject(line, None, format!("not readable as CSV: {e}"));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or_default();
        if record.len() != header.len() {
            sorter.reject(
                line,
                record.get(0).map(str::to_string),
                format!(
                    "has {} fields but the header has {}; quote fields that contain commas",
                    record.len(),
                    header.len()
                ),
            );
            continue;
        }
        match record.deserialize::<CustomerRecord>(Some(&header)) {
            Ok(row) => sorter.take(line, &row),
            Err(e) => sorter.reject(line, record.get(0).map(str::to_string), e.to_string()),
        }
    }
    Ok(sorter.parsed)
}

/// Refuses a header with unknown or missing columns, naming them and the expected header.
fn check_header(header: &csv::StringRecord) -> Result<()> {
    let names: Vec<&str> = header.iter().collect();
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !CSV_HEADER.contains(n))
        .collect();
    let missing: Vec<&str> = ["account_id", "lon", "lat"]
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect();
    if unknown.is_empty() && missing.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!("unknown column(s) {}", unknown.join(", ")));
    }
    if !missing.is_empty() {
        problems.push(format!("missing column(s) {}", missing.join(", ")));
    }
    Err(IngestError::invalid(
        "header",
        format!("{}; expected {}", problems.join(", "), CSV_HEADER.join(",")),
    ))
}

/// The field named in errors about the GeoJSON document as a whole.
const GEOJSON: &str = "GeoJSON";

/// The customer properties of a GeoJSON feature: the CSV columns but `lon` and `lat`, which
/// are the Point's coordinates.
pub const GEOJSON_PROPERTIES: [&str; 7] = [
    "account_id",
    "address",
    "phone",
    "email",
    "language",
    "priority",
    "channel",
];

/// Reads customers from an RFC 7946 FeatureCollection, one Point feature per customer at its
/// service location (`[lon, lat]`), with the properties [`GEOJSON_PROPERTIES`] (see the
/// [module](self) table).
///
/// A feature whose values are wrong (a bad phone number, a latitude of 95, a missing
/// `account_id`, a null geometry, an account given twice) is a [`Rejected`] whose `line` is
/// the 1-based feature number; the rest still import. A document that is not valid JSON
/// (the error has the line and column), not a FeatureCollection, or has a feature that is not
/// a Feature, a geometry that is not a Point, coordinates that are not `[lon, lat]` numbers or
/// a property that is not a customer property (`phone_number` would otherwise drop every
/// phone) is refused whole, naming the field.
///
/// ```
/// use outagecast_core::contact::Language;
/// use outagecast_core::customer::RecordRules;
/// use outagecast_ingest::customers::read_customers_geojson;
/// let text = r#"{"type":"FeatureCollection","features":[
///   {"type":"Feature","geometry":{"type":"Point","coordinates":[24.9414,60.1710]},
///    "properties":{"account_id":"HEL-1","phone":"+358401234567","priority":true}},
///   {"type":"Feature","geometry":{"type":"Point","coordinates":[24.9414,60.1710]},
///    "properties":{"account_id":"HEL-2","email":"nobody"}}]}"#;
/// let rules = RecordRules { default_region: None, default_language: Language::Fi };
/// let parsed = read_customers_geojson(text, rules).unwrap();
/// assert_eq!(parsed.customers.len(), 1);
/// assert!(parsed.customers[0].priority());
/// assert_eq!(parsed.rejected[0].line, 2);
/// assert!(parsed.rejected[0].reason.starts_with("features[1].properties.email: "));
/// ```
pub fn read_customers_geojson(text: &str, rules: RecordRules) -> Result<ParsedFile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| {
        IngestError::invalid(
            GEOJSON,
            format!(
                "is not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    const WANT: &str = "give a FeatureCollection with one Point feature per customer";
    let Value::Object(mut root) = value else {
        return Err(IngestError::invalid(
            GEOJSON,
            format!("is {}; {WANT}", describe(&value)),
        ));
    };
    match root.get("type") {
        Some(Value::String(t)) if t == "FeatureCollection" => {}
        Some(other) => {
            return Err(IngestError::invalid(
                "type",
                format!("is {}; {WANT}", describe(other)),
            ));
        }
        None => {
            return Err(IngestError::invalid("type", format!("is missing; {WANT}")));
        }
    }
    let features = match root.remove("features") {
        Some(Value::Array(features)) => features,
        Some(other) => {
            return Err(IngestError::invalid(
                "features",
                format!("is {}; give an array of Point features", describe(&other)),
            ));
        }
        None => {
            return Err(IngestError::invalid(
                "features",
                "is missing; give an array of Point features",
            ));
        }
    };

    let mut sorter = Sorter::new(Origin::GeoJson, rules);
    for (i, feature) in features.iter().enumerate() {
        let line = i as u64 + 1;
        match feature_record(i, feature)? {
            Ok(record) => sorter.take(line, &record),
            Err((account_id, reason)) => sorter.reject(line, account_id, reason),
        }
    }
    Ok(sorter.parsed)
}

/// One feature as a record. The outer error refuses the document; the inner one rejects
/// only this feature (with its account id when it has one).
#[allow(clippy::type_complexity)]
fn feature_record(
    i: usize,
    feature: &Value,
) -> Result<std::result::Result<CustomerRecord, (Option<String>, String)>> {
    let path = format!("features[{i}]");
    let Value::Object(feature) = feature else {
        return Err(IngestError::invalid(
            &path,
            format!("is {}; give a Feature object", describe(feature)),
        ));
    };
    match feature.get("type") {
        Some(Value::String(t)) if t == "Feature" => {}
        other => {
            return Err(IngestError::invalid(
                format!("{path}.type"),
                format!(
                    "is {}; each member of features is a Feature",
                    other.map_or("missing".to_string(), describe)
                ),
            ));
        }
    }
    let empty = Map::new();
    let properties = match feature.get("properties") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(IngestError::invalid(
                format!("{path}.properties"),
                format!("is {}; give an object", describe(other)),
            ));
        }
    };
    check_properties(&path, properties)?;
    let location = point(&path, feature.get("geometry"))?;

    let account_id = match properties.get("account_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    let reject = |field: &str, problem: String| {
        Ok(Err((
            account_id.clone().filter(|a| !a.trim().is_empty()),
            format!("{path}.{field}: {problem}"),
        )))
    };
    let Some(account) = account_id.clone() else {
        return reject(
            "properties.account_id",
            match properties.get("account_id") {
                None | Some(Value::Null) => {
                    "is missing; give every customer its account id".to_string()
                }
                Some(other) => format!("is {}; give the account id as a string", describe(other)),
            },
        );
    };
    let mut texts: [String; 5] = Default::default();
    for (slot, name) in texts
        .iter_mut()
        .zip(["address", "phone", "email", "language", "channel"])
    {
        match text_property(name, properties.get(name)) {
            Ok(text) => *slot = text,
            Err((field, problem)) => return reject(&format!("properties.{field}"), problem),
        }
    }
    let priority = match properties.get("priority") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return reject(
                "properties.priority",
                format!("is {}; give true or false", describe(other)),
            );
        }
    };
    let Some([lon, lat]) = location else {
        return reject(
            "geometry",
            "is null; give the service location as a Point [lon, lat]".to_string(),
        );
    };
    let [address, phone, email, language, channel] = texts;
    Ok(Ok(CustomerRecord {
        account_id: account,
        // Display of an f64 is the shortest text that parses back to the same number.
        lon: lon.to_string(),
        lat: lat.to_string(),
        address,
        phone,
        email,
        language,
        priority,
        channel,
    }))
}

/// Refuses a property that is not a customer property, naming it.
fn check_properties(path: &str, properties: &Map<String, Value>) -> Result<()> {
    let mut unknown: Vec<&str> = properties
        .keys()
        .map(String::as_str)
        .filter(|k| !GEOJSON_PROPERTIES.contains(k))
        .collect();
    unknown.sort_unstable();
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    let hint = if unknown
        .iter()
        .any(|k| matches!(*k, "lon" | "lat" | "longitude" | "latitude"))
    {
        "; the location is the Point geometry's coordinates [lon, lat]"
    } else {
        ""
    };
    let others = if unknown.len() > 1 {
        format!(" (also {})", unknown[1..].join(", "))
    } else {
        String::new()
    };
    Err(IngestError::invalid(
        format!("{path}.properties.{first}"),
        format!(
            "is not a customer property{others}; expected {}{hint}",
            GEOJSON_PROPERTIES.join(", ")
        ),
    ))
}

/// The feature's Point as `[lon, lat]`, `None` for a null or absent geometry. Anything but a
/// Point with two or three numbers refuses the document.
fn point(path: &str, geometry: Option<&Value>) -> Result<Option<[f64; 2]>> {
    let geometry = match geometry {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(g)) => g,
        Some(other) => {
            return Err(IngestError::invalid(
                format!("{path}.geometry"),
                format!(
                    "is {}; give a Point geometry at the service location",
                    describe(other)
                ),
            ));
        }
    };
    match geometry.get("type") {
        Some(Value::String(t)) if t == "Point" => {}
        Some(Value::String(t)) => {
            return Err(IngestError::invalid(
                format!("{path}.geometry"),
                format!("is a {t}; a customer is a Point at the service location [lon, lat]"),
            ));
        }
        other => {
            return Err(IngestError::invalid(
                format!("{path}.geometry.type"),
                format!(
                    "is {}; give \"Point\"",
                    other.map_or("missing".to_string(), describe)
                ),
            ));
        }
    }
    let field = format!("{path}.geometry.coordinates");
    let numbers: Option<Vec<f64>> = match geometry.get("coordinates") {
        Some(Value::Array(c)) if (2..=3).contains(&c.len()) => {
            c.iter().map(Value::as_f64).collect()
        }
        _ => None,
    };
    match numbers.as_deref() {
        Some([lon, lat, ..]) => Ok(Some([*lon, *lat])),
        _ => Err(IngestError::invalid(
            field,
            format!(
                "is {}; give [lon, lat] in decimal degrees, e.g. [24.9414, 60.1710]",
                geometry
                    .get("coordinates")
                    .map_or("missing".to_string(), describe)
            ),
        )),
    }
}

/// A text property: a string, or for `phone` and `email` also an array of strings. Absent
/// and null are empty. The error is (field, problem).
fn text_property(
    name: &str,
    value: Option<&Value>,
) -> std::result::Result<String, (String, String)> {
    let list = matches!(name, "phone" | "email");
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) if list => {
            let mut texts = Vec::with_capacity(items.len());
            for (j, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => texts.push(s.as_str()),
                    other => {
                        return Err((
                            format!("{name}[{j}]"),
                            format!("is {}; give a string", describe(other)),
                        ));
                    }
                }
            }
            Ok(texts.join(";"))
        }
        Some(other) => Err((
            name.to_string(),
            format!(
                "is {}; give a string{}",
                describe(other),
                if list {
                    " (several separated by ';') or an array of strings"
                } else {
                    ""
                }
            ),
        )),
    }
}

/// A JSON value as a message names it: `the number 5`, `an array`.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                format!("the string {shown:?}…")
            } else {
                format!("the string {s:?}")
            }
        }
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::contact::Language;

    fn rules() -> RecordRules {
        RecordRules {
            default_region: None,
            default_language: Language::Fi,
        }
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_good_rows_kept() {
        let csv = "account_id,lon,lat,address,phone,email,language,priority\n\
                   A,24.94,60.17,\"Kaivokatu 1, Helsinki\",+358481111111,,fi,false\n\
                   B,24.94,60.17,x,12345,,fi,false\n\
                   A,24.95,60.17,x,,,fi,false\n\
                   C,24.94\n\
                   D,24.94,60.17,x,,d@example.com,en,true\n";
        let parsed = read_customers(csv.as_bytes(), rules()).unwrap();
        assert_eq!(parsed.customers.len(), 2);
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(
            parsed.rejected[0].reason.starts_with("phone"),
            "{:?}",
            parsed.rejected[0]
        );
        assert_eq!(
            parsed.rejected[1].reason,
            "account_id: already given on line 2; each account once per file"
        );
        assert!(
            parsed.rejected[2].reason.contains("fields"),
            "{:?}",
            parsed.rejected[2]
        );
        assert_eq!(parsed.rejected[2].account_id.as_deref(), Some("C"));
    }

    #[test]
    fn a_misspelt_column_refuses_the_file() {
        let csv = "account_id,lon,lat,phone_number\nA,24.94,60.17,+358481111111\n";
        let err = read_customers(csv.as_bytes(), rules())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown column(s) phone_number"), "{err}");
        assert!(err.contains("account_id,lon,lat,address"), "{err}");
    }

    #[test]
    fn the_header_message_names_unknown_and_missing_columns() {
        let err = read_customers("account_id,x,lat\n".as_bytes(), rules()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header: unknown column(s) x, missing column(s) lon; expected \
             account_id,lon,lat,address,phone,email,language,priority,channel"
        );
        assert_eq!(err.field(), "header");
        let err = read_customers("lon,lat\n".as_bytes(), rules()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header: missing column(s) account_id; expected \
             account_id,lon,lat,address,phone,email,language,priority,channel"
        );
    }

    #[test]
    fn a_read_error_refuses_the_file() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let header = "account_id,lon,lat\nA,24.94,60.17\n".as_bytes();
        let err = read_customers(header.chain(Broken), rules()).unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }

    fn collection(features: &[&str]) -> String {
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        )
    }

    fn feature(properties: &str) -> String {
        format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[24.94,60.17]}},"properties":{properties}}}"#
        )
    }

    #[test]
    fn bad_features_are_reported_by_number_and_good_ones_kept() {
        let features = [
            feature(r#"{"account_id":"A","phone":"+358481111111","priority":"true"}"#),
            feature(r#"{"account_id":"B","phone":"12345"}"#),
            feature(r#"{"account_id":"A"}"#),
            r#"{"type":"Feature","geometry":null,"properties":{"account_id":"C"}}"#.to_string(),
            feature(
                r#"{"account_id":42,"email":["d@example.com","e@example.com"],"priority":false,"address":null}"#,
            ),
        ];
        let text = collection(&features.iter().map(String::as_str).collect::<Vec<_>>());
        let parsed = read_customers_geojson(&text, rules()).unwrap();
        assert_eq!(parsed.customers.len(), 2);
        assert!(parsed.customers[0].priority());
        assert_eq!(parsed.customers[1].account_id().as_str(), "42");
        assert_eq!(parsed.customers[1].emails().len(), 2);
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(
            parsed.rejected[0]
                .reason
                .starts_with("features[1].properties.phone: "),
            "{:?}",
            parsed.rejected[0]
        );
        assert_eq!(
            parsed.rejected[1].reason,
            "features[2].properties.account_id: already given in features[0]; each account once per file"
        );
        assert_eq!(
            parsed.rejected[2].reason,
            "features[3].geometry: is null; give the service location as a Point [lon, lat]"
        );
        assert_eq!(parsed.rejected[2].account_id.as_deref(), Some("C"));
    }

    #[test]
    fn coordinates_read_the_same_as_from_the_csv() {
        // Without correctly rounded parsing serde_json reads this one ulp off.
        let csv = "account_id,lon,lat\nA,91.65358020469733,-20.263955849848934\n";
        let text = collection(&[
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[91.65358020469733,-20.263955849848934]},"properties":{"account_id":"A"}}"#,
        ]);
        let a = read_customers(csv.as_bytes(), rules()).unwrap();
        let b = read_customers_geojson(&text, rules()).unwrap();
        assert_eq!(a.customers[0].location().lon(), 91.65358020469733);
        assert_eq!(a, b);
    }

    #[test]
    fn coordinates_errors_name_the_coordinate() {
        let text = collection(&[
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[60.17,124.94]},"properties":{"account_id":"A"}}"#,
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[200,60.17,12]},"properties":{"account_id":"B"}}"#,
        ]);
        let parsed = read_customers_geojson(&text, rules()).unwrap();
        assert!(parsed.customers.is_empty());
        let r = &parsed.rejected[0].reason;
        assert!(
            r.starts_with("features[0].geometry.coordinates[1]: ") && r.contains("swapped"),
            "{r}"
        );
        let r = &parsed.rejected[1].reason;
        assert!(
            r.starts_with("features[1].geometry.coordinates[0]: "),
            "{r}"
        );
    }

    #[test]
    fn documents_that_are_not_customer_collections_are_refused() {
        let point = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[24.94,60.17]},"properties":{"account_id":"A"}}"#;
        let polygon = r#"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[24.9,60.1],[25,60.1],[25,60.2],[24.9,60.1]]]},"properties":{"account_id":"B"}}"#;
        let cases: Vec<(String, &str)> = vec![
            (
                "{\n  \"type\": \"FeatureCollection\",\n  \"features\": [,]\n}".into(),
                "GeoJSON: is not valid JSON at line 3, column 16: ",
            ),
            (
                "[]".into(),
                "GeoJSON: is an array; give a FeatureCollection",
            ),
            (
                point.into(),
                "type: is the string \"Feature\"; give a FeatureCollection",
            ),
            (r#"{"features":[]}"#.into(), "type: is missing"),
            (
                r#"{"type":"FeatureCollection"}"#.into(),
                "features: is missing",
            ),
            (
                r#"{"type":"FeatureCollection","features":{}}"#.into(),
                "features: is an object",
            ),
            (
                collection(&[point, "7"]),
                "features[1]: is the number 7; give a Feature object",
            ),
            (
                collection(&[r#"{"type":"Point","coordinates":[24.94,60.17]}"#]),
                "features[0].type: is the string \"Point\"; each member of features is a Feature",
            ),
            (
                collection(&[point, polygon]),
                "features[1].geometry: is a Polygon; a customer is a Point",
            ),
            (
                collection(&[&point.replace("[24.94,60.17]", "[24.94]")]),
                "features[0].geometry.coordinates: is an array; give [lon, lat]",
            ),
            (
                collection(&[&point.replace("[24.94,60.17]", "[\"24.94\",\"60.17\"]")]),
                "features[0].geometry.coordinates: is an array; give [lon, lat]",
            ),
            (
                collection(&[
                    &point.replace("\"coordinates\":[24.94,60.17]", "\"coords\":[24.94,60.17]")
                ]),
                "features[0].geometry.coordinates: is missing; give [lon, lat]",
            ),
            (
                collection(&[&point.replace("\"type\":\"Point\",", "")]),
                "features[0].geometry.type: is missing; give \"Point\"",
            ),
            (
                collection(&[&point.replace(
                    "\"account_id\":\"A\"",
                    "\"account_id\":\"A\",\"phone_number\":\"1\",\"lat\":1",
                )]),
                "features[0].properties.lat: is not a customer property (also phone_number); expected account_id, address, phone, email, language, priority, channel; the location is the Point",
            ),
            (
                collection(&[&point.replace("{\"account_id\":\"A\"}", "[]")]),
                "features[0].properties: is an array; give an object",
            ),
        ];
        for (text, want) in cases {
            let err = read_customers_geojson(&text, rules())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "want {want:?}, got {err:?}");
        }
    }

    #[test]
    fn property_values_of_the_wrong_kind_reject_the_feature() {
        let cases = [
            (r#"{}"#, "features[0].properties.account_id: is missing"),
            (
                r#"{"account_id":null}"#,
                "features[0].properties.account_id: is missing",
            ),
            (
                r#"{"account_id":" "}"#,
                "features[0].properties.account_id: is empty",
            ),
            (
                r#"{"account_id":1.5}"#,
                "features[0].properties.account_id: is the number 1.5; give the account id as a string",
            ),
            (
                r#"{"account_id":"A","phone":358401234567}"#,
                "features[0].properties.phone: is the number 358401234567; give a string (several separated by ';') or an array of strings",
            ),
            (
                r#"{"account_id":"A","email":["a@example.com",1]}"#,
                "features[0].properties.email[1]: is the number 1; give a string",
            ),
            (
                r#"{"account_id":"A","address":["x"]}"#,
                "features[0].properties.address: is an array; give a string",
            ),
            (
                r#"{"account_id":"A","language":"de"}"#,
                "features[0].properties.language: ",
            ),
            (
                r#"{"account_id":"A","priority":1}"#,
                "features[0].properties.priority: is the number 1; give true or false",
            ),
            (
                r#"{"account_id":"A","priority":"maybe"}"#,
                "features[0].properties.priority: \"maybe\" is not true or false",
            ),
        ];
        for (properties, want) in cases {
            let text = collection(&[&feature(properties)]);
            let parsed = read_customers_geojson(&text, rules()).unwrap();
            assert!(parsed.customers.is_empty(), "{properties}");
            assert_eq!(parsed.rejected.len(), 1, "{properties}");
            let r = &parsed.rejected[0];
            assert_eq!(r.line, 1);
            assert!(
                r.reason.starts_with(want),
                "want {want:?}, got {:?}",
                r.reason
            );
        }
    }

    #[test]
    fn an_empty_collection_and_a_byte_order_mark_are_fine() {
        let parsed = read_customers_geojson(
            "\u{feff}{\"type\":\"FeatureCollection\",\"features\":[]}",
            rules(),
        )
        .unwrap();
        assert_eq!(parsed, ParsedFile::default());
    }

    #[test]
    fn formats_are_picked_by_content_type_and_extension() {
        let cases = [
            ("text/csv", Some(CustomerFormat::Csv)),
            ("Text/CSV ; charset=UTF-8", Some(CustomerFormat::Csv)),
            ("application/geo+json", Some(CustomerFormat::GeoJson)),
            (
                "application/json;charset=utf-8",
                Some(CustomerFormat::GeoJson),
            ),
            ("application/xml", None),
            ("", None),
        ];
        for (ct, want) in cases {
            assert_eq!(CustomerFormat::from_content_type(ct), want, "{ct}");
        }
        let cases = [
            ("customers.csv", Some(CustomerFormat::Csv)),
            ("/tmp/x.CSV", Some(CustomerFormat::Csv)),
            ("points.geojson", Some(CustomerFormat::GeoJson)),
            ("points.json", Some(CustomerFormat::GeoJson)),
            ("customers.txt", None),
            ("customers", None),
            (".csv", None),
        ];
        for (path, want) in cases {
            assert_eq!(CustomerFormat::from_path(Path::new(path)), want, "{path}");
        }
        for f in [CustomerFormat::Csv, CustomerFormat::GeoJson] {
            assert_eq!(CustomerFormat::from_content_type(f.media_type()), Some(f));
        }
    }

    #[test]
    fn read_dispatches_on_the_format() {
        let csv = CustomerFormat::Csv
            .read(b"account_id,lon,lat\nA,24.94,60.17\n", rules())
            .unwrap();
        let geojson = CustomerFormat::GeoJson
            .read(
                collection(&[&feature(r#"{"account_id":"A"}"#)]).as_bytes(),
                rules(),
            )
            .unwrap();
        assert_eq!(csv, geojson);
        let err = CustomerFormat::GeoJson.read(b"\xff", rules()).unwrap_err();
        assert!(
            err.to_string().starts_with("GeoJSON: is not UTF-8"),
            "{err}"
        );
    }
}
