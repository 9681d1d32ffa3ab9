//! Customers: import, read back, pages, the generation counter.

use chrono::Utc;
use outagecast_store::Store;

use crate::contract;
use crate::support::{customer, seed};

contract!(import_then_read_back);

async fn import_then_read_back(store: &Store) {
    let loaded = seed(
        store,
        &[
            customer("A", "+358481111111", "a@example.com"),
            customer("B", "+358481111112", ""),
        ],
    )
    .await;
    assert_eq!(loaded.len(), 2);
    assert_eq!(store.customer_count().await.unwrap(), 2);
    let before = store.customers_generation().await.unwrap();
    let again = store
        .upsert_customers(
            &[customer("C", "+358481111113", "")],
            "test",
            "t.csv",
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(again.inserted, 1, "{again:?}");
    assert!(store.customers_generation().await.unwrap() > before);
}
