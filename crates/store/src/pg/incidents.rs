//! Incidents on PostgreSQL: declare, transition and the reads.

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
    pub async fn declare(
        &self,
        _d: Declaration<'_>,
        _wording: &dyn Wording,
    ) -> Result<DeclareOutcome> {
        Err(unported("declare"))
    }

    /// Not yet on PostgreSQL.
    pub async fn transition(
        &self,
        _t: Transition<'_>,
        _wording: &dyn Wording,
    ) -> Result<TransitionOutcome> {
        Err(unported("transition"))
    }

    /// Not yet on PostgreSQL.
    pub async fn incident(&self, _id: IncidentId) -> Result<Incident> {
        Err(unported("incident"))
    }

    /// Not yet on PostgreSQL.
    pub async fn incidents(&self, _include_closed: bool) -> Result<Vec<IncidentSummary>> {
        Err(unported("incidents"))
    }

    /// Not yet on PostgreSQL.
    pub async fn summary(&self, _incident: Incident) -> Result<IncidentSummary> {
        Err(unported("summary"))
    }

    /// Not yet on PostgreSQL.
    pub async fn notice_counts(&self, _id: IncidentId) -> Result<Vec<NoticeCount>> {
        Err(unported("notice_counts"))
    }

    /// Not yet on PostgreSQL.
    pub async fn notice_totals(&self) -> Result<Vec<NoticeCount>> {
        Err(unported("notice_totals"))
    }

    /// Not yet on PostgreSQL.
    pub async fn active_incident_count(&self, _now: DateTime<Utc>) -> Result<u64> {
        Err(unported("active_incident_count"))
    }

    /// Not yet on PostgreSQL.
    pub async fn affected_ids(&self, _id: IncidentId) -> Result<Vec<CustomerId>> {
        Err(unported("affected_ids"))
    }

    /// Not yet on PostgreSQL.
    pub async fn affected_accounts(&self, _id: IncidentId) -> Result<Vec<AccountId>> {
        Err(unported("affected_accounts"))
    }

    /// Not yet on PostgreSQL.
    pub async fn pending_notices(
        &self,
        _id: IncidentId,
    ) -> Result<Vec<(Channel, String, bool, String)>> {
        Err(unported("pending_notices"))
    }
}
