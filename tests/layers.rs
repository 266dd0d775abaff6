//! Heartbeat, retry and Last-Event-ID layers: timing under a paused clock,
//! on this crate's streams and on axum's own `Sse`.

mod common;

use std::{convert::Infallible, time::Duration};

use axum::{
    body::Body,
    http::{Request, StatusCode},
    response::{sse, IntoResponse, Response},
    routing::get,
    Router,
};
use bytes::Bytes;
use common::{fetch, frames, read_to_end, read_until, serve, serve_and_get};
use futures_util::{stream, Stream, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tower::ServiceExt;

use axum_sse::{
    Event, HeartbeatLayer, LastEventId, LastEventIdLayer, RetryLayer, SseBody, SseLayer, SseWriter,
};

const INTERVAL: Duration = Duration::from_secs(15);

/// An event stream that yields one event after each of `delays`.
fn events_after(delays: Vec<u64>) -> impl Stream<Item = Event> + Send {
    stream::iter(delays.into_iter().enumerate()).then(|(i, secs)| async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Event::new().id(i).data("x")
    })
}

/// Sends `request` through `app` and returns each body frame with the
/// (virtual) second it arrived at, until the body ends or `until` passes.
fn get_root() -> Request<Body> {
    Request::get("/").body(Body::empty()).unwrap()
}

fn at(frames: &[(u64, &str)]) -> Vec<(u64, String)> {
    frames.iter().map(|(t, s)| (*t, s.to_string())).collect()
}

#[tokio::test(start_paused = true)]
async fn no_heartbeat_while_events_flow() {
    let app = Router::new()
        .route(
            "/",
            get(|| async { SseBody::new(events_after(vec![10; 6])) }),
        )
        .layer(HeartbeatLayer::new(INTERVAL));
    let frames = frames(app, get_root(), Duration::from_secs(300)).await;
    let expected: Vec<(u64, String)> = (0..6)
        .map(|i| (10 * (i + 1), format!("id: {i}\ndata: x\n\n")))
        .collect();
    assert_eq!(frames, expected);
}

#[tokio::test(start_paused = true)]
async fn one_heartbeat_after_each_idle_interval_reset_by_events() {
    let app = Router::new()
        .route(
            "/",
            get(|| async { SseBody::new(events_after(vec![20]).chain(stream::pending())) }),
        )
        .layer(HeartbeatLayer::new(INTERVAL));
    let frames = frames(app, get_root(), Duration::from_secs(66)).await;
    assert_eq!(
        frames,
        at(&[
            (15, ":\n"),
            (20, "id: 0\ndata: x\n\n"),
            (35, ":\n"),
            (50, ":\n"),
            (65, ":\n")
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_never_splits_an_event() {
    // The inner body sends half an event, stalls for 40 s, then the rest.
    let chunks = [(0, "data: first half"), (40, " second half\n"), (0, "\n")];
    let body = stream::iter(chunks).then(|(secs, text)| async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(text.as_bytes())))
    });
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(Body::new(StreamBody::new(
        body.chain(stream::pending()),
    )))));
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                let body = body.lock().unwrap().take().unwrap();
                ([("content-type", "text/event-stream")], body).into_response()
            }),
        )
        .layer(HeartbeatLayer::new(INTERVAL));
    let frames = frames(app, get_root(), Duration::from_secs(56)).await;
    assert_eq!(
        frames,
        at(&[
            (0, "data: first half"),
            (40, " second half\n"),
            (40, "\n"),
            (55, ":\n"),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_on_axums_own_sse_with_a_custom_message() {
    let axum_sse = || async { sse::Sse::new(stream::pending::<Result<sse::Event, Infallible>>()) };
    let app = Router::new()
        .route("/comment", get(axum_sse))
        .route("/event", get(axum_sse))
        .layer(HeartbeatLayer::new(INTERVAL).comment("ping"));
    let frames_seen = frames(
        app,
        Request::get("/comment").body(Body::empty()).unwrap(),
        Duration::from_secs(31),
    )
    .await;
    assert_eq!(frames_seen, at(&[(15, ": ping\n"), (30, ": ping\n")]));

    let app = Router::new()
        .route("/", get(axum_sse))
        .layer(HeartbeatLayer::new(INTERVAL).event(Event::new().event("ping").data("")));
    let frames_seen = frames(app, get_root(), Duration::from_secs(16)).await;
    assert_eq!(frames_seen, at(&[(15, "event: ping\ndata:\n\n")]));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_on_a_writer_stream_from_the_builder() {
    let handler = |mut sse: SseWriter| async move {
        sse.send(Event::new().data("hi")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(40)).await;
        sse.send(Event::new().data("bye")).await.unwrap();
    };
    let app = Router::new().route("/", get(handler)).layer(
        SseLayer::builder()
            .heartbeat(INTERVAL)
            .retry(Duration::from_millis(2500))
            .build(),
    );
    let frames = frames(app, get_root(), Duration::from_secs(100)).await;
    assert_eq!(
        frames,
        at(&[
            (0, "retry: 2500\ndata: hi\n\n"),
            (15, ":\n"),
            (30, ":\n"),
            (40, "data: bye\n\n"),
        ])
    );
}

#[tokio::test]
async fn retry_joins_the_first_event() {
    let app = Router::new()
        .route(
            "/",
            get(|| async { SseBody::new(stream::iter([Event::new().data("a")])) }),
        )
        .layer(RetryLayer::new(Duration::from_secs(3)));
    let response = serve_and_get(app, "/").await;
    assert_eq!(
        read_to_end(response.into_body()).await,
        "retry: 3000\ndata: a\n\n"
    );
}

#[tokio::test(start_paused = true)]
async fn other_responses_are_untouched_by_all_three_layers() {
    let app = Router::new()
        .route("/", get(|| async { ([("x-kept", "1")], "plain text") }))
        .layer(HeartbeatLayer::new(INTERVAL))
        .layer(RetryLayer::new(INTERVAL))
        .layer(LastEventIdLayer::new());
    let request = Request::get("/")
        .header("last-event-id", "5")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers.len(), 3, "{headers:?}"); // content-type, content-length, x-kept
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["content-length"], "10");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "plain text");
    // And nothing arrives later either: the body is complete.
    let frames = frames(app, get_root(), Duration::from_secs(60)).await;
    assert_eq!(frames, at(&[(0, "plain text")]));
}

fn echo_last_event_id() -> Router {
    Router::new()
        .route(
            "/required",
            get(|LastEventId(id): LastEventId| async move { format!("required {id}") }),
        )
        .route(
            "/optional",
            get(|id: Option<LastEventId>| async move { format!("optional {id:?}") }),
        )
        .route(
            "/writer",
            get(|mut sse: SseWriter| async move {
                let id = sse.last_event_id().unwrap_or("none").to_owned();
                let _ = sse.send(Event::new().data(id)).await;
            }),
        )
}

async fn body_of(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response: Response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn with_header(path: &str, value: &[u8]) -> Request<Body> {
    Request::get(path)
        .header(
            "last-event-id",
            http::HeaderValue::from_bytes(value).unwrap(),
        )
        .body(Body::empty())
        .unwrap()
}

fn plain(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn last_event_id_from_the_header_and_the_query() {
    let app = echo_last_event_id().layer(
        SseLayer::builder()
            .last_event_id(LastEventIdLayer::new().query_param("lastEventId"))
            .build(),
    );
    assert_eq!(
        body_of(&app, with_header("/required", b"41")).await,
        (StatusCode::OK, "required 41".into())
    );
    assert_eq!(
        body_of(&app, plain("/optional?lastEventId=7")).await,
        (StatusCode::OK, "optional Some(LastEventId(\"7\"))".into())
    );
    assert_eq!(
        body_of(&app, plain("/optional")).await,
        (StatusCode::OK, "optional None".into())
    );
    assert_eq!(
        body_of(&app, with_header("/writer", "✓".as_bytes())).await,
        (StatusCode::OK, "data: ✓\n\n".into())
    );
    assert_eq!(
        body_of(&app, plain("/writer?lastEventId=3")).await,
        (StatusCode::OK, "data: 3\n\n".into())
    );
    // As `URLSearchParams` writes `order 17`.
    assert_eq!(
        body_of(&app, plain("/writer?lastEventId=order+17")).await,
        (StatusCode::OK, "data: order 17\n\n".into())
    );
    let (status, text) = body_of(&app, plain("/required")).await;
    assert_eq!(
        (status, text.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "this endpoint needs a Last-Event-ID"
        )
    );
    // Without any layer, the extractor reads the header with default rules.
    let bare = echo_last_event_id();
    assert_eq!(
        body_of(&bare, with_header("/required", b"9")).await,
        (StatusCode::OK, "required 9".into())
    );
    assert_eq!(
        body_of(&bare, plain("/optional?lastEventId=7")).await,
        (StatusCode::OK, "optional None".into())
    );
}

fn hostile_requests() -> Vec<(&'static str, Request<Body>)> {
    let long = "7".repeat(100 * 1024);
    vec![
        (
            "non-UTF-8 header",
            with_header("/optional", b"\xff\xfe\xfd"),
        ),
        ("100 KB header", with_header("/optional", long.as_bytes())),
        (
            "LF in query",
            plain("/optional?lastEventId=1%0Aevent:%20admin"),
        ),
        ("CR in query", plain("/optional?lastEventId=1%0D")),
        ("NUL in query", plain("/optional?lastEventId=1%00")),
        ("non-UTF-8 query", plain("/optional?lastEventId=%C3%28")),
    ]
}

#[tokio::test]
async fn invalid_last_event_ids_are_absent_by_default() {
    let app = echo_last_event_id().layer(
        SseLayer::builder()
            .last_event_id(LastEventIdLayer::new().query_param("lastEventId"))
            .build(),
    );
    for (what, request) in hostile_requests() {
        assert_eq!(
            body_of(&app, request).await,
            (StatusCode::OK, "optional None".into()),
            "{what}"
        );
    }
    // The extractor alone applies the same default.
    let bare = echo_last_event_id();
    assert_eq!(
        body_of(&bare, with_header("/optional", b"\xff")).await,
        (StatusCode::OK, "optional None".into())
    );
}

#[tokio::test]
async fn invalid_last_event_ids_are_rejected_when_configured() {
    let app = echo_last_event_id().layer(
        SseLayer::builder()
            .last_event_id(
                LastEventIdLayer::new()
                    .query_param("lastEventId")
                    .reject_invalid(),
            )
            .build(),
    );
    let expected = [
        "invalid Last-Event-ID: not UTF-8",
        "invalid Last-Event-ID: longer than 1024 bytes",
        "invalid Last-Event-ID: contains CR, LF or NUL",
        "invalid Last-Event-ID: contains CR, LF or NUL",
        "invalid Last-Event-ID: contains CR, LF or NUL",
        "invalid Last-Event-ID: not UTF-8",
    ];
    for ((what, request), expected) in hostile_requests().into_iter().zip(expected) {
        assert_eq!(
            body_of(&app, request).await,
            (StatusCode::BAD_REQUEST, expected.into()),
            "{what}"
        );
    }
}

#[tokio::test]
async fn hostile_last_event_id_headers_on_the_wire() {
    let app = echo_last_event_id().layer(SseLayer::new());
    let addr = serve(app).await;
    let long = "7".repeat(100 * 1024);
    let cases: [&[u8]; 3] = [b"\xff\xfe", long.as_bytes(), b"1\x00"];
    for value in cases {
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut request =
            b"GET /optional HTTP/1.1\r\nhost: x\r\nconnection: close\r\nlast-event-id: ".to_vec();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n\r\n");
        client.write_all(&request).await.unwrap();
        let mut response = Vec::new();
        client.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        // hyper itself may refuse a NUL in a header; either way: an answer, no panic.
        assert!(
            response.starts_with("HTTP/1.1 200") && response.ends_with("optional None")
                || response.starts_with("HTTP/1.1 400"),
            "{response}"
        );
    }
    // The server still serves.
    let mut body = fetch(addr, "/writer").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: none\n\n");
}
