//! Broadcast channels: one published event, any number of subscribers, and
//! a bounded history so a reconnecting client resumes with no gap.
//!
//! [`Broadcast`] keeps named topics. [`publish`](Broadcast::publish) gives
//! the event the topic's next id and encodes it once: every subscriber gets
//! the same bytes. [`subscribe`](Broadcast::subscribe) takes the client's
//! `Last-Event-ID` and returns a [`Subscription`], a stream of
//! [`EncodedEvent`](crate::EncodedEvent)s for [`SseBody`](crate::SseBody):
//!
//! ```
//! use axum::{extract::State, routing::{get, post}, Router};
//! use axum_sse::{broadcast::{Broadcast, BroadcastError, Subscription}, Event, LastEventId, SseBody, SseLayer};
//!
//! async fn events(
//!     State(feed): State<Broadcast>,
//!     last_event_id: Option<LastEventId>,
//! ) -> Result<SseBody<Subscription>, BroadcastError> {
//!     let last = last_event_id.as_ref().map(LastEventId::as_str);
//!     Ok(SseBody::new(feed.subscribe("news", last).await?))
//! }
//!
//! async fn publish(State(feed): State<Broadcast>, text: String) -> Result<String, BroadcastError> {
//!     feed.publish("news", Event::new().event("post").data(text)).await // the new id
//! }
//!
//! // A `BroadcastError` answers 503 when Redis is unreachable, 500 otherwise.
//! let app: Router = Router::new()
//!     .route("/events", get(events))
//!     .route("/publish", post(publish))
//!     .with_state(Broadcast::new())
//!     .layer(SseLayer::new());
//! ```
//!
//! # Guarantees
//!
//! - **Ids** are given by the channel and grow with every event of a topic:
//!   `1`, `2`, … in memory, Redis stream ids (`1700000000000-0`) with Redis.
//!   A published event must not have an `id` of its own
//!   ([`BroadcastError::IdNotAllowed`]); put yours in the data.
//! - **Resume**: a subscription with a last event id first replays every
//!   retained event after it, then goes on live, with no event missing and
//!   none twice, even while others publish.
//! - **Missed events**: an id that is no longer in the history (it was
//!   dropped, or is unknown: from another topic, or from before a restart of
//!   the in-memory backend) cannot be resumed from exactly. The subscription
//!   then starts with the missed-events event (default `event: missed` with
//!   empty data, see [`BroadcastBuilder::missed_event`]), replays everything
//!   retained, and goes on live; [`Subscription::missed_events`] says so.
//! - **No last event id**: live events only.
//! - **Slow subscribers**: a subscriber that falls further behind than its
//!   buffer ([`BroadcastBuilder::buffer`]) is disconnected (its stream ends)
//!   rather than holding more memory; the client reconnects and resumes from
//!   the history. [`BroadcastStatsSnapshot::slow_disconnects`] counts them.
//!
//! The history of a topic is bounded by count ([`BroadcastBuilder::history`])
//! and optionally by age ([`BroadcastBuilder::max_age`]). In memory, a topic
//! that has published stays (with its history) for the life of the
//! [`Broadcast`], so that its ids are never reused; a topic that only had
//! subscribers is forgotten when the last one leaves.
//!
//! ```
//! use axum_sse::{broadcast::Broadcast, Event};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let feed = Broadcast::builder().history(2).build();
//! for text in ["a", "b", "c"] {
//!     feed.publish("news", Event::new().data(text)).await?;
//! }
//!
//! // Resuming after "2" replays "3"; then the subscription goes on live.
//! let mut resumed = feed.subscribe("news", Some("2")).await?;
//! assert_eq!(resumed.next().await.unwrap().as_bytes(), b"data: c\nid: 3\n\n");
//!
//! // Resuming after "0" needs "1", which is gone: the missed-events event,
//! // then all the history.
//! let mut behind = feed.subscribe("news", Some("0")).await?;
//! assert!(behind.missed_events());
//! let first: Vec<_> = behind.by_ref().take(3).collect().await;
//! assert_eq!(first[0].as_bytes(), b"event: missed\ndata:\n\n");
//! assert_eq!(first[1].as_bytes(), b"data: b\nid: 2\n\n");
//!
//! feed.publish("news", Event::new().event("late").data("d")).await?;
//! assert_eq!(resumed.next().await.unwrap().as_bytes(), b"event: late\ndata: d\nid: 4\n\n");
//! assert_eq!(feed.stats().subscribers(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Several instances: Redis Streams
//!
//! With the `redis` feature, [`Broadcast::redis`] (or
//! [`BroadcastBuilder::connect_redis`]) keeps each topic in a Redis stream
//! (key `sse:{topic}`, see [`BroadcastBuilder::key_prefix`]), so every
//! instance connected to the same Redis shares the topics and their ids: a
//! client reconnects to any instance and resumes.
//!
//! - `publish` is an `XADD` with `MAXLEN ~ history`; the id is Redis's.
//! - Each instance runs one reader per topic with subscribers (a blocking
//!   `XREAD` on a connection of its own) and fans the events out in memory;
//!   resuming reads the history with `XRANGE`.
//! - When Redis is unreachable, `publish` and `subscribe` return
//!   [`BroadcastError::Backend`], open subscriptions stay open, and each
//!   reader reconnects with backoff and resumes after the last id it saw:
//!   nothing that Redis took is lost or repeated.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run() -> Result<(), axum_sse::broadcast::BroadcastError> {
//! use std::time::Duration;
//! use axum_sse::broadcast::Broadcast;
//!
//! let feed = Broadcast::builder()
//!     .history(10_000)
//!     .max_age(Duration::from_secs(3600))
//!     .key_prefix("myapp:feed:")
//!     .connect_redis("redis://127.0.0.1:6379/")
//!     .await?;
//! # drop(feed);
//! # Ok(())
//! # }
//! ```

mod builder;
mod channel;
mod error;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod stats;
mod subscription;
mod wire;

pub use self::{
    builder::BroadcastBuilder, channel::Broadcast, error::BroadcastError,
    stats::BroadcastStatsSnapshot, subscription::Subscription,
};
