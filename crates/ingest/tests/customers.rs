//! Customer import through the public API: the same customers given as CSV and as GeoJSON
//! parse to equal `Customer` values, and every rejection names its row or feature and field.
#![allow(clippy::unwrap_used)]

use outagecast_core::contact::{Language, Region};
use outagecast_core::customer::{CSV_HEADER, RecordRules};
use outagecast_ingest::customers::{
    CustomerFormat, GEOJSON_PROPERTIES, read_customers, read_customers_geojson,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const SAMPLE: &str = include_str!("../../../data/helsinki/customers.csv");

fn rules() -> RecordRules {
    RecordRules {
        default_region: Some(Region::parse("FI").unwrap()),
        default_language: Language::Fi,
    }
}

/// One customer as both formats see it.
#[derive(Debug, Clone)]
struct Row {
    account_id: String,
    lon: f64,
    lat: f64,
    address: String,
    phones: Vec<String>,
    emails: Vec<String>,
    language: String,
    priority: bool,
    channel: String,
}

fn to_csv(rows: &[Row]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).unwrap();
    for r in rows {
        w.write_record([
            r.account_id.clone(),
            r.lon.to_string(),
            r.lat.to_string(),
            r.address.clone(),
            r.phones.join(";"),
            r.emails.join(";"),
            r.language.clone(),
            r.priority.to_string(),
            r.channel.clone(),
        ])
        .unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// GeoJSON of the rows; lists as arrays when `arrays`, else `;`-separated like the CSV.
fn to_geojson(rows: &[Row], arrays: bool) -> String {
    let features: Vec<Value> = rows
        .iter()
        .map(|r| {
            let list = |items: &[String]| {
                if arrays {
                    json!(items)
                } else {
                    json!(items.join(";"))
                }
            };
            json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                "properties": {
                    "account_id": r.account_id,
                    "address": r.address,
                    "phone": list(&r.phones),
                    "email": list(&r.emails),
                    "language": r.language,
                    "priority": r.priority,
                    "channel": r.channel,
                }
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

#[test]
fn the_helsinki_sample_as_geojson_gives_the_same_customers() {
    let mut reader = csv::Reader::from_reader(SAMPLE.as_bytes());
    let rows: Vec<Row> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let list = |s: &str| {
                s.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            Row {
                account_id: r[0].to_string(),
                lon: r[1].parse().unwrap(),
                lat: r[2].parse().unwrap(),
                address: r[3].to_string(),
                phones: list(&r[4]),
                emails: list(&r[5]),
                language: r[6].to_string(),
                priority: matches!(r[7].trim(), "true" | "yes" | "1"),
                channel: r.get(8).unwrap_or_default().to_string(),
            }
        })
        .collect();
    let from_csv = read_customers(SAMPLE.as_bytes(), rules()).unwrap();
    assert!(
        from_csv.customers.len() > 2000,
        "{}",
        from_csv.customers.len()
    );
    for arrays in [false, true] {
        let from_geojson = read_customers_geojson(&to_geojson(&rows, arrays), rules()).unwrap();
        assert_eq!(from_geojson.customers, from_csv.customers);
        assert_eq!(from_geojson.rejected.len(), from_csv.rejected.len());
    }
}

fn row() -> impl Strategy<Value = Row> {
    let phones = prop::sample::subsequence(
        vec![
            "+358401234567".to_string(),
            "0481234567".to_string(),
            "+358 9 310 1641".to_string(),
            "+46701234567".to_string(),
        ],
        0..=3,
    );
    let emails = prop::sample::subsequence(
        vec![
            "a@example.com".to_string(),
            "b.c@example.org".to_string(),
            "x+y@example.fi".to_string(),
        ],
        0..=2,
    );
    (
        "[A-Z]{3}-[0-9]{1,6}",
        -180.0..=180.0f64,
        -90.0..=90.0f64,
        "[a-zA-ZäöÅ0-9 ,\"]{0,30}",
        phones,
        emails,
        prop::sample::select(vec!["", "fi", "sv", "en", "SV"]),
        any::<bool>(),
        prop::sample::select(vec!["", "sms", "voice", "email", "Voice"]),
    )
        .prop_map(
            |(account_id, lon, lat, address, phones, emails, language, priority, channel)| Row {
                account_id,
                lon,
                lat,
                address,
                phones,
                emails,
                language: language.to_string(),
                priority,
                channel: channel.to_string(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn csv_and_geojson_give_equal_customers(rows in prop::collection::vec(row(), 0..20), arrays in any::<bool>()) {
        let from_csv = read_customers(to_csv(&rows).as_bytes(), rules()).unwrap();
        let from_geojson = read_customers_geojson(&to_geojson(&rows, arrays), rules()).unwrap();
        prop_assert_eq!(&from_geojson.customers, &from_csv.customers);
        // Duplicated generated account ids are rejected alike, by row and by feature.
        let csv_lines: Vec<u64> = from_csv.rejected.iter().map(|r| r.line - 1).collect();
        let features: Vec<u64> = from_geojson.rejected.iter().map(|r| r.line).collect();
        prop_assert_eq!(csv_lines, features);
        prop_assert_eq!(from_csv.customers.len() + from_csv.rejected.len(), rows.len());
    }

    #[test]
    fn one_bad_value_rejects_only_its_row_and_names_it(
        rows in prop::collection::vec(row(), 1..12),
        pick in any::<prop::sample::Index>(),
        spoil in 0..5usize,
    ) {
        // Unique accounts so that only the spoilt record is rejected.
        let mut rows = rows;
        for (i, r) in rows.iter_mut().enumerate() {
            r.account_id = format!("ACC-{i}");
        }
        let k = pick.index(rows.len());
        let (field, csv_field, geo_field) = match spoil {
            0 => ("phone", "phone", "properties.phone"),
            1 => ("email", "email", "properties.email"),
            2 => ("language", "language", "properties.language"),
            3 => ("lat", "lat", "geometry.coordinates[1]"),
            _ => ("lon", "lon", "geometry.coordinates[0]"),
        };
        match field {
            "phone" => rows[k].phones = vec!["12".into()],
            "email" => rows[k].emails = vec!["nobody".into()],
            "language" => rows[k].language = "de".into(),
            "lat" => rows[k].lat = 91.0 + rows[k].lat.abs(),
            _ => rows[k].lon = 181.0 + rows[k].lon.abs(),
        }
        let from_csv = read_customers(to_csv(&rows).as_bytes(), rules()).unwrap();
        let from_geojson = read_customers_geojson(&to_geojson(&rows, false), rules()).unwrap();
        prop_assert_eq!(from_csv.customers.len(), rows.len() - 1);
        prop_assert_eq!(&from_geojson.customers, &from_csv.customers);

        let [c] = from_csv.rejected.as_slice() else { panic!("{:?}", from_csv.rejected) };
        prop_assert_eq!(c.line, k as u64 + 2);
        prop_assert_eq!(c.account_id.clone(), Some(format!("ACC-{k}")));
        let want = format!("{csv_field}: ");
        prop_assert!(c.reason.starts_with(&want), "{}", c.reason);

        let [g] = from_geojson.rejected.as_slice() else { panic!("{:?}", from_geojson.rejected) };
        prop_assert_eq!(g.line, k as u64 + 1);
        prop_assert_eq!(g.account_id.clone(), Some(format!("ACC-{k}")));
        let want = format!("features[{k}].{geo_field}: ");
        prop_assert!(g.reason.starts_with(&want), "{}", g.reason);
        // The problem after the field is the same words in both formats.
        prop_assert_eq!(&g.reason[want.len()..], &c.reason[csv_field.len() + 2..]);
    }

    #[test]
    fn unknown_columns_and_properties_are_named_with_what_is_expected(
        name in "[a-z_]{1,12}".prop_filter("not a column", |n| !CSV_HEADER.contains(&n.as_str())),
    ) {
        let csv = format!("account_id,lon,lat,{name}\nA,24.94,60.17,x\n");
        let err = read_customers(csv.as_bytes(), rules()).unwrap_err();
        prop_assert_eq!(err.field(), "header");
        prop_assert_eq!(
            err.to_string(),
            format!("header: unknown column(s) {name}; expected {}", CSV_HEADER.join(","))
        );

        let text = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
             "properties": {"account_id": "A"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
             "properties": {"account_id": "B", name.clone(): "x"}},
        ]}).to_string();
        let err = read_customers_geojson(&text, rules()).unwrap_err();
        let field = format!("features[1].properties.{name}");
        prop_assert_eq!(err.field(), field.as_str());
        let expected = GEOJSON_PROPERTIES.join(", ");
        prop_assert!(err.to_string().starts_with(&format!("{field}: is not a customer property; expected {expected}")), "{}", err);
    }

    #[test]
    fn invalid_json_is_refused_with_its_line_and_column(lines in 0..5usize, junk in "[a-z]{1,3}") {
        let text = format!("{}{{\"type\": \"FeatureCollection\", \"features\": [{junk}", "\n".repeat(lines));
        let err = read_customers_geojson(&text, rules()).unwrap_err().to_string();
        let want = format!("GeoJSON: is not valid JSON at line {}, column ", lines + 1);
        prop_assert!(err.starts_with(&want), "{}", err);
    }
}

#[test]
fn the_format_follows_the_file_or_the_content_type() {
    let rows = vec![Row {
        account_id: "HEL-1".into(),
        lon: 24.9414,
        lat: 60.171,
        address: "Kaivokatu 1, 00100 Helsinki".into(),
        phones: vec!["0401234567".into()],
        emails: vec![],
        language: "sv".into(),
        priority: true,
        channel: "voice".into(),
    }];
    let csv = to_csv(&rows);
    let geojson = to_geojson(&rows, true);
    let a = CustomerFormat::from_path("customers.csv".as_ref())
        .unwrap()
        .read(csv.as_bytes(), rules())
        .unwrap();
    let b = CustomerFormat::from_content_type("application/geo+json")
        .unwrap()
        .read(geojson.as_bytes(), rules())
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.customers.len(), 1);
    assert_eq!(a.customers[0].phones()[0].to_string(), "+358401234567");
}
