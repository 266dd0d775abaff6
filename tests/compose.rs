//! Layers compose wherever they are mounted: every per-stream layer, at
//! every mount position, with every handler style, over a real
//! `axum::serve` on loopback and a real HTTP client, byte for byte under a
//! paused clock. Then two layers of one kind (the one closest to the
//! handler wins) and the handler's own per-stream settings (they win over
//! all).

mod common;

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use axum::{
    extract::Request,
    response::{sse, IntoResponse},
    routing::{get, MethodRouter, Route},
    Router,
};
use bytes::Bytes;
use common::{eventually, fetch, read_until, request};
use futures_util::{stream, StreamExt};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tokio::{net::TcpListener, time::Instant};
use tower::{Layer, Service};

use axum_sse::{
    Event, HeartbeatLayer, LastEventId, LastEventIdLayer, RetryLayer, ShutdownLayer, SseBody,
    SseError, SseLayer, SseShutdown, SseStats, SseWriter, StreamLimitLayer, TimeLimitLayer,
};

// ------------------------------------------------------------------ wire

/// The retry advice the crate adds for `ms` milliseconds.
fn retry_line(ms: u64) -> String {
    format!("retry: {ms}\n")
}

/// The default heartbeat.
const HEARTBEAT: &str = ":\n";

/// One event with `data`, as sent.
fn data(text: &str) -> String {
    format!("data: {text}\n\n")
}

/// Marks the end of the body in a list of timed frames.
const END: &str = "<end>";

// ------------------------------------------------------------ the matrix

/// Where the layer under test is mounted, relative to the `SseLayer`.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// `Router::layer`, added after the `SseLayer`: around it.
    RouterOutside,
    /// `Router::layer`, added before the `SseLayer`: inside it.
    RouterInside,
    /// `Router::route_layer`, inside the `SseLayer`.
    RouteLayer,
    /// `get(handler).layer(..)` on the one route.
    PerRoute,
    /// On a nested router, itself inside the `SseLayer`.
    Nested,
}

const POSITIONS: [Position; 5] = [
    Position::RouterOutside,
    Position::RouterInside,
    Position::RouteLayer,
    Position::PerRoute,
    Position::Nested,
];

/// How the handler answers.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// Sends with its `SseWriter`, inline.
    Writer,
    /// Moves its `SseWriter` into a task and returns at once.
    SpawnedWriter,
    /// Returns an `SseBody` over a stream.
    Body,
    /// Returns axum's own `Sse` over a stream.
    AxumSse,
}

const STYLES: [Style; 4] = [
    Style::Writer,
    Style::SpawnedWriter,
    Style::Body,
    Style::AxumSse,
];

/// What a handler sends: `(seconds to wait first, data)`, then it ends or,
/// if `stay_open`, keeps the stream open.
#[derive(Debug, Clone)]
struct Script {
    events: Vec<(u64, &'static str)>,
    stay_open: bool,
}

impl Script {
    fn new(events: &[(u64, &'static str)], stay_open: bool) -> Self {
        Self {
            events: events.to_vec(),
            stay_open,
        }
    }
}

/// The event for `text`: `$lei` stands for the Last-Event-ID the handler
/// sees (its writer and the extractor must agree on it).
fn event(text: &str, seen: &Option<String>) -> Event {
    let text = text.replace("$lei", seen.as_deref().unwrap_or("none"));
    Event::new().data(text)
}

async fn run_writer(mut sse: SseWriter, script: Script, seen: Option<String>) {
    for (wait, text) in script.events {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        if sse.send(event(text, &seen)).await.is_err() {
            return;
        }
    }
    if script.stay_open {
        sse.closed().await;
    }
}

/// The route's handler for `style`, running `script`.
fn handler(style: Style, script: Script) -> MethodRouter {
    match style {
        Style::Writer | Style::SpawnedWriter => {
            get(move |sse: SseWriter, last: Option<LastEventId>| {
                let script = script.clone();
                async move {
                    let seen = last.map(|LastEventId(id)| id);
                    let seen = match sse.last_event_id() == seen.as_deref() {
                        true => seen,
                        false => Some(format!("writer {:?}", sse.last_event_id())),
                    };
                    match style {
                        Style::Writer => run_writer(sse, script, seen).await,
                        _ => {
                            tokio::spawn(run_writer(sse, script, seen));
                        }
                    }
                }
            })
        }
        Style::Body | Style::AxumSse => get(move |last: Option<LastEventId>| {
            let script = script.clone();
            async move {
                let seen = last.map(|LastEventId(id)| id);
                let texts = stream::iter(script.events).then(move |(wait, text)| {
                    let seen = seen.clone();
                    async move {
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                        text.replace("$lei", seen.as_deref().unwrap_or("none"))
                    }
                });
                let rest = match script.stay_open {
                    true => stream::pending().boxed(),
                    false => stream::empty().boxed(),
                };
                let texts = texts.chain(rest);
                match style {
                    Style::Body => {
                        SseBody::new(texts.map(|text| Event::new().data(text))).into_response()
                    }
                    _ => sse::Sse::new(
                        texts.map(|text| Ok::<_, Infallible>(sse::Event::default().data(text))),
                    )
                    .into_response(),
                }
            }
        }),
    }
}

/// The app: `layer` at `position`, `sse` around the route `/s`.
fn mount<L>(layer: L, position: Position, sse: SseLayer, route: MethodRouter) -> Router
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    match position {
        Position::RouterOutside => Router::new().route("/s", route).layer(sse).layer(layer),
        Position::RouterInside => Router::new().route("/s", route).layer(layer).layer(sse),
        Position::RouteLayer => Router::new()
            .route("/s", route)
            .route_layer(layer)
            .layer(sse),
        Position::PerRoute => Router::new().route("/s", route.layer(layer)).layer(sse),
        Position::Nested => Router::new()
            .nest("/n", Router::new().route("/s", route).layer(layer))
            .layer(sse),
    }
}

fn path(position: Position) -> &'static str {
    match position {
        Position::Nested => "/n/s",
        _ => "/s",
    }
}

/// Serves `app` on `127.0.0.1:0`, on this test's (paused) runtime.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Each frame with the (virtual) second it arrived at, frames of one second
/// joined, and [`END`] at the second the body ended; panics after `limit`.
async fn timed_frames(body: &mut Incoming, limit: Duration) -> Vec<(u64, String)> {
    let start = Instant::now();
    let mut frames: Vec<(u64, String)> = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(start + limit, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no end within {limit:?}; got {frames:?}"));
        let at = start.elapsed().as_secs();
        let Some(frame) = frame else {
            frames.push((at, END.to_owned()));
            return frames;
        };
        let data = frame.expect("body error").into_data().unwrap();
        let text = String::from_utf8(data.to_vec()).unwrap();
        match frames.last_mut() {
            Some((last, joined)) if *last == at => joined.push_str(&text),
            _ => frames.push((at, text)),
        }
    }
}

fn timed(frames: &[(u64, &str)]) -> Vec<(u64, String)> {
    frames.iter().map(|(t, s)| (*t, (*s).to_owned())).collect()
}

/// Runs `script` under `layer` at every position, with every handler
/// style, and checks the timed frames of the stream.
async fn each_mount<L>(name: &str, layer: impl Fn() -> L, script: Script, expected: &[(u64, &str)])
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    for position in POSITIONS {
        for style in STYLES {
            let route = handler(style, script.clone());
            let addr = serve(mount(layer(), position, SseLayer::new(), route)).await;
            let response = fetch(addr, path(position)).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{name} {position:?} {style:?}"
            );
            let frames = timed_frames(&mut response.into_body(), Duration::from_secs(600)).await;
            assert_eq!(frames, timed(expected), "{name} at {position:?}, {style:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retry_at_every_position() {
    let retry = retry_line(500) + &data("a");
    each_mount(
        "retry",
        || RetryLayer::new(Duration::from_millis(500)),
        Script::new(&[(0, "a")], false),
        &[(0, &retry), (0, END)],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn heartbeat_at_every_position() {
    each_mount(
        "heartbeat",
        || HeartbeatLayer::new(Duration::from_secs(15)),
        Script::new(&[(0, "a"), (40, "b")], false),
        &[
            (0, &data("a")),
            (15, HEARTBEAT),
            (30, HEARTBEAT),
            (40, &data("b")),
            (40, END),
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_at_every_position() {
    each_mount(
        "idle timeout",
        || TimeLimitLayer::new().idle_timeout(Duration::from_secs(20)),
        Script::new(&[(0, "a"), (10, "b"), (100, "c")], true),
        &[(0, &data("a")), (10, &data("b")), (30, END)],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn max_duration_at_every_position() {
    each_mount(
        "max duration",
        || TimeLimitLayer::new().max_duration(Duration::from_secs(60)),
        Script::new(&[(0, "a"), (25, "b"), (25, "c"), (25, "d")], true),
        &[
            (0, &data("a")),
            (25, &data("b")),
            (50, &data("c")),
            (60, END),
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn last_event_id_at_every_position() {
    let rules = || {
        LastEventIdLayer::new()
            .query_param("lastEventId")
            .max_len(8)
            .reject_invalid()
    };
    let script = Script::new(&[(0, "id $lei")], false);
    for position in POSITIONS {
        for style in STYLES {
            let route = handler(style, script.clone());
            let addr = serve(mount(rules(), position, SseLayer::new(), route)).await;
            let what = format!("{position:?}, {style:?}");
            // The query parameter: only the layer under test reads it.
            let query = format!("{}?lastEventId=order+17", path(position));
            let response = fetch(addr, &query).await;
            assert_eq!(response.status(), StatusCode::OK, "{what}");
            let frames = timed_frames(&mut response.into_body(), Duration::from_secs(10)).await;
            assert_eq!(
                frames,
                timed(&[(0, &data("id order 17")), (0, END)]),
                "{what}"
            );
            // Its length limit and `reject_invalid`: a `400` before the handler.
            let long = http::Request::get(path(position))
                .header("last-event-id", "123456789")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = request(addr, long).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn stream_limit_at_every_position() {
    // The permit lives as long as the stream, not as the handler: the
    // spawned writer's handler returns at once.
    let script = Script::new(&[(0, "a")], true);
    for position in POSITIONS {
        for style in STYLES {
            let what = format!("{position:?}, {style:?}");
            let route = handler(style, script.clone());
            let limit = StreamLimitLayer::new().max_streams(1);
            let addr = serve(mount(limit, position, SseLayer::new(), route)).await;
            let mut first = fetch(addr, path(position)).await.into_body();
            assert_eq!(read_until(&mut first, "\n\n").await, data("a"), "{what}");
            // Long after the handler returned, the stream still counts.
            tokio::time::sleep(Duration::from_secs(60)).await;
            let refused = fetch(addr, path(position)).await;
            assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
            drop(first);
            let mut attempts = 0;
            let mut next = loop {
                let response = fetch(addr, path(position)).await;
                if response.status() == StatusCode::OK {
                    break response.into_body();
                }
                attempts += 1;
                assert!(attempts < 100, "{what}: the permit was never released");
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            assert_eq!(read_until(&mut next, "\n\n").await, data("a"), "{what}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_at_every_position() {
    let script = Script::new(&[(0, "a")], true);
    for position in POSITIONS {
        for style in STYLES {
            let what = format!("{position:?}, {style:?}");
            let shutdown = SseShutdown::new();
            let layer = ShutdownLayer::new(shutdown.clone()).farewell(Event::new().data("bye"));
            let route = handler(style, script.clone());
            let addr = serve(mount(layer, position, SseLayer::new(), route)).await;
            let mut body = fetch(addr, path(position)).await.into_body();
            assert_eq!(read_until(&mut body, "\n\n").await, data("a"), "{what}");
            tokio::time::sleep(Duration::from_secs(10)).await;
            shutdown.trigger();
            let rest = timed_frames(&mut body, Duration::from_secs(10)).await;
            assert_eq!(rest, timed(&[(0, &data("bye")), (0, END)]), "{what}");
            let refused = fetch(addr, path(position)).await;
            assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
        }
    }
}

// ------------------------------------------------- two layers of one kind

/// The stream of `route` under `app`, as timed frames.
async fn stream_of(app: Router, path: &str) -> Vec<(u64, String)> {
    let addr = serve(app).await;
    let response = fetch(addr, path).await;
    assert_eq!(response.status(), StatusCode::OK);
    timed_frames(&mut response.into_body(), Duration::from_secs(600)).await
}

#[tokio::test(start_paused = true)]
async fn the_retry_closest_to_the_handler_wins() {
    for style in STYLES {
        let route = handler(style, Script::new(&[(0, "a")], false));
        // Outside the `SseLayer`, the `SseLayer`'s own, and on the route.
        let sse = SseLayer::builder().retry(Duration::from_secs(2)).build();
        let app = Router::new()
            .route("/s", route.layer(RetryLayer::new(Duration::from_secs(3))))
            .layer(sse)
            .layer(RetryLayer::new(Duration::from_secs(1)));
        let expected = retry_line(3000) + &data("a");
        assert_eq!(
            stream_of(app, "/s").await,
            timed(&[(0, &expected), (0, END)]),
            "{style:?}"
        );
        // The `SseLayer`'s own against one outside it.
        let route = handler(style, Script::new(&[(0, "a")], false));
        let sse = SseLayer::builder().retry(Duration::from_secs(2)).build();
        let app = Router::new()
            .route("/s", route)
            .layer(sse)
            .layer(RetryLayer::new(Duration::from_secs(1)));
        let expected = retry_line(2000) + &data("a");
        assert_eq!(
            stream_of(app, "/s").await,
            timed(&[(0, &expected), (0, END)]),
            "{style:?}"
        );
    }
    // Without an `SseLayer`: the inner of two.
    let app = Router::new()
        .route(
            "/s",
            get(|| async { SseBody::new(stream::iter([Event::new().data("a")])) })
                .layer(RetryLayer::new(Duration::from_secs(3))),
        )
        .layer(RetryLayer::new(Duration::from_secs(1)));
    let expected = retry_line(3000) + &data("a");
    assert_eq!(
        stream_of(app, "/s").await,
        timed(&[(0, &expected), (0, END)])
    );
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_closest_to_the_handler_wins() {
    let script = Script::new(&[(0, "a"), (60, "b")], false);
    let expected = timed(&[
        (0, &data("a")),
        (25, HEARTBEAT),
        (50, HEARTBEAT),
        (60, &data("b")),
        (60, END),
    ]);
    for style in STYLES {
        let route = handler(style, script.clone());
        let sse = SseLayer::builder()
            .heartbeat(Duration::from_secs(10))
            .build();
        let app = Router::new()
            .route(
                "/s",
                route.layer(HeartbeatLayer::new(Duration::from_secs(25))),
            )
            .layer(sse)
            .layer(HeartbeatLayer::new(Duration::from_secs(7)));
        assert_eq!(stream_of(app, "/s").await, expected, "{style:?}");
    }
    // Without an `SseLayer`: one timer, the inner one's.
    let body = || async {
        let events = stream::iter([(0, "a"), (60, "b")]).then(|(wait, text)| async move {
            tokio::time::sleep(Duration::from_secs(wait)).await;
            Event::new().data(text)
        });
        SseBody::new(events)
    };
    let app = Router::new()
        .route(
            "/s",
            get(body).layer(HeartbeatLayer::new(Duration::from_secs(25))),
        )
        .layer(HeartbeatLayer::new(Duration::from_secs(7)));
    assert_eq!(stream_of(app, "/s").await, expected);
}

#[tokio::test(start_paused = true)]
async fn the_time_limit_closest_to_the_handler_wins() {
    let script = Script::new(&[(0, "a"), (20, "b"), (100, "c")], true);
    for style in STYLES {
        let route = handler(style, script.clone());
        let sse = SseLayer::builder()
            .idle_timeout(Duration::from_secs(10))
            .build();
        let stats = sse.stats();
        let app = Router::new()
            .route(
                "/s",
                route.layer(TimeLimitLayer::new().idle_timeout(Duration::from_secs(30))),
            )
            .layer(sse);
        assert_eq!(
            stream_of(app, "/s").await,
            timed(&[(0, &data("a")), (20, &data("b")), (50, END)]),
            "{style:?}"
        );
        // Applied by the `SseLayer`, so its stats say why the stream ended.
        eventually(Duration::from_secs(5), "the stream closed", || {
            stats.open_streams() == 0
        })
        .await;
        assert_eq!(
            stats.snapshot().closed(axum_sse::CloseReason::Idle),
            1,
            "{style:?}"
        );
    }
}

/// Inside an `SseLayer`, route layers take their place in its order: the
/// heartbeat outside the time limits, so heartbeats are not activity.
#[tokio::test(start_paused = true)]
async fn route_layers_take_their_place_in_the_sse_layer_order() {
    for style in STYLES {
        let route = handler(style, Script::new(&[(0, "a")], true))
            .layer::<_, Infallible>(TimeLimitLayer::new().idle_timeout(Duration::from_secs(35)))
            .layer::<_, Infallible>(HeartbeatLayer::new(Duration::from_secs(10)))
            .layer::<_, Infallible>(RetryLayer::new(Duration::from_secs(1)));
        let app = Router::new().route("/s", route).layer(SseLayer::new());
        let first = retry_line(1000) + &data("a");
        assert_eq!(
            stream_of(app, "/s").await,
            timed(&[
                (0, &first),
                (10, HEARTBEAT),
                (20, HEARTBEAT),
                (30, HEARTBEAT),
                (35, END),
            ]),
            "{style:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn two_stream_limits_both_count() {
    // A budget for all routes, and one for this route: each refuses.
    let stats = SseStats::new();
    let sse = SseLayer::builder()
        .max_streams(2)
        .stats(stats.clone())
        .build();
    let script = Script::new(&[(0, "a")], true);
    let app = Router::new()
        .route(
            "/one",
            handler(Style::SpawnedWriter, script.clone())
                .layer(StreamLimitLayer::new().max_streams(1)),
        )
        .route("/any", handler(Style::SpawnedWriter, script))
        .layer(sse);
    let addr = serve(app).await;
    let mut one = fetch(addr, "/one").await.into_body();
    assert_eq!(read_until(&mut one, "\n\n").await, data("a"));
    assert_eq!(
        fetch(addr, "/one").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let mut any = fetch(addr, "/any").await.into_body();
    assert_eq!(read_until(&mut any, "\n\n").await, data("a"));
    assert_eq!(
        fetch(addr, "/any").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(stats.snapshot().rejected_by_limit(), 1);
}

// ------------------------------------------------ the handler's own settings

#[tokio::test(start_paused = true)]
async fn the_handlers_own_settings_win_over_every_layer() {
    let handler = get(|mut sse: SseWriter| async move {
        sse.set_retry(Duration::from_secs(7)).unwrap();
        sse.set_heartbeat(Duration::from_secs(5)).unwrap();
        sse.send(Event::new().data("a")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(12)).await;
        let _ = sse.send(Event::new().data("b")).await;
    });
    let sse = SseLayer::builder()
        .retry(Duration::from_secs(2))
        .heartbeat(Duration::from_secs(3))
        .build();
    let app = Router::new()
        .route(
            "/s",
            handler
                .layer::<_, Infallible>(RetryLayer::new(Duration::from_secs(3)))
                .layer::<_, Infallible>(HeartbeatLayer::new(Duration::from_secs(4))),
        )
        .layer(sse)
        .layer(RetryLayer::new(Duration::from_secs(1)))
        .layer(HeartbeatLayer::new(Duration::from_secs(1)));
    let first = retry_line(7000) + &data("a");
    assert_eq!(
        stream_of(app, "/s").await,
        timed(&[
            (0, &first),
            (5, HEARTBEAT),
            (10, HEARTBEAT),
            (12, &data("b")),
            (12, END),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn the_handlers_settings_alone_need_no_layer_of_their_kind() {
    let handler = get(|mut sse: SseWriter| async move {
        sse.set_retry(Duration::from_millis(1500)).unwrap();
        sse.send(Event::new().data("a")).await.unwrap();
    });
    let app = Router::new().route("/s", handler).layer(SseLayer::new());
    let first = retry_line(1500) + &data("a");
    assert_eq!(stream_of(app, "/s").await, timed(&[(0, &first), (0, END)]));
}

#[tokio::test(start_paused = true)]
async fn settings_after_the_start_are_refused() {
    let (outcome, outcome_rx) = common::reply::<(SseError, SseError)>();
    let handler = get(move |mut sse: SseWriter| {
        let outcome = outcome.clone();
        async move {
            sse.send(Event::new().data("a")).await.unwrap();
            let retry = sse.set_retry(Duration::from_secs(7)).unwrap_err();
            let heartbeat = sse.set_heartbeat(Duration::from_secs(1)).unwrap_err();
            common::answer(&outcome, (retry, heartbeat));
            let _ = sse.send(Event::new().data("b")).await;
        }
    });
    let app = Router::new()
        .route("/s", handler)
        .layer(SseLayer::builder().retry(Duration::from_secs(2)).build());
    let first = retry_line(2000) + &data("a");
    assert_eq!(
        stream_of(app, "/s").await,
        timed(&[(0, &(first + &data("b"))), (0, END)])
    );
    let (retry, heartbeat) = outcome_rx.await.unwrap();
    assert!(matches!(retry, SseError::StreamStarted), "{retry:?}");
    assert!(
        matches!(heartbeat, SseError::StreamStarted),
        "{heartbeat:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn settings_after_another_answer_are_refused() {
    let (outcome, outcome_rx) = common::reply::<SseError>();
    let handler = get(move |mut sse: SseWriter| {
        let outcome = outcome.clone();
        async move {
            tokio::spawn(async move {
                // Waits for the handler's own answer to go out.
                while !sse.is_closed() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                common::answer(&outcome, sse.set_retry(Duration::from_secs(1)).unwrap_err());
            });
            StatusCode::UNAUTHORIZED
        }
    });
    let app = Router::new().route("/s", handler).layer(SseLayer::new());
    let addr = serve(app).await;
    assert_eq!(fetch(addr, "/s").await.status(), StatusCode::UNAUTHORIZED);
    let err = outcome_rx.await.unwrap();
    assert!(matches!(err, SseError::ResponseAlreadySent), "{err:?}");
}
