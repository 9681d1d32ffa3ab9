//! API tokens on PostgreSQL: the semantics of the SQLite store's (only a token's hash is
//! stored; a revoked token keeps its row and its name).

use chrono::{DateTime, Utc};
use outagecast_core::auth::{Role, TokenSecret};

use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::tokens::{LAST_USED_RESOLUTION, TOKEN_COLUMNS, check_name, name_taken};
use crate::{Result, StoreError, TokenInfo, stored};

type TokenRow = (
    i64,
    String,
    String,
    DateTime<Utc>,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn token_row(r: TokenRow) -> Result<TokenInfo> {
    let (id, name, role, created_at, created_by, last_used_at, revoked_at) = r;
    Ok(TokenInfo {
        id,
        name,
        role: stored(&role, Role::parse)?,
        created_at,
        created_by,
        last_used_at,
        revoked_at,
    })
}

impl PgStore {
    /// Stores a new token under a unique `name` (its hash only), with an audit entry that
    /// names it and its role. A name already taken, even by a revoked token, is a
    /// [`StoreError::Conflict`] and nothing is written; two nodes creating the same name at
    /// once get one token and one conflict.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        secret: &TokenSecret,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenInfo> {
        let name = check_name(name)?;
        let mut tx = self.pool.begin().await?;
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_tokens (name, role, hash, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING
             RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(name)
        .bind(role.as_str())
        .bind(secret.hash())
        .bind(now)
        .bind(actor)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // The name is taken by a committed row (ON CONFLICT waited for it), which this
            // statement's snapshot sees.
            let revoked: Option<bool> =
                sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(name_taken(name, revoked.unwrap_or(false)));
        };
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
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL"
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
            // Guarded so that concurrent requests (or other nodes) write it once.
            let written = sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1
                 WHERE id = $2 AND revoked_at IS NULL
                   AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .bind(now)
            .bind(info.id)
            .bind(now - LAST_USED_RESOLUTION)
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
        let mut tx = self.pool.begin().await?;
        // Locked, so that two nodes revoking at once write one audit entry.
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = $1 FOR UPDATE"
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
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(now)
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
