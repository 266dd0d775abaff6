//! A stream-style source that fails: what it yielded before the error still
//! reaches the client, then the connection is aborted so the client can
//! tell the stream broke.

mod common;

use std::{io, time::Duration};

use axum::{routing::get, Router};
use bytes::Bytes;
use common::serve_and_get;
use futures_util::stream;
use http_body_util::BodyExt;

use axum_sse::{Event, SseBody, SseLayer};

fn failing(events: Vec<&'static str>) -> Router {
    Router::new()
        .route(
            "/",
            get(move || {
                let items = events
                    .clone()
                    .into_iter()
                    .map(|data| Ok(Event::new().data(data)))
                    .chain([Err(io::Error::other("boom"))]);
                async move { SseBody::new(stream::iter(items)) }
            }),
        )
        .layer(SseLayer::new())
}

/// Everything the client received before the body ended, and whether it
/// ended with an error.
async fn read_all(app: Router) -> (String, bool) {
    let response = tokio::time::timeout(Duration::from_secs(10), serve_and_get(app, "/"))
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                received.extend_from_slice(&frame.into_data().unwrap_or_else(|_| Bytes::new()))
            }
            Some(Err(_)) => return (String::from_utf8(received).unwrap(), true),
            None => return (String::from_utf8(received).unwrap(), false),
        }
    }
}

#[tokio::test]
async fn events_ready_with_an_error_are_delivered_before_the_abort() {
    for events in [vec!["one"], vec!["one", "two", "three"]] {
        let expected: String = events
            .iter()
            .map(|data| format!("data: {data}\n\n"))
            .collect();
        let (received, failed) = read_all(failing(events)).await;
        assert_eq!(received, expected);
        assert!(failed, "the client must see the stream broke");
    }
}

#[tokio::test]
async fn axums_own_sse_under_the_layer_delivers_its_events_before_the_abort() {
    use axum::response::sse::{Event as AxumEvent, Sse};
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                Sse::new(stream::iter([
                    Ok(AxumEvent::default().data("one")),
                    Err(io::Error::other("boom")),
                ]))
            }),
        )
        .layer(SseLayer::new());
    let (received, failed) = read_all(app).await;
    assert_eq!(received, "data: one\n\n");
    assert!(failed, "the client must see the stream broke");
}
