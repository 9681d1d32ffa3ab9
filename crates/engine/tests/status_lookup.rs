//! The public status lookup agrees with the selection: 1,000 customers at seeded random
//! points around an incident (and on its corners and edges), each looked up by its point;
//! affected exactly when the declaration selected it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use outagecast_core::area::{Area, Circle, LonLat, polygon_from_ring};
use outagecast_core::customer::Customer;
use outagecast_core::incident::{Cause, IncidentKind, Severity};
use outagecast_engine::{AreaSpec, DeclareRequest, Engine, IncidentDetails, Rails, Spelling};
use outagecast_store::Store;

mod support;

#[tokio::test]
async fn the_status_of_1000_points_agrees_with_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
    let now = Utc::now();
    // A concave polygon (an L) and a circle beside it: the incident is their union.
    let ring = [
        [24.930, 60.160],
        [24.950, 60.160],
        [24.950, 60.165],
        [24.940, 60.165],
        [24.940, 60.175],
        [24.930, 60.175],
        [24.930, 60.160],
    ];
    let polygon = Area::Polygon(polygon_from_ring(&ring).unwrap());
    let circle = Area::Circle(Circle::new(LonLat::parse(24.955, 60.172).unwrap(), 400.0).unwrap());
    let area = Area::union(vec![polygon, circle]).unwrap();
    // Seeded points over a box a little larger than the area, then every corner and the
    // middle of every edge (the boundary is inside, as in the selection).
    let mut seed: u64 = 17;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut points: Vec<(f64, f64)> = Vec::new();
    for w in ring.windows(2) {
        points.push((w[0][0], w[0][1]));
        points.push(((w[0][0] + w[1][0]) / 2.0, (w[0][1] + w[1][1]) / 2.0));
    }
    while points.len() < 1000 {
        points.push((24.925 + 0.040 * next(), 60.155 + 0.025 * next()));
    }
    let customers: Vec<Customer> = points
        .iter()
        .enumerate()
        .map(|(i, (lon, lat))| {
            support::customer(
                &format!("R-{i:05}"),
                &lon.to_string(),
                &lat.to_string(),
                &format!("+35840{:07}", 1_000_000 + i),
                "fi",
            )
        })
        .collect();
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
                area: AreaSpec::Shape(area),
                rails: Rails {
                    confirm_threshold: u64::MAX,
                    ..Rails::default()
                },
                now,
            },
            &Spelling::CLI,
        )
        .await
        .unwrap();
    let id = declared.outcome.incident.id;
    let selected: std::collections::HashSet<String> = store
        .affected_accounts(id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    assert!(
        selected.len() > 100 && selected.len() < 900,
        "{}",
        selected.len()
    );
    let mut disagreements = Vec::new();
    for (i, (lon, lat)) in points.iter().enumerate() {
        let answer = engine
            .status_at(LonLat::parse(*lon, *lat).unwrap(), now)
            .await
            .unwrap();
        let affected = answer.incidents.iter().any(|v| v.head.id == id.0);
        if affected != selected.contains(&format!("R-{i:05}")) {
            disagreements.push((lon, lat, affected));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements: {disagreements:?}",
        disagreements.len()
    );
    eprintln!(
        "status lookup: 1000 points, {} affected, 0 disagreements",
        selected.len()
    );
}
