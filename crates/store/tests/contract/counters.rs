//! The maintained per-incident counters (migrations sqlite 0011, postgres 0007) against a
//! recount: after a seeded random mix of declarations, claims and outcomes, requeues,
//! opt-outs, holds and closes, every incident's summary equals what its notices, affected set
//! and flags say one by one.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::contact::Channel;
use outagecast_core::customer::{Customer, CustomerId};
use outagecast_core::incident::{EventKind, IncidentChanges, IncidentId, IncidentStatus};
use outagecast_core::notice::plan_recipients;
use outagecast_store::{Outcome, Requeue, Store, Transition};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::contract;
use crate::support::{customer, declare_with, locale, seed};

contract!(counters_equal_a_recount_after_a_random_mix);

async fn counters_equal_a_recount_after_a_random_mix(store: &Store) {
    // A few seeds, one after the other on one store: later mixes start from earlier ones' rows.
    let mut all = vec![];
    for seed in [19, 7, 2026] {
        mix(store, seed, &mut all).await;
    }
}

async fn mix(store: &Store, rng_seed: u64, all: &mut Vec<IncidentId>) {
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let people: Vec<Customer> = (0..40)
        .map(|i| {
            // Some numbers shared between accounts, some customers with an email too.
            let phone = format!("+35848{:07}", 1_000_000 + rng.random_range(0..30));
            let email = if i % 3 == 0 {
                format!("c{}@example.com", rng.random_range(0..20))
            } else {
                String::new()
            };
            customer(&format!("S{rng_seed}A{i}"), &phone, &email)
        })
        .collect();
    let loaded = seed(store, &people).await;
    let mut now = Utc::now();
    let mut open: Vec<IncidentId> = vec![];
    let before = all.len();
    for step in 0..60 {
        now += chrono::Duration::seconds(1);
        match rng.random_range(0..8) {
            0 | 1 if open.len() < 4 => {
                let chosen: Vec<(CustomerId, Customer)> = loaded
                    .iter()
                    .filter(|_| rng.random_bool(0.5))
                    .cloned()
                    .collect();
                let refs: Vec<(CustomerId, &Customer)> =
                    chosen.iter().map(|(i, c)| (*i, c)).collect();
                let plan = plan_recipients(&refs, |_, _| false);
                let out = declare_with(store, &chosen, &plan, now).await.unwrap();
                open.push(out.incident.id);
                all.push(out.incident.id);
            }
            0..=2 => {
                let channels = [Channel::Sms, Channel::Email];
                let limit = rng.random_range(1..10);
                let claimed = store
                    .claim("w", &channels, limit, Duration::from_secs(60), now)
                    .await
                    .unwrap();
                let mut outcomes: Vec<(i64, Outcome)> = vec![];
                for n in &claimed {
                    if rng.random_bool(0.2) {
                        continue;
                    }
                    let outcome = match rng.random_range(0..4) {
                        0 => Outcome::Failed {
                            reason: "unknown number".into(),
                        },
                        1 => Outcome::Retry {
                            not_before: now,
                            reason: "429".into(),
                            in_doubt: false,
                        },
                        _ => Outcome::Sent {
                            provider_id: format!("P{}", n.id),
                            segments: 1,
                        },
                    };
                    outcomes.push((n.id, outcome));
                }
                store.complete("w", &outcomes, now).await.unwrap();
                if rng.random_bool(0.3) {
                    store.release("w").await.unwrap();
                }
            }
            3 if !open.is_empty() => {
                let id = open.remove(rng.random_range(0..open.len()));
                let event = if rng.random_bool(0.5) {
                    EventKind::Restored
                } else {
                    EventKind::Cancelled
                };
                let t = Transition {
                    id,
                    event,
                    changes: IncidentChanges::default(),
                    actor: "test",
                    growth: None,
                    now,
                    provenance: None,
                };
                let out = store.transition(t, &locale(now)).await.unwrap();
                assert_ne!(out.incident.status, IncidentStatus::Declared);
            }
            4 => {
                let (_, c) = &loaded[rng.random_range(0..loaded.len())];
                let phone = c.phones().first().map(|p| p.e164().to_string());
                if let Some(phone) = phone {
                    store
                        .opt_out_and_withdraw(Channel::Sms, &phone, "sms:STOP", now)
                        .await
                        .unwrap();
                }
            }
            5 => {
                store.hold_channel(Channel::Sms, "401", now).await.unwrap();
            }
            6 => {
                store.resume_channel(Channel::Sms, now).await.unwrap();
            }
            _ if !all.is_empty() => {
                let incident = all[rng.random_range(0..all.len())];
                store
                    .requeue(Requeue {
                        incident,
                        channel: None,
                        actor: "test",
                        now,
                    })
                    .await
                    .unwrap();
            }
            _ => {}
        }
        check(store, all, now, step).await;
    }
    assert!(
        all.len() >= before + 2,
        "the mix declared {} incidents",
        all.len() - before
    );
}

/// Every incident's counters equal a recount of its rows, and the totals their sum.
async fn check(store: &Store, incidents: &[IncidentId], now: DateTime<Utc>, step: usize) {
    let snapshot = store
        .ivr_snapshot(now, now - chrono::Duration::days(1))
        .await
        .unwrap();
    let mut totals: BTreeMap<(Channel, String), u64> = BTreeMap::new();
    for id in incidents {
        let summary = store
            .summary(store.incident(*id).await.unwrap())
            .await
            .unwrap();
        let mut recount: BTreeMap<(Channel, String), u64> = BTreeMap::new();
        for row in store.notice_report(*id).await.unwrap() {
            *recount
                .entry((row.channel, row.status.as_str().to_string()))
                .or_default() += 1;
        }
        let counted: BTreeMap<(Channel, String), u64> = summary
            .notices
            .iter()
            .map(|n| ((n.channel, n.status.as_str().to_string()), n.count))
            .collect();
        assert_eq!(counted, recount, "incident {id:?} after step {step}");
        for (k, v) in &recount {
            *totals.entry(k.clone()).or_default() += v;
        }
        let affected = store.affected_ids(*id).await.unwrap().len() as u64;
        assert_eq!(summary.affected_customers, affected, "step {step}");
        let armed = snapshot
            .flags
            .iter()
            .filter(|f| f.incident_id == *id && f.disarmed_at.is_none())
            .count() as u64;
        assert_eq!(summary.armed_numbers, armed, "armed, step {step}");
    }
    let totals_counted: BTreeMap<(Channel, String), u64> = store
        .notice_totals()
        .await
        .unwrap()
        .iter()
        .map(|n| ((n.channel, n.status.as_str().to_string()), n.count))
        .collect();
    assert_eq!(totals_counted, totals, "totals after step {step}");
}
