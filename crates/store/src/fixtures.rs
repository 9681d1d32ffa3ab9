//! Fixtures shared by the unit tests of both backends and the contract suite
//! (`tests/contract/support.rs` includes this file): customers at Kaivokatu, a water incident,
//! Helsinki wording, seeding, declaring and sending through [`Store`]; the engine's tests
//! include it too. It names the store crate as
//! `outagecast_store` so that it reads the same from inside the crate and from its tests.

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{Customer, CustomerId, CustomerRecord, RecordRules};
use outagecast_core::incident::{Cause, DraftParts, IncidentDraft, IncidentKind, Severity};
use outagecast_core::message::Locale;
use outagecast_core::notice::RecipientPlan;
use outagecast_store::{Declaration, DeclareOutcome, Outcome, Result, Store};

/// An English-speaking customer at Kaivokatu 1; `phone` and `email` may list several
/// values separated by `;`.
pub fn customer(account: &str, phone: &str, email: &str) -> Customer {
    customer_at(account, "24.9414", phone, email)
}

/// [`customer`] at longitude `lon` on Kaivokatu's latitude.
pub fn customer_at(account: &str, lon: &str, phone: &str, email: &str) -> Customer {
    CustomerRecord {
        account_id: account.into(),
        lon: lon.into(),
        lat: "60.1710".into(),
        address: "Kaivokatu 1, Helsinki".into(),
        phone: phone.into(),
        email: email.into(),
        language: "en".into(),
        priority: "false".into(),
        channel: String::new(),
    }
    .parse(RecordRules {
        default_region: None,
        default_language: Language::Fi,
    })
    .unwrap()
}

/// A burst water main around Kaivokatu, fixed in three hours.
pub fn water_draft(now: DateTime<Utc>) -> IncidentDraft {
    IncidentDraft::new(
        DraftParts {
            kind: IncidentKind::Water,
            severity: Severity::Moderate,
            cause: Cause::parse("burst water main").unwrap(),
            etr: Some(now + chrono::Duration::hours(3)),
            reference: None,
            area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 500.0).unwrap()),
            expires_at: None,
        },
        now,
    )
    .unwrap()
}

/// Helsinki wording at `now`.
pub fn locale(now: DateTime<Utc>) -> Locale {
    Locale {
        zone: chrono_tz::Europe::Helsinki,
        now,
    }
}

/// Stores `customers` and reads them back with their ids.
pub async fn seed(store: &Store, customers: &[Customer]) -> Vec<(CustomerId, Customer)> {
    store
        .upsert_customers(customers, "test", "t.csv", Utc::now())
        .await
        .unwrap();
    let ids: Vec<CustomerId> = store
        .service_points()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    store.customers(&ids).await.unwrap()
}

/// Declares [`water_draft`] affecting every customer in `loaded`, told through `plan`.
pub async fn declare_with(
    store: &Store,
    loaded: &[(CustomerId, Customer)],
    plan: &RecipientPlan,
    now: DateTime<Utc>,
) -> Result<DeclareOutcome> {
    let ids: Vec<CustomerId> = loaded.iter().map(|(i, _)| *i).collect();
    declare_draft(store, &water_draft(now), &ids, plan, now).await
}

/// Declares `draft` affecting `affected`, told through `plan`, as `test` in Helsinki wording.
pub async fn declare_draft(
    store: &Store,
    draft: &IncidentDraft,
    affected: &[CustomerId],
    plan: &RecipientPlan,
    now: DateTime<Utc>,
) -> Result<DeclareOutcome> {
    store
        .declare(
            Declaration {
                draft,
                affected,
                plan,
                actor: "test",
                now,
                provenance: None,
            },
            &locale(now),
        )
        .await
}

/// Claims every due SMS and records it sent, but for the numbers in `except` (left leased and
/// pending); how many were sent.
pub async fn send_sms_except(store: &Store, except: &[&str], now: DateTime<Utc>) -> u64 {
    let claimed = store
        .claim(
            "w",
            &[Channel::Sms],
            1000,
            std::time::Duration::from_secs(60),
            now,
        )
        .await
        .unwrap();
    let sent: Vec<(i64, Outcome)> = claimed
        .iter()
        .filter(|n| !except.contains(&n.address.as_str()))
        .map(|n| {
            let outcome = Outcome::Sent {
                provider_id: format!("SM{}", n.id),
                segments: 1,
            };
            (n.id, outcome)
        })
        .collect();
    store.complete("w", &sent, now).await.unwrap()
}
