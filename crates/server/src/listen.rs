//! The HTTP accept loop: the router on hyper with the limits a listener the public (and
//! Twilio, and the IVR platform) reaches needs. `axum::serve` has no header-read timeout, no
//! connection cap and no bound on its graceful drain, so this loop uses hyper-util's builder
//! directly, as `axum::serve` does inside.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower_http::timeout::TimeoutLayer;

/// Limits on every HTTP connection and request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A client must send a request's whole head within this, or the connection is closed. It
    /// also closes a kept-alive connection that sends nothing for this long (hyper starts the
    /// same timer while it waits for the next request). Default 30 s.
    pub header_read_timeout: Duration,
    /// The longest a handler may take to produce its response head: 503 after it. A response
    /// already started (an SSE stream, a large report) is not cut. Default 60 s.
    pub request_timeout: Duration,
    /// Connections open at once; further ones wait in the listen backlog until one closes.
    /// Default 4,096 (the IVR's short requests on a few kept-alive connections need few).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, asks every connection to finish the request it is on and close, and returns
/// when they have, or after `drain` (what is still open then is closed).
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let app = app.layer(TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        limits.request_timeout,
    ));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // An HTTP/2 peer that stops answering pings is gone: close its connection.
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    accept_until(
        &listener,
        limits.max_connections,
        shutdown,
        &mut connections,
        "HTTP",
        |stream, peer| {
            // Small request/response exchanges on kept-alive connections: send at once.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            // The client's address, for the public routes' rate limit (`ConnectInfo`).
            let service = TowerToHyperService::new(tower_http::add_extension::AddExtension::new(
                app.clone(),
                axum::extract::ConnectInfo(peer),
            ));
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            Some(async move {
                if let Err(e) = connection.await {
                    // A client that went away or timed out: its business, not the server's.
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
            })
        },
    )
    .await;
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(
                drain_secs = drain.as_secs_f64(),
                "shutdown: HTTP connections still busy after the drain timeout; closing them"
            );
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Accepts connections on `listener` until `shutdown` completes, at most `cap` served at once
/// (the rest wait in the listen backlog), and runs what `serve` makes of each (`None` turns
/// the peer away) in `tasks`. The caller drains `tasks`.
pub(crate) async fn accept_until<F>(
    listener: &TcpListener,
    cap: usize,
    shutdown: impl Future<Output = ()>,
    tasks: &mut JoinSet<()>,
    what: &str,
    mut serve: impl FnMut(TcpStream, SocketAddr) -> Option<F>,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(cap.max(1)));
    tokio::pin!(shutdown);
    loop {
        // Reap finished tasks so the set does not grow with every client ever served.
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the connections
                    // that are open, and try again shortly rather than spinning.
                    tracing::warn!(error = %e, "{what}: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if let Some(task) = serve(stream, peer) {
            tasks.spawn(async move {
                let _permit = permit;
                task.await;
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A server with two routes, `/fast` and `/slow` (2 s), within `limits`; its address and
    /// the sender that stops it.
    async fn start(limits: HttpLimits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let app = Router::new()
            .route("/fast", axum::routing::get(|| async { "fast" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    "slow"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_http(
            listener,
            app,
            limits,
            async {
                let _ = rx.await;
            },
            Duration::from_millis(500),
        ));
        (addr, tx)
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        // A connection closed without an answer reads as empty (or reset).
        let _ = stream.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn a_request_past_its_timeout_is_answered_503() {
        let limits = HttpLimits {
            request_timeout: Duration::from_millis(200),
            ..HttpLimits::default()
        };
        let (addr, _stop) = start(limits).await;
        assert!(get(addr, "/fast").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/slow").await.starts_with("HTTP/1.1 503"));
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_until_one_closes() {
        let limits = HttpLimits {
            max_connections: 1,
            ..HttpLimits::default()
        };
        let (addr, _stop) = start(limits).await;
        let holder = TcpStream::connect(addr).await.unwrap();
        // Let the loop accept the holder and take the only permit.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = tokio::spawn(get(addr, "/fast"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "served past the cap");
        drop(holder);
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_waits_for_a_request_in_flight_and_no_longer_than_the_drain() {
        let (addr, stop) = start(HttpLimits::default()).await;
        let slow = tokio::spawn(get(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        // The drain (500 ms) is shorter than the request (2 s): the connection is dropped.
        let answer = tokio::time::timeout(Duration::from_secs(5), slow)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.is_empty(), "{answer}");
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }

    #[test]
    fn the_default_header_timeout_is_at_most_30_seconds() {
        assert!(HttpLimits::default().header_read_timeout <= Duration::from_secs(30));
    }
}
