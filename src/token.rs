//! `outagecast token create|list|revoke`: API tokens for the HTTP API's callers.
//!
//! A token's secret is made here from 32 random bytes, printed once on `create` and never
//! again: the store keeps only its hash. `list` and `revoke` never see it.

use std::io::Write;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_store::{Store, TokenInfo};
use serde_json::json;

use crate::cli::TokenCommand;

/// What `create` says next to the secret (on stderr, so that stdout is the secret alone).
pub const SHOWN_ONCE: &str = "this is the only time the token is shown: store it now; it will not be shown again \
     (if it is lost, revoke it and create another)";

pub async fn run(db: &str, actor: &str, command: &TokenCommand) -> Result<()> {
    let store = Store::open(db).await.with_context(|| {
        format!(
            "--db: cannot open the database {:?}",
            outagecast_core::secret::redact_url(db)
        )
    })?;
    let result = match command {
        TokenCommand::Create { role, name, json } => create(&store, actor, role, name, *json).await,
        TokenCommand::List { json } => list(&store, *json).await,
        TokenCommand::Revoke { name, json } => revoke(&store, actor, name, *json).await,
    };
    store.close().await;
    result
}

async fn create(store: &Store, actor: &str, role: &str, name: &str, json: bool) -> Result<()> {
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let mut bytes = [0u8; 32];
    // The thread-local generator is a CSPRNG seeded from the operating system.
    rand::fill(&mut bytes[..]);
    let secret = TokenSecret::generate(bytes);
    let info = store
        .create_token(name, role, &secret, actor, Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("{}", flag_named(&e.to_string())))?;
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::to_value(&info)?;
        value["token"] = json!(secret.expose());
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "{}", secret.expose())?;
    }
    out.flush()?;
    eprintln!(
        "created token {:?} (role {}); {SHOWN_ONCE}",
        info.name, info.role
    );
    Ok(())
}

/// The store names the field `name`; on the command line it is `--name`.
fn flag_named(message: &str) -> String {
    match message.strip_prefix("name: ") {
        Some(rest) => format!("--name: {rest}"),
        None => message.to_string(),
    }
}

async fn list(store: &Store, json: bool) -> Result<()> {
    let tokens = store.tokens().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tokens)?);
        return Ok(());
    }
    if tokens.is_empty() {
        println!("no tokens; create one with `outagecast token create --role ROLE --name NAME`");
        return Ok(());
    }
    let nw = tokens
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let bw = tokens
        .iter()
        .map(|t| t.created_by.chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    println!(
        "{:nw$}  {:8}  {:20}  {:bw$}  {:20}  STATUS",
        "NAME", "ROLE", "CREATED", "CREATED BY", "LAST USED"
    );
    for t in &tokens {
        println!(
            "{:nw$}  {:8}  {:20}  {:bw$}  {:20}  {}",
            t.name,
            t.role.as_str(),
            time(t.created_at),
            t.created_by,
            t.last_used_at.map_or("never".to_string(), time),
            status(t)
        );
    }
    Ok(())
}

async fn revoke(store: &Store, actor: &str, name: &str, json: bool) -> Result<()> {
    let now = Utc::now();
    let info = store.revoke_token(name, actor, now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else if info.revoked_at == Some(now) {
        println!("revoked token {:?} (role {})", info.name, info.role);
    } else {
        println!(
            "token {:?} (role {}) was already {}",
            info.name,
            info.role,
            status(&info)
        );
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn status(t: &TokenInfo) -> String {
    match t.revoked_at {
        Some(at) => format!("revoked {}", time(at)),
        None => "active".to_string(),
    }
}
