//! End to end, over a real `axum::serve` on loopback: slow consumers,
//! disconnects, time limits, stream limits, graceful shutdown, stats, churn.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{http::StatusCode, routing::get, Router};
use bytes::BytesMut;
use common::{answer, eventually, fetch, never_reading_client, next_data, read_until, reply, Live};
use futures_util::{stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{io::AsyncReadExt, net::TcpListener, task::JoinHandle, time::Instant};

use axum_sse::{
    CloseReason, Event, SseBody, SseError, SseLayer, SseShutdown, SseStatsSnapshot, SseWriter,
};

/// The tests that open a thousand connections or more run one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serves `app` with the peer address available (for per-client limits),
/// until `shutdown` (if any) is triggered.
async fn serve(app: Router, shutdown: Option<SseShutdown>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app);
        match shutdown {
            Some(shutdown) => serve
                .with_graceful_shutdown(async move { shutdown.triggered().await })
                .await
                .unwrap(),
            None => serve.await.unwrap(),
        }
    });
    (addr, server)
}

/// Each frame with the (virtual) second it arrived at, until the body ends
/// cleanly; panics on a body error or after `limit`.
async fn frames_until_end(body: &mut Incoming, limit: Duration) -> Vec<(u64, String)> {
    let start = Instant::now();
    let mut frames = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(start + limit, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no end within {limit:?}; got {frames:?}"));
        let Some(frame) = frame else {
            return frames;
        };
        let data = frame
            .expect("the body ended with an error")
            .into_data()
            .unwrap();
        frames.push((
            start.elapsed().as_secs(),
            String::from_utf8(data.to_vec()).unwrap(),
        ));
    }
}

/// A handler that sends `hello`, then waits (inline) for the client to go.
async fn hello_then_wait(mut sse: SseWriter) {
    if sse.send(Event::new().data("hello")).await.is_ok() {
        std::future::pending::<()>().await;
    }
}

fn assert_closed(stats: &SseStatsSnapshot, expected: &[(CloseReason, u64)]) {
    for reason in [
        CloseReason::ClientGone,
        CloseReason::Finished,
        CloseReason::Error,
        CloseReason::Idle,
        CloseReason::MaxDuration,
        CloseReason::SlowConsumer,
        CloseReason::Shutdown,
    ] {
        let want = expected
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n);
        assert_eq!(stats.closed(reason), want, "closed by {reason}: {stats:?}");
    }
}

// ---------------------------------------------------------------- slow consumer

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_is_bounded_then_closed() {
    const EVENT_SIZE: usize = 1024;
    const SEND_TIMEOUT: Duration = Duration::from_secs(5);
    let (outcome, outcome_rx) = reply::<(usize, Duration, SseError, SseError)>();
    let handler = move |mut sse: SseWriter| {
        let outcome = outcome.clone();
        async move {
            // A writer of its own task: it keeps its timer while the
            // connection is stuck.
            tokio::spawn(async move {
                let data = "x".repeat(EVENT_SIZE);
                let mut sent = 0;
                let err = loop {
                    let started = Instant::now();
                    match sse.send(Event::new().data(&data)).await {
                        Ok(()) => sent += 1,
                        Err(err) => break (err, started.elapsed()),
                    }
                };
                let after = sse.send(Event::new().data("more")).await.unwrap_err();
                answer(&outcome, (sent, err.1, err.0, after));
            });
        }
    };
    let layer = SseLayer::builder()
        .max_queued_events(16)
        .max_queued_bytes(16 * 1024)
        .send_timeout(SEND_TIMEOUT)
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let (addr, _server) = serve(app, None).await;

    let client = never_reading_client(addr, "/").await;
    let (sent, waited, err, after) = tokio::time::timeout(Duration::from_secs(60), outcome_rx)
        .await
        .expect("the writer never gave up on a client that reads nothing")
        .unwrap();
    eprintln!(
        "slow consumer: {sent} events of {EVENT_SIZE} B accepted, then Timeout after {waited:?}"
    );
    assert!(matches!(err, SseError::Timeout), "{err:?}");
    assert!(matches!(after, SseError::ConnectionClosed), "{after:?}");
    assert!(waited >= SEND_TIMEOUT, "{waited:?}");
    assert!(
        sent * EVENT_SIZE < 64 * 1024 * 1024,
        "{sent} events went to a client that reads nothing"
    );
    // The connection stays until the client lets go (hyper cannot write to
    // it); then the stream is counted as closed by the slow-consumer policy.
    drop(client);
    eventually(Duration::from_secs(10), "the stream closed", || {
        stats.open_streams() == 0
    })
    .await;
    assert_closed(&stats.snapshot(), &[(CloseReason::SlowConsumer, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_gets_a_clean_end_after_the_send_timeout() {
    // The handler sends inline, on the connection's task. The client reads,
    // but only 4 KiB every 2 s: the handler's sends wait longer than the
    // send timeout, and the stream ends cleanly.
    const EVENT_SIZE: usize = 16 * 1024;
    let (outcome, outcome_rx) = reply::<(usize, SseError)>();
    let handler = move |mut sse: SseWriter| {
        let outcome = outcome.clone();
        async move {
            let data = "y".repeat(EVENT_SIZE);
            for sent in 0.. {
                if let Err(err) = sse.send(Event::new().data(&data)).await {
                    answer(&outcome, (sent, err));
                    return;
                }
            }
        }
    };
    let layer = SseLayer::builder()
        .max_queued_events(1)
        .send_timeout(Duration::from_secs(1))
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let (addr, _server) = serve(app, None).await;

    let mut client = never_reading_client(addr, "/").await;
    let mut received = Vec::new();
    let mut chunk = vec![0; 4096];
    while !received.ends_with(b"\r\n0\r\n\r\n") {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before the end of the body");
        received.extend_from_slice(&chunk[..n]);
        assert!(received.len() < 64 * 1024 * 1024, "unbounded");
    }
    let (sent, err) = outcome_rx.await.unwrap();
    eprintln!(
        "slow reader: {sent} events of {EVENT_SIZE} B sent, {} B received, then a clean end",
        received.len()
    );
    assert!(matches!(err, SseError::Timeout), "{err:?}");
    eventually(Duration::from_secs(5), "the stream closed", || {
        stats.open_streams() == 0
    })
    .await;
    assert_closed(&stats.snapshot(), &[(CloseReason::SlowConsumer, 1)]);
}

// ------------------------------------------------------------------ disconnect

#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_is_seen_within_a_heartbeat() {
    const HEARTBEAT: Duration = Duration::from_secs(15);
    let live = Live::default();
    let (seen, seen_rx) = reply::<(Duration, SseError)>();
    let (left_at, left_at_rx) = reply::<Instant>();
    let left_at_rx = Arc::new(tokio::sync::Mutex::new(Some(left_at_rx)));
    let inline_live = live.clone();
    let app = Router::new()
        // The handler runs inline: it is dropped with the connection.
        .route(
            "/inline",
            get(move |sse: SseWriter| {
                let guard = inline_live.enter();
                async move {
                    let _guard = guard;
                    hello_then_wait(sse).await;
                }
            }),
        )
        // The writer runs in a task: `closed()` resolves, sends fail.
        .route(
            "/task",
            get(move |mut sse: SseWriter| {
                let seen = seen.clone();
                let left_at_rx = Arc::clone(&left_at_rx);
                async move {
                    sse.send(Event::new().data("hello")).await.unwrap();
                    tokio::spawn(async move {
                        sse.closed().await;
                        let left_at = left_at_rx.lock().await.take().unwrap().await.unwrap();
                        let err = sse.send(Event::new().data("late")).await.unwrap_err();
                        answer(&seen, (left_at.elapsed(), err));
                    });
                }
            }),
        )
        .layer(SseLayer::builder().heartbeat(HEARTBEAT).build());
    let (addr, _server) = serve(app, None).await;

    let mut body = fetch(addr, "/inline").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
    assert_eq!(live.count(), 1);
    let left = Instant::now();
    drop(body);
    eventually(
        HEARTBEAT + Duration::from_secs(1),
        "the handler dropped",
        || live.count() == 0,
    )
    .await;
    eprintln!(
        "inline handler dropped {:?} after the client left",
        left.elapsed()
    );

    let mut body = fetch(addr, "/task").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
    answer(&left_at, Instant::now());
    drop(body);
    let (after, err) = tokio::time::timeout(HEARTBEAT + Duration::from_secs(1), seen_rx)
        .await
        .expect("the writer did not see the client leave within a heartbeat")
        .unwrap();
    eprintln!("closed() resolved {after:?} after the client left");
    assert!(after <= HEARTBEAT, "{after:?}");
    assert!(matches!(err, SseError::ConnectionClosed), "{err:?}");
}

// ----------------------------------------------------------------- time limits

#[tokio::test(start_paused = true)]
async fn an_idle_stream_ends_cleanly_and_heartbeats_are_not_activity() {
    let handler = |mut sse: SseWriter| async move {
        sse.send(Event::new().data("a")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(20)).await;
        sse.send(Event::new().data("b")).await.unwrap();
        std::future::pending::<()>().await;
    };
    let layer = SseLayer::builder()
        .heartbeat(Duration::from_secs(10))
        .idle_timeout(Duration::from_secs(30))
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let (addr, _server) = serve(app, None).await;
    let mut body = fetch(addr, "/").await.into_body();
    let frames = frames_until_end(&mut body, Duration::from_secs(600)).await;
    let expected: Vec<(u64, String)> = [
        (0, "data: a\n\n"),
        (10, ":\n"),
        (20, "data: b\n\n"),
        (30, ":\n"),
        (40, ":\n"),
    ]
    .iter()
    .map(|(t, s)| (*t, s.to_string()))
    .collect();
    assert_eq!(frames, expected);
    eventually(Duration::from_secs(5), "the stream closed", || {
        stats.open_streams() == 0
    })
    .await;
    assert_closed(&stats.snapshot(), &[(CloseReason::Idle, 1)]);
}

#[tokio::test(start_paused = true)]
async fn streams_end_cleanly_at_their_max_duration_spread_by_the_jitter() {
    const STREAMS: usize = 20;
    let handler = |mut sse: SseWriter| async move {
        // Busy: an event every 5 seconds, forever.
        for i in 0.. {
            if sse.send(Event::new().id(i).data("tick")).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    let layer = SseLayer::builder()
        .max_duration(Duration::from_secs(600))
        .max_duration_jitter(Duration::from_secs(120))
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let (addr, _server) = serve(app, None).await;
    let start = Instant::now();
    let ends: Vec<u64> = stream::iter(0..STREAMS)
        .map(|_| async move {
            let mut body = fetch(addr, "/").await.into_body();
            let frames = frames_until_end(&mut body, Duration::from_secs(3600)).await;
            assert!(frames.iter().all(|(_, f)| f.ends_with("data: tick\n\n")));
            start.elapsed().as_secs()
        })
        .buffer_unordered(STREAMS)
        .collect()
        .await;
    let (first, last) = (ends.iter().min().unwrap(), ends.iter().max().unwrap());
    eprintln!("{STREAMS} streams ended between {first} s and {last} s");
    assert!(*first >= 480 && *last <= 600, "{ends:?}");
    assert!(last > first, "no spread: {ends:?}");
    eventually(Duration::from_secs(5), "the streams closed", || {
        stats.open_streams() == 0
    })
    .await;
    assert_closed(
        &stats.snapshot(),
        &[(CloseReason::MaxDuration, STREAMS as u64)],
    );
}

// --------------------------------------------------------------- stream limits

async fn status_of(addr: SocketAddr, path: &str, user: &str) -> (StatusCode, Option<String>) {
    let request = http::Request::get(path)
        .header("user", user)
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = common::request(addr, request).await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), retry_after)
}

/// Opens a stream and reads its first event.
async fn open(addr: SocketAddr, path: &str, user: &str) -> Incoming {
    let request = http::Request::get(path)
        .header("user", user)
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = common::request(addr, request).await;
    assert_eq!(response.status(), StatusCode::OK, "{path} for {user}");
    let mut body = response.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
    body
}

#[tokio::test]
async fn the_global_limit_answers_429_and_a_closed_stream_frees_its_permit() {
    let layer = SseLayer::builder().max_streams(2).build();
    let stats = layer.stats();
    let app = Router::new()
        .route("/", get(hello_then_wait))
        .route(
            "/refuse",
            get(|_sse: SseWriter| async { StatusCode::UNAUTHORIZED }),
        )
        .layer(layer);
    let (addr, _server) = serve(app, None).await;

    // Answers that are not streams hold no permit once answered.
    for _ in 0..5 {
        assert_eq!(
            status_of(addr, "/refuse", "a").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let first = open(addr, "/", "a").await;
    let _second = open(addr, "/", "b").await;
    assert_eq!(
        status_of(addr, "/", "c").await,
        (StatusCode::TOO_MANY_REQUESTS, Some("5".into()))
    );
    assert_eq!(
        status_of(addr, "/refuse", "c").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Close one stream: its permit comes back, and a new stream opens.
    drop(first);
    eventually(Duration::from_secs(5), "the stream closed", || {
        stats.open_streams() == 1
    })
    .await;
    let _third = open(addr, "/", "c").await;
    assert_eq!(
        status_of(addr, "/", "d").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let now = stats.snapshot();
    assert_eq!(now.rejected_by_limit(), 3);
    assert_eq!(now.accepted(), 3);
    assert_eq!(now.open_streams(), 2);
}

#[tokio::test]
async fn the_per_client_limit_answers_429_by_peer_address_or_by_key() {
    // By peer address (all of this test's clients are 127.0.0.1).
    let layer = SseLayer::builder().max_streams_per_client(2).build();
    let stats = layer.stats();
    let by_ip = Router::new().route("/", get(hello_then_wait)).layer(layer);
    let (addr, _server) = serve(by_ip, None).await;
    let a = open(addr, "/", "a").await;
    let _b = open(addr, "/", "b").await;
    assert_eq!(
        status_of(addr, "/", "c").await,
        (StatusCode::TOO_MANY_REQUESTS, Some("5".into()))
    );
    drop(a);
    eventually(Duration::from_secs(5), "the stream closed", || {
        stats.open_streams() == 1
    })
    .await;
    let _c = open(addr, "/", "c").await;
    assert_eq!(stats.snapshot().rejected_by_limit(), 1);

    // By a key of the request: one user's streams do not count for another.
    let layer = SseLayer::builder()
        .max_streams_per_client(2)
        .client_key(|parts: &http::request::Parts| {
            parts
                .headers
                .get("user")
                .and_then(|user| user.to_str().ok())
                .map(str::to_owned)
        })
        .build();
    let stats = layer.stats();
    let by_user = Router::new().route("/", get(hello_then_wait)).layer(layer);
    let (addr, _server) = serve(by_user, None).await;
    let alice = open(addr, "/", "alice").await;
    let _alice2 = open(addr, "/", "alice").await;
    assert_eq!(
        status_of(addr, "/", "alice").await,
        (StatusCode::TOO_MANY_REQUESTS, Some("5".into()))
    );
    let _bob = open(addr, "/", "bob").await;
    let _bob2 = open(addr, "/", "bob").await;
    drop(alice);
    eventually(Duration::from_secs(5), "alice's stream closed", || {
        stats.open_streams() == 3
    })
    .await;
    let _alice3 = open(addr, "/", "alice").await;
    assert_eq!(stats.snapshot().rejected_by_limit(), 1);
}

// ------------------------------------------------------------ graceful shutdown

#[tokio::test]
async fn new_requests_get_503_once_shutting_down() {
    let shutdown = SseShutdown::new();
    let layer = SseLayer::builder().shutdown(shutdown.clone()).build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(hello_then_wait)).layer(layer);
    // Not a graceful server: it keeps accepting, the layer refuses.
    let (addr, _server) = serve(app, None).await;
    let mut open = fetch(addr, "/").await.into_body();
    assert_eq!(read_until(&mut open, "\n\n").await, "data: hello\n\n");
    shutdown.trigger();
    assert!(
        next_data(&mut open).await.is_none(),
        "the stream did not end"
    );
    let response = fetch(addr, "/").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let now = stats.snapshot();
    assert_eq!(now.rejected_by_shutdown(), 1);
    assert_eq!(now.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_with_1000_open_streams_returns_promptly() {
    const STREAMS: usize = 1000;
    let _heavy = HEAVY.lock().await;
    let shutdown = SseShutdown::new();
    let layer = SseLayer::builder()
        .heartbeat(Duration::from_secs(15))
        .shutdown(shutdown.clone())
        .farewell(Event::new().event("shutdown").data("bye"))
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(hello_then_wait)).layer(layer);
    let (addr, server) = serve(app, Some(shutdown.clone())).await;

    let opening = Instant::now();
    let bodies: Vec<Incoming> = stream::iter(0..STREAMS)
        .map(|_| async move {
            let mut body = fetch(addr, "/").await.into_body();
            assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
            body
        })
        .buffer_unordered(100)
        .collect()
        .await;
    eprintln!("{STREAMS} streams open in {:?}", opening.elapsed());
    assert_eq!(stats.open_streams(), STREAMS as u64);

    // Every client reads on, in a task of its own.
    let readers: Vec<_> = bodies
        .into_iter()
        .map(|mut body| {
            tokio::spawn(async move {
                let mut rest = BytesMut::new();
                while let Some(data) = next_data(&mut body).await {
                    rest.extend_from_slice(&data);
                }
                rest
            })
        })
        .collect();

    let triggered = Instant::now();
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server did not shut down")
        .unwrap();
    let took = triggered.elapsed();
    eprintln!("graceful shutdown with {STREAMS} open streams took {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    for reader in readers {
        let rest = reader.await.unwrap();
        assert_eq!(&rest[..], b"event: shutdown\ndata: bye\n\n");
    }
    assert_eq!(stats.open_streams(), 0);
    let now = stats.snapshot();
    assert_closed(&now, &[(CloseReason::Shutdown, STREAMS as u64)]);
    // One `hello` and one farewell per stream.
    assert_eq!(now.events_sent(), 2 * STREAMS as u64);
}

// ------------------------------------------------------------------- counters

#[tokio::test(start_paused = true)]
async fn the_counters_match_what_happened() {
    let shutdown = SseShutdown::new();
    let layer = SseLayer::builder()
        .idle_timeout(Duration::from_secs(60))
        .max_streams(3)
        .shutdown(shutdown.clone())
        .farewell(Event::new().event("bye").data(""))
        .build();
    let stats = layer.stats();
    let app = Router::new()
        // Two events, then the handler returns: finished.
        .route(
            "/two",
            get(|mut sse: SseWriter| async move {
                sse.send(Event::new().data("1")).await?;
                sse.send(Event::new().data("2")).await
            }),
        )
        .route("/wait", get(hello_then_wait))
        // A stream-style body that fails a second after its one event.
        .route(
            "/fails",
            get(|| async {
                let fail = stream::once(async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Err(std::io::Error::other("boom"))
                });
                SseBody::new(stream::iter([Ok(Event::new().data("s"))]).chain(fail))
            }),
        )
        .route("/plain", get(|| async { "plain" }))
        .layer(layer);
    let (addr, _server) = serve(app, None).await;

    // finished: 2 events, 2 × 9 bytes.
    let body = fetch(addr, "/two").await.into_body();
    assert_eq!(
        body.collect().await.unwrap().to_bytes(),
        "data: 1\n\ndata: 2\n\n"
    );
    // error: the body fails after its first frame (9 bytes, 0 events).
    let mut body = fetch(addr, "/fails").await.into_body();
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "data: s\n\n"
    );
    assert!(matches!(body.frame().await, Some(Err(_)) | None));
    // A plain answer is not a stream.
    assert_eq!(fetch(addr, "/plain").await.status(), StatusCode::OK);
    // client gone: 1 event.
    let mut gone = fetch(addr, "/wait").await.into_body();
    assert_eq!(read_until(&mut gone, "\n\n").await, "data: hello\n\n");
    drop(gone);
    eventually(
        Duration::from_secs(5),
        "the client-gone stream closed",
        || stats.open_streams() == 0,
    )
    .await;
    // idle: 1 event, then nothing for 60 s.
    let idle = fetch(addr, "/wait").await.into_body();
    let started = Instant::now();
    let mut idle = idle;
    assert_eq!(read_until(&mut idle, "\n\n").await, "data: hello\n\n");
    let rest = frames_until_end(&mut idle, Duration::from_secs(600)).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(started.elapsed().as_secs(), 60);
    // The limit: three open, a fourth refused.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut body = fetch(addr, "/wait").await.into_body();
        assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
        open.push(body);
    }
    assert_eq!(
        fetch(addr, "/wait").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // shutdown: the three end with the farewell (2 events each), then a 503.
    shutdown.trigger();
    for mut body in open {
        assert_eq!(read_until(&mut body, "\n\n").await, "event: bye\ndata:\n\n");
        assert!(next_data(&mut body).await.is_none());
    }
    assert_eq!(
        fetch(addr, "/wait").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    eventually(Duration::from_secs(5), "every stream closed", || {
        stats.open_streams() == 0
    })
    .await;

    let now = stats.snapshot();
    eprintln!("{now:?}");
    assert_eq!(now.accepted(), 7);
    assert_eq!(now.open_streams(), 0);
    assert_eq!(now.rejected_by_limit(), 1);
    assert_eq!(now.rejected_by_shutdown(), 1);
    assert_closed(
        &now,
        &[
            (CloseReason::Finished, 1),
            (CloseReason::Error, 1),
            (CloseReason::ClientGone, 1),
            (CloseReason::Idle, 1),
            (CloseReason::Shutdown, 3),
        ],
    );
    let hello = "data: hello\n\n".len() as u64;
    let farewell = "event: bye\ndata:\n\n".len() as u64;
    assert_eq!(now.events_sent(), 2 + 1 + 1 + 3 * 2);
    assert_eq!(
        now.bytes_sent(),
        2 * 9 + 9 + hello + hello + 3 * (hello + farewell)
    );
}

// ------------------------------------------------------------ layers alone

#[tokio::test(start_paused = true)]
async fn each_layer_works_alone_on_axums_own_sse() {
    use axum::response::sse::{Event as AxumEvent, Sse};
    use axum_sse::{ShutdownLayer, StreamLimitLayer, TimeLimitLayer};

    fn axum_sse(
    ) -> Sse<impl futures_util::Stream<Item = Result<AxumEvent, std::convert::Infallible>>> {
        let hello = stream::iter([Ok(AxumEvent::default().data("hello"))]);
        Sse::new(hello.chain(stream::pending()))
    }
    let shutdown = SseShutdown::new();
    let app = Router::new()
        .route(
            "/idle",
            get(|| async { axum_sse() })
                .layer(TimeLimitLayer::new().idle_timeout(Duration::from_secs(30))),
        )
        .route(
            "/shutdown",
            get(|| async { axum_sse() }).layer(
                ShutdownLayer::new(shutdown.clone())
                    .farewell(Event::new().event("bye").data(""))
                    .retry_after(Duration::from_secs(30)),
            ),
        )
        .route(
            "/limited",
            get(|| async { axum_sse() }).layer(StreamLimitLayer::new().max_streams(1)),
        );
    let (addr, _server) = serve(app, None).await;

    let mut idle = fetch(addr, "/idle").await.into_body();
    assert_eq!(
        frames_until_end(&mut idle, Duration::from_secs(600)).await,
        [(0, "data: hello\n\n".to_owned())]
    );

    let limited = fetch(addr, "/limited").await;
    assert_eq!(limited.status(), StatusCode::OK);
    let refused = fetch(addr, "/limited").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(limited);
    let mut reopened = false;
    for _ in 0..100 {
        if fetch(addr, "/limited").await.status() == StatusCode::OK {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reopened, "the permit never came back");

    let mut open = fetch(addr, "/shutdown").await.into_body();
    assert_eq!(read_until(&mut open, "\n\n").await, "data: hello\n\n");
    shutdown.trigger();
    assert_eq!(
        frames_until_end(&mut open, Duration::from_secs(60)).await,
        [(0, "event: bye\ndata:\n\n".to_owned())]
    );
    let refused = fetch(addr, "/shutdown").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "30");
}

// ---------------------------------------------------------------------- churn

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_10000_streams_leaves_nothing_open_or_running() {
    const STREAMS: usize = 10_000;
    const AT_ONCE: usize = 200;
    let _heavy = HEAVY.lock().await;
    let live = Live::default();
    let handler_live = live.clone();
    let handler = move |mut sse: SseWriter| {
        let guard = handler_live.enter();
        async move {
            sse.send(Event::new().data("hello")).await.unwrap();
            // Half the writers move to a task and wait there for the
            // client to leave; the others wait inline.
            if fastrand::bool() {
                tokio::spawn(async move {
                    let _guard = guard;
                    sse.closed().await;
                });
            } else {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        }
    };
    let layer = SseLayer::builder()
        .heartbeat(Duration::from_secs(15))
        .max_streams(AT_ONCE * 2)
        .max_streams_per_client(AT_ONCE * 2)
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let (addr, _server) = serve(app, None).await;
    // Let the server's tasks start before counting them.
    let _ = fetch(addr, "/").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    eventually(Duration::from_secs(5), "the first stream closed", || {
        stats.open_streams() == 0 && live.count() == 0
    })
    .await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();

    let start = Instant::now();
    let churned = stream::iter(0..STREAMS)
        .map(|_| async move {
            let mut body = fetch(addr, "/").await.into_body();
            assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
        })
        .buffer_unordered(AT_ONCE)
        .count()
        .await;
    assert_eq!(churned, STREAMS);
    eventually(Duration::from_secs(30), "every stream closed", || {
        stats.open_streams() == 0 && live.count() == 0
    })
    .await;
    eventually(Duration::from_secs(30), "every task ended", || {
        metrics.num_alive_tasks() <= tasks_before
    })
    .await;
    eprintln!(
        "{STREAMS} streams opened and dropped in {:?}",
        start.elapsed()
    );
    let now = stats.snapshot();
    assert_eq!(now.accepted(), STREAMS as u64 + 1);
    assert_eq!(now.rejected_by_limit(), 0);
    assert_closed(&now, &[(CloseReason::ClientGone, STREAMS as u64 + 1)]);
}
