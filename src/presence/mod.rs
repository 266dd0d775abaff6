//! Presence: who follows a topic now, and a stream of joins and leaves.
//!
//! A handler [`join`](Presence::join)s a topic with a descriptor of its
//! choosing (a user id, a JSON profile) and holds the returned
//! [`PresenceGuard`] in the stream it serves: when the stream ends, for any
//! reason (the client left, the server shut down, an error), the guard is
//! dropped and the member leaves. [`list`](Presence::list) says who follows
//! a topic now; [`events`](Presence::events) (or
//! [`all_events`](Presence::all_events)) is a stream of [`PresenceEvent`]s,
//! each a topic, a [`Member`] (subscriber id and descriptor) and a
//! [`PresenceChange`] (joined, left, expired).
//!
//! ```
//! use axum::{extract::State, routing::get, Router};
//! use axum_sse::{presence::{Presence, PresenceError}, Event, SseBody, SseLayer};
//! use futures_util::{stream, StreamExt};
//! use serde_json::json;
//!
//! async fn room(State(presence): State<Presence>) -> Result<SseBody<impl futures_util::Stream<Item = Event>>, PresenceError> {
//!     let guard = presence.join("room", json!({"name": "Ada"})).await?;
//!     let joined = Event::new().event("joined").data(guard.subscriber());
//!     // The guard lives in the stream: the member leaves when it ends.
//!     let events = stream::once(async move { joined })
//!         .chain(stream::pending())
//!         .map(move |event| { let _member = &guard; event });
//!     Ok(SseBody::new(events))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), PresenceError> {
//! let presence = Presence::new();
//! let app: Router = Router::new()
//!     .route("/room", get(room))
//!     .with_state(presence.clone())
//!     .layer(SseLayer::new());
//!
//! // Listen first, then list, then apply the events: nothing is missed.
//! let mut events = presence.events("room");
//! let guard = presence.join("room", json!("bob")).await?;
//! let members = presence.list("room").await?;
//! assert_eq!(members.len(), 1);
//! assert_eq!(members[0].descriptor(), &json!("bob"));
//! assert!(members[0].subscriber().starts_with("urn:uuid:"));
//!
//! drop(guard);
//! let joined = events.next().await.unwrap();
//! let left = events.next().await.unwrap();
//! assert!(joined.is_active() && !left.is_active());
//! assert_eq!((left.topic(), left.descriptor()), ("room", &json!("bob")));
//! assert!(presence.list("room").await?.is_empty());
//! # drop(app);
//! # Ok(())
//! # }
//! ```
//!
//! A subscriber id is drawn for each [`join`](Presence::join) (a
//! `urn:uuid:` with a random version 4 UUID); [`join_as`](Presence::join_as)
//! takes the app's, so one connection following several topics joins each
//! as the same subscriber:
//!
//! ```
//! use axum_sse::presence::{Presence, PresenceChange};
//! use futures_util::StreamExt;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), axum_sse::presence::PresenceError> {
//! let presence = Presence::builder().buffer(64).max_descriptor_len(1024).build();
//! let mut all = presence.all_events();
//! let books = presence.join("books", json!({"user": 7})).await?;
//! let authors = presence.join_as("authors", books.subscriber(), json!({"user": 7})).await?;
//! let first = all.next().await.unwrap();
//! let second = all.next().await.unwrap();
//! assert_eq!((first.topic(), second.topic()), ("books", "authors"));
//! assert_eq!(first.subscriber(), second.subscriber());
//!
//! authors.leave().await?;
//! assert_eq!(all.next().await.unwrap().change(), PresenceChange::Left);
//!
//! // Too long a descriptor is refused, not stored.
//! let big = json!("x".repeat(2000));
//! assert!(presence.join("books", big).await.is_err());
//! # drop(books);
//! # Ok(())
//! # }
//! ```
//!
//! # Limits and memory
//!
//! Topics, subscriber ids and descriptors are bounded (by default 1024
//! bytes, 256 bytes and 16 KiB of JSON; [`PresenceError::TooLong`]
//! otherwise). A topic takes memory while it has members (in memory) or
//! listeners; a member only while its guard lives. A listener that falls
//! more than [`PresenceBuilder::buffer`] events behind (default 1024) is
//! ended, and [`PresenceEvents::lagged`] says so: list again and listen
//! anew.
//!
//! # Several instances: Redis
//!
//! With the `redis` feature, [`Presence::redis`] (or
//! [`PresenceBuilder::connect_redis`]) keeps members in Redis (keys under
//! `presence:` by default, see [`PresenceBuilder::key_prefix`]): `list`
//! returns the members of every instance, and `events` the changes of every
//! instance, in the one order Redis recorded them. Each join or leave is one
//! script that changes the member and appends its event to one stream
//! (bounded by [`PresenceBuilder::events_kept`]); each instance reads that
//! stream over a connection of its own, so it holds two connections
//! whatever the number of topics. A dropped guard's leave is done by the
//! instance's background task (retried with backoff while Redis is away).
//!
//! **The crash bound.** Each instance renews a heartbeat in Redis every
//! [`PresenceBuilder::heartbeat`] (default 5 s), valid for
//! [`PresenceBuilder::expiry`] (default 15 s, at least twice the
//! heartbeat), timed by the Redis server's clock. An instance that stops
//! (a crash, a kill, a partition from Redis) stops renewing: its members
//! leave `list` at once when its heartbeat expires, and the next sweep of
//! any live instance (each sweeps at every heartbeat, and once when it
//! connects) removes them with [`PresenceChange::Expired`] events. So a
//! crashed instance's members leave **within `expiry + heartbeat`** of the
//! crash (20 s by default; the heartbeat is the surviving instances', plus
//! a few Redis round trips), while another instance runs; with none
//! running, when the next one connects. Listeners on every instance get
//! the `Expired` events; `list` stops showing the members at `expiry`. An instance that finds its own heartbeat
//! expired (it stalled) retires its old members (with `Expired` events) and
//! joins the live ones again under a new instance id.
//!
//! When Redis is unreachable, `join` and `list` return
//! [`PresenceError::Backend`] (`503` as a response), listeners stay open and
//! the reader reconnects with backoff and resumes after the last event it
//! read. All keys must be on one Redis (not spread over a Redis Cluster).
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn run() -> Result<(), axum_sse::presence::PresenceError> {
//! use std::time::Duration;
//! use axum_sse::presence::Presence;
//!
//! let presence = Presence::builder()
//!     .key_prefix("myapp:presence:")
//!     .heartbeat(Duration::from_secs(2))
//!     .expiry(Duration::from_secs(6)) // crashed members leave within 8 s
//!     .connect_redis("redis://127.0.0.1:6379/")
//!     .await?;
//! # drop(presence);
//! # Ok(())
//! # }
//! ```

mod builder;
mod error;
mod events;
mod handle;
mod member;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(test)]
mod tests;

pub use self::{
    builder::PresenceBuilder,
    error::PresenceError,
    events::PresenceEvents,
    handle::{Presence, PresenceGuard},
    member::{Member, PresenceChange, PresenceEvent},
};
