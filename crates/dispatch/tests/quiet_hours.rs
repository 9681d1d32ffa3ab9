//! Quiet hours in each customer's own time zone: the dispatcher against a real SQLite store,
//! with a pinned clock and a transport that records what it was asked to send.
//!
//! The customers' zones come from their service locations (all have Finnish mobile numbers,
//! so the phone number would not tell them apart).

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use outagecast_core::incident::Severity;
use outagecast_dispatch::worker::{Dispatcher, QuietHours, Unconfigured, WorkerConfig};
use outagecast_store::Store;

mod support;

use support::{HELSINKI, HELSINKI_PRIORITY, NEW_YORK, Recorder, declared};

/// 20:00 UTC on 15 January: 22:00 in Helsinki (EET), 15:00 in New York (EST).
fn helsinki_night() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 20, 0, 0).unwrap()
}

/// 10:00 UTC on 15 January: 12:00 in Helsinki, 05:00 in New York.
fn new_york_night() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap()
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
