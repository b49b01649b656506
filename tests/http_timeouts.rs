//! Connection-level timeouts of the HTTP server, against a real
//! `veche serve`: a client that sends half a request line, or that idles
//! in keep-alive after a response, is disconnected once the header-read
//! timeout passes, while a normal request and a joined signalling
//! WebSocket, idle between pings for longer than that timeout, keep
//! working.
//!
//! The timeout is read from `veche_protocol::limits`, the table the server
//! uses, so a retuned number cannot make these tests stale.

use crate::common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use veche_protocol::limits::http::HEADER_READ_TIMEOUT_MS;

/// The header-read timeout.
fn header_timeout() -> Duration {
    Duration::from_millis(HEADER_READ_TIMEOUT_MS)
}

/// How much later than the timeout the close may come: timer slack on a
/// loaded test machine.
const MARGIN: Duration = Duration::from_secs(5);

/// Opens a raw TCP connection to the server.
async fn connect(server: &Server) -> TcpStream {
    let addr = server.base().trim_start_matches("http://");
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
}

/// Reads until the server closes the connection, at most `within`, and
/// returns everything read and when the close came. Panics naming what
/// had arrived if the connection is still open at the deadline.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server still holds the connection after {within:?}; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
            // A reset is a close too.
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into(), Instant::now())
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Asserts the close came after (most of) the timeout, not at once, so it
/// is the timeout that closed the connection.
fn assert_closed_by_the_timeout(waited: Duration) {
    assert!(
        waited >= header_timeout().mul_f64(0.9),
        "closed after {waited:?}, well before the {:?} header timeout: something else closed it",
        header_timeout()
    );
}

#[tokio::test]
async fn a_client_sending_half_a_request_line_is_disconnected_after_the_header_timeout() {
    let server = Server::start();
    let mut stream = connect(&server).await;
    let sent = Instant::now();
    stream
        .write_all(b"GET /healthz HT")
        .await
        .expect("write half a request line");
    let (got, closed) = read_until_closed(&mut stream, header_timeout() + MARGIN).await;
    assert_closed_by_the_timeout(closed - sent);
    assert!(
        !got.contains("200 OK"),
        "half a request line was answered as a request: {got:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = Server::start();
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: veche\r\n\r\n")
        .await
        .expect("write a request");
    let sent = Instant::now();
    let (got, closed) = read_until_closed(&mut stream, header_timeout() + MARGIN).await;
    assert!(
        got.starts_with("HTTP/1.1 200"),
        "the request itself was not answered: {got:?}"
    );
    assert!(
        got.ends_with("ok"),
        "the answer is not the health check's: {got:?}"
    );
    assert_closed_by_the_timeout(closed - sent);
}

#[tokio::test]
async fn requests_and_a_websocket_idle_past_the_header_timeout_keep_working() {
    let server = Server::start();
    let room = create_room(server.base(), "timeouts").await;
    let j = join(server.base(), str_field(&room, "slug"), "Ada").await;
    let (mut signal, _joined) = Signal::join(server.base(), &j).await;

    // Idle between pings, the WebSocket outlives the header timeout: once
    // upgraded, the connection is no longer subject to it.
    let started = Instant::now();
    let mut seq = 0;
    while started.elapsed() < header_timeout() + Duration::from_secs(2) {
        tokio::time::sleep(header_timeout() / 3).await;
        seq += 1;
        signal.ping(seq).await;
    }

    let health = http_get(&server.url("/healthz")).await;
    assert_eq!(health.status, 200, "{}", health.body);
    let again = join(server.base(), str_field(&room, "slug"), "Grace").await;
    let (_second, joined) = Signal::join(server.base(), &again).await;
    assert_eq!(joined["type"], "joined", "{joined}");
}
