//! CAP provenance on PostgreSQL.

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
    pub async fn declare_with(
        &self,
        _d: Declaration<'_>,
        _wording: &dyn Wording,
        _p: &Provenance,
    ) -> Result<DeclareOutcome> {
        Err(unported("declare_with"))
    }

    /// Not yet on PostgreSQL.
    pub async fn transition_with(
        &self,
        _t: Transition<'_>,
        _wording: &dyn Wording,
        _p: &Provenance,
    ) -> Result<TransitionOutcome> {
        Err(unported("transition_with"))
    }

    /// Not yet on PostgreSQL.
    pub async fn record_cap_only(
        &self,
        _id: IncidentId,
        _p: &Provenance,
        _actor: &str,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        Err(unported("record_cap_only"))
    }

    /// Not yet on PostgreSQL.
    pub async fn cap_message(
        &self,
        _sender: &str,
        _identifier: &str,
    ) -> Result<Option<CapMessageRow>> {
        Err(unported("cap_message"))
    }

    /// Not yet on PostgreSQL.
    pub async fn cap_incidents(&self, _refs: &[(String, String)]) -> Result<Vec<IncidentId>> {
        Err(unported("cap_incidents"))
    }

    /// Not yet on PostgreSQL.
    pub async fn origin(&self, _id: IncidentId) -> Result<IncidentOrigin> {
        Err(unported("origin"))
    }
}
