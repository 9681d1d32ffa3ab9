//! An update that shrinks the area, through the engine: who leaves is taken out of the
//! incident, disarmed, and told only if they were told of the outage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::Channel;
use outagecast_core::incident::{Cause, IncidentKind, Severity};
use outagecast_engine::{
    AreaSpec, DeclareRequest, Engine, IncidentDetails, Rails, Spelling, UpdateRequest,
};
use outagecast_store::Store;

mod support;

// The store's test fixtures: customers, seeding, sending.
#[allow(dead_code)]
#[path = "../../store/src/fixtures.rs"]
mod fixtures;

use fixtures::{customer_at, send_sms_except};

fn circle(radius_m: f64) -> AreaSpec {
    AreaSpec::Shape(Area::Circle(
        Circle::new(LonLat::parse(24.9414, 60.1710).unwrap(), radius_m).unwrap(),
    ))
}

#[tokio::test]
async fn a_smaller_area_tells_the_told_leavers_and_disarms_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
    let now = Utc::now();
    // A at the centre; B about a kilometre east.
    let customers = [
        customer_at("A", "24.9414", "+358481111111", ""),
        customer_at("B", "24.9600", "+358482222222", ""),
    ];
    store
        .upsert_customers(&customers, "test", "t.csv", now)
        .await
        .unwrap();
    let settings = support::settings();
    let engine = Engine::with_store(store.clone(), settings).await.unwrap();
    let declared = engine
        .declare(
            DeclareRequest {
                actor: "test".into(),
                details: IncidentDetails {
                    kind: IncidentKind::Water,
                    severity: Severity::Moderate,
                    cause: Cause::parse("burst water main").unwrap(),
                    etr: None,
                    reference: None,
                    expires_at: None,
                },
                area: circle(1500.0),
                rails: Rails::default(),
                now,
            },
            &Spelling::CLI,
        )
        .await
        .unwrap();
    let id = declared.outcome.incident.id;
    assert_eq!(store.affected_ids(id).await.unwrap().len(), 2);
    // Both were told.
    assert_eq!(send_sms_except(&store, &[], now).await, 2);

    let updated = engine
        .update(
            UpdateRequest {
                actor: "test".into(),
                id,
                etr: None,
                cause: None,
                severity: None,
                area: Some(circle(300.0)),
                rails: Rails::default(),
                now,
            },
            &Spelling::CLI,
        )
        .await
        .unwrap();
    assert_eq!(updated.left_customers, 1);
    assert_eq!(updated.outcome.removed_customers, 1);
    assert_eq!(updated.outcome.left_notices.get(&Channel::Sms), Some(&1));
    assert!(updated.outcome.notices.is_empty(), "A hears nothing new");
    assert_eq!(updated.outcome.disarmed, 1);
    assert_eq!(store.affected_ids(id).await.unwrap().len(), 1);
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
    let pending = store.pending_notices(id).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].1, "+358482222222");
    assert!(
        pending[0].3.contains("no longer affects"),
        "{}",
        pending[0].3
    );
}
