//! Several engine nodes on one PostgreSQL database (issue 7): two `outagecast serve` processes
//! share a 100,000-notice batch through `FOR UPDATE SKIP LOCKED` claims, one is killed with
//! SIGKILL midway, and the other finishes the batch. Every notice reaches the gateway stand-in
//! exactly once and both nodes sent a share.
//!
//! Also: a declaration made through one node arms the IVR of the other within a second, and a
//! restore disarms it (LISTEN/NOTIFY with a periodic reconcile behind it).
//!
//! Needs the test cluster named by `OUTAGECAST_TEST_PG_URL` (`scripts/test` starts one); each
//! test makes a database of its own there.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outagecast_gateway_standin::{Faults, Gateway};
use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;

use common::{SAMPLE, StandIn, count, declare_town, eventually, spawn_serve, town_csv};

/// A database of its own on the test cluster, or `None` when there is no cluster (a failure
/// when `OUTAGECAST_REQUIRE_PG=1`).
async fn fresh_database(test: &str) -> Option<String> {
    let url = match std::env::var("OUTAGECAST_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("OUTAGECAST_REQUIRE_PG").as_deref() != Ok("1"),
                "{test}: OUTAGECAST_REQUIRE_PG=1 but OUTAGECAST_TEST_PG_URL is not set"
            );
            eprintln!("{test}: skipped, OUTAGECAST_TEST_PG_URL is not set");
            return None;
        }
    };
    let name = format!(
        "mn_{test}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

struct Cluster {
    db: String,
    standin: StandIn,
    gateway: Arc<Gateway>,
}

/// One `serve` process and the address it listens on.
struct Node {
    child: Child,
    http: String,
}

impl Cluster {
    async fn start(db: String) -> Self {
        let standin = StandIn::start(Faults::default()).await;
        Cluster {
            db,
            gateway: standin.gateway.clone(),
            standin,
        }
    }

    /// The binary with a clean environment, this cluster's database and the gateway;
    /// `from` is the node's sender number, so the gateway can tell the nodes apart.
    fn command(&self, args: &[&str], from: &str) -> Command {
        let mut cmd = self.standin.command(from, 1_000_000);
        cmd.env("OUTAGECAST_SMS_TIMEOUT", "2")
            .env("OUTAGECAST_PUBLIC_URL", "https://notify.example.fi")
            .env("OUTAGECAST_DEFAULT_REGION", "FI")
            .arg("--db")
            .arg(&self.db)
            .args(args);
        cmd
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.command(args, "+358480000000").output().await.unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Starts `serve` with short leases, so a dead node's claims come back within seconds.
    async fn node(&self, from: &str, workers: bool) -> Node {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--agi-listen",
            "127.0.0.1:0",
            "--lease",
            "2",
        ];
        if !workers {
            args.push("--no-workers");
        }
        let mut child = self
            .command(&args, from)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let http = first
            .strip_prefix("http listening on ")
            .unwrap_or_else(|| panic!("{first:?}"))
            .to_string();
        let node = Node { child, http };
        let url = format!("http://{}/healthz", node.http);
        eventually(Duration::from_secs(30), "/healthz is 200", || async {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
        })
        .await;
        node
    }
}

impl Node {
    /// The lookup with an `ivr`-role `token`.
    async fn lookup(&self, caller: &str, token: &str) -> Value {
        reqwest::Client::new()
            .get(format!(
                "http://{}/v1/ivr/lookup?caller={caller}",
                self.http
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// `n` customers at one spot, each with a phone of their own.
fn synthetic_csv(path: &std::path::Path, n: usize) {
    let mut out = String::from("account_id,lon,lat,address,phone,email,language,priority\n");
    for i in 0..n {
        out.push_str(&format!(
            "NODE-{i:06},24.9414,60.1710,Kaivokatu 1,+35848{:07},,fi,false\n",
            1_000_000 + i
        ));
    }
    std::fs::write(path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_100k_notices_and_one_survives_the_others_kill_9() {
    const N: usize = 100_000;
    let Some(db) = fresh_database("share").await else {
        return;
    };
    let cluster = Cluster::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bulk.csv");
    synthetic_csv(&csv, N);
    let imported = cluster
        .json(&["import", "customers", csv.to_str().unwrap(), "--json"])
        .await;
    assert_eq!(imported["inserted"], N);
    let declared = cluster
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
            &N.to_string(),
            "--json",
        ])
        .await;
    assert_eq!(declared["notices"]["sms"], N);
    let id = declared["id"].as_i64().unwrap().to_string();

    const FROM_A: &str = "+358480000001";
    const FROM_B: &str = "+358480000002";
    let mut a = cluster.node(FROM_A, true).await;
    let b = cluster.node(FROM_B, true).await;
    let gateway = cluster.gateway.clone();
    eventually(
        Duration::from_secs(300),
        "a third of the batch sent, by both nodes",
        || async {
            gateway.accepted() >= N / 3
                && gateway.accepted_from(FROM_A) > 0
                && gateway.accepted_from(FROM_B) > 0
        },
    )
    .await;
    a.child.start_kill().unwrap(); // SIGKILL: no chance to record or release anything.
    a.child.wait().await.unwrap();
    let at_kill = gateway.accepted();
    assert!(at_kill < N, "node A was killed before the end ({at_kill})");

    eventually(
        Duration::from_secs(300),
        "node B finished the batch",
        || async { gateway.accepted() >= N },
    )
    .await;
    // Node B records its last outcomes, then the store agrees with the gateway.
    eventually(Duration::from_secs(60), "every notice recorded", || async {
        let report = cluster.json(&["incident", "report", &id, "--json"]).await;
        count(&report, "sms", "sent") == N as u64
    })
    .await;
    let from_a = gateway.accepted_from(FROM_A);
    let from_b = gateway.accepted_from(FROM_B);
    eprintln!("node A sent {from_a} before SIGKILL at {at_kill} accepted; node B sent {from_b}");
    assert_eq!(gateway.accepted(), N, "every notice reached the gateway");
    assert_eq!(gateway.duplicates(), 0, "no notice was sent twice");
    assert!(from_a > 0 && from_b > 0, "both nodes sent a share");
    assert_eq!(from_a + from_b, N);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_on_one_node_arms_the_other_within_a_second() {
    let Some(db) = fresh_database("ivr").await else {
        return;
    };
    let cluster = Cluster::start(db).await;
    cluster
        .json(&["import", "customers", SAMPLE, "--json"])
        .await;
    let a = cluster.node("+358480000001", false).await;
    let b = cluster.node("+358480000002", false).await;
    // The phone system's token: the lookup is closed without one.
    let made = cluster
        .json(&[
            "token", "create", "--role", "ivr", "--name", "pbx", "--json",
        ])
        .await;
    let token = made["token"].as_str().unwrap().to_string();

    let declared = cluster
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
    let caller = first_armed_phone(&cluster, &id).await;

    // Both nodes learn of a declaration made by a third process within a second.
    let declared_at = Instant::now();
    for node in [&a, &b] {
        eventually(Duration::from_secs(1), "armed on every node", || async {
            node.lookup(&caller, &token).await["armed"] == true
        })
        .await;
    }
    eprintln!(
        "armed on both nodes {:?} after the declaration returned",
        declared_at.elapsed()
    );

    cluster.json(&["incident", "cancel", &id, "--json"]).await;
    let cancelled_at = Instant::now();
    for node in [&a, &b] {
        eventually(Duration::from_secs(1), "disarmed on every node", || async {
            node.lookup(&caller, &token).await["armed"] == false
        })
        .await;
    }
    eprintln!(
        "disarmed on both nodes {:?} after the cancel returned",
        cancelled_at.elapsed()
    );
}

/// A phone number the incident armed, read from its report.
async fn first_armed_phone(cluster: &Cluster, id: &str) -> String {
    let report = cluster.json(&["incident", "report", id, "--json"]).await;
    report["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["channel"] == "sms")
        .and_then(|r| r["address"].as_str())
        .unwrap_or_else(|| panic!("no SMS recipient in {report}"))
        .to_string()
}

/// Imports a town of `n` phones ([`town_csv`]) and declares a burst over it.
async fn declared_town(cluster: &Cluster, dir: &std::path::Path, n: usize) -> Value {
    let csv = dir.join("town.csv");
    town_csv(&csv, n, 0);
    cluster
        .json(&["import", "customers", csv.to_str().unwrap(), "--json"])
        .await;
    let declare = declare_town(n);
    cluster
        .json(&declare.iter().map(String::as_str).collect::<Vec<_>>())
        .await
}

/// A cluster of this test's own (so that restarting it disturbs no other test), stopped when
/// dropped.
struct PrivateCluster {
    state: tempfile::TempDir,
    url: String,
}

impl PrivateCluster {
    /// `None` when the tests have no PostgreSQL (a failure when `OUTAGECAST_REQUIRE_PG=1`).
    fn start(test: &str) -> Option<Self> {
        if std::env::var("OUTAGECAST_TEST_PG_URL").map_or(true, |u| u.is_empty()) {
            assert!(
                std::env::var("OUTAGECAST_REQUIRE_PG").as_deref() != Ok("1"),
                "{test}: OUTAGECAST_REQUIRE_PG=1 but OUTAGECAST_TEST_PG_URL is not set"
            );
            return None;
        }
        let state = tempfile::tempdir().unwrap();
        let out = Self::script(&state, &["start"]);
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(PrivateCluster { state, url })
    }

    fn script(state: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-cluster"
        ))
        .args(args)
        .env("OUTAGECAST_PG_STATE", state.path().join("state"))
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg-test-cluster {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-cluster"
        ))
        .arg("stop")
        .env("OUTAGECAST_PG_STATE", self.state.path().join("state"))
        .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_mid_send_pauses_dispatch_and_it_resumes_by_itself() {
    const N: usize = 1500;
    const RATE: u32 = 400;
    let Some(pg) = PrivateCluster::start("restart") else {
        return;
    };
    let cluster = Cluster::start(pg.url.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let declared = declared_town(&cluster, dir.path(), N).await;
    let id = declared["id"].as_i64().unwrap().to_string();
    let mut cmd = cluster.standin.command("+358480000000", RATE);
    cmd.env("OUTAGECAST_SMS_TIMEOUT", "2")
        .env("OUTAGECAST_PUBLIC_URL", "https://notify.example.fi")
        .args([
            "--db",
            &pg.url,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--agi-listen",
            "127.0.0.1:0",
            "--lease",
            "2",
        ])
        .stderr(Stdio::null());
    let (mut child, http) = spawn_serve(cmd).await;
    let gateway = cluster.gateway.clone();
    eventually(Duration::from_secs(30), "sending started", || async {
        gateway.accepted() >= 300
    })
    .await;

    // The database restarts (a failover, a minor upgrade): 4 s down, every session cut off.
    let dispatch = format!("http://{http}/healthz/dispatch");
    let watcher = tokio::spawn(async move {
        let mut saw_503 = false;
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until && !saw_503 {
            saw_503 = reqwest::get(&dispatch)
                .await
                .is_ok_and(|r| r.status().as_u16() == 503);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        saw_503
    });
    let state = pg.state.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-cluster"
        ))
        .args(["restart", "4"])
        .env("OUTAGECAST_PG_STATE", state.join("state"))
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await
    .unwrap();
    let back = Instant::now();
    let at_restart = cluster.gateway.accepted();
    eventually(
        Duration::from_secs(10),
        "sending resumes after the restart",
        || async { gateway.accepted() > at_restart },
    )
    .await;
    eprintln!(
        "resumed {:?} after PostgreSQL was back ({at_restart} sent before)",
        back.elapsed()
    );
    eventually(Duration::from_secs(60), "every notice sent", || async {
        gateway.accepted() >= N
    })
    .await;
    assert!(
        watcher.await.unwrap(),
        "/healthz/dispatch said 503 while the database was down"
    );
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    assert_eq!(cluster.gateway.duplicates(), 0, "nothing twice");
    let report = cluster.json(&["incident", "report", &id, "--json"]).await;
    assert_eq!(count(&report, "sms", "sent"), N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_and_a_gateway_that_cannot_be_asked_tell_everyone_when_one_is_killed() {
    const N: usize = 5124;
    let Some(db) = fresh_database("nolookup").await else {
        return;
    };
    let cluster = Cluster::start(db).await;
    cluster.gateway.set_lookup(false);
    let dir = tempfile::tempdir().unwrap();
    let declared = declared_town(&cluster, dir.path(), N).await;
    let id = declared["id"].as_i64().unwrap().to_string();
    let mut a = cluster.node("+358480000001", true).await;
    let b = cluster.node("+358480000002", true).await;
    let gateway = cluster.gateway.clone();
    eventually(Duration::from_secs(120), "a third sent", || async {
        gateway.accepted() >= N / 3
    })
    .await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let killed = Instant::now();
    let told = || {
        let mut phones = std::collections::HashSet::new();
        for m in gateway.messages() {
            phones.insert(m.to);
        }
        phones.len()
    };
    eventually(Duration::from_secs(120), "every phone told", || async {
        told() >= N
    })
    .await;
    eprintln!(
        "every phone told {:?} after node A's SIGKILL",
        killed.elapsed()
    );
    let report = loop {
        let report = cluster.json(&["incident", "report", &id, "--json"]).await;
        if count(&report, "sms", "sent") == N as u64 {
            break report;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "every notice recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let twice = gateway.duplicates();
    let possible = report["possible_duplicates"].as_u64().unwrap() as usize;
    eprintln!("{twice} sent twice, {possible} counted as possible duplicates");
    assert!(twice <= N / 100, "at most 1% twice ({twice})");
    assert!(twice <= possible, "every duplicate is counted");
    drop(b);
}
