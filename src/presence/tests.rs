//! The in-memory backend: joins, leaves, listeners and what they leave
//! behind.

use futures_util::StreamExt;
use serde_json::json;

use super::*;

#[tokio::test(start_paused = true)]
async fn every_leave_forgets_the_topic_and_its_listeners() {
    let presence = Presence::new();
    let memory = presence.memory_backend().unwrap();
    let mut guards = Vec::new();
    for topic in 0..1000 {
        let events = presence.events(&format!("t{topic}"));
        for user in 0..3 {
            guards.push(
                presence
                    .join(&format!("t{topic}"), json!(user))
                    .await
                    .unwrap(),
            );
        }
        drop(events);
    }
    assert_eq!(memory.topics(), 1000);
    assert_eq!(
        memory.fanout.topics(),
        0,
        "listeners' channels outlived them"
    );
    assert_eq!(presence.list("t7").await.unwrap().len(), 3);
    guards.clear();
    assert_eq!(memory.topics(), 0, "topics without members stay");
    assert!(presence.list("t7").await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_listener_sees_joins_and_leaves_of_its_topic_only_in_order() {
    let presence = Presence::new();
    let mut room = presence.events("room");
    let mut all = presence.all_events();
    let a = presence
        .join_as("room", "a", json!({"n": 1}))
        .await
        .unwrap();
    let other = presence.join_as("hall", "b", json!(null)).await.unwrap();
    drop(a);
    drop(other);

    let seen: Vec<_> = room.by_ref().take(2).collect().await;
    assert_eq!(
        seen.iter()
            .map(|e| (e.topic(), e.subscriber(), e.change()))
            .collect::<Vec<_>>(),
        [
            ("room", "a", PresenceChange::Joined),
            ("room", "a", PresenceChange::Left)
        ]
    );
    assert_eq!(seen[1].descriptor(), &json!({"n": 1}));
    let every: Vec<_> = all.by_ref().take(4).collect().await;
    let topics: Vec<_> = every.iter().map(|e| (e.topic(), e.is_active())).collect();
    assert_eq!(
        topics,
        [
            ("room", true),
            ("hall", true),
            ("room", false),
            ("hall", false)
        ]
    );
    // Nothing more is queued for the room.
    assert!(futures_util::poll!(room.next()).is_pending());
}

#[tokio::test(start_paused = true)]
async fn a_listener_that_falls_behind_is_ended_and_says_so() {
    let presence = Presence::builder().buffer(4).build();
    let mut events = presence.events("room");
    for user in 0..10 {
        drop(presence.join("room", json!(user)).await.unwrap());
    }
    assert!(events.next().await.is_none());
    assert!(events.lagged());
    // A listener that kept up is not ended.
    let mut fresh = presence.events("room");
    drop(presence.join("room", json!("x")).await.unwrap());
    assert!(fresh.next().await.unwrap().is_active());
    assert!(!fresh.lagged());
}

#[tokio::test(start_paused = true)]
async fn too_long_input_is_refused_and_nothing_joins() {
    let presence = Presence::builder()
        .max_topic_len(8)
        .max_subscriber_len(4)
        .max_descriptor_len(10)
        .build();
    let mut all = presence.all_events();
    let refused = [
        (
            presence.join("123456789", json!(1)).await.unwrap_err(),
            "topic",
            9,
            8,
        ),
        (
            presence.join_as("t", "12345", json!(1)).await.unwrap_err(),
            "subscriber",
            5,
            4,
        ),
        (
            presence.join("t", json!("123456789")).await.unwrap_err(),
            "descriptor",
            11,
            10,
        ),
    ];
    for (err, what, len, max) in refused {
        assert!(
            matches!(err, PresenceError::TooLong { what: w, len: l, max: m } if w == what && l == len && m == max),
            "{err:?}"
        );
        assert!(!err.is_backend());
    }
    assert_eq!(
        presence.list("123456789").await.unwrap_err().to_string(),
        "the presence topic is 9 bytes long, more than 8"
    );
    assert!(presence.list("t").await.unwrap().is_empty());
    assert!(futures_util::poll!(all.next()).is_pending());
    // Listening to too long a topic holds nothing and ends at once.
    let mut events = presence.events(&"x".repeat(1_000_000));
    assert!(events.next().await.is_none());
    assert_eq!(presence.memory_backend().unwrap().fanout.topics(), 0);
    // At the limit is fine.
    let ok = presence
        .join_as("12345678", "1234", json!("1234567"))
        .await
        .unwrap();
    assert_eq!(ok.topic(), "12345678");
}

#[tokio::test(start_paused = true)]
async fn a_listener_keeps_working_after_the_presence_is_dropped() {
    let presence = Presence::new();
    let mut events = presence.events("room");
    let guard = presence.join("room", json!(1)).await.unwrap();
    drop(presence);
    assert!(events.next().await.unwrap().is_active());
    drop(guard);
    assert!(!events.next().await.unwrap().is_active());
    // The listener keeps the backend: quiet, not ended.
    assert!(futures_util::poll!(events.next()).is_pending());
}

#[test]
fn handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Presence>();
    send_sync::<PresenceGuard>();
    send_sync::<PresenceEvent>();
    send::<PresenceEvents>();
}
