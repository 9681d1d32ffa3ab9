//! Delivery receipts and opt-outs on PostgreSQL.

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
    pub async fn record_receipt(
        &self,
        _provider_id: &str,
        _receipt: &Receipt,
        _now: DateTime<Utc>,
    ) -> Result<ReceiptOutcome> {
        Err(unported("record_receipt"))
    }

    /// Not yet on PostgreSQL.
    pub async fn opt_out_and_withdraw(
        &self,
        _channel: Channel,
        _address: &str,
        _source: &str,
        _now: DateTime<Utc>,
    ) -> Result<u64> {
        Err(unported("opt_out_and_withdraw"))
    }

    /// Not yet on PostgreSQL.
    pub async fn opt_in(
        &self,
        _channel: Channel,
        _address: &str,
        _source: &str,
        _now: DateTime<Utc>,
    ) -> Result<bool> {
        Err(unported("opt_in"))
    }

    /// Not yet on PostgreSQL.
    pub async fn is_opted_out(&self, _channel: Channel, _address: &str) -> Result<bool> {
        Err(unported("is_opted_out"))
    }

    /// Not yet on PostgreSQL.
    pub async fn contact_language(&self, _address: &str) -> Result<Option<Language>> {
        Err(unported("contact_language"))
    }
}
