//! `outagecast token create|list|revoke`: API tokens for the HTTP API's callers.
//!
//! A token's secret is made here from 32 random bytes, printed once on `create` and never
//! again: the store keeps only its hash. `list` and `revoke` never see it.

use std::io::Write;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use outagecast_core::auth::Role;
use outagecast_engine::Tokens;
use outagecast_store::TokenInfo;
use serde_json::json;

use crate::cli::TokenCommand;

/// What `create` says next to the secret (on stderr, so that stdout is the secret alone).
pub const SHOWN_ONCE: &str = "this is the only time the token is shown: store it now; it will not be shown again \
     (if it is lost, revoke it and create another)";

pub async fn run(db: &str, actor: &str, command: &TokenCommand) -> Result<()> {
    let tokens = Tokens::open(db).await.with_context(|| {
        format!(
            "--db: cannot open the database {:?}",
            outagecast_core::secret::redact_url(db)
        )
    })?;
    let result = match command {
        TokenCommand::Create { role, name, json } => {
            create(&tokens, actor, role, name, *json).await
        }
        TokenCommand::List { json } => list(&tokens, *json).await,
        TokenCommand::Revoke { name, json } => revoke(&tokens, actor, name, *json).await,
    };
    tokens.close().await;
    result
}

async fn create(tokens: &Tokens, actor: &str, role: &str, name: &str, json: bool) -> Result<()> {
    let role = Role::parse(role).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let created = tokens
        .create(name, role, actor, Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("{}", flag_named(&e.to_string())))?;
    let (info, secret) = (created.info, created.secret);
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

async fn list(tokens: &Tokens, json: bool) -> Result<()> {
    let tokens = tokens.list().await?;
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

async fn revoke(tokens: &Tokens, actor: &str, name: &str, json: bool) -> Result<()> {
    let now = Utc::now();
    let info = tokens.revoke(name, actor, now).await?;
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
