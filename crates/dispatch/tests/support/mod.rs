//! What the dispatcher's integration tests share: a transport that records what it was asked to
//! send, and a real SQLite store with one declared incident.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{CustomerRecord, RecordRules};
use outagecast_core::incident::{Cause, DraftParts, IncidentDraft, IncidentKind, Severity};
use outagecast_core::notice::plan_recipients;
use outagecast_dispatch::transport::{LookupError, OutgoingMessage, SendOutcome, Transport};
use outagecast_store::Store;

// The store's test fixtures: seeding customers.
#[allow(dead_code)]
#[path = "../../../store/src/fixtures.rs"]
mod fixtures;

pub const HELSINKI: &str = "+358401000001";
pub const NEW_YORK: &str = "+358401000002";
pub const HELSINKI_PRIORITY: &str = "+358401000003";

/// Records every number it is asked to send to; accepts everything.
#[derive(Clone, Default)]
pub struct Recorder {
    pub sent: Arc<Mutex<Vec<String>>>,
}

impl Transport for Recorder {
    fn channel(&self) -> Channel {
        Channel::Sms
    }
    async fn send(&self, m: &OutgoingMessage) -> SendOutcome {
        let mut sent = self.sent.lock().unwrap();
        sent.push(m.to.clone());
        SendOutcome::Accepted {
            provider_id: format!("SM{}", sent.len()),
        }
    }
    async fn find_sent(&self, _: &OutgoingMessage) -> Result<Option<String>, LookupError> {
        Ok(None)
    }
    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }
    fn cost(&self, _: &OutgoingMessage) -> u32 {
        1
    }
}

/// A store with three customers, declared at `now` with `severity`: one in Helsinki, one in
/// New York, and a priority customer in Helsinki.
pub async fn declared(now: DateTime<Utc>, severity: Severity) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
    let rules = RecordRules {
        default_region: None,
        default_language: Language::En,
    };
    let customer = |account: &str, (lon, lat): (&str, &str), phone: &str, priority: &str| {
        CustomerRecord {
            account_id: account.into(),
            lon: lon.into(),
            lat: lat.into(),
            address: format!("{account} street 1"),
            phone: phone.into(),
            email: String::new(),
            language: "en".into(),
            priority: priority.into(),
            channel: String::new(),
        }
        .parse(rules)
        .unwrap()
    };
    let customers = vec![
        customer("HEL", ("24.9414", "60.1710"), HELSINKI, "false"),
        customer("NYC", ("-73.9857", "40.7484"), NEW_YORK, "false"),
        customer("HEL-P", ("24.9384", "60.1699"), HELSINKI_PRIORITY, "true"),
    ];
    let loaded = fixtures::seed(&store, &customers).await;
    let ids: Vec<_> = loaded.iter().map(|(id, _)| *id).collect();
    let refs: Vec<_> = loaded.iter().map(|(id, c)| (*id, c)).collect();
    let plan = plan_recipients(&refs, |_, _| false);
    let draft = IncidentDraft::new(
        DraftParts {
            kind: IncidentKind::Water,
            severity,
            cause: Cause::parse("burst water main").unwrap(),
            etr: None,
            reference: None,
            area: Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 500.0).unwrap()),
            expires_at: None,
        },
        now,
    )
    .unwrap();
    fixtures::declare_draft(&store, &draft, &ids, &plan, now)
        .await
        .unwrap();
    (store, dir)
}
