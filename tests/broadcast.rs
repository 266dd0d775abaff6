//! Broadcast channels, in memory: fan-out, gap-free resume, the missed-events
//! signal and slow subscribers, in process and over a real `axum::serve`.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};
use bytes::Bytes;
use common::{fetch, read_to_end, read_until, request, serve};
use futures_util::StreamExt;
use http::Request;
use http_body_util::Empty;

use axum_sse::{
    broadcast::{Broadcast, BroadcastError, Subscription},
    EncodedEvent, Event, LastEventId, SseBody, SseLayer,
};

// Counts the bytes each thread holds allocated, to show that a stalled
// subscriber does not make memory grow. Tests on a current-thread runtime
// allocate and free everything on their own thread.
struct CountingAllocator;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn held_change(delta: isize) {
    let _ = HELD.try_with(|held| held.set(held.get() + delta));
}

// SAFETY: every call is forwarded to `System` unchanged; only a thread-local
// counter is updated on the side.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            held_change(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        held_change(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            held_change(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn held_by_this_thread() -> isize {
    HELD.with(Cell::get)
}

fn text(event: &EncodedEvent) -> &str {
    std::str::from_utf8(event.as_bytes()).unwrap()
}

/// The value of the event's `id` line.
fn id_of(event: &EncodedEvent) -> u64 {
    text(event)
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no id in {:?}", text(event)))
        .parse()
        .unwrap()
}

async fn next(subscription: &mut Subscription) -> EncodedEvent {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("no event within 10 s")
        .expect("the subscription ended")
}

/// What the channel sends for `Event::new().data(n)` published as id `n`.
fn wire(n: u64) -> String {
    format!("data: {n}\nid: {n}\n\n")
}

async fn events(
    State(feed): State<Broadcast>,
    Path(topic): Path<String>,
    last_event_id: Option<LastEventId>,
) -> Result<SseBody<Subscription>, BroadcastError> {
    let last = last_event_id.as_ref().map(LastEventId::as_str);
    Ok(SseBody::new(feed.subscribe(&topic, last).await?))
}

fn app(feed: Broadcast) -> Router {
    Router::new()
        .route("/events/{topic}", get(events))
        .with_state(feed)
        .layer(SseLayer::new())
}

async fn fetch_resuming(
    addr: std::net::SocketAddr,
    path: &str,
    last_event_id: &str,
) -> hyper::Response<hyper::body::Incoming> {
    let req = Request::get(path)
        .header("last-event-id", last_event_id)
        .body(Empty::<Bytes>::new())
        .unwrap();
    request(addr, req).await
}

#[test]
fn handles_subscriptions_and_their_bodies_go_anywhere() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    fn assert_unpin<T: Unpin>() {}
    assert_send_sync::<Broadcast>();
    assert_send_sync::<Subscription>();
    assert_send_sync::<SseBody<Subscription>>();
    assert_send_sync::<BroadcastError>();
    assert_unpin::<Subscription>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_receive_every_event_in_order_sharing_its_bytes() {
    const SUBSCRIBERS: usize = 1000;
    const EVENTS: u64 = 200;
    let feed = Broadcast::new();
    let mut tasks = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut subscription = feed.subscribe("news", None).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut received = Vec::new();
            for _ in 0..EVENTS {
                received.push(next(&mut subscription).await);
            }
            received
        }));
    }
    assert_eq!(feed.stats().subscribers(), SUBSCRIBERS);
    let publisher = {
        let feed = feed.clone();
        tokio::spawn(async move {
            for n in 1..=EVENTS {
                let id = feed
                    .publish("news", Event::new().data(n.to_string()))
                    .await
                    .unwrap();
                assert_eq!(id, n.to_string());
                if n % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    publisher.await.unwrap();
    let mut first: Option<Vec<EncodedEvent>> = None;
    for task in tasks {
        let received = task.await.unwrap();
        let texts: Vec<&str> = received.iter().map(text).collect();
        let expected: Vec<String> = (1..=EVENTS).map(wire).collect();
        assert_eq!(texts, expected);
        match &first {
            // Encoded once: every subscriber holds the very same bytes.
            Some(first) => {
                for (a, b) in first.iter().zip(&received) {
                    assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
                }
            }
            None => first = Some(received),
        }
    }
    let stats = feed.stats();
    assert_eq!(stats.published(), EVENTS);
    assert_eq!(stats.subscribers(), 0);
    assert_eq!(stats.slow_disconnects(), 0);
}

#[tokio::test]
async fn subscribers_over_http_receive_every_event_in_order() {
    let feed = Broadcast::new();
    let addr = serve(app(feed.clone())).await;
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let response = fetch(addr, "/events/news").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        bodies.push(response.into_body());
    }
    // The handler subscribed before answering: nothing published now is lost.
    for n in 1..=50 {
        feed.publish("news", Event::new().data(n.to_string()))
            .await
            .unwrap();
    }
    let expected: String = (1..=50).map(wire).collect();
    for body in &mut bodies {
        assert_eq!(read_until(body, &wire(50)).await, expected);
    }
    // Other topics are other streams.
    feed.publish("sports", Event::new().data("goal"))
        .await
        .unwrap();
    feed.publish("news", Event::new().data("51")).await.unwrap();
    for body in &mut bodies {
        assert_eq!(read_until(body, "\n\n").await, wire(51));
    }
}

#[tokio::test]
async fn last_event_id_over_http_resumes_after_it() {
    let feed = Broadcast::new();
    let addr = serve(app(feed.clone())).await;
    let mut first = fetch(addr, "/events/news").await.into_body();
    for n in 1..=5 {
        feed.publish("news", Event::new().data(n.to_string()))
            .await
            .unwrap();
    }
    read_until(&mut first, &wire(5)).await;
    drop(first);
    // Published while the client was away.
    for n in 6..=8 {
        feed.publish("news", Event::new().data(n.to_string()))
            .await
            .unwrap();
    }
    let mut resumed = fetch_resuming(addr, "/events/news", "5").await.into_body();
    let replayed: String = (6..=8).map(wire).collect();
    assert_eq!(read_until(&mut resumed, &wire(8)).await, replayed);
    feed.publish("news", Event::new().data("9")).await.unwrap();
    assert_eq!(read_until(&mut resumed, "\n\n").await, wire(9));

    // An id the channel never gave: the missed-events event, then the history.
    let mut lost = fetch_resuming(addr, "/events/news", "not-an-id")
        .await
        .into_body();
    let expected = format!(
        "event: missed\ndata:\n\n{}",
        (1..=9).map(wire).collect::<String>()
    );
    assert_eq!(read_until(&mut lost, &wire(9)).await, expected);
}

/// Reads `subscription` until the event with id `until`, asserting that it
/// yields exactly `from..=until`.
async fn expect_ids(subscription: &mut Subscription, from: u64, until: u64) {
    for expected in from..=until {
        let event = next(subscription).await;
        assert_eq!(text(&event), wire(expected));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_while_others_publish_has_no_gap_and_no_duplicate() {
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut rounds = 0;
    // Bounded in count and in time.
    while rounds < 300 && started.elapsed() < Duration::from_secs(20) {
        rounds += 1;
        let feed = Broadcast::new();
        let total = rng.u64(50..300);
        let mut subscription = feed.subscribe("t", None).await.unwrap();
        let publisher = {
            let feed = feed.clone();
            let mut rng = fastrand::Rng::with_seed(rng.u64(..));
            tokio::spawn(async move {
                for n in 1..=total {
                    feed.publish("t", Event::new().data(n.to_string()))
                        .await
                        .unwrap();
                    match rng.u8(..10) {
                        0 => tokio::time::sleep(Duration::from_micros(rng.u64(..300))).await,
                        1..=3 => tokio::task::yield_now().await,
                        _ => {}
                    }
                }
            })
        };
        let mut seen = 0;
        // Leave and come back a few times while the publisher runs.
        for _ in 0..rng.usize(1..4) {
            let cut = rng.u64(seen..=total);
            expect_ids(&mut subscription, seen + 1, cut).await;
            seen = cut;
            drop(subscription);
            if rng.bool() {
                tokio::task::yield_now().await;
            }
            subscription = feed.subscribe("t", Some(&seen.to_string())).await.unwrap();
            assert!(!subscription.missed_events(), "seed {seed}");
        }
        expect_ids(&mut subscription, seen + 1, total).await;
        publisher.await.unwrap();
        // Nothing after the last one, not even a duplicate.
        feed.publish("t", Event::new().data("end")).await.unwrap();
        let event = next(&mut subscription).await;
        assert_eq!(id_of(&event), total + 1, "seed {seed}");
    }
    println!("{rounds} rounds");
}

#[tokio::test]
async fn an_id_no_longer_in_the_history_gets_the_missed_events_event() {
    let feed = Broadcast::builder().history(5).build();
    for n in 1..=10 {
        feed.publish("t", Event::new().data(n.to_string()))
            .await
            .unwrap();
    }
    // 6..=10 are retained.
    let mut old = feed.subscribe("t", Some("2")).await.unwrap();
    assert!(old.missed_events());
    assert_eq!(text(&next(&mut old).await), "event: missed\ndata:\n\n");
    expect_ids(&mut old, 6, 10).await;

    // The id just before the oldest retained: nothing was missed.
    let mut edge = feed.subscribe("t", Some("5")).await.unwrap();
    assert!(!edge.missed_events());
    expect_ids(&mut edge, 6, 10).await;

    // Unknown ids: from the future (a restart), or not ours at all.
    for id in ["11", "abc", "", "07"] {
        let mut unknown = feed.subscribe("t", Some(id)).await.unwrap();
        assert!(unknown.missed_events(), "{id:?}");
        assert_eq!(text(&next(&mut unknown).await), "event: missed\ndata:\n\n");
        expect_ids(&mut unknown, 6, 10).await;
    }

    // The newest id: nothing to replay, nothing missed; then live.
    let mut current = feed.subscribe("t", Some("10")).await.unwrap();
    // No last id: live only.
    let mut live = feed.subscribe("t", None).await.unwrap();
    assert!(!current.missed_events() && !live.missed_events());
    feed.publish("t", Event::new().data("11")).await.unwrap();
    expect_ids(&mut current, 11, 11).await;
    expect_ids(&mut live, 11, 11).await;
    for subscription in [&mut old, &mut edge] {
        expect_ids(subscription, 11, 11).await;
    }
    assert_eq!(feed.stats().missed_resumes(), 5);
}

#[tokio::test]
async fn the_missed_events_event_is_configurable() {
    let feed = Broadcast::builder()
        .history(1)
        .missed_event(Event::new().event("reset").data("reload the page"))
        .build();
    feed.publish("t", Event::new().data("1")).await.unwrap();
    feed.publish("t", Event::new().data("2")).await.unwrap();
    let mut subscription = feed.subscribe("t", Some("0")).await.unwrap();
    assert_eq!(
        text(&next(&mut subscription).await),
        "event: reset\ndata: reload the page\n\n"
    );
    expect_ids(&mut subscription, 2, 2).await;

    let refused = Broadcast::builder().try_missed_event(Event::new().id(3).data("x"));
    assert!(matches!(refused, Err(BroadcastError::IdNotAllowed)));
}

#[tokio::test]
async fn events_older_than_the_maximum_age_are_not_history() {
    let feed = Broadcast::builder().max_age(Duration::from_secs(1)).build();
    feed.publish("t", Event::new().data("1")).await.unwrap();
    feed.publish("t", Event::new().data("2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    feed.publish("t", Event::new().data("3")).await.unwrap();
    let mut subscription = feed.subscribe("t", Some("1")).await.unwrap();
    assert!(subscription.missed_events());
    assert_eq!(
        text(&next(&mut subscription).await),
        "event: missed\ndata:\n\n"
    );
    expect_ids(&mut subscription, 3, 3).await;
}

#[tokio::test]
async fn publishing_refuses_an_id_of_its_own_and_invalid_events() {
    let feed = Broadcast::new();
    let err = feed
        .publish("t", Event::new().id("mine").data("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BroadcastError::IdNotAllowed), "{err}");
    let err = feed
        .publish("t", Event::new().event("a\nid: 7").data("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BroadcastError::InvalidEvent(_)), "{err}");
    assert!(!err.is_backend());
    // Nothing was published, and no id was used up.
    assert_eq!(feed.stats().published(), 0);
    let id = feed
        .publish("t", Event::new().event("ok").data("x"))
        .await
        .unwrap();
    assert_eq!(id, "1");
}

#[tokio::test]
async fn a_stalled_subscriber_is_disconnected_and_memory_stays_bounded() {
    const EVENTS: usize = 10_000;
    const SIZE: usize = 4096;
    let feed = Broadcast::builder().history(100).buffer(64).build();
    let mut stalled = feed.subscribe("t", None).await.unwrap();
    let mut reader = feed.subscribe("t", None).await.unwrap();
    let payload = "x".repeat(SIZE);

    let before = held_by_this_thread();
    let mut peak = 0;
    for _ in 0..EVENTS {
        feed.publish("t", Event::new().data(&payload))
            .await
            .unwrap();
        next(&mut reader).await;
        peak = peak.max(held_by_this_thread() - before);
    }
    // 40 MB went through. What stays is the history and one shared buffer,
    // at most 100 + 64 events (each with up to as much spare capacity as the
    // event builder left it); a stalled subscriber holding every event would
    // make this grow to 40 MB.
    let bound = 2 * (100 + 64) * (SIZE + 64) + 64 * 1024;
    println!("memory grew by at most {peak} bytes while {EVENTS} events went through");
    assert!(
        peak < bound as isize,
        "memory grew by {peak} bytes (bound {bound})"
    );

    // The stalled subscriber ends instead of resuming with a gap.
    let end = tokio::time::timeout(Duration::from_secs(10), stalled.next())
        .await
        .unwrap();
    assert!(end.is_none(), "a lagging subscriber must end");
    let stats = feed.stats();
    assert_eq!(stats.slow_disconnects(), 1);
    assert_eq!(stats.subscribers(), 2);
    drop(stalled);
    assert_eq!(feed.stats().subscribers(), 1);

    // The others go on.
    feed.publish("t", Event::new().data("after")).await.unwrap();
    assert_eq!(
        text(&next(&mut reader).await),
        format!("data: after\nid: {}\n\n", EVENTS + 1)
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let feed = Broadcast::builder().history(16).buffer(16).build();
    let addr = serve(app(feed.clone())).await;
    let mut body = fetch(addr, "/events/t").await.into_body();
    feed.publish("t", Event::new().data("1")).await.unwrap();
    assert_eq!(read_until(&mut body, "\n\n").await, wire(1));

    // The client reads nothing while far more than the socket buffers hold
    // is published.
    let payload = "y".repeat(4096);
    for n in 0..10_000 {
        feed.publish("t", Event::new().data(&payload))
            .await
            .unwrap();
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // What the server had written still arrives, then the end of the body
    // (the client reconnects with its last id and resumes from the history).
    let rest = read_to_end(body).await;
    assert!(
        !rest.contains("id: 10001\n"),
        "a stalled client must not get the whole stream"
    );
    assert_eq!(feed.stats().slow_disconnects(), 1);
    // The server drops the subscription with the body.
    let deadline = Instant::now() + Duration::from_secs(10);
    while feed.stats().subscribers() > 0 {
        assert!(
            Instant::now() < deadline,
            "the subscription was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
