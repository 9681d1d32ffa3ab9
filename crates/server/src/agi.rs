//! The FastAGI listener: one short session per call, the protocol itself in
//! `outagecast_ivr::agi`.

use std::future::Future;
use std::time::Duration;

use outagecast_ivr::agi::{Session, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::IvrState;
use crate::listen::accept_until;

/// Limits on FastAGI sessions.
#[derive(Debug, Clone, Copy)]
pub struct AgiSettings {
    /// The longest a session may take from connect to the last reply. Asterisk answers each
    /// command in microseconds; a session still open after this is stalled or not Asterisk.
    pub session_timeout: Duration,
    /// The longest the peer may stay silent when a reply or its environment is due. Asterisk
    /// sends its environment as it connects and answers each command at once, so a silent peer
    /// is not a call: it is closed long before the session timeout, and a flood of idle
    /// connections frees its slots within this.
    pub idle_timeout: Duration,
    /// Sessions served at once; further connections wait to be accepted.
    pub max_sessions: usize,
}

impl Default for AgiSettings {
    fn default() -> Self {
        AgiSettings {
            session_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(2),
            // Sessions are a few hundred bytes each: room for a flood of idle connections
            // (closed after `idle_timeout`) beside the real calls.
            max_sessions: 4096,
        }
    }
}

/// Serves FastAGI on `listener` until `shutdown` completes, then waits for the sessions in
/// progress (each bounded by the session timeout).
pub async fn serve_agi(
    listener: TcpListener,
    state: IvrState,
    settings: AgiSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    accept_until(
        &listener,
        settings.max_sessions,
        shutdown,
        &mut sessions,
        "FastAGI",
        |stream, _peer| {
            let state = state.clone();
            Some(async move {
                let session = session(stream, &state, settings.idle_timeout);
                match tokio::time::timeout(settings.session_timeout, session).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "FastAGI session ended early"),
                    Err(_) => tracing::debug!("FastAGI session timed out"),
                }
            })
        },
    )
    .await;
    drop(listener);
    while sessions.join_next().await.is_some() {}
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Protocol(#[from] outagecast_ivr::IvrError),
    #[error("the peer sent nothing for {0:?}")]
    Idle(Duration),
}

async fn session(
    mut stream: TcpStream,
    state: &IvrState,
    idle_timeout: Duration,
) -> Result<(), SessionError> {
    // Each command waits for its reply: without this, Nagle's algorithm would hold every
    // command back for the peer's delayed ACK.
    stream.set_nodelay(true)?;
    let mut session = Session::new();
    let mut buf = vec![0u8; 4096];
    loop {
        match session.step() {
            Step::Read => match tokio::time::timeout(idle_timeout, stream.read(&mut buf))
                .await
                .map_err(|_| SessionError::Idle(idle_timeout))??
            {
                0 => session.closed(),
                n => session.received(&buf[..n]),
            },
            Step::Lookup(caller) => {
                state.with_caller(caller.as_deref().unwrap_or(""), |found| {
                    session.answered(found);
                });
            }
            Step::Write(bytes) => stream.write_all(&bytes).await?,
            Step::Done => return Ok(()),
            Step::Failed(e) => return Err(e.into()),
        }
    }
}
