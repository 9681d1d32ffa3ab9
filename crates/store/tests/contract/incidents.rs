//! Incidents: declare, transition (update, restore, cancel, a grown area) and the reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{Customer, CustomerId};
use outagecast_core::incident::{EventKind, IncidentChanges, IncidentId, IncidentStatus};
use outagecast_core::ivr::answer;
use outagecast_core::message::Wording;
use outagecast_core::notice::{NoticeStatus, plan_recipients};
use outagecast_store::{
    CapRecord, Declaration, DeclareOutcome, Growth, Outcome, Provenance, Store, StoreError,
    Transition,
};

use crate::contract;
use crate::support::{customer, declare_with, locale, seed, send_sms_except, water_draft};

contract!(
    declaring_writes_one_notice_per_contact_and_arms_every_number,
    a_declared_landline_hears_the_announcement,
    a_failed_declaration_leaves_nothing_behind,
    restore_tells_only_those_told_and_withdraws_the_rest,
    an_update_rewrites_unsent_notices,
    an_update_rewrites_the_announcement,
    a_grown_area_tells_only_the_newly_affected,
    a_smaller_area_lets_the_leavers_go_and_tells_only_the_told,
    transitions_are_checked,
    lists_show_active_incidents_newest_first,
    an_expired_incident_is_not_active,
    expired_incidents_are_not_announced,
    concurrent_closes_of_one_incident_apply_one_after_the_other,
);

/// A (mobile shared with B, email), B (that mobile and a landline), C (a mobile of its own).
async fn seeded(store: &Store) -> Vec<(CustomerId, Customer)> {
    seed(
        store,
        &[
            customer("A", "+358481111111", "a@example.com"),
            customer("B", "+358481111111;+35893101641", ""),
            customer("C", "+358482222222", ""),
        ],
    )
    .await
}

/// A and C share a mobile (C also has an email); B and D have a mobile each.
async fn four(store: &Store) -> Vec<(CustomerId, Customer)> {
    seed(
        store,
        &[
            customer("A", "+358481111111", ""),
            customer("B", "+358482222222", ""),
            customer("C", "+358481111111", "c@example.com"),
            customer("D", "+358483333333", ""),
        ],
    )
    .await
}

async fn declare(
    store: &Store,
    loaded: &[(CustomerId, Customer)],
    now: DateTime<Utc>,
) -> DeclareOutcome {
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    declare_with(store, loaded, &plan, now).await.unwrap()
}

fn transition(id: IncidentId, event: EventKind, now: DateTime<Utc>) -> Transition<'static> {
    Transition {
        id,
        event,
        changes: IncidentChanges::default(),
        actor: "test",
        growth: None,
        now,
        provenance: None,
    }
}

/// Puts an expiry on the incident the public way: a CAP Update that only sets it.
/// An update of `id` to `area` only, with who it adds and who leaves.
fn reshape<'a>(
    id: IncidentId,
    area: &Area,
    growth: Growth<'a>,
    now: DateTime<Utc>,
) -> Transition<'a> {
    Transition {
        changes: IncidentChanges {
            area: Some(area.clone()),
            ..Default::default()
        },
        growth: Some(growth),
        ..transition(id, EventKind::Updated, now)
    }
}

async fn expire_at(store: &Store, id: IncidentId, at: DateTime<Utc>, now: DateTime<Utc>) {
    let p = Provenance {
        area_source: None,
        cap: Some(CapRecord {
            sender: "ops@example.org".into(),
            identifier: "expiry".into(),
            sent: now,
            msg_type: "Update".into(),
            references: String::new(),
            urgency: None,
            certainty: None,
            headline: None,
            description: None,
            expires_at: Some(at),
        }),
    };
    store.record_cap_only(id, &p, "test", now).await.unwrap();
}

async fn declaring_writes_one_notice_per_contact_and_arms_every_number(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    assert_eq!(
        out.notices.get(&Channel::Sms),
        Some(&2),
        "the shared mobile is texted once"
    );
    assert_eq!(out.notices.get(&Channel::Email), Some(&1));
    assert_eq!(
        out.notices.get(&Channel::Voice),
        Some(&1),
        "the landline is called"
    );
    assert_eq!(out.armed, 3, "two mobiles and a landline");
    assert_eq!(out.incident.status, IncidentStatus::Declared);
    assert_eq!(out.incident, store.incident(out.incident.id).await.unwrap());

    let summary = store.summary(out.incident.clone()).await.unwrap();
    assert_eq!(summary.affected_customers, 3);
    assert_eq!(summary.armed_numbers, 3);
    let pending: Vec<(Channel, NoticeStatus, u64)> = summary
        .notices
        .iter()
        .map(|c| (c.channel, c.status, c.count))
        .collect();
    assert_eq!(
        pending,
        vec![
            (Channel::Email, NoticeStatus::Pending, 1),
            (Channel::Sms, NoticeStatus::Pending, 2),
            (Channel::Voice, NoticeStatus::Pending, 1)
        ]
    );
    assert_eq!(store.notice_totals().await.unwrap(), summary.notices);
    let accounts: Vec<String> = store
        .affected_accounts(out.incident.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    assert_eq!(accounts, ["A", "B", "C"]);
    let mut ids: Vec<CustomerId> = loaded.iter().map(|(i, _)| *i).collect();
    ids.sort();
    assert_eq!(store.affected_ids(out.incident.id).await.unwrap(), ids);

    let pending = store.pending_notices(out.incident.id).await.unwrap();
    assert_eq!(pending.len(), 4);
    assert!(pending.iter().all(|(_, _, priority, _)| !priority));
    assert!(
        pending[0].3.contains("burst water main"),
        "{}",
        pending[0].3
    );

    let log = store.audit_log(1).await.unwrap();
    assert_eq!(log[0].action, "incident.declare");
    assert_eq!(
        log[0].subject.as_deref(),
        Some(format!("incident:{}", out.incident.id).as_str())
    );
    assert_eq!(log[0].details["affected_customers"], 3);
    assert_eq!(log[0].details["armed_numbers"], 3);
    assert_eq!(log[0].details["notices"]["sms"], 2);
}

async fn a_declared_landline_hears_the_announcement(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    declare(store, &loaded, now).await;
    let landline = store.armed_for("+35893101641", now).await.unwrap();
    assert_eq!(landline.len(), 1);
    assert!(landline[0].announcement.contains("burst water main"));
}

async fn a_failed_declaration_leaves_nothing_behind(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let mut plan = plan_recipients(&refs, |_, _| false);
    // The same contact twice breaks the notice identity: the insert fails mid-way.
    let dup = plan.recipients[0].clone();
    plan.recipients.push(dup);
    let ids: Vec<CustomerId> = loaded.iter().map(|(i, _)| *i).collect();
    let d = water_draft(now);
    let err = store
        .declare(
            Declaration {
                draft: &d,
                affected: &ids,
                plan: &plan,
                actor: "test",
                now,
                provenance: None,
            },
            &locale(now),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert!(store.incidents(true).await.unwrap().is_empty());
    assert!(store.notice_totals().await.unwrap().is_empty());
    assert!(store.affected_ids(IncidentId(1)).await.unwrap().is_empty());
    assert_eq!(store.active_incident_count(now).await.unwrap(), 0);
    assert_eq!(
        store.audit_log(10).await.unwrap().len(),
        1,
        "only the import"
    );
}

async fn restore_tells_only_those_told_and_withdraws_the_rest(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    let id = out.incident.id;
    // One SMS went out (the shared mobile's, the oldest); the rest are still pending.
    let claimed = store
        .claim("w", &[Channel::Sms], 1, Duration::from_secs(60), now)
        .await
        .unwrap();
    assert_eq!(claimed[0].address, "+358481111111");
    let sent = Outcome::Sent {
        provider_id: "SM1".into(),
        segments: 1,
    };
    assert_eq!(
        store
            .complete("w", &[(claimed[0].id, sent)], now)
            .await
            .unwrap(),
        1
    );
    let later = now + chrono::Duration::minutes(30);
    let t = store
        .transition(transition(id, EventKind::Restored, later), &locale(later))
        .await
        .unwrap();
    assert_eq!(t.incident.status, IncidentStatus::Restored);
    assert_eq!(t.notices.get(&Channel::Sms), Some(&1));
    assert_eq!(t.notices.get(&Channel::Email), None);
    assert_eq!(t.superseded, 3);
    assert_eq!(t.disarmed, 3);
    assert_eq!(t.rewritten, 0);
    let summary = store.summary(t.incident.clone()).await.unwrap();
    assert_eq!(summary.armed_numbers, 0);
    let pending = store.pending_notices(id).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1, "+358481111111");
    assert!(pending[0].3.contains("fixed"), "{}", pending[0].3);
    let log = store.audit_log(1).await.unwrap();
    assert_eq!(log[0].action, "incident.restore");
    assert_eq!(log[0].details["superseded"], 3);
    assert_eq!(log[0].details["before"]["status"], "declared");
    assert_eq!(log[0].details["after"]["status"], "restored");
    assert_eq!(store.active_incident_count(later).await.unwrap(), 0);
    // Closed is closed.
    let err = store
        .transition(transition(id, EventKind::Cancelled, later), &locale(later))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err}");
    assert!(err.to_string().contains("restored"), "{err}");
}

async fn an_update_rewrites_unsent_notices(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    let new_etr = chrono::SubsecRound::trunc_subsecs(now + chrono::Duration::hours(6), 6);
    let t = store
        .transition(
            Transition {
                changes: IncidentChanges {
                    etr: Some(new_etr),
                    ..Default::default()
                },
                ..transition(out.incident.id, EventKind::Updated, now)
            },
            &locale(now),
        )
        .await
        .unwrap();
    assert_eq!(t.rewritten, 4);
    assert!(
        t.notices.is_empty(),
        "nobody was told yet, so nobody gets an update"
    );
    assert_eq!(t.incident.status, IncidentStatus::Updated);
    assert_eq!(t.incident.draft.etr(), Some(new_etr));
    assert_eq!(t.incident, store.incident(out.incident.id).await.unwrap());
    let expected = locale(now).notice(
        out.incident.id,
        &t.incident.draft,
        EventKind::Declared,
        Language::En,
    );
    // Calls say the text written for the ear, rewritten the same way.
    let spoken = locale(now).spoken(
        out.incident.id,
        &t.incident.draft,
        EventKind::Declared,
        Language::En,
    );
    let pending = store.pending_notices(out.incident.id).await.unwrap();
    assert!(!pending.is_empty());
    for (channel, address, _, body) in &pending {
        let want = if *channel == Channel::Voice {
            &spoken.body
        } else {
            &expected.body
        };
        assert_eq!(body, want, "{channel:?} {address}");
    }
    let log = store.audit_log(1).await.unwrap();
    assert_eq!(log[0].action, "incident.update");
    assert!(log[0].details["before"]["etr"] != log[0].details["after"]["etr"]);
    assert_eq!(
        store.active_incident_count(now).await.unwrap(),
        1,
        "updated is active"
    );
}

async fn an_update_rewrites_the_announcement(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    let new_etr = chrono::SubsecRound::trunc_subsecs(now + chrono::Duration::hours(6), 6);
    let t = store
        .transition(
            Transition {
                changes: IncidentChanges {
                    etr: Some(new_etr),
                    ..Default::default()
                },
                ..transition(out.incident.id, EventKind::Updated, now)
            },
            &locale(now),
        )
        .await
        .unwrap();
    let armed = store.armed_for("+358482222222", now).await.unwrap();
    let a = answer(Some("+358482222222".into()), armed);
    assert!(a.armed);
    let expected = Wording::announcement(&locale(now), &t.incident.draft, Language::En);
    assert_eq!(a.announcement.as_deref(), Some(expected.as_str()));
}

async fn a_grown_area_tells_only_the_newly_affected(store: &Store) {
    let loaded = four(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded[..2], now).await;
    let id = out.incident.id;
    // The grown area reaches C (sharing A's mobile) and D; B was affected already.
    let grown: Vec<(CustomerId, &Customer)> = loaded[1..].iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&grown, |_, _| false);
    let added: Vec<CustomerId> = grown.iter().map(|(i, _)| *i).collect();
    let area = Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 1500.0).unwrap());
    let t = store
        .transition(
            reshape(
                id,
                &area,
                Growth {
                    added: &added,
                    left: &[],
                    plan: &plan,
                },
                now,
            ),
            &locale(now),
        )
        .await
        .unwrap();
    assert_eq!(t.added_customers, 2, "C and D");
    assert_eq!(t.added_notices.get(&Channel::Sms), Some(&1), "D's mobile");
    assert_eq!(t.added_notices.get(&Channel::Email), Some(&1), "C's email");
    assert!(
        t.notices.is_empty(),
        "a change of shape is no news to A and B"
    );
    assert_eq!(t.incident.draft.area(), &area);
    assert_eq!(store.incident(id).await.unwrap().draft.area(), &area);
    assert_eq!(store.affected_ids(id).await.unwrap().len(), 4);
    let summary = store.summary(t.incident.clone()).await.unwrap();
    assert_eq!(summary.affected_customers, 4);
    assert_eq!(
        summary.armed_numbers, 3,
        "A's (and C's), B's and D's mobiles"
    );
    let mut pending: Vec<String> = store
        .pending_notices(id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, address, _, _)| address)
        .collect();
    pending.sort();
    assert_eq!(
        pending,
        [
            "+358481111111",
            "+358482222222",
            "+358483333333",
            "c@example.com"
        ]
    );
    let log = store.audit_log(1).await.unwrap();
    assert_eq!(log[0].action, "incident.update");
    assert_eq!(log[0].details["added_customers"], 2);
    assert_eq!(log[0].details["added_notices"]["email"], 1);
}

async fn a_smaller_area_lets_the_leavers_go_and_tells_only_the_told(store: &Store) {
    let loaded = four(store).await;
    let now = Utc::now();
    let id = declare(store, &loaded, now).await.incident.id;
    // A's mobile (shared with C) and B's were sent; D's is leased, C's email waits.
    assert_eq!(send_sms_except(store, &["+358483333333"], now).await, 2);

    // The smaller area keeps A and D: B and C leave.
    let left = [loaded[1].0, loaded[2].0];
    let nobody: Vec<(CustomerId, &Customer)> = Vec::new();
    let plan = plan_recipients(&nobody, |_, _| false);
    let area = Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 100.0).unwrap());
    let t = store
        .transition(
            reshape(
                id,
                &area,
                Growth {
                    added: &[],
                    left: &left,
                    plan: &plan,
                },
                now,
            ),
            &locale(now),
        )
        .await
        .unwrap();
    assert_eq!(t.removed_customers, 2);
    assert!(
        t.notices.is_empty(),
        "a change of shape is no news to A and D"
    );
    assert_eq!(
        t.left_notices.get(&Channel::Sms),
        Some(&1),
        "B's mobile was told; A's (shared with C) stays affected"
    );
    assert_eq!(
        t.left_notices.get(&Channel::Email),
        None,
        "C's email was never sent"
    );
    assert_eq!(t.superseded, 1, "C's email");
    assert_eq!(t.disarmed, 1, "B's mobile; the one C shares with A stays");
    let mut affected = store.affected_ids(id).await.unwrap();
    affected.sort();
    assert_eq!(affected, vec![loaded[0].0, loaded[3].0]);
    let summary = store.summary(t.incident.clone()).await.unwrap();
    assert_eq!(summary.armed_numbers, 2);
    assert!(
        store
            .armed_for("+358482222222", now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.armed_for("+358481111111", now).await.unwrap().len(),
        1
    );
    let mut pending: Vec<(String, String)> = store
        .pending_notices(id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, address, _, body)| (address, body))
        .collect();
    pending.sort();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert_eq!(pending[0].0, "+358482222222");
    assert!(
        pending[0].1.contains("no longer affects"),
        "{}",
        pending[0].1
    );
    assert_eq!(pending[1].0, "+358483333333");
    let log = store.audit_log(1).await.unwrap();
    assert_eq!(log[0].details["removed_customers"], 2);
    assert_eq!(log[0].details["left_notices"]["sms"], 1);

    // The restore follows up with the told who are still affected only: A's mobile.
    let t = store
        .transition(transition(id, EventKind::Restored, now), &locale(now))
        .await
        .unwrap();
    assert_eq!(t.notices.get(&Channel::Sms), Some(&1));
    assert_eq!(t.notices.len(), 1);
    assert!(t.left_notices.is_empty());
}

async fn transitions_are_checked(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    let err = store
        .transition(
            transition(out.incident.id, EventKind::Declared, now),
            &locale(now),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err}");
    let err = store
        .transition(
            transition(IncidentId(999), EventKind::Cancelled, now),
            &locale(now),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(matches!(
        store.incident(IncidentId(999)).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    // An update that changes nothing is refused, and writes nothing.
    let err = store
        .transition(
            transition(out.incident.id, EventKind::Updated, now),
            &locale(now),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err}");
    assert_eq!(
        store.audit_log(1).await.unwrap()[0].action,
        "incident.declare"
    );
    let t = store
        .transition(
            transition(out.incident.id, EventKind::Cancelled, now),
            &locale(now),
        )
        .await
        .unwrap();
    assert_eq!(t.incident.status, IncidentStatus::Cancelled);
    assert!(t.notices.is_empty(), "nobody was told");
    assert_eq!(t.superseded, 4);
    assert_eq!(t.disarmed, 3);
    assert_eq!(
        store.audit_log(1).await.unwrap()[0].action,
        "incident.cancel"
    );
    let statuses: Vec<(Channel, NoticeStatus, u64)> = store
        .notice_counts(out.incident.id)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.channel, c.status, c.count))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (Channel::Email, NoticeStatus::Superseded, 1),
            (Channel::Sms, NoticeStatus::Superseded, 2),
            (Channel::Voice, NoticeStatus::Superseded, 1)
        ]
    );
}

async fn lists_show_active_incidents_newest_first(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let first = declare(store, &loaded, now).await.incident.id;
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs[..1], |_, _| false);
    let second = declare_with(store, &loaded[..1], &plan, now)
        .await
        .unwrap()
        .incident
        .id;
    let listed: Vec<IncidentId> = store
        .incidents(false)
        .await
        .unwrap()
        .iter()
        .map(|s| s.incident.id)
        .collect();
    assert_eq!(listed, vec![second, first]);
    assert_eq!(store.active_incident_count(now).await.unwrap(), 2);
    store
        .transition(transition(first, EventKind::Cancelled, now), &locale(now))
        .await
        .unwrap();
    let active = store.incidents(false).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].incident.id, second);
    assert_eq!(active[0].affected_customers, 1);
    let all = store.incidents(true).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].incident.id, first);
    assert_eq!(all[1].incident.status, IncidentStatus::Cancelled);
    assert_eq!(all[1].armed_numbers, 0);
    assert_eq!(store.active_incident_count(now).await.unwrap(), 1);
}

async fn an_expired_incident_is_not_active(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    let expiry = now + chrono::Duration::minutes(5);
    expire_at(store, out.incident.id, expiry, now).await;
    assert_eq!(
        store
            .incident(out.incident.id)
            .await
            .unwrap()
            .draft
            .expires_at(),
        Some(chrono::SubsecRound::trunc_subsecs(expiry, 6))
    );
    assert_eq!(store.active_incident_count(now).await.unwrap(), 1);
    let later = now + chrono::Duration::minutes(6);
    assert_eq!(store.active_incident_count(later).await.unwrap(), 0);
}

async fn expired_incidents_are_not_announced(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let out = declare(store, &loaded, now).await;
    expire_at(
        store,
        out.incident.id,
        now + chrono::Duration::minutes(5),
        now,
    )
    .await;
    assert_eq!(
        store.armed_for("+358482222222", now).await.unwrap().len(),
        1
    );
    let later = now + chrono::Duration::minutes(6);
    assert!(
        store
            .armed_for("+358482222222", later)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_closes_of_one_incident_apply_one_after_the_other(store: &Store) {
    let loaded = seeded(store).await;
    let now = Utc::now();
    let wording = locale(now);
    for _ in 0..5 {
        let id = declare(store, &loaded, now).await.incident.id;
        let (restore, cancel) = tokio::join!(
            store.transition(transition(id, EventKind::Restored, now), &wording),
            store.transition(transition(id, EventKind::Cancelled, now), &wording),
        );
        let closed = match (restore, cancel) {
            (Ok(t), Err(StoreError::Rule(_))) => {
                assert_eq!(t.incident.status, IncidentStatus::Restored);
                IncidentStatus::Restored
            }
            (Err(StoreError::Rule(_)), Ok(t)) => {
                assert_eq!(t.incident.status, IncidentStatus::Cancelled);
                IncidentStatus::Cancelled
            }
            other => panic!("exactly one close must win: {other:?}"),
        };
        assert_eq!(store.incident(id).await.unwrap().status, closed);
    }
    let closes = store
        .audit_log(100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "incident.restore" || e.action == "incident.cancel")
        .count();
    assert_eq!(closes, 5);
}
