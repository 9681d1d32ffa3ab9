//! API tokens: who may call the REST API and with which [`Role`].
//!
//! Only a token's hash is stored ([`TokenSecret::hash`]); its text is shown once by whoever
//! creates it and never reaches the database or the audit log. A revoked token keeps its row
//! and its name, so the audit log still says whose it was.

use chrono::{DateTime, Utc};
use outagecast_core::CoreError;
use outagecast_core::auth::{Role, TokenSecret};
use serde::Serialize;

use crate::{Result, SqliteStore, StoreError, audit, parse_opt_ts, parse_ts, stored, ts};

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

type TokenRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

pub(crate) const TOKEN_COLUMNS: &str =
    "id, name, role, created_at, created_by, last_used_at, revoked_at";

fn token_row(r: TokenRow) -> Result<TokenInfo> {
    let (id, name, role, created_at, created_by, last_used_at, revoked_at) = r;
    Ok(TokenInfo {
        id,
        name,
        role: stored(&role, Role::parse)?,
        created_at: parse_ts(&created_at)?,
        created_by,
        last_used_at: parse_opt_ts(last_used_at)?,
        revoked_at: parse_opt_ts(revoked_at)?,
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

impl SqliteStore {
    /// Stores a new token under a unique `name` (its hash only), with an audit entry that
    /// names it and its role. A name already taken, even by a revoked token, is a
    /// [`StoreError::Conflict`] and nothing is written.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        secret: &TokenSecret,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenInfo> {
        let name = check_name(name)?;
        let mut tx = self.write_tx().await?;
        let taken: Option<(Option<String>,)> =
            sqlx::query_as("SELECT revoked_at FROM api_tokens WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((revoked,)) = taken {
            return Err(name_taken(name, revoked.is_some()));
        }
        let row: TokenRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_tokens (name, role, hash, created_at, created_by)
             VALUES (?, ?, ?, ?, ?) RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(name)
        .bind(role.as_str())
        .bind(secret.hash())
        .bind(ts(now))
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            "token.create",
            Some(&format!("token:{name}")),
            &serde_json::json!({ "name": name, "role": role.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        token_row(row)
    }

    /// The token presented, if it exists and is not revoked. Notes the use (`last_used_at`)
    /// when the last note is a minute old or more; a failure to note it does not refuse the
    /// token.
    pub async fn authenticate(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenInfo>> {
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ? AND revoked_at IS NULL"
        )))
        .bind(secret.hash())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut info = token_row(row)?;
        let stale = info
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USED_RESOLUTION);
        if stale {
            // Guarded so that concurrent requests (or another process) write it once.
            let written = sqlx::query(
                "UPDATE api_tokens SET last_used_at = ?1
                 WHERE id = ?2 AND revoked_at IS NULL
                   AND (last_used_at IS NULL OR last_used_at <= ?3)",
            )
            .bind(ts(now))
            .bind(info.id)
            .bind(ts(now - LAST_USED_RESOLUTION))
            .execute(&self.pool)
            .await;
            match written {
                Ok(r) if r.rows_affected() > 0 => info.last_used_at = Some(now),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(token = %info.name, error = %e, "could not note token use")
                }
            }
        }
        Ok(Some(info))
    }

    /// Every token, revoked ones too, in creation order.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(token_row).collect()
    }

    /// Revokes the token called `name`, with an audit entry; from now on it is refused.
    /// Revoking a revoked token changes nothing and returns it as it is. An unknown name is
    /// [`StoreError::NotFound`].
    pub async fn revoke_token(
        &self,
        name: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenInfo> {
        let name = name.trim();
        let mut tx = self.write_tx().await?;
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = ?"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!(
                "token {name:?} (see `token list` for the names)"
            )));
        };
        let mut info = token_row(row)?;
        if info.revoked_at.is_some() {
            return Ok(info);
        }
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ?")
            .bind(ts(now))
            .bind(info.id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            "token.revoke",
            Some(&format!("token:{name}")),
            &serde_json::json!({ "name": name, "role": info.role.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        info.revoked_at = Some(now);
        Ok(info)
    }

    /// How many tokens are not revoked.
    pub async fn token_count(&self) -> Result<u64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

// The public behaviour of tokens is in the contract suite (crates/store/tests/contract), run on
// both stores; what is left here looks at SQLite's files.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::fresh;

    #[tokio::test]
    async fn the_secret_is_not_in_the_database_file() {
        let (store, dir) = fresh().await;
        let now = Utc::now();
        let s = TokenSecret::generate([0x5A; 32]);
        store
            .create_token("deploy", Role::Admin, &s, "cli:root", now)
            .await
            .unwrap();
        store.authenticate(&s, now).await.unwrap().unwrap();
        store.revoke_token("deploy", "cli:root", now).await.unwrap();
        let body = &s.expose()[3..];
        // Not anywhere in the database file, the WAL included.
        store.close().await;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(body.len()).any(|w| w == body.as_bytes()),
                "the secret is in the database"
            );
        }
    }
}
