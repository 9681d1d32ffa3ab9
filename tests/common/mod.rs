//! The helper every end-to-end test of the CLI shares: a fresh database in a temporary
//! directory and the real binary run against it with a clean environment.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/helsinki/customers.csv");

/// A fresh database in its own temporary directory.
pub struct Db {
    pub dir: tempfile::TempDir,
}

impl Db {
    pub fn new() -> Self {
        Db {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("test.db")
    }

    /// Like [`Db::file`], as a string for an argument list.
    pub fn file_str(&self, name: &str, contents: &str) -> String {
        self.file(name, contents).to_str().unwrap().to_string()
    }

    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Runs the binary against this database with a clean environment.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outagecast"));
        for (k, _) in std::env::vars() {
            if k.starts_with("OUTAGECAST_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--db").arg(self.path()).args(args);
        cmd.output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs a command that must fail; returns its one-line error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    }

    pub fn with_sample() -> Self {
        let db = Db::new();
        db.ok(&["import", "customers", SAMPLE]);
        db
    }
}

/// The Twilio-shaped gateway stand-in on a loopback port, for the tests that send SMS through
/// the real binary. It stops when this is dropped.
pub struct StandIn {
    pub gateway: std::sync::Arc<outagecast_gateway_standin::Gateway>,
    pub base_url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The account the stand-in accepts.
pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "test-token";

impl StandIn {
    pub async fn start(faults: outagecast_gateway_standin::Faults) -> Self {
        outagecast_dispatch::install_crypto_provider();
        let gateway = outagecast_gateway_standin::Gateway::new(SID, TOKEN, faults);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(outagecast_gateway_standin::serve(
            listener,
            gateway.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        StandIn {
            gateway,
            base_url,
            _stop: stop,
        }
    }

    /// The real binary with a clean environment (no inherited `OUTAGECAST_*`) sending SMS to
    /// this stand-in from `from` at `rate` segments a second; the caller adds `--db` and the
    /// command.
    pub fn command(&self, from: &str, rate: u32) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_outagecast"));
        for (k, _) in std::env::vars() {
            if k.starts_with("OUTAGECAST_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("OUTAGECAST_SMS_BASE_URL", &self.base_url)
            .env("OUTAGECAST_SMS_ACCOUNT_SID", SID)
            .env("OUTAGECAST_SMS_AUTH_TOKEN", TOKEN)
            .env("OUTAGECAST_SMS_FROM", from)
            .env("OUTAGECAST_SMS_RATE", rate.to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }
}

/// Waits until `check` holds, failing the test with `what` after `within`.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The sum of a report's counts for `channel` and `status`.
pub fn count(report: &Value, channel: &str, status: &str) -> u64 {
    report["counts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["channel"] == channel && c["status"] == status)
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

/// A town of `phones` customers with a mobile each and `emails` with only an email, all at
/// one point in central Helsinki (every tenth a priority customer), as a customer CSV.
pub fn town_csv(path: &std::path::Path, phones: usize, emails: usize) {
    let mut out = String::from("account_id,lon,lat,address,phone,email,language,priority\n");
    for i in 0..phones {
        out.push_str(&format!(
            "P-{i:06},24.9414,60.1710,Kaivokatu 1,+35848{:07},,fi,{}\n",
            1_000_000 + i,
            i % 10 == 0
        ));
    }
    for i in 0..emails {
        out.push_str(&format!(
            "E-{i:06},24.9414,60.1710,Kaivokatu 1,,resident{i}@example.fi,fi,false\n"
        ));
    }
    std::fs::write(path, out).unwrap();
}

/// `incident declare` of a burst main over the whole town of [`town_csv`] (`n` customers,
/// confirmed), with `--json`.
pub fn declare_town(n: usize) -> Vec<String> {
    [
        "incident",
        "declare",
        "--kind",
        "water",
        "--cause",
        "burst main",
        "--circle",
        "24.9414,60.1710,50",
        "--confirm",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([n.to_string(), "--json".to_string()])
    .collect()
}

/// Starts `serve` (already given `--listen 127.0.0.1:0` and its other flags) with stdout
/// piped; returns the child and its HTTP address. Stdout keeps being read, so serve never
/// meets a closed pipe.
pub async fn spawn_serve(mut cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let http = first
        .strip_prefix("http listening on ")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, http)
}
