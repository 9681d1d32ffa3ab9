//! IVR flags and the change feed: a snapshot, then every change exactly once; re-arming after
//! an import; a follower behind the pruned log; on PostgreSQL, changes committed out of id
//! order and the change notifications.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use outagecast_core::contact::Language;
use outagecast_core::customer::{Customer, CustomerId};
use outagecast_core::incident::{EventKind, IncidentChanges, IncidentId, IncidentStatus};
use outagecast_core::notice::{ArmedNumber, plan_recipients};
use outagecast_store::pg::{CUSTOMERS_CHANNEL, IVR_CHANNEL};
use outagecast_store::{IvrChanges, IvrPoll, RearmOutcome, Store, Transition};
use sqlx::{Connection, Executor};

use crate::contract;
use crate::support::{customer, declare_with, locale, postgres, seed, water_draft};

contract!(
    a_snapshot_then_every_change_exactly_once,
    rearming_after_an_import_changes_single_numbers,
    a_follower_behind_the_pruned_log_is_told_to_reload,
);

const A: &str = "+358481111111";
const B: &str = "+358482222222";
const C: &str = "+358483333333";

/// Imports `customers` and declares one incident affecting all of them.
async fn declared(store: &Store, customers: &[Customer], now: DateTime<Utc>) -> IncidentId {
    let loaded = seed(store, customers).await;
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    declare_with(store, &loaded, &plan, now)
        .await
        .unwrap()
        .incident
        .id
}

/// Customers A and B (English), both in the area.
async fn two_numbers(store: &Store, now: DateTime<Utc>) -> IncidentId {
    declared(store, &[customer("A", A, ""), customer("B", B, "")], now).await
}

async fn transition(store: &Store, id: IncidentId, event: EventKind, now: DateTime<Utc>) {
    let changes = IncidentChanges {
        etr: (event == EventKind::Updated).then(|| now + TimeDelta::hours(5)),
        ..IncidentChanges::default()
    };
    let t = Transition {
        id,
        event,
        changes,
        actor: "test",
        now,
        growth: None,
        provenance: None,
    };
    store.transition(t, &locale(now)).await.unwrap();
}

fn changed(poll: IvrPoll) -> IvrChanges {
    match poll {
        IvrPoll::Changed(c) => c,
        other => panic!("expected changes, got {other:?}"),
    }
}

async fn unchanged(store: &Store, cursor: i64) {
    let poll = store.ivr_changes(cursor).await.unwrap();
    assert!(matches!(poll, IvrPoll::Unchanged), "{poll:?}");
}

async fn a_snapshot_then_every_change_exactly_once(store: &Store) {
    // Stored times keep microseconds.
    let now = Utc::now().trunc_subsecs(6);
    let first = two_numbers(store, now).await;
    let snapshot = store.ivr_snapshot(now, now).await.unwrap();
    assert_eq!(snapshot.incidents.len(), 1);
    assert_eq!(snapshot.flags.len(), 2);
    unchanged(store, snapshot.cursor).await;
    let one = store.ivr_snapshot_for(A, now, now).await.unwrap();
    assert_eq!((one.incidents.len(), one.flags.len()), (1, 1));
    assert_eq!(one.flags[0].phone, A);
    assert_eq!(store.armed_for(A, now).await.unwrap().len(), 1);

    let later = now + TimeDelta::minutes(1);
    transition(store, first, EventKind::Updated, later).await;
    let c = changed(store.ivr_changes(snapshot.cursor).await.unwrap());
    assert!(c.cursor > snapshot.cursor);
    assert_eq!(c.touched, [first]);
    assert_eq!(
        c.reloaded,
        [first],
        "the incident row changed: reload it whole"
    );
    assert_eq!(c.incidents[0].status, IncidentStatus::Updated);
    assert_eq!(c.flags.len(), 2);
    unchanged(store, c.cursor).await;

    let closed = later + TimeDelta::minutes(1);
    transition(store, first, EventKind::Restored, closed).await;
    let c2 = changed(store.ivr_changes(c.cursor).await.unwrap());
    assert_eq!(c2.incidents[0].status, IncidentStatus::Restored);
    assert_eq!(c2.incidents[0].updated_at, closed);
    assert!(
        c2.flags.iter().all(|f| f.disarmed_at == Some(closed)),
        "the restore's own disarmed flags come along, for a 'restored' grace"
    );
    assert!(store.armed_for(A, closed).await.unwrap().is_empty());
    // A snapshot leaves a restored incident out unless it closed within the grace.
    let after = closed + TimeDelta::minutes(1);
    assert!(
        store
            .ivr_snapshot(after, after)
            .await
            .unwrap()
            .incidents
            .is_empty()
    );
    let grace = store
        .ivr_snapshot(after, after - TimeDelta::minutes(15))
        .await
        .unwrap();
    assert_eq!((grace.incidents.len(), grace.flags.len()), (1, 2));
    assert!(grace.cursor >= c2.cursor);
}

async fn rearming_after_an_import_changes_single_numbers(store: &Store) {
    let now = Utc::now();
    let id = two_numbers(store, now).await;
    let cursor = store.ivr_snapshot(now, now).await.unwrap().cursor;
    // A leaves the area, B now speaks Swedish, C (English) moves in.
    let wanted = [
        ArmedNumber {
            e164: B.into(),
            language: Language::Sv,
        },
        ArmedNumber {
            e164: C.into(),
            language: Language::En,
        },
        // A repeated number keeps its first language.
        ArmedNumber {
            e164: C.into(),
            language: Language::Fi,
        },
    ];
    let d = water_draft(now);
    let out = store
        .rearm_ivr(id, &d, &wanted, &locale(now), "test", now)
        .await
        .unwrap();
    assert_eq!(
        out,
        RearmOutcome {
            armed: 1,
            disarmed: 1,
            relanguaged: 1
        }
    );
    let c = changed(store.ivr_changes(cursor).await.unwrap());
    assert!(c.reloaded.is_empty());
    let mut phones: Vec<&str> = c.phones.iter().map(|(_, p)| p.as_str()).collect();
    phones.sort_unstable();
    assert_eq!(phones, [A, B, C]);
    let new = c.flags.iter().find(|f| f.phone == C).unwrap();
    let old = c.flags.iter().find(|f| f.phone == A).unwrap();
    let swedish = c.flags.iter().find(|f| f.phone == B).unwrap();
    assert_eq!(new.language, Language::En);
    assert_eq!(
        new.announcement, old.announcement,
        "same words for every English caller"
    );
    assert_eq!(swedish.language, Language::Sv);
    assert_ne!(swedish.announcement, old.announcement);
    assert!(old.disarmed_at.is_some());
    assert_eq!(store.armed_for(A, now).await.unwrap().len(), 0);
    assert_eq!(store.armed_for(C, now).await.unwrap().len(), 1);
    let audit = store.audit_log(1).await.unwrap();
    assert_eq!(audit[0].action, "incident.ivr_rearm");
    assert_eq!(audit[0].details["armed"], 1);
    // Nothing left to do: nothing written.
    let again = store
        .rearm_ivr(id, &d, &wanted, &locale(now), "test", now)
        .await
        .unwrap();
    assert_eq!(again, RearmOutcome::default());
    unchanged(store, c.cursor).await;
    // A number that left and comes back is armed again in place.
    let back = store
        .rearm_ivr(
            id,
            &d,
            &[
                wanted[0].clone(),
                wanted[1].clone(),
                ArmedNumber {
                    e164: A.into(),
                    language: Language::En,
                },
            ],
            &locale(now),
            "test",
            now,
        )
        .await
        .unwrap();
    assert_eq!(back.armed, 1);
    assert_eq!(store.armed_for(A, now).await.unwrap().len(), 1);
    // A closed incident is left alone.
    transition(store, id, EventKind::Cancelled, now).await;
    let closed = store
        .rearm_ivr(id, &d, &wanted[..1], &locale(now), "test", now)
        .await
        .unwrap();
    assert_eq!(closed, RearmOutcome::default());
}

async fn a_follower_behind_the_pruned_log_is_told_to_reload(store: &Store) {
    let now = Utc::now();
    declared(store, &[customer("A", A, "")], now).await;
    assert_eq!(
        store
            .prune_ivr_changes(now - TimeDelta::hours(1))
            .await
            .unwrap(),
        0,
        "nothing that old"
    );
    let gone = store
        .prune_ivr_changes(Utc::now() + TimeDelta::seconds(1))
        .await
        .unwrap();
    assert!(gone >= 2, "the incident and its flag were logged");
    assert!(matches!(store.ivr_changes(0).await.unwrap(), IvrPoll::Lost));
    let snapshot = store.ivr_snapshot(now, now).await.unwrap();
    assert_eq!(snapshot.flags.len(), 1);
    unchanged(store, snapshot.cursor).await;
}

/// A second connection to the PostgreSQL store's schema, outside the store.
async fn side_connection(store: &Store) -> sqlx::PgConnection {
    let Store::Postgres(pg) = store else {
        panic!("not PostgreSQL")
    };
    let url = std::env::var("OUTAGECAST_TEST_PG_URL").unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let schema = pg.schema().unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "SET search_path = \"{schema}\", public"
    )))
    .await
    .unwrap();
    conn
}

/// PostgreSQL only: change-log ids come from a sequence, so with concurrent writers they
/// commit out of order. A poll that sees a later id while an earlier one is still being
/// written must not move past the earlier one.
#[tokio::test]
async fn a_change_committed_after_a_later_one_is_not_skipped() {
    let Some(fresh) = postgres("a_change_committed_after_a_later_one_is_not_skipped").await else {
        return;
    };
    let store: &Store = &fresh;
    let now = Utc::now();
    let id = two_numbers(store, now).await;
    let cursor = store.ivr_snapshot(now, now).await.unwrap().cursor;

    // A writer changes A's flag and holds its transaction open.
    let mut held = side_connection(store).await;
    held.execute("BEGIN").await.unwrap();
    sqlx::query("UPDATE ivr_flags SET announcement = 'held' WHERE phone = $1")
        .bind(A)
        .execute(&mut held)
        .await
        .unwrap();
    let (held_id,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM ivr_changes")
        .fetch_one(&mut held)
        .await
        .unwrap();

    // Meanwhile B is re-armed in Swedish and committed: a later change id, visible first.
    let wanted = [
        ArmedNumber {
            e164: A.into(),
            language: Language::En,
        },
        ArmedNumber {
            e164: B.into(),
            language: Language::Sv,
        },
    ];
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        store.rearm_ivr(id, &water_draft(now), &wanted, &locale(now), "test", now),
    )
    .await
    .expect("a held writer does not block another")
    .unwrap();
    assert_eq!(out.relanguaged, 1);
    let mut other = side_connection(store).await;
    let (later_id,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM ivr_changes")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(
        later_id > held_id,
        "the committed change has the later id ({later_id} > {held_id})"
    );

    let c = changed(store.ivr_changes(cursor).await.unwrap());
    assert_eq!(c.phones, [(id, B.to_string())]);
    unchanged(store, c.cursor).await;

    held.execute("COMMIT").await.unwrap();
    let c2 = changed(store.ivr_changes(c.cursor).await.unwrap());
    assert_eq!(
        c2.phones,
        [(id, A.to_string())],
        "the held change, after it commits"
    );
    assert_eq!(c2.flags[0].announcement, "held");
    unchanged(store, c2.cursor).await;

    // A rolled-back writer leaves nothing to poll.
    other.execute("BEGIN").await.unwrap();
    sqlx::query("UPDATE ivr_flags SET announcement = 'gone' WHERE phone = $1")
        .bind(B)
        .execute(&mut other)
        .await
        .unwrap();
    other.execute("ROLLBACK").await.unwrap();
    unchanged(store, c2.cursor).await;
}

/// PostgreSQL only: a committed IVR change and a customer import each notify their channel.
#[tokio::test]
async fn changes_are_notified() {
    let Some(fresh) = postgres("changes_are_notified").await else {
        return;
    };
    let store: &Store = &fresh;
    let Store::Postgres(pg) = store else {
        unreachable!()
    };
    let mut listener = pg.listen().await.unwrap();
    // Channels are database-wide: other tests' schemas notify them too, so wait for the one
    // asked for.
    async fn expect(listener: &mut sqlx::postgres::PgListener, channel: &str) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while listener.recv().await.unwrap().channel() != channel {}
        })
        .await
        .unwrap_or_else(|_| panic!("no notification on {channel}"));
    }
    seed(store, &[customer("A", A, "")]).await;
    expect(&mut listener, CUSTOMERS_CHANNEL).await;
    two_numbers(store, Utc::now()).await;
    expect(&mut listener, IVR_CHANNEL).await;
}

/// PostgreSQL only: writers committing in every order while a follower polls; the follower
/// sees every change.
#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let Some(fresh) = postgres("concurrent_writers_lose_nothing").await else {
        return;
    };
    let store: &Store = &fresh;
    let now = Utc::now();
    let id = two_numbers(store, now).await;
    let mut cursor = store.ivr_snapshot(now, now).await.unwrap().cursor;
    let mut writers = Vec::new();
    let mut expected = std::collections::BTreeSet::new();
    for w in 0..6_u64 {
        let mut conn = side_connection(store).await;
        let phones: Vec<String> = (0..20).map(|k| format!("+35850{w}{k:05}")).collect();
        expected.extend(phones.iter().cloned());
        writers.push(tokio::spawn(async move {
            for (k, phone) in (0_u64..).zip(phones) {
                let mut tx = conn.begin().await.unwrap();
                sqlx::query(
                    "INSERT INTO ivr_flags (phone, incident_id, language, announcement, armed_at)
                     VALUES ($1, $2, 'en', 'x', now())",
                )
                .bind(&phone)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .unwrap();
                // Hold some transactions open across others' commits.
                tokio::time::sleep(Duration::from_millis((w * 7 + k * 3) % 11)).await;
                tx.commit().await.unwrap();
            }
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut poll = |c: IvrChanges| {
        seen.extend(c.phones.into_iter().map(|(_, p)| p));
        c.cursor
    };
    while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
        if let IvrPoll::Changed(c) = store.ivr_changes(cursor).await.unwrap() {
            cursor = poll(c);
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    if let IvrPoll::Changed(c) = store.ivr_changes(cursor).await.unwrap() {
        poll(c);
    }
    assert_eq!(seen, expected);
}
