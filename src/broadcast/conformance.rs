//! A conformance suite for broadcast backends (feature `test-util`).
//!
//! Every backend must pass these checks; the crate runs them against the
//! in-memory backend, against a real Redis, and against a backend written
//! only through the public [`Backend`](super::Backend) trait (for your own
//! backend, see the second example below). Each function panics (as a
//! test assertion does) when the backend breaks the contract, and names the
//! case and, for random rounds, the seed. Every check uses topics with a
//! random name, so several may run at once against one shared store.
//!
//! ```
//! use axum_sse::broadcast::{conformance, Broadcast};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let feed = Broadcast::new();
//! conformance::foreign_ids_get_the_missed_events_event(&feed).await;
//! conformance::publisher_ids_are_stored_once_and_resume(&feed).await;
//! conformance::concurrent_identical_publishes_store_once(&feed, &feed.clone()).await;
//! // A restart of the in-memory backend is a new `Broadcast`.
//! conformance::a_lost_history_gets_the_missed_events_event(&feed, async { Broadcast::new() })
//!     .await;
//! // One process: every subscription on the same instance.
//! conformance::resuming_under_concurrent_publishing(&feed, || async { feed.clone() }, 3, 7)
//!     .await;
//! # }
//! ```

//!
//! For a backend of your own, build the [`Broadcast`] with
//! [`BroadcastBuilder::backend`](super::BroadcastBuilder::backend) and run
//! every check from your tests; the restart check needs a way to lose the
//! store's histories:
//!
//! ```no_run
//! # use axum_sse::broadcast::{
//! #     Appended, Backend, BackendFuture, BroadcastError, Entry, Generation, LiveFeed,
//! #     Position, Record, ResumePoint, Retention,
//! # };
//! # struct MyBackend;
//! # impl MyBackend {
//! #     async fn connect() -> Self { MyBackend }
//! #     async fn wipe() {}
//! # }
//! # impl Backend for MyBackend {
//! #     fn append<'a>(&'a self, _: &'a str, _: Record, _: &'a Retention)
//! #         -> BackendFuture<'a, Result<Appended, BroadcastError>> { unimplemented!() }
//! #     fn newest<'a>(&'a self, _: &'a str)
//! #         -> BackendFuture<'a, Result<Option<(Position, Generation)>, BroadcastError>> { unimplemented!() }
//! #     fn locate<'a>(&'a self, _: &'a str, _: ResumePoint<'a>, _: &'a Retention)
//! #         -> BackendFuture<'a, Result<Option<Position>, BroadcastError>> { unimplemented!() }
//! #     fn read<'a>(&'a self, _: &'a str, _: Position, _: Option<Position>, _: usize, _: &'a Retention)
//! #         -> BackendFuture<'a, Result<Vec<Entry>, BroadcastError>> { unimplemented!() }
//! #     fn watch(&self, _: &str, _: LiveFeed) {}
//! # }
//! use axum_sse::broadcast::{conformance, Broadcast};
//!
//! // In your tests, as `#[tokio::test]`.
//! async fn my_backend_conforms() {
//!     let feed = Broadcast::builder().backend(MyBackend::connect().await);
//!     let other = Broadcast::builder().backend(MyBackend::connect().await);
//!     conformance::foreign_ids_get_the_missed_events_event(&feed).await;
//!     conformance::publisher_ids_are_stored_once_and_resume(&feed).await;
//!     // Two instances over one store.
//!     conformance::concurrent_identical_publishes_store_once(&feed, &other).await;
//!     conformance::resuming_under_concurrent_publishing(
//!         &feed,
//!         || async { Broadcast::builder().backend(MyBackend::connect().await) },
//!         20,
//!         fastrand::u64(..),
//!     )
//!     .await;
//!     conformance::a_lost_history_gets_the_missed_events_event(&feed, async {
//!         MyBackend::wipe().await;
//!         feed.clone()
//!     })
//!     .await;
//! }
//! ```
//!
//! `tests/broadcast_backend.rs` in the crate's repository is a complete,
//! naive backend (a `Mutex<Vec<_>>` per topic) that runs the suite this way.

use std::{future::Future, time::Duration};

use futures_util::StreamExt;

use crate::{EncodedEvent, Event};

use super::{Broadcast, Subscription};

/// How long a check waits for one event before it fails.
const WAIT: Duration = Duration::from_secs(20);

fn topic(name: &str) -> String {
    format!("conformance-{:016x}-{name}", fastrand::u64(..))
}

fn text(event: &EncodedEvent) -> &str {
    std::str::from_utf8(event.as_bytes()).expect("events are UTF-8")
}

/// The `id` field of an event the channel sent.
fn id_of(event: &EncodedEvent) -> &str {
    text(event)
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("an event without an id: {:?}", text(event)))
}

async fn next(subscription: &mut Subscription, case: &str) -> EncodedEvent {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("{case}: no event within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{case}: the subscription ended"))
}

/// Publishes `data` on `topic`; the id the channel gave.
async fn publish(feed: &Broadcast, topic: &str, data: &str) -> String {
    feed.publish(topic, Event::new().data(data))
        .await
        .unwrap_or_else(|err| panic!("publishing on {topic}: {err}"))
}

/// Subscribes from `id` and asserts the missed-events signal, then exactly
/// `retained`, in order.
async fn expect_missed_then(
    feed: &Broadcast,
    topic: &str,
    id: &str,
    missed: &EncodedEvent,
    retained: &[EncodedEvent],
    case: &str,
) {
    let mut subscription = feed
        .subscribe(topic, Some(id))
        .await
        .unwrap_or_else(|err| panic!("{case}: subscribing: {err}"));
    assert!(
        subscription.missed_events(),
        "{case}: an id of another history must report missed events"
    );
    assert_eq!(
        text(&next(&mut subscription, case).await),
        text(missed),
        "{case}: the missed-events event comes first"
    );
    for expected in retained {
        assert_eq!(
            text(&next(&mut subscription, case).await),
            text(expected),
            "{case}: then everything retained, in order"
        );
    }
}

/// The missed-events event of `feed`, as a resume from a foreign id shows
/// it (the backend's own setting).
async fn missed_event_of(feed: &Broadcast) -> EncodedEvent {
    let topic = topic("missed-probe");
    let mut subscription = feed
        .subscribe(&topic, Some("probe"))
        .await
        .expect("subscribing");
    assert!(subscription.missed_events(), "an id never handed out");
    next(&mut subscription, "missed-events probe").await
}

/// Ids that belong to another history, or to none, are never taken for a
/// position in this one: an id of topic `a` on topic `b`; garbled, forged,
/// empty and very long values. Each gets the missed-events event, then all
/// that topic `b` retains (the backend must retain at least 4 events), then
/// live events.
pub async fn foreign_ids_get_the_missed_events_event(feed: &Broadcast) {
    let (a, b) = (topic("a"), topic("b"));
    let missed = missed_event_of(feed).await;
    let mut live = feed.subscribe(&b, None).await.expect("subscribing");
    let mut a_ids = Vec::new();
    for n in 1..=3 {
        a_ids.push(publish(feed, &a, &n.to_string()).await);
    }
    let mut retained = Vec::new();
    for n in 1..=4 {
        publish(feed, &b, &n.to_string()).await;
        retained.push(next(&mut live, "live on b").await);
    }
    let b_ids: Vec<String> = retained.iter().map(|e| id_of(e).to_owned()).collect();
    for id in a_ids.iter().chain(&b_ids) {
        assert!(id.len() <= 64, "ids are at most 64 bytes: {id:?}");
    }
    // A resume from b's second id replays 3 and 4: every variant below
    // that did the same would be a silent partial replay.
    let second = &b_ids[1];
    let mut cases: Vec<(String, String)> = vec![
        ("an id of topic a on topic b".into(), a_ids[2].clone()),
        (
            "the first id of topic a on topic b".into(),
            a_ids[0].clone(),
        ),
        ("an empty id".into(), String::new()),
        ("a plain number".into(), "2".into()),
        ("a Redis-like stream id".into(), "1700000000000-0".into()),
        ("truncated".into(), second[..second.len() - 1].to_owned()),
        ("without its first byte".into(), second[1..].to_owned()),
        ("with a byte appended".into(), format!("{second}x")),
        ("with a digit appended".into(), format!("{second}7")),
        ("padded with a space".into(), format!(" {second}")),
        ("in upper case".into(), second.to_uppercase()),
        ("with a non-ASCII byte".into(), format!("{second}é")),
        ("a very long id".into(), second.repeat(2048)),
        (
            "a long run of digits after it".into(),
            format!("{second}{}", "9".repeat(10_000)),
        ),
    ];
    // Every byte of the id changed in turn: the generation forged, the
    // position garbled.
    for (i, byte) in second.bytes().enumerate() {
        let replacement = if byte == b'A' { 'B' } else { 'A' };
        let mut forged = second.clone();
        forged.replace_range(i..=i, &replacement.to_string());
        if forged != b_ids[0] && forged != b_ids[1] && forged != b_ids[2] && forged != b_ids[3] {
            cases.push((format!("byte {i} changed"), forged));
        }
    }
    for (case, id) in &cases {
        if b_ids.contains(id) {
            continue;
        }
        expect_missed_then(feed, &b, id, &missed, &retained, case).await;
    }
    // The genuine id still resumes exactly.
    let mut exact = feed.subscribe(&b, Some(second)).await.expect("subscribing");
    assert!(!exact.missed_events(), "the genuine id resumes exactly");
    for expected in &retained[2..] {
        assert_eq!(text(&next(&mut exact, "exact").await), text(expected));
    }
    publish(feed, &b, "5").await;
    let fifth = next(&mut live, "live on b").await;
    assert_eq!(text(&next(&mut exact, "exact, live").await), text(&fifth));
}

/// A client's id from a history that is gone (the in-memory process
/// restarted; the Redis stream was deleted, flushed or expired) gets the
/// missed-events event and then everything the new history holds, even when
/// the new history has as many events as the old one had and more.
///
/// `feed` publishes events 1–3 on a topic; then `restart` must lose that
/// history (for memory: a new [`Broadcast`]; for Redis: delete the keys or
/// restart Redis without persistence) and return the instance to use after;
/// that instance publishes 1–4, and the client resumes with the old id of 3.
pub async fn a_lost_history_gets_the_missed_events_event(
    feed: &Broadcast,
    restart: impl Future<Output = Broadcast>,
) {
    let topic = topic("restart");
    let mut old = Vec::new();
    for n in 1..=3 {
        old.push(publish(feed, &topic, &n.to_string()).await);
    }
    // A publisher id of the old history is as lost as the channel's ids.
    let publisher_id = format!("before-{:x}", fastrand::u64(..));
    let returned = feed
        .publish(&topic, Event::new().id(&publisher_id).data("4"))
        .await
        .expect("publishing with an id of its own");
    assert_eq!(returned, publisher_id);
    old.push(publisher_id);
    let after = restart.await;
    let missed = missed_event_of(&after).await;
    let mut live = after.subscribe(&topic, None).await.expect("subscribing");
    let mut retained = Vec::new();
    for n in 1..=4 {
        let id = publish(&after, &topic, &n.to_string()).await;
        assert!(
            !old.contains(&id),
            "an id of the old history was reused: {id}"
        );
        retained.push(next(&mut live, "live after the restart").await);
    }
    for (n, id) in old.iter().enumerate() {
        let case = format!("the id of event {} before the restart ({id})", n + 1);
        expect_missed_then(&after, &topic, id, &missed, &retained, &case).await;
    }
}

/// Subscribers leave and resume with their last id at random moments while
/// another task publishes: every event arrives, in order, once. `publisher`
/// publishes; each subscription (the first and every resume) is made on a
/// fresh instance from `instance` (for memory, return clones of `publisher`;
/// for Redis, new connections to the same store). `rounds` rounds, random
/// timing from `seed` (printed in every failure).
pub async fn resuming_under_concurrent_publishing<F, Fut>(
    publisher: &Broadcast,
    instance: F,
    rounds: usize,
    seed: u64,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Broadcast>,
{
    let mut rng = fastrand::Rng::with_seed(seed);
    for round in 1..=rounds {
        let topic = topic("resume");
        let zero = publish(publisher, &topic, "0").await;
        let total = rng.u64(20..150);
        let task = {
            let publisher = publisher.clone();
            let topic = topic.clone();
            let mut rng = fastrand::Rng::with_seed(rng.u64(..));
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 1..=total {
                    ids.push(publish(&publisher, &topic, &n.to_string()).await);
                    match rng.u8(..10) {
                        0 => tokio::time::sleep(Duration::from_micros(rng.u64(..1500))).await,
                        1..=3 => tokio::task::yield_now().await,
                        _ => {}
                    }
                }
                ids
            })
        };
        let case = format!("seed {seed}, round {round}");
        let mut seen = 0;
        let mut last_id = zero;
        let mut received = Vec::new();
        // Leave and come back a few times while the publisher runs.
        let legs = rng.usize(1..5);
        for leg in 1..=legs {
            if rng.bool() {
                tokio::time::sleep(Duration::from_micros(rng.u64(..2000))).await;
            }
            let feed = instance().await;
            let mut subscription = feed
                .subscribe(&topic, Some(&last_id))
                .await
                .unwrap_or_else(|err| panic!("{case}: subscribing: {err}"));
            assert!(
                !subscription.missed_events(),
                "{case}: resume from a known id"
            );
            let cut = if leg == legs {
                total
            } else {
                rng.u64(seen..=total)
            };
            while seen < cut {
                let event = next(&mut subscription, &case).await;
                let data = text(&event)
                    .lines()
                    .find_map(|line| line.strip_prefix("data: "))
                    .unwrap_or_default();
                seen += 1;
                assert_eq!(data, seen.to_string(), "{case}: no gap, no duplicate");
                last_id = id_of(&event).to_owned();
                received.push(last_id.clone());
            }
        }
        let ids = task.await.expect("the publisher");
        assert_eq!(received, ids, "{case}: the ids as published");
    }
}

/// Publishes `data` with the publisher's own `id` on `topic`; asserts that
/// the channel answers with that id.
async fn publish_with_id(feed: &Broadcast, topic: &str, id: &str, data: &str) {
    let returned = feed
        .publish(topic, Event::new().id(id).data(data))
        .await
        .unwrap_or_else(|err| panic!("publishing {id:?} on {topic}: {err}"));
    assert_eq!(returned, id, "publish returns the publisher's id");
}

/// Events published with an id of their own (publisher ids): delivered with
/// exactly that id, returned by `publish`, stored once however often the
/// same publish is retried while the event is in the history (the retry's
/// content is not looked at), usable as `Last-Event-ID` on the topic, and
/// foreign on any other topic. Ids the channel cannot take are refused with
/// [`BroadcastError::InvalidId`](super::BroadcastError::InvalidId), and
/// publish nothing. The backend must retain at least 5 events.
pub async fn publisher_ids_are_stored_once_and_resume(feed: &Broadcast) {
    let (a, b) = (topic("a"), topic("b"));
    let missed = missed_event_of(feed).await;
    let mut live = feed.subscribe(&a, None).await.expect("subscribing");
    let order = format!("order-{:x}", fastrand::u64(..));
    publish_with_id(feed, &a, &order, "first").await;
    // A retry (of a publish that timed out, say): not stored, not sent.
    publish_with_id(feed, &a, &order, "first").await;
    publish_with_id(feed, &a, &order, "a retry with other data").await;
    let channel_id = publish(feed, &a, "2").await;
    let longest = format!("{}{}", "~".repeat(63), "!");
    publish_with_id(feed, &a, &longest, "3").await;
    publish_with_id(feed, &a, &order, "first").await;
    let expected = [
        format!("data: first\nid: {order}\n\n"),
        format!("data: 2\nid: {channel_id}\n\n"),
        format!("data: 3\nid: {longest}\n\n"),
    ];
    for wire in &expected {
        assert_eq!(text(&next(&mut live, "live").await), wire, "delivered once");
    }
    let last = publish(feed, &a, "4").await;
    let fourth = format!("data: 4\nid: {last}\n\n");
    assert_eq!(
        text(&next(&mut live, "live").await),
        fourth,
        "no retry was delivered"
    );

    // Resume from a publisher id: exactly what came after it.
    let mut resumed = feed.subscribe(&a, Some(&order)).await.expect("subscribing");
    assert!(
        !resumed.missed_events(),
        "a retained publisher id resumes exactly"
    );
    for wire in expected[1..].iter().chain([&fourth]) {
        assert_eq!(
            text(&next(&mut resumed, "resume from a publisher id").await),
            wire
        );
    }
    let mut resumed = feed
        .subscribe(&a, Some(&longest))
        .await
        .expect("subscribing");
    assert!(!resumed.missed_events());
    assert_eq!(text(&next(&mut resumed, "resume").await), fourth);

    // A publisher id of topic a, one never published, or the channel's form
    // of one: foreign on b.
    let mut b_live = feed.subscribe(&b, None).await.expect("subscribing");
    publish_with_id(feed, &b, "b-1", "b1").await;
    let retained = [next(&mut b_live, "live on b").await];
    for (case, id) in [
        ("a publisher id of topic a on topic b", order.as_str()),
        ("a publisher id never published", "order-never"),
        ("the longest publisher id of a on b", longest.as_str()),
    ] {
        expect_missed_then(feed, &b, id, &missed, &retained, case).await;
    }
    // And b's own publisher id resumes on b.
    let mut on_b = feed.subscribe(&b, Some("b-1")).await.expect("subscribing");
    assert!(!on_b.missed_events());

    // Ids that cannot be publisher ids: refused, nothing published.
    let channel_form = feed
        .publish(&b, Event::new().data("b2"))
        .await
        .expect("publishing");
    let b2 = next(&mut b_live, "live on b").await;
    assert_eq!(text(&next(&mut on_b, "resume on b").await), text(&b2));
    for bad in [
        String::new(),
        "x".repeat(65),
        "with space".to_owned(),
        "caf\u{e9}".to_owned(),
        channel_form,
    ] {
        let err = feed
            .publish(&b, Event::new().id(&bad).data("refused"))
            .await
            .expect_err("an id that cannot be a publisher id");
        assert!(
            matches!(err, super::BroadcastError::InvalidId(_)),
            "{bad:?}: {err}"
        );
    }
    publish_with_id(feed, &b, "b-3", "b3").await;
    assert_eq!(
        text(&next(&mut b_live, "live on b").await),
        "data: b3\nid: b-3\n\n",
        "nothing refused was published"
    );
}

/// Two publishers publish the same events, each with the same publisher
/// id, at the same time (a retry racing the original, two instances
/// relaying one upstream): each event is stored and delivered once, in
/// order. `first` and `second` may be one instance or two instances of one
/// store.
pub async fn concurrent_identical_publishes_store_once(first: &Broadcast, second: &Broadcast) {
    const EVENTS: usize = 50;
    let topic = topic("race");
    let run = format!("{:x}", fastrand::u64(..));
    let mut live = first.subscribe(&topic, None).await.expect("subscribing");
    let tasks: Vec<_> = [first, second]
        .into_iter()
        .map(|feed| {
            let (feed, topic, run) = (feed.clone(), topic.clone(), run.clone());
            tokio::spawn(async move {
                for n in 0..EVENTS {
                    let id = format!("{run}-{n}");
                    publish_with_id(&feed, &topic, &id, &n.to_string()).await;
                    if fastrand::bool() {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a publisher");
    }
    for n in 0..EVENTS {
        assert_eq!(
            text(&next(&mut live, "concurrent publishes").await),
            format!("data: {n}\nid: {run}-{n}\n\n"),
            "each event once, in order"
        );
    }
    let end = publish(first, &topic, "end").await;
    assert_eq!(
        text(&next(&mut live, "after").await),
        format!("data: end\nid: {end}\n\n"),
        "nothing twice"
    );
}
