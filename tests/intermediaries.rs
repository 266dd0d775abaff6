//! What proxies and middleware in front of a stream see: the headers that
//! keep them from buffering it, and tower-http's `CompressionLayer`, which
//! must leave event streams alone so every event arrives when it is sent.

mod common;

use std::time::Duration;

use axum::{routing::get, Router};
use bytes::Bytes;
use common::{read_until, request, serve};
use http::{header, Request};
use http_body_util::{BodyExt, Empty};
use tokio::sync::{mpsc, Mutex};
use tower_http::compression::{
    predicate::{NotForContentType, SizeAbove},
    CompressionLayer, Predicate,
};

use axum_sse::{Event, SseLayer, SseWriter};

/// A handler that sends event N only once the test says so: an event held
/// back by a buffer in between would never arrive.
fn app(go: mpsc::Receiver<()>) -> Router {
    let go = std::sync::Arc::new(Mutex::new(go));
    Router::new()
        .route(
            "/events",
            get(move |mut sse: SseWriter| async move {
                let mut go = go.lock().await;
                for i in 1..=3 {
                    go.recv().await.unwrap();
                    sse.send(Event::new().id(i).data(format!("event {i}")))
                        .await
                        .unwrap();
                }
            }),
        )
        .route("/text", get(|| async { "compress me ".repeat(100) }))
        .layer(SseLayer::new())
}

async fn get_gzip(addr: std::net::SocketAddr, path: &str) -> http::Response<hyper::body::Incoming> {
    let request_ = Request::get(path)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Empty::<Bytes>::new())
        .unwrap();
    request(addr, request_).await
}

async fn events_arrive_one_by_one(app: Router, go: mpsc::Sender<()>) {
    let addr = serve(app).await;

    // The layer is active: other responses are compressed.
    let text = get_gzip(addr, "/text").await;
    assert_eq!(text.headers()[header::CONTENT_ENCODING], "gzip");
    let compressed = text.into_body().collect().await.unwrap().to_bytes();
    assert!(compressed.starts_with(&[0x1f, 0x8b]), "gzip magic");

    go.send(()).await.unwrap();
    let response = get_gzip(addr, "/events").await;
    assert!(!response.headers().contains_key(header::CONTENT_ENCODING));
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "no-cache, no-transform"
    );
    let mut body = response.into_body();
    for i in 1..=3 {
        if i > 1 {
            go.send(()).await.unwrap();
        }
        let event = tokio::time::timeout(Duration::from_secs(10), read_until(&mut body, "\n\n"))
            .await
            .unwrap_or_else(|_| panic!("event {i} was held back"));
        assert_eq!(event, format!("id: {i}\ndata: event {i}\n\n"));
    }
}

#[tokio::test]
async fn compression_layer_with_its_default_predicate_leaves_streams_alone() {
    let (go, wait) = mpsc::channel(1);
    let app = app(wait).layer(CompressionLayer::new());
    events_arrive_one_by_one(app, go).await;
}

#[tokio::test]
async fn a_custom_compression_predicate_keeps_excluding_event_streams() {
    // The predicate the crate docs show for a custom size threshold.
    let predicate = SizeAbove::new(256).and(NotForContentType::SSE);
    let (go, wait) = mpsc::channel(1);
    let app = app(wait).layer(CompressionLayer::new().compress_when(predicate));
    events_arrive_one_by_one(app, go).await;
}

#[tokio::test]
async fn axums_own_sse_gains_no_transform_too() {
    use axum::response::sse::{Event as AxumEvent, Sse};
    use futures_util::stream;

    let app = Router::new()
        .route(
            "/",
            get(|| async {
                Sse::new(stream::iter([Ok::<_, std::convert::Infallible>(
                    AxumEvent::default().data("hi"),
                )]))
            }),
        )
        .layer(SseLayer::new());
    let response = common::serve_and_get(app, "/").await;
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "no-cache, no-transform"
    );
}
