//! `outagecast template preview` through the real binary: the texts, their encoding and segment
//! counts checked against an independent count, the errors an operator sees, and that a
//! preview touches no database.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use chrono::{Duration, Timelike, Utc};
use serde_json::Value;

/// Runs the binary in an empty directory with a clean environment.
fn run(args: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outagecast"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OUTAGECAST_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir.path())
        .arg("template")
        .arg("preview")
        .args(args);
    (cmd.output().unwrap(), dir)
}

fn ok(args: &[&str]) -> String {
    let (out, dir) = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a preview writes no files (no database)"
    );
    String::from_utf8(out.stdout).unwrap()
}

fn previews(args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    let v: Value = serde_json::from_str(&ok(&all)).unwrap();
    v["previews"].as_array().unwrap().clone()
}

fn fails(args: &[&str]) -> String {
    let (out, _dir) = run(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// The GSM 03.38 basic set and extension table, written out independently of the core.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const EXTENSION: &str = "^{}\\[~]|€\u{0C}";

/// (encoding, units, segments) by the textbook rule (no character split across parts).
fn expected(text: &str) -> (&'static str, u64, u64) {
    let gsm = text
        .chars()
        .all(|c| BASIC.contains(c) || EXTENSION.contains(c));
    let sizes: Vec<u64> = if gsm {
        text.chars()
            .map(|c| if EXTENSION.contains(c) { 2 } else { 1 })
            .collect()
    } else {
        text.chars().map(|c| c.len_utf16() as u64).collect()
    };
    let (single, multi) = if gsm { (160, 153) } else { (70, 67) };
    let units: u64 = sizes.iter().sum();
    let segments = if units <= single {
        1
    } else {
        let (mut parts, mut used) = (1, 0);
        for s in sizes {
            if used + s > multi {
                parts += 1;
                used = 0;
            }
            used += s;
        }
        parts
    };
    (if gsm { "GSM-7" } else { "UCS-2" }, units, segments)
}

fn check_counts(p: &Value) {
    let text = p["sms"]["text"].as_str().unwrap();
    let (encoding, units, segments) = expected(text);
    assert_eq!(p["sms"]["encoding"], encoding, "{text}");
    assert_eq!(p["sms"]["units"], units, "{text}");
    assert_eq!(p["sms"]["segments"], segments, "{text}");
}

#[test]
fn a_finnish_notice_is_gsm7_in_one_segment() {
    let p = previews(&[
        "--kind",
        "water",
        "--event",
        "declared",
        "--language",
        "fi",
        "--cause",
        "putkirikko Kaivokadulla",
    ]);
    assert_eq!(p.len(), 1);
    let p = &p[0];
    assert_eq!(
        (&p["kind"], &p["event"], &p["language"]),
        (&"water".into(), &"declared".into(), &"fi".into())
    );
    assert_eq!(
        p["sms"]["text"],
        "Vesikatko: putkirikko Kaivokadulla. Ilmoitamme, kun vika on korjattu. Viite INC-1"
    );
    assert_eq!(p["sms"]["encoding"], "GSM-7");
    assert_eq!(p["sms"]["segments"], 1);
    assert_eq!(p["sms"]["non_gsm_characters"], serde_json::json!([]));
    assert_eq!(p["email"]["subject"], "Vesikatko: putkirikko Kaivokadulla");
    check_counts(p);
}

#[test]
fn one_dash_makes_the_whole_text_ucs2_and_the_preview_names_it() {
    let args = [
        "--kind",
        "power",
        "--event",
        "declared",
        "--language",
        "en",
        "--cause",
        "cable fault – repair crew on site",
    ];
    let p = &previews(&args)[0];
    assert_eq!(p["sms"]["encoding"], "UCS-2");
    assert_eq!(p["sms"]["non_gsm_characters"], serde_json::json!(["–"]));
    assert_eq!(p["sms"]["segments"], 2);
    check_counts(p);
    let text = ok(&args);
    assert!(text.contains("SMS: 2 segments (UCS-2,"), "{text}");
    assert!(text.contains("UCS-2 because of '–'"), "{text}");
}

#[test]
fn long_texts_and_extension_characters_are_counted_like_the_network_does() {
    // A long cause: several 153-septet parts.
    let long = "water main burst under the junction of Mannerheimintie and Kaivokatu; \
                the street is closed and traffic is diverted via Simonkatu while crews dig. \
                Bottled water at the Kamppi service point";
    for p in previews(&["--kind", "water", "--cause", long]) {
        check_counts(&p);
    }
    let p = &previews(&[
        "--kind",
        "water",
        "--event",
        "declared",
        "--language",
        "en",
        "--cause",
        long,
    ])[0];
    assert_eq!(p["sms"]["segments"], 2);
    // € is in the extension table: two septets, still GSM-7.
    let p = &previews(&[
        "--kind",
        "heating",
        "--event",
        "declared",
        "--language",
        "en",
        "--cause",
        "compensation 20€ [see web]",
    ])[0];
    assert_eq!(p["sms"]["encoding"], "GSM-7");
    let plain = p["sms"]["text"].as_str().unwrap().chars().count() as u64;
    assert_eq!(
        p["sms"]["units"],
        plain + 3,
        "€, [ and ] cost two septets each"
    );
    check_counts(p);
}

#[test]
fn without_event_or_language_every_combination_is_shown() {
    let p = previews(&["--kind", "gas", "--cause", "leak"]);
    assert_eq!(p.len(), 12);
    let mut seen: Vec<(String, String)> = p
        .iter()
        .map(|p| {
            (
                p["event"].as_str().unwrap().to_string(),
                p["language"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12);
    for p in &p {
        check_counts(p);
        assert!(!p["email"]["subject"].as_str().unwrap().is_empty());
    }
    let text = ok(&["--kind", "gas", "--cause", "leak", "--event", "restored"]);
    assert_eq!(text.matches("Email subject: ").count(), 3, "{text}");
    assert!(text.contains("gas · restored · sv"), "{text}");
}

#[test]
fn the_etr_is_written_in_the_utilitys_time_zone() {
    let etr = (Utc::now() + Duration::hours(3))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let local = etr.with_timezone(&chrono_tz::Europe::Helsinki);
    let mut args = vec![
        "--kind",
        "water",
        "--event",
        "updated",
        "--language",
        "fi",
        "--cause",
        "putkirikko",
        "--id",
        "4711",
        "--json",
    ];
    let etr_text = etr.to_rfc3339();
    args.extend(["--etr", &etr_text]);
    let (out, _dir) = {
        let mut full = vec!["--timezone", "Europe/Helsinki"];
        full.extend(&args);
        // --timezone is global: it may come after the subcommand too.
        run(&full)
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v["previews"][0]["sms"]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("klo {:02}.{:02}", local.hour(), local.minute())),
        "{text}"
    );
    assert!(text.ends_with("Viite INC-4711"), "{text}");
}

#[test]
fn bad_input_gets_one_line_naming_the_flag() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--kind", "water", "--cause", "x", "--event", "exploded"],
            "--event",
        ),
        (
            &["--kind", "water", "--cause", "x", "--language", "de"],
            "--language",
        ),
        (
            &["--kind", "water", "--cause", "x", "--etr", "tomorrow"],
            "--etr",
        ),
        (
            &[
                "--kind",
                "water",
                "--cause",
                "x",
                "--etr",
                "2020-01-01T00:00:00Z",
            ],
            "--etr",
        ),
        (&["--kind", "water", "--cause", "x", "--id", "0"], "--id"),
        (&["--kind", "water", "--cause", "two\nlines"], "--cause"),
        (&["--kind", "water", "--cause", "  "], "--cause"),
    ];
    for (args, field) in cases {
        let e = fails(args);
        assert!(e.starts_with(&format!("error: {field}")), "{args:?}: {e}");
    }
    // A kind clap does not know is a usage error (2) listing the kinds.
    let (out, _dir) = run(&["--kind", "lava", "--cause", "x"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--kind") && stderr.contains("possible values: water, power"),
        "{stderr}"
    );
}

#[test]
fn operator_templates_replace_the_built_in_text_where_given() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("templates.toml");
    std::fs::write(
        &file,
        r#"status_link = "https://vesi.example.fi/katkot/{reference}"

[default.declared.en]
subject = "{Kind} – {cause}"

[water.declared.fi]
body = "{Kind}: {cause}. Arvioitu korjausaika {etr}. {status_link}"
body_without_etr = "{Kind}: {cause}. Tilanne: {status_link}"
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let p = previews(&[
        "--kind",
        "water",
        "--event",
        "declared",
        "--cause",
        "putkirikko",
        "--id",
        "12",
        "--templates",
        path,
    ]);
    let by_lang = |l: &str| p.iter().find(|p| p["language"] == l).unwrap();
    assert_eq!(
        by_lang("fi")["sms"]["text"],
        "Vesikatko: putkirikko. Tilanne: https://vesi.example.fi/katkot/INC-12"
    );
    assert_eq!(
        by_lang("fi")["email"]["subject"],
        "Vesikatko: putkirikko",
        "no subject template for fi: built in"
    );
    assert_eq!(
        by_lang("en")["email"]["subject"],
        "Water outage – putkirikko"
    );
    assert_eq!(
        by_lang("sv")["sms"]["text"],
        "Vattenavbrott: putkirikko. Vi meddelar när felet är åtgärdat. Ref INC-12"
    );
    for p in &p {
        check_counts(p);
    }

    // The environment variable works the same as the flag.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outagecast"));
    let out = cmd
        .current_dir(dir.path())
        .env("OUTAGECAST_TEMPLATES", path)
        .args([
            "template",
            "preview",
            "--kind",
            "water",
            "--event",
            "declared",
            "--language",
            "fi",
            "--cause",
            "x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("Tilanne: https://vesi.example.fi/katkot/INC-1")
    );
}

#[test]
fn bad_templates_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[water.declared.fi]\nbody = \"{couse}\"\n",
            "water.declared.fi.body: unknown variable {couse}",
        ),
        (
            "[water.declard.fi]\nbody = \"x\"\n",
            "water.declard: is not an event",
        ),
        ("[lava.declared.fi]\nbody = \"x\"\n", "lava: is not a kind"),
        (
            "[water.declared.de]\nbody = \"x\"\n",
            "water.declared.de: is not a language",
        ),
        (
            "[water.declared.fi]\nbdy = \"x\"\n",
            "water.declared.fi.bdy: \"bdy\" is not one of subject, body",
        ),
        (
            "[water.declared.fi]\nbody = 5\n",
            "water.declared.fi.body: must be a string",
        ),
        (
            "[water.declared.fi]\nbody = \"a } b\"\n",
            "water.declared.fi.body: the } at character 3",
        ),
        (
            "[default.restored.sv]\nbody = \"{status_link}\"\n",
            "default.restored.sv.body: uses {status_link}",
        ),
        ("[water.declared.fi\n", "line 1, column"),
    ];
    for (i, (toml, problem)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("t{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let e = fails(&[
            "--kind",
            "water",
            "--cause",
            "x",
            "--templates",
            file.to_str().unwrap(),
        ]);
        assert!(e.starts_with("error: OUTAGECAST_TEMPLATES "), "{e}");
        assert!(e.contains(problem), "{toml:?}: {e}");
    }
    let e = fails(&[
        "--kind",
        "water",
        "--cause",
        "x",
        "--templates",
        "/nonexistent/t.toml",
    ]);
    assert!(e.contains("cannot read /nonexistent/t.toml"), "{e}");
}
