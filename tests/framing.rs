//! The framing rule: nothing the crate adds by itself (the retry advice,
//! heartbeats) forms a block that a loose parser dispatches as an event
//! with empty data. Byte-exact at every position (stream start, between
//! events, after an event with an id, before the end), and a property test
//! that reads our output with the loosest rule in common use.

mod common;

use std::{convert::Infallible, time::Duration};

use axum::{body::Body, http::Request, response::sse, routing::get, Router};
use common::frames;
use futures_util::{stream, FutureExt, StreamExt};
use proptest::prelude::*;

use axum::response::{IntoResponse, Response};
use axum_sse::{
    broadcast::{Broadcast, BroadcastError},
    decode::{Decoder, EventStream},
    resumable::{ResumableResponses, Resume, SinkError},
    Event, EventError, HeartbeatLayer, RetryLayer, SseBody, SseLayer, SseShutdown, SseWriter,
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
    // A handler that flushes the headers with a comment first: the comment
    // ends no block, so it joins the first event's, and the retry advice
    // never makes a block of its own.
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
        "retry: 1000\n: connected\nid: 1\ndata: a\n\n"
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
/// a type, a `retry` of its own, a comment; or, `bare`, a keep-alive sent by
/// hand: only a comment and a `retry`, no data.
#[derive(Debug, Clone)]
struct Step {
    delay: u64,
    id: bool,
    event_type: bool,
    retry: bool,
    comment: bool,
    data: String,
    bare: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..40u64,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        "[a-z\n]{0,6}",
        prop::bool::weighted(0.15),
    )
        .prop_map(|(delay, id, event_type, retry, comment, data, bare)| Step {
            delay,
            id,
            event_type,
            retry,
            comment,
            data,
            bare,
        })
}

fn event(index: usize, step: &Step) -> Event {
    if step.bare {
        return Event::new()
            .comment("keep-alive")
            .retry(Duration::from_millis(900));
    }
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

/// How a resumable response's stream ends.
#[derive(Debug, Clone, Copy)]
enum ResumableEnd {
    /// The producer returns.
    Finished,
    /// [`ResponseStream::close_after`] so many seconds, with a `retry` of
    /// `CLOSE_RETRY`.
    CloseAfter(u64),
    /// The store's shutdown after so many seconds: a `retry` drawn from
    /// its drain window, `DRAIN_WINDOW`.
    StoreShutdown(u64),
}

const CLOSE_RETRY: Duration = Duration::from_millis(1234);
const DRAIN_WINDOW: Duration = Duration::from_secs(4);

fn resumable_end() -> impl Strategy<Value = ResumableEnd> {
    prop_oneof![
        Just(ResumableEnd::Finished),
        (0..200u64).prop_map(ResumableEnd::CloseAfter),
        (0..200u64).prop_map(ResumableEnd::StoreShutdown),
    ]
}

/// The frames of one resumable response, read from its start under an
/// `SseLayer` with a heartbeat and maybe the retry advice: a producer that
/// may prime the stream, then sends `steps` (the log gives the ids).
async fn resumable_frames(
    steps: Vec<Step>,
    prime: bool,
    retry: bool,
    heartbeat: u64,
    end: ResumableEnd,
) -> Vec<(u64, String)> {
    let shutdown = SseShutdown::new();
    let responses = ResumableResponses::builder()
        .shutdown(shutdown.clone())
        .drain_window(DRAIN_WINDOW)
        .build();
    let id = responses
        .start(move |mut sink| async move {
            if prime {
                sink.prime().await?;
            }
            for (index, step) in steps.iter().enumerate() {
                tokio::time::sleep(Duration::from_secs(step.delay)).await;
                // The log gives ids, and refuses events without data.
                let step = Step {
                    id: false,
                    bare: false,
                    ..step.clone()
                };
                sink.send(event(index, &step)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    if let ResumableEnd::StoreShutdown(after) = end {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(after)).await;
            shutdown.trigger();
        });
    }
    let read = move || async move {
        let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
            return Response::default();
        };
        match end {
            ResumableEnd::CloseAfter(after) => {
                SseBody::new(stream.close_after(Duration::from_secs(after), CLOSE_RETRY))
                    .into_response()
            }
            _ => SseBody::new(stream).into_response(),
        }
    };
    let mut layer = SseLayer::builder().heartbeat(Duration::from_secs(heartbeat));
    if retry {
        layer = layer.retry(Duration::from_secs(2));
    }
    let app = Router::new().route("/", get(read)).layer(layer.build());
    frames(app, get_root(), Duration::from_secs(10_000)).await
}

/// The wire with every `id` value replaced by `*` (the log's ids are
/// opaque).
fn ids_hidden(wire: &str) -> String {
    wire.split_inclusive('\n')
        .map(|line| {
            if line.starts_with("id: ") {
                "id: *\n"
            } else {
                line
            }
        })
        .collect()
}

/// The rule on a resumable response's stream, and how it ends: whole
/// events, then (if the stream was cut before the response ended) a lone
/// `retry` line that ends no block, which a strict client takes as its
/// reconnection time.
async fn run_resumable(
    steps: Vec<Step>,
    prime: bool,
    retry: bool,
    heartbeat: u64,
    end: ResumableEnd,
) {
    let produced: u64 = steps.iter().map(|step| step.delay).sum();
    let frames = resumable_frames(steps, prime, retry, heartbeat, end).await;
    let wire = wire(&frames);
    assert_read_alike(&wire).await;
    let (cut_at, advised) = match end {
        ResumableEnd::Finished => (None, None),
        ResumableEnd::CloseAfter(after) => (Some(after), Some(CLOSE_RETRY)),
        ResumableEnd::StoreShutdown(after) => (Some(after), None),
    };
    // A cut at the very instant the response ends may go either way.
    if cut_at.is_some_and(|after| after == produced) {
        return;
    }
    let trimmed = wire.trim_end_matches('\n');
    let (before, last_line) = trimmed.rsplit_once('\n').unwrap_or(("", trimmed));
    if cut_at.is_some_and(|after| after < produced) {
        assert!(
            last_line.starts_with("retry: ") && wire.ends_with(&format!("{last_line}\n")),
            "ends with a lone retry line: {wire:?}"
        );
        assert!(before.is_empty() || wire.ends_with(&format!("\n{last_line}\n")));
        assert!(!wire.ends_with("\n\n"), "{wire:?}");
        let mut decoder = Decoder::new();
        decoder.feed(wire.clone());
        while decoder.next_event().unwrap().is_some() {}
        let taken = decoder
            .retry()
            .unwrap_or_else(|| panic!("no reconnection time taken from {wire:?}"));
        match advised {
            Some(advised) => assert_eq!(taken, advised),
            None => assert!(taken <= DRAIN_WINDOW, "{taken:?}"),
        }
    } else {
        assert!(
            wire.is_empty() || wire.ends_with("\n\n") || wire.ends_with(":\n"),
            "a whole response ends with its last event: {wire:?}"
        );
        assert!(!last_line.starts_with("retry: "), "{wire:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_resumable_stream_closed_early_ends_with_a_lone_retry_line() {
    // MCP's early close: the priming event, a result still being made, a
    // heartbeat, then the close: the retry line ends no block.
    let step = |delay| Step {
        delay,
        id: false,
        event_type: false,
        retry: false,
        comment: false,
        data: "r".into(),
        bare: false,
    };
    let frames = resumable_frames(
        vec![step(1), step(60)],
        true,
        true,
        15,
        ResumableEnd::CloseAfter(20),
    )
    .await;
    let shown: Vec<_> = frames
        .iter()
        .map(|(at, frame)| (*at, ids_hidden(frame)))
        .collect();
    assert_eq!(
        shown,
        at(&[
            (0, "retry: 2000\ndata:\nid: *\n\n"),
            (1, "data: r\nid: *\n\n"),
            (16, ":\n"),
            (20, "retry: 1234\n"),
        ])
    );
    assert_read_alike(&wire(&frames)).await;
}

#[tokio::test(start_paused = true)]
async fn a_resumable_stream_cut_by_the_store_shutdown_ends_with_a_lone_retry_line() {
    let step = Step {
        delay: 5,
        id: false,
        event_type: true,
        retry: false,
        comment: false,
        data: "t".into(),
        bare: false,
    };
    let frames = resumable_frames(
        vec![step.clone(), step.clone(), step],
        false,
        false,
        30,
        ResumableEnd::StoreShutdown(7),
    )
    .await;
    let [(5, first), (7, last)] = &frames[..] else {
        panic!("{frames:?}")
    };
    assert_eq!(ids_hidden(first), "event: token\ndata: t\nid: *\n\n");
    let retry: u64 = last
        .strip_prefix("retry: ")
        .and_then(|line| line.strip_suffix('\n'))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{last:?}"));
    assert!(retry <= 4_000);
    assert_read_alike(&wire(&frames)).await;
}

/// Everything the crate sends on a user's behalf, after adding an id or
/// as its own block, must have `data`; without, `EventSource` dispatches
/// nothing and loose parsers an empty event. Each place refuses such an
/// event, whatever its other fields, and takes `data("")`.
#[tokio::test]
async fn events_sent_on_a_users_behalf_must_have_data() {
    let dataless = || {
        [
            Event::new(),
            Event::new().comment("c"),
            Event::new().event("e"),
            Event::new().retry(Duration::from_secs(1)),
            Event::new().id("order-1"),
            Event::new()
                .event("e")
                .id("order-2")
                .retry(Duration::from_secs(1)),
        ]
    };
    let no_data = |err: &EventError| matches!(err, EventError::NoData);
    let channel = Broadcast::new();
    let responses = ResumableResponses::new();
    let (refused, on_refused) = tokio::sync::oneshot::channel();
    let id = responses
        .start(move |mut sink| async move {
            let mut errors = Vec::new();
            for event in dataless() {
                errors.push(sink.send(event).await);
            }
            let _ = refused.send(errors);
            sink.send(Event::new().data("")).await
        })
        .await
        .unwrap();
    for (index, event) in dataless().into_iter().enumerate() {
        let err = channel.publish("t", event.clone()).await.unwrap_err();
        assert!(
            matches!(&err, BroadcastError::InvalidEvent(err) if no_data(err)),
            "publish {index}: {err:?}"
        );
        let err = Broadcast::builder()
            .try_missed_event(event.clone())
            .unwrap_err();
        assert!(
            matches!(&err, BroadcastError::InvalidEvent(err) if no_data(err)),
            "missed {index}: {err:?}"
        );
        let err = SseLayer::builder().try_farewell(event.clone()).unwrap_err();
        assert!(no_data(&err), "farewell {index}: {err}");
        let err = axum_sse::ShutdownLayer::new(SseShutdown::new())
            .try_farewell(event.clone())
            .unwrap_err();
        assert!(no_data(&err), "shutdown farewell {index}: {err}");
        let err = HeartbeatLayer::new(INTERVAL).try_event(event).unwrap_err();
        assert!(no_data(&err), "heartbeat {index}: {err}");
    }
    for (index, result) in on_refused.await.unwrap().into_iter().enumerate() {
        assert!(
            matches!(&result, Err(SinkError::InvalidEvent(err)) if no_data(err)),
            "sink {index}: {result:?}"
        );
    }
    // Nothing refused went into the channel's history: resuming from an
    // unknown id replays it all, after the missed-events event.
    let mut sub = channel.subscribe("t", Some("unknown")).await.unwrap();
    assert!(sub.missed_events());
    assert!(sub.next().now_or_never().flatten().is_some(), "missed");
    assert!(sub.next().now_or_never().is_none(), "an empty history");
    // Empty data is data: every place takes it.
    let empty = || Event::new().event("e").data("");
    channel.publish("t", empty()).await.unwrap();
    assert!(Broadcast::builder().try_missed_event(empty()).is_ok());
    assert!(SseLayer::builder().try_farewell(empty()).is_ok());
    assert!(HeartbeatLayer::new(INTERVAL).try_event(empty()).is_ok());
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!("the response ended with one event")
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].as_bytes().starts_with(b"data:\nid: "));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn resumable_streams_keep_the_rule_and_end_with_a_lone_retry(
        steps in prop::collection::vec(step(), 0..8),
        prime in any::<bool>(),
        retry in any::<bool>(),
        heartbeat in 1..30u64,
        end in resumable_end(),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(run_resumable(steps, prime, retry, heartbeat, end));
    }

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
