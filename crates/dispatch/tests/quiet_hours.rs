//! Quiet hours in each customer's own time zone: the dispatcher against a real SQLite store,
//! with a pinned clock and a transport that records what it was asked to send.
//!
//! The customers' zones come from their service locations (all have Finnish mobile numbers,
//! so the phone number would not tell them apart).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{CustomerRecord, RecordRules};
use outagecast_core::incident::{Cause, DraftParts, IncidentDraft, IncidentKind, Severity};
use outagecast_core::message::Locale;
use outagecast_core::notice::plan_recipients;
use outagecast_dispatch::transport::{LookupError, OutgoingMessage, SendOutcome, Transport};
use outagecast_dispatch::worker::{Dispatcher, QuietHours, Unconfigured, WorkerConfig};
use outagecast_store::{Declaration, Store};

const HELSINKI: &str = "+358401000001";
const NEW_YORK: &str = "+358401000002";
const HELSINKI_PRIORITY: &str = "+358401000003";

/// 20:00 UTC on 15 January: 22:00 in Helsinki (EET), 15:00 in New York (EST).
fn helsinki_night() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 20, 0, 0).unwrap()
}

/// 10:00 UTC on 15 January: 12:00 in Helsinki, 05:00 in New York.
fn new_york_night() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap()
}

/// Records every number it is asked to send to; accepts everything.
#[derive(Clone, Default)]
struct Recorder {
    sent: Arc<Mutex<Vec<String>>>,
}

impl Transport for Recorder {
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    async fn send(&self, m: &OutgoingMessage) -> SendOutcome {
        let mut sent = self.sent.lock().unwrap();
        sent.push(m.to.clone());
        SendOutcome::Accepted {
            provider_id: format!("SM{}", sent.len()),
        }
    }
    async fn find_sent(&self, _: &OutgoingMessage) -> Result<Option<String>, LookupError> {
        Ok(None)
    }
    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }
    fn cost(&self, _: &OutgoingMessage) -> u32 {
        1
    }
}

/// A store with three customers, declared at `now` with `severity`: one in Helsinki, one in
/// New York, and a priority customer in Helsinki.
async fn declared(now: DateTime<Utc>, severity: Severity) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
    let rules = RecordRules {
        default_region: None,
        default_language: Language::En,
    };
    let customer = |account: &str, (lon, lat): (&str, &str), phone: &str, priority: &str| {
        CustomerRecord {
            account_id: account.into(),
            lon: lon.into(),
            lat: lat.into(),
            address: format!("{account} street 1"),
            phone: phone.into(),
            email: String::new(),
            language: "en".into(),
            priority: priority.into(),
        }
        .parse(rules)
        .unwrap()
    };
    let customers = vec![
        customer("HEL", ("24.9414", "60.1710"), HELSINKI, "false"),
        customer("NYC", ("-73.9857", "40.7484"), NEW_YORK, "false"),
        customer("HEL-P", ("24.9384", "60.1699"), HELSINKI_PRIORITY, "true"),
    ];
    store
        .upsert_customers(&customers, "test", "t.csv", now)
        .await
        .unwrap();
    let ids: Vec<_> = store
        .service_points()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let loaded = store.customers(&ids).await.unwrap();
    let refs: Vec<_> = loaded.iter().map(|(id, c)| (*id, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    let draft = IncidentDraft::new(
        DraftParts {
            kind: IncidentKind::Water,
            severity,
            cause: Cause::parse("burst water main").unwrap(),
            etr: None,
            reference: None,
            area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 500.0).unwrap()),
            expires_at: None,
        },
        now,
    )
    .unwrap();
    store
        .declare(
            Declaration {
                draft: &draft,
                affected: &ids,
                plan: &plan,
                actor: "test",
                now,
                provenance: None,
            },
            &Locale {
                zone: chrono_tz::Europe::Helsinki,
                now,
            },
        )
        .await
        .unwrap();
    (store, dir)
}

/// Drains the outbox at the pinned time `clock` with quiet hours 21:00-08:00 and the utility
/// in Helsinki; returns the numbers sent to, sorted, and how many were held.
async fn drain_at(store: &Store, clock: fn() -> DateTime<Utc>) -> (Vec<String>, u64) {
    let recorder = Recorder::default();
    let mut config = WorkerConfig::new("quiet-test");
    config.quiet_hours = QuietHours::parse("21:00-08:00").unwrap();
    config.timezone = chrono_tz::Europe::Helsinki;
    config.clock = clock;
    let dispatcher: Dispatcher<Recorder, Unconfigured> =
        Dispatcher::new(store.clone(), Some((recorder.clone(), 1000)), None, config);
    dispatcher.drain().await.unwrap();
    let held = dispatcher
        .progress()
        .held
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut sent = recorder.sent.lock().unwrap().clone();
    sent.sort();
    (sent, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_follow_each_customers_time_zone() {
    // Night in Helsinki, afternoon in New York: only New York (and the priority customer).
    let (store, _dir) = declared(helsinki_night(), Severity::Moderate).await;
    let (sent, held) = drain_at(&store, helsinki_night).await;
    assert_eq!(sent, vec![NEW_YORK, HELSINKI_PRIORITY]);
    assert_eq!(held, 1, "the Helsinki customer waits for the morning");

    // Midday in Helsinki, night in New York: only Helsinki.
    let (store, _dir) = declared(new_york_night(), Severity::Moderate).await;
    let (sent, held) = drain_at(&store, new_york_night).await;
    assert_eq!(sent, vec![HELSINKI, HELSINKI_PRIORITY]);
    assert_eq!(held, 1, "the New York customer waits for the morning");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_notice_goes_when_the_customers_morning_comes() {
    let (store, _dir) = declared(helsinki_night(), Severity::Moderate).await;
    let (sent, _) = drain_at(&store, helsinki_night).await;
    assert_eq!(sent, vec![NEW_YORK, HELSINKI_PRIORITY]);
    // 06:30 UTC the next day is 08:30 in Helsinki (and 01:30 in New York): now it goes.
    fn helsinki_morning() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 16, 6, 30, 0).unwrap()
    }
    let (sent, held) = drain_at(&store, helsinki_morning).await;
    assert_eq!((sent, held), (vec![HELSINKI.to_string()], 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severe_incidents_ignore_quiet_hours_everywhere() {
    let (store, _dir) = declared(helsinki_night(), Severity::Severe).await;
    let (sent, held) = drain_at(&store, helsinki_night).await;
    assert_eq!(sent, vec![HELSINKI, NEW_YORK, HELSINKI_PRIORITY]);
    assert_eq!(held, 0);
}
