//! Voice calls end to end: the real `serve` calling landlines through the gateway stand-in's
//! Calls API, the stand-in posting each call's final status to `/webhooks/voice/status` with a
//! `webhook` token (the Basic password of the public URL, as a gateway that cannot sign does).
//!
//! - A burst area where a third of the customers have only a landline: every landline is
//!   called exactly once with `<Say>` in its customer's language, every mobile gets exactly
//!   one SMS, no SMS goes to a landline; a busy line is called again after the retry delay and
//!   delivered; the TwiML is parsed as XML and compared with the document Twilio's own Python
//!   library (`twilio` from PyPI) builds for the same call; the report and `/metrics` count
//!   the calls by outcome.
//! - kill -9 of `serve` mid-calls, then a restart: every landline called exactly once (the
//!   in-doubt calls are looked up at the stand-in's `GET Calls.json?To=…`).
//! - The provider refuses the credentials (the town has a mobile whose customer asked for
//!   calls in the import's `channel` column: called, not texted): the calls wait held, `/healthz/dispatch` names
//!   `OUTAGECAST_VOICE_AUTH_TOKEN` in one ERROR line, and once the key is accepted again each
//!   line is called once, by itself.
//! - A Calls API that places each call and never answers the request: after three requests in
//!   a row the provider counts as down (`/healthz/dispatch` says so); once it answers, the calls
//!   it had placed are found, not placed again, and their outcomes (whose callbacks were lost)
//!   are asked for at `GET Calls/{sid}.json`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{SID, StandIn, TOKEN, count, eventually};
use outagecast_gateway_standin::Faults;
use serde_json::Value;

/// The caller id calls come from.
const VOICE_FROM: &str = "+35852100100";

struct Town {
    dir: tempfile::TempDir,
    standin: StandIn,
    port: u16,
    token: String,
    /// An admin token, for `/metrics`.
    admin: String,
}

impl Town {
    async fn new() -> Town {
        let standin = StandIn::start(Faults::default()).await;
        // A port known before serve starts: the calls' StatusCallback names it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut town = Town {
            dir: tempfile::tempdir().unwrap(),
            standin,
            port,
            token: String::new(),
            admin: String::new(),
        };
        let made = town.json(&["token", "create", "--role", "webhook", "--name", "gateway"]);
        town.token = made["token"].as_str().unwrap().to_string();
        let made = town.json(&["token", "create", "--role", "admin", "--name", "on-call"]);
        town.admin = made["token"].as_str().unwrap().to_string();
        town
    }

    fn db(&self) -> String {
        self.dir
            .path()
            .join("town.db")
            .to_str()
            .unwrap()
            .to_string()
    }

    /// The CLI against the town's database with a clean environment.
    fn json(&self, args: &[&str]) -> Value {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_outagecast"));
        for (k, _) in std::env::vars() {
            if k.starts_with("OUTAGECAST_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .arg("--db")
            .arg(self.db())
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `serve` on the town's port, sending SMS and placing calls through the stand-in, with
    /// these settings beside the town's own.
    fn serve_command(&self, rate: u32, env: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = self.standin.command("Vesi", 100);
        cmd.arg("--db")
            .arg(self.db())
            .args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--agi-listen", "127.0.0.1:0", "--lease", "2"])
            .env("OUTAGECAST_VOICE_FROM", VOICE_FROM)
            .env("OUTAGECAST_VOICE_RATE", rate.to_string())
            .env("OUTAGECAST_VOICE_RETRY_DELAY", "1")
            .env("OUTAGECAST_QUIET_HOURS", "off")
            .env(
                "OUTAGECAST_PUBLIC_URL",
                format!("http://webhook:{}@127.0.0.1:{}", self.token, self.port),
            )
            .envs(env.iter().copied());
        cmd
    }

    async fn serve(&self, rate: u32) -> tokio::process::Child {
        let mut cmd = self.serve_command(rate, &[]);
        cmd.stderr(std::process::Stdio::null());
        self.spawn(cmd).await
    }

    /// `serve` with its log kept: the child and what it has written to stderr so far.
    async fn serve_logged(
        &self,
        rate: u32,
        env: &[(&str, &str)],
    ) -> (tokio::process::Child, Arc<Mutex<String>>) {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = self.serve_command(rate, env);
        cmd.stderr(std::process::Stdio::piped());
        let mut child = self.spawn(cmd).await;
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        (child, log)
    }

    async fn spawn(&self, cmd: tokio::process::Command) -> tokio::process::Child {
        let (child, http) = common::spawn_serve(cmd).await;
        assert_eq!(http, format!("127.0.0.1:{}", self.port));
        child
    }

    /// `n` customers with only a landline (`+35852` and six digits from `base` on), all Finnish, at the
    /// burst's centre; their numbers.
    fn landlines(&self, n: usize, base: u32) -> Vec<String> {
        let mut csv = String::from("account_id,lon,lat,address,phone,email,language,priority\n");
        let numbers: Vec<String> = (0..n)
            .map(|i| format!("+35852{:06}", base as usize + i))
            .collect();
        for (i, number) in numbers.iter().enumerate() {
            csv.push_str(&format!(
                "L-{i:03},24.9414,60.1710,Kaivokatu 1,{number},,fi,false\n"
            ));
        }
        let path = self.dir.path().join("landlines.csv");
        std::fs::write(&path, csv).unwrap();
        self.json(&["import", "customers", path.to_str().unwrap()]);
        numbers
    }

    /// Waits until each of `numbers` has its call delivered and `/healthz/dispatch` is back
    /// to 200, then checks that each was called exactly once.
    async fn every_line_called_once(&self, id: &str, numbers: &[String], within: Duration) {
        eventually(within, "every call delivered", || {
            let report = self.report(id);
            async move { count(&report, "voice", "delivered") == numbers.len() as u64 }
        })
        .await;
        eventually(
            Duration::from_secs(20),
            "/healthz/dispatch back to 200",
            || async { self.voice_health().await.0 == 200 },
        )
        .await;
        called_once_each(&self.standin.gateway, numbers);
    }

    /// `GET /healthz/dispatch`: the status code and the voice component.
    async fn voice_health(&self) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}/healthz/dispatch", self.port);
        let Ok(answer) = reqwest::get(url).await else {
            return (0, Value::Null);
        };
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let voice = body["components"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "voice"))
            .cloned()
            .unwrap_or(Value::Null);
        (status, voice)
    }

    fn report(&self, id: &str) -> Value {
        self.json(&["incident", "report", id])
    }
}

/// `n` customers at one point: every third (i % 3 == 2) has only a Kotka landline, the others
/// a mobile; languages fi, sv, en in turn by customer.
fn mixed_csv(n: usize, landline_base: u32) -> (String, Vec<(String, &'static str)>) {
    let langs = ["fi", "sv", "en", "sv", "en", "fi"];
    let mut csv = String::from("account_id,lon,lat,address,phone,email,language,priority\n");
    let mut landlines = Vec::new();
    for i in 0..n {
        let lang = langs[i % langs.len()];
        let phone = if i % 3 == 2 {
            let p = format!("+3585210{:04}", landline_base as usize + i);
            landlines.push((p.clone(), lang));
            p
        } else {
            format!("+35848{:07}", 3_000_000 + i)
        };
        csv.push_str(&format!(
            "C-{i:04},24.9414,60.1710,Kaivokatu 1,{phone},,{lang},false\n"
        ));
    }
    (csv, landlines)
}

fn declare(town: &Town, n: usize) -> String {
    let declared = town.json(&[
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "burst main",
        "--circle",
        "24.9414,60.1710,50",
        "--confirm",
        &n.to_string(),
    ]);
    declared["id"].as_i64().unwrap().to_string()
}

/// Every one of `numbers` was called exactly once.
fn called_once_each(gateway: &outagecast_gateway_standin::Gateway, numbers: &[String]) {
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for c in gateway.calls() {
        *per_number.entry(c.to).or_default() += 1;
    }
    for n in numbers {
        assert_eq!(
            per_number.get(n),
            Some(&1),
            "{n} called exactly once: {per_number:?}"
        );
    }
}

/// The texts of a TwiML document's `<Say>` elements.
fn said_aloud(twiml: &str) -> Vec<&str> {
    twiml
        .split("<Say")
        .skip(1)
        .filter_map(|s| s.split_once('>').and_then(|(_, t)| t.split_once("</Say>")))
        .map(|(text, _)| text)
        .collect()
}

fn bcp47(lang: &str) -> &'static str {
    match lang {
        "fi" => "fi-FI",
        "sv" => "sv-SE",
        _ => "en-GB",
    }
}

/// Checks every call's TwiML with Python: parsed as XML, and equal (canonical XML) to the
/// document `twilio.twiml.voice_response.VoiceResponse` builds for the same text, language
/// and gather action. Skipped with a note where the `twilio` package is not installed.
fn check_twiml_with_twilio(calls: &[outagecast_gateway_standin::Call]) {
    let docs: Vec<&str> = calls.iter().map(|c| c.twiml.as_str()).collect();
    let script = r#"
import json, sys
import xml.etree.ElementTree as ET
docs = json.load(sys.stdin)
try:
    from twilio.twiml.voice_response import VoiceResponse, Gather
except ImportError:
    VoiceResponse = None
for doc in docs:
    root = ET.fromstring(doc)
    assert root.tag == "Response", root.tag
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1", doc
    says = gather.findall("Say")
    assert len(says) == 3 and says[0].text == says[1].text, doc
    lang = says[0].get("language")
    assert all(s.get("language") == lang for s in root.iter("Say")), doc
    if VoiceResponse is None:
        continue
    r = VoiceResponse()
    g = Gather(num_digits=1, action=gather.get("action"), method="POST", timeout=5)
    g.say(says[0].text, language=lang)
    g.pause(length=1)
    g.say(says[1].text, language=lang)
    g.pause(length=1)
    g.say(says[2].text, language=lang)
    r.append(g)
    r.say(root.findall("Say")[-1].text, language=lang)
    ours = ET.canonicalize(doc)
    theirs = ET.canonicalize(str(r))
    assert ours == theirs, (ours, theirs)
print("twilio" if VoiceResponse else "xml-only")
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&docs).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "TwiML check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let how = String::from_utf8_lossy(&out.stdout);
    if how.trim() != "twilio" {
        eprintln!("note: the twilio package is not installed; TwiML checked as XML only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landlines_are_called_once_in_their_language_and_mobiles_texted_once() {
    let started = Instant::now();
    let town = Town::new().await;
    let (csv, landlines) = mixed_csv(30, 0);
    let path = town.dir.path().join("town.csv");
    std::fs::write(&path, csv).unwrap();
    town.json(&["import", "customers", path.to_str().unwrap()]);
    let gateway = town.standin.gateway.clone();
    gateway.set_call_length(Duration::from_millis(200));
    // One line is busy at the first call.
    let busy = landlines[0].0.clone();
    gateway.script_calls(&busy, &["busy"]);
    let id = declare(&town, 30);
    let mut serve = town.serve(10).await;
    eventually(Duration::from_secs(20), "every call delivered", || {
        let report = town.report(&id);
        async move {
            count(&report, "voice", "delivered") == 10 && count(&report, "sms", "sent") == 20
        }
    })
    .await;

    let calls = gateway.calls();
    let mut per_number: HashMap<&str, Vec<&outagecast_gateway_standin::Call>> = HashMap::new();
    for c in &calls {
        per_number.entry(c.to.as_str()).or_default().push(c);
    }
    assert_eq!(
        per_number.len(),
        landlines.len(),
        "only landlines are called"
    );
    for (number, lang) in &landlines {
        let placed = &per_number[number.as_str()];
        let expected = if *number == busy { 2 } else { 1 };
        assert_eq!(placed.len(), expected, "{number}: {placed:?}");
        for c in placed {
            assert_eq!(c.from, VOICE_FROM);
            assert!(
                c.twiml
                    .contains(&format!("<Say language=\"{}\">", bcp47(lang))),
                "{number} ({lang}): {}",
                c.twiml
            );
            for said in said_aloud(&c.twiml) {
                assert!(
                    !said.contains("http") && !said.contains("www."),
                    "no URL said aloud: {said}"
                );
            }
            let field = |k: &str| {
                c.fields
                    .iter()
                    .find(|(f, _)| f == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(field("MachineDetection"), Some("DetectMessageEnd"));
            assert_eq!(
                field("StatusCallback"),
                Some(
                    format!(
                        "http://webhook:{}@127.0.0.1:{}/webhooks/voice/status",
                        town.token, town.port
                    )
                    .as_str()
                )
            );
        }
    }
    let busy_calls = &per_number[busy.as_str()];
    assert_eq!(busy_calls[0].status, "busy");
    assert!(
        busy_calls[1].at >= busy_calls[0].at + Duration::from_secs(1),
        "called again after the retry delay"
    );
    check_twiml_with_twilio(&calls);

    // Mobiles: one SMS each; landlines: none.
    let messages = gateway.messages();
    assert_eq!(messages.len(), 20);
    let mut texted: HashMap<&str, usize> = HashMap::new();
    for m in &messages {
        *texted.entry(m.to.as_str()).or_default() += 1;
    }
    assert!(texted.values().all(|n| *n == 1), "one SMS per mobile");
    assert!(
        texted.keys().all(|to| to.starts_with("+35848")),
        "no SMS to a landline"
    );

    // The report shows each call; the metrics count them by outcome.
    let report = town.report(&id);
    let rows = report["recipients"].as_array().unwrap();
    let busy_row = rows.iter().find(|r| r["address"] == busy.as_str()).unwrap();
    assert_eq!(busy_row["calls"], "busy, answered (human)", "{busy_row}");
    assert_eq!(busy_row["status"], "delivered");
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/metrics", town.port))
        .bearer_auth(&town.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("outagecast_calls{outcome=\"answered\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("outagecast_calls{outcome=\"busy\"} 1"),
        "{metrics}"
    );

    // The rate reached: the spread of the first call to each number.
    let mut firsts: Vec<Duration> = per_number.values().map(|c| c[0].at).collect();
    firsts.sort();
    let spread = firsts[firsts.len() - 1] - firsts[0];
    let rate = (firsts.len() - 1) as f64 / spread.as_secs_f64().max(1e-3);
    eprintln!(
        "voice: {} calls, first calls at {rate:.1} calls/s (OUTAGECAST_VOICE_RATE=10); test {:.1} s",
        calls.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(rate <= 11.0, "paced: {rate:.1} calls/s");
    let _ = SID;
    let _ = TOKEN;
    serve.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_calls_calls_every_landline_exactly_once() {
    let started = Instant::now();
    let town = Town::new().await;
    let numbers = town.landlines(12, 200_000);
    let gateway = town.standin.gateway.clone();
    gateway.set_call_length(Duration::from_millis(300));
    let id = declare(&town, 12);
    let mut serve = town.serve(4).await;
    eventually(Duration::from_secs(10), "a few calls placed", || {
        let n = gateway.calls().len();
        async move { n >= 4 }
    })
    .await;
    // SIGKILL: no shutdown, leases and hand-overs left as they are.
    serve.start_kill().unwrap();
    serve.wait().await.unwrap();
    let placed_before = gateway.calls().len();
    assert!(placed_before < 12, "killed mid-calls: {placed_before}");
    let mut serve = town.serve(4).await;
    eventually(Duration::from_secs(20), "every call delivered", || {
        let report = town.report(&id);
        async move { count(&report, "voice", "delivered") == 12 }
    })
    .await;
    called_once_each(&gateway, &numbers);
    eprintln!(
        "voice kill -9: {placed_before} calls before the kill, 12 in all, each once; test {:.1} s",
        started.elapsed().as_secs_f64()
    );
    serve.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_call_credentials_hold_the_calls_and_they_go_once_accepted_again() {
    let started = Instant::now();
    let town = Town::new().await;
    let mut numbers = town.landlines(5, 300_000);
    // A mobile whose customer asked to be called (the import's `channel` column).
    let asked = "+358481234000";
    let path = town.dir.path().join("asked.csv");
    std::fs::write(
        &path,
        format!(
            "account_id,lon,lat,address,phone,email,language,priority,channel\n\
             M-1,24.9414,60.1710,Kaivokatu 1,{asked},,fi,false,voice\n"
        ),
    )
    .unwrap();
    town.json(&["import", "customers", path.to_str().unwrap()]);
    numbers.push(asked.to_string());
    let gateway = town.standin.gateway.clone();
    gateway.set_call_length(Duration::from_millis(100));
    // The provider has revoked the key the calls are configured with.
    gateway.set_auth_token("revoked");
    let id = declare(&town, 6);
    let (mut serve, log) = town.serve_logged(10, &[]).await;
    eventually(
        Duration::from_secs(20),
        "/healthz/dispatch names voice",
        || async { town.voice_health().await.1["state"] == "degraded" },
    )
    .await;
    let (status, voice) = town.voice_health().await;
    assert_eq!(status, 503, "{voice}");
    let reason = voice["reason"].as_str().unwrap();
    assert!(
        reason.contains("refused the credentials")
            && reason.contains("OUTAGECAST_VOICE_AUTH_TOKEN"),
        "the reason names the setting to fix: {reason}"
    );
    eventually(Duration::from_secs(10), "every call held", || {
        let report = town.report(&id);
        async move { count(&report, "voice", "held") == 6 }
    })
    .await;
    let report = town.report(&id);
    assert_eq!(
        count(&report, "voice", "failed"),
        0,
        "nothing burnt: {report}"
    );
    assert!(gateway.calls().is_empty(), "no call was placed");

    // The key is accepted again: the calls go by themselves, each once.
    gateway.set_auth_token(TOKEN);
    town.every_line_called_once(&id, &numbers, Duration::from_secs(90))
        .await;
    serve.kill().await.unwrap();
    let log = log.lock().unwrap().clone();
    let errors = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("refused the credentials"))
        .count();
    assert_eq!(errors, 1, "one clear error line, not one per call:\n{log}");
    eprintln!(
        "voice refused then accepted: 6 calls each once; test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_api_that_places_the_call_and_never_answers_calls_each_line_once() {
    let started = Instant::now();
    let town = Town::new().await;
    let numbers = town.landlines(4, 400_000);
    let gateway = town.standin.gateway.clone();
    gateway.set_call_length(Duration::from_millis(100));
    // Each call is placed, but the create request gets no answer for a minute; the calls'
    // status callbacks are lost on the way.
    gateway.set_calls_hang(Some(Duration::from_secs(60)));
    gateway.lose_callbacks(true);
    let id = declare(&town, 4);
    let (mut serve, log) = town
        .serve_logged(
            10,
            &[
                ("OUTAGECAST_SMS_TIMEOUT", "2"),
                ("OUTAGECAST_VOICE_MAX_CALL_SECONDS", "2"),
            ],
        )
        .await;
    eventually(Duration::from_secs(20), "the calls placed", || {
        let n = gateway.calls().len();
        async move { n >= 4 }
    })
    .await;
    // Several requests in a row unanswered: the provider counts as down, and says why.
    eventually(
        Duration::from_secs(20),
        "/healthz/dispatch says why",
        || async { town.voice_health().await.1["state"] == "degraded" },
    )
    .await;
    let (status, voice) = town.voice_health().await;
    assert_eq!(status, 503, "{voice}");
    assert!(
        voice["reason"]
            .as_str()
            .unwrap()
            .contains("requests in a row without an answer"),
        "{voice}"
    );
    // The provider answers again: the calls it had placed are found by the look-up, not
    // placed twice; their status callbacks never come, so each outcome is asked for.
    gateway.set_calls_hang(None);
    town.every_line_called_once(&id, &numbers, Duration::from_secs(60))
        .await;
    serve.kill().await.unwrap();
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("their status callbacks never came"),
        "the outcomes came from the provider's record:\n{log}"
    );
    eprintln!(
        "voice hanging Calls API: 4 calls each once; test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
