//! The broadcast handle.

use std::{fmt, sync::Arc};

use crate::Event;

use super::{
    engine::Engine, BroadcastBuilder, BroadcastError, BroadcastStatsSnapshot, Subscription,
};

/// Named broadcast channels with a bounded history and gap-free resume.
///
/// A cheap handle (clone it into your state); all clones share the topics.
/// See the [module docs](super) for the guarantees and an example.
#[derive(Clone)]
pub struct Broadcast {
    // The backend, and everything above it: the fan-out, gap filling and
    // the slow-subscriber policy are the same for every backend.
    engine: Arc<Engine>,
}

impl Default for Broadcast {
    fn default() -> Self {
        Self::new()
    }
}

impl Broadcast {
    /// An in-memory broadcast with the default settings (see
    /// [`BroadcastBuilder`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Settings first, then the backend.
    pub fn builder() -> BroadcastBuilder {
        BroadcastBuilder::new()
    }

    /// A broadcast over Redis Streams at `url` with the default settings;
    /// see [`BroadcastBuilder::connect_redis`].
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when the URL is invalid or Redis cannot be
    /// reached now.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Self, BroadcastError> {
        Self::builder().connect_redis(url).await
    }

    pub(super) fn from_engine(engine: Engine) -> Self {
        Self {
            engine: Arc::new(engine),
        }
    }

    /// Publishes `event` on `topic` and returns its id.
    ///
    /// The event is encoded once, with the `id` field added last; every
    /// subscriber gets the same bytes.
    ///
    /// - An event without an `id` gets the channel's: opaque (at most 64
    ///   ASCII bytes), naming this event of this topic's history; see the
    ///   [module docs](super#guarantees).
    /// - An event with an `id` of its own (an order number, a message id)
    ///   keeps it: a *publisher id*, delivered verbatim as the event's `id`,
    ///   returned here, and usable as `Last-Event-ID` on this topic. It is
    ///   stored once: while an event with that id is in the topic's history,
    ///   publishing the same id again (a retry after a timeout, a second
    ///   instance relaying the same message) stores and delivers nothing and
    ///   returns the id; the retry's fields are not compared. Once the event
    ///   has left the history (see [`BroadcastBuilder::history`] and
    ///   [`BroadcastBuilder::max_age`]), the id is free again. A publisher id
    ///   is 1 to 64 bytes of visible ASCII (`0x21` to `0x7E`: it travels
    ///   back in an HTTP header, where spaces at the ends and non-ASCII bytes
    ///   do not survive every hop, and it is kept per retained event), and
    ///   not of the form of the channel's ids (11 characters of
    ///   `A-Za-z0-9-_` and a `.`), so the two never collide.
    ///
    /// # Errors
    ///
    /// [`BroadcastError::InvalidEvent`] for an invalid field or an event
    /// without a `data` field ([`EventError::NoData`](crate::EventError::NoData):
    /// clients would disagree on whether it is an event once it has an id),
    /// [`BroadcastError::InvalidId`] for an `id` that cannot be a publisher
    /// id (or an event that sets `id` twice), [`BroadcastError::Backend`]
    /// when Redis cannot take it (nothing was published then, or, if the
    /// answer was lost, it was: publish with a publisher id to retry
    /// safely).
    pub async fn publish(&self, topic: &str, event: Event) -> Result<String, BroadcastError> {
        self.engine.publish(topic, event).await
    }

    /// Subscribes to `topic`, resuming after `last_event_id` (a client's
    /// `Last-Event-ID`).
    ///
    /// - `None`: live events only, from now on.
    /// - an id in the history: every retained event after it, then live
    ///   events, with no gap and no duplicate even while others publish.
    /// - a publisher id of an event in this topic's history: the same.
    /// - an id older than the history, or of another history (another
    ///   topic, before a restart, a deleted Redis stream), or not the
    ///   channel's nor a retained publisher id (garbled, forged, over 64
    ///   bytes):
    ///   the missed-events event (see
    ///   [`BroadcastBuilder::missed_event`]), every retained event, then
    ///   live events.
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when Redis cannot be reached to read the
    /// history. In memory this never fails.
    pub async fn subscribe(
        &self,
        topic: &str,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, BroadcastError> {
        self.engine.subscribe(topic, last_event_id).await
    }

    /// The counters of this instance: open subscriptions, events published,
    /// slow subscribers disconnected, resumes that missed events.
    pub fn stats(&self) -> BroadcastStatsSnapshot {
        self.engine.stats()
    }
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("backend", &self.engine.name())
            .field("stats", &self.stats())
            .finish()
    }
}
