//! The HTTP server loop: accepts connections and serves an axum router on
//! each, with the connection-level limits that `axum::serve` does not set.
//!
//! `axum::serve` gives hyper no timer, so a client that opens a connection
//! and sends its request headers slowly, or never, or idles in keep-alive,
//! holds a socket and a task forever. Here every connection is served by
//! hyper's HTTP/1 builder with a timer and a header-read timeout
//! ([`HEADER_READ_TIMEOUT_MS`]), and the number of open connections is
//! bounded ([`MAX_CONNECTIONS`]). HTTP/1.1 only: browsers speak it (or
//! HTTP/2 over TLS, which a reverse proxy terminates), and cleartext HTTP/2
//! would need a version sniff that itself waits without a timeout.

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use veche_protocol::limits::http::{
    HEADER_READ_TIMEOUT_MS, MAX_CONNECTIONS, REFUSAL_WRITE_TIMEOUT_MS,
};

/// What a connection over [`MAX_CONNECTIONS`] is told before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Retry-After: 1\r\n\
    Connection: close\r\n\
    Content-Length: 37\r\n\r\n\
    the server has too many connections\r\n";

/// An HTTP server running on its own task.
pub struct Serving {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Starts serving `app` on `listener`. Each request carries its peer
    /// address (`ConnectInfo<SocketAddr>`), which the control plane's
    /// per-address rate limits count by.
    pub fn spawn(listener: TcpListener, app: axum::Router) -> Serving {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(HEADER_READ_TIMEOUT_MS),
            max_connections: MAX_CONNECTIONS,
        };
        Serving::spawn_with(listener, app, limits)
    }

    fn spawn_with(listener: TcpListener, app: axum::Router, limits: Limits) -> Serving {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, app, limits, stop_rx));
        Serving { stop, task }
    }

    /// Stops taking connections and gives open ones a few seconds to end:
    /// a request in progress is finished, but a process that was asked to
    /// stop must not hang on a slow one. Upgraded connections (WebSockets)
    /// are not waited for; their handlers end them, or the process does.
    pub async fn stop(self) {
        tracing::info!("shutting down");
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .is_err()
        {
            tracing::info!("closing remaining connections");
        }
    }
}

/// The connection-level limits of one server.
#[derive(Clone, Copy, Debug)]
struct Limits {
    header_read_timeout: Duration,
    max_connections: usize,
}

/// Accepts until `stop` turns true, then waits for the connections that
/// are still HTTP (not upgraded) to finish gracefully.
async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Each connection task holds a clone; when all are dropped, every HTTP
    // connection has ended.
    let (done_tx, done_rx) = watch::channel(());
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors or memory: wait for some to free
                // rather than spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            // Logged at the 1st, 2nd, 4th, 8th… refusal: a flood must not
            // also flood the log.
            if refused.is_power_of_two() {
                tracing::warn!(
                    %peer,
                    max = limits.max_connections,
                    refused,
                    "too many open connections; refusing new ones with 503"
                );
            }
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Permitted {
            stream,
            _permit: permit,
        });
        tokio::spawn(serve_connection(
            io,
            peer,
            app.clone(),
            limits,
            stop.clone(),
            done_rx.clone(),
        ));
    }
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
}

/// Serves one connection until it closes, is upgraded, times out waiting
/// for headers, or ends gracefully after `stop`.
async fn serve_connection(
    io: TokioIo<Permitted>,
    peer: SocketAddr,
    app: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    // With upgrades, the connection future ends when a WebSocket takes
    // over the socket; from then on no HTTP timeout applies to it.
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        tracing::debug!(%peer, "closed: no complete request headers in time");
                    } else {
                        tracing::trace!(%peer, "connection ended: {e}");
                    }
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Answers a connection over the limit `503` and closes it, reading what
/// the client sent meanwhile (briefly) so the close does not reset the
/// connection before the client reads the answer.
async fn refuse(mut stream: TcpStream) {
    let linger = async {
        stream.write_all(BUSY_RESPONSE).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_millis(REFUSAL_WRITE_TIMEOUT_MS), linger).await;
}

/// A connection's socket with its place under [`MAX_CONNECTIONS`]. The
/// place is given back when the socket is dropped, which for an upgraded
/// connection is when its WebSocket ends.
struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// A server of one route with `limits`, and its address.
    async fn server(limits: Limits) -> (Serving, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let app = axum::Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        (Serving::spawn_with(listener, app, limits), addr)
    }

    /// Sends one request on `stream` and reads the answer until the server
    /// closes the connection (the request asks it to).
    async fn get_once(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut out))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        out
    }

    #[tokio::test]
    async fn handlers_see_the_peer_address_of_the_connection() {
        let (_serving, addr) = server(Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 8,
        })
        .await;
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let local = stream.local_addr().expect("local address");
        let answer = get_once(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&local.to_string()), "{answer}");
    }

    #[tokio::test]
    async fn a_connection_over_the_bound_is_answered_503_until_one_closes() {
        let (_serving, addr) = server(Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 2,
        })
        .await;
        let _a = TcpStream::connect(addr).await.expect("connect");
        let b = TcpStream::connect(addr).await.expect("connect");
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let refused = get_once(&mut c).await;
        assert!(
            refused.starts_with("HTTP/1.1 503") && refused.contains("Retry-After: 1"),
            "the third connection was not refused: {refused}"
        );
        drop(b);
        // The place is given back once the server notices the close.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut d = TcpStream::connect(addr).await.expect("connect");
            let answer = get_once(&mut d).await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still refused 5 s after a connection closed: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn stop_finishes_when_only_idle_connections_remain() {
        let (serving, addr) = server(Limits {
            header_read_timeout: Duration::from_secs(60),
            max_connections: 8,
        })
        .await;
        let _idle = TcpStream::connect(addr).await.expect("connect");
        let started = std::time::Instant::now();
        serving.stop().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "stop waited {:?} on an idle connection",
            started.elapsed()
        );
    }
}
