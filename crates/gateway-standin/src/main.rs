//! `outagecast-gateway-standin`: run the stand-in on its own, for manual and load runs.

use std::time::Duration;

use clap::Parser;
use outagecast_gateway_standin::{Faults, Gateway, serve};

/// A Twilio-compatible SMS gateway stand-in on loopback.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8099")]
    listen: String,
    /// Account sid to accept.
    #[arg(long, default_value = "AC00000000000000000000000000000000")]
    account_sid: String,
    /// Auth token to accept.
    #[arg(long, default_value = "secret")]
    auth_token: String,
    /// Every nth request gets 429.
    #[arg(long, default_value_t = 0)]
    too_many_every: u64,
    /// Every nth request gets 500.
    #[arg(long, default_value_t = 0)]
    server_error_every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let gateway = Gateway::new(
        &args.account_sid,
        &args.auth_token,
        Faults {
            too_many_every: args.too_many_every,
            server_error_every: args.server_error_every,
            slow_by: Duration::from_millis(0),
            ..Faults::default()
        },
    );
    serve(listener, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
