//! API tokens: who may call the REST API and with which [`Role`].
//!
//! Only a token's hash is stored ([`outagecast_core::auth::TokenSecret::hash`]); its text is
//! shown once by whoever creates it and never reaches the database or the audit log. A revoked
//! token keeps its row and its name, so the audit log still says whose it was.

use chrono::{DateTime, Utc};
use outagecast_core::CoreError;
use outagecast_core::auth::Role;
use serde::Serialize;

use crate::backend::Record;
use crate::model::stored;
use crate::{Result, StoreError};

/// `last_used_at` is written when it is older than this, so that a busy client does not cost a
/// write per request.
pub(crate) const LAST_USED_RESOLUTION: chrono::Duration = chrono::Duration::minutes(1);

/// The longest token name.
const MAX_NAME_CHARS: usize = 64;

/// A token as the store knows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Row id.
    pub id: i64,
    /// Its unique name (`ci-deploy`, `ivr-asterisk`); the actor in audit entries it causes.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it was last accepted, to the minute; `None` if never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked token is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The columns [`token`] reads, in order.
pub(crate) const TOKEN_COLUMNS: &str =
    "id, name, role, created_at, created_by, last_used_at, revoked_at";

/// A token from [`TOKEN_COLUMNS`].
pub(crate) fn token(r: &impl Record) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.i64(0)?,
        name: r.text(1)?,
        role: stored(&r.text(2)?, Role::parse)?,
        created_at: r.time(3)?,
        created_by: r.text(4)?,
        last_used_at: r.opt_time(5)?,
        revoked_at: r.opt_time(6)?,
    })
}

/// A token name as typed: trimmed, 1–64 characters, no control characters.
pub(crate) fn check_name(name: &str) -> Result<&str> {
    let n = name.trim();
    let problem = if n.is_empty() {
        "is empty; give the token a name that says who uses it, e.g. --name ci-deploy"
    } else if n.chars().count() > MAX_NAME_CHARS {
        "is longer than 64 characters"
    } else if n.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(n);
    };
    Err(StoreError::Rule(CoreError::invalid("name", problem)))
}

/// The refusal of a name already taken by a token (`revoked` or not).
pub(crate) fn name_taken(name: &str, revoked: bool) -> StoreError {
    let state = if revoked { "a revoked" } else { "a" };
    StoreError::Conflict {
        field: "name",
        problem: format!(
            "{state} token named {name:?} already exists (names stay with revoked tokens so \
             the audit log keeps meaning); choose another --name"
        ),
    }
}
