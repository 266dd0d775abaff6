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
//! - **Ids** are given by the channel. An id is opaque: ASCII, at most
//!   64 bytes (13 to 32 in memory, 25 to 27 with Redis; a
//!   [`LastEventIdLayer::max_len`](crate::LastEventIdLayer::max_len) of 64
//!   accepts every one), and it names one event
//!   of one history: the topic, the generation of that topic's history and
//!   the position in it. A generation starts when a history does: when a
//!   topic is first used in a process (in memory), when a Redis stream is
//!   created (again, after it was deleted, flushed or expired). Clients
//!   compare and echo ids; nothing else about their text is promised.
//! - **Publisher ids**: an event published with an `id` of its own keeps
//!   it, verbatim, and is stored once: publishing the same id on the same
//!   topic again while that event is in the history (a retry after a
//!   timeout, from any instance) stores and sends nothing and returns the
//!   id. The dedupe window is the history: by count, by age, and with Redis
//!   until the stream expires or is deleted. A publisher id is 1 to 64 bytes
//!   of visible ASCII and not of the channel's form
//!   ([`BroadcastError::InvalidId`]); it resumes like the channel's ids
//!   while its event is retained, and is foreign everywhere else (another
//!   topic, another history, dropped from the history). Equal publisher ids
//!   are the publisher's word that they name the same event: after a
//!   restart, an id published again names the new copy, and a client that
//!   resumes from it continues after that copy. See [`Broadcast::publish`].
//! - **Resume**: a subscription with a last event id first replays every
//!   retained event after it, then goes on live, with no event missing and
//!   none twice, even while others publish.
//! - **Missed events**: an id that is no longer in the history (it was
//!   dropped: the channel's id of the last event dropped still resumes
//!   exactly, a publisher id of it does not), or names another history (another topic, a process before a
//!   restart of the in-memory backend, a Redis stream since deleted or
//!   flushed), or that the channel never handed out (garbled, forged, longer
//!   than 64 bytes), cannot be resumed from exactly, and is never taken for
//!   a position in this history. The subscription
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
//! subscribers is forgotten when the last one leaves. A topic's live buffer
//! ([`BroadcastBuilder::buffer`]) exists only while it has subscribers.
//!
//! ```
//! use axum_sse::{broadcast::Broadcast, Event};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let feed = Broadcast::builder().history(2).build();
//! let mut ids = Vec::new();
//! for text in ["a", "b", "c"] {
//!     ids.push(feed.publish("news", Event::new().data(text)).await?);
//! }
//!
//! // Resuming after "b" replays "c"; then the subscription goes on live.
//! let mut resumed = feed.subscribe("news", Some(&ids[1])).await?;
//! let c = format!("data: c\nid: {}\n\n", ids[2]);
//! assert_eq!(resumed.next().await.unwrap().as_bytes(), c.as_bytes());
//!
//! // An id of another history (here another process's) is the
//! // missed-events event, then all the history.
//! let other = Broadcast::new().publish("news", Event::new().data("x")).await?;
//! let mut behind = feed.subscribe("news", Some(&other)).await?;
//! assert!(behind.missed_events());
//! let first: Vec<_> = behind.by_ref().take(3).collect().await;
//! assert_eq!(first[0].as_bytes(), b"event: missed\ndata:\n\n");
//! assert!(first[1].as_bytes().starts_with(b"data: b\nid: "));
//!
//! let d = feed.publish("news", Event::new().event("late").data("d")).await?;
//! let late = format!("event: late\ndata: d\nid: {d}\n\n");
//! assert_eq!(resumed.next().await.unwrap().as_bytes(), late.as_bytes());
//! assert_eq!(feed.stats().subscribers(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Backends
//!
//! A [`Broadcast`] keeps its topics in a [`Backend`]: in memory
//! ([`BroadcastBuilder::build`]), in Redis Streams
//! ([`BroadcastBuilder::connect_redis`], below), or in a store of your own
//! ([`BroadcastBuilder::backend`]: NATS JetStream, PostgreSQL, anything with
//! an ordered log per topic). The backend stores, reads and watches; the
//! [`Broadcast`] does the rest the same way for all of them: ids, encoding
//! each event once, the fan-out to the subscribers of an instance through one
//! buffer per topic, the slow-subscriber policy, the missed-events event and
//! filling gaps between the replay and the live feed. [`Backend`] states the
//! contract a backend keeps, and the [`conformance`] suite (feature
//! `test-util`) checks it.
//!
//! # Several instances: Redis Streams
//!
//! With the `redis` feature, [`Broadcast::redis`] (or
//! [`BroadcastBuilder::connect_redis`]) keeps each topic in a Redis stream
//! (key `sse:{topic}`, see [`BroadcastBuilder::key_prefix`]), so every
//! instance connected to the same Redis shares the topics and their ids: a
//! client reconnects to any instance and resumes.
//!
//! - `publish` is one script: an `XADD` with `MAXLEN ~ history` in the
//!   stream's generation (kept in every entry; a new stream draws a new
//!   one), and a `PEXPIRE` that pushes back the expiry of an idle stream
//!   ([`BroadcastBuilder::idle_expiry`]). The position is Redis's stream id.
//!   A publisher id is kept in its entry and in a hash from id to stream id
//!   (`{prefix}\0ids\0{topic}`, with a list of the ids in publish order
//!   beside it), checked and written by the same script, trimmed as the
//!   stream is and expiring with it.
//! - Each instance holds two Redis connections whatever the number of
//!   topics: one for publishing and history reads, one for its reader. Every
//!   publish also appends the topic's key to a change stream
//!   (`{prefix}\0changes`, bounded); the reader blocks on that one stream
//!   and reads the new entries of the changed topics it serves with one
//!   `XREAD` over many streams, then fans them out in memory. A topic nobody
//!   subscribes to on an instance costs that instance no reads; each topic
//!   with subscribers holds a buffer of [`BroadcastBuilder::buffer`] slots.
//!   Resuming reads the history with `XRANGE`. The topic streams and the
//!   change stream must be on one Redis (not spread over a Redis Cluster).
//! - When Redis is unreachable, `publish` and `subscribe` return
//!   [`BroadcastError::Backend`], open subscriptions stay open (one that
//!   needs the history retries for some 10 seconds, then ends so its client
//!   reconnects), and each reader reconnects with backoff and resumes after
//!   the last id it saw: nothing that Redis kept is lost or repeated. A
//!   publish whose answer was lost may have been stored: retry it with a
//!   publisher id and it is stored once. When Redis lost a topic's stream
//!   (deleted, flushed, expired, restarted without persistence), its open
//!   subscriptions get the missed-events event before the first event of
//!   the new history: what the stream held and they had not read is gone.
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

mod backend;
mod builder;
mod channel;
#[cfg(feature = "test-util")]
pub mod conformance;
mod engine;
mod error;
mod memory;
mod position;
#[cfg(feature = "redis")]
mod redis;
mod stats;
mod subscription;
mod wire;

pub use self::{
    backend::{
        Appended, Backend, BackendFuture, Entry, LiveFeed, Position, Record, ResumePoint, Retention,
    },
    builder::BroadcastBuilder,
    channel::Broadcast,
    error::{BroadcastError, IdError},
    position::Generation,
    stats::BroadcastStatsSnapshot,
    subscription::Subscription,
};
