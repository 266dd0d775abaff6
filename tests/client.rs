//! The reconnecting client against real servers on loopback.
//!
//! Tests that measure waits run under a paused clock: the servers and the
//! client share one thread and talk over loopback sockets, so a message is
//! ready as soon as it is written, and the clock only jumps when everything
//! waits on a timer. Waits are then measured exactly, in virtual time.
#![cfg(feature = "client")]

mod common;

use std::{net::SocketAddr, time::Duration};

use axum::{
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect},
    routing::get,
    Router,
};
use futures_util::{FutureExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
    time::Instant,
};

use axum_sse::{
    client::{ClientError, EventSource},
    decode::DecodedEvent,
    Event, SseError, SseLayer, SseWriter,
};
use common::serve;

const MS: Duration = Duration::from_millis(1);

/// The next item, or a panic after a minute (of virtual time, when paused).
async fn next(events: &mut EventSource) -> Option<Result<DecodedEvent, ClientError>> {
    tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("no item from the EventSource within 60 s")
}

fn source(addr: SocketAddr, path: &str) -> EventSource {
    EventSource::new(format!("http://{addr}{path}").parse().unwrap())
}

/// What a handler saw of one request.
#[derive(Debug)]
struct Seen {
    at: Instant,
    headers: HeaderMap,
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_the_servers_retry_sending_last_event_id() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let handler = move |headers: HeaderMap, mut sse: SseWriter| {
        let (seen_tx, ended_tx) = (seen_tx.clone(), ended_tx.clone());
        async move {
            seen_tx
                .send(Seen {
                    at: Instant::now(),
                    headers,
                })
                .unwrap();
            if sse.last_event_id().is_none() {
                sse.send(Event::new().retry(50 * MS)).await?;
                sse.send(Event::new().id(7).data("one")).await?;
                // The stream ends when the handler returns, after this.
                ended_tx.send(Instant::now()).unwrap();
            } else {
                sse.send(Event::new().id(8).data("two")).await?;
                sse.closed().await;
            }
            Ok::<_, SseError>(())
        }
    };
    let addr = serve(
        Router::new()
            .route("/events", get(handler))
            .layer(SseLayer::new()),
    )
    .await;

    let mut events = source(addr, "/events");
    assert_eq!(events.retry(), 3000 * MS, "the default");
    let one = next(&mut events).await.unwrap().unwrap();
    assert_eq!(one, DecodedEvent::new("message", "one", "7"));
    assert_eq!(events.retry(), 50 * MS, "the server's");
    let two = next(&mut events).await.unwrap().unwrap();
    assert_eq!(two, DecodedEvent::new("message", "two", "8"));
    assert_eq!(events.last_event_id(), "8");

    let first = seen.recv().await.unwrap();
    let second = seen.recv().await.unwrap();
    for request in [&first, &second] {
        assert_eq!(request.headers[header::ACCEPT], "text/event-stream");
        assert_eq!(request.headers[header::CACHE_CONTROL], "no-cache");
    }
    assert!(!first.headers.contains_key("last-event-id"));
    assert_eq!(second.headers["last-event-id"], "7");

    // The reconnection waited the server's 50 ms, not the default 3 s.
    let waited = second.at - ended.recv().await.unwrap();
    assert!(waited >= 50 * MS, "reconnected after {waited:?}");
    assert!(waited < 3000 * MS, "reconnected after {waited:?}");
}

#[tokio::test]
async fn sends_the_initial_last_event_id() {
    let handler = |mut sse: SseWriter| async move {
        let id = sse.last_event_id().unwrap_or("none").to_owned();
        let _ = sse.send(Event::new().data(id)).await;
        sse.closed().await;
    };
    let addr = serve(
        Router::new()
            .route("/", get(handler))
            .layer(SseLayer::new()),
    )
    .await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .last_event_id("41")
        .build();
    let event = next(&mut events).await.unwrap().unwrap();
    assert_eq!(event, DecodedEvent::new("message", "41", "41"));
}

/// A server that accepts connections and closes them at once: a network
/// error for the client. Reports when each connection was accepted.
async fn door_slammer() -> (SocketAddr, mpsc::UnboundedReceiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            // Noted before the client can see the close: the next gap is
            // at least the client's wait.
            let _ = tx.send(Instant::now());
            drop(socket);
        }
    });
    (addr, rx)
}

/// The gaps between successive instants.
fn gaps(instants: &[Instant]) -> Vec<Duration> {
    instants.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn backs_off_on_network_errors_then_gives_up_after_max_retries() {
    let (addr, mut accepted) = door_slammer().await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .retry(20 * MS)
        .max_backoff(10_000 * MS)
        .max_retries(5)
        .build();
    match next(&mut events).await {
        Some(Err(ClientError::RetriesExhausted {
            max_retries: 5,
            source: Some(_),
        })) => {}
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(next(&mut events).await.is_none());

    let mut at = Vec::new();
    while let Ok(instant) = accepted.try_recv() {
        at.push(instant);
    }
    assert_eq!(at.len(), 6, "the first attempt and 5 retries");
    // Failure n waits in [retry + (ceiling - retry) / 2, ceiling], ceiling =
    // retry * 2^(n-1); a timer may fire up to 1 ms late.
    let bounds = [(20, 20), (30, 40), (50, 80), (90, 160), (170, 320)];
    for (gap, (low, high)) in gaps(&at).into_iter().zip(bounds) {
        assert!(
            gap >= low * MS && gap <= (high + 1) * MS,
            "gap {gap:?} not in [{low}, {high}] ms; all: {:?}",
            gaps(&at)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn max_backoff_caps_the_wait() {
    let (addr, mut accepted) = door_slammer().await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .retry(20 * MS)
        .max_backoff(60 * MS)
        .max_retries(6)
        .build();
    assert!(matches!(
        next(&mut events).await,
        Some(Err(ClientError::RetriesExhausted { .. }))
    ));
    let mut at = Vec::new();
    while let Ok(instant) = accepted.try_recv() {
        at.push(instant);
    }
    let gaps = gaps(&at);
    assert_eq!(gaps.len(), 6);
    assert!(
        gaps[3..]
            .iter()
            .all(|gap| *gap >= 40 * MS && *gap <= 61 * MS),
        "{gaps:?}"
    );
}

/// A server speaking canned HTTP/1.1 over raw sockets: it reads the request
/// head of connection `n` (from 0), writes `answers[n]` if there is one, and
/// closes the connection. Reports each connection's time and request head.
async fn scripted_server(
    answers: Vec<Option<&'static str>>,
) -> (SocketAddr, mpsc::UnboundedReceiver<(Instant, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 0.. {
            let (mut socket, _) = listener.accept().await.unwrap();
            let at = Instant::now();
            let answer = answers.get(n).copied().flatten();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut buf = [0; 1024];
                let read = socket.read(&mut buf).await.unwrap();
                assert!(read > 0, "the client closed mid-request");
                head.extend_from_slice(&buf[..read]);
            }
            let _ = tx.send((at, String::from_utf8(head).unwrap()));
            if let Some(answer) = answer {
                socket.write_all(answer.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        }
    });
    (addr, rx)
}

const STREAM_THEN_CLOSE: &str = "HTTP/1.1 200 OK\r\n\
    content-type: text/event-stream\r\n\
    connection: close\r\n\
    \r\n\
    id: 5\ndata: complete\n\ndata: incomplete, never dispatched";

#[tokio::test(start_paused = true)]
async fn an_open_stream_resets_the_back_off() {
    // 5 failures, a stream that ends, then failures again.
    let mut answers = vec![None; 5];
    answers.push(Some(STREAM_THEN_CLOSE));
    let (addr, mut connections) = scripted_server(answers).await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .retry(50 * MS)
        .max_backoff(10_000 * MS)
        .max_retries(5)
        .build();
    let event = next(&mut events).await.unwrap().unwrap();
    assert_eq!(event, DecodedEvent::new("message", "complete", "5"));
    // The stream ends, the next connection fails: 5 more retries after the
    // reset, so the client does not give up before that.
    assert!(matches!(
        next(&mut events).await,
        Some(Err(ClientError::RetriesExhausted { .. }))
    ));

    let mut seen = Vec::new();
    while let Ok(connection) = connections.try_recv() {
        seen.push(connection);
    }
    assert_eq!(seen.len(), 11, "6 connections, then 5 retries");
    let at: Vec<Instant> = seen.iter().map(|(at, _)| *at).collect();
    let gaps = gaps(&at);
    // Before the open stream, failure 5 waited at least 50 + 750 / 2 ms.
    assert!(gaps[4] >= 425 * MS, "{gaps:?}");
    // After it, the first reconnection waits exactly `retry` again, then
    // the waits grow from there.
    assert!(gaps[5] >= 50 * MS && gaps[5] <= 51 * MS, "{gaps:?}");
    assert!(gaps[6] >= 75 * MS && gaps[6] <= 101 * MS, "{gaps:?}");
    // The stream's last event ID went out with every reconnection after it.
    for (n, (_, head)) in seen.iter().enumerate() {
        assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head:?}");
        assert!(head.contains("accept: text/event-stream\r\n"), "{head:?}");
        assert!(head.contains("cache-control: no-cache\r\n"), "{head:?}");
        assert_eq!(
            head.contains("last-event-id: 5\r\n"),
            n > 5,
            "{n}: {head:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_a_clean_end_waiting_exactly_retry() {
    let answers = vec![Some(STREAM_THEN_CLOSE); 3];
    let (addr, mut connections) = scripted_server(answers).await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .retry(200 * MS)
        .max_retries(1)
        .build();
    for _ in 0..3 {
        let event = next(&mut events).await.unwrap().unwrap();
        assert_eq!(event, DecodedEvent::new("message", "complete", "5"));
    }
    // Each open stream resets the count of retries: with `max_retries(1)`
    // the client gives up only when the fourth connection fails.
    match next(&mut events).await {
        Some(Err(e @ ClientError::RetriesExhausted { .. })) => {
            assert_eq!(
                e.to_string(),
                "the connection was lost and reconnecting failed (max_retries: 1)"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut seen = Vec::new();
    while let Ok(connection) = connections.try_recv() {
        seen.push(connection);
    }
    assert_eq!(seen.len(), 4);
    for (_, head) in &seen[1..] {
        assert!(head.contains("last-event-id: 5\r\n"), "{head:?}");
    }
    let at: Vec<Instant> = seen.iter().map(|(at, _)| *at).collect();
    for gap in gaps(&at) {
        assert!(gap >= 200 * MS && gap <= 201 * MS, "{gap:?}");
    }
}

/// A router whose `/` answers what `answer` gives, counting requests.
async fn count_requests<R: IntoResponse + Send + 'static>(
    answer: fn() -> R,
) -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/",
        get(move || {
            tx.send(()).unwrap();
            std::future::ready(answer())
        }),
    );
    (serve(app).await, rx)
}

#[tokio::test]
async fn stops_on_204() {
    let (addr, mut requests) = count_requests(|| StatusCode::NO_CONTENT).await;
    let mut events = source(addr, "/");
    assert!(next(&mut events).await.is_none());
    assert!(futures_util::stream::FusedStream::is_terminated(&events));
    assert!(next(&mut events).await.is_none());
    assert_eq!(requests.recv().await, Some(()));
    assert!(requests.try_recv().is_err(), "one request only");
}

#[tokio::test]
async fn fails_on_500_without_reconnecting() {
    let (addr, mut requests) = count_requests(|| (StatusCode::INTERNAL_SERVER_ERROR, "boom")).await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .retry(MS)
        .build();
    match next(&mut events).await {
        Some(Err(ClientError::Status(StatusCode::INTERNAL_SERVER_ERROR))) => {}
        other => panic!("expected a 500 error, got {other:?}"),
    }
    assert!(next(&mut events).await.is_none());
    assert_eq!(requests.recv().await, Some(()));
    tokio::time::sleep(50 * MS).await; // a retry after 1 ms would show
    assert!(requests.try_recv().is_err(), "one request only");
}

#[tokio::test]
async fn fails_on_text_html_without_reconnecting() {
    let (addr, mut requests) =
        count_requests(|| axum::response::Html("<h1>not a stream</h1>")).await;
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .retry(MS)
        .build();
    match next(&mut events).await {
        Some(Err(ClientError::ContentType(Some(value)))) => {
            assert_eq!(value, "text/html; charset=utf-8");
        }
        other => panic!("expected a content type error, got {other:?}"),
    }
    assert!(next(&mut events).await.is_none());
    assert_eq!(requests.recv().await, Some(()));
    tokio::time::sleep(50 * MS).await;
    assert!(requests.try_recv().is_err(), "one request only");
}

#[tokio::test]
async fn accepts_a_charset_and_follows_redirects() {
    let app = Router::new()
        .route("/old", get(|| async { Redirect::temporary("/new") }))
        .route(
            "/new",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")],
                    "event: moved\ndata: here\n\n",
                )
            }),
        );
    let addr = serve(app).await;
    let mut events = source(addr, "/old");
    let event = next(&mut events).await.unwrap().unwrap();
    assert_eq!(event, DecodedEvent::new("moved", "here", ""));
}

#[tokio::test]
async fn a_line_past_the_decoder_limit_fails_the_connection() {
    let app = Router::new().route(
        "/",
        get(|| async {
            let line = format!("data: {}\n\n", "x".repeat(1024 * 1024));
            ([(header::CONTENT_TYPE, "text/event-stream")], line)
        }),
    );
    let addr = serve(app).await;
    let mut events = source(addr, "/");
    match next(&mut events).await {
        Some(Err(ClientError::Decode(e))) => {
            assert_eq!(e.to_string(), "event stream line longer than 1048576 bytes");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(next(&mut events).await.is_none());
}

#[tokio::test]
async fn urls_it_cannot_request_fail_at_once() {
    for (url, reason) in [
        ("/relative", "the URL is not absolute"),
        (
            "https://127.0.0.1:1/",
            "the built-in client speaks plain `http` only; \
             use `EventSourceBuilder::client` with a TLS connector",
        ),
    ] {
        let mut events = EventSource::new(url.parse().unwrap());
        match events.next().now_or_never() {
            Some(Some(Err(ClientError::InvalidUrl { reason: r, .. }))) => assert_eq!(r, reason),
            other => panic!("{url}: {other:?}"),
        }
        assert!(matches!(events.next().now_or_never(), Some(None)));
    }
}

#[tokio::test]
async fn a_custom_client_is_used() {
    use axum::body::Body;
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let (tx, mut requests) = mpsc::unbounded_channel();
    let addr = serve(Router::new().route(
        "/",
        get(move |headers: HeaderMap| {
            tx.send(headers).unwrap();
            std::future::ready((
                [(header::CONTENT_TYPE, "text/event-stream")],
                "data: hi\n\n",
            ))
        }),
    ))
    .await;
    // A client with a layer of its own: it adds a header.
    let client = tower::ServiceBuilder::new()
        .map_request(|mut request: http::Request<Body>| {
            request
                .headers_mut()
                .insert("x-layer", http::HeaderValue::from_static("yes"));
            request
        })
        .service(Client::builder(TokioExecutor::new()).build_http::<Body>());
    let mut events = EventSource::builder(format!("http://{addr}/").parse().unwrap())
        .client(client)
        .header(
            header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer t"),
        )
        .build();
    let event = next(&mut events).await.unwrap().unwrap();
    assert_eq!(event.data, "hi");
    let headers = requests.recv().await.unwrap();
    assert_eq!(headers["x-layer"], "yes");
    assert_eq!(headers[header::AUTHORIZATION], "Bearer t");
    assert_eq!(headers[header::ACCEPT], "text/event-stream");
}

#[tokio::test]
async fn dropping_the_event_source_closes_the_connection() {
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    let handler = move |mut sse: SseWriter| {
        let closed_tx = closed_tx.clone();
        async move {
            tokio::spawn(async move {
                // hyper notices a closed socket when it writes: keep writing.
                while sse.send(Event::new().data("tick")).await.is_ok() {
                    tokio::time::sleep(5 * MS).await;
                }
                closed_tx.send(()).unwrap();
            });
        }
    };
    let addr = serve(
        Router::new()
            .route("/", get(handler))
            .layer(SseLayer::new()),
    )
    .await;
    let mut events = source(addr, "/");
    assert_eq!(next(&mut events).await.unwrap().unwrap().data, "tick");
    drop(events);
    tokio::time::timeout(Duration::from_secs(10), closed.recv())
        .await
        .expect("the server still sends 10 s after the client was dropped")
        .unwrap();
}
