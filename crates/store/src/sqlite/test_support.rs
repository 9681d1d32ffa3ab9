//! Fixtures of the SQLite unit tests: a store on a fresh file, seeded (the rest is in
//! `crate::fixtures`, shared with the contract suite).

use outagecast_core::customer::{Customer, CustomerId};

use crate::{SqliteStore, Store};

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
    let loaded = crate::fixtures::seed(&Store::from(store.clone()), customers).await;
    (store, dir, loaded)
}
