//! End to end: an upstream server, the relay example's app, and a client,
//! all real servers and connections on loopback.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/relay.rs"]
mod relay;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::RawQuery,
    http::{header, StatusCode},
    routing::get,
    Router,
};
use bytes::Bytes;
use common::{fetch, read_to_end, read_until, request, serve};
use http_body_util::Empty;
use tokio::sync::{mpsc, oneshot};

use axum_sse::{Event, SseError, SseLayer, SseWriter};

/// Serves the relay of `http://{upstream}{path}`.
async fn serve_relay(upstream: SocketAddr, path: &str) -> SocketAddr {
    serve(relay::app(
        format!("http://{upstream}{path}").parse().unwrap(),
    ))
    .await
}

/// Events of every shape, built in the order the relay re-encodes fields.
fn script() -> Vec<Event> {
    vec![
        Event::new().retry(Duration::from_millis(2500)),
        Event::new()
            .event("token")
            .id(1)
            .data(r#"{"token":"Hello "}"#),
        Event::new()
            .event("token")
            .data("no id: the last one persists"),
        Event::new().id(2).data("a message without a type"),
        Event::new()
            .id("ünï-3")
            .data("multi\nline\r\ndata, unicode: ✓"),
        Event::new().data(""),
        Event::new().id("").data("the id was reset"),
        Event::new()
            .event("done")
            .id(4)
            .retry(Duration::from_millis(100))
            .data("{}"),
    ]
}

async fn send_script(mut sse: SseWriter) -> Result<(), SseError> {
    for event in script() {
        sse.send(event).await?;
    }
    Ok(())
}

#[tokio::test]
async fn events_arrive_unchanged_byte_for_byte() {
    let upstream = serve(
        Router::new()
            .route("/events", get(send_script))
            .layer(SseLayer::new()),
    )
    .await;
    let direct = read_to_end(fetch(upstream, "/events").await.into_body()).await;
    assert_eq!(
        direct,
        // A `retry` sent alone ends no block: it joins the next event's.
        "retry: 2500\n\
         event: token\nid: 1\ndata: {\"token\":\"Hello \"}\n\n\
         event: token\ndata: no id: the last one persists\n\n\
         id: 2\ndata: a message without a type\n\n\
         id: ünï-3\ndata: multi\ndata: line\ndata: data, unicode: ✓\n\n\
         data:\n\n\
         id:\ndata: the id was reset\n\n\
         event: done\nid: 4\nretry: 100\ndata: {}\n\n",
        "the upstream's own bytes"
    );

    let relay = serve_relay(upstream, "/events").await;
    let response = fetch(relay, "/relay").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    // The relay writes each event's fields in its own order.
    let relayed = direct.replacen(
        "retry: 2500\nevent: token\nid: 1\n",
        "event: token\nid: 1\nretry: 2500\n",
        1,
    );
    assert_eq!(read_to_end(response.into_body()).await, relayed);
}

#[tokio::test]
async fn the_transform_hook_drops_internal_events_and_keeps_their_id() {
    let handler = |mut sse: SseWriter| async move {
        sse.send(Event::new().event("token").id(1).data("a"))
            .await?;
        sse.send(Event::new().event("internal").id(2).data("secret"))
            .await?;
        sse.send(Event::new().event("token").data("b")).await
    };
    let upstream = serve(
        Router::new()
            .route("/", get(handler))
            .layer(SseLayer::new()),
    )
    .await;
    let relay = serve_relay(upstream, "/").await;
    assert_eq!(
        read_to_end(fetch(relay, "/relay").await.into_body()).await,
        "event: token\nid: 1\ndata: a\n\n\
         event: token\nid: 2\ndata: b\n\n"
    );
}

#[tokio::test]
async fn last_event_id_and_query_reach_the_upstream() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |RawQuery(query): RawQuery, mut sse: SseWriter| {
        let seen_tx = seen_tx.clone();
        async move {
            let resume = sse.last_event_id().map(str::to_owned);
            seen_tx.send((resume.clone(), query)).unwrap();
            let next: u32 = resume.map_or(1, |id| id.parse::<u32>().unwrap() + 1);
            sse.send(Event::new().id(next).data("next")).await
        }
    };
    let upstream = serve(
        Router::new()
            .route("/up", get(handler))
            .layer(SseLayer::new()),
    )
    .await;
    let relay = serve_relay(upstream, "/up?prompt=hi&lang=en").await;

    let resumed = http::Request::get("/relay?prompt=bye")
        .header("last-event-id", "41")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = read_to_end(request(relay, resumed).await.into_body()).await;
    assert_eq!(body, "id: 42\ndata: next\n\n");
    assert_eq!(
        seen.recv().await.unwrap(),
        (Some("41".to_owned()), Some("lang=en&prompt=bye".to_owned()))
    );

    let body = read_to_end(fetch(relay, "/relay").await.into_body()).await;
    assert_eq!(body, "id: 1\ndata: next\n\n");
    assert_eq!(
        seen.recv().await.unwrap(),
        (None, Some("prompt=hi&lang=en".to_owned()))
    );
}

#[tokio::test]
async fn a_client_that_leaves_closes_the_upstream_connection() {
    // The upstream streams until its sends fail, then reports.
    let (report, report_rx) = oneshot::channel::<(usize, SseError)>();
    let report = Arc::new(Mutex::new(Some(report)));
    let handler = move |mut sse: SseWriter| {
        let report = report.clone();
        async move {
            // Its own task, so it outlives the connection and can report.
            tokio::spawn(async move {
                let mut sent = 0;
                let err = loop {
                    match sse
                        .send(Event::new().event("token").id(sent).data("x"))
                        .await
                    {
                        Ok(()) => sent += 1,
                        Err(err) => break err,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                };
                assert!(sse.is_closed());
                let _ = report.lock().unwrap().take().unwrap().send((sent, err));
            });
        }
    };
    let upstream = serve(
        Router::new()
            .route("/", get(handler))
            .layer(SseLayer::new()),
    )
    .await;
    let relay = serve_relay(upstream, "/").await;

    let mut body = fetch(relay, "/relay").await.into_body();
    let first = read_until(&mut body, "id: 1\ndata: x\n\n").await;
    assert!(
        first.starts_with("event: token\nid: 0\ndata: x\n\n"),
        "{first:?}"
    );
    drop(body); // the client leaves, closing its connection

    let (sent, err) = tokio::time::timeout(Duration::from_secs(10), report_rx)
        .await
        .expect("the upstream still streams 10 s after the client left")
        .unwrap();
    assert!(matches!(err, SseError::ConnectionClosed), "{err:?}");
    assert!(sent >= 2, "sent {sent}");
}

#[tokio::test]
async fn upstream_failures_before_the_stream_are_a_502() {
    let app = Router::new()
        .route(
            "/error",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/html",
            get(|| async { axum::response::Html("<p>not a stream</p>") }),
        )
        .route("/gone", get(|| async { StatusCode::NO_CONTENT }));
    let upstream = serve(app).await;

    for (path, status, message) in [
        (
            "/error",
            StatusCode::BAD_GATEWAY,
            format!("the upstream http://{upstream}/error answered 500 Internal Server Error\n"),
        ),
        (
            "/html",
            StatusCode::BAD_GATEWAY,
            format!(
                "the upstream http://{upstream}/html answered with content type \
                 Some(\"text/html; charset=utf-8\"), not text/event-stream\n"
            ),
        ),
        ("/gone", StatusCode::NO_CONTENT, String::new()),
    ] {
        let relay = serve_relay(upstream, path).await;
        let response = fetch(relay, "/relay").await;
        assert_eq!(response.status(), status, "{path}");
        if status == StatusCode::BAD_GATEWAY {
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
        }
        assert_eq!(read_to_end(response.into_body()).await, message, "{path}");
    }

    // Nobody listens on a port that was just released.
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = unused.local_addr().unwrap();
    drop(unused);
    let relay = serve_relay(nobody, "/").await;
    let response = fetch(relay, "/relay").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = read_to_end(response.into_body()).await;
    assert!(
        text.starts_with(&format!("cannot reach the upstream http://{nobody}/: ")),
        "{text:?}"
    );
}
