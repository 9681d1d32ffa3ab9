//! End to end through the real binary: the config file under the environment under the flags,
//! `config check` (effective values, their sources, secrets hidden, every problem listed),
//! logging settings, and `token create|list|revoke`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Db, SAMPLE};
use serde_json::Value;

/// Runs the binary in `dir` with only the given `OUTAGECAST_*` variables (no `--db` added).
fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command_in(dir, env, args).output().unwrap()
}

/// The command [`run_in`] runs, to start it without waiting.
fn command_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outagecast"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OUTAGECAST_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir).envs(env.iter().copied()).args(args);
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// `config check --json` that must pass.
fn check(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["config", "check", "--json"]);
    let out = run_in(dir, env, &all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The effective value and source of one setting.
fn setting(v: &Value, key: &str) -> (Value, String) {
    let s = &v["settings"][key];
    assert!(s.is_object(), "no setting {key} in {v}");
    (
        s["value"].clone(),
        s["source"].as_str().unwrap().to_string(),
    )
}

fn is(value: &str, source: &str) -> (Value, String) {
    (Value::from(value), source.to_string())
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let db = Db::new();
    let dir = db.dir.path();
    let file = db.file_str(
        "outagecast.toml",
        "# operator settings\n\
         timezone = \"Europe/Helsinki\"\n\
         quiet_hours = \"22:00-07:00\"\n\
         sms_rate = 25\n\
         listen = \"127.0.0.1:9090\"\n",
    );
    let config = ["--config", file.as_str()];

    // Nothing set: the defaults.
    let v = check(dir, &[], &[]);
    assert!(v["config_file"].is_null());
    assert_eq!(setting(&v, "timezone"), is("UTC", "default"));
    assert_eq!(
        setting(&v, "quiet_hours"),
        is("calls 21:00-08:00", "default")
    );
    assert_eq!(setting(&v, "sms_rate"), is("10", "default"));
    assert_eq!(setting(&v, "listen"), is("127.0.0.1:8080", "default"));
    assert_eq!(
        setting(&v, "database_url"),
        is("./outagecast.db", "default")
    );
    assert_eq!(setting(&v, "default_region"), (Value::Null, "unset".into()));

    // The file, with the line each value is on; an integer is read as its text.
    let v = check(dir, &[], &config);
    assert_eq!(v["config_file"], file.as_str());
    assert_eq!(setting(&v, "timezone"), is("Europe/Helsinki", "file"));
    assert_eq!(v["settings"]["timezone"]["line"], 2);
    assert_eq!(setting(&v, "quiet_hours"), is("22:00-07:00", "file"));
    assert_eq!(setting(&v, "sms_rate"), is("25", "file"));
    assert_eq!(setting(&v, "listen"), is("127.0.0.1:9090", "file"));
    // OUTAGECAST_CONFIG names the file as well as --config does.
    let by_env = check(dir, &[("OUTAGECAST_CONFIG", &file)], &[]);
    assert_eq!(by_env["settings"], v["settings"]);

    // The environment beats the file, for flags and for the settings read by lookup alike.
    let env = [
        ("OUTAGECAST_TIMEZONE", "Europe/Stockholm"),
        ("OUTAGECAST_QUIET_HOURS", "21:00-08:00"),
        ("OUTAGECAST_SMS_RATE", "7"),
    ];
    let v = check(dir, &env, &config);
    assert_eq!(setting(&v, "timezone"), is("Europe/Stockholm", "env"));
    assert_eq!(setting(&v, "quiet_hours"), is("21:00-08:00", "env"));
    assert_eq!(setting(&v, "sms_rate"), is("7", "env"));
    assert_eq!(setting(&v, "listen"), is("127.0.0.1:9090", "file"));

    // A flag beats both.
    let v = check(
        dir,
        &env,
        &[&config[..], &["--timezone", "America/New_York"]].concat(),
    );
    assert_eq!(setting(&v, "timezone"), is("America/New_York", "flag"));
    let v = check(dir, &env, &["--timezone=Asia/Tokyo", "--config", &file]);
    assert_eq!(setting(&v, "timezone"), is("Asia/Tokyo", "flag"));
}

#[test]
fn file_values_reach_the_commands() {
    let db = Db::new();
    let dir = db.dir.path();
    let from_file = dir.join("from-file.db");
    let file = db.file_str(
        "outagecast.toml",
        &format!(
            "database_url = {:?}\nconfirm_threshold = 1000\n",
            from_file.display()
        ),
    );
    // A global flag's setting: the database the file names.
    let out = run_in(
        dir,
        &[],
        &["--config", &file, "import", "customers", SAMPLE],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(from_file.exists());
    assert!(!dir.join("outagecast.db").exists());

    // A subcommand's flag: the confirmation threshold of `incident preview`.
    let preview = |env: &[(&str, &str)], extra: &[&str]| -> Value {
        let mut args = vec![
            "--config",
            &file,
            "incident",
            "preview",
            "--kind",
            "water",
            "--cause",
            "burst",
            "--circle",
            "24.9414,60.1710,2500",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = run_in(dir, env, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let refused = preview(&[], &[]);
    assert!(
        refused["refused"]
            .as_str()
            .is_some_and(|r| r.contains("--confirm 2158")),
        "the file's threshold of 1000 applies: {refused}"
    );
    let env = [("OUTAGECAST_CONFIRM_THRESHOLD", "100000")];
    assert!(
        preview(&env, &[])["refused"].is_null(),
        "the environment beats the file"
    );
    let flag = preview(&env, &["--confirm-threshold", "2000"]);
    assert!(flag["refused"].is_string(), "the flag beats both: {flag}");
    // Arguments after a bare `--` stay where they are: file values go before it.
    let out = run_in(
        dir,
        &[],
        &[
            "--config",
            &file,
            "ivr",
            "lookup",
            "--json",
            "--",
            "+358401234567",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_unknown_key_names_the_file_the_line_and_the_closest_key() {
    let db = Db::new();
    let dir = db.dir.path();
    let file = db.file_str(
        "outagecast.toml",
        "timezone = \"UTC\"\n\nsmtp_ur = \"smtp://mail.example.fi:587\"\n",
    );
    for args in [
        vec!["--config", file.as_str(), "incident", "list"],
        vec!["--config", file.as_str(), "token", "list"],
    ] {
        let out = run_in(dir, &[], &args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with(&format!("error: {file}:3: unknown key \"smtp_ur\"")),
            "{err}"
        );
        assert!(err.contains("did you mean \"smtp_url\"?"), "{err}");
    }
    // The variable's own spelling and a section are explained too.
    let file = db.file_str(
        "other.toml",
        "OUTAGECAST_SMS_FROM = \"+358480000000\"\n[sms]\nauth_token = \"x\"\nlisten = [1, 2]\n",
    );
    let out = run_in(dir, &[], &["--config", &file, "config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("error: ")), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(":1: unknown key \"OUTAGECAST_SMS_FROM\"")
                && l.contains("write \"sms_from\"")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(":2: unknown key \"sms\"") && l.contains("sms_auth_token = ...")),
        "{err}"
    );
    // Not TOML at all: the line of the mistake.
    let file = db.file_str("broken.toml", "timezone = \"UTC\"\nlisten = \n");
    let out = run_in(dir, &[], &["--config", &file, "incident", "list"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.starts_with(&format!("error: {file}:2: is not TOML")),
        "{err}"
    );
    // A file that is not there.
    let out = run_in(dir, &[], &["--config", "missing.toml", "incident", "list"]);
    assert!(
        stderr(&out).starts_with("error: --config (OUTAGECAST_CONFIG): cannot read missing.toml")
    );
}

#[test]
fn config_check_hides_secrets() {
    let db = Db::new();
    let dir = db.dir.path();
    let file = db.file_str(
        "outagecast.toml",
        "sms_account_sid = \"AC0123456789\"\n\
         sms_auth_token = \"file-auth-token-1234\"\n\
         sms_from = \"+358480000000\"\n\
         smtp_url = \"smtp://bob:hunter2hunter2@mail.example.fi:25?tls=none\"\n\
         email_from = \"Helsinki Water <noreply@example.fi>\"\n\
         public_url = \"https://notify.example.fi\"\n\
         unsubscribe_secret = \"unsubscribe-secret-0123456789\"\n",
    );
    let secrets = [
        "file-auth-token-1234",
        "hunter2hunter2",
        "unsubscribe-secret-0123456789",
        "env-auth-token-5678",
    ];
    let env = [("OUTAGECAST_SMS_AUTH_TOKEN", "env-auth-token-5678")];
    for (env, source) in [(&[][..], "file"), (&env[..], "env")] {
        let v = check(dir, env, &["--config", &file]);
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(setting(&v, "sms_auth_token"), is("***", source));
        assert_eq!(setting(&v, "unsubscribe_secret"), is("***", "file"));
        assert_eq!(
            setting(&v, "smtp_url"),
            is("smtp://bob:***@mail.example.fi:25?tls=none", "file")
        );
        assert_eq!(setting(&v, "sms_account_sid"), is("AC0123456789", "file"));
        let text = run_in(dir, env, &["--config", &file, "config", "check"]);
        assert!(text.status.success(), "{}", stderr(&text));
        let all = format!("{v}{}{}", stdout(&text), stderr(&text));
        assert!(stdout(&text).contains("ok: every setting is valid"));
        for s in secrets {
            assert!(!all.contains(s), "{s} shown: {all}");
        }
    }
    // Even a problem does not repeat a secret.
    let out = run_in(
        dir,
        &[(
            "OUTAGECAST_SMTP_URL",
            "ftp://bob:hunter2hunter2@mail.example.fi",
        )],
        &["--config", &file, "config", "check"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("smtp_url: ") && !err.contains("hunter2hunter2"),
        "{err}"
    );
}

#[test]
fn a_database_password_is_never_printed() {
    let db = Db::new();
    let dir = db.dir.path();
    // A password no temporary path can contain by chance (`/tmp/.tmpwXYZ` holds "pw").
    let url = "postgres://user:hunter2pw@127.0.0.1:1/x";
    let file = db.file_str("outagecast.toml", &format!("database_url = \"{url}\"\n"));
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--agi-listen",
        "127.0.0.1:0",
    ];
    let with_url = [("OUTAGECAST_DATABASE_URL", url)];
    let runs = [
        (&[][..], vec!["--config", &file, "config", "check"]),
        (&with_url[..], vec!["config", "check", "--json"]),
        (&[][..], [&["--db", url][..], &serve[..]].concat()),
    ];
    // Started together: each waits out the driver's connect timeout before it gives up.
    let started: Vec<_> = runs
        .iter()
        .map(|(env, args)| {
            let child = command_in(dir, env, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (args, child)
        })
        .collect();
    for (args, child) in started {
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{args:?} cannot open the database");
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains("postgres://user:***@127.0.0.1:1/x"),
            "{args:?} names the database: {all}"
        );
        assert!(
            !all.contains("hunter2pw"),
            "{args:?} shows the password: {all}"
        );
    }
}

#[test]
fn config_check_lists_every_problem_with_its_key_and_exits_non_zero() {
    let db = Db::new();
    let dir = db.dir.path();
    let file = db.file_str(
        "outagecast.toml",
        "timezone = \"Mars/Olympus_Mons\"\n\
         quiet_hours = \"25:00-08:00\"\n\
         listen = \"nowhere\"\n\
         geocoder = \"google\"\n\
         sms_account_sid = \"AC0123456789\"\n\
         log_format = \"xml\"\n",
    );
    let out = run_in(dir, &[], &["--config", &file, "config", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    for key in [
        "timezone",
        "quiet_hours",
        "listen",
        "geocoder",
        "sms_auth_token",
        "log_format",
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("error: {key}: ")))
            .unwrap_or_else(|| panic!("no problem for {key}: {err}"));
        if key != "sms_auth_token" {
            assert!(line.contains(&format!("{file}:")), "says where: {line}");
        }
    }
    assert!(
        err.contains("\"google\" is not one of embedded, nominatim"),
        "{err}"
    );
    assert!(err.contains("21:00-08:00"), "says the fix: {err}");

    let out = run_in(dir, &[], &["--config", &file, "config", "check", "--json"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    let keys: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 6, "{keys:?}");

    // Other commands stop at a setting they use, naming the file's line.
    let out = run_in(
        dir,
        &[],
        &["--config", &file, "serve", "--agi-listen", "127.0.0.1:0"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: OUTAGECAST_LOG_FORMAT: \"xml\""),
        "{err}"
    );
    let fine = db.file_str("fine.toml", "geocoder = \"google\"\n");
    let out = run_in(
        dir,
        &[],
        &[
            "--config",
            &fine,
            "incident",
            "preview",
            "--kind",
            "water",
            "--cause",
            "x",
            "--address",
            "Kaivokatu 1",
        ],
    );
    assert!(
        stderr(&out).starts_with(&format!(
            "error: {fine}:1: geocoder: \"google\" is not one of"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn log_format_json_writes_json_lines() {
    let db = Db::new();
    let dir = db.dir.path();
    let file = db.file_str(
        "outagecast.toml",
        "log = \"debug\"\nlog_format = \"json\"\n",
    );
    let out = run_in(
        dir,
        &[],
        &["--config", &file, "--db", "t.db", "incident", "list"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "debug logging says something");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    // The environment beats the file here too.
    let out = run_in(
        dir,
        &[("OUTAGECAST_LOG_FORMAT", "text")],
        &["--config", &file, "--db", "t.db", "incident", "list"],
    );
    assert!(out.status.success());
    assert!(
        stderr(&out).lines().all(|l| !l.starts_with('{')),
        "{}",
        stderr(&out)
    );
    // A bad filter is an error naming the variable.
    let out = run_in(dir, &[("OUTAGECAST_LOG", "=x=")], &["incident", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).starts_with("error: OUTAGECAST_LOG: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_token_secret_is_printed_once_and_never_listed() {
    let db = Db::new();
    let out = db.run(&[
        "token",
        "create",
        "--role",
        "operator",
        "--name",
        "ci-deploy",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = stdout(&out).trim_end().to_string();
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "stdout is the secret alone"
    );
    assert!(secret.starts_with("oc_") && secret.len() == 46, "{secret}");
    let note = stderr(&out);
    assert!(
        note.contains("\"ci-deploy\"") && note.contains("operator"),
        "{note}"
    );
    assert!(note.contains("will not be shown again"), "{note}");

    let v = db.json(&["token", "create", "--role", "IVR", "--name", "asterisk"]);
    let ivr_secret = v["token"].as_str().unwrap().to_string();
    assert!(ivr_secret.starts_with("oc_") && ivr_secret != secret);
    assert_eq!(v["role"], "ivr");
    assert_eq!(v["name"], "asterisk");

    let text = db.ok(&["token", "list"]);
    let json = db.json(&["token", "list"]);
    for shown in [&text, &json.to_string()] {
        assert!(
            !shown.contains(&secret[3..]) && !shown.contains(&ivr_secret[3..]),
            "{shown}"
        );
    }
    assert!(text.contains("ci-deploy") && text.contains("operator") && text.contains("active"));
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-deploy", "asterisk"]);
    assert!(json[0]["created_by"].as_str().unwrap().starts_with("cli:"));
    assert!(json[0]["revoked_at"].is_null());

    // Names are unique; roles are checked.
    let err = db.fails(&["token", "create", "--role", "viewer", "--name", "ci-deploy"]);
    assert!(
        err.starts_with("error: --name: ") && err.contains("\"ci-deploy\""),
        "{err}"
    );
    let err = db.fails(&["token", "create", "--role", "root", "--name", "x"]);
    assert!(
        err.starts_with("error: --role: ") && err.contains("admin, operator, viewer, ivr, webhook"),
        "{err}"
    );
}

#[test]
fn a_revoked_token_is_listed_as_revoked() {
    let db = Db::new();
    db.ok(&["token", "create", "--role", "viewer", "--name", "dashboard"]);
    let out = db.ok(&["token", "revoke", "dashboard"]);
    assert!(out.contains("revoked token \"dashboard\""), "{out}");
    let listed = db.json(&["token", "list"]);
    assert!(listed[0]["revoked_at"].is_string(), "{listed}");
    assert!(db.ok(&["token", "list"]).contains("revoked 20"));
    let again = db.ok(&["token", "revoke", "dashboard"]);
    assert!(again.contains("was already revoked"), "{again}");
    let v = db.json(&["token", "revoke", "dashboard"]);
    assert_eq!(v["name"], "dashboard");
    let err = db.fails(&["token", "revoke", "nobody"]);
    assert!(
        err.contains("\"nobody\"") && err.contains("token list"),
        "{err}"
    );
}

/// Every `OUTAGECAST_*` name the code reads or sets is in the README's settings (or, for the
/// FastAGI variables, beside them): a setting added without its row fails here.
#[test]
fn every_setting_in_the_code_is_in_the_readme() {
    fn names(dir: &std::path::Path, out: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                names(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let mut rest = text.as_str();
                while let Some(i) = rest.find("OUTAGECAST_") {
                    rest = &rest[i..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                        .unwrap_or(rest.len());
                    let name = &rest[..end];
                    // Prefixes (`OUTAGECAST_SMS_*` in prose) and the test suite's own switches.
                    if !name.ends_with('_')
                        && ![
                            "OUTAGECAST_TEST_",
                            "OUTAGECAST_REQUIRE_",
                            "OUTAGECAST_FAR_ENDS",
                        ]
                        .iter()
                        .any(|p| name.starts_with(p))
                    {
                        out.insert(name.to_string());
                    }
                    rest = &rest[end..];
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = std::collections::BTreeSet::new();
    names(&root.join("src"), &mut found);
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            names(&src, &mut found);
        }
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let missing: Vec<&String> = found
        .iter()
        .filter(|n| !readme.contains(&format!("`{n}`")))
        .collect();
    assert!(found.len() > 30, "{found:?}");
    assert!(
        missing.is_empty(),
        "settings missing from README.md: {missing:?}"
    );
}

/// `config check` warns when no channel is configured; `--probe` asks each configured channel
/// (the SMS provider's account URL, the SMTP server's greeting) and says what answered, and a
/// refused credential or a closed port is a problem naming the settings to check.
#[test]
fn check_warns_without_a_channel_and_probes_the_configured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &[], &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("warning: no channel is configured"),
        "{}",
        stdout(&out)
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let standin = runtime.block_on(common::StandIn::start(Default::default()));
    // A port nothing listens on, for the mail server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("smtp://{}?tls=none", closed.local_addr().unwrap());
    drop(closed);
    let sms = |token: &'static str| {
        vec![
            ("OUTAGECAST_SMS_BASE_URL", standin.base_url.clone()),
            ("OUTAGECAST_SMS_ACCOUNT_SID", common::SID.to_string()),
            ("OUTAGECAST_SMS_AUTH_TOKEN", token.to_string()),
            ("OUTAGECAST_SMS_FROM", "+358401234567".to_string()),
            (
                "OUTAGECAST_PUBLIC_URL",
                "https://notify.utility.fi".to_string(),
            ),
        ]
    };
    let env = |pairs: &[(&'static str, String)]| -> Vec<(&'static str, String)> { pairs.to_vec() };
    let run = |pairs: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_in(dir.path(), &pairs, &["config", "check", "--probe"])
    };
    let ok = run(sms(common::TOKEN));
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).contains("probe sms: ok: ") && stdout(&ok).contains("(HTTP 200)"),
        "{}",
        stdout(&ok)
    );
    assert!(!stdout(&ok).contains("warning: no channel"));

    let mut wrong = sms("wrong-token");
    wrong.extend(env(&[
        ("OUTAGECAST_SMTP_URL", closed_url),
        ("OUTAGECAST_EMAIL_FROM", "noreply@utility.fi".to_string()),
        (
            "OUTAGECAST_PUBLIC_URL",
            "https://notify.utility.fi".to_string(),
        ),
        (
            "OUTAGECAST_UNSUBSCRIBE_SECRET",
            "unsubscribe-secret-1234".to_string(),
        ),
    ]));
    let refused = run(wrong);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    // Both problems at once, each naming what to check; the token never shown.
    assert!(
        err.contains("probe sms: ") && err.contains("refused the credentials (HTTP 401)"),
        "{err}"
    );
    assert!(err.contains("OUTAGECAST_SMS_AUTH_TOKEN"), "{err}");
    assert!(
        err.contains("probe email: ") && err.contains("OUTAGECAST_SMTP_URL"),
        "{err}"
    );
    assert!(!err.contains("wrong-token") && !stdout(&refused).contains("wrong-token"));
    // Nothing was sent.
    assert_eq!(standin.gateway.accepted(), 0);
}
