//! The audit log on PostgreSQL.

#![allow(unused_imports)] // scaffold: trimmed as the methods below are ported

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{AccountId, Customer, CustomerId};
use outagecast_core::incident::{Incident, IncidentDraft, IncidentId};
use outagecast_core::ivr::ArmedIncident;
use outagecast_core::message::Wording;
use outagecast_core::notice::ArmedNumber;

use crate::pg::{PgStore, unported};
use crate::*;

impl PgStore {
    /// Not yet on PostgreSQL.
    pub async fn audit(&self, _actor: &str, _action: &str, _subject: Option<&str>, _details: &serde_json::Value, _now: DateTime<Utc>) -> Result<()> {
        Err(unported("audit"))
    }

    /// Not yet on PostgreSQL.
    pub async fn audit_log(&self, _limit: u32) -> Result<Vec<AuditEntry>> {
        Err(unported("audit_log"))
    }

    /// Not yet on PostgreSQL.
    pub async fn audit_page(&self, _q: AuditQuery) -> Result<Vec<AuditEntry>> {
        Err(unported("audit_page"))
    }
}
