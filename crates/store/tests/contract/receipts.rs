//! Delivery receipts (also before the send is recorded), opt-outs that withdraw waiting
//! notices, opting back in, a contact's language.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::incident::IncidentId;
use outagecast_core::notice::{NoticeStatus, plan_recipients};
use outagecast_store::{Outcome, Receipt, ReceiptOutcome, ReportRow, Store};

use crate::contract;
use crate::support::{customer, declare_with, seed};

contract!(
    delivered_receipt_marks_the_notice_once,
    failed_receipt_records_the_reason_and_falls_back_to_email,
    a_receipt_before_the_send_is_recorded_waits_and_is_applied_then,
    an_early_delivered_receipt_is_applied_without_a_fallback,
    a_receipt_only_applies_to_a_sent_sms,
    the_fallback_skips_an_email_that_opted_out,
    opting_out_withdraws_waiting_notices_and_start_opts_back_in,
    a_notice_a_worker_holds_is_left_to_finish,
    contact_language_finds_the_customer,
);

const PHONE: &str = "+358401234567";
const EMAIL: &str = "a@example.fi";
const LEASE: Duration = Duration::from_secs(60);

/// Now, to the microsecond both backends keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One customer with a mobile and an email, declared with only the SMS planned.
async fn declared(store: &Store) -> IncidentId {
    let loaded = seed(store, &[customer("A", PHONE, EMAIL)]).await;
    let refs: Vec<_> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let mut plan = plan_recipients(&refs, |_, _| false);
    plan.recipients.retain(|r| r.channel == Channel::Sms);
    declare_with(store, &loaded, &plan, now())
        .await
        .unwrap()
        .incident
        .id
}

/// The SMS claimed and recorded as sent with `provider_id`.
async fn sent(store: &Store, provider_id: &str) -> IncidentId {
    let incident = declared(store).await;
    let claimed = store
        .claim("w", &[Channel::Sms], 10, LEASE, now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let outcome = Outcome::Sent {
        provider_id: provider_id.into(),
        segments: 1,
    };
    assert_eq!(
        store
            .complete("w", &[(claimed[0].id, outcome)], now())
            .await
            .unwrap(),
        1
    );
    incident
}

/// The report's (channel, status, last error) per notice, in id order.
async fn notices(
    store: &Store,
    incident: IncidentId,
) -> Vec<(Channel, NoticeStatus, Option<String>)> {
    store
        .notice_report(incident)
        .await
        .unwrap()
        .into_iter()
        .map(|r: ReportRow| (r.channel, r.status, r.last_error))
        .collect()
}

fn failed(reason: &str) -> Receipt {
    Receipt::Failed {
        reason: reason.into(),
    }
}

async fn delivered_receipt_marks_the_notice_once(store: &Store) {
    let incident = sent(store, "SM1").await;
    let now = now();
    assert_eq!(
        store
            .record_receipt("SM1", &Receipt::Delivered, now)
            .await
            .unwrap(),
        ReceiptOutcome::Applied
    );
    assert_eq!(
        notices(store, incident).await,
        [(Channel::Sms, NoticeStatus::Delivered, None)]
    );
    // A duplicate, or a late failure after delivery, changes nothing.
    assert_eq!(
        store
            .record_receipt("SM1", &Receipt::Delivered, now)
            .await
            .unwrap(),
        ReceiptOutcome::Unchanged
    );
    assert_eq!(
        store
            .record_receipt("SM1", &failed("undelivered: error 30003"), now)
            .await
            .unwrap(),
        ReceiptOutcome::Unchanged
    );
    assert_eq!(
        notices(store, incident).await,
        [(Channel::Sms, NoticeStatus::Delivered, None)]
    );
}

async fn failed_receipt_records_the_reason_and_falls_back_to_email(store: &Store) {
    let incident = sent(store, "SM1").await;
    assert_eq!(
        store
            .record_receipt("SM1", &failed("undelivered: error 30003"), now())
            .await
            .unwrap(),
        ReceiptOutcome::Applied
    );
    assert_eq!(
        notices(store, incident).await,
        [
            (
                Channel::Sms,
                NoticeStatus::Failed,
                Some("undelivered: error 30003".into())
            ),
            (Channel::Email, NoticeStatus::Pending, None),
        ]
    );
    let email = store
        .claim("w", &[Channel::Email], 10, LEASE, now())
        .await
        .unwrap();
    assert_eq!(email[0].address, EMAIL);
}

async fn a_receipt_before_the_send_is_recorded_waits_and_is_applied_then(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let claimed = store
        .claim("w", &[Channel::Sms], 10, LEASE, now)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_receipt("SM9", &failed("failed: error 30005"), now)
            .await
            .unwrap(),
        ReceiptOutcome::Waiting
    );
    assert_eq!(
        notices(store, incident).await,
        [(Channel::Sms, NoticeStatus::Pending, None)]
    );
    // The worker records the send: the waiting receipt applies, with the email fallback.
    let outcome = Outcome::Sent {
        provider_id: "SM9".into(),
        segments: 1,
    };
    assert_eq!(
        store
            .complete("w", &[(claimed[0].id, outcome)], now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        notices(store, incident).await,
        [
            (
                Channel::Sms,
                NoticeStatus::Failed,
                Some("failed: error 30005".into())
            ),
            (Channel::Email, NoticeStatus::Pending, None),
        ]
    );
    // Now it is known and final.
    assert_eq!(
        store
            .record_receipt("SM9", &Receipt::Delivered, now)
            .await
            .unwrap(),
        ReceiptOutcome::Unchanged
    );
}

async fn an_early_delivered_receipt_is_applied_without_a_fallback(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let claimed = store
        .claim("w", &[Channel::Sms], 10, LEASE, now)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_receipt("SM9", &Receipt::Delivered, now)
            .await
            .unwrap(),
        ReceiptOutcome::Waiting
    );
    let outcome = Outcome::Sent {
        provider_id: "SM9".into(),
        segments: 1,
    };
    store
        .complete("w", &[(claimed[0].id, outcome)], now)
        .await
        .unwrap();
    assert_eq!(
        notices(store, incident).await,
        [(Channel::Sms, NoticeStatus::Delivered, None)],
        "no fallback for a delivered message"
    );
}

async fn a_receipt_only_applies_to_a_sent_sms(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    // An attempt being retried has no provider id yet.
    let claimed = store
        .claim("w", &[Channel::Sms], 10, LEASE, now)
        .await
        .unwrap();
    let retry = Outcome::Retry {
        not_before: now,
        reason: "HTTP 503".into(),
        in_doubt: true,
    };
    store
        .complete("w", &[(claimed[0].id, retry)], now)
        .await
        .unwrap();
    // A receipt for an id nobody recorded waits, however often it comes.
    for _ in 0..2 {
        assert_eq!(
            store
                .record_receipt("SM-unknown", &Receipt::Delivered, now)
                .await
                .unwrap(),
            ReceiptOutcome::Waiting
        );
    }
    assert_eq!(
        notices(store, incident).await,
        [(Channel::Sms, NoticeStatus::Pending, Some("HTTP 503".into()))]
    );
}

async fn the_fallback_skips_an_email_that_opted_out(store: &Store) {
    let incident = sent(store, "SM1").await;
    store
        .opt_out_and_withdraw(Channel::Email, EMAIL, "email:unsubscribe", now())
        .await
        .unwrap();
    assert_eq!(
        store
            .record_receipt("SM1", &failed("undelivered"), now())
            .await
            .unwrap(),
        ReceiptOutcome::Applied
    );
    assert_eq!(
        notices(store, incident).await,
        [(
            Channel::Sms,
            NoticeStatus::Failed,
            Some("undelivered".into())
        )]
    );
}

async fn opting_out_withdraws_waiting_notices_and_start_opts_back_in(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    assert!(!store.is_opted_out(Channel::Sms, PHONE).await.unwrap());
    assert_eq!(
        store
            .opt_out_and_withdraw(Channel::Sms, PHONE, "sms:inbound", now)
            .await
            .unwrap(),
        1
    );
    assert!(store.is_opted_out(Channel::Sms, PHONE).await.unwrap());
    assert!(!store.is_opted_out(Channel::Email, PHONE).await.unwrap());
    assert_eq!(
        notices(store, incident).await,
        [(
            Channel::Sms,
            NoticeStatus::Superseded,
            Some("opted out".into())
        )]
    );
    // Idempotent.
    assert_eq!(
        store
            .opt_out_and_withdraw(Channel::Sms, PHONE, "sms:inbound", now)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .opt_in(Channel::Sms, PHONE, "sms:inbound", now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .opt_in(Channel::Sms, PHONE, "sms:inbound", now)
            .await
            .unwrap()
    );
    assert!(!store.is_opted_out(Channel::Sms, PHONE).await.unwrap());
    // Withdrawn stays withdrawn.
    assert_eq!(
        notices(store, incident).await[0].1,
        NoticeStatus::Superseded
    );
    // Only the changes are logged, newest first.
    let log = store.audit_log(10).await.unwrap();
    let contact: Vec<_> = log
        .iter()
        .filter(|e| e.action.starts_with("contact."))
        .collect();
    let actions: Vec<&str> = contact.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["contact.opt_in", "contact.opt_out"]);
    assert_eq!(contact[1].actor, "sms:inbound");
    assert_eq!(contact[1].details["withdrawn"], 1);
}

async fn a_notice_a_worker_holds_is_left_to_finish(store: &Store) {
    // Two incidents, so the phone has two notices: one handed over to the provider (it may be
    // on the wire), one only claimed.
    let first = declared(store).await;
    let second = declared(store).await;
    let now = now();
    let claimed = store
        .claim("w1", &[Channel::Sms], 10, LEASE, now)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let on_the_wire = claimed
        .iter()
        .find(|n| n.incident_id == first.0)
        .unwrap()
        .id;
    let handed = store
        .round_trip(outagecast_store::RoundTrip {
            owner: "w1",
            outcomes: &[],
            hand: &[on_the_wire],
            renew: false,
            claim: None,
            lease: LEASE,
            now,
        })
        .await
        .unwrap()
        .handed;
    assert_eq!(handed.len(), 1);
    // STOP is honoured at once: the claimed one is withdrawn, the one on the wire finishes.
    assert_eq!(
        store
            .opt_out_and_withdraw(Channel::Sms, PHONE, "t", now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(notices(store, first).await[0].1, NoticeStatus::Pending);
    assert_eq!(notices(store, second).await[0].1, NoticeStatus::Superseded);
    assert!(store.is_opted_out(Channel::Sms, PHONE).await.unwrap());
    // The worker cannot hand the withdrawn one over any more.
    let other = claimed
        .iter()
        .find(|n| n.incident_id == second.0)
        .unwrap()
        .id;
    let refused = store
        .round_trip(outagecast_store::RoundTrip {
            owner: "w1",
            outcomes: &[],
            hand: &[other],
            renew: false,
            claim: None,
            lease: LEASE,
            now,
        })
        .await
        .unwrap()
        .handed;
    assert!(refused.is_empty());
}

async fn contact_language_finds_the_customer(store: &Store) {
    seed(store, &[customer("A", PHONE, EMAIL)]).await;
    assert_eq!(
        store.contact_language(PHONE).await.unwrap(),
        Some(Language::En)
    );
    assert_eq!(
        store.contact_language(EMAIL).await.unwrap(),
        Some(Language::En)
    );
    assert_eq!(store.contact_language("+358409999999").await.unwrap(), None);
}
