//! Settings of a broadcast instance.

use std::{fmt, sync::Arc, time::Duration};

use crate::{EncodedEvent, Event};

use super::{engine::Engine, memory::Memory, wire, Backend, Broadcast, BroadcastError};

/// Events kept per topic for replay, by default.
const DEFAULT_HISTORY: usize = 1000;
/// Events a subscriber may lag behind before it is disconnected, by default.
const DEFAULT_BUFFER: usize = 1024;
/// The Redis key of a topic is this prefix and the topic, by default.
#[cfg(feature = "redis")]
const DEFAULT_KEY_PREFIX: &str = "sse:";
/// How long a Redis stream lives after its last publish, by default.
#[cfg(feature = "redis")]
const DEFAULT_IDLE_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// What every backend reads.
#[derive(Clone)]
pub(super) struct Config {
    pub(super) history: usize,
    pub(super) max_age: Option<Duration>,
    pub(super) buffer: usize,
    pub(super) missed: EncodedEvent,
    #[cfg(feature = "redis")]
    pub(super) key_prefix: String,
    #[cfg(feature = "redis")]
    pub(super) idle_expiry: Duration,
    #[cfg(feature = "metrics")]
    pub(super) metrics: Option<crate::SseMetrics>,
}

impl Config {
    /// How long a Redis stream lives after its last publish: the idle
    /// expiry, or the maximum age if shorter (then nothing in it is history).
    #[cfg(feature = "redis")]
    pub(super) fn expiry(&self) -> Duration {
        self.max_age
            .map_or(self.idle_expiry, |age| age.min(self.idle_expiry))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Config");
        s.field("history", &self.history)
            .field("max_age", &self.max_age)
            .field("buffer", &self.buffer)
            .field("missed", &self.missed);
        #[cfg(feature = "redis")]
        s.field("key_prefix", &self.key_prefix)
            .field("idle_expiry", &self.idle_expiry);
        #[cfg(feature = "metrics")]
        s.field("metrics", &self.metrics);
        s.finish()
    }
}

/// Builds a [`Broadcast`]: history, buffer and missed-events settings, then
/// the backend. From [`Broadcast::builder`].
///
/// ```
/// use std::time::Duration;
/// use axum_sse::{broadcast::Broadcast, Event};
///
/// let broadcast = Broadcast::builder()
///     .history(100)
///     .max_age(Duration::from_secs(600))
///     .buffer(256)
///     .missed_event(Event::new().event("reload").data("{}"))
///     .build();
/// # drop(broadcast);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` or `connect_redis`"]
pub struct BroadcastBuilder {
    config: Config,
}

impl Default for BroadcastBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BroadcastBuilder {
    /// The default settings.
    pub fn new() -> Self {
        let missed = Event::new()
            .event("missed")
            .data("")
            .encode()
            .expect("a valid event");
        Self {
            config: Config {
                history: DEFAULT_HISTORY,
                max_age: None,
                buffer: DEFAULT_BUFFER,
                missed,
                #[cfg(feature = "redis")]
                key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
                #[cfg(feature = "redis")]
                idle_expiry: DEFAULT_IDLE_EXPIRY,
                #[cfg(feature = "metrics")]
                metrics: None,
            },
        }
    }

    /// Sets how many events each topic keeps for replay. Default: 1000.
    ///
    /// With Redis this is the `MAXLEN ~` of `XADD`: Redis trims in whole
    /// blocks of entries, so a few more may be kept, and at least one is.
    pub fn history(mut self, events: usize) -> Self {
        self.config.history = events;
        self
    }

    /// Sets how old a retained event may grow before it no longer counts as
    /// history (it is neither replayed nor a known resume point). Default:
    /// no limit.
    ///
    /// In memory, old events are dropped when the topic is next used. With
    /// Redis, age is read from the stream id (the Redis server's clock in
    /// milliseconds) against this machine's clock.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.config.max_age = Some(age);
        self
    }

    /// Sets how many live events a subscriber may fall behind before it is
    /// disconnected. Default: 1024.
    ///
    /// A subscriber too slow for its buffer (its client does not read, or
    /// reads too slowly) gets the end of its stream instead of holding more
    /// memory; a browser's `EventSource` reconnects on its own and resumes
    /// from the history. One buffer per topic is shared by all its
    /// subscribers, so its memory does not grow with their number. Values
    /// below 1 count as 1.
    ///
    /// That buffer is allocated whole when a topic gets its first subscriber
    /// on an instance, and freed when its last one leaves: about 100 bytes
    /// a slot (whatever the backend), so some 100 KB per topic with
    /// subscribers at the default. A topic without subscribers holds
    /// none (in memory, some 500 bytes besides its history). With many topics (one
    /// per user, per request) choose a small buffer: 100,000 topics with a
    /// buffer of 16 hold some 160 MB.
    pub fn buffer(mut self, events: usize) -> Self {
        self.config.buffer = events.max(1);
        self
    }

    /// Sets the event a subscriber gets first when it resumes from an id that
    /// is no longer (or never was) in the history: events may have been
    /// missed, and what follows is everything still retained. Default:
    /// `event: missed` with empty data, which a browser dispatches to
    /// `addEventListener("missed", ..)`.
    ///
    /// # Panics
    ///
    /// When the event is invalid, has no `data` field (see
    /// [`EventError::NoData`](crate::EventError::NoData)) or carries an `id`
    /// (it must not move the client's last event id). See
    /// [`try_missed_event`](Self::try_missed_event).
    pub fn missed_event(self, event: Event) -> Self {
        self.try_missed_event(event)
            .unwrap_or_else(|err| panic!("invalid missed-events event: {err}"))
    }

    /// Sets the missed-events event, or reports why it cannot be one.
    ///
    /// ```
    /// use axum_sse::{broadcast::{Broadcast, BroadcastError}, Event};
    ///
    /// let with_id = Event::new().id(1).data("");
    /// let err = Broadcast::builder().try_missed_event(with_id).unwrap_err();
    /// assert!(matches!(err, BroadcastError::IdNotAllowed));
    /// ```
    ///
    /// # Errors
    ///
    /// [`BroadcastError::InvalidEvent`] (an invalid field, or no `data`
    /// field) or [`BroadcastError::IdNotAllowed`].
    pub fn try_missed_event(mut self, event: Event) -> Result<Self, BroadcastError> {
        self.config.missed = wire::encode_without_id(event)?;
        Ok(self)
    }

    /// Sets the prefix of the Redis key of each topic: the stream of topic
    /// `news` is `{prefix}news`. Default: `sse:`.
    #[cfg(feature = "redis")]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// Sets how long a topic's Redis stream lives after its last publish:
    /// every publish pushes its expiry back (`PEXPIRE`), so a topic nobody
    /// publishes on stops holding memory in Redis. Default: 24 hours, or the
    /// [`max_age`](Self::max_age) if that is shorter. A client that resumes
    /// from an id of an expired stream gets the missed-events event.
    #[cfg(feature = "redis")]
    pub fn idle_expiry(mut self, expiry: Duration) -> Self {
        self.config.idle_expiry = expiry;
        self
    }

    /// Exports the broadcast's counters through the `metrics` facade, and a
    /// histogram of the time from `publish` to each subscriber: see
    /// [`crate::metrics`] for the names. Default: none. The handles are
    /// registered by [`build`](Self::build) or
    /// [`connect_redis`](Self::connect_redis), with the recorder current then.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, metrics: crate::SseMetrics) -> Self {
        self.config.metrics = Some(metrics);
        self
    }

    /// An in-memory broadcast: one process. A restarted process starts new
    /// histories: ids from before answer with the missed-events event.
    pub fn build(self) -> Broadcast {
        let memory = Arc::new(Memory::default());
        Broadcast::from_engine(Engine::new(memory, &self.config, "memory"))
    }

    /// A broadcast over a backend of your own: any store with an ordered
    /// log per topic (NATS JetStream, PostgreSQL, ...) that keeps the
    /// [`Backend`] contract. The settings of this builder apply as with the
    /// crate's backends: the history bounds reach the backend as its
    /// [`Retention`](super::Retention); the buffer, the missed-events event
    /// and the fan-out to subscribers stay in the [`Broadcast`].
    ///
    /// See [`Backend`] for the contract and how to run the conformance
    /// suite against it.
    pub fn backend(self, backend: impl Backend) -> Broadcast {
        Broadcast::from_engine(Engine::new(Arc::new(backend), &self.config, "custom"))
    }

    /// A broadcast over Redis Streams at `url` (`redis://host:port/db`),
    /// shared by every instance that connects to the same Redis. Needs
    /// Redis 6.2 or later.
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when the URL is invalid or Redis cannot be
    /// reached now. Once connected, the broadcast rides out Redis outages.
    #[cfg(feature = "redis")]
    pub async fn connect_redis(self, url: &str) -> Result<Broadcast, BroadcastError> {
        let redis = super::redis::Redis::connect(url, self.config.clone()).await?;
        Ok(Broadcast::from_engine(Engine::new(
            redis,
            &self.config,
            "redis",
        )))
    }
}
