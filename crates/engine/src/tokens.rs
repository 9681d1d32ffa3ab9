//! API tokens: create (the secret made here and shown once; only its hash is stored), list,
//! revoke. Token management needs no customer index, so it stands apart from [`Engine`]
//! (`outagecast token` runs without loading the customers).
//!
//! [`Engine`]: crate::Engine

use chrono::{DateTime, Utc};
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_store::{Store, TokenInfo};

use crate::Result;

/// A token just created: its record and the secret, which is never shown again.
#[derive(Debug)]
pub struct CreatedToken {
    /// The stored record.
    pub info: TokenInfo,
    /// The secret to hand to the caller.
    pub secret: TokenSecret,
}

/// The token use cases over a store.
pub struct Tokens {
    store: Store,
}

impl Tokens {
    /// Opens the store at `db`.
    pub async fn open(db: &str) -> Result<Self> {
        Ok(Tokens {
            store: Store::open(db).await?,
        })
    }

    /// Creates a token named `name` with `role`.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CreatedToken> {
        let mut bytes = [0u8; 32];
        // The thread-local generator is a CSPRNG seeded from the operating system.
        rand::fill(&mut bytes[..]);
        let secret = TokenSecret::generate(bytes);
        let info = self
            .store
            .create_token(name, role, &secret, actor, now)
            .await?;
        Ok(CreatedToken { info, secret })
    }

    /// Every token, revoked ones too.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes the token named `name` (revoking it again changes nothing).
    pub async fn revoke(&self, name: &str, actor: &str, now: DateTime<Utc>) -> Result<TokenInfo> {
        Ok(self.store.revoke_token(name, actor, now).await?)
    }

    /// Closes the store cleanly.
    pub async fn close(self) {
        self.store.close().await;
    }
}
