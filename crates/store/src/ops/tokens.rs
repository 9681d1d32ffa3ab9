//! API tokens (see [`crate::model::tokens`]): create, authenticate, list, revoke, count.

use chrono::{DateTime, Utc};
use outagecast_core::auth::{Role, TokenSecret};

use crate::backend::{Backend, Record, Sql};
use crate::model::count;
use crate::model::tokens::{
    LAST_USED_RESOLUTION, TOKEN_COLUMNS, TokenInfo, check_name, name_taken, token,
};
use crate::ops::audit;
use crate::{Result, StoreError};

/// Stores a new token under a unique `name` (its hash only), with an audit entry that names it
/// and its role. A name already taken, even by a revoked token, is a
/// [`StoreError::Conflict`] and nothing is written; two nodes creating the same name at once
/// get one token and one conflict.
pub(crate) async fn create_token<B: Backend>(
    b: &B,
    name: &str,
    role: Role,
    secret: &TokenSecret,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<TokenInfo> {
    let name = check_name(name)?;
    let mut tx = b.begin().await?;
    let row = B::fetch_optional(
        &mut tx,
        Sql::built(format!(
            "INSERT INTO api_tokens (name, role, hash, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING
             RETURNING {TOKEN_COLUMNS}"
        ))
        .arg(name)
        .arg(role.as_str())
        .arg(secret.hash())
        .arg(now)
        .arg(actor),
    )
    .await?;
    let Some(row) = row else {
        // The name is taken by a committed row (on PostgreSQL ON CONFLICT waited for it),
        // which this statement sees.
        let revoked = B::fetch_optional(
            &mut tx,
            Sql::new("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE name = $1").arg(name),
        )
        .await?;
        let revoked = revoked.map(|r| r.bool(0)).transpose()?.unwrap_or(false);
        return Err(name_taken(name, revoked));
    };
    let info = token(&row)?;
    audit::write::<B>(
        &mut tx,
        actor,
        "token.create",
        Some(&format!("token:{name}")),
        &serde_json::json!({ "name": name, "role": role.as_str() }),
        now,
    )
    .await?;
    B::commit(tx).await?;
    Ok(info)
}

/// The token presented, if it exists and is not revoked. Notes the use (`last_used_at`) when
/// the last note is a minute old or more; a failure to note it does not refuse the token.
pub(crate) async fn authenticate<B: Backend>(
    b: &B,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Result<Option<TokenInfo>> {
    let mut c = b.conn().await?;
    let row = B::fetch_optional(
        &mut c,
        Sql::built(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL"
        ))
        .arg(secret.hash()),
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut info = token(&row)?;
    let stale = info
        .last_used_at
        .is_none_or(|t| now - t >= LAST_USED_RESOLUTION);
    if stale {
        // Guarded so that concurrent requests (or other processes) write it once.
        let written = B::execute(
            &mut c,
            Sql::new(
                "UPDATE api_tokens SET last_used_at = $1
                 WHERE id = $2 AND revoked_at IS NULL
                   AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .arg(now)
            .arg(info.id)
            .arg(now - LAST_USED_RESOLUTION),
        )
        .await;
        match written {
            Ok(n) if n > 0 => info.last_used_at = Some(now),
            Ok(_) => {}
            Err(e) => tracing::warn!(token = %info.name, error = %e, "could not note token use"),
        }
    }
    Ok(Some(info))
}

/// Every token, revoked ones too, in creation order.
pub(crate) async fn tokens<B: Backend>(b: &B) -> Result<Vec<TokenInfo>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
        )),
    )
    .await?;
    rows.iter().map(token).collect()
}

/// Revokes the token called `name`, with an audit entry; from now on it is refused. Revoking a
/// revoked token changes nothing and returns it as it is. An unknown name is
/// [`StoreError::NotFound`].
pub(crate) async fn revoke_token<B: Backend>(
    b: &B,
    name: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<TokenInfo> {
    let name = name.trim();
    let mut tx = b.begin().await?;
    // Locked, so that two nodes revoking at once write one audit entry.
    let row = B::fetch_optional(
        &mut tx,
        Sql::built(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = $1{}",
            B::LOCK_ROWS
        ))
        .arg(name),
    )
    .await?;
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!(
            "token {name:?} (see `token list` for the names)"
        )));
    };
    let mut info = token(&row)?;
    if info.revoked_at.is_some() {
        return Ok(info);
    }
    B::execute(
        &mut tx,
        Sql::new("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .arg(now)
            .arg(info.id),
    )
    .await?;
    audit::write::<B>(
        &mut tx,
        actor,
        "token.revoke",
        Some(&format!("token:{name}")),
        &serde_json::json!({ "name": name, "role": info.role.as_str() }),
        now,
    )
    .await?;
    B::commit(tx).await?;
    info.revoked_at = Some(now);
    Ok(info)
}

/// How many tokens are not revoked.
pub(crate) async fn token_count<B: Backend>(b: &B) -> Result<u64> {
    let row = B::fetch_one(
        &mut *b.conn().await?,
        Sql::new("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL"),
    )
    .await?;
    Ok(count(row.i64(0)?))
}
