//! The FastAGI listener: one short session per call, the protocol itself in
//! `outagecast_ivr::agi`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use outagecast_ivr::agi::{Session, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::IvrState;

/// Limits on FastAGI sessions.
#[derive(Debug, Clone, Copy)]
pub struct AgiSettings {
    /// The longest a session may take from connect to the last reply. Asterisk answers each
    /// command in microseconds; a session still open after this is stalled or not Asterisk.
    pub session_timeout: Duration,
    /// Sessions served at once; further connections wait to be accepted.
    pub max_sessions: usize,
}

impl Default for AgiSettings {
    fn default() -> Self {
        AgiSettings {
            session_timeout: Duration::from_secs(10),
            max_sessions: 1024,
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
    let permits = Arc::new(Semaphore::new(settings.max_sessions.max(1)));
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished sessions so the set does not grow with every call ever served.
        while sessions.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the sessions that
                    // are open, and try again shortly rather than spinning.
                    tracing::warn!(error = %e, "FastAGI: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        sessions.spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(settings.session_timeout, session(stream, &state)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "FastAGI session ended early"),
                Err(_) => tracing::debug!("FastAGI session timed out"),
            }
        });
    }
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
}

async fn session(mut stream: TcpStream, state: &IvrState) -> Result<(), SessionError> {
    // Each command waits for its reply: without this, Nagle's algorithm would hold every
    // command back for the peer's delayed ACK.
    stream.set_nodelay(true)?;
    let mut session = Session::new();
    let mut buf = vec![0u8; 4096];
    loop {
        match session.step() {
            Step::Read => match stream.read(&mut buf).await? {
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
