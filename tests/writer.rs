//! End to end: the push API over a real `axum::serve` and a real HTTP client.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    http::StatusCode,
    response::{sse, IntoResponse},
    routing::get,
    Router,
};
use common::{
    answer, fetch, get_h2, next_data, read_to_end, read_until, reply, serve, serve_and_get,
};
use futures_util::stream;
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::oneshot};

use axum_sse::{Event, SseBody, SseError, SseLayer, SseWriter, TrySendError};

async fn three_ticks(mut sse: SseWriter) -> Result<(), SseError> {
    for i in 0..3 {
        sse.send(Event::new().event("tick").id(i).data("x")).await?;
    }
    Ok(())
}

#[tokio::test]
async fn streams_events_in_order_with_the_sse_headers() {
    let app = Router::new()
        .route("/", get(three_ticks))
        .layer(SseLayer::new());
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache, no-transform");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["connection"], "keep-alive");
    assert_eq!(
        read_to_end(response.into_body()).await,
        "event: tick\nid: 0\ndata: x\n\n\
         event: tick\nid: 1\ndata: x\n\n\
         event: tick\nid: 2\ndata: x\n\n"
    );
}

#[tokio::test]
async fn no_connection_header_over_http2() {
    let app = Router::new()
        .route("/", get(three_ticks))
        .layer(SseLayer::new());
    let addr = serve(app).await;
    let response = get_h2(addr, "/").await;
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert!(!response.headers().contains_key("connection"));
    let body = read_to_end(response.into_body()).await;
    assert!(body.ends_with("id: 2\ndata: x\n\n"), "{body:?}");
}

#[tokio::test]
async fn events_reach_the_client_as_they_are_sent() {
    // The handler sends one event, then waits for the test to have read it.
    let (step, steps) = tokio::sync::mpsc::channel::<()>(1);
    let steps = Arc::new(tokio::sync::Mutex::new(steps));
    let handler = move |mut sse: SseWriter| {
        let steps = Arc::clone(&steps);
        async move {
            let mut steps = steps.lock().await;
            for i in 0..3 {
                sse.send(Event::new().id(i).data("x")).await?;
                steps.recv().await;
            }
            Ok::<_, SseError>(())
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let mut body = serve_and_get(app, "/").await.into_body();
    for i in 0..3 {
        assert_eq!(
            read_until(&mut body, "\n\n").await,
            format!("id: {i}\ndata: x\n\n")
        );
        step.send(()).await.unwrap();
    }
    assert!(next_data(&mut body).await.is_none());
}

#[tokio::test]
async fn an_answer_before_the_first_send_reaches_the_client_unchanged() {
    let (late_send, late_result) = reply::<Result<(), SseError>>();
    let handler = move |headers: http::HeaderMap, sse: SseWriter| {
        let late_send = late_send.clone();
        async move {
            if !headers.contains_key("authorization") {
                // A clone lives on in a task: the 401 still wins.
                let mut writer = sse.clone();
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let result = writer.send(Event::new().data("too late")).await;
                    answer(&late_send, result);
                });
                return (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Bearer")],
                    "who are you?",
                )
                    .into_response();
            }
            let mut sse = sse;
            let _ = sse.send(Event::new().data("welcome")).await;
            ().into_response()
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let addr = serve(app).await;

    let response = fetch(addr, "/").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(!response.headers().contains_key("x-accel-buffering"));
    assert_eq!(read_to_end(response.into_body()).await, "who are you?");
    let late = late_result.await.unwrap();
    assert!(
        matches!(late, Err(SseError::ResponseAlreadySent)),
        "{late:?}"
    );

    let authorized = http::Request::get("/")
        .header("authorization", "Bearer x")
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = common::request(addr, authorized).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(read_to_end(response.into_body()).await, "data: welcome\n\n");
}

#[tokio::test]
async fn an_invalid_event_fails_the_send_and_the_handler_can_still_answer() {
    let handler = |mut sse: SseWriter| async move {
        match sse
            .send(Event::new().id("7\r\nevent: admin").data("x"))
            .await
        {
            Err(SseError::InvalidEvent(err)) => {
                assert!(!sse.is_started());
                (StatusCode::BAD_REQUEST, err.to_string()).into_response()
            }
            other => panic!("expected InvalidEvent, got {other:?}"),
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        read_to_end(response.into_body()).await,
        "the `id` field of an event cannot contain CR or LF"
    );
}

#[tokio::test]
async fn without_the_layer_the_extractor_names_it() {
    let app = Router::new().route("/", get(three_ticks));
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = read_to_end(response.into_body()).await;
    assert!(body.contains("SseLayer"), "{body}");
}

#[tokio::test]
async fn extracting_two_writers_is_refused() {
    let app = Router::new()
        .route("/", get(|_a: SseWriter, _b: SseWriter| async {}))
        .layer(SseLayer::new());
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = read_to_end(response.into_body()).await;
    assert!(body.contains("clone the first writer"), "{body}");
}

#[tokio::test]
async fn a_writer_moved_into_a_task_starts_the_stream_when_the_handler_returns() {
    let handler = |mut sse: SseWriter| async move {
        tokio::spawn(async move {
            for i in 0..3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                sse.send(Event::new().id(i).data("from a task"))
                    .await
                    .unwrap();
            }
        });
        StatusCode::OK
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        read_to_end(response.into_body()).await,
        "id: 0\ndata: from a task\n\nid: 1\ndata: from a task\n\nid: 2\ndata: from a task\n\n"
    );
}

#[tokio::test]
async fn start_answers_before_any_event() {
    // The handler sends its event only once the client has the head.
    let (head_seen, head_seen_rx) = oneshot::channel::<()>();
    let head_seen_rx = Arc::new(Mutex::new(Some(head_seen_rx)));
    let handler = move |mut sse: SseWriter| {
        let head_seen_rx = head_seen_rx.lock().unwrap().take().unwrap();
        async move {
            sse.start().unwrap();
            head_seen_rx.await.unwrap();
            sse.send(Event::new().data("later")).await
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    head_seen.send(()).unwrap();
    assert_eq!(read_to_end(response.into_body()).await, "data: later\n\n");
}

#[tokio::test]
async fn a_client_that_leaves_makes_sends_fail_and_closed_resolve() {
    let (outcome, outcome_rx) = reply::<(usize, SseError)>();
    let handler = move |mut sse: SseWriter| {
        let outcome = outcome.clone();
        async move {
            sse.send(Event::new().data("hello")).await.unwrap();
            let watcher = sse.clone();
            let closed = tokio::spawn(async move { watcher.closed().await });
            let mut sent = 1;
            // hyper notices the closed socket on a write: keep writing.
            let err = loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                match sse.send(Event::new().data("more")).await {
                    Ok(()) => sent += 1,
                    Err(err) => break err,
                }
            };
            closed.await.unwrap();
            assert!(sse.is_closed());
            answer(&outcome, (sent, err));
        }
    };
    // The handler runs in its own task here, so it outlives the connection
    // and can report.
    let handler = move |sse: SseWriter| {
        let handler = handler.clone();
        async move {
            tokio::spawn(handler(sse));
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let mut body = serve_and_get(app, "/").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
    drop(body);
    let (sent, err) = tokio::time::timeout(Duration::from_secs(10), outcome_rx)
        .await
        .expect("the writer never saw the client leave")
        .unwrap();
    assert!(
        matches!(err, SseError::ConnectionClosed),
        "{err:?} after {sent} events"
    );
}

#[tokio::test]
async fn an_inline_handler_is_dropped_with_the_connection() {
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let handler_drops = Arc::clone(&drops);
    let handler = move |mut sse: SseWriter| {
        let guard = Dropped(Arc::clone(&handler_drops));
        async move {
            let _guard = guard;
            sse.send(Event::new().data("hello")).await.unwrap();
            std::future::pending::<()>().await;
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let mut body = serve_and_get(app, "/").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
    drop(body);
    for _ in 0..1000 {
        if drops.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the handler future outlived its connection");
}

#[tokio::test]
async fn a_client_that_reads_nothing_blocks_the_writer_with_bounded_memory() {
    const EVENT_SIZE: usize = 1024;
    let sent = Arc::new(AtomicUsize::new(0));
    let (outcome, outcome_rx) = reply::<SseError>();
    let handler_sent = Arc::clone(&sent);
    let handler = move |mut sse: SseWriter| {
        let sent = Arc::clone(&handler_sent);
        let outcome = outcome.clone();
        async move {
            tokio::spawn(async move {
                let data = "x".repeat(EVENT_SIZE);
                loop {
                    if let Err(err) = sse.send(Event::new().data(&data)).await {
                        answer(&outcome, err);
                        return;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let addr = serve(app).await;

    // A raw client: sends the request, then never reads.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();

    // Wait until the writer stalls: the count stops moving.
    let last = common::until_steady(&sent).await;
    // What is in flight is the queue plus the kernel's socket buffers: a few
    // MiB on loopback, nowhere near the gigabyte the writer wanted to send.
    assert!(last > 0);
    eprintln!("{last} events of {EVENT_SIZE} B in flight when the writer stalled");
    assert!(
        last * EVENT_SIZE < 64 * 1024 * 1024,
        "{last} events in flight to a client that reads nothing"
    );
    drop(client);
    let err = tokio::time::timeout(Duration::from_secs(10), outcome_rx)
        .await
        .expect("a blocked writer did not see the client leave")
        .unwrap();
    assert!(matches!(err, SseError::ConnectionClosed), "{err:?}");
}

#[tokio::test]
async fn try_send_hands_the_event_back_when_the_queue_is_full() {
    let (outcome, outcome_rx) = reply::<Vec<String>>();
    let handler = move |mut sse: SseWriter| {
        let outcome = outcome.clone();
        async move {
            let mut seen = Vec::new();
            for i in 0..3 {
                match sse.try_send(Event::new().id(i).data("x")) {
                    Ok(()) => seen.push(format!("sent {i}")),
                    Err(TrySendError::Full(event)) => {
                        let encoded = event.encode().unwrap();
                        seen.push(format!(
                            "full {}",
                            String::from_utf8_lossy(encoded.as_bytes())
                        ));
                    }
                    Err(other) => panic!("{other}"),
                }
            }
            answer(&outcome, seen);
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::builder().max_queued_events(2).build());
    let response = serve_and_get(app, "/").await;
    assert_eq!(
        outcome_rx.await.unwrap(),
        ["sent 0", "sent 1", "full id: 2\ndata: x\n\n"]
    );
    assert_eq!(
        read_to_end(response.into_body()).await,
        "id: 0\ndata: x\n\nid: 1\ndata: x\n\n"
    );
}

#[tokio::test]
async fn a_handler_error_after_the_stream_started_is_discarded() {
    let handler = |mut sse: SseWriter| async move {
        sse.send(Event::new().data("partial")).await.unwrap();
        Err::<(), _>((StatusCode::INTERNAL_SERVER_ERROR, "oops"))
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let response = serve_and_get(app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(read_to_end(response.into_body()).await, "data: partial\n\n");
}

#[tokio::test]
async fn stream_style_bodies_and_axums_own_sse_get_the_headers() {
    let ours =
        || async { SseBody::new(stream::iter((0..2).map(|i| Event::new().id(i).data("s")))) };
    let axums = || async {
        let events = stream::iter([Ok::<_, std::convert::Infallible>(
            sse::Event::default().data("a"),
        )]);
        sse::Sse::new(events)
    };
    let app = Router::new()
        .route("/ours", get(ours))
        .route("/axum", get(axums))
        .route("/plain", get(|| async { "plain" }))
        .layer(SseLayer::new());
    let addr = serve(app).await;

    let response = fetch(addr, "/ours").await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["connection"], "keep-alive");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(
        read_to_end(response.into_body()).await,
        "id: 0\ndata: s\n\nid: 1\ndata: s\n\n"
    );

    let response = fetch(addr, "/axum").await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["connection"], "keep-alive");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(read_to_end(response.into_body()).await, "data: a\n\n");

    let response = fetch(addr, "/plain").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("x-accel-buffering"));
    assert!(!response.headers().contains_key("cache-control"));
    assert!(!response.headers().contains_key("connection"));
    assert_eq!(read_to_end(response.into_body()).await, "plain");
}

#[tokio::test]
async fn events_queued_together_reach_hyper_as_one_frame() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let handler = |mut sse: SseWriter| async move {
        for i in 0..50 {
            sse.try_send(Event::new().id(i).data("x")).unwrap();
        }
        sse.closed().await;
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let request = http::Request::get("/")
        .body(axum::body::Body::empty())
        .unwrap();
    let mut body = app.oneshot(request).await.unwrap().into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let expected: String = (0..50).map(|i| format!("id: {i}\ndata: x\n\n")).collect();
    assert_eq!(frame, expected, "50 queued events, one frame");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_handler_and_a_spawned_writer_share_a_small_queue_without_losing_a_wake() {
    // The handler sends inline (its body polls it, no waker) while a clone
    // sends from a task of its own (woken by the body's drains), through a
    // queue of two events: every event arrives, each writer's in order.
    const EACH: usize = 2_000;
    let handler = |mut sse: SseWriter| async move {
        let mut spawned = sse.clone();
        let other = tokio::spawn(async move {
            for i in 0..EACH {
                spawned.send(Event::new().event("b").id(i)).await?;
            }
            Ok::<_, SseError>(())
        });
        for i in 0..EACH {
            sse.send(Event::new().event("a").id(i)).await?;
        }
        other.await.expect("the spawned writer panicked")
    };
    let app = Router::new().route("/", get(handler)).layer(
        SseLayer::builder()
            .max_queued_events(2)
            .send_timeout(Duration::from_secs(60))
            .build(),
    );
    let addr = serve(app).await;
    let body = tokio::time::timeout(
        Duration::from_secs(60),
        read_to_end(fetch(addr, "/").await.into_body()),
    )
    .await
    .expect("a writer was never woken");
    let mut next = [0_usize; 2];
    for event in body.split("\n\n").filter(|event| !event.is_empty()) {
        let (writer, id) = match event.split_once("\nid: ") {
            Some(("event: a", id)) => (0, id),
            Some(("event: b", id)) => (1, id),
            _ => panic!("unexpected event {event:?}"),
        };
        assert_eq!(id.parse::<usize>().unwrap(), next[writer], "{event:?}");
        next[writer] += 1;
    }
    assert_eq!(next, [EACH, EACH]);
}
