//! Fixtures for the contract suite: a fresh store on either backend, a few customers at
//! Kaivokatu, a water incident.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::Language;
use outagecast_core::customer::{Customer, CustomerId, CustomerRecord, RecordRules};
use outagecast_core::incident::{Cause, DraftParts, IncidentDraft, IncidentKind, Severity};
use outagecast_core::message::Locale;
use outagecast_core::notice::RecipientPlan;
use outagecast_store::pg::PgStore;
use outagecast_store::{Declaration, DeclareOutcome, Result, SqliteStore, Store};

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

/// An English-speaking customer at Kaivokatu 1; `phone` and `email` may list several values
/// separated by `;`.
pub fn customer(account: &str, phone: &str, email: &str) -> Customer {
    CustomerRecord {
        account_id: account.into(),
        lon: "24.9414".into(),
        lat: "60.1710".into(),
        address: "Kaivokatu 1, Helsinki".into(),
        phone: phone.into(),
        email: email.into(),
        language: "en".into(),
        priority: "false".into(),
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
    let draft = water_draft(now);
    store
        .declare(
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
