//! CAP provenance: messages recorded with declarations and transitions, CAP-only records, the
//! origin of an incident.

use chrono::{DateTime, SubsecRound, Utc};
use outagecast_core::customer::{Customer, CustomerId};
use outagecast_core::incident::{EventKind, IncidentChanges, IncidentId, Severity};
use outagecast_core::notice::plan_recipients;
use outagecast_store::{
    CapMessageRow, CapRecord, Declaration, Provenance, Store, StoreError, Transition,
};

use crate::contract;
use crate::support::{customer, locale, seed, water_draft};

contract!(
    a_cap_message_is_recorded_once_with_its_incident,
    a_transition_records_its_message,
);

fn cap(identifier: &str, msg_type: &str, sent: DateTime<Utc>) -> Provenance {
    Provenance {
        area_source: Some("CAP test".into()),
        cap: Some(CapRecord {
            sender: "ops@example.org".into(),
            identifier: identifier.into(),
            sent,
            msg_type: msg_type.into(),
            references: String::new(),
            urgency: Some("Immediate".into()),
            certainty: Some("Observed".into()),
            headline: Some("Burst main".into()),
            description: None,
            expires_at: None,
        }),
    }
}

/// Incidents (closed too) and notices, for "nothing was written".
async fn counts(store: &Store) -> (usize, u64) {
    let incidents = store.incidents(true).await.unwrap().len();
    let notices = store
        .notice_totals()
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .sum();
    (incidents, notices)
}

async fn a_cap_message_is_recorded_once_with_its_incident(store: &Store) {
    let loaded = seed(store, &[customer("A", "+358481111111", "")]).await;
    let now = Utc::now();
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    let ids: Vec<CustomerId> = loaded.iter().map(|(i, _)| *i).collect();
    let draft = water_draft(now);
    let alert = cap("HSY-1", "Alert", now);
    let d = Declaration {
        draft: &draft,
        affected: &ids,
        plan: &plan,
        actor: "test",
        now,
        provenance: Some(&alert),
    };
    let out = store.declare(d, &locale(now)).await.unwrap();
    let id = out.incident.id;
    let found = store
        .cap_incidents(&[
            ("ops@example.org".into(), "HSY-1".into()),
            ("x".into(), "y".into()),
            ("ops@example.org".into(), "HSY-1".into()),
        ])
        .await
        .unwrap();
    assert_eq!(found, vec![id]);
    assert!(store.cap_incidents(&[]).await.unwrap().is_empty());
    let message = CapMessageRow {
        sender: "ops@example.org".into(),
        identifier: "HSY-1".into(),
        sent: now.trunc_subsecs(6),
        msg_type: "Alert".into(),
        incident: id,
    };
    assert_eq!(
        store
            .cap_message("ops@example.org", "HSY-1")
            .await
            .unwrap()
            .as_ref(),
        Some(&message)
    );
    assert_eq!(store.cap_message("x", "HSY-1").await.unwrap(), None);
    let origin = store.origin(id).await.unwrap();
    assert_eq!(origin.area_source.as_deref(), Some("CAP test"));
    assert_eq!(origin.urgency.as_deref(), Some("Immediate"));
    assert_eq!(origin.certainty.as_deref(), Some("Observed"));
    assert_eq!(origin.headline.as_deref(), Some("Burst main"));
    assert_eq!(origin.description, None);
    assert_eq!(origin.cap_messages, vec![message]);

    // The same message again: the UNIQUE key refuses it and the whole declaration is undone.
    let before = counts(store).await;
    let audits = store.audit_log(100).await.unwrap().len();
    let err = store.declare(d, &locale(now)).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert_eq!(counts(store).await, before);
    assert_eq!(store.audit_log(100).await.unwrap().len(), audits);

    // An expiry-only Update is recorded without an event; a closed incident takes none.
    let mut update = cap("HSY-2", "Update", now);
    if let Some(c) = update.cap.as_mut() {
        c.expires_at = Some(now + chrono::Duration::hours(5));
        c.headline = None;
        c.description = Some("Crews on site".into());
    }
    store
        .record_cap_only(id, &update, "test", now)
        .await
        .unwrap();
    let shown = store.incident(id).await.unwrap();
    assert_eq!(
        shown.draft.expires_at(),
        Some((now + chrono::Duration::hours(5)).trunc_subsecs(6))
    );
    let origin = store.origin(id).await.unwrap();
    assert_eq!(origin.headline.as_deref(), Some("Burst main"), "kept");
    assert_eq!(origin.description.as_deref(), Some("Crews on site"));
    assert_eq!(origin.cap_messages.len(), 2);
    assert_eq!(origin.cap_messages[1].msg_type, "Update");
    let log = store.audit_log(1).await.unwrap();
    assert_eq!(log[0].action, "incident.cap_recorded");
    assert_eq!(log[0].details["identifier"], "HSY-2");
    assert_eq!(log[0].details["msg_type"], "Update");
    assert_eq!(counts(store).await, before, "no notices");

    let err = store
        .record_cap_only(IncidentId(999), &cap("HSY-9", "Update", now), "test", now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(matches!(
        store.origin(IncidentId(999)).await.unwrap_err(),
        StoreError::NotFound(_)
    ));

    store
        .transition(
            Transition {
                id,
                event: EventKind::Cancelled,
                changes: IncidentChanges::default(),
                actor: "test",
                growth: None,
                now,
                provenance: None,
            },
            &locale(now),
        )
        .await
        .unwrap();
    let err = store
        .record_cap_only(id, &cap("HSY-3", "Update", now), "test", now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err}");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert_eq!(
        store.cap_message("ops@example.org", "HSY-3").await.unwrap(),
        None
    );
}

async fn a_transition_records_its_message(store: &Store) {
    let loaded = seed(store, &[customer("A", "+358481111111", "")]).await;
    let now = Utc::now();
    let refs: Vec<(CustomerId, &Customer)> = loaded.iter().map(|(i, c)| (*i, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    let out = crate::support::declare_with(store, &loaded, &plan, now)
        .await
        .unwrap();
    let id = out.incident.id;
    let mut update = cap("HSY-U", "Update", now);
    update.area_source = None;
    let t = store
        .transition(
            Transition {
                id,
                event: EventKind::Updated,
                changes: IncidentChanges {
                    severity: Some(Severity::Severe),
                    ..Default::default()
                },
                actor: "test",
                growth: None,
                now,
                provenance: Some(&update),
            },
            &locale(now),
        )
        .await
        .unwrap();
    assert_eq!(t.incident.draft.severity(), Severity::Severe);
    assert_eq!(t.rewritten, 1);
    assert_eq!(
        store
            .cap_incidents(&[("ops@example.org".into(), "HSY-U".into())])
            .await
            .unwrap(),
        vec![id]
    );
    let origin = store.origin(id).await.unwrap();
    assert_eq!(origin.area_source, None, "declared without provenance");
    assert_eq!(origin.headline.as_deref(), Some("Burst main"));
    assert_eq!(origin.cap_messages.len(), 1);

    // The same message again is refused and the transition undone.
    let err = store
        .transition(
            Transition {
                id,
                event: EventKind::Cancelled,
                changes: IncidentChanges::default(),
                actor: "test",
                growth: None,
                now,
                provenance: Some(&update),
            },
            &locale(now),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert_eq!(
        store.incident(id).await.unwrap().status,
        outagecast_core::incident::IncidentStatus::Updated
    );
    assert_eq!(
        store.audit_log(1).await.unwrap()[0].action,
        "incident.update"
    );
}
