//! The outbox: claims under a lease, outcomes recorded only by the lease holder, held and
//! released notices, the email fallback, counts and the report.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use outagecast_core::contact::Channel;
use outagecast_core::incident::IncidentId;
use outagecast_core::incident::{EventKind, IncidentChanges};
use outagecast_core::notice::{NoticeStatus, plan_recipients};
use outagecast_store::{
    ClaimRequest, HandedNotice, Outcome, Requeue, RoundTrip, Store, Transition,
};

use crate::contract;
use crate::support::{customer, declare_with, locale, seed};

contract!(
    leases_keep_workers_apart_and_only_the_holder_records,
    an_expired_lease_is_reclaimed_and_its_old_holder_cannot_record,
    concurrent_claimers_never_get_the_same_notice,
    a_permanent_sms_failure_falls_back_to_email,
    held_and_released_notices_keep_the_doubt_they_had_before_the_claim,
    a_released_notice_never_in_doubt_comes_back_not_in_doubt,
    a_round_records_hundreds_of_mixed_outcomes_and_claims_in_one_transaction,
    a_claim_knows_where_the_customer_lives,
    next_due_is_the_earliest_waiting_notice,
    the_hand_over_fences_a_closed_incident_and_gives_the_current_text,
    the_heartbeat_keeps_leases_and_a_dead_holders_lapse,
    a_resend_is_counted_as_a_possible_duplicate,
    a_deferred_notice_waits_unattempted_with_the_reason,
    a_held_channel_shows_held_with_its_reason_until_sent_or_resumed,
    requeue_puts_only_failed_notices_back_and_is_audited,
);

const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];
const LEASE: Duration = Duration::from_secs(60);
/// A lease that lapses during a test. PostgreSQL keeps leases on its own clock, so a lapse is
/// waited for, not simulated with a later `now`.
const SHORT: Duration = Duration::from_millis(700);

/// Waits for a [`SHORT`] lease taken now to lapse; the time after.
async fn lapse() -> DateTime<Utc> {
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    now()
}

/// Two customers (A with a mobile and an email, B with a mobile), declared with SMS only
/// planned, so that the email fallback has something to add. Returns the incident.
async fn declared(store: &Store) -> IncidentId {
    let loaded = seed(
        store,
        &[
            customer("A", "+358481111111", "a@example.com"),
            customer("B", "+358482222222", ""),
        ],
    )
    .await;
    let refs: Vec<_> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let mut plan = plan_recipients(&refs, |_, _| false);
    plan.recipients.retain(|r| r.channel == Channel::Sms);
    declare_with(store, &loaded, &plan, now())
        .await
        .unwrap()
        .incident
        .id
}

/// `n` customers with a mobile each, all declared: `n` SMS notices.
async fn many(store: &Store, n: usize) -> IncidentId {
    let customers: Vec<_> = (0..n)
        .map(|i| customer(&format!("C{i}"), &format!("+35848{:07}", 1_000_000 + i), ""))
        .collect();
    let loaded = seed(store, &customers).await;
    let refs: Vec<_> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    declare_with(store, &loaded, &plan, now())
        .await
        .unwrap()
        .incident
        .id
}

/// Now, to the microsecond both backends keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Hands `ids` over for `owner` (the dispatcher's last step before a request).
async fn hand(store: &Store, owner: &str, ids: &[i64], now: DateTime<Utc>) -> Vec<HandedNotice> {
    store
        .round_trip(RoundTrip {
            owner,
            outcomes: &[],
            hand: ids,
            renew: false,
            claim: None,
            lease: LEASE,
            now,
        })
        .await
        .unwrap()
        .handed
}

/// A round trip that only records and claims.
async fn complete_and_claim(
    store: &Store,
    owner: &str,
    outcomes: &[(i64, Outcome)],
    limit: u32,
    now: DateTime<Utc>,
    locate: bool,
) -> (u64, Vec<outagecast_store::ClaimedNotice>) {
    let done = store
        .round_trip(RoundTrip {
            owner,
            outcomes,
            hand: &[],
            renew: false,
            claim: Some(ClaimRequest {
                channels: &ALL,
                limit,
                locate,
            }),
            lease: LEASE,
            now,
        })
        .await
        .unwrap();
    (done.recorded, done.claimed)
}

fn sent(provider_id: &str) -> Outcome {
    Outcome::Sent {
        provider_id: provider_id.into(),
        segments: 1,
    }
}

async fn leases_keep_workers_apart_and_only_the_holder_records(store: &Store) {
    declared(store).await;
    let now = now();
    let a = store.claim("a", &ALL, 10, SHORT, now).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|n| n.attempts == 1 && !n.in_doubt));
    assert!(
        store
            .claim("b", &ALL, 10, LEASE, now)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // Worker a hands one over (its request may be on the wire) and dies; after the lease, b
    // takes both over and sees only that one in doubt.
    assert_eq!(hand(store, "a", &[a[0].id], now).await.len(), 1);
    let later = lapse().await;
    let b = store.claim("b", &ALL, 10, LEASE, later).await.unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|n| n.attempts == 2));
    let doubt: Vec<_> = b.iter().map(|n| (n.id, n.in_doubt)).collect();
    assert_eq!(doubt, vec![(a[0].id, true), (a[1].id, false)]);
    assert_eq!(
        store
            .complete("a", &[(b[0].id, sent("SM1"))], later)
            .await
            .unwrap(),
        0,
        "a lost its lease"
    );
    assert_eq!(
        store
            .complete("b", &[(b[0].id, sent("SM1"))], later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.release("b").await.unwrap(), 1);
    let counts = store.outbox_counts(&ALL, later).await.unwrap();
    assert_eq!((counts.sent, counts.due), (1, 1));
}

async fn an_expired_lease_is_reclaimed_and_its_old_holder_cannot_record(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let dead = store.claim("dead", &ALL, 10, SHORT, now).await.unwrap();
    assert_eq!(dead.len(), 2);
    // Not before the lease ends.
    assert!(
        store
            .claim("w", &ALL, 10, LEASE, now)
            .await
            .unwrap()
            .is_empty()
    );
    let counts = store.outbox_counts(&ALL, now).await.unwrap();
    assert_eq!((counts.due, counts.leased), (0, 2));
    // After it, another node reclaims both on their second attempt; never handed over,
    // neither is in doubt.
    let after = lapse().await;
    let counts = store.outbox_counts(&ALL, after).await.unwrap();
    assert_eq!((counts.due, counts.leased), (2, 0));
    let w = store.claim("w", &ALL, 10, LEASE, after).await.unwrap();
    assert_eq!(
        w.iter().map(|n| n.id).collect::<Vec<_>>(),
        dead.iter().map(|n| n.id).collect::<Vec<_>>()
    );
    assert!(w.iter().all(|n| !n.in_doubt && n.attempts == 2));
    // The dead node comes back: its outcomes and its release touch nothing.
    let stale: Vec<_> = dead
        .iter()
        .map(|n| {
            (
                n.id,
                Outcome::Failed {
                    reason: "stale".into(),
                },
            )
        })
        .collect();
    assert_eq!(store.complete("dead", &stale, after).await.unwrap(), 0);
    assert_eq!(store.release("dead").await.unwrap(), 0);
    // The new holder records.
    let outcomes = [
        (w[0].id, sent("SM1")),
        (
            w[1].id,
            Outcome::Retry {
                not_before: after + chrono::Duration::minutes(1),
                reason: "HTTP 503".into(),
                in_doubt: false,
            },
        ),
    ];
    assert_eq!(store.complete("w", &outcomes, after).await.unwrap(), 2);
    let report = store.notice_report(incident).await.unwrap();
    let row = |id| report.iter().find(|r| r.notice_id == id).unwrap();
    assert_eq!(row(w[0].id).status, NoticeStatus::Sent);
    assert_eq!(row(w[0].id).provider_id.as_deref(), Some("SM1"));
    assert_eq!(row(w[1].id).status, NoticeStatus::Pending);
    assert_eq!(row(w[1].id).last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(report.len(), 2, "no email fallback from the stale failure");
}

/// Two claimers on the same store, claiming small batches in a loop until the queue is
/// empty: no notice is handed to both, and every notice is handed out.
async fn concurrent_claimers_never_get_the_same_notice(store: &Store) {
    const N: usize = 120;
    many(store, N).await;
    let now = now();
    let claimer = |owner: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let batch = store.claim(owner, &ALL, 3, LEASE, now).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|n| n.id));
            tokio::task::yield_now().await;
        }
    };
    let (a, b) = tokio::join!(claimer("a"), claimer("b"));
    let mut seen = HashSet::new();
    for id in a.iter().chain(&b) {
        assert!(seen.insert(*id), "notice {id} was claimed twice");
    }
    assert_eq!(seen.len(), N, "every notice was claimed");
    let counts = store.outbox_counts(&ALL, now).await.unwrap();
    assert_eq!((counts.due, counts.leased), (0, N as u64));
    // Each claimer records only its own: recording the other's changes nothing.
    let theirs: Vec<_> = b.iter().map(|&id| (id, sent("X"))).collect();
    assert_eq!(store.complete("a", &theirs, now).await.unwrap(), 0);
    let mine: Vec<_> = a.iter().map(|&id| (id, sent("X"))).collect();
    assert_eq!(
        store.complete("a", &mine, now).await.unwrap(),
        a.len() as u64
    );
}

async fn a_permanent_sms_failure_falls_back_to_email(store: &Store) {
    declared(store).await;
    let now = now();
    let claimed = store
        .claim("a", &[Channel::Sms], 10, LEASE, now)
        .await
        .unwrap();
    let failed: Vec<(i64, Outcome)> = claimed
        .iter()
        .map(|n| {
            (
                n.id,
                Outcome::Failed {
                    reason: "HTTP 400 code 21211".into(),
                },
            )
        })
        .collect();
    assert_eq!(store.complete("a", &failed, now).await.unwrap(), 2);
    let emails = store
        .claim("a", &[Channel::Email], 10, LEASE, now)
        .await
        .unwrap();
    assert_eq!(emails.len(), 1, "only A has an email");
    assert_eq!(emails[0].address, "a@example.com");
    // Retry and held keep the notice pending; held does not count as an attempt.
    let later = now + chrono::Duration::minutes(5);
    store
        .complete(
            "a",
            &[(emails[0].id, Outcome::Held { not_before: later })],
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim("a", &ALL, 10, LEASE, now)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim("a", &ALL, 10, LEASE, later).await.unwrap();
    assert_eq!(again[0].attempts, 1);
}

async fn held_and_released_notices_keep_the_doubt_they_had_before_the_claim(store: &Store) {
    declared(store).await;
    let now = now();
    // A crashed worker: claimed and handed over, never recorded. After its lease both are in
    // doubt.
    let dead = store.claim("dead", &ALL, 10, SHORT, now).await.unwrap();
    let ids: Vec<_> = dead.iter().map(|n| n.id).collect();
    assert_eq!(hand(store, "dead", &ids, now).await.len(), 2);
    let later = lapse().await;
    let claimed = store.claim("w", &ALL, 10, LEASE, later).await.unwrap();
    assert!(claimed.iter().all(|n| n.in_doubt && n.attempts == 2));
    // Held for quiet hours, and given back unsent: neither may lose the doubt (it might have
    // been sent by the dead worker), and neither counts as an attempt.
    let morning = later + chrono::Duration::hours(8);
    let outcomes = [
        (
            claimed[0].id,
            Outcome::Held {
                not_before: morning,
            },
        ),
        (claimed[1].id, Outcome::Released),
    ];
    assert_eq!(store.complete("w", &outcomes, later).await.unwrap(), 2);
    let again = store.claim("w", &ALL, 10, LEASE, later).await.unwrap();
    assert_eq!(again.len(), 1, "released is due at once, held is not");
    assert_eq!(again[0].id, claimed[1].id);
    assert!(again[0].in_doubt && again[0].attempts == 2);
    assert_eq!(store.next_due().await.unwrap(), Some(morning));
    let held = store.claim("w", &ALL, 10, LEASE, morning).await.unwrap();
    assert!(held[0].in_doubt && held[0].attempts == 2);
}

async fn a_released_notice_never_in_doubt_comes_back_not_in_doubt(store: &Store) {
    declared(store).await;
    let now = now();
    let claimed = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    let released: Vec<_> = claimed.iter().map(|n| (n.id, Outcome::Released)).collect();
    assert_eq!(store.complete("w", &released, now).await.unwrap(), 2);
    let again = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|n| !n.in_doubt && n.attempts == 1));
}

async fn a_round_records_hundreds_of_mixed_outcomes_and_claims_in_one_transaction(store: &Store) {
    let incident = many(store, 700).await;
    let now = now();
    let first = store.claim("w", &ALL, 600, LEASE, now).await.unwrap();
    assert_eq!(first.len(), 600);
    let later = now + chrono::Duration::minutes(1);
    let outcome = |k: usize| match k % 5 {
        0 | 1 => Outcome::Sent {
            provider_id: format!("SM{k}"),
            segments: 2,
        },
        2 => Outcome::Retry {
            not_before: later,
            reason: "HTTP 429".into(),
            in_doubt: k.is_multiple_of(2),
        },
        3 => Outcome::Failed {
            reason: "HTTP 400".into(),
        },
        _ => Outcome::Held { not_before: later },
    };
    let mut outcomes: Vec<_> = first
        .iter()
        .enumerate()
        .map(|(k, n)| (n.id, outcome(k)))
        .collect();
    // One of them is not ours to record any more.
    outcomes.push((i64::MAX, Outcome::Released));
    let (recorded, next) = complete_and_claim(store, "w", &outcomes, 500, now, false).await;
    assert_eq!(recorded, 600);
    assert_eq!(next.len(), 100, "the rest");
    assert!(next.iter().all(|n| n.location.is_none()));
    let counts = store.outbox_counts(&ALL, now).await.unwrap();
    assert_eq!((counts.sent, counts.failed), (240, 120));
    assert_eq!((counts.waiting, counts.leased), (240, 100));
    assert_eq!(store.next_due().await.unwrap(), Some(later));
    let report = store.notice_report(incident).await.unwrap();
    assert_eq!(report.len(), 700);
    for (k, n) in first.iter().enumerate() {
        let row = report.iter().find(|r| r.notice_id == n.id).unwrap();
        match outcome(k) {
            Outcome::Sent { provider_id, .. } => {
                assert_eq!(row.status, NoticeStatus::Sent);
                assert_eq!(row.provider_id.as_deref(), Some(provider_id.as_str()));
                assert_eq!(row.attempts, 1);
                assert_eq!(row.sent_at, Some(now));
            }
            Outcome::Retry { .. } => {
                assert_eq!(row.status, NoticeStatus::Pending);
                assert_eq!(row.last_error.as_deref(), Some("HTTP 429"));
            }
            Outcome::Failed { .. } => {
                assert_eq!(row.status, NoticeStatus::Failed);
                assert_eq!(row.last_error.as_deref(), Some("HTTP 400"));
            }
            Outcome::Held { .. } | Outcome::Released => {
                assert_eq!((row.status, row.attempts), (NoticeStatus::Pending, 0));
            }
            other => unreachable!("not used here: {other:?}"),
        }
    }
    // The retries come back in doubt exactly when the attempt was.
    let retried = store.claim("w2", &ALL, 1000, LEASE, later).await.unwrap();
    for n in &retried {
        let k = first.iter().position(|f| f.id == n.id).unwrap();
        match outcome(k) {
            Outcome::Retry { in_doubt, .. } => assert_eq!(n.in_doubt, in_doubt),
            Outcome::Held { .. } => assert!(!n.in_doubt),
            _ => unreachable!("only retried and held notices are due again"),
        }
    }
    assert_eq!(retried.len(), 240);
    // Claims hand out priority first, then oldest.
    assert!(
        retried
            .windows(2)
            .all(|w| (!w[0].priority, w[0].id) < (!w[1].priority, w[1].id))
    );
}

async fn a_claim_knows_where_the_customer_lives(store: &Store) {
    let incident = declared(store).await;
    let claimed = store.claim("w", &ALL, 10, LEASE, now()).await.unwrap();
    let at = claimed[0].location.unwrap();
    assert_eq!((at.lon(), at.lat()), (24.9414, 60.1710));
    // Also through a round trip when asked.
    store.release("w").await.unwrap();
    let (_, claimed) = complete_and_claim(store, "w", &[], 10, now(), true).await;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|n| n.location.is_some()));
    let report = store.notice_report(incident).await.unwrap();
    let accounts: HashSet<_> = report.iter().map(|r| r.accounts.as_str()).collect();
    assert_eq!(accounts, HashSet::from(["A", "B"]));
}

async fn next_due_is_the_earliest_waiting_notice(store: &Store) {
    assert_eq!(store.next_due().await.unwrap(), None);
    declared(store).await;
    assert_eq!(store.next_due().await.unwrap(), None, "due at once");
    let now = now();
    let claimed = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    let soon = now + chrono::Duration::minutes(2);
    let outcomes = [
        (claimed[0].id, Outcome::Held { not_before: soon }),
        (
            claimed[1].id,
            Outcome::Retry {
                not_before: soon + chrono::Duration::minutes(1),
                reason: "HTTP 429".into(),
                in_doubt: true,
            },
        ),
    ];
    store.complete("w", &outcomes, now).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(soon));
    let counts = store.outbox_counts(&ALL, now).await.unwrap();
    assert_eq!((counts.due, counts.waiting), (0, 2));
    let counts = store.outbox_counts(&[Channel::Email], now).await.unwrap();
    assert_eq!(counts, Default::default());
}

/// A transition on the declared incident.
async fn transition(store: &Store, id: IncidentId, event: EventKind, changes: IncidentChanges) {
    let now = now();
    store
        .transition(
            Transition {
                id,
                event,
                changes,
                actor: "test",
                growth: None,
                now,
                provenance: None,
            },
            &locale(now),
        )
        .await
        .unwrap();
}

async fn the_hand_over_fences_a_closed_incident_and_gives_the_current_text(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let claimed = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // An update after the claim rewrites the text: the hand-over gives the new one.
    transition(
        store,
        incident,
        EventKind::Updated,
        IncidentChanges {
            cause: Some(outagecast_core::incident::Cause::parse("a collapsed culvert").unwrap()),
            ..Default::default()
        },
    )
    .await;
    let first = hand(store, "w", &[claimed[0].id], now).await;
    assert_eq!(first.len(), 1);
    assert_ne!(first[0].body, claimed[0].body, "rewritten since the claim");
    assert!(first[0].body.contains("culvert"), "{}", first[0].body);
    // Cancelled while the first is on the wire and the second only claimed: the second is
    // withdrawn and can no longer be handed over; the first counts as told.
    transition(
        store,
        incident,
        EventKind::Cancelled,
        IncidentChanges::default(),
    )
    .await;
    assert!(
        hand(store, "w", &[claimed[1].id], now).await.is_empty(),
        "fenced"
    );
    let report = store.notice_report(incident).await.unwrap();
    let row = |id| report.iter().find(|r| r.notice_id == id).unwrap();
    assert_eq!(row(claimed[1].id).status, NoticeStatus::Superseded);
    assert_eq!(
        row(claimed[0].id).status,
        NoticeStatus::Pending,
        "on the wire"
    );
    let follow_ups: Vec<_> = report
        .iter()
        .filter(|r| r.event == EventKind::Cancelled)
        .collect();
    assert_eq!(
        follow_ups.len(),
        1,
        "the one on the wire hears of the cancel"
    );
    assert_eq!(follow_ups[0].address, claimed[0].address);
    // The first's send finishes after the cancel: recorded as sent. Its follow-up goes out.
    assert_eq!(
        store
            .complete("w", &[(claimed[0].id, sent("SM1"))], now)
            .await
            .unwrap(),
        1
    );
    let next = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event, EventKind::Cancelled);
    assert_eq!(
        hand(store, "w", &[next[0].id], now).await.len(),
        1,
        "follow-ups pass"
    );
}

async fn the_heartbeat_keeps_leases_and_a_dead_holders_lapse(store: &Store) {
    declared(store).await;
    let claimed = store.claim("w", &ALL, 10, SHORT, now()).await.unwrap();
    assert_eq!(claimed.len(), 2);
    tokio::time::sleep(SHORT / 2).await;
    let renewed = store
        .round_trip(RoundTrip {
            owner: "w",
            outcomes: &[],
            hand: &[],
            renew: true,
            claim: None,
            lease: SHORT,
            now: now(),
        })
        .await
        .unwrap()
        .renewed;
    assert_eq!(renewed, 2);
    // Past the first lease, still held thanks to the heartbeat...
    tokio::time::sleep(SHORT * 3 / 4).await;
    assert!(
        store
            .claim("x", &ALL, 10, LEASE, now())
            .await
            .unwrap()
            .is_empty()
    );
    // ...and once the heartbeats stop, taken over a lease after the last one.
    let after = lapse().await;
    assert_eq!(
        store
            .claim("x", &ALL, 10, LEASE, after)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn a_resend_is_counted_as_a_possible_duplicate(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let claimed = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    let outcomes = [
        (
            claimed[0].id,
            Outcome::SentAgain {
                provider_id: "SM9".into(),
                segments: 1,
            },
        ),
        (claimed[1].id, sent("SM8")),
    ];
    assert_eq!(store.complete("w", &outcomes, now).await.unwrap(), 2);
    let counts = store.outbox_counts(&ALL, now).await.unwrap();
    assert_eq!((counts.sent, counts.possible_duplicates), (2, 1));
    let report = store.notice_report(incident).await.unwrap();
    let row = |id| report.iter().find(|r| r.notice_id == id).unwrap();
    assert!(row(claimed[0].id).possible_duplicate);
    assert_eq!(row(claimed[0].id).status, NoticeStatus::Sent);
    assert!(!row(claimed[1].id).possible_duplicate);
}

async fn a_deferred_notice_waits_unattempted_with_the_reason(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let claimed = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    let probe = now + chrono::Duration::seconds(2);
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|n| {
            (
                n.id,
                Outcome::Deferred {
                    not_before: probe,
                    reason: "HTTP 401: check OUTAGECAST_SMS_AUTH_TOKEN".into(),
                },
            )
        })
        .collect();
    assert_eq!(store.complete("w", &outcomes, now).await.unwrap(), 2);
    let report = store.notice_report(incident).await.unwrap();
    assert!(report.iter().all(|r| r.status == NoticeStatus::Held
        && r.attempts == 0
        && r.last_error.as_deref() == Some("HTTP 401: check OUTAGECAST_SMS_AUTH_TOKEN")));
    assert!(
        store
            .claim("w", &ALL, 10, LEASE, now)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim("w", &ALL, 10, LEASE, probe).await.unwrap();
    assert!(again.iter().all(|n| n.attempts == 1 && !n.in_doubt));
}

async fn a_held_channel_shows_held_with_its_reason_until_sent_or_resumed(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    const WHY: &str = "waiting for the provider: HTTP 401: check OUTAGECAST_SMS_AUTH_TOKEN";
    assert_eq!(store.hold_channel(Channel::Sms, WHY, now).await.unwrap(), 2);
    assert_eq!(
        store.hold_channel(Channel::Sms, WHY, now).await.unwrap(),
        0,
        "already held for that reason"
    );
    assert_eq!(
        store
            .hold_channel(Channel::Email, "nope", now)
            .await
            .unwrap(),
        0
    );
    let counts = store.notice_counts(incident).await.unwrap();
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.channel, c.status, c.count))
            .collect::<Vec<_>>(),
        [(Channel::Sms, NoticeStatus::Held, 2)]
    );
    let q = store.outbox_counts(&ALL, now).await.unwrap();
    assert_eq!((q.held, q.due), (2, 2), "held notices are still queued");
    let held = store.held_notices().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].channel, held[0].reason.as_str(), held[0].count),
        (Channel::Sms, WHY, 2)
    );
    let report = store.notice_report(incident).await.unwrap();
    assert!(
        report
            .iter()
            .all(|r| r.status == NoticeStatus::Held && r.last_error.as_deref() == Some(WHY))
    );

    // A held notice is still claimed (the probe); its outcome clears the mark, a release keeps it.
    let (_, claimed) = complete_and_claim(store, "w", &[], 10, now, false).await;
    assert_eq!(claimed.len(), 2);
    let outcomes = [
        (claimed[0].id, sent("SM1")),
        (claimed[1].id, Outcome::Released),
    ];
    assert_eq!(store.complete("w", &outcomes, now).await.unwrap(), 2);
    let report = store.notice_report(incident).await.unwrap();
    let status = |id: i64| report.iter().find(|r| r.notice_id == id).unwrap().status;
    assert_eq!(status(claimed[0].id), NoticeStatus::Sent);
    assert_eq!(status(claimed[1].id), NoticeStatus::Held);

    // The cause is gone: the rest are plain pending again, due as they were.
    assert_eq!(store.resume_channel(Channel::Sms, now).await.unwrap(), 1);
    assert_eq!(store.resume_channel(Channel::Sms, now).await.unwrap(), 0);
    assert!(store.held_notices().await.unwrap().is_empty());
    let report = store.notice_report(incident).await.unwrap();
    let rest = report
        .iter()
        .find(|r| r.notice_id == claimed[1].id)
        .unwrap();
    assert_eq!(rest.status, NoticeStatus::Pending);
    assert_eq!(store.outbox_counts(&ALL, now).await.unwrap().held, 0);
}

async fn requeue_puts_only_failed_notices_back_and_is_audited(store: &Store) {
    let incident = declared(store).await;
    let now = now();
    let claimed = store
        .claim("w", &[Channel::Sms], 10, LEASE, now)
        .await
        .unwrap();
    let outcomes = [
        (
            claimed[0].id,
            Outcome::Failed {
                reason: "gave up after 8 attempts: HTTP 503".into(),
            },
        ),
        (claimed[1].id, sent("SM1")),
    ];
    store.complete("w", &outcomes, now).await.unwrap();
    // The failed SMS fell back to A's email; fail that too.
    let email = store
        .claim("w", &[Channel::Email], 10, LEASE, now)
        .await
        .unwrap();
    let failed = [(
        email[0].id,
        Outcome::Failed {
            reason: "SMTP 550".into(),
        },
    )];
    store.complete("w", &failed, now).await.unwrap();
    let requeued = store
        .requeue(Requeue {
            incident,
            channel: Some(Channel::Sms),
            actor: "cli:operator",
            now,
        })
        .await
        .unwrap();
    assert_eq!(requeued, 1, "only the failed SMS");
    let again = store.claim("w", &ALL, 10, LEASE, now).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id, again[0].attempts, again[0].in_doubt),
        (claimed[0].id, 1, false)
    );
    let report = store.notice_report(incident).await.unwrap();
    let row = report
        .iter()
        .find(|r| r.notice_id == claimed[0].id)
        .unwrap();
    assert_eq!(
        row.last_error.as_deref(),
        Some("requeued after: gave up after 8 attempts: HTTP 503")
    );
    let entry = &store.audit_log(10).await.unwrap()[0];
    assert_eq!(
        (entry.actor.as_str(), entry.action.as_str()),
        ("cli:operator", "notices.requeue")
    );
    assert_eq!(entry.details["requeued"], 1);
    // An unknown incident is an error, not zero.
    assert!(
        store
            .requeue(Requeue {
                incident: IncidentId(999_999),
                channel: None,
                actor: "cli:operator",
                now,
            })
            .await
            .is_err()
    );
}
