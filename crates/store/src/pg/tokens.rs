//! API tokens on PostgreSQL.

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
    pub async fn create_token(
        &self,
        _name: &str,
        _role: Role,
        _secret: &TokenSecret,
        _actor: &str,
        _now: DateTime<Utc>,
    ) -> Result<TokenInfo> {
        Err(unported("create_token"))
    }

    /// Not yet on PostgreSQL.
    pub async fn authenticate(
        &self,
        _secret: &TokenSecret,
        _now: DateTime<Utc>,
    ) -> Result<Option<TokenInfo>> {
        Err(unported("authenticate"))
    }

    /// Not yet on PostgreSQL.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        Err(unported("tokens"))
    }

    /// Not yet on PostgreSQL.
    pub async fn revoke_token(
        &self,
        _name: &str,
        _actor: &str,
        _now: DateTime<Utc>,
    ) -> Result<TokenInfo> {
        Err(unported("revoke_token"))
    }

    /// Not yet on PostgreSQL.
    pub async fn token_count(&self) -> Result<u64> {
        Err(unported("token_count"))
    }
}
