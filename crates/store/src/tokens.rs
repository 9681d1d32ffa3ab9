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
const LAST_USED_RESOLUTION: chrono::Duration = chrono::Duration::minutes(1);

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

const TOKEN_COLUMNS: &str = "id, name, role, created_at, created_by, last_used_at, revoked_at";

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
fn check_name(name: &str) -> Result<&str> {
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
            let state = if revoked.is_some() { "a revoked" } else { "a" };
            return Err(StoreError::Conflict {
                field: "name",
                problem: format!(
                    "{state} token named {name:?} already exists (names stay with revoked \
                     tokens so the audit log keeps meaning); choose another --name"
                ),
            });
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::fresh;
    use chrono::{SubsecRound, TimeDelta};

    fn secret(byte: u8) -> TokenSecret {
        TokenSecret::generate([byte; 32])
    }

    #[tokio::test]
    async fn create_authenticate_revoke() {
        let (store, _dir) = fresh().await;
        let now = Utc::now().trunc_subsecs(6);
        let s = secret(1);
        let created = store
            .create_token(" ci ", Role::Operator, &s, "cli:alice", now)
            .await
            .unwrap();
        assert_eq!(created.name, "ci");
        assert_eq!(created.role, Role::Operator);
        assert_eq!(created.created_at, now);
        assert_eq!(created.created_by, "cli:alice");
        assert_eq!((created.last_used_at, created.revoked_at), (None, None));
        assert_eq!(store.token_count().await.unwrap(), 1);

        let seen = store.authenticate(&s, now).await.unwrap().unwrap();
        assert_eq!(seen.id, created.id);
        assert_eq!(seen.last_used_at, Some(now));
        assert!(store.authenticate(&secret(2), now).await.unwrap().is_none());
        // Parsed from a header, the same text is the same token.
        let presented = TokenSecret::parse(s.expose()).unwrap();
        assert!(store.authenticate(&presented, now).await.unwrap().is_some());

        let revoked = store.revoke_token("ci", "cli:bob", now).await.unwrap();
        assert_eq!(revoked.revoked_at, Some(now));
        assert!(store.authenticate(&s, now).await.unwrap().is_none());
        assert_eq!(store.token_count().await.unwrap(), 0);
        // Again: nothing changes, no second audit entry.
        let later = now + TimeDelta::hours(1);
        let again = store.revoke_token("ci", "cli:bob", later).await.unwrap();
        assert_eq!(again.revoked_at, Some(now));
        let listed = store.tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at, Some(now));

        let log = store.audit_log(10).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["token.revoke", "token.create"]);
        assert_eq!(log[0].actor, "cli:bob");
        assert_eq!(log[1].subject.as_deref(), Some("token:ci"));
        assert_eq!(
            log[1].details,
            serde_json::json!({ "name": "ci", "role": "operator" })
        );

        let e = store
            .revoke_token("nope", "cli:bob", now)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }

    #[tokio::test]
    async fn a_duplicate_name_is_refused_with_the_fix_and_writes_nothing() {
        let (store, _dir) = fresh().await;
        let now = Utc::now();
        store
            .create_token("ivr", Role::Ivr, &secret(1), "admin", now)
            .await
            .unwrap();
        let e = store
            .create_token("ivr", Role::Admin, &secret(2), "admin", now)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Conflict { .. }), "{msg}");
        assert!(msg.starts_with("name: "), "{msg}");
        assert!(msg.contains("\"ivr\"") && msg.contains("--name"), "{msg}");
        assert!(store.authenticate(&secret(2), now).await.unwrap().is_none());
        assert_eq!(store.tokens().await.unwrap().len(), 1);
        assert_eq!(store.audit_log(10).await.unwrap().len(), 1);

        // Revoked tokens keep their names.
        store.revoke_token("ivr", "admin", now).await.unwrap();
        let e = store
            .create_token("ivr", Role::Ivr, &secret(3), "admin", now)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("revoked"), "{e}");

        let e = store
            .create_token("  ", Role::Ivr, &secret(4), "admin", now)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("name: is empty"), "{e}");
    }

    #[tokio::test]
    async fn the_secret_is_never_stored_or_audited() {
        let (store, dir) = fresh().await;
        let now = Utc::now();
        let s = secret(0x5A);
        store
            .create_token("deploy", Role::Admin, &s, "cli:root", now)
            .await
            .unwrap();
        store.revoke_token("deploy", "cli:root", now).await.unwrap();
        let body = &s.expose()[3..];
        for e in store.audit_log(10).await.unwrap() {
            let text = format!("{e:?} {}", e.details);
            assert!(!text.contains(body), "{text}");
            assert!(!text.contains(&s.hash()), "{text}");
        }
        let listed = format!(
            "{:?} {}",
            store.tokens().await.unwrap(),
            serde_json::to_string(&store.tokens().await.unwrap()).unwrap()
        );
        assert!(!listed.contains(body) && !listed.contains(&s.hash()));
        // Not anywhere in the database file either (the WAL included).
        store.close().await;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(body.len()).any(|w| w == body.as_bytes()),
                "the secret is in the database"
            );
        }
    }

    #[tokio::test]
    async fn use_is_noted_at_most_once_a_minute() {
        let (store, _dir) = fresh().await;
        let t0 = Utc::now().trunc_subsecs(6);
        let s = secret(7);
        store
            .create_token("ivr", Role::Ivr, &s, "admin", t0)
            .await
            .unwrap();
        let at = |d: i64| t0 + TimeDelta::seconds(d);
        assert_eq!(
            store
                .authenticate(&s, at(0))
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(at(0))
        );
        assert_eq!(
            store
                .authenticate(&s, at(59))
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(at(0)),
            "within the minute: not written"
        );
        assert_eq!(
            store
                .authenticate(&s, at(60))
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(at(60))
        );
        assert_eq!(store.tokens().await.unwrap()[0].last_used_at, Some(at(60)));
    }
}
