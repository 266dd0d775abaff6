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
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn held_change(delta: isize) {
    let _ = HELD.try_with(|held| held.set(held.get() + delta));
    if delta > 0 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

/// Allocations (and growing reallocations) made by this thread so far.
fn allocations_by_this_thread() -> usize {
    ALLOCATIONS.with(Cell::get)
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
fn id_of(event: &EncodedEvent) -> &str {
    text(event)
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no id in {:?}", text(event)))
}

/// The value of the event's `data` line, a number in these tests.
fn data_of(event: &EncodedEvent) -> u64 {
    text(event)
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data in {:?}", text(event)))
        .parse()
        .unwrap()
}

async fn next(subscription: &mut Subscription) -> EncodedEvent {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("no event within 10 s")
        .expect("the subscription ended")
}

/// The ids the channel gave, `ids[n]` for the event with data `n`.
#[derive(Default)]
struct Ids(Vec<String>);

impl Ids {
    /// Publishes `Event::new().data(n)` for each `n` in `range` (which must
    /// continue where the last one stopped), keeping the ids.
    async fn publish(
        &mut self,
        feed: &Broadcast,
        topic: &str,
        range: std::ops::RangeInclusive<u64>,
    ) {
        for n in range {
            let id = feed
                .publish(topic, Event::new().data(n.to_string()))
                .await
                .unwrap();
            if self.0.is_empty() {
                self.0.push(String::new());
            }
            assert_eq!(self.0.len() as u64, n, "published in order");
            self.0.push(id);
        }
    }

    fn id(&self, n: u64) -> &str {
        &self.0[n as usize]
    }

    /// What the channel sends for event `n`.
    fn wire(&self, n: u64) -> String {
        format!("data: {n}\nid: {}\n\n", self.id(n))
    }

    fn wires(&self, range: std::ops::RangeInclusive<u64>) -> String {
        range.map(|n| self.wire(n)).collect()
    }
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
            let mut ids = Ids::default();
            for n in 1..=EVENTS {
                ids.publish(&feed, "news", n..=n).await;
                if n % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        })
    };
    let ids = publisher.await.unwrap();
    let mut first: Option<Vec<EncodedEvent>> = None;
    for task in tasks {
        let received = task.await.unwrap();
        let texts: Vec<&str> = received.iter().map(text).collect();
        let expected: Vec<String> = (1..=EVENTS).map(|n| ids.wire(n)).collect();
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

/// The fan-out allocates per publish (the event, its id, the backend
/// call), never per subscriber: a delivery is one receive from the topic's
/// shared buffer.
#[tokio::test]
async fn a_delivery_allocates_nothing() {
    const SUBSCRIBERS: usize = 500;
    let feed = Broadcast::new();
    let mut subscriptions = Vec::new();
    for _ in 0..SUBSCRIBERS {
        subscriptions.push(feed.subscribe("ticks", None).await.unwrap());
    }
    // Warm-up: every subscriber's first delivery sets up its own state.
    for round in 0..2 {
        feed.publish("ticks", Event::new().data(round.to_string()))
            .await
            .unwrap();
        for subscription in &mut subscriptions {
            next(subscription).await;
        }
    }
    let before = allocations_by_this_thread();
    const EVENTS: usize = 10;
    for n in 0..EVENTS {
        feed.publish("ticks", Event::new().data(n.to_string()))
            .await
            .unwrap();
        for subscription in &mut subscriptions {
            next(subscription).await;
        }
    }
    let per_event = (allocations_by_this_thread() - before) / EVENTS;
    println!("{per_event} allocations per event published to {SUBSCRIBERS} subscribers");
    assert!(
        per_event < SUBSCRIBERS / 10,
        "{per_event} allocations per event for {SUBSCRIBERS} deliveries"
    );
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
    let mut ids = Ids::default();
    ids.publish(&feed, "news", 1..=50).await;
    let expected = ids.wires(1..=50);
    for body in &mut bodies {
        assert_eq!(read_until(body, &ids.wire(50)).await, expected);
    }
    // Other topics are other streams.
    feed.publish("sports", Event::new().data("goal"))
        .await
        .unwrap();
    ids.publish(&feed, "news", 51..=51).await;
    for body in &mut bodies {
        assert_eq!(read_until(body, "\n\n").await, ids.wire(51));
    }
}

#[tokio::test]
async fn last_event_id_over_http_resumes_after_it() {
    let feed = Broadcast::new();
    let addr = serve(app(feed.clone())).await;
    let mut first = fetch(addr, "/events/news").await.into_body();
    let mut ids = Ids::default();
    ids.publish(&feed, "news", 1..=5).await;
    read_until(&mut first, &ids.wire(5)).await;
    drop(first);
    // Published while the client was away.
    ids.publish(&feed, "news", 6..=8).await;
    let mut resumed = fetch_resuming(addr, "/events/news", ids.id(5))
        .await
        .into_body();
    assert_eq!(
        read_until(&mut resumed, &ids.wire(8)).await,
        ids.wires(6..=8)
    );
    ids.publish(&feed, "news", 9..=9).await;
    assert_eq!(read_until(&mut resumed, "\n\n").await, ids.wire(9));

    // An id the channel never gave: the missed-events event, then the history.
    let mut lost = fetch_resuming(addr, "/events/news", "not-an-id")
        .await
        .into_body();
    let expected = format!("event: missed\ndata:\n\n{}", ids.wires(1..=9));
    assert_eq!(read_until(&mut lost, &ids.wire(9)).await, expected);
}

/// Reads `subscription` until event `until`, asserting that it yields
/// exactly events `from..=until`, with the ids they were published with.
async fn expect_events(subscription: &mut Subscription, ids: &Ids, from: u64, until: u64) {
    for expected in from..=until {
        let event = next(subscription).await;
        assert_eq!(text(&event), ids.wire(expected));
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
        // Event 0 before anything: the first resume point.
        let zero = feed.publish("t", Event::new().data("0")).await.unwrap();
        let mut subscription = feed.subscribe("t", Some(&zero)).await.unwrap();
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
        // The id of the last event seen, as a client keeps it.
        let mut last_id = zero;
        let expect = |event: EncodedEvent, n: u64, last_id: &mut String| {
            assert_eq!(data_of(&event), n, "seed {seed}");
            let id = id_of(&event);
            assert!(
                id.len() <= 64 && id != last_id.as_str(),
                "seed {seed}: {id}"
            );
            *last_id = id.to_owned();
        };
        // Leave and come back a few times while the publisher runs.
        for _ in 0..rng.usize(1..4) {
            let cut = rng.u64(seen..=total);
            for n in seen + 1..=cut {
                expect(next(&mut subscription).await, n, &mut last_id);
            }
            seen = cut;
            drop(subscription);
            if rng.bool() {
                tokio::task::yield_now().await;
            }
            subscription = feed.subscribe("t", Some(&last_id)).await.unwrap();
            assert!(!subscription.missed_events(), "seed {seed}");
        }
        for n in seen + 1..=total {
            expect(next(&mut subscription).await, n, &mut last_id);
        }
        publisher.await.unwrap();
        // Nothing after the last one, not even a duplicate.
        feed.publish("t", Event::new().data(u64::MAX.to_string()))
            .await
            .unwrap();
        let event = next(&mut subscription).await;
        assert_eq!(data_of(&event), u64::MAX, "seed {seed}");
    }
    println!("{rounds} rounds");
}

#[tokio::test]
async fn an_id_no_longer_in_the_history_gets_the_missed_events_event() {
    let feed = Broadcast::builder().history(5).build();
    let mut ids = Ids::default();
    ids.publish(&feed, "t", 1..=10).await;
    // 6..=10 are retained.
    let mut old = feed.subscribe("t", Some(ids.id(2))).await.unwrap();
    assert!(old.missed_events());
    assert_eq!(text(&next(&mut old).await), "event: missed\ndata:\n\n");
    expect_events(&mut old, &ids, 6, 10).await;

    // The id just before the oldest retained: nothing was missed.
    let mut edge = feed.subscribe("t", Some(ids.id(5))).await.unwrap();
    assert!(!edge.missed_events());
    expect_events(&mut edge, &ids, 6, 10).await;

    // Unknown ids: not ours at all (the conformance suite tries many more).
    for id in ["11", "abc", "", "07"] {
        let mut unknown = feed.subscribe("t", Some(id)).await.unwrap();
        assert!(unknown.missed_events(), "{id:?}");
        assert_eq!(text(&next(&mut unknown).await), "event: missed\ndata:\n\n");
        expect_events(&mut unknown, &ids, 6, 10).await;
    }

    // The newest id: nothing to replay, nothing missed; then live.
    let mut current = feed.subscribe("t", Some(ids.id(10))).await.unwrap();
    // No last id: live only.
    let mut live = feed.subscribe("t", None).await.unwrap();
    assert!(!current.missed_events() && !live.missed_events());
    ids.publish(&feed, "t", 11..=11).await;
    expect_events(&mut current, &ids, 11, 11).await;
    expect_events(&mut live, &ids, 11, 11).await;
    for subscription in [&mut old, &mut edge] {
        expect_events(subscription, &ids, 11, 11).await;
    }
    assert_eq!(feed.stats().missed_resumes(), 5);
}

#[tokio::test]
async fn the_missed_events_event_is_configurable() {
    let feed = Broadcast::builder()
        .history(1)
        .missed_event(Event::new().event("reset").data("reload the page"))
        .build();
    let mut ids = Ids::default();
    ids.publish(&feed, "t", 1..=2).await;
    let mut subscription = feed.subscribe("t", Some(ids.id(0))).await.unwrap();
    assert_eq!(
        text(&next(&mut subscription).await),
        "event: reset\ndata: reload the page\n\n"
    );
    expect_events(&mut subscription, &ids, 2, 2).await;

    let refused = Broadcast::builder().try_missed_event(Event::new().id(3).data("x"));
    assert!(matches!(refused, Err(BroadcastError::IdNotAllowed)));
}

#[tokio::test]
async fn events_older_than_the_maximum_age_are_not_history() {
    let feed = Broadcast::builder().max_age(Duration::from_secs(1)).build();
    let mut ids = Ids::default();
    ids.publish(&feed, "t", 1..=2).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ids.publish(&feed, "t", 3..=3).await;
    let mut subscription = feed.subscribe("t", Some(ids.id(1))).await.unwrap();
    assert!(subscription.missed_events());
    assert_eq!(
        text(&next(&mut subscription).await),
        "event: missed\ndata:\n\n"
    );
    expect_events(&mut subscription, &ids, 3, 3).await;
}

#[tokio::test]
async fn publishing_refuses_invalid_ids_and_invalid_events() {
    let feed = Broadcast::new();
    let err = feed
        .publish("t", Event::new().id("two words").data("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BroadcastError::InvalidId(_)), "{err}");
    assert!(!err.is_backend());
    let err = feed
        .publish("t", Event::new().event("a\nid: 7").data("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BroadcastError::InvalidEvent(_)), "{err}");
    assert!(!err.is_backend());
    // Nothing was published.
    assert_eq!(feed.stats().published(), 0);
    feed.publish("t", Event::new().event("ok").data("x"))
        .await
        .unwrap();
    assert_eq!(feed.stats().published(), 1);
}

#[tokio::test]
async fn a_publisher_id_is_deduplicated_while_its_event_is_in_the_history() {
    let feed = Broadcast::builder().history(3).build();
    let mut live = feed.subscribe("t", None).await.unwrap();
    feed.publish("t", Event::new().id("m-1").data("1"))
        .await
        .unwrap();
    let mut ids = Ids::default();
    ids.publish(&feed, "t", 1..=2).await;
    // Still retained: a retry is not stored.
    feed.publish("t", Event::new().id("m-1").data("1"))
        .await
        .unwrap();
    assert_eq!(feed.stats().published(), 3);
    ids.publish(&feed, "t", 3..=3).await;
    // Dropped from the history: the id is free again, and a resume from it
    // says that events were missed.
    let mut resumed = feed.subscribe("t", Some("m-1")).await.unwrap();
    assert!(resumed.missed_events());
    assert_eq!(text(&next(&mut resumed).await), "event: missed\ndata:\n\n");
    expect_events(&mut resumed, &ids, 1, 3).await;
    feed.publish("t", Event::new().id("m-1").data("again"))
        .await
        .unwrap();
    assert_eq!(feed.stats().published(), 5);
    assert_eq!(text(&next(&mut live).await), "data: 1\nid: m-1\n\n");
    expect_events(&mut live, &ids, 1, 3).await;
    assert_eq!(text(&next(&mut live).await), "data: again\nid: m-1\n\n");
}

#[tokio::test]
async fn a_publisher_id_over_http_is_the_events_id_and_resumes() {
    let feed = Broadcast::new();
    let addr = serve(app(feed.clone())).await;
    let mut first = fetch(addr, "/events/orders").await.into_body();
    for _ in 0..2 {
        let id = feed
            .publish("orders", Event::new().event("order").id("A-17").data("x"))
            .await
            .unwrap();
        assert_eq!(id, "A-17");
    }
    let mut ids = Ids::default();
    ids.publish(&feed, "orders", 1..=1).await;
    assert_eq!(
        read_until(&mut first, &ids.wire(1)).await,
        format!("event: order\ndata: x\nid: A-17\n\n{}", ids.wire(1))
    );
    let mut resumed = fetch_resuming(addr, "/events/orders", "A-17")
        .await
        .into_body();
    assert_eq!(read_until(&mut resumed, &ids.wire(1)).await, ids.wire(1));
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
    let after = feed.publish("t", Event::new().data("after")).await.unwrap();
    assert_eq!(
        text(&next(&mut reader).await),
        format!("data: after\nid: {after}\n\n")
    );
}

#[tokio::test]
async fn a_topic_holds_a_live_buffer_only_while_it_has_subscribers() {
    const TOPICS: usize = 2000;
    // The default buffer: 1024 slots, some 64 KB a topic when allocated.
    let feed = Broadcast::builder().history(1).build();
    let names: Vec<String> = (0..TOPICS).map(|n| format!("user-{n}")).collect();
    feed.publish("warm-up", Event::new().data("x"))
        .await
        .unwrap();
    let before = held_by_this_thread();
    for name in &names {
        feed.publish(name, Event::new().data("x")).await.unwrap();
    }
    let per_topic = (held_by_this_thread() - before) / TOPICS as isize;
    println!("a topic that published once and has no subscriber holds {per_topic} bytes");
    assert!(per_topic < 2048, "{per_topic} bytes a topic");

    // A subscriber allocates it; when the last one leaves, it goes.
    let before = held_by_this_thread();
    let subscriptions: Vec<Subscription> = {
        let mut subscriptions = Vec::new();
        for name in &names[..100] {
            subscriptions.push(feed.subscribe(name, None).await.unwrap());
        }
        subscriptions
    };
    let with_subscribers = (held_by_this_thread() - before) / 100;
    println!("with a subscriber: {with_subscribers} more bytes");
    assert!(with_subscribers > 16 * 1024, "{with_subscribers}");
    drop(subscriptions);
    let after = (held_by_this_thread() - before) / 100;
    assert!(
        after < 512,
        "{after} bytes a topic after its subscriber left"
    );
    // And the topics go on: a new subscriber gets the next event.
    let mut again = feed.subscribe(&names[0], None).await.unwrap();
    let id = feed
        .publish(&names[0], Event::new().data("y"))
        .await
        .unwrap();
    assert_eq!(
        text(&next(&mut again).await),
        format!("data: y\nid: {id}\n\n")
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let feed = Broadcast::builder().history(16).buffer(16).build();
    let addr = serve(app(feed.clone())).await;
    let mut body = fetch(addr, "/events/t").await.into_body();
    let mut ids = Ids::default();
    ids.publish(&feed, "t", 1..=1).await;
    assert_eq!(read_until(&mut body, "\n\n").await, ids.wire(1));

    // The client reads nothing while far more than the socket buffers hold
    // is published.
    let payload = "y".repeat(4096);
    let mut newest = String::new();
    for n in 0..10_000 {
        newest = feed
            .publish("t", Event::new().data(&payload))
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
        !rest.contains(&format!("id: {newest}\n")),
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

#[cfg(feature = "test-util")]
mod conformance {
    use axum_sse::broadcast::{conformance, Broadcast};

    #[tokio::test]
    async fn foreign_ids_get_the_missed_events_event() {
        conformance::foreign_ids_get_the_missed_events_event(&Broadcast::new()).await;
    }

    #[tokio::test]
    async fn an_id_from_before_a_restart_gets_the_missed_events_event() {
        // A restart of the process is a new `Broadcast`.
        let before = Broadcast::new();
        conformance::a_lost_history_gets_the_missed_events_event(&before, async {
            Broadcast::new()
        })
        .await;
    }

    #[tokio::test]
    async fn publisher_ids_are_stored_once_and_resume() {
        conformance::publisher_ids_are_stored_once_and_resume(&Broadcast::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_publishes_store_once() {
        for _ in 0..20 {
            let feed = Broadcast::new();
            conformance::concurrent_identical_publishes_store_once(&feed, &feed.clone()).await;
            assert_eq!(feed.stats().published(), 51);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resuming_under_concurrent_publishing_has_no_gap_and_no_duplicate() {
        let seed = fastrand::u64(..);
        println!("seed {seed}");
        let feed = Broadcast::new();
        conformance::resuming_under_concurrent_publishing(
            &feed,
            || async { feed.clone() },
            200,
            seed,
        )
        .await;
    }
}
