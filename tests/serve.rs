//! `axum_sse::serve` end to end, on real sockets on loopback: HTTP/1.1 and
//! h2c streams, the header-read timeout, the connection limit, graceful
//! shutdown and its bound, and clients that vanish.

mod common;

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    time::Duration,
};

use axum::{extract::ConnectInfo, routing::get, Router};
use common::{fetch, get_h2, next_data, read_to_end, read_until, Live};
use http::Version;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use axum_sse::{Event, Serve, SseLayer, SseShutdown, SseWriter};

/// Generous bound for what must happen: never a timed assertion.
const BOUND: Duration = Duration::from_secs(10);

/// A stream that says who it is talking to, then stays open until the
/// client goes (or the shutdown ends it). `live` counts running handlers.
fn app(live: Live, shutdown: SseShutdown) -> Router {
    Router::new()
        .route(
            "/events",
            get(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>, mut sse: SseWriter| {
                    let live = live.clone();
                    async move {
                        let _live = live.enter();
                        let hello = Event::new().event("hello").data(peer.ip().to_string());
                        if sse.send(hello).await.is_ok() {
                            sse.closed().await;
                        }
                    }
                },
            ),
        )
        .layer(
            SseLayer::builder()
                .shutdown(shutdown)
                .farewell(Event::new().event("bye").data("restarting"))
                .build(),
        )
        .route("/health", get(|| async { "ok" }))
}

const HELLO: &str = "event: hello\ndata: 127.0.0.1\n\n";
const BYE: &str = "event: bye\ndata: restarting\n\n";

/// Binds `127.0.0.1:0` and runs `configure(serve(..))` in a task.
async fn spawn_server<F>(
    app: Router,
    configure: impl FnOnce(Serve) -> Serve<F>,
) -> (SocketAddr, JoinHandle<std::io::Result<()>>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = configure(axum_sse::serve(listener, app));
    (addr, tokio::spawn(server.into_future()))
}

/// Reads until EOF (or a reset), and returns what was read: panics if the
/// connection is still open after [`BOUND`].
async fn read_until_closed(client: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0; 1024];
    loop {
        let read = tokio::time::timeout(BOUND, client.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("still open after {BOUND:?}"));
        match read {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether `client` receives nothing for a while: used only to check that
/// something does *not* happen (yet).
async fn receives_nothing_for_a_while(client: &mut TcpStream) -> bool {
    let mut buf = [0; 64];
    tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf))
        .await
        .is_err()
}

async fn raw_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut client = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    client
}

// ---------------------------------------------------------------- protocols

#[tokio::test]
async fn a_stream_over_http1_and_over_h2c() {
    let live = Live::default();
    let (addr, _server) = spawn_server(app(live.clone(), SseShutdown::new()), |s| s).await;

    let mut http1 = fetch(addr, "/events").await;
    assert_eq!(http1.version(), Version::HTTP_11);
    assert_eq!(http1.headers()["content-type"], "text/event-stream");
    assert_eq!(read_until(http1.body_mut(), "\n\n").await, HELLO);

    let mut h2 = get_h2(addr, "/events").await;
    assert_eq!(h2.version(), Version::HTTP_2);
    assert_eq!(h2.headers()["content-type"], "text/event-stream");
    assert!(h2.headers().get("connection").is_none());
    assert_eq!(read_until(h2.body_mut(), "\n\n").await, HELLO);

    // Plain answers on both, and a kept-alive HTTP/1.1 connection.
    let mut client = raw_get(addr, "/health").await;
    let mut head = [0; 17];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK\r\n");
    assert_eq!(
        read_to_end(get_h2(addr, "/health").await.into_body()).await,
        "ok"
    );
    assert_eq!(live.count(), 2);
}

#[tokio::test]
async fn http2_off_serves_the_preface_as_bad_http1() {
    let (addr, _server) =
        spawn_server(app(Live::default(), SseShutdown::new()), |s| s.http2(false)).await;
    let mut http1 = fetch(addr, "/events").await;
    assert_eq!(read_until(http1.body_mut(), "\n\n").await, HELLO);

    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut client).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

// ---------------------------------------------------------------- slow clients

#[tokio::test]
async fn the_header_read_timeout_closes_slow_and_silent_clients() {
    for http2 in [true, false] {
        let (addr, _server) = spawn_server(app(Live::default(), SseShutdown::new()), |s| {
            s.http2(http2)
                .header_read_timeout(Duration::from_millis(200))
        })
        .await;
        // Part of a head, then nothing more.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /events HTTP/1.1\r\nho").await.unwrap();
        // Nothing at all: the protocol detection is bounded too.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // Part of the HTTP/2 preface.
        let mut preface = TcpStream::connect(addr).await.unwrap();
        preface.write_all(b"PRI * HTTP/2").await.unwrap();

        for client in [&mut slow, &mut silent, &mut preface] {
            let received = read_until_closed(client).await;
            // hyper may answer `408` to a partial head; never a `200`.
            assert!(
                !received.starts_with(b"HTTP/1.1 200"),
                "http2 {http2}: {:?}",
                String::from_utf8_lossy(&received)
            );
        }
        // A timely client is served as usual.
        let mut ok = fetch(addr, "/events").await;
        assert_eq!(read_until(ok.body_mut(), "\n\n").await, HELLO);
    }
}

// ---------------------------------------------------------------- connection limit

#[tokio::test]
async fn at_the_connection_limit_the_next_client_waits_for_a_close() {
    let live = Live::default();
    let (addr, _server) = spawn_server(app(live.clone(), SseShutdown::new()), |s| {
        s.max_connections(2)
    })
    .await;
    let mut first = fetch(addr, "/events").await;
    assert_eq!(read_until(first.body_mut(), "\n\n").await, HELLO);
    let mut second = get_h2(addr, "/events").await;
    assert_eq!(read_until(second.body_mut(), "\n\n").await, HELLO);

    // The third connects (the kernel's backlog) but is not served.
    let mut third = raw_get(addr, "/health").await;
    assert!(receives_nothing_for_a_while(&mut third).await);

    // One closes: the third is served.
    drop(first);
    let mut head = [0; 17];
    tokio::time::timeout(BOUND, third.read_exact(&mut head))
        .await
        .expect("the third client is served once one connection closed")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK\r\n");
    common::eventually(BOUND, "the first handler ends", || live.count() == 1).await;
}

#[tokio::test]
async fn a_client_that_vanishes_mid_stream_frees_its_connection() {
    let live = Live::default();
    let (addr, _server) = spawn_server(app(live.clone(), SseShutdown::new()), |s| {
        s.max_connections(1)
    })
    .await;
    for _ in 0..3 {
        // A raw client that reads the first event and then goes, without a
        // word, in the middle of the stream.
        let mut client = raw_get(addr, "/events").await;
        let mut received = Vec::new();
        let mut buf = [0; 256];
        while !received.ends_with(b"\n\n\r\n") {
            let n = tokio::time::timeout(BOUND, client.read(&mut buf))
                .await
                .expect("the stream starts")
                .unwrap();
            assert_ne!(n, 0, "closed early");
            received.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&received).contains(HELLO));
        drop(client);
        // Its handler ends, and its place under the limit is free for the next.
        common::eventually(BOUND, "the handler ends", || live.count() == 0).await;
    }
}

// ---------------------------------------------------------------- graceful shutdown

#[tokio::test]
async fn graceful_shutdown_ends_open_streams_and_returns() {
    let live = Live::default();
    let shutdown = SseShutdown::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, server) = spawn_server(app(live.clone(), shutdown.clone()), |s| {
        s.shutdown(shutdown)
            .with_graceful_shutdown(async move { stopped.await.unwrap_or(()) })
    })
    .await;
    let mut http1 = fetch(addr, "/events").await;
    assert_eq!(read_until(http1.body_mut(), "\n\n").await, HELLO);
    let mut h2 = get_h2(addr, "/events").await;
    assert_eq!(read_until(h2.body_mut(), "\n\n").await, HELLO);
    assert_eq!(live.count(), 2);

    stop.send(()).unwrap();
    // Each stream gets the farewell, then its end.
    assert_eq!(read_to_end(http1.into_body()).await, BYE);
    assert_eq!(read_to_end(h2.into_body()).await, BYE);
    tokio::time::timeout(BOUND, server)
        .await
        .expect("the server returns once the streams ended")
        .unwrap()
        .unwrap();
    assert_eq!(live.count(), 0);
    // The listener is closed.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_shutdown_timeout_closes_connections_that_do_not_finish() {
    let live = Live::default();
    let (stop, stopped) = oneshot::channel::<()>();
    // No `SseShutdown` given: the stream does not end by itself.
    let (addr, server) = spawn_server(app(live.clone(), SseShutdown::new()), |s| {
        s.with_graceful_shutdown(async move { stopped.await.unwrap_or(()) })
            .shutdown_timeout(Duration::from_millis(200))
    })
    .await;
    let mut client = raw_get(addr, "/events").await;
    let mut buf = [0; 256];
    let n = client.read(&mut buf).await.unwrap();
    assert!(n > 0);

    stop.send(()).unwrap();
    tokio::time::timeout(BOUND, server)
        .await
        .expect("the server returns after its shutdown timeout")
        .unwrap()
        .unwrap();
    read_until_closed(&mut client).await;
    common::eventually(BOUND, "the handler ends", || live.count() == 0).await;
}

#[tokio::test]
async fn without_a_signal_the_server_keeps_serving() {
    let (addr, server) = spawn_server(app(Live::default(), SseShutdown::new()), |s| s).await;
    let mut first = fetch(addr, "/events").await;
    assert_eq!(read_until(first.body_mut(), "\n\n").await, HELLO);
    drop(first);
    assert!(next_data(fetch(addr, "/events").await.body_mut())
        .await
        .is_some());
    assert!(!server.is_finished());
}
