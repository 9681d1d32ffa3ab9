//! End to end through the real binary on the Helsinki sample: incidents declared from CAP 1.2
//! alerts, GeoJSON, WKT, named zones and geocoded addresses, checked against independent
//! point-in-polygon and geodesic computations; CAP Update and Cancel; every bad input refused
//! with its field named and nothing written.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

use geo::{Distance, Geodesic, Intersects, LineString, Point, Polygon};
use serde_json::Value;

mod common;

use common::{Db, SAMPLE};

impl Db {
    /// Everything an operator could have changed: rows of every table a declaration, an
    /// update, a zone import or a CAP message writes, and the audit log.
    fn state(&self) -> Vec<(String, i64)> {
        let path = self.dir.path().join("test.db");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let url = format!("sqlite://{}?mode=ro", path.display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let mut out = Vec::new();
            for table in [
                "incidents", "incident_events", "incident_customers", "notices", "ivr_flags",
                "zones", "cap_messages", "audit_log",
            ] {
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                out.push((table.to_string(), n));
            }
            let (changed,): (i64,) = sqlx::query_as("SELECT COALESCE(SUM(length(status) + length(area) + COALESCE(length(expires_at), 0)), 0) FROM incidents")
                .fetch_one(&pool)
                .await
                .unwrap();
            out.push(("incidents content".into(), changed));
            pool.close().await;
            out
        })
    }
}

fn sample() -> Vec<(String, Point<f64>, String)> {
    let mut reader = csv::Reader::from_path(SAMPLE).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                Point::new(r[1].parse().unwrap(), r[2].parse().unwrap()),
                r[3].to_string(),
            )
        })
        .collect()
}

fn oracle(keep: impl Fn(Point<f64>) -> bool) -> BTreeSet<String> {
    sample()
        .into_iter()
        .filter(|(_, p, _)| keep(*p))
        .map(|(a, _, _)| a)
        .collect()
}

fn accounts(v: &Value) -> BTreeSet<String> {
    v["affected_account_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// A ring of (lon, lat) as CAP writes it: "lat,lon lat,lon …".
fn cap_ring(ring: &[(f64, f64)]) -> String {
    ring.iter()
        .map(|(lon, lat)| format!("{lat:.6},{lon:.6}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A CAP 1.2 alert as public alerting systems write them: XML declaration, the CAP namespace,
/// one info block per language repeating the area, codes of other systems next to the shapes.
fn cap_alert(
    identifier: &str,
    msg_type: &str,
    references: &str,
    severity: &str,
    areas: &str,
) -> String {
    let info = |lang: &str, event: &str, headline: &str| {
        format!(
            r#"  <info>
    <language>{lang}</language>
    <category>Infra</category>
    <event>{event}</event>
    <responseType>None</responseType>
    <urgency>Immediate</urgency>
    <severity>{severity}</severity>
    <certainty>Observed</certainty>
    <effective>2026-11-25T13:00:00+02:00</effective>
    <expires>2099-11-25T20:00:00+02:00</expires>
    <senderName>Helsingin seudun ympäristöpalvelut HSY</senderName>
    <headline>{headline}</headline>
    <description>Vesijohtovuoto; vesi on poikki alueella. Water main burst; no water in the area.</description>
    <instruction>Säästä vettä. Save water.</instruction>
    <web>https://www.hsy.example.org/katkot</web>
    <parameter><valueName>outagecast:etr</valueName><value>2099-11-25T18:00:00+02:00</value></parameter>
{areas}
  </info>"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>valvomo@hsy.example.org</sender>
  <sent>2026-11-25T13:00:00+02:00</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {references}
{}
{}
</alert>
"#,
        info("fi-FI", "Vesikatko", "Vesijohtovuoto Kluuvissa"),
        info("en-GB", "Water outage", "Burst water main in Kluuvi"),
    )
}

const SHELL: [(f64, f64); 6] = [
    (24.9380, 60.1685),
    (24.9445, 60.1683),
    (24.9452, 60.1712),
    (24.9418, 60.1722),
    (24.9379, 60.1707),
    (24.9380, 60.1685),
];
const SECOND: [(f64, f64); 5] = [
    (24.9480, 60.1740),
    (24.9510, 60.1740),
    (24.9510, 60.1760),
    (24.9480, 60.1760),
    (24.9480, 60.1740),
];
const CIRCLE: (f64, f64, f64) = (24.9500, 60.1660, 150.0);

fn areas_xml() -> String {
    format!(
        r#"    <area>
      <areaDesc>Kluuvi</areaDesc>
      <polygon>{}</polygon>
      <circle>{:.4},{:.4} {}</circle>
      <geocode><valueName>EMMA_ID</valueName><value>FI018</value></geocode>
    </area>
    <area>
      <areaDesc>Kruununhaka</areaDesc>
      <polygon>{}</polygon>
    </area>"#,
        cap_ring(&SHELL),
        CIRCLE.1,
        CIRCLE.0,
        CIRCLE.2 / 1000.0,
        cap_ring(&SECOND)
    )
}

fn expected_cap_set() -> BTreeSet<String> {
    let shell = Polygon::new(LineString::from(SHELL.to_vec()), vec![]);
    let second = Polygon::new(LineString::from(SECOND.to_vec()), vec![]);
    let centre = Point::new(CIRCLE.0, CIRCLE.1);
    oracle(|p| {
        shell.intersects(&p) || second.intersects(&p) || Geodesic.distance(centre, p) <= CIRCLE.2
    })
}

#[test]
fn cap_alert_with_polygons_and_a_circle_selects_the_oracle_set() {
    let db = Db::with_sample();
    let file = db.file_str(
        "alert.xml",
        &cap_alert("HSY-2026-0042", "Alert", "", "Severe", &areas_xml()),
    );
    // Preview first: same set, nothing written.
    let preview = db.json(&["incident", "preview", "--cap", &file]);
    let expected = expected_cap_set();
    assert!(expected.len() > 50, "{}", expected.len());
    assert_eq!(accounts(&preview), expected);
    assert_eq!(
        db.json(&["incident", "list", "--all"])["incidents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let out = db.json(&["incident", "declare", "--cap", &file]);
    assert_eq!(accounts(&out), expected);
    assert_eq!(out["kind"], "water", "from <event>");
    assert_eq!(out["severity"], "severe");
    assert_eq!(out["cause"], "Vesijohtovuoto Kluuvissa");
    assert_eq!(out["reference"], "HSY-2026-0042");
    assert_eq!(out["expires_at"], "2099-11-25T18:00:00Z");
    assert_eq!(out["etr"], "2099-11-25T16:00:00Z");
    assert_eq!(out["area"]["type"], "union");
    assert_eq!(out["area"]["parts"].as_array().unwrap().len(), 3);
    assert!(
        out["area_source"]
            .as_str()
            .unwrap()
            .contains("Kluuvi, Kruununhaka")
    );
    assert_eq!(out["cap"]["urgency"], "Immediate");

    // The same message again (feeds repeat) cannot act twice.
    let again = db.fails(&["incident", "declare", "--cap", &file]);
    assert!(
        again.contains("already applied") && again.contains("HSY-2026-0042"),
        "{again}"
    );
    assert_eq!(
        db.json(&["incident", "list", "--all"])["incidents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn cap_update_and_cancel_act_on_the_referenced_incident() {
    let db = Db::with_sample();
    let alert = db.file_str(
        "a.xml",
        &cap_alert("HSY-1", "Alert", "", "Moderate", &areas_xml()),
    );
    let declared = db.json(&["incident", "declare", "--cap", &alert]);
    let id = declared["id"].as_i64().unwrap();
    // Another incident, so that "the referenced one" is not simply "the only one".
    db.json(&[
        "incident",
        "declare",
        "--kind",
        "power",
        "--cause",
        "feeder trip",
        "--circle",
        "24.945,60.168,300",
    ]);

    let refs = "<references>valvomo@hsy.example.org,HSY-1,2026-11-25T13:00:00+02:00</references>";
    let update = db.file_str(
        "u.xml",
        &cap_alert("HSY-2", "Update", refs, "Extreme", &areas_xml()),
    );
    let preview = db.ok(&["incident", "preview", "--cap", &update]);
    assert!(
        preview.contains(&format!("would update INC-{id}"))
            && preview.contains("severity moderate → extreme"),
        "{preview}"
    );
    let updated = db.json(&["incident", "declare", "--cap", &update]);
    assert_eq!(updated["id"], id);
    assert_eq!(updated["status"], "updated");
    assert_eq!(updated["severity"], "extreme");

    // A grown area in an Update tells only the newly affected.
    let grown = areas_xml().replace(
        "<areaDesc>Kruununhaka</areaDesc>",
        "<areaDesc>Kruununhaka</areaDesc>\n      <circle>60.1700,24.9530 0.1</circle>",
    );
    let refs2 = "<references>valvomo@hsy.example.org,HSY-2,2026-11-25T13:05:00+02:00</references>";
    let update2 = db.file_str(
        "u2.xml",
        &cap_alert("HSY-3", "Update", refs2, "Extreme", &grown),
    );
    let out = db.json(&["incident", "declare", "--cap", &update2]);
    assert!(out["added_customers"].as_u64().unwrap() > 0, "{out}");
    let shown = db.json(&["incident", "show", &id.to_string()]);
    assert_eq!(shown["origin"]["urgency"], "Immediate");
    assert_eq!(shown["origin"]["certainty"], "Observed");
    assert_eq!(shown["origin"]["headline"], "Vesijohtovuoto Kluuvissa");
    assert!(
        shown["origin"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Vesijohtovuoto;")
    );
    assert_eq!(shown["origin"]["cap_messages"].as_array().unwrap().len(), 3);
    assert_eq!(shown["area"]["parts"].as_array().unwrap().len(), 4);

    // Cancel refers to the Update: any message of the incident leads to it.
    let cancel_refs =
        "<references>valvomo@hsy.example.org,HSY-2,2026-11-25T13:05:00+02:00</references>";
    let cancel = db.file_str(
        "c.xml",
        &cap_alert("HSY-4", "Cancel", cancel_refs, "Extreme", &areas_xml()),
    );
    let cancelled = db.json(&["incident", "declare", "--cap", &cancel]);
    assert_eq!(cancelled["id"], id);
    assert_eq!(cancelled["status"], "cancelled");
    let list = db.json(&["incident", "list"]);
    assert_eq!(
        list["incidents"].as_array().unwrap().len(),
        1,
        "the other one is untouched"
    );

    // An Update naming a message never applied here changes nothing.
    let before = db.state();
    let stray =
        "<references>valvomo@hsy.example.org,HSY-999,2026-11-25T13:00:00+02:00</references>";
    let orphan = db.file_str(
        "o.xml",
        &cap_alert("HSY-5", "Update", stray, "Minor", &areas_xml()),
    );
    let err = db.fails(&["incident", "declare", "--cap", &orphan]);
    assert!(
        err.contains("alert/references") && err.contains("HSY-999"),
        "{err}"
    );
    // Updating the cancelled incident is refused.
    let late = db.file_str(
        "l.xml",
        &cap_alert("HSY-6", "Update", refs, "Minor", &areas_xml()),
    );
    let err = db.fails(&["incident", "declare", "--cap", &late]);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(db.state(), before);
}

#[test]
fn geojson_wkt_zone_and_address_select_the_oracle_sets() {
    let db = Db::with_sample();
    let declare = |extra: &[&str]| {
        let mut args = vec![
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst water main",
        ];
        args.extend_from_slice(extra);
        db.json(&args)
    };
    // GeoJSON: a point with radius_m and a polygon, as a FeatureCollection.
    let centre = Point::new(24.9414, 60.1710);
    let geojson = serde_json::json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"radius_m": 120}, "geometry": {"type": "Point", "coordinates": [centre.x(), centre.y()]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [SECOND.iter().map(|&(x, y)| [x, y]).collect::<Vec<_>>()]}}
    ]});
    let file = db.file_str("mixed.geojson", &geojson.to_string());
    let out = declare(&["--geojson", &file]);
    let second = Polygon::new(LineString::from(SECOND.to_vec()), vec![]);
    assert_eq!(
        accounts(&out),
        oracle(|p| Geodesic.distance(centre, p) <= 120.0 || second.intersects(&p))
    );

    // WKT.
    let wkt = format!(
        "POLYGON(({}))",
        SHELL
            .iter()
            .map(|(x, y)| format!("{x} {y}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = declare(&["--wkt", &wkt]);
    let shell = Polygon::new(LineString::from(SHELL.to_vec()), vec![]);
    assert_eq!(accounts(&out), oracle(|p| shell.intersects(&p)));

    // Zones: import, list, declare by name (any case), re-import replaces.
    let zones = serde_json::json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"dma": "DMA 7"}, "geometry": {"type": "Polygon", "coordinates": [SHELL.iter().map(|&(x, y)| [x, y]).collect::<Vec<_>>()]}},
        {"type": "Feature", "properties": {"dma": "DMA 8"}, "geometry": {"type": "Polygon", "coordinates": [SECOND.iter().map(|&(x, y)| [x, y]).collect::<Vec<_>>()]}}
    ]});
    let zfile = db.file_str("dmas.geojson", &zones.to_string());
    let imported = db.json(&["zones", "import", &zfile, "--name-property", "dma"]);
    assert_eq!(imported["inserted"], 2);
    let listed = db.json(&["zones", "list"]);
    assert_eq!(listed["zones"][0]["name"], "DMA 7");
    assert_eq!(
        listed["zones"][0]["customers"],
        oracle(|p| shell.intersects(&p)).len()
    );
    let out = declare(&["--zone", "dma 7"]);
    assert_eq!(accounts(&out), oracle(|p| shell.intersects(&p)));
    assert_eq!(out["area_source"], "zone DMA 7");
    assert_eq!(
        db.json(&["zones", "import", &zfile, "--name-property", "dma"])["updated"],
        2
    );
    // A CAP geocode naming a zone selects it.
    let geocoded = cap_alert(
        "HSY-Z",
        "Alert",
        "",
        "Minor",
        "    <area><areaDesc>DMA 8</areaDesc><geocode><valueName>outagecast:zone</valueName><value>DMA 8</value></geocode></area>",
    );
    let out = db.json(&[
        "incident",
        "declare",
        "--cap",
        &db.file_str("z.xml", &geocoded),
    ]);
    assert_eq!(accounts(&out), oracle(|p| second.intersects(&p)));

    // Address: geocoded from the customers' own addresses, then a geodesic circle.
    let kaivokatu_1 = sample()
        .into_iter()
        .find(|(_, _, a)| a == "Kaivokatu 1, 00101 Helsinki")
        .unwrap()
        .1;
    let out = declare(&["--address", "kaivokatu 1, helsingfors", "--radius", "300"]);
    assert_eq!(
        accounts(&out),
        oracle(|p| Geodesic.distance(kaivokatu_1, p) <= 300.0)
    );
    assert!(
        out["area_source"]
            .as_str()
            .unwrap()
            .contains("Kaivokatu 1, 00101 Helsinki")
    );
    // A gazetteer file adds addresses no customer has.
    let gaz = db.file_str(
        "extra.csv",
        "street,housenumber,postcode,city,lon,lat\nTestikuja,1,00100,Helsinki,24.9414,60.1710\n",
    );
    let out = declare(&[
        "--address",
        "Testikuja 1",
        "--gazetteer",
        &gaz,
        "--radius",
        "100",
    ]);
    assert_eq!(
        accounts(&out),
        oracle(|p| Geodesic.distance(centre, p) <= 100.0)
    );
}

#[test]
fn preview_shows_count_sample_and_channels_and_writes_nothing() {
    let db = Db::with_sample();
    let before = db.state();
    let text = db.ok(&[
        "incident",
        "preview",
        "--kind",
        "water",
        "--cause",
        "burst",
        "--address",
        "Kaivokatu 1, Helsinki",
    ]);
    assert!(
        text.starts_with("preview (nothing written): circle of 300 m"),
        "{text}"
    );
    assert!(
        text.contains("affected customers:")
            && text.contains(" sms, ")
            && text.contains("addresses: "),
        "{text}"
    );
    // The SMS as it will go out, per language, with its encoding and segments.
    assert!(
        text.contains("sms (fi, ") && text.contains("GSM-7, 1 segment): Vesikatko: burst"),
        "{text}"
    );
    // Counting needs only the area; the texts then wait for --kind and --cause.
    let count_only = db.ok(&["incident", "preview", "--address", "Kaivokatu 1, Helsinki"]);
    assert!(count_only.contains("affected customers:"), "{count_only}");
    assert!(
        count_only.contains("texts: give --kind and --cause"),
        "{count_only}"
    );
    let v = db.json(&["incident", "preview", "--circle", "24.9414,60.1710,200"]);
    assert!(
        v["affected_account_ids"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    assert_eq!(v["sms_texts"], serde_json::json!([]), "{v}");
    let v = db.json(&[
        "incident",
        "preview",
        "--kind",
        "water",
        "--cause",
        "burst",
        "--wkt",
        "POINT(24.9414 60.1710)",
        "--radius",
        "2500",
    ]);
    assert_eq!(v["affected_customers"], 2158);
    assert!(v["notices"]["sms"].as_u64().unwrap() > 1000);
    assert_eq!(v["sample_addresses"].as_array().unwrap().len(), 10);
    assert!(
        v["refused"].is_null(),
        "under the default threshold of 5000"
    );
    let v = db.json(&[
        "incident",
        "preview",
        "--kind",
        "water",
        "--cause",
        "burst",
        "--circle",
        "24.9414,60.1710,2500",
        "--confirm-threshold",
        "1000",
    ]);
    assert!(
        v["refused"].as_str().unwrap().contains("--confirm 2158"),
        "{v}"
    );
    assert_eq!(db.state(), before);
}

#[test]
fn a_city_wide_area_needs_the_exact_count_confirmed() {
    let db = Db::with_sample();
    let args = [
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "burst",
        "--circle",
        "24.9414,60.1710,2500",
    ];
    fn with<'a>(args: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = args.to_vec();
        a.extend_from_slice(extra);
        a
    }
    let before = db.state();
    let err = db.fails(&with(&args, &["--confirm-threshold", "1000"]));
    assert!(
        err.contains("2158 customers") && err.contains("--confirm 2158"),
        "{err}"
    );
    // A rail's refusal has its own exit status (3), and under --json is one JSON object.
    let refused = db.run(&with(&args, &["--confirm-threshold", "1000", "--json"]));
    assert_eq!(refused.status.code(), Some(3));
    let answer: serde_json::Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(answer["error"]["code"], "refused", "{answer}");
    assert_eq!(answer["error"]["field"], "area", "{answer}");
    assert!(refused.stdout.is_empty());
    // A wrong word for an enumeration is a usage error (2), as one JSON object naming the flag.
    let bad = db.run(&with(&args, &["--severity", "huge", "--json"]));
    assert_eq!(bad.status.code(), Some(2));
    let answer: serde_json::Value = serde_json::from_slice(&bad.stderr).unwrap();
    assert_eq!(answer["error"]["code"], "usage", "{answer}");
    assert_eq!(answer["error"]["field"], "--severity", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("possible values: minor, moderate, severe, extreme"),
        "{answer}"
    );
    // A value the command itself refuses is a failure (1), with its field.
    let bad = db.run(&with(&args, &["--etr", "soon", "--json"]));
    assert_eq!(bad.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&bad.stderr).unwrap();
    assert_eq!(answer["error"]["code"], "invalid", "{answer}");
    assert_eq!(answer["error"]["field"], "--etr", "{answer}");
    let err = db.fails(&with(
        &args,
        &["--confirm-threshold", "1000", "--confirm", "2000"],
    ));
    assert!(
        err.starts_with("error: --confirm: 2000 does not match the 2158"),
        "{err}"
    );
    assert_eq!(db.state(), before);
    // The environment sets the threshold too.
    let out = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outagecast"));
        cmd.env("OUTAGECAST_CONFIRM_THRESHOLD", "1000")
            .arg("--db")
            .arg(db.dir.path().join("test.db"))
            .args(args);
        cmd.output().unwrap()
    };
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("threshold of 1000"));
    let ok = db.json(&with(
        &args,
        &["--confirm-threshold", "1000", "--confirm", "2158"],
    ));
    assert_eq!(ok["affected_customers"], 2158);
}

/// A small square in Kluuvi, as a GeoJSON Polygon (five positions).
const SQUARE_GEOJSON: &str = r#"{"type":"Polygon","coordinates":[[[24.940,60.168],[24.946,60.168],[24.946,60.172],[24.940,60.172],[24.940,60.168]]]}"#;

#[test]
fn every_bad_input_is_refused_naming_the_field_and_writes_nothing() {
    let db = Db::with_sample();
    db.json(&["zones", "import", &db.file_str("z.geojson", r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"DMA 1"},"geometry":{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.17],[24.93,60.16]]]}}]}"#)]);
    let before = db.state();
    let declare = |extra: &[&str]| {
        let mut args = vec!["incident", "declare", "--kind", "water", "--cause", "burst"];
        args.extend_from_slice(extra);
        db.fails(&args)
    };
    let cap =
        |name: &str, areas: &str| db.file_str(name, &cap_alert(name, "Alert", "", "Minor", areas));
    let poly =
        |text: &str| format!("    <area><areaDesc>x</areaDesc><polygon>{text}</polygon></area>");

    let cases: Vec<(String, &[&str])> = vec![
        // Latitude or longitude out of range.
        (declare(&["--wkt", "POLYGON((24.93 95, 24.95 95, 24.95 96, 24.93 95))"]), &["--wkt", "latitude", "-90..90"]),
        (declare(&["--wkt", "POINT(200 60)", "--radius", "10"]), &["--wkt", "longitude"]),
        (declare(&["--cap", &cap("range", &poly("60.16,194.93 60.16,194.95 60.17,194.95 60.16,194.93"))]), &["polygon[0]", "longitude 194.93"]),
        // Swapped order, plainly (a latitude beyond 90) and subtly (lands nowhere near any customer).
        (declare(&["--cap", &cap("swap1", &poly("124.93,60.16 124.95,60.16 124.95,60.17 124.93,60.16"))]), &["polygon[0]", "swapped", "latitude first"]),
        (declare(&["--cap", &cap("swap2", &poly(&SHELL.iter().map(|(x, y)| format!("{x},{y}")).collect::<Vec<_>>().join(" ")))]), &["area: holds no customers", "swapped", "lat,lon", "--allow-empty"]),
        (declare(&["--geojson", &db.file_str("swap.geojson", &serde_json::json!({"type": "Polygon", "coordinates": [SHELL.iter().map(|&(x, y)| [y, x]).collect::<Vec<_>>()]}).to_string())]), &["holds no customers", "swapped", "lon,lat"]),
        (declare(&["--circle", "60.1710,24.9414,300"]), &["holds no customers", "swapped"]),
        // Unclosed ring, too few positions, self-intersection.
        (declare(&["--cap", &cap("open", &poly("60.16,24.93 60.16,24.95 60.17,24.95 60.17,24.93"))]), &["polygon[0]", "not closed"]),
        (declare(&["--cap", &cap("few", &poly("60.16,24.93 60.16,24.95 60.16,24.93"))]), &["polygon[0]", "at least 4"]),
        (declare(&["--cap", &cap("bowtie", &poly("60.16,24.93 60.17,24.95 60.16,24.95 60.17,24.93 60.16,24.93"))]), &["polygon[0]", "not a valid polygon"]),
        (declare(&["--geojson", &db.file_str("open.geojson", r#"{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.17],[24.93,60.17]]]}"#)]), &["--geojson", "not closed"]),
        (declare(&["--wkt", "POLYGON((24.93 60.16, 24.95 60.17, 24.95 60.16, 24.93 60.17, 24.93 60.16))"]), &["--wkt", "self-intersection"]),
        // Empty selection.
        (declare(&["--wkt", "POINT(25.5 61.5)", "--radius", "100"]), &["area: holds no customers", "--allow-empty"]),
        // Malformed XML and JSON, with line and column.
        (declare(&["--cap", &db.file_str("bad.xml", "<alert>\n  <identifier>x</identifier>\n  <sender>y</send>\n</alert>")]), &["--cap", "line 3, column"]),
        (declare(&["--geojson", &db.file_str("bad.geojson", "{\n  \"type\": \"Polygon\",\n  \"coordinates\": [[[24.93, 60.16],\n")]), &["--geojson", "line 4, column"]),
        (declare(&["--wkt", "POLYGON((24.93 60.16, 24.95"]), &["--wkt", "not valid WKT"]),
        // Unknown zone, unknown or ambiguous address, a geocode that is no zone.
        (declare(&["--zone", "DMA 9"]), &["--zone", "DMA 1"]),
        (declare(&["--address", "Olematonkatu 5, Helsinki"]), &["--address", "no address matches"]),
        (declare(&["--address", "Kaivokatu, Helsinki"]), &["--address", "best candidates", "Kaivokatu 1"]),
        (declare(&["--cap", &cap("geo", "    <area><areaDesc>x</areaDesc><geocode><valueName>FIPS6</valueName><value>006113</value></geocode></area>")]), &["geocode", "FIPS6=006113", "zones import"]),
        // CAP header problems.
        (declare(&["--cap", &db.file_str("test.xml", &cap_alert("t", "Alert", "", "Minor", &areas_xml()).replace("<status>Actual</status>", "<status>Test</status>"))]), &["alert/status", "Test"]),
        (declare(&["--cap", &db.file_str("past.xml", &cap_alert("p", "Alert", "", "Minor", &areas_xml()).replace("2099-11-25T20:00:00+02:00", "2001-01-01T00:00:00Z"))]), &["--cap alert/info/expires", "in the past"]),
        (declare(&["--cap", "/nonexistent/alert.xml"]), &["--cap", "cannot read"]),
        // Sizes.
        (declare(&["--wkt", "POINT(24.94 60.17)"]), &["--wkt", "--radius"]),
        (declare(&["--address", "Kaivokatu 1", "--radius", "-5"]), &["--radius", "positive"]),
        // Size limits, named with their setting: a 1,000-word address (default 200 characters)
        // and an outline over a limit lowered in the config file.
        (declare(&["--address", &"Kaivokatu ".repeat(1_000)]), &["--address", "limit of 200 characters", "OUTAGECAST_MAX_ADDRESS_CHARS"]),
        (declare(&["--config", &db.file_str("small.toml", "max_area_vertices = 4\n"), "--polygon", &db.file_str("square.geojson", SQUARE_GEOJSON)]), &["--polygon: has 5 vertices", "limit of 4", "OUTAGECAST_MAX_AREA_VERTICES"]),
        (declare(&["--config", &db.file_str("small.toml", "max_area_vertices = 4\n"), "--geojson", &db.file_str("square.geojson", SQUARE_GEOJSON)]), &["--geojson: has 5 vertices", "OUTAGECAST_MAX_AREA_VERTICES"]),
    ];
    for (err, wants) in &cases {
        for want in *wants {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
    }
    // A bad zone file writes no zone.
    let err = db.fails(&["zones", "import", &db.file_str("bad-z.geojson", r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"A"},"geometry":{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.17],[24.93,60.16]]]}},{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.17],[24.93,60.16]]]}}]}"#)]);
    assert!(err.contains("features[1].properties.name"), "{err}");
    // A zone over the vertex limit is refused by its count, naming the feature and the setting.
    let zone = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"name":"Big"}},"geometry":{SQUARE_GEOJSON}}}]}}"#
    );
    let err = db.fails(&[
        "zones",
        "import",
        "--config",
        &db.file_str("small-z.toml", "max_area_vertices = 4\n"),
        &db.file_str("big-z.geojson", &zone),
    ]);
    assert!(
        err.contains("FILE features[0].geometry: has 5 vertices"),
        "{err}"
    );
    assert!(err.contains("OUTAGECAST_MAX_AREA_VERTICES"), "{err}");
    assert_eq!(db.state(), before, "nothing was written");
}

#[test]
fn nominatim_geocoder_through_a_local_stand_in() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(wiremock::MockServer::start());
    runtime.block_on(
        wiremock::Mock::given(wiremock::matchers::path("/search"))
            .and(wiremock::matchers::query_param("q", "Kaivokatu 1, Helsinki"))
            .and(wiremock::matchers::header("user-agent", "outagecast-test (ops@example.org)"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(
                r#"[{"lat":"60.1710","lon":"24.9414","display_name":"Kaivokatu 1, Helsinki","place_rank":30}]"#,
            ))
            .expect(1)
            .mount(&server),
    );
    let db = Db::with_sample();
    let out = db.json(&[
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "burst",
        "--address",
        "Kaivokatu 1, Helsinki",
        "--radius",
        "150",
        "--geocoder",
        "nominatim",
        "--nominatim-url",
        &server.uri(),
        "--nominatim-user-agent",
        "outagecast-test (ops@example.org)",
    ]);
    let centre = Point::new(24.9414, 60.1710);
    assert_eq!(
        accounts(&out),
        oracle(|p| Geodesic.distance(centre, p) <= 150.0)
    );
    drop(server);
    drop(runtime);
}
