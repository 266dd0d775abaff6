//! Resumable responses in memory: a real `axum::serve` on loopback, real
//! HTTP readers that drop and resume, byte-exact checks of what they read.

mod common;
#[path = "resumable_support/mod.rs"]
mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::Notify;

use axum_sse::{
    resumable::{ResumableError, ResumableResponses, Resume, SinkError},
    EncodedEvent, Event, SseShutdown,
};
use common::serve;
use support::*;

/// Reads one reply with a drop after `drop_at` whole events and a
/// reconnect after `pause`; checks it against an uninterrupted read.
async fn drop_and_resume(
    addr: std::net::SocketAddr,
    app: &App,
    n: usize,
    delay_ms: u64,
    drop_at: usize,
    pause: Duration,
) {
    let before = app.generations.load(Ordering::SeqCst);
    let id = start_reply(addr, n, delay_ms).await;
    let (status, first) = read_events(addr, &id, None, Some(drop_at)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count_events(&first), drop_at);
    let (_, last) = whole_events(&first);
    tokio::time::sleep(pause).await;
    let (status, rest) = read_events(addr, &id, last.as_deref(), None).await;
    assert_eq!(status, StatusCode::OK, "resume after {drop_at} of {n}");
    let mut joined = first.clone();
    joined.extend_from_slice(&rest);
    assert_eq!(
        reply_of(&joined),
        reply_text(n),
        "drop at {drop_at}, pause {pause:?}"
    );

    // Byte for byte what one uninterrupted read gives.
    let (_, whole) = read_events(addr, &id, None, None).await;
    assert_eq!(
        String::from_utf8_lossy(&joined),
        String::from_utf8_lossy(&whole)
    );
    // Read to its end: nothing left.
    let (_, last) = whole_events(&whole);
    let (status, empty) = read_events(addr, &id, last.as_deref(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(empty.is_empty());
    assert_eq!(
        app.generations.load(Ordering::SeqCst),
        before + 1,
        "generated once"
    );
}

#[tokio::test]
async fn a_client_that_drops_at_a_random_token_reads_the_reply_exactly_once() {
    let app = app(ResumableResponses::new());
    let addr = serve(router(app.clone())).await;
    let mut rng = fastrand::Rng::with_seed(14);
    for round in 0..6 {
        let n = 30;
        let drop_at = rng.usize(1..=n);
        // Immediately, while the producer runs, and after it finished.
        let pause = match round % 3 {
            0 => Duration::ZERO,
            1 => Duration::from_millis(rng.u64(1..60)),
            _ => Duration::from_millis(300),
        };
        drop_and_resume(addr, &app, n, 2, drop_at, pause).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_comes_back_seconds_later_gets_what_it_missed_at_once() {
    let app = app(ResumableResponses::new());
    let addr = serve(router(app.clone())).await;
    // 40 tokens, 100 ms each: 4 s of generation; the client leaves after 5
    // and comes back 0.5 s, 2 s and 9 s later.
    for pause_ms in [500, 2_000, 9_000] {
        drop_and_resume(addr, &app, 40, 100, 5, Duration::from_millis(pause_ms)).await;
    }
    assert_eq!(app.generations.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_reply_nobody_reads_is_generated_kept_for_the_ttl_then_dropped() {
    let responses = ResumableResponses::builder()
        .ttl(Duration::from_secs(60))
        .build();
    let app = app(responses.clone());
    let addr = serve(router(app.clone())).await;
    let id = start_reply(addr, 10, 100).await;
    assert_eq!(responses.live(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Generated with nobody reading, kept.
    assert_eq!(responses.live(), 0);
    assert_eq!(responses.retained(), 1);
    let (status, whole) = read_events(addr, &id, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply_of(&whole), reply_text(10));
    // It ended at 1 s: at 58 s (before the TTL, counted from its end) it
    // is still there, at 63 s it is gone.
    tokio::time::sleep(Duration::from_secs(56)).await;
    assert_eq!(responses.retained(), 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(responses.retained(), 0);
    let (status, empty) = read_events(addr, &id, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "expired");
    assert!(empty.is_empty());
    let (_, last) = whole_events(&whole);
    let (status, _) = read_events(addr, &id, last.as_deref(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "expired, resumed");
    assert_eq!(app.generations.load(Ordering::SeqCst), 1);
}

/// Producer far faster than a reader that holds a buffer of 4: the reader
/// rereads the log and still gets every event once, in order.
#[tokio::test(start_paused = true)]
async fn a_producer_faster_than_every_reader_is_not_slowed_and_readers_miss_nothing() {
    let responses = ResumableResponses::builder()
        .reader_buffer(4)
        .max_events(5_000)
        .build();
    let gate = Arc::new(Notify::new());
    let written = Arc::new(AtomicUsize::new(0));
    let id = responses
        .start({
            let (gate, written) = (Arc::clone(&gate), Arc::clone(&written));
            move |mut sink| async move {
                gate.notified().await;
                for i in 0..2_000 {
                    sink.send(Event::new().data(i.to_string())).await?;
                    written.fetch_add(1, Ordering::SeqCst);
                    if i % 100 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    let Resume::Stream(mut slow) = responses.resume(&id, None).await.unwrap() else {
        panic!("no stream")
    };
    let Resume::Stream(fast) = responses.resume(&id, None).await.unwrap() else {
        panic!("no stream")
    };
    gate.notify_one();
    // The slow reader reads one event, then sleeps while the producer
    // writes everything: it never held the producer back.
    let first = slow.next().await.unwrap();
    assert!(first.as_bytes().starts_with(b"data: 0\nid: "));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(written.load(Ordering::SeqCst), 2_000);
    assert_eq!(responses.live(), 0);
    let mut data = vec![data_of(&first)];
    while let Some(event) = slow.next().await {
        data.push(data_of(&event));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let want: Vec<String> = (0..2_000).map(|i| i.to_string()).collect();
    assert_eq!(data, want);
    let fast: Vec<String> = fast.map(|e| data_of(&e)).collect().await;
    assert_eq!(fast, want);
}

fn data_of(event: &EncodedEvent) -> String {
    let text = std::str::from_utf8(event.as_bytes()).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap()
        .to_owned()
}

/// The reader waits on the producer: each event as it is written.
#[tokio::test(start_paused = true)]
async fn a_reader_faster_than_the_producer_gets_each_event_as_it_is_written() {
    let responses = ResumableResponses::new();
    let id = responses
        .start(|mut sink| async move {
            for i in 0..5 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sink.send(Event::new().data(i.to_string())).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let Resume::Stream(mut stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let start = tokio::time::Instant::now();
    for i in 0..5 {
        let event = stream.next().await.unwrap();
        assert_eq!(data_of(&event), i.to_string());
        assert_eq!(
            start.elapsed().as_secs(),
            i + 1,
            "event {i} came when written"
        );
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_response_is_bounded_in_events_and_bytes_and_ends_at_the_bound() {
    let responses = ResumableResponses::builder()
        .max_events(100)
        .max_bytes(1_000_000)
        .build();
    let outcome = Arc::new(std::sync::Mutex::new(None));
    let id = responses
        .start({
            let outcome = Arc::clone(&outcome);
            move |mut sink| async move {
                let mut sent = 0;
                let err = loop {
                    match sink.send(Event::new().data("x")).await {
                        Ok(()) => sent += 1,
                        Err(err) => break err,
                    }
                };
                let again = sink.send(Event::new().data("y")).await;
                *outcome.lock().unwrap() = Some((sent, err, again));
                Ok(())
            }
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let (sent, err, again) = outcome.lock().unwrap().take().unwrap();
    assert_eq!(sent, 100);
    assert!(matches!(err, SinkError::TooLarge), "{err:?}");
    assert!(matches!(again, Err(SinkError::Closed)), "{again:?}");
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 101);
    assert_eq!(events[100].as_bytes(), INCOMPLETE, "outgrew its bound");

    // Bytes: 10 events of 100 bytes fit in 1,000 bytes ("data: " + 93 + LF LF).
    let responses = ResumableResponses::builder().max_bytes(1_000).build();
    let data = "d".repeat(92);
    let sent = Arc::new(AtomicUsize::new(0));
    let id = responses
        .start({
            let sent = Arc::clone(&sent);
            move |mut sink| async move {
                loop {
                    sink.send(Event::new().data(&data)).await?;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(sent.load(Ordering::SeqCst), 10);
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 11);
    assert_eq!(events[10].as_bytes(), INCOMPLETE);
}

#[tokio::test]
async fn the_bound_on_live_responses_answers_503_with_a_reason() {
    let responses = ResumableResponses::builder().max_live(2).build();
    let app = app(responses.clone());
    let addr = serve(router(app.clone())).await;
    // Two long replies hold both slots.
    let a = start_reply(addr, 1_000, 1_000).await;
    let _b = start_reply(addr, 1_000, 1_000).await;
    let response = send(addr, Method::POST, "/replies?n=1", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"too many live resumable responses on this instance (at most 2)"
    );
    let err = responses.start(|_| async { Ok(()) }).await.unwrap_err();
    assert!(
        matches!(err, ResumableError::TooManyLive { limit: 2 }),
        "{err:?}"
    );
    assert_eq!(app.generations.load(Ordering::SeqCst), 2);

    // A cancel frees a slot; the cancelled reply ends where it was.
    assert!(responses.cancel(&a).await.unwrap());
    common::eventually(Duration::from_secs(10), "the slot freed", || {
        responses.live() == 1
    })
    .await;
    // Nothing was written before the cancel: nothing to read, 204.
    let (status, read) = read_events(addr, &a, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(read, b"");
    assert!(!responses.cancel(&a).await.unwrap(), "no longer running");
    let c = start_reply(addr, 1, 0).await;
    let (_, read) = read_events(addr, &c, None, None).await;
    assert_eq!(reply_of(&read), reply_text(1));
}

#[tokio::test]
async fn a_producer_cannot_forge_the_end_marker_or_set_ids() {
    let responses = ResumableResponses::new();
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let id = responses
        .start({
            let results = Arc::clone(&results);
            move |mut sink| async move {
                let forged = [
                    Event::new().event("axum-sse-resumable").data("end"),
                    Event::new().data("a").event("axum-sse-resumable"),
                    Event::new().data("b").id("7"),
                    Event::new().event("bad\nname"),
                ];
                for event in forged {
                    let result = sink.send(event).await;
                    results.lock().unwrap().push(result);
                }
                sink.send(Event::new().data("real")).await
            }
        })
        .await
        .unwrap();
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 1);
    assert!(events[0].as_bytes().starts_with(b"data: real\nid: "));
    let results = results.lock().unwrap();
    assert!(matches!(results[0], Err(SinkError::ReservedType)));
    assert!(matches!(results[1], Err(SinkError::ReservedType)));
    assert!(matches!(results[2], Err(SinkError::IdNotAllowed)));
    assert!(matches!(results[3], Err(SinkError::InvalidEvent(_))));
}

#[tokio::test]
async fn an_id_not_of_the_log_gets_missed_then_the_whole_reply() {
    let app = app(ResumableResponses::new());
    let addr = serve(router(app.clone())).await;
    let id = start_reply(addr, 3, 0).await;
    let (_, whole) = read_events(addr, &id, None, None).await;
    let other = start_reply(addr, 3, 0).await;
    let (_, of_other) = read_events(addr, &other, None, None).await;
    let (_, other_last) = whole_events(&of_other);
    let ours_garbled = format!("{id}/garbled");
    for bad in [
        other_last.as_deref().unwrap(),
        "garbled",
        "x-1",
        &ours_garbled,
    ] {
        let (status, read) = read_events(addr, &id, Some(bad), None).await;
        assert_eq!(status, StatusCode::OK);
        let mut want = b"event: missed\ndata:\n\n".to_vec();
        want.extend_from_slice(&whole);
        assert_eq!(
            String::from_utf8_lossy(&read),
            String::from_utf8_lossy(&want)
        );
    }
    // An unknown response: 204.
    let (status, _) = read_events(addr, "0123", None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = read_events(addr, "0123", Some("garbled"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// The default event a reader of an incomplete response ends with.
const INCOMPLETE: &[u8] = b"event: incomplete\n\
    data: {\"error\":{\"message\":\"the response ended before it was complete\"}}\n\n";

#[tokio::test]
async fn a_last_event_id_alone_names_its_response() {
    let app = app(ResumableResponses::new());
    let addr = serve(router(app.clone())).await;
    let n = 12;
    let id = start_reply(addr, n, 5).await;
    let (_, first) = read_events(addr, &id, None, Some(4)).await;
    let ids: Vec<_> = std::str::from_utf8(&first)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("id: "))
        .collect();
    assert_eq!(ids.len(), 4);
    for event_id in &ids {
        assert!(event_id.starts_with(&format!("{id}/")), "{event_id}");
    }
    // `GET /resume` knows nothing but the client's last event id.
    let (status, rest) = read_path(addr, "/resume", Some(ids[3]), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut joined = first;
    joined.extend_from_slice(&rest);
    let (_, whole) = read_events(addr, &id, None, None).await;
    assert_eq!(
        String::from_utf8_lossy(&joined),
        String::from_utf8_lossy(&whole)
    );
    assert_eq!(reply_of(&joined), reply_text(n));
    // Read to its end: 204.
    let (_, end) = whole_events(&joined);
    let (status, _) = read_path(addr, "/resume", end.as_deref(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Ids that name no response: 204, whatever they hold.
    let long = format!("{}/x", "a".repeat(65));
    for bad in ["garbled", "0123/x", "/", "/x", "a b/c", "x/cancel/1", &long] {
        let (status, read) = read_path(addr, "/resume", Some(bad), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{bad:?}");
        assert!(read.is_empty());
    }
    // This response, with a log id not of its log: missed, then all of it.
    let (status, read) = read_path(addr, "/resume", Some(&format!("{id}/zz")), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut want = b"event: missed\ndata:\n\n".to_vec();
    want.extend_from_slice(&whole);
    assert_eq!(
        String::from_utf8_lossy(&read),
        String::from_utf8_lossy(&want)
    );
}

#[tokio::test(start_paused = true)]
async fn a_producer_past_its_max_duration_is_stopped_and_retained_responses_are_bounded() {
    let responses = ResumableResponses::builder()
        .max_duration(Duration::from_secs(5))
        .max_retained(2)
        .build();
    let id = responses
        .start(|mut sink| async move {
            sink.send(Event::new().data("before")).await?;
            std::future::pending::<()>().await;
            Ok(())
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(responses.live(), 0);
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[1].as_bytes(),
        INCOMPLETE,
        "cut, and the client is told"
    );
    let mut ids = vec![id];
    for _ in 0..3 {
        ids.push(responses.start(|_| async { Ok(()) }).await.unwrap());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(responses.retained(), 2);
    assert!(matches!(
        responses.resume(&ids[0], None).await.unwrap(),
        Resume::NotFound
    ));
    assert!(matches!(
        responses.resume(&ids[1], None).await.unwrap(),
        Resume::NotFound
    ));
    // Kept, and empty: nothing to read.
    assert!(matches!(
        responses.resume(&ids[3], None).await.unwrap(),
        Resume::Complete
    ));
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_readers_with_a_spread_retry_and_drain_waits_for_producers() {
    let shutdown = SseShutdown::new();
    let responses = ResumableResponses::builder()
        .shutdown(shutdown.clone())
        .drain_window(Duration::from_secs(10))
        .build();
    let app = app(responses.clone());
    let addr = serve(router(app.clone())).await;
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let id = start_reply(addr, 20, 100).await;
        let response = send(addr, Method::GET, &format!("/replies/{id}"), None).await;
        ids.push(id);
        bodies.push(response.into_body());
    }
    tokio::time::sleep(Duration::from_millis(550)).await;
    shutdown.trigger();
    let mut retries = Vec::new();
    for body in bodies {
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        // Whole events, then a lone `retry` line that ends no block.
        let (_, last) = text.rsplit_once("\n\n").unwrap();
        let retry = last.strip_prefix("retry: ").unwrap();
        let retry: u64 = retry.strip_suffix('\n').unwrap().parse().unwrap();
        assert!(retry <= 10_000, "{retry}");
        retries.push(retry);
        // What came before is whole token events.
        let tokens = text.matches("event: token\n").count();
        assert!(tokens >= 4, "{text:?}");
    }
    retries.sort_unstable();
    retries.dedup();
    assert!(retries.len() > 10, "reconnects spread: {retries:?}");
    let err = send(addr, Method::POST, "/replies?n=1", None).await;
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        responses.drain(Duration::from_secs(60)).await,
        "producers finished"
    );
    assert_eq!(responses.live(), 0);
    assert_eq!(app.generations.load(Ordering::SeqCst), 20);
    // Every reply was written to its end.
    for id in &ids {
        let Resume::Stream(stream) = responses.resume(id, None).await.unwrap() else {
            panic!()
        };
        // A reader opened after the shutdown ends at once with its retry.
        let events: Vec<_> = stream.collect().await;
        assert!(events.len() <= 2, "{events:?}");
        let retry = events.last().unwrap().as_bytes();
        assert!(retry.starts_with(b"retry: ") && !retry.ends_with(b"\n\n"));
    }
}

#[tokio::test(start_paused = true)]
async fn drain_cancels_producers_past_its_deadline() {
    let responses = ResumableResponses::new();
    let id = responses
        .start(|mut sink| async move {
            sink.send(Event::new().data("a")).await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            sink.send(Event::new().data("b")).await
        })
        .await
        .unwrap();
    assert!(!responses.drain(Duration::from_secs(5)).await);
    assert_eq!(responses.live(), 0);
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].as_bytes(), INCOMPLETE);
    // The store still starts responses after a drain (no shutdown handle).
    responses.start(|_| async { Ok(()) }).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_producer_that_panics_ends_its_response_and_frees_its_slot() {
    let responses = ResumableResponses::builder().max_live(1).build();
    let id = responses
        .start(|mut sink| async move {
            sink.send(Event::new().data("a")).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            panic!("the producer panics, on purpose");
        })
        .await
        .unwrap();
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 2, "the reader ends: {events:?}");
    assert_eq!(events[1].as_bytes(), INCOMPLETE);
    assert_eq!(responses.live(), 0);
    responses.start(|_| async { Ok(()) }).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reader_in_memory_waits_for_its_producer_however_long_it_is_silent() {
    // In memory the producer runs on this instance and always writes its
    // end: silence longer than the TTL is not a dead producer.
    let responses = ResumableResponses::builder()
        .ttl(Duration::from_secs(30))
        .build();
    let id = responses
        .start(|mut sink| async move {
            sink.send(Event::new().data("a")).await?;
            tokio::time::sleep(Duration::from_secs(300)).await;
            sink.send(Event::new().data("b")).await
        })
        .await
        .unwrap();
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[1].as_bytes().starts_with(b"data: b\nid: "));
}

#[tokio::test]
async fn a_cut_response_tells_its_readers_and_the_event_can_be_chosen() {
    let cancelled = |responses: ResumableResponses| async move {
        let id = responses
            .start(|mut sink| async move {
                sink.send(Event::new().data("a")).await?;
                std::future::pending().await
            })
            .await
            .unwrap();
        let Resume::Stream(mut stream) = responses.resume(&id, None).await.unwrap() else {
            panic!()
        };
        // Cancelled once "a" is written.
        let mut events = vec![stream.next().await.unwrap()];
        assert!(responses.cancel(&id).await.unwrap());
        events.extend(stream.collect::<Vec<_>>().await);
        let wire: Vec<_> = events.iter().map(|e| e.as_bytes().to_vec()).collect();
        // A resume from the last event: nothing left, as for a whole reply.
        let text = String::from_utf8(wire[0].clone()).unwrap();
        let last = text.trim_end().rsplit_once("id: ").unwrap().1.to_owned();
        let resumed = responses.resume(&id, Some(&last)).await.unwrap();
        assert!(matches!(resumed, Resume::Complete), "{resumed:?}");
        wire
    };
    let events = cancelled(ResumableResponses::new()).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], INCOMPLETE);
    let own = Event::new().data(r#"{"type":"error","errorText":"cut short"}"#);
    let events = cancelled(
        ResumableResponses::builder()
            .incomplete_event(Some(own))
            .build(),
    )
    .await;
    assert_eq!(
        events[1],
        br#"data: {"type":"error","errorText":"cut short"}"#
            .iter()
            .chain(b"\n\n")
            .copied()
            .collect::<Vec<_>>()
    );
    let events = cancelled(ResumableResponses::builder().incomplete_event(None).build()).await;
    assert_eq!(events.len(), 1, "ends like a complete reply");
}

#[test]
#[should_panic(expected = "no `data` field")]
fn an_incomplete_event_without_data_is_refused() {
    let _ = ResumableResponses::builder().incomplete_event(Some(Event::new().event("cut")));
}

#[test]
#[should_panic(expected = "must not carry an `id`")]
fn a_missed_event_with_an_id_is_refused() {
    let _ = ResumableResponses::builder().missed_event(Some(Event::new().id(1).data("")));
}

#[tokio::test]
async fn the_missed_event_can_be_chosen_or_left_out_and_an_empty_reply_is_204() {
    for (missed, first) in [
        (None, None),
        (Some(Event::new().data("{}")), Some(&b"data: {}\n\n"[..])),
    ] {
        let responses = ResumableResponses::builder().missed_event(missed).build();
        let id = responses
            .start(|mut sink| async move { sink.send(Event::new().data("a")).await })
            .await
            .unwrap();
        let Resume::Stream(stream) = responses.resume(&id, Some("forged")).await.unwrap() else {
            panic!()
        };
        let events: Vec<_> = stream.collect().await;
        let whole = usize::from(first.is_some()) + 1;
        assert_eq!(events.len(), whole, "{events:?}");
        if let Some(first) = first {
            assert_eq!(events[0].as_bytes(), first);
        }
        assert!(events[whole - 1].as_bytes().starts_with(b"data: a\nid: "));
    }
    // A reply that ended with no event: nothing to read whatever the id,
    // so no `missed` an `EventSource` would come back for forever.
    let responses = ResumableResponses::new();
    for outcome in [Ok(()), Err(SinkError::Closed)] {
        let id = responses
            .start(move |_| async move { outcome })
            .await
            .unwrap();
        while responses.live() > 0 {
            tokio::task::yield_now().await;
        }
        for last in [None, Some("stale"), Some("other/x")] {
            let resumed = responses.resume(&id, last).await.unwrap();
            assert!(matches!(resumed, Resume::Complete), "{last:?}: {resumed:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn after_the_shutdown_a_reader_sends_no_event_only_its_retry() {
    let shutdown = SseShutdown::new();
    let responses = ResumableResponses::builder()
        .shutdown(shutdown.clone())
        .drain_window(Duration::from_secs(2))
        .build();
    let id = responses
        .start(|mut sink| async move {
            sink.send(Event::new().data("a")).await?;
            sink.send(Event::new().data("b")).await
        })
        .await
        .unwrap();
    shutdown.trigger();
    // Read then, even from the start, the reader hands nothing over: the
    // client goes to another instance for all of it.
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].as_bytes().starts_with(b"retry: "));
}
