//! Fixtures of the SQLite unit tests: a store on a fresh file, seeded, with a declaration.

use chrono::{DateTime, Utc};

use outagecast_core::customer::{Customer, CustomerId};
use outagecast_core::notice::RecipientPlan;

pub use crate::fixtures::{customer, locale, water_draft};
use crate::{Declaration, DeclareOutcome, Result, SqliteStore};

/// A store on a fresh file in a temporary directory (kept alive by the returned guard).
pub async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db"))
        .await
        .expect("open store");
    (store, dir)
}

/// A fresh store holding `customers`, read back with their ids.
pub async fn seeded(
    customers: &[Customer],
) -> (SqliteStore, tempfile::TempDir, Vec<(CustomerId, Customer)>) {
    let (store, dir) = fresh().await;
    crate::ops::customers::upsert_customers(&store, customers, "test", "t.csv", Utc::now())
        .await
        .unwrap();
    let ids: Vec<CustomerId> = crate::ops::customers::service_points(&store)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let loaded = crate::ops::customers::customers(&store, &ids)
        .await
        .unwrap();
    (store, dir, loaded)
}

/// Declares [`water_draft`] affecting every customer in `loaded`, told through `plan`.
pub async fn declare_with(
    store: &SqliteStore,
    loaded: &[(CustomerId, Customer)],
    plan: &RecipientPlan,
    now: DateTime<Utc>,
) -> Result<DeclareOutcome> {
    let ids: Vec<CustomerId> = loaded.iter().map(|(i, _)| *i).collect();
    let draft = water_draft(now);
    crate::ops::incidents::declare(
        store,
        Declaration {
            draft: &draft,
            affected: &ids,
            plan,
            actor: "test",
            now,
            provenance: None,
        },
        &locale(now),
    )
    .await
}
