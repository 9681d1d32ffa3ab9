//! Outage reports from customers: the number's accounts and locations, repeats counted within
//! the window, newest first with `since` and `limit`, old reports forgotten.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use outagecast_core::contact::Channel;
use outagecast_store::{
    MAX_REPORT_TEXT_CHARS, NewReport, REPORT_DAYS, ReportQuery, ReportedAccount, Store,
};

use crate::contract;
use crate::support::{customer_at, seed};

contract!(
    a_report_keeps_the_numbers_accounts_and_where_they_are,
    a_repeat_within_the_window_is_counted_not_added,
    concurrent_reports_from_one_number_are_one_row,
    reports_are_listed_newest_first_since_and_bounded,
    old_reports_are_forgotten,
);

const SHARED: &str = "+358401000001";
const OTHER: &str = "+358401000002";
const UNKNOWN: &str = "+358409999999";

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn report(phone: &str, at: DateTime<Utc>) -> NewReport<'_> {
    NewReport {
        phone,
        text: "OUT",
        channel: Channel::Sms,
        at,
    }
}

fn all() -> ReportQuery {
    ReportQuery {
        since: None,
        limit: 100,
    }
}

async fn a_report_keeps_the_numbers_accounts_and_where_they_are(store: &Store) {
    seed(
        store,
        &[
            customer_at("B-2", "24.9500", SHARED, ""),
            customer_at("A-1", "24.9414", SHARED, ""),
            customer_at("C-3", "24.9600", OTHER, ""),
        ],
    )
    .await;
    let t = now();
    let long = format!("  Vika {}\u{7}", "x".repeat(1000));
    let done = store
        .record_report(NewReport {
            phone: SHARED,
            text: &long,
            channel: Channel::Sms,
            at: t,
        })
        .await
        .unwrap();
    assert!(done.new);
    assert_eq!((done.repeats, done.accounts), (0, 2));
    let unknown = store.record_report(report(UNKNOWN, t)).await.unwrap();
    assert!(unknown.new && unknown.accounts == 0);
    assert_ne!(unknown.id, done.id);

    let reports = store.outage_reports(all()).await.unwrap();
    assert_eq!(reports.len(), 2);
    let shared = reports.iter().find(|r| r.id == done.id).unwrap();
    assert_eq!(shared.phone, SHARED);
    assert_eq!(shared.channel, Channel::Sms);
    assert_eq!((shared.received_at, shared.last_at), (t, t));
    assert_eq!(
        shared.accounts,
        vec![
            ReportedAccount {
                account_id: "A-1".into(),
                lon: 24.9414,
                lat: 60.171,
            },
            ReportedAccount {
                account_id: "B-2".into(),
                lon: 24.95,
                lat: 60.171,
            },
        ]
    );
    assert!(shared.text.starts_with("Vika xxx"));
    assert_eq!(shared.text.chars().count(), MAX_REPORT_TEXT_CHARS);
    let unknown = reports.iter().find(|r| r.id == unknown.id).unwrap();
    assert!(unknown.accounts.is_empty());
    assert_eq!((unknown.text.as_str(), unknown.repeats), ("OUT", 0));
}

async fn a_repeat_within_the_window_is_counted_not_added(store: &Store) {
    seed(store, &[customer_at("A-1", "24.9414", SHARED, "")]).await;
    let t = now();
    let minutes = |m: i64| t + Duration::minutes(m);
    let first = store.record_report(report(SHARED, t)).await.unwrap();
    // 10 and 35 minutes later: each within 30 minutes of the last message.
    for (m, repeats) in [(10, 1), (35, 2)] {
        let again = store
            .record_report(report(SHARED, minutes(m)))
            .await
            .unwrap();
        assert_eq!(
            (again.id, again.new, again.repeats),
            (first.id, false, repeats)
        );
    }
    // Another number is its own report.
    let other = store
        .record_report(report(OTHER, minutes(36)))
        .await
        .unwrap();
    assert!(other.new);
    let reports = store.outage_reports(all()).await.unwrap();
    assert_eq!(reports.len(), 2);
    let shared = reports.iter().find(|r| r.id == first.id).unwrap();
    assert_eq!(
        (shared.received_at, shared.last_at, shared.repeats),
        (t, minutes(35), 2)
    );
    // Over half an hour after its last message: a new report.
    let later = store
        .record_report(report(SHARED, minutes(70)))
        .await
        .unwrap();
    assert!(later.new && later.id != first.id);
    let reports = store.outage_reports(all()).await.unwrap();
    assert_eq!(
        reports.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![later.id, other.id, first.id]
    );
}

async fn concurrent_reports_from_one_number_are_one_row(store: &Store) {
    let t = now();
    let reports: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_report(report(SHARED, t + Duration::seconds(i)))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for r in reports {
        outcomes.push(r.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.new).count(), 1);
    let rows = store.outage_reports(all()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].repeats, 7);
    assert_eq!(rows[0].last_at, t + Duration::seconds(7));
}

async fn reports_are_listed_newest_first_since_and_bounded(store: &Store) {
    let t = now();
    let phones: Vec<String> = (0..5).map(|i| format!("+35840100010{i}")).collect();
    for (i, phone) in phones.iter().enumerate() {
        store
            .record_report(report(phone, t + Duration::minutes(i as i64)))
            .await
            .unwrap();
    }
    let listed = |since, limit| store.outage_reports(ReportQuery { since, limit });
    let newest: Vec<String> = listed(None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.phone)
        .collect();
    assert_eq!(newest, vec![phones[4].clone(), phones[3].clone()]);
    let since = listed(Some(t + Duration::minutes(2)), 100).await.unwrap();
    assert_eq!(since.len(), 3);
    assert!(since.windows(2).all(|w| w[0].last_at >= w[1].last_at));
    // A limit of 0 is read as 1, not as "none".
    assert_eq!(listed(None, 0).await.unwrap().len(), 1);
    assert!(
        listed(Some(t + Duration::hours(1)), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn old_reports_are_forgotten(store: &Store) {
    let t = now();
    store
        .record_report(report(SHARED, t - Duration::days(REPORT_DAYS + 1)))
        .await
        .unwrap();
    store
        .record_report(report(OTHER, t - Duration::days(REPORT_DAYS - 1)))
        .await
        .unwrap();
    assert_eq!(store.outage_reports(all()).await.unwrap().len(), 2);
    // The next report prunes the one older than the retention.
    store.record_report(report(UNKNOWN, t)).await.unwrap();
    let kept: Vec<String> = store
        .outage_reports(all())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.phone)
        .collect();
    assert_eq!(kept, vec![UNKNOWN.to_string(), OTHER.to_string()]);
}
