//! The audit log: newest first, keyset pages, filters.

use chrono::Utc;
use outagecast_store::{AuditEntry, AuditQuery, Store};

use crate::contract;

contract!(
    pages_go_newest_first_and_do_not_shift_when_entries_are_added,
    filters_by_actor_action_family_and_entity,
    entries_read_back_as_written,
);

async fn write(store: &Store, actor: &str, action: &str, subject: Option<&str>) {
    store
        .audit(
            actor,
            action,
            subject,
            &serde_json::json!({ "n": 1 }),
            Utc::now(),
        )
        .await
        .unwrap();
}

fn ids(page: &[AuditEntry]) -> Vec<i64> {
    page.iter().map(|e| e.id).collect()
}

async fn pages_go_newest_first_and_do_not_shift_when_entries_are_added(store: &Store) {
    for i in 0..7 {
        write(
            store,
            "cli:alice",
            "incident.declare",
            Some(&format!("incident:{i}")),
        )
        .await;
    }
    let q = |after_id| AuditQuery {
        after_id,
        limit: 3,
        ..AuditQuery::default()
    };
    let first = store.audit_page(q(None)).await.unwrap();
    assert_eq!(ids(&first), [7, 6, 5]);
    // A new entry arrives between pages: the next page still continues where we were.
    write(store, "cli:bob", "incident.update", Some("incident:1")).await;
    let second = store.audit_page(q(Some(5))).await.unwrap();
    assert_eq!(ids(&second), [4, 3, 2]);
    let last = store.audit_page(q(Some(2))).await.unwrap();
    assert_eq!(ids(&last), [1]);
    assert!(store.audit_page(q(Some(1))).await.unwrap().is_empty());
    // The old entry point is the first page without filters.
    assert_eq!(ids(&store.audit_log(2).await.unwrap()), [8, 7]);
    assert!(
        store
            .audit_page(AuditQuery::default())
            .await
            .unwrap()
            .is_empty(),
        "limit 0 reads nothing"
    );
    assert_eq!(
        store
            .audit_page(AuditQuery {
                limit: u32::MAX,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .len(),
        8,
        "a huge limit is capped, not an error"
    );
}

async fn filters_by_actor_action_family_and_entity(store: &Store) {
    write(store, "cli:alice", "incident.declare", Some("incident:1")).await; // 1
    write(store, "cli:bob", "incident.restore", Some("incident:1")).await; // 2
    write(store, "cli:alice", "customers.import", Some("a.csv")).await; // 3
    write(store, "cli:alice", "incident.declare", Some("incident:12")).await; // 4
    write(store, "admin", "token.create", Some("token:ci")).await; // 5
    write(store, "cli:alice", "incidents", Some("incidents")).await; // 6: not a family member
    write(store, "cli:alice", "contact.opt_out", None).await; // 7
    let page = |actor: Option<&str>, action: Option<&str>, entity: Option<&str>| {
        let q = AuditQuery {
            after_id: None,
            limit: 100,
            actor: actor.map(str::to_string),
            action: action.map(str::to_string),
            entity: entity.map(str::to_string),
        };
        async move { ids(&store.audit_page(q).await.unwrap()) }
    };
    assert_eq!(page(Some("cli:alice"), None, None).await, [7, 6, 4, 3, 1]);
    assert_eq!(page(Some("cli:ali"), None, None).await, Vec::<i64>::new());
    assert_eq!(page(None, Some("incident.declare"), None).await, [4, 1]);
    assert_eq!(page(None, Some("incident"), None).await, [4, 2, 1]);
    assert_eq!(page(None, Some("token"), None).await, [5]);
    assert_eq!(page(None, None, Some("incident:1")).await, [2, 1]);
    assert_eq!(page(None, None, Some("incident")).await, [4, 2, 1]);
    assert_eq!(page(None, None, Some("a.csv")).await, [3]);
    assert_eq!(
        page(Some("cli:alice"), Some("incident"), Some("incident")).await,
        [4, 1]
    );
    // Filters and the cursor together.
    let q = AuditQuery {
        after_id: Some(4),
        limit: 10,
        actor: Some("cli:alice".into()),
        action: Some("incident".into()),
        entity: None,
    };
    assert_eq!(ids(&store.audit_page(q).await.unwrap()), [1]);
    // Wildcards mean nothing special.
    assert!(page(None, Some("%"), None).await.is_empty());
    assert!(page(None, None, Some("_")).await.is_empty());
}

async fn entries_read_back_as_written(store: &Store) {
    use chrono::SubsecRound;
    let at = Utc::now().trunc_subsecs(6);
    let details = serde_json::json!({ "zones": ["DMA 7"], "inserted": 1, "nested": { "x": 1.5 } });
    store
        .audit(
            "cli:alice",
            "zones.import",
            Some("file:z.geojson"),
            &details,
            at,
        )
        .await
        .unwrap();
    store
        .audit(
            "cli:alice",
            "contact.opt_out",
            None,
            &serde_json::json!({}),
            at,
        )
        .await
        .unwrap();
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].at, at);
    assert_eq!(log[1].actor, "cli:alice");
    assert_eq!(log[1].action, "zones.import");
    assert_eq!(log[1].subject.as_deref(), Some("file:z.geojson"));
    assert_eq!(log[1].details, details);
    assert_eq!(log[0].subject, None);
    assert_eq!(log[0].details, serde_json::json!({}));
}
