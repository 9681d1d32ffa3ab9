//! Named zones on PostgreSQL.

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
    pub async fn upsert_zones(
        &self,
        _zones: &[ZoneRecord<'_>],
        _actor: &str,
        _source: &str,
        _now: DateTime<Utc>,
    ) -> Result<ZoneImportSummary> {
        Err(unported("upsert_zones"))
    }

    /// Not yet on PostgreSQL.
    pub async fn zones(&self) -> Result<Vec<StoredZone>> {
        Err(unported("zones"))
    }

    /// Not yet on PostgreSQL.
    pub async fn zone(&self, _key: &str) -> Result<Option<StoredZone>> {
        Err(unported("zone"))
    }

    /// Not yet on PostgreSQL.
    pub async fn address_points(&self) -> Result<Vec<(String, LonLat)>> {
        Err(unported("address_points"))
    }
}
