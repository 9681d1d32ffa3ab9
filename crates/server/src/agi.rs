//! The FastAGI listener: one short session per call, the protocol itself in
//! `outagecast_ivr::agi`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use outagecast_ivr::agi::{Session, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::IvrState;
use crate::listen::accept_until;

/// Limits on FastAGI sessions.
#[derive(Debug, Clone)]
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
    /// The peers that may connect (`--agi-allow`); others are closed at once.
    pub allow: AgiAllow,
}

impl Default for AgiSettings {
    fn default() -> Self {
        AgiSettings {
            session_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(2),
            // Sessions are a few hundred bytes each: room for a flood of idle connections
            // (closed after `idle_timeout`) beside the real calls.
            max_sessions: 4096,
            allow: AgiAllow::default(),
        }
    }
}

/// The networks FastAGI peers may connect from: FastAGI has no authentication of its own, so
/// anyone who can connect can ask whether a number is armed. Loopback only by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgiAllow {
    nets: Arc<[IpNet]>,
}

impl Default for AgiAllow {
    fn default() -> Self {
        let loopback: [IpNet; 2] = [
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::LOCALHOST, 8)),
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
        ];
        AgiAllow {
            nets: Arc::from(loopback),
        }
    }
}

impl AgiAllow {
    /// Networks as written on the command line (`10.0.0.0/8`, `192.0.2.7`, `fd00::/8`); none
    /// at all keeps the loopback default.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> crate::Result<AgiAllow> {
        let mut nets = Vec::new();
        for text in list
            .iter()
            .map(|t| t.as_ref().trim())
            .filter(|t| !t.is_empty())
        {
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| crate::ServerError::Config {
                    field: "--agi-allow",
                    problem: format!(
                        "{text:?} is not a network or an address; write e.g. 10.1.2.0/24 or 192.0.2.7"
                    ),
                })?;
            nets.push(net.trunc());
        }
        if nets.is_empty() {
            return Ok(AgiAllow::default());
        }
        Ok(AgiAllow {
            nets: Arc::from(nets),
        })
    }

    /// Whether `peer` may connect (an IPv4 address mapped into IPv6 counts as IPv4).
    pub fn permits(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.nets.iter().any(|net| net.contains(&peer))
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
    accept_until(
        &listener,
        settings.max_sessions,
        shutdown,
        &mut sessions,
        "FastAGI",
        |stream, peer| {
            if !settings.allow.permits(peer.ip()) {
                // Closed before a byte is read; the address only, nothing the peer sent.
                tracing::warn!(%peer, "FastAGI: connection from outside --agi-allow closed");
                return None;
            }
            let state = state.clone();
            let (idle, limit) = (settings.idle_timeout, settings.session_timeout);
            Some(async move {
                match tokio::time::timeout(limit, session(stream, &state, idle)).await {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_only_by_default() {
        let allow = AgiAllow::parse::<&str>(&[]).unwrap();
        assert_eq!(allow, AgiAllow::default());
        for peer in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(allow.permits(ip(peer)), "{peer}");
        }
        for peer in ["10.0.0.1", "192.0.2.7", "::2", "fe80::1"] {
            assert!(!allow.permits(ip(peer)), "{peer}");
        }
    }

    #[test]
    fn networks_and_addresses_from_the_command_line() {
        let allow =
            AgiAllow::parse(&["10.1.2.0/24", " 192.0.2.7 ", "fd00::/8", "10.9.9.9/8"]).unwrap();
        for peer in [
            "10.1.2.200",
            "192.0.2.7",
            "fd12::1",
            "10.200.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(allow.permits(ip(peer)), "{peer}");
        }
        for peer in ["11.1.2.3", "192.0.2.8", "127.0.0.1", "fe80::1"] {
            assert!(!allow.permits(ip(peer)), "{peer}");
        }
        let e = AgiAllow::parse(&["10.0.0.0/33"]).unwrap_err().to_string();
        assert!(e.starts_with("--agi-allow: \"10.0.0.0/33\""), "{e}");
        assert!(AgiAllow::parse(&["pbx.example.fi"]).is_err());
    }
}
