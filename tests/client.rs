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
struct Saw {
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
                .send(Saw {
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
    // The `retry` sent alone ends no block: it joins this event's.
    assert_eq!(
        one,
        DecodedEvent::new("message", "one", "7").with_retry(50 * MS)
    );
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
        .min_backoff(20 * MS)
        .max_backoff(10_000 * MS)
        .max_retries(5)
        .build();
    match next(&mut events).await {
        Some(Err(ClientError::RetriesExhausted {
            max_retries: 5,
            source,
        })) => assert!(matches!(*source, ClientError::Connect(_)), "{source:?}"),
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(next(&mut events).await.is_none());

    let mut at = Vec::new();
    while let Ok(instant) = accepted.try_recv() {
        at.push(instant);
    }
    assert_eq!(at.len(), 6, "the first attempt and 5 retries");
    // Failure n waits in [ceiling / 2, ceiling], ceiling = 20 ms * 2^n; a
    // timer may fire up to 1 ms late.
    let bounds = [(20, 40), (40, 80), (80, 160), (160, 320), (320, 640)];
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
        .min_backoff(20 * MS)
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
            .all(|gap| *gap >= 30 * MS && *gap <= 61 * MS),
        "{gaps:?}"
    );
}

/// What a [`raw_server`] does on one connection, after reading the request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Closes the connection without answering: a `Connect` error.
    Close,
    /// Writes the bytes, then closes the connection.
    Write(&'static str),
    /// Writes the bytes, waits (in the server's own task), then closes.
    Hold(&'static str, Duration),
}

/// A connection stays open and silent for a day: the client's timers fire
/// first.
const DAY: Duration = Duration::from_secs(86_400);

/// One request a [`raw_server`] read.
#[derive(Debug)]
struct Seen {
    at: Instant,
    head: String,
    body: String,
}

impl Seen {
    /// The value of header `name` (lower case, as hyper sends it).
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// A server speaking canned HTTP/1.1 over raw sockets: on connection `n`
/// (from 0) it reads the request (head, and a body of `content-length`
/// bytes), reports it, and does `answers[n]` (`Close` after the last one).
async fn raw_server(answers: Vec<Answer>) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 0.. {
            let (mut socket, _) = listener.accept().await.unwrap();
            let at = Instant::now();
            let mut received = Vec::new();
            let head_end = loop {
                if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
                let mut buf = [0; 1024];
                let read = socket.read(&mut buf).await.unwrap();
                assert!(read > 0, "the client closed mid-request");
                received.extend_from_slice(&buf[..read]);
            };
            let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
            let mut seen = Seen {
                at,
                head,
                body: String::new(),
            };
            let length: usize = seen
                .header("content-length")
                .map_or(0, |l| l.parse().unwrap());
            while received.len() < head_end + length {
                let mut buf = [0; 1024];
                let read = socket.read(&mut buf).await.unwrap();
                assert!(read > 0, "the client closed mid-body");
                received.extend_from_slice(&buf[..read]);
            }
            seen.body = String::from_utf8(received[head_end..].to_vec()).unwrap();
            let _ = tx.send(seen);
            match answers.get(n).copied().unwrap_or(Answer::Close) {
                Answer::Close => drop(socket),
                Answer::Write(bytes) => {
                    socket.write_all(bytes.as_bytes()).await.unwrap();
                    socket.shutdown().await.unwrap();
                }
                Answer::Hold(bytes, time) => {
                    socket.write_all(bytes.as_bytes()).await.unwrap();
                    tokio::spawn(async move {
                        tokio::time::sleep(time).await;
                        let _ = socket.shutdown().await;
                    });
                }
            }
        }
    });
    (addr, rx)
}

/// Everything `raw_server` reported so far.
fn all_seen(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut all = Vec::new();
    while let Ok(one) = seen.try_recv() {
        all.push(one);
    }
    all
}

fn times(seen: &[Seen]) -> Vec<Instant> {
    seen.iter().map(|s| s.at).collect()
}

/// An event stream response head whose body ends when the connection closes.
macro_rules! stream {
    ($body:expr) => {
        concat!(
            "HTTP/1.1 200 OK\r\n",
            "content-type: text/event-stream\r\n",
            "connection: close\r\n",
            "\r\n",
            $body
        )
    };
}

const STREAM_THEN_CLOSE: &str =
    stream!("id: 5\ndata: complete\n\ndata: incomplete, never dispatched");

fn builder(addr: SocketAddr) -> axum_sse::client::EventSourceBuilder {
    EventSource::builder(format!("http://{addr}/").parse().unwrap())
}

#[tokio::test(start_paused = true)]
async fn an_open_stream_resets_the_back_off() {
    // 5 failures, a stream that dispatches an event and ends, then failures
    // again.
    let mut answers = vec![Answer::Close; 5];
    answers.push(Answer::Write(STREAM_THEN_CLOSE));
    let (addr, mut connections) = raw_server(answers).await;
    let mut events = builder(addr)
        .retry(50 * MS)
        .min_backoff(50 * MS)
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

    let seen = all_seen(&mut connections);
    assert_eq!(seen.len(), 11, "6 connections, then 5 retries");
    let gaps = gaps(&times(&seen));
    // Before the open stream, failure 5 waited in [50 * 2^5 / 2, 50 * 2^5].
    assert!(gaps[4] >= 800 * MS && gaps[4] <= 1601 * MS, "{gaps:?}");
    // After it, the first reconnection waits exactly `retry`, then the
    // back-off starts over.
    assert!(gaps[5] >= 50 * MS && gaps[5] <= 51 * MS, "{gaps:?}");
    assert!(gaps[6] >= 50 * MS && gaps[6] <= 101 * MS, "{gaps:?}");
    assert!(gaps[7] >= 100 * MS && gaps[7] <= 201 * MS, "{gaps:?}");
    // The stream's last event ID went out with every reconnection after it.
    for (n, request) in seen.iter().enumerate() {
        assert!(
            request.head.starts_with("GET / HTTP/1.1\r\n"),
            "{request:?}"
        );
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("cache-control"), Some("no-cache"));
        let expected = (n > 5).then_some("5");
        assert_eq!(
            request.header("last-event-id"),
            expected,
            "{n}: {request:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn reconnects_after_a_clean_end_waiting_exactly_retry() {
    let answers = vec![Answer::Write(STREAM_THEN_CLOSE); 3];
    let (addr, mut connections) = raw_server(answers).await;
    let mut events = builder(addr).retry(200 * MS).max_retries(1).build();
    for _ in 0..3 {
        let event = next(&mut events).await.unwrap().unwrap();
        assert_eq!(event, DecodedEvent::new("message", "complete", "5"));
    }
    // Each healthy stream resets the count of retries: with `max_retries(1)`
    // the client gives up only when the fourth connection fails.
    match next(&mut events).await {
        Some(Err(e @ ClientError::RetriesExhausted { .. })) => {
            assert_eq!(
                e.to_string(),
                "gave up reconnecting after 1 retries in a row"
            );
            let source = std::error::Error::source(&e).unwrap();
            assert_eq!(
                source.to_string(),
                "the request failed before a response arrived"
            );
        }
        other => panic!("{other:?}"),
    }
    let seen = all_seen(&mut connections);
    assert_eq!(seen.len(), 4);
    for request in &seen[1..] {
        assert_eq!(request.header("last-event-id"), Some("5"), "{request:?}");
    }
    for gap in gaps(&times(&seen)) {
        assert!(gap >= 200 * MS && gap <= 201 * MS, "{gap:?}");
    }
}

/// Issue #11, item 4, first input: the connection dies in the middle of
/// event 2. The client must resume after event 1, or event 2 is lost.
#[tokio::test(start_paused = true)]
async fn resumes_after_the_last_dispatched_event_not_a_half_received_one() {
    const HALF: &str = "retry: 10\n\nid: 1\ndata: one\n\nid: 2\ndata: tw";
    // The same bytes, ended three ways: a clean close, a chunked body cut
    // short (a body error), and silence until the read timeout.
    const CLEAN: &str = stream!("retry: 10\n\nid: 1\ndata: one\n\nid: 2\ndata: tw");
    const BROKEN: &str = concat!(
        "HTTP/1.1 200 OK\r\n",
        "content-type: text/event-stream\r\n",
        "transfer-encoding: chunked\r\n",
        "\r\n",
        "2a\r\n",
        "retry: 10\n\nid: 1\ndata: one\n\nid: 2\ndata: tw",
        "\r\n",
    );
    assert_eq!(HALF.len(), 0x2a);
    const REPLAY: &str = stream!("id: 2\ndata: two\n\n");
    for first in [
        Answer::Write(CLEAN),
        Answer::Write(BROKEN),
        Answer::Hold(CLEAN, DAY),
    ] {
        let (addr, mut connections) = raw_server(vec![first, Answer::Hold(REPLAY, DAY)]).await;
        let mut events = builder(addr).read_timeout(Duration::from_secs(5)).build();
        let one = next(&mut events).await.unwrap().unwrap();
        assert_eq!(one, DecodedEvent::new("message", "one", "1"), "{first:?}");
        // "id: 2" is parsed, but event 2 was not dispatched.
        assert_eq!(events.last_event_id(), "1", "{first:?}");
        let two = next(&mut events).await.unwrap().unwrap();
        assert_eq!(two, DecodedEvent::new("message", "two", "2"), "{first:?}");
        assert_eq!(events.last_event_id(), "2");

        let seen = all_seen(&mut connections);
        assert_eq!(seen.len(), 2, "{first:?}");
        assert_eq!(seen[0].header("last-event-id"), None);
        assert_eq!(seen[1].header("last-event-id"), Some("1"), "{first:?}");
    }
}

/// Issue #11, item 4, second input: `retry: 0`, then every reconnection
/// fails. The client used to reconnect about 200 times in 0.3 s.
#[tokio::test(start_paused = true)]
async fn retry_zero_then_failures_back_off_from_the_floor() {
    let answers = vec![Answer::Write(stream!("retry: 0\n\n"))];
    let (addr, mut connections) = raw_server(answers).await;
    // Default back-off settings. `max_retries` only bounds a regression: a
    // client in a tight loop gives up at once instead of spinning forever
    // (the paused clock never moves while it spins).
    let mut events = builder(addr).max_retries(50).build();
    let start = Instant::now();
    // Nothing to yield for 10 s: the client keeps retrying meanwhile.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .is_err(),
        "no item expected"
    );
    let seen = all_seen(&mut connections);
    // Attempts at 0 s, then after waits of at least 1, 2 and 4 s: at most 4
    // within 10 s, whatever the jitter.
    assert!(
        (2..=4).contains(&seen.len()),
        "{} connections in 10 s",
        seen.len()
    );
    assert!(seen[0].at - start < MS);
    let gaps = gaps(&times(&seen));
    for (n, gap) in gaps.iter().enumerate() {
        let floor = Duration::from_secs(1 << n);
        assert!(*gap >= floor && *gap <= 2 * floor + MS, "{gaps:?}");
    }
}

/// The kinds around the second input: a first stream that did dispatch an
/// event gets one reconnection after `retry: 0`, then the back-off; a
/// server that answers `200` and closes every stream before any event gets
/// the back-off from the start.
#[tokio::test(start_paused = true)]
async fn failures_in_a_row_back_off_whatever_retry_says() {
    const HEALTHY: &str = stream!("retry: 0\ndata: one\n\n");
    const EMPTY: &str = stream!("retry: 0\n\n: and nothing else\n");
    for (answers, healthy_first) in [
        (vec![Answer::Write(HEALTHY)], true),
        (vec![Answer::Write(EMPTY); 20], false),
    ] {
        let (addr, mut connections) = raw_server(answers).await;
        let mut events = builder(addr)
            .min_backoff(100 * MS)
            .max_backoff(1000 * MS)
            .max_retries(8)
            .build();
        if healthy_first {
            assert_eq!(next(&mut events).await.unwrap().unwrap().data, "one");
        }
        match next(&mut events).await {
            Some(Err(ClientError::RetriesExhausted {
                max_retries: 8,
                source,
            })) => {
                if healthy_first {
                    assert!(matches!(*source, ClientError::Connect(_)), "{source:?}");
                } else {
                    assert!(matches!(*source, ClientError::Ended), "{source:?}");
                }
            }
            other => panic!("{other:?}"),
        }
        let seen = all_seen(&mut connections);
        assert_eq!(seen.len(), 9, "the first connection and 8 retries");
        let mut gaps = gaps(&times(&seen));
        if healthy_first {
            // Right after a healthy stream: the server's `retry: 0`.
            assert!(gaps.remove(0) < MS, "{gaps:?}");
        }
        // Failure n waits in [max(100, c / 2), c], c = min(100 * 2^n, 1000).
        for (failures, gap) in (1..).zip(&gaps) {
            let ceiling = (100u32 << failures).min(1000);
            let low = (ceiling / 2).max(100);
            assert!(
                *gap >= low * MS && *gap <= (ceiling + 1) * MS,
                "failure {failures}: {gap:?} not in [{low}, {ceiling}] ms; {gaps:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_quiet_stream_open_long_enough_is_healthy() {
    const QUIET: &str = stream!(": nothing to say\n");
    // Open 6 s, then 1 s, with `reset_backoff_after(5 s)`.
    let answers = vec![
        Answer::Hold(QUIET, Duration::from_secs(6)),
        Answer::Hold(QUIET, Duration::from_secs(1)),
        Answer::Hold(QUIET, Duration::from_secs(1)),
    ];
    let (addr, mut connections) = raw_server(answers).await;
    let mut events = builder(addr)
        .retry(10 * MS)
        .min_backoff(2000 * MS)
        .reset_backoff_after(Duration::from_secs(5))
        .max_retries(3)
        .build();
    assert!(matches!(
        next(&mut events).await,
        Some(Err(ClientError::RetriesExhausted { .. }))
    ));
    let seen = all_seen(&mut connections);
    // The healthy stream, then 3 retries: 2 short streams and a refusal.
    assert_eq!(seen.len(), 4);
    let gaps = gaps(&times(&seen));
    // Healthy: 6 s open, then `retry`.
    assert!(gaps[0] >= 6010 * MS && gaps[0] <= 6011 * MS, "{gaps:?}");
    // Not healthy: 1 s open, then the back-off from `min_backoff`: failure
    // 1 waits at least 2 s, failure 2 at least 4 s.
    assert!(gaps[1] >= 3000 * MS, "{gaps:?}");
    assert!(gaps[2] >= 5000 * MS, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_is_capped_by_max_backoff() {
    const HUGE: &str = stream!("retry: 99999999999999999999\ndata: one\n\n");
    let (addr, mut connections) = raw_server(vec![Answer::Write(HUGE); 2]).await;
    let mut events = builder(addr).max_backoff(Duration::from_secs(5)).build();
    for _ in 0..2 {
        assert_eq!(next(&mut events).await.unwrap().unwrap().data, "one");
    }
    assert_eq!(events.retry(), Duration::from_millis(u64::MAX));
    let seen = all_seen(&mut connections);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= 5000 * MS && gap <= 5001 * MS, "{gap:?}");
}

/// As the spec says, `retry` takes effect when its line is parsed, even in
/// a block that is never dispatched (unlike `id`).
#[tokio::test(start_paused = true)]
async fn a_retry_in_an_unfinished_block_is_taken() {
    const LATE: &str = stream!("data: one\n\nid: 2\nretry: 50\ndata: never");
    let (addr, mut connections) = raw_server(vec![Answer::Write(LATE); 2]).await;
    let mut events = builder(addr).build();
    for _ in 0..2 {
        let event = next(&mut events).await.unwrap().unwrap();
        assert_eq!(event, DecodedEvent::new("message", "one", ""));
    }
    let seen = all_seen(&mut connections);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= 50 * MS && gap <= 51 * MS, "{gap:?}");
    assert_eq!(seen[1].header("last-event-id"), None);
}

#[tokio::test(start_paused = true)]
async fn a_post_stream_sends_its_method_headers_and_body_on_every_reconnection() {
    let answers = vec![
        Answer::Write(stream!("retry: 10\nid: 1\ndata: one\n\n")),
        Answer::Hold(stream!("id: 2\ndata: two\n\n"), DAY),
    ];
    let (addr, mut connections) = raw_server(answers).await;
    let mut events = EventSource::builder(format!("http://{addr}/v1/chat?x=1").parse().unwrap())
        .method(http::Method::POST)
        .header(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        )
        .header(
            http::HeaderName::from_static("x-api-key"),
            http::HeaderValue::from_static("k1"),
        )
        .body(r#"{"prompt":"hi"}"#)
        .build();
    assert_eq!(next(&mut events).await.unwrap().unwrap().data, "one");
    assert_eq!(next(&mut events).await.unwrap().unwrap().data, "two");
    let seen = all_seen(&mut connections);
    assert_eq!(seen.len(), 2);
    for (n, request) in seen.iter().enumerate() {
        assert!(
            request.head.starts_with("POST /v1/chat?x=1 HTTP/1.1\r\n"),
            "{request:?}"
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("x-api-key"), Some("k1"));
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(request.header("content-length"), Some("15"));
        assert_eq!(request.body, r#"{"prompt":"hi"}"#, "request {n}");
    }
    assert_eq!(seen[0].header("last-event-id"), None);
    assert_eq!(seen[1].header("last-event-id"), Some("1"));
}

#[tokio::test]
async fn a_post_body_follows_a_307_redirect() {
    let app = Router::new()
        .route(
            "/old",
            axum::routing::post(|| async { Redirect::temporary("/new") }),
        )
        .route(
            "/new",
            axum::routing::post(
                |method: http::Method, headers: HeaderMap, body: String| async move {
                    let key = headers["x-api-key"].to_str().unwrap().to_owned();
                    (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        format!("data: {method} {key} {body}\n\n"),
                    )
                },
            ),
        );
    let addr = serve(app).await;
    let mut events = EventSource::builder(format!("http://{addr}/old").parse().unwrap())
        .method(http::Method::POST)
        .header(
            http::HeaderName::from_static("x-api-key"),
            http::HeaderValue::from_static("k1"),
        )
        .body("the prompt")
        .build();
    let event = next(&mut events).await.unwrap().unwrap();
    assert_eq!(event.data, "POST k1 the prompt");
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_dropped_after_the_read_timeout() {
    // Connection 0 sends one event and goes silent (half-open, as far as the
    // client can tell); connection 1 answers nothing at all.
    let answers = vec![
        Answer::Hold(stream!("id: 1\ndata: one\n\n"), DAY),
        Answer::Hold("", DAY),
        Answer::Hold(stream!("id: 2\ndata: two\n\n"), DAY),
    ];
    let (addr, mut connections) = raw_server(answers).await;
    let mut events = builder(addr)
        .retry(100 * MS)
        .min_backoff(100 * MS)
        .read_timeout(Duration::from_secs(5))
        .build();
    assert_eq!(next(&mut events).await.unwrap().unwrap().data, "one");
    let got_one = Instant::now();
    let two = next(&mut events).await.unwrap().unwrap();
    assert_eq!(two, DecodedEvent::new("message", "two", "2"));
    let seen = all_seen(&mut connections);
    assert_eq!(seen.len(), 3);
    // Silence for the read timeout, then `retry` (a healthy stream)...
    assert!(
        seen[1].at - got_one >= 5100 * MS,
        "{:?}",
        seen[1].at - got_one
    );
    // ...no response head for the read timeout, then the back-off.
    assert!(seen[2].at - seen[1].at >= 5100 * MS);
    assert_eq!(seen[1].header("last-event-id"), Some("1"));
    assert_eq!(seen[2].header("last-event-id"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn bytes_keep_the_read_timeout_from_firing() {
    // A comment every second for 20 s, then an event: a 3 s read timeout
    // never fires, so there is one connection only.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut connections) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tx.send(()).unwrap();
            tokio::spawn(async move {
                let mut buf = [0; 1024];
                let _ = socket.read(&mut buf).await;
                socket.write_all(stream!("").as_bytes()).await.unwrap();
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    socket.write_all(b": heartbeat\n").await.unwrap();
                }
                socket.write_all(b"data: done\n\n").await.unwrap();
                tokio::time::sleep(DAY).await;
            });
        }
    });
    let mut events = builder(addr).read_timeout(Duration::from_secs(3)).build();
    assert_eq!(next(&mut events).await.unwrap().unwrap().data, "done");
    assert_eq!(connections.recv().await, Some(()));
    assert!(connections.try_recv().is_err(), "one connection only");
}

/// Every way a connection can end that the client retries, as the source
/// of `RetriesExhausted` under `max_retries(0)`.
#[tokio::test(start_paused = true)]
async fn each_retried_failure_has_its_own_error() {
    // Connect: nothing listens on the port any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let mut events = builder(closed_addr).max_retries(0).build();
    match next(&mut events).await {
        Some(Err(ClientError::RetriesExhausted {
            max_retries: 0,
            source,
        })) => match *source {
            ClientError::Connect(ref e) => {
                assert_eq!(
                    source.to_string(),
                    "the request failed before a response arrived"
                );
                assert!(!e.to_string().is_empty());
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(next(&mut events).await.is_none());

    let cut_short = concat!(
        "HTTP/1.1 200 OK\r\n",
        "content-type: text/event-stream\r\n",
        "transfer-encoding: chunked\r\n",
        "\r\n",
        "a\r\n",
        "data: one\n",
        "\r\n",
    );
    /// The variant's name, and its duration for `ReadTimeout`.
    fn variant(e: &ClientError) -> String {
        match e {
            ClientError::Connect(_) => "Connect".into(),
            ClientError::Body(_) => "Body".into(),
            ClientError::Ended => "Ended".into(),
            ClientError::ReadTimeout(t) => format!("ReadTimeout({t:?})"),
            other => format!("{other:?}"),
        }
    }
    let cases = [
        (
            Answer::Close,
            "Connect",
            "the request failed before a response arrived",
        ),
        (Answer::Write(cut_short), "Body", "the event stream broke"),
        (
            Answer::Write(stream!(": bye\n")),
            "Ended",
            "the server ended the event stream",
        ),
        (
            Answer::Hold("", DAY),
            "ReadTimeout(2s)",
            "no data from the server for 2s (read timeout)",
        ),
    ];
    for (answer, expected, display) in cases {
        let (addr, mut connections) = raw_server(vec![answer]).await;
        let mut events = builder(addr)
            .read_timeout(Duration::from_secs(2))
            .max_retries(0)
            .build();
        match next(&mut events).await {
            Some(Err(ClientError::RetriesExhausted { source, .. })) => {
                assert_eq!(variant(&source), expected, "{answer:?}: {source:?}");
                assert!(source.is_retried());
                assert_eq!(source.to_string(), display);
            }
            other => panic!("{answer:?}: {other:?}"),
        }
        assert!(next(&mut events).await.is_none());
        assert_eq!(all_seen(&mut connections).len(), 1, "{answer:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusal_on_reconnection_ends_the_stream() {
    for (refusal, expected) in [
        (
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
            Some(StatusCode::SERVICE_UNAVAILABLE),
        ),
        ("HTTP/1.1 204 No Content\r\n\r\n", None),
    ] {
        let answers = vec![
            Answer::Write(stream!("id: 1\ndata: one\n\n")),
            Answer::Write(refusal),
        ];
        let (addr, mut connections) = raw_server(answers).await;
        let mut events = builder(addr).retry(10 * MS).build();
        assert_eq!(next(&mut events).await.unwrap().unwrap().data, "one");
        match (next(&mut events).await, expected) {
            (Some(Err(ClientError::Status(status))), Some(expected)) => {
                assert_eq!(status, expected);
                assert!(next(&mut events).await.is_none());
            }
            (None, None) => {}
            (other, _) => panic!("{refusal:?}: {other:?}"),
        }
        assert!(futures_util::stream::FusedStream::is_terminated(&events));
        tokio::time::sleep(Duration::from_secs(100)).await;
        let seen = all_seen(&mut connections);
        assert_eq!(seen.len(), 2, "no reconnection after {refusal:?}");
        assert_eq!(seen[1].header("last-event-id"), Some("1"));
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
