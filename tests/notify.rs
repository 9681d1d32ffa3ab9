//! The dispatcher end to end: the real binary sends to a Twilio-shaped gateway stand-in over real
//! HTTP. Exactly once, follow-ups only to those told, faults, the configured rate, and a
//! `kill -9` in the middle of a 50,000-notice batch.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outagecast_gateway_standin::{Faults, Gateway};
use serde_json::Value;
use tokio::process::Command;

mod common;

use common::{SAMPLE, StandIn, count};

struct Setup {
    dir: tempfile::TempDir,
    standin: StandIn,
    gateway: Arc<Gateway>,
}

async fn setup(faults: Faults) -> Setup {
    let standin = StandIn::start(faults).await;
    Setup {
        dir: tempfile::tempdir().unwrap(),
        gateway: standin.gateway.clone(),
        standin,
    }
}

impl Setup {
    fn db(&self) -> PathBuf {
        self.dir.path().join("notify.db")
    }

    fn command(&self, args: &[&str], rate: u32, timeout: f64) -> Command {
        let mut cmd = self.standin.command("+358480000000", rate);
        cmd.env("OUTAGECAST_SMS_TIMEOUT", timeout.to_string())
            .arg("--db")
            .arg(self.db())
            .args(args);
        cmd
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.command(args, 1000, 5.0).output().await.unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn notify(&self, rate: u32, timeout: f64) -> Value {
        self.notify_with(rate, timeout, &[]).await
    }

    /// `notify run --until-empty` with extra environment (e.g. SMTP settings).
    async fn notify_with(&self, rate: u32, timeout: f64, env: &[(&str, String)]) -> Value {
        self.notify_logged(rate, timeout, env).await.0
    }

    /// `notify run --until-empty`: its JSON summary and its log (stderr).
    async fn notify_logged(
        &self,
        rate: u32,
        timeout: f64,
        env: &[(&str, String)],
    ) -> (Value, String) {
        let mut cmd = self.command(
            &["notify", "run", "--until-empty", "--json", "--lease", "2"],
            rate,
            timeout,
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "notify: {log}");
        (serde_json::from_slice(&out.stdout).unwrap(), log)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planned_sms_is_sent_once_and_restore_tells_only_those_told() {
    let s = setup(Faults::default()).await;
    s.json(&["import", "customers", SAMPLE, "--json"]).await;
    let declared = s
        .json(&[
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst water main",
            "--circle",
            "24.9414,60.1710,400",
            "--json",
        ])
        .await;
    let id = declared["id"].as_i64().unwrap().to_string();
    let planned = declared["notices"]["sms"].as_u64().unwrap();
    assert!(planned > 50);

    let run = s.notify(10_000, 5.0).await;
    assert_eq!(run["sent"], planned);
    assert_eq!(s.gateway.accepted() as u64, planned);
    assert_eq!(s.gateway.duplicates(), 0);
    let report = s.json(&["incident", "report", &id, "--json"]).await;
    assert_eq!(count(&report, "sms", "sent"), planned);
    assert_eq!(count(&report, "sms", "pending"), 0);

    // A second run finds nothing to send.
    let again = s.notify(10_000, 5.0).await;
    assert_eq!(again["sent"], 0);
    assert_eq!(s.gateway.accepted() as u64, planned);

    // Restore: one follow-up per contact that was told, and nothing else.
    let restored = s.json(&["incident", "restore", &id, "--json"]).await;
    assert_eq!(restored["notices"]["sms"], planned);
    s.notify(10_000, 5.0).await;
    assert_eq!(s.gateway.accepted() as u64, 2 * planned);
    assert_eq!(s.gateway.duplicates(), 0);
    let fixed = s
        .gateway
        .messages()
        .iter()
        .filter(|m| {
            m.body.contains("INC-")
                && (m.body.contains("korjattu")
                    || m.body.contains("fixed")
                    || m.body.contains("åtgärdat"))
        })
        .count();
    assert!(fixed as u64 >= planned, "restored texts were sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_sent_or_failed_with_no_duplicates_at_the_configured_rate() {
    let s = setup(Faults {
        too_many_every: 7,
        server_error_every: 11,
        slow_every: 13,
        slow_by: Duration::from_millis(1500),
        accept_then_hang_every: 97,
        unreachable_every: 17,
    })
    .await;
    s.json(&["import", "customers", SAMPLE, "--json"]).await;
    let declared = s
        .json(&[
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst water main",
            "--circle",
            "24.9414,60.1710,700",
            "--json",
        ])
        .await;
    let id = declared["id"].as_i64().unwrap().to_string();
    let planned = declared["notices"]["sms"].as_u64().unwrap();
    let rate = 150;
    // A 1 s timeout: the slow (1.5 s) and hanging answers become in-doubt sends.
    let (_, log) = s.notify_logged(rate, 1.0, &[]).await;
    // The unreachable numbers fail one notice each, and the log names no customer: the
    // provider's message quotes the number, the WARN line masks it.
    assert!(log.contains("failed permanently"), "{log}");
    assert!(log.contains("[phone]"), "{log}");
    assert!(!log.contains("+358"), "a phone number in the log: {log}");
    let report = s.json(&["incident", "report", &id, "--json"]).await;
    assert_eq!(count(&report, "sms", "pending"), 0, "every notice ended");
    assert_eq!(
        count(&report, "sms", "sent") + count(&report, "sms", "failed"),
        planned
    );
    assert_eq!(
        s.gateway.duplicates(),
        0,
        "in-doubt sends were looked up, not repeated"
    );
    assert_eq!(s.gateway.accepted() as u64, count(&report, "sms", "sent"));
    for r in report["recipients"].as_array().unwrap() {
        if r["status"] == "failed" {
            assert!(
                r["last_error"].as_str().is_some_and(|e| !e.is_empty()),
                "{r}"
            );
        }
    }

    // The pace: segments per second over the busy part of the run (the first 90% of the
    // requests; the tail is retries waiting out their backoff).
    let log = s.gateway.request_log();
    let busy = &log[..log.len() * 9 / 10];
    let segments: u64 = busy[1..]
        .iter()
        .map(|(_, body)| u64::from(outagecast_core::sms::segments(body).count))
        .sum();
    let seconds = (busy[busy.len() - 1].0 - busy[0].0).as_secs_f64();
    let measured = segments as f64 / seconds;
    eprintln!("measured {measured:.1} segments/s against {rate} configured over {seconds:.1} s");
    assert!(
        (measured - f64::from(rate)).abs() / f64::from(rate) <= 0.02,
        "measured {measured:.1}/s, configured {rate}/s"
    );
}

/// A city block of `n` customers with distinct mobile numbers, all at one point.
fn synthetic_csv(path: &Path, n: usize) {
    let mut out = String::from("account_id,lon,lat,address,phone,email,language,priority\n");
    for i in 0..n {
        out.push_str(&format!(
            "BULK-{i:06},24.9414,60.1710,Kaivokatu 1,+35848{:07},,fi,{}\n",
            1_000_000 + i,
            i % 10 == 0
        ));
    }
    std::fs::write(path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_then_restart_sends_every_notice_exactly_once() {
    const N: usize = 50_000;
    let s = setup(Faults::default()).await;
    let csv = s.dir.path().join("bulk.csv");
    synthetic_csv(&csv, N);
    let imported = s
        .json(&["import", "customers", csv.to_str().unwrap(), "--json"])
        .await;
    assert_eq!(imported["inserted"], N);
    let declared = s
        .json(&[
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst main",
            "--circle",
            "24.9414,60.1710,50",
            "--confirm",
            "50000",
            "--json",
        ])
        .await;
    assert_eq!(declared["notices"]["sms"], N);
    let id = declared["id"].as_i64().unwrap().to_string();

    let mut child = s
        .command(&["notify", "run", "--lease", "2"], 1_000_000, 5.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while s.gateway.accepted() < N / 3 {
        assert!(
            Instant::now() < deadline,
            "the first run never got a third of the way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL: no chance to record or release anything.
    child.wait().await.unwrap();
    let at_kill = s.gateway.accepted();
    assert!(at_kill < N, "killed before the end ({at_kill})");

    let run = s.notify(1_000_000, 5.0).await;
    eprintln!("killed after {at_kill} accepted; restart: {run}");
    assert_eq!(s.gateway.accepted(), N, "every notice reached the gateway");
    assert_eq!(s.gateway.duplicates(), 0, "and none twice");
    let report = s.json(&["incident", "report", &id, "--json"]).await;
    assert_eq!(count(&report, "sms", "sent"), N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_area_tells_only_the_newly_affected() {
    let s = setup(Faults::default()).await;
    s.json(&["import", "customers", SAMPLE, "--json"]).await;
    let declared = s
        .json(&[
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst water main",
            "--circle",
            "24.9414,60.1710,200",
            "--json",
        ])
        .await;
    let id = declared["id"].as_i64().unwrap().to_string();
    let first_sms = declared["notices"]["sms"].as_u64().unwrap();
    let first_customers = declared["affected_customers"].as_u64().unwrap();
    s.notify(10_000, 5.0).await;
    assert_eq!(s.gateway.accepted() as u64, first_sms);

    let grown = s
        .json(&[
            "incident",
            "update",
            &id,
            "--circle",
            "24.9414,60.1710,450",
            "--json",
        ])
        .await;
    assert_eq!(
        grown["notices"]["sms"], 0,
        "those already told hear nothing about a new shape"
    );
    let added = grown["added_customers"].as_u64().unwrap();
    let added_sms = grown["added_notices"]["sms"].as_u64().unwrap();
    assert!(added > 0 && added_sms > 0, "{grown}");
    let shown = s.json(&["incident", "show", &id, "--json"]).await;
    assert_eq!(
        shown["affected_customers"].as_u64().unwrap(),
        first_customers + added
    );

    s.notify(10_000, 5.0).await;
    assert_eq!(s.gateway.accepted() as u64, first_sms + added_sms);
    assert_eq!(s.gateway.duplicates(), 0);
    let numbers: std::collections::HashSet<String> =
        s.gateway.messages().into_iter().map(|m| m.to).collect();
    assert_eq!(
        numbers.len() as u64,
        first_sms + added_sms,
        "each number told once"
    );
}

/// A real SMTP server in process (mailin-embedded): records the recipients of each message.
#[derive(Clone, Default)]
struct Mailbox {
    delivered: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    /// Per connection: the server clones the handler for each session.
    current: Vec<String>,
}

impl mailin_embedded::Handler for Mailbox {
    fn data_start(
        &mut self,
        _: &str,
        _: &str,
        _: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.current = to.to_vec();
        mailin_embedded::response::OK
    }
    fn data(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        let to = std::mem::take(&mut self.current);
        self.delivered.lock().unwrap().push(to);
        mailin_embedded::response::OK
    }
}

fn smtp_server() -> (u16, Mailbox) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox = Mailbox::default();
    let mut server = mailin_embedded::Server::new(mailbox.clone());
    server
        .with_name("mx.test")
        .with_ssl(mailin_embedded::SslConfig::None)
        .unwrap()
        .with_num_threads(128) // one per pooled connection: the dispatcher sends in parallel
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, mailbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_and_email_each_arrive_once_over_real_http_and_smtp() {
    let s = setup(Faults::default()).await;
    let (port, mailbox) = smtp_server();
    let smtp = [
        (
            "OUTAGECAST_SMTP_URL",
            format!("smtp://127.0.0.1:{port}?tls=none"),
        ),
        (
            "OUTAGECAST_EMAIL_FROM",
            "Helsinki Water <noreply@vesi.example.fi>".to_string(),
        ),
        (
            "OUTAGECAST_PUBLIC_URL",
            "https://notify.example.fi".to_string(),
        ),
        (
            "OUTAGECAST_UNSUBSCRIBE_SECRET",
            "test-secret-0123456789abcdef".to_string(),
        ),
    ];
    s.json(&["import", "customers", SAMPLE, "--json"]).await;
    let declared = s
        .json(&[
            "incident",
            "declare",
            "--kind",
            "water",
            "--cause",
            "burst water main",
            "--circle",
            "24.9414,60.1710,300",
            "--json",
        ])
        .await;
    let id = declared["id"].as_i64().unwrap().to_string();
    let sms = declared["notices"]["sms"].as_u64().unwrap();
    let emails = declared["notices"]["email"].as_u64().unwrap();
    assert!(emails > 10);

    let run = s.notify_with(10_000, 5.0, &smtp).await;
    assert_eq!(run["sent"], sms + emails);
    assert_eq!(s.gateway.accepted() as u64, sms);
    let received = mailbox.delivered.lock().unwrap().clone();
    assert_eq!(
        received.len() as u64,
        emails,
        "one email per planned notice"
    );
    let distinct: std::collections::HashSet<&String> = received.iter().flatten().collect();
    assert_eq!(distinct.len() as u64, emails, "each mailbox once");
    let report = s.json(&["incident", "report", &id, "--json"]).await;
    assert_eq!(count(&report, "email", "sent"), emails);

    let again = s.notify_with(10_000, 5.0, &smtp).await;
    assert_eq!(again["sent"], 0, "a second run sends nothing");
    assert_eq!(mailbox.delivered.lock().unwrap().len() as u64, emails);
}
