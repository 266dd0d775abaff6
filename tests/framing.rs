//! The framing rule: nothing the crate adds by itself (the retry advice,
//! heartbeats) forms a block that a loose parser dispatches as an event
//! with empty data. Byte-exact at every position (stream start, between
//! events, after an event with an id, before the end), and a property test
//! that reads our output with the loosest rule in common use.

mod common;

use std::{convert::Infallible, time::Duration};

use axum::{body::Body, http::Request, response::sse, routing::get, Router};
use common::frames;
use futures_util::{stream, StreamExt};
use proptest::prelude::*;

use axum_sse::{
    decode::EventStream, Event, HeartbeatLayer, RetryLayer, SseBody, SseLayer, SseShutdown,
    SseWriter,
};

const INTERVAL: Duration = Duration::from_secs(15);

/// An event as a loose parser dispatches it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loose {
    event: Option<String>,
    /// `None`: the block had no `data` line.
    data: Option<String>,
}

/// The `openai` SDKs' parser (Python `SSEDecoder`, and the hand-written
/// parsers like it): a blank line dispatches when the block set `event`,
/// `data` or `retry`, or once any `id` was seen (it is never reset).
/// Comments are skipped.
fn loose_events(wire: &str) -> Vec<Loose> {
    let mut events = Vec::new();
    let (mut event, mut data, mut retry, mut id_seen) = (None, None::<Vec<String>>, false, false);
    let wire = wire.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<&str> = wire.split('\n').collect();
    // The text after the last line break: a line not yet ended.
    lines.pop();
    for line in lines {
        if line.is_empty() {
            if event.is_some() || data.is_some() || retry || id_seen {
                events.push(Loose {
                    event: event.take(),
                    data: data.take().map(|lines| lines.join("\n")),
                });
            }
            retry = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match name {
            "event" => event = Some(value),
            "data" => data.get_or_insert_with(Vec::new).push(value),
            "id" => id_seen = true,
            "retry" => retry = true,
            _ => {}
        }
    }
    // A block still open at the end is not dispatched.
    events
}

/// What the WHATWG algorithm dispatches, as `(type, data)`.
async fn strict_events(wire: &str) -> Vec<(String, String)> {
    let chunks = stream::iter([Ok::<_, Infallible>(bytes::Bytes::from(wire.to_owned()))]);
    EventStream::new(chunks)
        .map(|event| {
            let event = event.unwrap();
            (event.event, event.data)
        })
        .collect()
        .await
}

/// Checks the rule on `wire`: a loose parser dispatches exactly what a
/// strict one does, and every event it dispatches has data.
async fn assert_read_alike(wire: &str) {
    let loose = loose_events(wire);
    assert!(
        loose.iter().all(|event| event.data.is_some()),
        "a loose parser dispatches an event without data from {wire:?}: {loose:?}"
    );
    let loose: Vec<_> = loose
        .into_iter()
        .map(|event| {
            let event_type = event.event.unwrap_or_else(|| "message".into());
            (event_type, event.data.unwrap())
        })
        .collect();
    assert_eq!(loose, strict_events(wire).await, "{wire:?}");
}

fn get_root() -> Request<Body> {
    Request::get("/").body(Body::empty()).unwrap()
}

fn at(frames: &[(u64, &str)]) -> Vec<(u64, String)> {
    frames.iter().map(|(t, s)| (*t, s.to_string())).collect()
}

fn wire(frames: &[(u64, String)]) -> String {
    frames.iter().map(|(_, frame)| frame.as_str()).collect()
}

/// A push handler: a heartbeat before the first event, after an event with
/// an id, between events, and before the end.
async fn quiet_writer(mut sse: SseWriter) {
    sse.start().unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    sse.send(Event::new().event("token").id(1).data("a"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    sse.send(Event::new().data("b")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
}

/// `quiet_writer` under an `SseLayer` with a heartbeat, the retry advice
/// and, if given, a shutdown with `farewell` triggered after `after` s.
async fn quiet_writer_frames(shutdown: Option<(Event, u64)>) -> Vec<(u64, String)> {
    let mut layer = SseLayer::builder()
        .heartbeat(INTERVAL)
        .retry(Duration::from_secs(3));
    if let Some((farewell, after)) = shutdown {
        let shutdown = SseShutdown::new();
        layer = layer.shutdown(shutdown.clone()).farewell(farewell);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(after)).await;
            shutdown.trigger();
        });
    }
    let app = Router::new()
        .route("/", get(quiet_writer))
        .layer(layer.build());
    frames(app, get_root(), Duration::from_secs(100)).await
}

#[tokio::test(start_paused = true)]
async fn every_position_of_a_writer_stream_under_the_full_layer() {
    let frames = quiet_writer_frames(None).await;
    assert_eq!(
        frames,
        at(&[
            (15, ":\n"),
            (20, "retry: 3000\nevent: token\nid: 1\ndata: a\n\n"),
            (35, ":\n"),
            (40, "data: b\n\n"),
            (55, ":\n"),
        ])
    );
    assert_read_alike(&wire(&frames)).await;
}

#[tokio::test(start_paused = true)]
async fn a_farewell_after_a_heartbeat_joins_its_block() {
    let farewell = Event::new().event("bye").data("restarting");
    let frames = quiet_writer_frames(Some((farewell, 58))).await;
    assert_eq!(
        frames,
        at(&[
            (15, ":\n"),
            (20, "retry: 3000\nevent: token\nid: 1\ndata: a\n\n"),
            (35, ":\n"),
            (40, "data: b\n\n"),
            (55, ":\n"),
            (58, "event: bye\ndata: restarting\n\n"),
        ])
    );
    assert_read_alike(&wire(&frames)).await;
}

#[tokio::test(start_paused = true)]
async fn a_farewell_before_any_event_joins_the_heartbeats() {
    let frames = quiet_writer_frames(Some((Event::new().event("bye").data(""), 16))).await;
    // No event of the stream carried the retry advice, so none went out.
    assert_eq!(frames, at(&[(15, ":\n"), (16, "event: bye\ndata:\n\n")]));
    assert_read_alike(&wire(&frames)).await;
}

#[tokio::test(start_paused = true)]
async fn standalone_layers_on_axums_own_sse() {
    let axum_sse = || async {
        let events = stream::iter(["a", "b"]).then(|data| async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Ok::<_, Infallible>(sse::Event::default().id(data).data(data))
        });
        sse::Sse::new(events.chain(stream::pending()))
    };
    let app = Router::new()
        .route("/", get(axum_sse))
        .layer(HeartbeatLayer::new(INTERVAL).comment("ping"))
        .layer(RetryLayer::new(Duration::from_millis(500)));
    let frames = frames(app, get_root(), Duration::from_secs(56)).await;
    assert_eq!(
        frames,
        at(&[
            (15, ": ping\n"),
            (20, "retry: 500\nid: a\ndata: a\n\n"),
            (35, ": ping\n"),
            (40, "id: b\ndata: b\n\n"),
            (55, ": ping\n"),
        ])
    );
    assert_read_alike(&wire(&frames)).await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_opens_with_a_comment_keeps_it_a_comment() {
    // A handler that flushes the headers with a comment first: the retry
    // advice must not turn that comment's block into a dispatched one.
    let events = || async {
        SseBody::new(stream::iter([
            Event::new().comment("connected"),
            Event::new().id(1).data("a"),
        ]))
    };
    let app = Router::new()
        .route("/", get(events))
        .layer(RetryLayer::new(Duration::from_secs(1)));
    let frames = frames(app, get_root(), Duration::from_secs(1)).await;
    assert_eq!(
        wire(&frames),
        ": connected\n\nretry: 1000\nid: 1\ndata: a\n\n"
    );
    assert_read_alike(&wire(&frames)).await;
}

#[tokio::test]
async fn the_loose_parser_of_these_tests_does_catch_empty_blocks() {
    // What the crate sent before the framing rule: each of these is read as
    // an event without data.
    for wire in ["retry: 3000\n\ndata: a\n\n", "id: 1\ndata: a\n\n:\n\n"] {
        let loose = loose_events(wire);
        assert!(loose.iter().any(|event| event.data.is_none()), "{wire:?}");
    }
}

/// One event a handler sends: after `delay` seconds, with or without an id,
/// a type, a `retry` of its own, a comment.
#[derive(Debug, Clone)]
struct Step {
    delay: u64,
    id: bool,
    event_type: bool,
    retry: bool,
    comment: bool,
    data: String,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..40u64,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        "[a-z\n]{0,6}",
    )
        .prop_map(|(delay, id, event_type, retry, comment, data)| Step {
            delay,
            id,
            event_type,
            retry,
            comment,
            data,
        })
}

fn event(index: usize, step: &Step) -> Event {
    let mut event = Event::new();
    if step.comment {
        event = event.comment("c");
    }
    if step.event_type {
        event = event.event("token");
    }
    if step.id {
        event = event.id(index);
    }
    if step.retry {
        event = event.retry(Duration::from_millis(700));
    }
    event.data(&step.data)
}

/// How the stream ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The handler returns.
    Finished,
    /// A shutdown with a farewell, after so many seconds.
    Shutdown(u64),
    /// The maximum duration, in seconds.
    MaxDuration(u64),
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        Just(End::Finished),
        (0..200u64).prop_map(End::Shutdown),
        (1..200u64).prop_map(End::MaxDuration),
    ]
}

async fn run_stream(steps: Vec<Step>, writer: bool, retry: bool, heartbeat: u64, end: End) {
    let mut layer = SseLayer::builder().heartbeat(Duration::from_secs(heartbeat));
    if retry {
        layer = layer.retry(Duration::from_secs(2));
    }
    let shutdown = SseShutdown::new();
    match end {
        End::Finished => {}
        End::Shutdown(after) => {
            layer = layer
                .shutdown(shutdown.clone())
                .farewell(Event::new().event("bye").data("later"));
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(after)).await;
                shutdown.trigger();
            });
        }
        End::MaxDuration(secs) => layer = layer.max_duration(Duration::from_secs(secs)),
    }
    let events = move || {
        let steps = steps.clone();
        stream::iter(steps.into_iter().enumerate()).then(|(index, step)| async move {
            tokio::time::sleep(Duration::from_secs(step.delay)).await;
            event(index, &step)
        })
    };
    let app = if writer {
        Router::new().route(
            "/",
            get(move |mut sse: SseWriter| async move {
                sse.start().unwrap();
                let mut events = std::pin::pin!(events());
                while let Some(event) = events.next().await {
                    if sse.send(event).await.is_err() {
                        return;
                    }
                }
            }),
        )
    } else {
        Router::new().route("/", get(move || async move { SseBody::new(events()) }))
    };
    let frames = frames(
        app.layer(layer.build()),
        get_root(),
        Duration::from_secs(10_000),
    )
    .await;
    assert_read_alike(&wire(&frames)).await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn loose_parsers_read_what_strict_ones_read(
        steps in prop::collection::vec(step(), 0..8),
        writer in any::<bool>(),
        retry in any::<bool>(),
        heartbeat in 1..30u64,
        end in end(),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(run_stream(steps, writer, retry, heartbeat, end));
    }
}
