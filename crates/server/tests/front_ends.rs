//! The three IVR front ends served in-process on port 0, over real sockets, against a store
//! that another connection pool (as another process would) changes underneath.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_core::contact::Language;
use outagecast_core::customer::{Customer, CustomerId, CustomerRecord, RecordRules};
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, IncidentChanges, IncidentDraft, IncidentId, IncidentKind,
    Severity,
};
use outagecast_core::notice::plan_recipients;
use outagecast_ivr::IndexSettings;
use outagecast_ivr::twiml::MenuUrl;
use outagecast_server::{AgiSettings, Listeners, ServeSettings, run};
use outagecast_store::{Store, Transition};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

// The store's test fixtures: seeding customers.
#[allow(dead_code)]
#[path = "../../store/src/fixtures.rs"]
mod fixtures;

const AFFECTED: &str = "+358481111111";
const AFFECTED_SV: &str = "+358482222222";
const ELSEWHERE: &str = "+358483333333";

fn customer(account: &str, phone: &str, language: &str) -> Customer {
    CustomerRecord {
        account_id: account.into(),
        lon: "24.9414".into(),
        lat: "60.1710".into(),
        address: "Kaivokatu 1, Helsinki".into(),
        phone: phone.into(),
        email: String::new(),
        language: language.into(),
        priority: "false".into(),
        channel: String::new(),
    }
    .parse(RecordRules {
        default_region: None,
        default_language: Language::Fi,
    })
    .unwrap()
}

/// A store with three customers, two of them in a declared water outage.
async fn store_with_incident(path: &std::path::Path) -> (Store, IncidentId) {
    let store = Store::open_path(path).await.unwrap();
    let now = Utc::now();
    let customers = [
        customer("A", AFFECTED, "fi"),
        customer("B", AFFECTED_SV, "sv"),
        customer("C", ELSEWHERE, "en"),
    ];
    let loaded = fixtures::seed(&store, &customers).await;
    // The area is not consulted here: the plan says who is affected (A and B).
    let affected: Vec<(CustomerId, &Customer)> = loaded
        .iter()
        .filter(|(_, c)| c.account_id().as_str() != "C")
        .map(|(i, c)| (*i, c))
        .collect();
    let ids: Vec<CustomerId> = affected.iter().map(|(i, _)| *i).collect();
    let plan = plan_recipients(&affected, |_, _| false);
    let draft = IncidentDraft::new(
        DraftParts {
            kind: IncidentKind::Water,
            severity: Severity::Severe,
            cause: Cause::parse("burst water main on Kaivokatu").unwrap(),
            etr: Some(now + TimeDelta::hours(2)),
            reference: None,
            area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 500.0).unwrap()),
            expires_at: None,
        },
        now,
    )
    .unwrap();
    let id = fixtures::declare_draft(&store, &draft, &ids, &plan, now)
        .await
        .unwrap()
        .incident
        .id;
    (store, id)
}

struct Server {
    http: SocketAddr,
    agi: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<outagecast_server::Result<()>>,
    client: reqwest::Client,
    /// An `ivr`-role token (the lookup) and a `webhook`-role one (the voice webhook, as the
    /// Basic password of Twilio's webhook URL): the routes are closed without them.
    ivr: String,
    webhook: String,
}

impl Server {
    async fn start(store: Store, settings: ServeSettings) -> Server {
        let (ivr, webhook) = (
            TokenSecret::generate([1; 32]),
            TokenSecret::generate([2; 32]),
        );
        for (name, role, secret) in [
            ("phone-system", Role::Ivr, &ivr),
            ("twilio", Role::Webhook, &webhook),
        ] {
            store
                .create_token(name, role, secret, "test", Utc::now())
                .await
                .unwrap();
        }
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let agi = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (http_addr, agi_addr) = (http.local_addr().unwrap(), agi.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(
            Listeners { http, agi },
            store,
            settings,
            axum::Router::new(),
            async {
                let _ = stopped.await;
            },
        ));
        // reqwest's rustls backend needs a process-wide provider even for plain http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = Server {
            http: http_addr,
            agi: agi_addr,
            stop: Some(stop),
            task,
            client: reqwest::Client::new(),
            ivr: ivr.expose().to_string(),
            webhook: webhook.expose().to_string(),
        };
        server
            .eventually(Duration::from_secs(5), "/healthz answers 200", || async {
                server.get_status("/healthz").await == 200
            })
            .await;
        server
    }

    async fn get_status(&self, path: &str) -> u16 {
        match self
            .client
            .get(format!("http://{}{path}", self.http))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    async fn lookup(&self, caller: &str) -> Value {
        let r = self
            .client
            .get(format!("http://{}/v1/ivr/lookup", self.http))
            .bearer_auth(&self.ivr)
            .query(&[("caller", caller)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn twilio(&self, from: &str) -> (String, String) {
        let r = self
            .client
            .post(format!("http://{}/v1/ivr/twilio/voice", self.http))
            .basic_auth("twilio", Some(&self.webhook))
            .form(&[("From", from), ("To", "+35898765432"), ("CallSid", "CA123")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        (ct, r.text().await.unwrap())
    }

    /// A FastAGI session exactly as Asterisk runs one; returns the variables set.
    async fn agi(&self, callerid: &str) -> Vec<(String, String)> {
        let stream = TcpStream::connect(self.agi).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut env = String::new();
        for (k, v) in [
            ("agi_network", "yes"),
            ("agi_network_script", "outagecast"),
            ("agi_request", "agi://127.0.0.1/outagecast"),
            ("agi_channel", "PJSIP/trunk-00000001"),
            ("agi_language", "fi"),
            ("agi_type", "PJSIP"),
            ("agi_uniqueid", "1764061200.1"),
            ("agi_version", "20.5.0"),
            ("agi_callerid", callerid),
            ("agi_calleridname", "unknown"),
            ("agi_callingpres", "0"),
            ("agi_dnid", "0800123456"),
            ("agi_context", "from-trunk"),
            ("agi_extension", "0800123456"),
            ("agi_priority", "2"),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""),
            ("agi_threadid", "140536"),
        ] {
            env.push_str(&format!("{k}: {v}\n"));
        }
        env.push('\n');
        write.write_all(env.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(read).lines();
        let mut vars = Vec::new();
        while let Some(line) = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .unwrap()
            .unwrap()
        {
            let rest = line
                .strip_prefix("SET VARIABLE ")
                .unwrap_or_else(|| panic!("unexpected command {line:?}"));
            let (name, quoted) = rest.split_once(' ').unwrap();
            vars.push((name.to_string(), unquote(quoted)));
            write.write_all(b"200 result=1\n").await.unwrap();
        }
        vars
    }

    /// Polls `check` until it holds, failing after `within`.
    async fn eventually<F, Fut>(&self, within: Duration, what: &str, mut check: F) -> Duration
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        loop {
            if check().await {
                return start.elapsed();
            }
            assert!(start.elapsed() < within, "not within {within:?}: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("shuts down promptly")
            .unwrap()
            .unwrap();
    }
}

/// How Asterisk's argument parser reads one double-quoted argument.
fn unquote(arg: &str) -> String {
    let inner = arg.strip_prefix('"').unwrap();
    let mut out = String::new();
    let mut escaped = false;
    for c in inner.chars() {
        match (c, escaped) {
            ('\\', false) => escaped = true,
            ('"', false) => break,
            (c, _) => {
                out.push(c);
                escaped = false;
            }
        }
    }
    out
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    vars.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} not set in {vars:?}"))
}

fn settings(grace: Option<TimeDelta>) -> ServeSettings {
    ServeSettings {
        default_region: Some(outagecast_core::contact::Region::parse("FI").unwrap()),
        menu_url: Some(MenuUrl::parse("https://ivr.example.com/menu?lang=fi&x=1").unwrap()),
        index: IndexSettings {
            restored_grace: grace,
        },
        poll_interval: Duration::from_millis(50),
        agi: AgiSettings {
            session_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_millis(300),
            max_sessions: 16,
            ..AgiSettings::default()
        },
        ..ServeSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_end_answers_and_follows_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivr.db");
    let (store, id) = store_with_incident(&path).await;
    let server = Server::start(store, settings(Some(TimeDelta::minutes(15)))).await;

    // HTTP JSON, with the caller in several forms.
    for caller in [AFFECTED, " 358481111111", "0481111111", "00358481111111"] {
        let body = server.lookup(caller).await;
        assert_eq!(body["armed"], true, "{caller}: {body}");
        assert_eq!(body["language"], "fi");
        assert_eq!(body["incidents"][0]["id"], id.0);
        assert_eq!(body["incidents"][0]["kind"], "water");
        assert_eq!(body["incidents"][0]["status"], "declared");
        assert!(body["incidents"][0]["etr"].is_string());
        assert!(
            body["announcement"]
                .as_str()
                .unwrap()
                .contains("burst water main on Kaivokatu")
        );
    }
    let none = server.lookup(ELSEWHERE).await;
    assert_eq!(
        none,
        serde_json::json!({"armed": false, "language": null, "announcement": null, "incidents": []})
    );

    // Twilio.
    let (ct, xml) = server.twilio(AFFECTED_SV).await;
    assert_eq!(ct, "text/xml");
    assert!(
        xml.contains(r#"<Say language="sv-SE">Vi känner till vattenavbrottet"#),
        "{xml}"
    );
    assert!(
        xml.ends_with(r#"<Redirect method="POST">https://ivr.example.com/menu?lang=fi&amp;x=1</Redirect></Response>"#),
        "{xml}"
    );
    let (_, xml) = server.twilio(ELSEWHERE).await;
    assert!(!xml.contains("<Say"), "{xml}");
    assert!(xml.contains("<Redirect"), "{xml}");

    // FastAGI, with the national form Asterisk often has.
    let vars = server.agi("0481111111").await;
    assert_eq!(
        vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            "OUTAGECAST_ARMED",
            "OUTAGECAST_MESSAGE",
            "OUTAGECAST_INCIDENT",
            "OUTAGECAST_LANGUAGE"
        ]
    );
    assert_eq!(var(&vars, "OUTAGECAST_ARMED"), "1");
    assert!(var(&vars, "OUTAGECAST_MESSAGE").starts_with("Tiedämme alueellanne olevan vesikatkon"));
    assert_eq!(var(&vars, "OUTAGECAST_INCIDENT"), id.0.to_string());
    assert_eq!(var(&vars, "OUTAGECAST_LANGUAGE"), "fi");
    let vars = server.agi(ELSEWHERE).await;
    assert_eq!(var(&vars, "OUTAGECAST_ARMED"), "0");
    assert_eq!(var(&vars, "OUTAGECAST_MESSAGE"), "");

    // Another process restores the incident: within a second every front end says it is fixed
    // (the grace period), not that it is out.
    let other = Store::open_path(&path).await.unwrap();
    let now = Utc::now();
    other
        .transition(
            Transition {
                id,
                event: EventKind::Restored,
                changes: IncidentChanges::default(),
                actor: "test",
                now,
                growth: None,
                provenance: None,
            },
            &fixtures::locale(now),
        )
        .await
        .unwrap();
    let lag = server
        .eventually(
            Duration::from_secs(1),
            "the restore reaches the HTTP lookup",
            || async { server.lookup(AFFECTED).await["incidents"][0]["status"] == "restored" },
        )
        .await;
    eprintln!("restore visible after {lag:?}");
    let body = server.lookup(AFFECTED).await;
    assert_eq!(body["armed"], true);
    assert_eq!(
        body["announcement"],
        "Alueellanne ollut vesikatko on korjattu. Kiitos kärsivällisyydestänne."
    );
    let vars = server.agi(AFFECTED).await;
    assert!(var(&vars, "OUTAGECAST_MESSAGE").contains("korjattu"));
    let (_, xml) = server.twilio(AFFECTED).await;
    assert!(xml.contains("korjattu"), "{xml}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_nothing_to_announce_and_bad_peers_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_incident(&dir.path().join("ivr.db")).await;
    let server = Server::start(store, settings(None)).await;
    let not_armed = serde_json::json!({"armed": false, "language": null, "announcement": null, "incidents": []});

    for query in [
        "",
        "?caller=",
        "?caller=anonymous",
        "?caller=%FF%FE",
        "?caller=%zz",
        "?x=1&&&",
        "?caller=+",
    ] {
        let r = server
            .client
            .get(format!("http://{}/v1/ivr/lookup{query}", server.http))
            .bearer_auth(&server.ivr)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{query}");
        assert_eq!(r.json::<Value>().await.unwrap(), not_armed, "{query}");
    }
    // A '+' that the query string turned into a space still finds the caller.
    let r = server
        .client
        .get(format!(
            "http://{}/v1/ivr/lookup?caller=+358481111111",
            server.http
        ))
        .bearer_auth(&server.ivr)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["armed"], true);

    // Closed without a token, whatever the caller; each refusal says how to get in.
    let no_token = server
        .client
        .get(format!(
            "http://{}/v1/ivr/lookup?caller={AFFECTED}",
            server.http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(no_token.text().await.unwrap().contains("--role ivr"));
    let wrong_role = server
        .client
        .get(format!(
            "http://{}/v1/ivr/lookup?caller={AFFECTED}",
            server.http
        ))
        .bearer_auth(&server.webhook)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_role.status(), 403);
    let form = [("From", AFFECTED), ("CallSid", "CA1")];
    let voice = |auth: Option<&str>| {
        let r = server
            .client
            .post(format!("http://{}/v1/ivr/twilio/voice", server.http))
            .form(&form);
        match auth {
            Some(token) => r.basic_auth("twilio", Some(token)),
            None => r,
        }
        .send()
    };
    let unsigned = voice(None).await.unwrap();
    assert_eq!(unsigned.status(), 401, "unsigned, no token");
    assert!(unsigned.headers().contains_key("www-authenticate"));
    assert!(
        unsigned
            .text()
            .await
            .unwrap()
            .contains("OUTAGECAST_SMS_AUTH_TOKEN")
    );
    assert_eq!(voice(Some(&server.ivr)).await.unwrap().status(), 403);

    // Twilio without a form, or with nonsense: still TwiML.
    for body in ["", "From=", "From=client%3Aalice", "\u{0}\u{1}garbage&&=="] {
        let r = server
            .client
            .post(format!("http://{}/v1/ivr/twilio/voice", server.http))
            .basic_auth("twilio", Some(&server.webhook))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let xml = r.text().await.unwrap();
        assert!(xml.starts_with("<?xml") && !xml.contains("<Say"), "{xml}");
    }

    // FastAGI: garbage is dropped at once, a stalled peer after the session timeout.
    let mut s = TcpStream::connect(server.agi).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(
        rest.is_empty(),
        "nothing is sent to a peer that is not Asterisk"
    );

    let mut s = TcpStream::connect(server.agi).await.unwrap();
    s.write_all(b"agi_network: yes\nagi_callerid: +3584811")
        .await
        .unwrap();
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut rest))
        .await
        .expect("the server closes a stalled session")
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));

    // Hanging up mid-session.
    let mut s = TcpStream::connect(server.agi).await.unwrap();
    s.write_all(b"agi_network: yes\nagi_callerid: +358481111111\n\n")
        .await
        .unwrap();
    let mut first = [0u8; 34];
    s.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"SET VARIABLE OUTAGECAST_ARMED \"1\"\n");
    s.write_all(b"HANGUP\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();

    // The server still answers after all that.
    let vars = server.agi(AFFECTED).await;
    assert_eq!(var(&vars, "OUTAGECAST_ARMED"), "1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lost_track_of_the_change_log_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivr.db");
    let (store, id) = store_with_incident(&path).await;
    // A slow poll, so the cancel and the prune below (milliseconds apart) almost always fall
    // between two polls; if one does poll in between, the change is simply applied normally.
    let slow = ServeSettings {
        poll_interval: Duration::from_millis(500),
        ..settings(None)
    };
    let server = Server::start(store, slow).await;
    assert_eq!(server.lookup(AFFECTED).await["armed"], true);

    // Another process cancels the incident and prunes the whole log before the server polls
    // (as if the server had been stopped for over an hour): it must notice and reload.
    let other = Store::open_path(&path).await.unwrap();
    let now = Utc::now();
    other
        .transition(
            Transition {
                id,
                event: EventKind::Cancelled,
                changes: IncidentChanges::default(),
                actor: "test",
                now,
                growth: None,
                provenance: None,
            },
            &fixtures::locale(now),
        )
        .await
        .unwrap();
    other
        .prune_ivr_changes(Utc::now() + TimeDelta::seconds(1))
        .await
        .unwrap();
    server
        .eventually(
            Duration::from_secs(1),
            "the cancel is seen after a reload",
            || async { server.lookup(AFFECTED).await["armed"] == false },
        )
        .await;
    assert_eq!(server.get_status("/healthz").await, 200);
    server.stop().await;
}

/// FastAGI takes peers from `--agi-allow` only (loopback by default): a peer outside it is
/// closed at once, before it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastagi_closes_peers_outside_the_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_incident(&dir.path().join("ivr.db")).await;
    let mut only_elsewhere = settings(None);
    only_elsewhere.agi.allow = outagecast_server::AgiAllow::parse(&["10.0.0.0/8"]).unwrap();
    let server = Server::start(store, only_elsewhere).await;
    let mut s = TcpStream::connect(server.agi).await.unwrap();
    let _ = s
        .write_all(format!("agi_network: yes\nagi_callerid: {AFFECTED}\n\n").as_bytes())
        .await;
    let mut rest = Vec::new();
    let started = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest))
        .await
        .expect("closed, not left waiting");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}
