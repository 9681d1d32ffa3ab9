//! End to end through the real binary on the real Helsinki sample: import, declare with each
//! kind of area, check the affected set against an independent computation, IVR lookups,
//! restore, and the errors an operator sees.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

use geo::{Distance, Geodesic, Intersects, LineString, Point, Polygon};
use serde_json::Value;

mod common;

use common::{Db, SAMPLE};

/// The sample, read independently of the engine: (account, point, phones).
fn sample() -> Vec<(String, Point<f64>, Vec<String>)> {
    let mut reader = csv::Reader::from_path(SAMPLE).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let lon: f64 = r[1].parse().unwrap();
            let lat: f64 = r[2].parse().unwrap();
            let phones = r[4]
                .split(';')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            (r[0].to_string(), Point::new(lon, lat), phones)
        })
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

fn oracle(keep: impl Fn(Point<f64>) -> bool) -> BTreeSet<String> {
    sample()
        .into_iter()
        .filter(|(_, p, _)| keep(*p))
        .map(|(a, _, _)| a)
        .collect()
}

#[test]
fn import_reports_counts_and_reimport_updates() {
    let db = Db::new();
    let first = db.json(&["import", "customers", SAMPLE]);
    let n = sample().len() as u64;
    assert_eq!(first["inserted"], n);
    assert_eq!(first["rejected"].as_array().unwrap().len(), 0);
    let again = db.json(&["import", "customers", SAMPLE]);
    assert_eq!(again["inserted"], 0);
    assert_eq!(again["updated"], n);
}

#[test]
fn import_reports_bad_rows_by_line_and_keeps_the_good_ones() {
    let db = Db::new();
    let csv = db.file(
        "bad.csv",
        "account_id,lon,lat,address,phone,email,language,priority\n\
         A-1,24.9414,60.1710,\"Kaivokatu 1, Helsinki\",+358481234567,a@example.com,fi,false\n\
         A-2,60.1710,124.9414,Kaivokatu 2,,,fi,false\n\
         A-3,24.9414,60.1710,Kaivokatu 3,not-a-number,,fi,false\n\
         A-4,24.9414,60.1710,Kaivokatu 4,,,de,false\n",
    );
    let out = db.json(&["import", "customers", csv.to_str().unwrap()]);
    assert_eq!(out["inserted"], 1);
    let rejected = out["rejected"].as_array().unwrap();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5]);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("swapped"));
    assert!(rejected[1]["reason"].as_str().unwrap().starts_with("phone"));
    assert!(
        rejected[2]["reason"]
            .as_str()
            .unwrap()
            .starts_with("language")
    );

    // --strict writes nothing when any row is bad.
    let db2 = Db::new();
    let err = db2.fails(&["import", "customers", csv.to_str().unwrap(), "--strict"]);
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(
        db2.json(&["incident", "list"])["incidents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn circle_selects_exactly_the_geodesic_oracle_set() {
    let db = Db::with_sample();
    let center = Point::new(24.9414, 60.1710);
    for radius in [120.0, 250.0, 600.0] {
        let circle = format!("{},{},{radius}", center.x(), center.y());
        let out = db.json(&[
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst water main",
            "--circle",
            &circle,
        ]);
        let expected = oracle(|p| Geodesic.distance(center, p) <= radius);
        assert!(!expected.is_empty());
        assert_eq!(accounts(&out), expected, "radius {radius}");
        assert_eq!(out["affected_customers"], expected.len());
    }
}

#[test]
fn polygon_with_a_hole_selects_the_oracle_set_and_counts_its_boundary() {
    let db = Db::with_sample();
    // A vertex placed exactly on a customer's service point: on the boundary is inside.
    let (_, on_vertex, _) = sample()
        .into_iter()
        .find(|(_, p, _)| p.x() > 24.937 && p.x() < 24.943 && p.y() > 60.172 && p.y() < 60.1745)
        .unwrap();
    let shell = vec![
        (24.936, 60.165),
        (24.950, 60.165),
        (24.950, 60.175),
        (on_vertex.x(), on_vertex.y()),
        (24.936, 60.175),
        (24.936, 60.165),
    ];
    let hole = vec![
        (24.944, 60.168),
        (24.947, 60.168),
        (24.947, 60.171),
        (24.944, 60.171),
        (24.944, 60.168),
    ];
    let ring = |r: &[(f64, f64)]| -> Vec<[f64; 2]> { r.iter().map(|&(x, y)| [x, y]).collect() };
    let geojson = serde_json::json!({
        "type": "Feature", "properties": {"name": "DMA 7"},
        "geometry": {"type": "Polygon", "coordinates": [ring(&shell), ring(&hole)]}
    });
    let file = db.file("dma.geojson", &geojson.to_string());
    let out = db.json(&[
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "pressure loss in DMA 7",
        "--polygon",
        file.to_str().unwrap(),
    ]);
    let polygon = Polygon::new(LineString::from(shell), vec![LineString::from(hole)]);
    let expected = oracle(|p| polygon.intersects(&p));
    assert_eq!(accounts(&out), expected);
    let vertex_accounts = oracle(|p| p == on_vertex);
    assert!(
        vertex_accounts.is_subset(&accounts(&out)),
        "boundary point selected"
    );
}

/// Distance from `p` to the segment a–b in metres, on a local tangent plane at `a`: an
/// independent method from the engine's (great-circle closest point, then geodesic).
fn tangent_plane_distance(p: Point<f64>, a: Point<f64>, b: Point<f64>) -> f64 {
    let metres_per_deg_lat = 111_132.954 - 559.822 * (2.0 * a.y().to_radians()).cos();
    let metres_per_deg_lon = 111_412.84 * a.y().to_radians().cos();
    let xy = |q: Point<f64>| {
        (
            (q.x() - a.x()) * metres_per_deg_lon,
            (q.y() - a.y()) * metres_per_deg_lat,
        )
    };
    let (px, py) = xy(p);
    let (bx, by) = xy(b);
    let t = ((px * bx + py * by) / (bx * bx + by * by)).clamp(0.0, 1.0);
    ((px - t * bx).powi(2) + (py - t * by).powi(2)).sqrt()
}

#[test]
fn corridor_selects_the_customers_along_the_main() {
    let db = Db::with_sample();
    let line = [
        Point::new(24.9380, 60.1700),
        Point::new(24.9460, 60.1702),
        Point::new(24.9480, 60.1690),
    ];
    let geojson = serde_json::json!({
        "type": "LineString",
        "coordinates": line.iter().map(|p| [p.x(), p.y()]).collect::<Vec<_>>()
    });
    let file = db.file("main.geojson", &geojson.to_string());
    let buffer = 40.0;
    let out = db.json(&[
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "main flushing",
        "--corridor",
        file.to_str().unwrap(),
        "--buffer",
        "40",
    ]);
    let distance = |p: Point<f64>| {
        line.windows(2)
            .map(|w| tangent_plane_distance(p, w[0], w[1]))
            .fold(f64::INFINITY, f64::min)
    };
    let expected = oracle(|p| distance(p) <= buffer);
    let got = accounts(&out);
    assert!(!expected.is_empty());
    // Two methods may only disagree for points within centimetres of the edge.
    let points: std::collections::HashMap<String, Point<f64>> =
        sample().into_iter().map(|(a, p, _)| (a, p)).collect();
    for a in got.symmetric_difference(&expected) {
        let d = distance(points[a]);
        assert!((d - buffer).abs() < 0.05, "{a} at {d} m disagrees");
    }
}

#[test]
fn ivr_is_armed_for_the_affected_and_cleared_by_restore() {
    let db = Db::with_sample();
    let center = Point::new(24.9414, 60.1710);
    let out = db.json(&[
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "burst water main on Kaivokatu",
        "--circle",
        "24.9414,60.1710,200",
        "--etr",
        "2099-01-01T12:00:00Z",
    ]);
    let id = out["id"].as_i64().unwrap().to_string();
    let people = sample();
    let inside = people
        .iter()
        .find(|(_, p, phones)| Geodesic.distance(center, *p) <= 200.0 && !phones.is_empty())
        .unwrap();
    let outside = people
        .iter()
        .find(|(_, p, phones)| Geodesic.distance(center, *p) > 1000.0 && !phones.is_empty())
        .unwrap();
    let phone = &inside.2[0];
    let armed = db.json(&["ivr", "lookup", phone]);
    assert_eq!(armed["armed"], true, "{armed}");
    assert!(
        armed["announcement"]
            .as_str()
            .unwrap()
            .contains("burst water main on Kaivokatu")
    );
    // The same caller in national format, as a phone system may send it.
    let national = format!("0{}", &phone[4..]);
    let armed_national = db.json(&["--default-region", "FI", "ivr", "lookup", &national]);
    assert_eq!(armed_national["armed"], true);

    let not_armed = db.json(&["ivr", "lookup", &outside.2[0]]);
    assert_eq!(not_armed["armed"], false);
    assert_eq!(not_armed["announcement"], Value::Null);
    let garbage = db.json(&["ivr", "lookup", "anonymous"]);
    assert_eq!(garbage["armed"], false);

    let restored = db.json(&["incident", "restore", &id]);
    assert_eq!(restored["status"], "restored");
    assert_eq!(db.json(&["ivr", "lookup", phone])["armed"], false);
    let err = db.fails(&["incident", "restore", &id]);
    assert!(err.contains("restored"), "{err}");
}

#[test]
fn list_show_update_and_cancel() {
    let db = Db::with_sample();
    let out = db.json(&[
        "incident",
        "declare",
        "--kind",
        "power",
        "--cause",
        "feeder trip",
        "--circle",
        "24.945,60.168,300",
        "--severity",
        "severe",
        "--reference",
        "OMS-881",
    ]);
    let id = out["id"].as_i64().unwrap().to_string();
    let list = db.json(&["incident", "list"]);
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);
    let shown = db.json(&["incident", "show", &format!("INC-{id}")]);
    assert_eq!(shown["reference"], "OMS-881");
    assert_eq!(shown["severity"], "severe");
    assert_eq!(accounts(&shown), accounts(&out));
    let updated = db.json(&[
        "incident",
        "update",
        &id,
        "--etr",
        "2099-01-01T18:00:00+02:00",
    ]);
    assert_eq!(updated["status"], "updated");
    assert_eq!(updated["etr"], "2099-01-01T16:00:00Z");
    // A local date and time in the utility's zone, and a time from now.
    let local = db.json(&[
        "--timezone",
        "Europe/Helsinki",
        "incident",
        "update",
        &id,
        "--etr",
        "2099-07-01 18:00",
    ]);
    assert_eq!(local["etr"], "2099-07-01T15:00:00Z");
    let soon = db.json(&["incident", "update", &id, "--etr", "+3h"]);
    let etr = chrono::DateTime::parse_from_rfc3339(soon["etr"].as_str().unwrap()).unwrap();
    let ahead = etr.signed_duration_since(chrono::Utc::now());
    assert!(
        (chrono::Duration::minutes(170)..=chrono::Duration::minutes(180)).contains(&ahead),
        "{ahead}"
    );
    // A new area by any declare flag: a zone-less WKT polygon here.
    let grown = db.json(&[
        "incident",
        "update",
        &id,
        "--wkt",
        "POLYGON((24.93 60.16, 24.96 60.16, 24.96 60.175, 24.93 60.175, 24.93 60.16))",
        "--allow-empty",
    ]);
    assert_eq!(grown["status"], "updated", "{grown}");
    let cancelled = db.json(&["incident", "cancel", &id]);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        db.json(&["incident", "list"])["incidents"]
            .as_array()
            .unwrap()
            .len(),
        0
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
fn bad_input_gets_one_clear_line_and_writes_nothing() {
    let db = Db::with_sample();
    let declare = |extra: &[&str]| {
        let mut args = vec!["incident", "declare", "--kind", "water", "--cause", "burst"];
        args.extend_from_slice(extra);
        db.fails(&args)
    };
    assert!(declare(&["--circle", "24.94,60.17"]).contains("--circle"));
    assert!(declare(&["--circle", "60.17,124.94,100"]).contains("swapped"));
    assert!(declare(&["--circle", "24.94,60.17,-1"]).contains("positive"));
    assert!(declare(&["--circle", "24.94,60.17,100", "--etr", "yesterday"]).contains("--etr"));
    assert!(
        declare(&[
            "--circle",
            "24.94,60.17,100",
            "--etr",
            "2001-01-01T00:00:00Z"
        ])
        .contains("in the past")
    );
    assert!(declare(&["--circle", "24.94,60.17,100", "--etr", "+0h"]).contains("+3h"));
    // An enumeration's wrong word is a usage error (exit 2) that lists the words.
    for (flag, word) in [("--severity", "bad"), ("--kind", "lava")] {
        let out = db.run(&[
            "incident",
            "declare",
            "--cause",
            "burst",
            "--circle",
            "24.94,60.17,100",
            flag,
            word,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("possible values"),
            "{stderr}"
        );
    }
    // Swapped lon/lat that still lands on the globe selects nobody: refused, with the hint.
    let empty = declare(&["--circle", "60.17,24.94,300"]);
    assert!(
        empty.contains("holds no customers") && empty.contains("--allow-empty"),
        "{empty}"
    );
    let open = db.file("open.geojson", r#"{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.17],[24.93,60.17]]]}"#);
    assert!(declare(&["--polygon", open.to_str().unwrap()]).contains("not closed"));
    let bowtie = db.file("bowtie.geojson", r#"{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.17],[24.95,60.16],[24.93,60.17],[24.93,60.16]]]}"#);
    assert!(declare(&["--polygon", bowtie.to_str().unwrap()]).contains("not a valid polygon"));
    let broken = db.file(
        "broken.geojson",
        "{\n \"type\": \"Polygon\",\n \"coordinates\": [[[24.93, 60.16]\n",
    );
    assert!(declare(&["--polygon", broken.to_str().unwrap()]).contains("line"));
    assert!(declare(&["--polygon", "/nonexistent.geojson"]).contains("--polygon"));
    assert_eq!(
        db.json(&["incident", "list", "--all"])["incidents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(
        db.fails(&["incident", "show", "99"])
            .contains("incident 99 not found")
    );
    assert!(
        db.fails(&["incident", "show", "abc"])
            .contains("incident id")
    );
    assert!(
        db.fails(&["--timezone", "Mars/Olympus", "incident", "list"])
            .contains("--timezone")
    );
}

#[test]
fn demo_runs_the_whole_flow() {
    let out = Command::new(env!("CARGO_BIN_EXE_outagecast"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("customers affected"), "{stdout}");
    assert!(stdout.contains(": armed (1 incident)"), "{stdout}");
    assert!(stdout.contains("nothing to announce"), "{stdout}");
    assert!(stdout.contains("is restored"), "{stdout}");
}

/// Issue #13 item 7: an update that grows the area passes the declare rails, the
/// confirmation on the customers it adds; the threshold comes from the flag or
/// `OUTAGECAST_CONFIRM_THRESHOLD`; shrinking back says how many leave.
#[test]
fn an_update_growing_the_area_confirms_the_customers_it_adds() {
    let db = Db::with_sample();
    let small = "24.9414,60.1710,100";
    let grown = "24.9414,60.1710,1500";
    let declared = db.json(&[
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "burst main",
        "--circle",
        small,
    ]);
    let id = declared["id"].to_string();
    let before = declared["affected_customers"].as_u64().unwrap();
    let total = db.json(&[
        "incident",
        "preview",
        "--kind",
        "water",
        "--cause",
        "burst main",
        "--circle",
        grown,
    ])["affected_customers"]
        .as_u64()
        .unwrap();
    // Same centre: the small circle lies inside the grown one.
    let added = total - before;
    assert!(added > 10, "the grown circle adds customers: {added}");
    let threshold = (added - 1).to_string();
    let err = db.fails(&[
        "incident",
        "update",
        &id,
        "--circle",
        grown,
        "--confirm-threshold",
        &threshold,
    ]);
    assert!(
        err.contains(&format!("adds {added} customers"))
            && err.contains(&format!("--confirm {added}")),
        "{err}"
    );
    let wrong = (added + 1).to_string();
    let err = db.fails(&[
        "incident",
        "update",
        &id,
        "--circle",
        grown,
        "--confirm-threshold",
        &threshold,
        "--confirm",
        &wrong,
    ]);
    assert!(err.contains("does not match"), "{err}");
    // The environment variable sets the threshold as the flag does.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outagecast"))
        .env("OUTAGECAST_CONFIRM_THRESHOLD", &threshold)
        .arg("--db")
        .arg(db.path())
        .args(["incident", "update", &id, "--circle", grown])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "refused under the variable's threshold"
    );
    assert!(
        stderr.contains(&format!("confirmation threshold of {threshold}")),
        "{stderr}"
    );
    // Nothing was written by the refusals.
    assert_eq!(
        db.json(&["incident", "show", &id])["affected_customers"].as_u64(),
        Some(before)
    );
    let confirmed = added.to_string();
    let updated = db.json(&[
        "incident",
        "update",
        &id,
        "--circle",
        grown,
        "--confirm-threshold",
        &threshold,
        "--confirm",
        &confirmed,
    ]);
    assert_eq!(
        updated["added_customers"].as_u64(),
        Some(added),
        "{updated}"
    );
    assert_eq!(updated["left_customers"].as_u64(), Some(0));
    let shrunk = db.json(&["incident", "update", &id, "--circle", small]);
    assert_eq!(shrunk["left_customers"].as_u64(), Some(added), "{shrunk}");
    let text = db.ok(&[
        "incident",
        "update",
        &id,
        "--etr",
        "2099-01-01T18:00:00+02:00",
    ]);
    assert!(text.contains("is updated"), "{text}");
}

/// `completions` prints a script the shell itself accepts (`bash -n`, `zsh -n`, `fish -n`
/// where installed) that offers the subcommands; `man` a roff page with a section per command.
#[test]
fn completions_and_the_manual_page_come_from_the_flags() {
    let db = Db::new();
    let bash = db.ok(&["completions", "bash"]);
    assert!(
        bash.contains("declare") && bash.contains("--circle"),
        "{bash}"
    );
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let script = db.ok(&["completions", shell]);
        assert!(script.contains("incident"), "{shell}: no subcommands");
        let path = db.file(&format!("completion.{shell}"), &script);
        match Command::new(check).arg("-n").arg(&path).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            // Only bash is on every Debian machine; the others are checked where present.
            Err(_) => assert_ne!(shell, "bash", "bash is not installed"),
        }
    }
    let man = db.ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH outagecast"),
        "{}",
        &man[..200]
    );
    for section in [
        "OUTAGECAST INCIDENT DECLARE",
        "OUTAGECAST SERVE",
        "OUTAGECAST ZONES IMPORT",
    ] {
        assert!(man.contains(section), "no {section} section");
    }
    let unknown = db.run(&["completions", "tcsh"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("possible values: bash"));
}

/// `contrib/outagecast.service` passes `systemd-analyze verify` (directives, the hardening
/// options, the command it starts, its man page), with `ExecStart` pointed at the binary under
/// test and the generated page on `MANPATH`. `scripts/test` installs systemd's tools; without
/// them the test is skipped with a line saying so, unless `OUTAGECAST_REQUIRE_FAR_ENDS=1`.
#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("OUTAGECAST_REQUIRE_FAR_ENDS").as_deref() != Ok("1"),
            "OUTAGECAST_REQUIRE_FAR_ENDS=1 but systemd-analyze is not installed"
        );
        eprintln!("skipped: systemd-analyze is not installed (scripts/test installs it)");
        return;
    }
    let db = Db::new();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/outagecast.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/outagecast serve"));
    let unit = unit.replace(
        "/usr/local/bin/outagecast",
        env!("CARGO_BIN_EXE_outagecast"),
    );
    let man = db.path().parent().unwrap().join("man");
    std::fs::create_dir_all(man.join("man1")).unwrap();
    std::fs::write(man.join("man1/outagecast.1"), db.ok(&["man"])).unwrap();
    let path = db.file("outagecast.service", &unit);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", &man)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Log lines written to a file or a pipe (journald, `2> serve.log`) carry no ANSI escapes.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let db = Db::new();
    let out = Command::new(env!("CARGO_BIN_EXE_outagecast"))
        .args([
            "--db",
            db.path().to_str().unwrap(),
            "import",
            "customers",
            SAMPLE,
        ])
        .env("OUTAGECAST_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.lines().count() > 3, "debug logging wrote lines: {log}");
    assert!(!log.contains('\x1b'), "an escape in: {log}");
}

/// What a log file gets from `import customers` (5,000 customers, some rows bad) and `demo`
/// when their output is not a terminal (#20): no ANSI escape, at most 20 lines, no "inf".
#[test]
fn import_and_demo_piped_to_a_file_stay_short_and_plain() {
    let db = Db::new();
    let csv = db.dir.path().join("town.csv");
    common::town_csv(&csv, 5_000, 0);
    // Thirty bad rows: the text output names the first few, not all of them.
    let mut text = std::fs::read_to_string(&csv).unwrap();
    for i in 0..30 {
        text.push_str(&format!(
            "BAD-{i},200,60.17,Nowhere 1,+358401234567,,fi,false\n"
        ));
    }
    std::fs::write(&csv, text).unwrap();

    let plain = |args: &[&str]| {
        let out = db.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = format!(
            "{}{}",
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap()
        );
        assert!(
            !all.contains('\u{1b}'),
            "{args:?} wrote an ANSI escape: {all:?}"
        );
        assert!(!all.contains("inf"), "{args:?} wrote \"inf\": {all}");
        assert!(
            all.lines().count() <= 20,
            "{args:?}: more than 20 lines: {all}"
        );
        all
    };
    let imported = plain(&["import", "customers", csv.to_str().unwrap()]);
    assert!(
        imported.contains("imported 5000 customers (5000 new, 0 updated); rejected 30 rows"),
        "{imported}"
    );
    assert!(imported.contains("and 20 more"), "{imported}");
    let demo = plain(&["demo"]);
    assert!(demo.contains("4. the main is fixed"), "{demo}");
}
