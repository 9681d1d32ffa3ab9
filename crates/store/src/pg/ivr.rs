//! IVR flags and the change feed on PostgreSQL.

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
    pub async fn armed_for(&self, _phone: &str, _now: DateTime<Utc>) -> Result<Vec<ArmedIncident>> {
        Err(unported("armed_for"))
    }

    /// Not yet on PostgreSQL.
    pub async fn ivr_snapshot(
        &self,
        _now: DateTime<Utc>,
        _closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        Err(unported("ivr_snapshot"))
    }

    /// Not yet on PostgreSQL.
    pub async fn ivr_snapshot_for(
        &self,
        _phone: &str,
        _now: DateTime<Utc>,
        _closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        Err(unported("ivr_snapshot_for"))
    }

    /// Not yet on PostgreSQL.
    pub async fn ivr_changes(&self, _cursor: i64) -> Result<IvrPoll> {
        Err(unported("ivr_changes"))
    }

    /// Not yet on PostgreSQL.
    pub async fn prune_ivr_changes(&self, _before: DateTime<Utc>) -> Result<u64> {
        Err(unported("prune_ivr_changes"))
    }

    /// Not yet on PostgreSQL.
    pub async fn rearm_ivr(
        &self,
        _id: IncidentId,
        _draft: &IncidentDraft,
        _armed: &[ArmedNumber],
        _wording: &dyn Wording,
        _actor: &str,
        _now: DateTime<Utc>,
    ) -> Result<RearmOutcome> {
        Err(unported("rearm_ivr"))
    }
}
