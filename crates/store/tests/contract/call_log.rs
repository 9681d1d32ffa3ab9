//! The IVR's call log and an incident's calls-avoided report.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use outagecast_core::notice::plan_recipients;
use outagecast_store::{CALL_LOG_DAYS, CallRecord, CallsAvoided, Store};

use crate::contract;
use crate::support::{customer, declare_with, seed, send_sms_except};

contract!(
    the_report_counts_the_area_callers_and_who_was_told_before,
    old_calls_are_forgotten,
);

const TOLD: &str = "+358401000001";
const NOT_TOLD: &str = "+358401000002";
const EARLY: &str = "+358401000003";
const ELSEWHERE: &str = "+358401000099";

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn call(caller: &str, at: DateTime<Utc>, announced: bool) -> CallRecord<'_> {
    CallRecord {
        caller,
        at,
        announced,
    }
}

async fn the_report_counts_the_area_callers_and_who_was_told_before(store: &Store) {
    let loaded = seed(
        store,
        &[
            customer("A", TOLD, ""),
            customer("B", NOT_TOLD, ""),
            customer("C", EARLY, ""),
        ],
    )
    .await;
    let refs: Vec<_> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    let t = now();
    let id = declare_with(store, &loaded, &plan, t)
        .await
        .unwrap()
        .incident
        .id;
    let minutes = |m: i64| t + Duration::minutes(m);
    // Only A's SMS goes out, a minute after the declaration.
    assert_eq!(
        send_sms_except(store, &[NOT_TOLD, EARLY], minutes(1)).await,
        1
    );
    let calls = [
        // C reported it half an hour before it was declared, and calls again later.
        call(EARLY, minutes(-30), false),
        call(EARLY, minutes(-90), false),
        // A calls four minutes after the SMS, twice; B, never told, calls too.
        call(TOLD, minutes(5), true),
        call(TOLD, minutes(10), true),
        call(NOT_TOLD, minutes(2), true),
        // Someone outside the area.
        call(ELSEWHERE, minutes(3), false),
    ];
    assert_eq!(store.record_calls(&calls).await.unwrap(), 6);
    assert_eq!(
        store.calls_avoided(id).await.unwrap(),
        CallsAvoided {
            callers: 2,
            heard_announcement: 2,
            told_before_calling: 1,
            median_told_before_seconds: Some(240),
            callers_before_declaration: 1,
        }
    );
    assert_eq!(store.record_calls(&[]).await.unwrap(), 0);
}

async fn old_calls_are_forgotten(store: &Store) {
    let t = now();
    let calls = [
        call(TOLD, t - Duration::days(CALL_LOG_DAYS + 1), false),
        call(TOLD, t - Duration::days(CALL_LOG_DAYS - 1), false),
    ];
    store.record_calls(&calls).await.unwrap();
    assert_eq!(store.prune_calls(t).await.unwrap(), 1);
    assert_eq!(store.prune_calls(t).await.unwrap(), 0);
}
