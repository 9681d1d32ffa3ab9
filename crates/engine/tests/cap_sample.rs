//! The sample CAP export under `docs/cap-sample.xml`: an incident declared by polygon over
//! customers who speak Finnish and Swedish, at fixed times, exported as the server does. This
//! test keeps the committed file equal to what the code writes.
//!
//! After changing the export: `OUTAGECAST_UPDATE_DOCS=1 cargo test -p outagecast-engine --test cap_sample`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use outagecast_core::area::{Area, polygon_from_ring};
use outagecast_core::incident::{Cause, IncidentKind, Severity};
use outagecast_engine::{
    AreaSpec, DeclareRequest, Engine, IncidentDetails, PublishSettings, Rails, Spelling,
};
use outagecast_store::Store;

mod support;

#[tokio::test]
async fn the_committed_sample_cap_is_what_the_export_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
    let now: DateTime<Utc> = "2026-11-25T11:00:00Z".parse().unwrap();
    store
        .upsert_customers(
            &[
                support::customer("A", "24.9400", "60.1700", "+358401234567", "fi"),
                support::customer("B", "24.9410", "60.1700", "+358401234568", "sv"),
            ],
            "test",
            "t.csv",
            now,
        )
        .await
        .unwrap();
    let settings = support::settings();
    let engine = Engine::with_store(store, settings).await.unwrap();
    let ring = [
        [24.9380, 60.1690],
        [24.9430, 60.1690],
        [24.9430, 60.1710],
        [24.9380, 60.1710],
        [24.9380, 60.1690],
    ];
    let declared = engine
        .declare(
            DeclareRequest {
                actor: "test".into(),
                details: IncidentDetails {
                    kind: IncidentKind::Water,
                    severity: Severity::Severe,
                    cause: Cause::parse("burst water main on Kaivokatu").unwrap(),
                    etr: Some(now + Duration::hours(4)),
                    reference: Some("HSY-1234".into()),
                    expires_at: Some(now + Duration::hours(12)),
                },
                area: AreaSpec::Shape(Area::Polygon(polygon_from_ring(&ring).unwrap())),
                rails: Rails::default(),
                now,
            },
            &Spelling::CLI,
        )
        .await
        .unwrap();
    let publish = PublishSettings {
        cap_sender: "outages@utility.example".into(),
        public_url: Some("https://outages.utility.example".into()),
        sender_name: Some("Helsinki Water & Sewerage".into()),
        ..PublishSettings::default()
    };
    let xml = engine
        .incident_cap(declared.outcome.incident.id, &publish)
        .await
        .unwrap();
    assert_eq!(xml.matches("<info>").count(), 2, "fi and sv: {xml}");
    // OUTAGECAST_SENDER_NAME in every info, escaped.
    assert_eq!(
        xml.matches("<senderName>Helsinki Water &amp; Sewerage</senderName>")
            .count(),
        2,
        "{xml}"
    );
    assert!(xml.contains("<polygon>60.169,24.938 60.169,24.943 60.171,24.943 60.171,24.938 60.169,24.938</polygon>"), "{xml}");
    let text = format!("{xml}\n");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cap-sample.xml");
    if std::env::var_os("OUTAGECAST_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/cap-sample.xml is out of date; regenerate it with \
         OUTAGECAST_UPDATE_DOCS=1 cargo test -p outagecast-engine --test cap_sample"
    );
}
