//! API tokens: create, authenticate, revoke, the unique name.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_store::{Store, StoreError};

use crate::contract;

contract!(
    create_authenticate_revoke,
    a_duplicate_name_is_refused_with_the_fix_and_writes_nothing,
    the_secret_is_never_audited_or_listed,
    use_is_noted_at_most_once_a_minute,
    concurrent_creations_of_one_name_give_one_token_and_conflicts,
);

fn secret(byte: u8) -> TokenSecret {
    TokenSecret::generate([byte; 32])
}

/// Now, to the microsecond both stores keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn create_authenticate_revoke(store: &Store) {
    let now = now();
    let s = secret(1);
    let created = store
        .create_token(" ci ", Role::Operator, &s, "cli:alice", now)
        .await
        .unwrap();
    assert_eq!(created.name, "ci");
    assert_eq!(created.role, Role::Operator);
    assert_eq!(created.created_at, now);
    assert_eq!(created.created_by, "cli:alice");
    assert_eq!((created.last_used_at, created.revoked_at), (None, None));
    assert_eq!(store.token_count().await.unwrap(), 1);

    let seen = store.authenticate(&s, now).await.unwrap().unwrap();
    assert_eq!(seen.id, created.id);
    assert_eq!(seen.last_used_at, Some(now));
    assert!(store.authenticate(&secret(2), now).await.unwrap().is_none());
    // Parsed from a header, the same text is the same token.
    let presented = TokenSecret::parse(s.expose()).unwrap();
    assert!(store.authenticate(&presented, now).await.unwrap().is_some());

    let revoked = store.revoke_token(" ci", "cli:bob", now).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(now));
    assert!(store.authenticate(&s, now).await.unwrap().is_none());
    assert_eq!(store.token_count().await.unwrap(), 0);
    // Again: nothing changes, no second audit entry.
    let later = now + TimeDelta::hours(1);
    let again = store.revoke_token("ci", "cli:bob", later).await.unwrap();
    assert_eq!(again.revoked_at, Some(now));
    let listed = store.tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(now));
    assert_eq!(listed[0].last_used_at, Some(now));

    let log = store.audit_log(10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.revoke", "token.create"]);
    assert_eq!(log[0].actor, "cli:bob");
    assert_eq!(log[0].subject.as_deref(), Some("token:ci"));
    assert_eq!(
        log[0].details,
        serde_json::json!({ "name": "ci", "role": "operator" })
    );
    assert_eq!(log[1].subject.as_deref(), Some("token:ci"));
    assert_eq!(
        log[1].details,
        serde_json::json!({ "name": "ci", "role": "operator" })
    );

    let e = store
        .revoke_token("nope", "cli:bob", now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    assert!(e.to_string().contains("\"nope\""), "{e}");
}

async fn a_duplicate_name_is_refused_with_the_fix_and_writes_nothing(store: &Store) {
    let now = Utc::now();
    store
        .create_token("ivr", Role::Ivr, &secret(1), "admin", now)
        .await
        .unwrap();
    let e = store
        .create_token(" ivr", Role::Admin, &secret(2), "admin", now)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::Conflict { field: "name", .. }),
        "{msg}"
    );
    assert!(msg.starts_with("name: a token named \"ivr\""), "{msg}");
    assert!(msg.contains("--name"), "{msg}");
    assert!(store.authenticate(&secret(2), now).await.unwrap().is_none());
    assert_eq!(store.tokens().await.unwrap().len(), 1);
    assert_eq!(store.audit_log(10).await.unwrap().len(), 1);

    // Revoked tokens keep their names.
    store.revoke_token("ivr", "admin", now).await.unwrap();
    let e = store
        .create_token("ivr", Role::Ivr, &secret(3), "admin", now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert!(
        e.to_string().starts_with("name: a revoked token named"),
        "{e}"
    );
    assert_eq!(store.tokens().await.unwrap().len(), 1);
    assert_eq!(store.audit_log(10).await.unwrap().len(), 2);

    // Another name is fine.
    store
        .create_token("ivr-2", Role::Ivr, &secret(3), "admin", now)
        .await
        .unwrap();

    let e = store
        .create_token("  ", Role::Ivr, &secret(4), "admin", now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Rule(_)), "{e}");
    assert!(e.to_string().starts_with("name: is empty"), "{e}");
    let e = store
        .create_token(&"x".repeat(65), Role::Ivr, &secret(4), "admin", now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("longer than 64"), "{e}");
    assert_eq!(store.tokens().await.unwrap().len(), 2);
}

/// The audit log and the listing never show a token's text or hash. (That the database itself
/// holds no text is checked for SQLite's file in the store's unit tests.)
async fn the_secret_is_never_audited_or_listed(store: &Store) {
    let now = Utc::now();
    let s = secret(0x5A);
    store
        .create_token("deploy", Role::Admin, &s, "cli:root", now)
        .await
        .unwrap();
    store.revoke_token("deploy", "cli:root", now).await.unwrap();
    let body = &s.expose()[3..];
    for e in store.audit_log(10).await.unwrap() {
        let text = format!("{e:?} {}", e.details);
        assert!(!text.contains(body), "{text}");
        assert!(!text.contains(&s.hash()), "{text}");
    }
    let listed = format!(
        "{:?} {}",
        store.tokens().await.unwrap(),
        serde_json::to_string(&store.tokens().await.unwrap()).unwrap()
    );
    assert!(!listed.contains(body) && !listed.contains(&s.hash()));
}

async fn use_is_noted_at_most_once_a_minute(store: &Store) {
    let t0 = now();
    let s = secret(7);
    store
        .create_token("ivr", Role::Ivr, &s, "admin", t0)
        .await
        .unwrap();
    let at = |d: i64| t0 + TimeDelta::seconds(d);
    let used = |d: i64| {
        let s = &s;
        async move {
            store
                .authenticate(s, at(d))
                .await
                .unwrap()
                .unwrap()
                .last_used_at
        }
    };
    assert_eq!(used(0).await, Some(at(0)));
    assert_eq!(
        used(59).await,
        Some(at(0)),
        "within the minute: not written"
    );
    assert_eq!(used(60).await, Some(at(60)));
    assert_eq!(store.tokens().await.unwrap()[0].last_used_at, Some(at(60)));
    // A clock behind the note does not move it back.
    assert_eq!(used(30).await, Some(at(60)));
    assert_eq!(store.tokens().await.unwrap()[0].last_used_at, Some(at(60)));
}

async fn concurrent_creations_of_one_name_give_one_token_and_conflicts(store: &Store) {
    let now = Utc::now();
    let tries = (0..4u8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create_token("race", Role::Viewer, &secret(10 + i), "admin", now)
                .await
        })
    });
    let mut created = 0;
    for t in tries.collect::<Vec<_>>() {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(e) => assert!(matches!(e, StoreError::Conflict { .. }), "{e}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.tokens().await.unwrap().len(), 1);
    assert_eq!(store.audit_log(10).await.unwrap().len(), 1);
}
