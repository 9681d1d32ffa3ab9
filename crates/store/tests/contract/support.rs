//! Fixtures for the contract suite: a fresh store on either backend, and the crate's own
//! fixtures (a few customers at Kaivokatu, a water incident, seeding, declaring).

use std::sync::atomic::{AtomicU32, Ordering};

use outagecast_store::pg::PgStore;
use outagecast_store::{SqliteStore, Store};

// The unit tests' fixtures, one file for both (each suite uses only some of it).
#[allow(dead_code)]
#[path = "../../src/fixtures.rs"]
mod fixtures;
pub use fixtures::{
    customer, customer_at, declare_with, locale, seed, send_sms_except, water_draft,
};

/// A store under test and what keeps it alive (its temporary directory).
pub struct Fresh {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Fresh {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// A store on a fresh SQLite file.
pub async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db"))
        .await
        .expect("open store");
    Fresh {
        store: store.into(),
        _dir: Some(dir),
    }
}

/// A store in a fresh schema on the test cluster, or `None` when there is no cluster (and
/// `OUTAGECAST_REQUIRE_PG` is not set).
pub async fn postgres(test: &str) -> Option<Fresh> {
    let url = match std::env::var("OUTAGECAST_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("OUTAGECAST_REQUIRE_PG").as_deref() != Ok("1"),
                "{test}: OUTAGECAST_REQUIRE_PG=1 but OUTAGECAST_TEST_PG_URL is not set"
            );
            eprintln!("{test}: PostgreSQL half skipped, OUTAGECAST_TEST_PG_URL is not set");
            return None;
        }
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let schema = format!(
        "c_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let store = PgStore::connect_schema(&url, &schema)
        .await
        .expect("connect to the test cluster");
    Some(Fresh {
        store: store.into(),
        _dir: None,
    })
}

/// Runs each listed `async fn(&Store)` on both backends: `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let fresh = $crate::support::sqlite().await;
                    super::$name(&fresh).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(fresh) = $crate::support::postgres(stringify!($name)).await {
                        super::$name(&fresh).await;
                    }
                }
            )*
        }
    };
}
