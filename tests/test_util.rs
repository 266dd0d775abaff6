//! The test helpers against a small app, in process.
#![cfg(feature = "test-util")]

use std::{convert::Infallible, time::Duration};

use axum::{
    body::Body,
    extract::Query,
    http::{Request, StatusCode},
    response::{sse, IntoResponse},
    routing::get,
    Router,
};
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tower::ServiceExt;

use axum_sse::{
    decode::DecodedEvent,
    test_util::{sse_events, SseEvents},
    Event, SseError, SseLayer, SseWriter,
};

#[derive(Deserialize)]
struct Prompt {
    prompt: String,
}

/// One `token` event per word of the prompt, then `done`.
async fn chat(Query(q): Query<Prompt>, mut sse: SseWriter) -> Result<(), SseError> {
    let words: Vec<&str> = q.prompt.split_whitespace().collect();
    let first = sse
        .last_event_id()
        .and_then(|id| id.parse::<usize>().ok())
        .unwrap_or(0);
    for (i, word) in words.iter().enumerate().skip(first) {
        tokio::time::sleep(Duration::from_millis(40)).await;
        sse.send(Event::new().event("token").id(i + 1).data(*word))
            .await?;
    }
    sse.send(Event::new().event("done").id(words.len() + 1).data("{}"))
        .await
}

fn app() -> Router {
    Router::new()
        .route("/chat", get(chat))
        .route(
            "/private",
            get(|| async { (StatusCode::UNAUTHORIZED, "no token") }),
        )
        .route(
            "/once",
            get(|mut sse: SseWriter| async move {
                sse.send(Event::new().data("once")).await?;
                sse.closed().await;
                Ok::<_, SseError>(())
            }),
        )
        .route(
            "/silent",
            get(|mut sse: SseWriter| async move {
                sse.start().unwrap();
                sse.closed().await;
            }),
        )
        .layer(
            SseLayer::builder()
                .retry(Duration::from_millis(1500))
                .build(),
        )
}

fn token(id: usize, word: &str) -> DecodedEvent {
    DecodedEvent::new("token", word, id.to_string())
}

/// The first event of a stream: the layer's `retry` rides in its block.
fn first(mut event: DecodedEvent) -> DecodedEvent {
    event.retry = Some(Duration::from_millis(1500));
    event
}

#[tokio::test(start_paused = true)]
async fn take_collects_the_first_events() {
    let events: Vec<_> = sse_events(app(), "/chat?prompt=hello+big+world")
        .take(2)
        .collect()
        .await;
    assert_eq!(events, [first(token(1, "hello")), token(2, "big")]);
}

#[tokio::test(start_paused = true)]
async fn the_stream_ends_with_the_body() {
    let mut events = sse_events(app(), "/chat?prompt=hi%20there");
    assert_eq!(events.retry(), None, "nothing read yet");
    let all: Vec<_> = events.by_ref().collect().await;
    assert_eq!(
        all,
        [
            first(token(1, "hi")),
            token(2, "there"),
            DecodedEvent::new("done", "{}", "3")
        ]
    );
    assert_eq!(events.retry(), Some(Duration::from_millis(1500)));
    assert_eq!(events.last_event_id(), "3");
    assert!(futures_util::stream::FusedStream::is_terminated(&events));
    assert_eq!(events.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn a_whole_request_is_sent_as_it_is() {
    let request = Request::get("/chat?prompt=a+b+c")
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let events: Vec<_> = sse_events(app(), request).collect().await;
    assert_eq!(
        events,
        [first(token(3, "c")), DecodedEvent::new("done", "{}", "4")]
    );
}

#[tokio::test]
async fn dropping_the_stream_lets_the_handler_see_the_client_leave() {
    let (left_tx, mut left) = mpsc::unbounded_channel();
    let handler = move |mut sse: SseWriter| {
        let left_tx = left_tx.clone();
        async move {
            // Its own task, so it outlives the body and can report.
            tokio::spawn(async move {
                let mut n = 0;
                while sse.send(Event::new().data(n.to_string())).await.is_ok() {
                    n += 1;
                }
                left_tx.send(n).unwrap();
            });
        }
    };
    let app = Router::new()
        .route("/", get(handler))
        .layer(SseLayer::new());
    let events: Vec<_> = sse_events(app, String::from("/")).take(3).collect().await;
    let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["0", "1", "2"]);
    let sent = tokio::time::timeout(Duration::from_secs(10), left.recv())
        .await
        .expect("the handler did not see the client leave")
        .unwrap();
    assert!(sent >= 3, "{sent}");
}

#[tokio::test]
async fn works_on_any_event_stream_response() {
    // axum's own `Sse`, no layer: through a service and from a response.
    let app = Router::new().route(
        "/",
        get(|| async {
            sse::Sse::new(stream::iter([
                Ok::<_, Infallible>(sse::Event::default().event("a").data("1")),
                Ok(sse::Event::default().data("2")),
            ]))
        }),
    );
    let expected = [
        DecodedEvent::new("a", "1", ""),
        DecodedEvent::new("message", "2", ""),
    ];
    let events: Vec<_> = sse_events(app.clone(), "/").collect().await;
    assert_eq!(events, expected);

    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events: Vec<_> = SseEvents::from_response(response).collect().await;
    assert_eq!(events, expected);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_counts_from_the_last_event() {
    // 40 ms between tokens, under a 50 ms timeout: 3 events take 120 ms.
    let events: Vec<_> = sse_events(app(), "/chat?prompt=a+b")
        .timeout(Duration::from_millis(50))
        .collect()
        .await;
    assert_eq!(events.len(), 3);
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "GET /silent: no event within 1s (0 events received)")]
async fn panics_when_no_event_comes_in_time() {
    let _ = sse_events(app(), "/silent")
        .timeout(Duration::from_secs(1))
        .next()
        .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "GET /once: no event within 30ms (1 events received)")]
async fn the_timeout_applies_to_each_event() {
    let _: Vec<_> = sse_events(app(), "/once")
        .timeout(Duration::from_millis(30))
        .collect()
        .await;
}

#[tokio::test]
#[should_panic(
    expected = "GET /private: expected `200 OK` with `content-type: text/event-stream`, \
                got `401 Unauthorized` with content type Some(\"text/plain; charset=utf-8\") \
                and body \"no token\""
)]
async fn panics_on_an_answer_that_is_not_a_stream() {
    let _ = sse_events(app(), "/private").next().await;
}

#[tokio::test]
#[should_panic(expected = "\"not a uri\" is not a valid URI")]
async fn panics_on_an_invalid_uri() {
    let _ = sse_events(app(), "not a uri");
}

#[tokio::test]
async fn the_answer_of_a_request_is_checked() {
    let response = (StatusCode::OK, "plain").into_response();
    let result = tokio::spawn(async move {
        let _ = SseEvents::from_response(response).next().await;
    })
    .await;
    let panic = result.unwrap_err().into_panic();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with(
            "the response: expected `200 OK` with `content-type: text/event-stream`, got `200 OK`"
        ),
        "{message}"
    );
}
