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
    /// Every nth request is answered after --slow-ms.
    #[arg(long, default_value_t = 0)]
    slow_every: u64,
    /// Every nth request is recorded, then left hanging for --slow-ms before the answer.
    #[arg(long, default_value_t = 0)]
    accept_then_hang_every: u64,
    /// Every nth request is refused as a number that cannot be reached (21614).
    #[arg(long, default_value_t = 0)]
    unreachable_every: u64,
    /// Answer the message list with 404, like a gateway that cannot be asked what it took.
    #[arg(long)]
    no_lookup: bool,
    /// How slow a slow or hanging answer is, in milliseconds.
    #[arg(long, default_value_t = 0)]
    slow_ms: u64,
}

// One thread: a load run shares the machine with the dispatcher it measures, and one core
// answers far more requests than a real provider would take.
#[tokio::main(flavor = "current_thread")]
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
            slow_every: args.slow_every,
            slow_by: Duration::from_millis(args.slow_ms),
            accept_then_hang_every: args.accept_then_hang_every,
            unreachable_every: args.unreachable_every,
        },
    );
    gateway.set_lookup(!args.no_lookup);
    serve(listener, gateway, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
