//! The outbox: claims under a lease, outcomes recorded only by the lease holder, held and
//! released notices, the email fallback, counts and the report.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use outagecast_core::contact::Channel;
use outagecast_core::incident::IncidentId;
use outagecast_core::notice::{NoticeStatus, plan_recipients};
use outagecast_store::{Outcome, Store};

use crate::contract;
use crate::support::{customer, declare_with, seed};

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
);

const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];
const LEASE: Duration = Duration::from_secs(60);

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

fn sent(provider_id: &str) -> Outcome {
    Outcome::Sent {
        provider_id: provider_id.into(),
        segments: 1,
    }
}

async fn leases_keep_workers_apart_and_only_the_holder_records(store: &Store) {
    declared(store).await;
    let now = now();
    let a = store.claim("a", &ALL, 10, LEASE, now).await.unwrap();
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
    // Worker a dies; after the lease, b takes over and sees the notices in doubt.
    let later = now + chrono::Duration::seconds(61);
    let b = store.claim("b", &ALL, 10, LEASE, later).await.unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|n| n.in_doubt && n.attempts == 2));
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
    let dead = store.claim("dead", &ALL, 10, LEASE, now).await.unwrap();
    assert_eq!(dead.len(), 2);
    // Not before the lease ends (it ends at now + 60 s: still held at that instant).
    let at_end = now + chrono::Duration::seconds(60);
    assert!(
        store
            .claim("w", &ALL, 10, LEASE, at_end)
            .await
            .unwrap()
            .is_empty()
    );
    let counts = store.outbox_counts(&ALL, at_end).await.unwrap();
    assert_eq!((counts.due, counts.leased), (0, 2));
    // Just after it, another node reclaims both, in doubt, on their second attempt.
    let after = at_end + chrono::Duration::milliseconds(1);
    let counts = store.outbox_counts(&ALL, after).await.unwrap();
    assert_eq!((counts.due, counts.leased), (2, 0));
    let w = store.claim("w", &ALL, 10, LEASE, after).await.unwrap();
    assert_eq!(
        w.iter().map(|n| n.id).collect::<Vec<_>>(),
        dead.iter().map(|n| n.id).collect::<Vec<_>>()
    );
    assert!(w.iter().all(|n| n.in_doubt && n.attempts == 2));
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
    // A crashed worker: claimed, never recorded. After its lease both are in doubt.
    store.claim("dead", &ALL, 10, LEASE, now).await.unwrap();
    let later = now + chrono::Duration::seconds(61);
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
    let (recorded, next) = store
        .complete_and_claim("w", &outcomes, &ALL, 500, LEASE, now, false)
        .await
        .unwrap();
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
    // Also through complete_and_claim when asked.
    store.release("w").await.unwrap();
    let (_, claimed) = store
        .complete_and_claim("w", &[], &ALL, 10, LEASE, now(), true)
        .await
        .unwrap();
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
