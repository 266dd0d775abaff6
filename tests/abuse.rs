//! Hostile inputs, end to end over a real `axum::serve` on loopback: field
//! injection from a handler, a huge `Last-Event-ID`, connection storms, a
//! client that never reads.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{http::StatusCode, routing::get, Router};
use common::{eventually, fetch, never_reading_client, read_until, serve_with_peer_addr, Live};
use futures_util::{stream, StreamExt};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    time::Instant,
};

use axum_sse::{
    decode::{DecodedEvent, EventStream},
    CloseReason, Event, EventError, HeartbeatLayer, LastEventIdLayer, ShutdownLayer, SseError,
    SseLayer, SseShutdown, SseWriter,
};

/// Values that would split a field and inject another if written as they
/// are.
const HOSTILE: [&str; 7] = [
    "a\nevent: admin",
    "a\rid: 666",
    "a\r\ndata: injected",
    "a\n\ndata: second event",
    "\n",
    "trailing\r",
    "a\0b",
];

#[tokio::test]
async fn cr_lf_and_nul_in_every_field_inject_nothing() {
    #[derive(Serialize)]
    struct Payload<'a> {
        text: &'a str,
    }

    let (report, report_rx) = oneshot::channel::<Vec<String>>();
    let report = Arc::new(Mutex::new(Some(report)));
    let handler = move |mut sse: SseWriter| {
        let report = report.lock().unwrap().take();
        async move {
            let mut refused = Vec::new();
            for value in HOSTILE {
                // Single-line fields: refused, nothing sent.
                for (field, event) in [
                    ("event", Event::new().event(value).data("x")),
                    ("id", Event::new().id(value).data("x")),
                ] {
                    match sse.send(event).await {
                        Err(SseError::InvalidEvent(
                            EventError::LineBreak { .. } | EventError::Nul { .. },
                        )) => refused.push(format!("{field} {value:?}")),
                        Ok(()) => {}
                        Err(other) => panic!("{other}"),
                    }
                }
                // Multi-line fields: split into lines of their own field.
                sse.send(Event::new().event("data").data(value))
                    .await
                    .unwrap();
                sse.send(Event::new().comment(value).event("comment").data(""))
                    .await
                    .unwrap();
                let json = Event::new()
                    .event("json")
                    .json(&Payload { text: value })
                    .unwrap();
                sse.send(json).await.unwrap();
            }
            if let Some(report) = report {
                let _ = report.send(refused);
            }
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let addr = serve_with_peer_addr(app).await;
    let body = fetch(addr, "/").await.into_body();
    let decoded: Vec<DecodedEvent> = EventStream::from_body(body)
        .map(Result::unwrap)
        .collect()
        .await;

    // Every event and id with CR or LF was refused, and the id with NUL too
    // (an event type may hold NUL: it cannot end a line).
    let refused = report_rx.await.unwrap();
    let mut expected_refused = Vec::new();
    for value in HOSTILE {
        if value.contains(['\r', '\n']) {
            expected_refused.push(format!("event {value:?}"));
        }
        expected_refused.push(format!("id {value:?}"));
    }
    assert_eq!(refused, expected_refused);

    // What reached the client is exactly what was sent: the hostile text as
    // data, never a field of its own, never an extra event, never an id.
    let mut expected = Vec::new();
    for value in HOSTILE {
        if !value.contains(['\r', '\n']) {
            expected.push(DecodedEvent::new(value, "x", ""));
        }
        // Line breaks of any kind arrive as LF.
        let lines = value.replace("\r\n", "\n").replace('\r', "\n");
        expected.push(DecodedEvent::new("data", lines, ""));
        expected.push(DecodedEvent::new("comment", "", ""));
        let json = serde_json::to_string(&Payload { text: value }).unwrap();
        expected.push(DecodedEvent::new("json", json, ""));
    }
    assert_eq!(decoded, expected);
    assert!(decoded
        .iter()
        .all(|e| e.event != "admin" && e.last_event_id.is_empty()));

    // The layers' own messages refuse the same values.
    for value in HOSTILE {
        let event = Event::new().id(value).data("");
        assert!(HeartbeatLayer::new(Duration::from_secs(1))
            .try_event(event.clone())
            .is_err());
        assert!(ShutdownLayer::new(SseShutdown::new())
            .try_farewell(event.clone())
            .is_err());
        assert!(SseLayer::builder().try_farewell(event).is_err());
    }
}

/// Sends `head` and returns the server's answer, up to the end of its body
/// or of the connection.
async fn raw_exchange(addr: SocketAddr, head: &[u8]) -> String {
    let mut client = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read it all.
    let _ = client.write_all(head).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0; 4096];
        loop {
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
            if answer.ends_with(b"\r\n0\r\n\r\n") || answer.ends_with(b"optional None") {
                break;
            }
        }
    });
    read.await.expect("no answer within 10 s");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_1_mb_last_event_id_is_answered_without_a_panic() {
    let app = Router::new()
        .route(
            "/optional",
            get(|id: Option<axum_sse::LastEventId>| async move { format!("optional {id:?}") }),
        )
        .route(
            "/strict",
            get(|| async { "unreachable" }).layer(LastEventIdLayer::new().reject_invalid()),
        )
        .layer(SseLayer::new());
    let addr = serve_with_peer_addr(app).await;

    // 1 MB: past hyper's limit for a request head, refused by hyper itself.
    let huge = "7".repeat(1024 * 1024);
    for path in ["/optional", "/strict"] {
        let head = format!(
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nlast-event-id: {huge}\r\n\r\n"
        );
        let answer = raw_exchange(addr, head.as_bytes()).await;
        let status = answer.get(..12).unwrap_or(&answer);
        eprintln!("1 MB Last-Event-ID on {path}: {status:?}");
        assert!(
            answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
            "{status:?}"
        );
    }
    // 200 KB: within hyper's limit, so it reaches the layer: too long to be
    // an id, so absent (or a 400, when the rules say so).
    let large = "7".repeat(200 * 1024);
    let head = format!(
        "GET /optional HTTP/1.1\r\nhost: x\r\nconnection: close\r\nlast-event-id: {large}\r\n\r\n"
    );
    let answer = raw_exchange(addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.40}");
    assert!(answer.ends_with("optional None"), "{answer:.40}");
    let head = format!(
        "GET /strict HTTP/1.1\r\nhost: x\r\nconnection: close\r\nlast-event-id: {large}\r\n\r\n"
    );
    let answer = raw_exchange(addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:.40}");
    // And a query parameter of 1 MB in the URI.
    let head = format!("GET /optional?lastEventId={huge} HTTP/1.1\r\nhost: x\r\n\r\n");
    let answer = raw_exchange(addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{:.40}", answer);
    // The server still serves.
    assert_eq!(fetch(addr, "/optional").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_opened_and_dropped_at_once() {
    const CONNECTIONS: usize = 3000;
    let live = Live::default();
    let handler_live = live.clone();
    let handler = move |mut sse: SseWriter| {
        let guard = handler_live.enter();
        async move {
            let _guard = guard;
            if sse.send(Event::new().data("hello")).await.is_ok() {
                sse.closed().await;
            }
        }
    };
    let layer = SseLayer::builder()
        .heartbeat(Duration::from_secs(15))
        .max_streams(CONNECTIONS)
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let addr = serve_with_peer_addr(app).await;

    let start = Instant::now();
    // All at once, each its own way of leaving.
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            tokio::spawn(async move {
                let Ok(mut client) = TcpStream::connect(addr).await else {
                    return;
                };
                let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
                match i % 4 {
                    // Connect, then leave.
                    0 => {}
                    // Half a request line.
                    1 => {
                        let _ = client.write_all(&request[..7]).await;
                    }
                    // The request, then leave at once.
                    2 => {
                        let _ = client.write_all(request).await;
                    }
                    // The request, the first event, then leave.
                    _ => {
                        let _ = client.write_all(request).await;
                        let mut seen = Vec::new();
                        let mut chunk = [0; 1024];
                        while !seen.ends_with(b"data: hello\n\n\r\n") {
                            match client.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => seen.extend_from_slice(&chunk[..n]),
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    eventually(Duration::from_secs(30), "every stream closed", || {
        stats.open_streams() == 0 && live.count() == 0
    })
    .await;
    eprintln!(
        "{CONNECTIONS} connections opened and dropped at once, all closed after {:?}",
        start.elapsed()
    );
    let now = stats.snapshot();
    assert_eq!(now.closed(CloseReason::ClientGone), now.accepted());
    assert!(now.accepted() >= (CONNECTIONS / 4) as u64, "{now:?}");
    // The server still serves.
    let mut body = fetch(addr, "/").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
}

#[tokio::test(start_paused = true)]
async fn clients_that_never_read_time_out_their_writers_with_bounded_memory() {
    const CLIENTS: usize = 50;
    const EVENT_SIZE: usize = 4096;
    let sent = Arc::new(AtomicUsize::new(0));
    let (results, mut results_rx) = tokio::sync::mpsc::unbounded_channel::<SseError>();
    let handler_sent = Arc::clone(&sent);
    let handler = move |mut sse: SseWriter| {
        let sent = Arc::clone(&handler_sent);
        let results = results.clone();
        async move {
            tokio::spawn(async move {
                let data = "z".repeat(EVENT_SIZE);
                let err = loop {
                    match sse.send(Event::new().data(&data)).await {
                        Ok(()) => sent.fetch_add(1, Ordering::SeqCst),
                        Err(err) => break err,
                    };
                };
                let _ = results.send(err);
            });
        }
    };
    let layer = SseLayer::builder()
        .send_timeout(Duration::from_secs(10))
        .build();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let addr = serve_with_peer_addr(app).await;

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(never_reading_client(addr, "/").await);
    }
    for _ in 0..CLIENTS {
        let err = tokio::time::timeout(Duration::from_secs(60), results_rx.recv())
            .await
            .expect("a writer never gave up on its client")
            .unwrap();
        assert!(matches!(err, SseError::Timeout), "{err:?}");
    }
    let sent = sent.load(Ordering::SeqCst) * EVENT_SIZE;
    eprintln!(
        "{CLIENTS} clients that read nothing: {} KiB accepted in all, {} KiB each",
        sent / 1024,
        sent / 1024 / CLIENTS
    );
    // The queue (64 KiB) and what the kernel and hyper buffer, per client.
    assert!(sent / CLIENTS < 16 * 1024 * 1024, "{sent} B");
    drop(clients);
    eventually(Duration::from_secs(10), "every stream closed", || {
        stats.open_streams() == 0
    })
    .await;
    let now = stats.snapshot();
    assert_eq!(now.closed(CloseReason::SlowConsumer), CLIENTS as u64);
}

#[tokio::test]
async fn an_inline_handler_of_a_client_that_never_reads_is_paused_then_dropped() {
    // A handler sending on the connection's own task is polled only when
    // the connection can take more: with a client that reads nothing it
    // stays paused, holding no more than the bounded queue, and is dropped
    // with the connection.
    const EVENT_SIZE: usize = 4096;
    let live = Live::default();
    let sent = Arc::new(AtomicUsize::new(0));
    let (handler_live, handler_sent) = (live.clone(), Arc::clone(&sent));
    let handler = move |mut sse: SseWriter| {
        let guard = handler_live.enter();
        let sent = Arc::clone(&handler_sent);
        async move {
            let _guard = guard;
            let data = "z".repeat(EVENT_SIZE);
            while sse.send(Event::new().data(&data)).await.is_ok() {
                sent.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let layer = SseLayer::new();
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let addr = serve_with_peer_addr(app).await;
    let client = never_reading_client(addr, "/").await;
    let last = common::until_steady(&sent).await;
    eprintln!(
        "inline handler paused after {} KiB",
        last * EVENT_SIZE / 1024
    );
    assert!(last * EVENT_SIZE < 64 * 1024 * 1024);
    assert_eq!(live.count(), 1);
    drop(client);
    eventually(Duration::from_secs(10), "the handler dropped", || {
        live.count() == 0 && stats.open_streams() == 0
    })
    .await;
    assert_eq!(stats.snapshot().closed(CloseReason::ClientGone), 1);
}

#[tokio::test]
async fn stream_limits_hold_against_a_flood_from_one_client() {
    const FLOOD: usize = 500;
    let layer = SseLayer::builder()
        .max_streams(1000)
        .max_streams_per_client(10)
        .build();
    let stats = layer.stats();
    let app = Router::new()
        .route(
            "/",
            get(|mut sse: SseWriter| async move {
                if sse.send(Event::new().data("hello")).await.is_ok() {
                    std::future::pending::<()>().await;
                }
            }),
        )
        .layer(layer);
    let addr = serve_with_peer_addr(app).await;
    let statuses: Vec<(StatusCode, Option<hyper::body::Incoming>)> = stream::iter(0..FLOOD)
        .map(|_| async move {
            let response = fetch(addr, "/").await;
            let status = response.status();
            (
                status,
                (status == StatusCode::OK).then(|| response.into_body()),
            )
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let ok = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    let refused = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, refused), (10, FLOOD - 10));
    assert_eq!(stats.open_streams(), 10);
    drop(statuses);
    eventually(Duration::from_secs(10), "every stream closed", || {
        stats.open_streams() == 0
    })
    .await;
    assert_eq!(stats.snapshot().rejected_by_limit(), (FLOOD - 10) as u64);
}
