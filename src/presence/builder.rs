//! Settings of a presence instance.

#[cfg(feature = "redis")]
use std::time::Duration;

use super::Presence;
#[cfg(feature = "redis")]
use super::PresenceError;

/// Events a listener may fall behind before it is ended, by default.
const DEFAULT_BUFFER: usize = 1024;
/// The longest topic, subscriber id and descriptor (as JSON), by default.
const DEFAULT_MAX_TOPIC_LEN: usize = 1024;
const DEFAULT_MAX_SUBSCRIBER_LEN: usize = 256;
const DEFAULT_MAX_DESCRIPTOR_LEN: usize = 16 * 1024;
#[cfg(feature = "redis")]
const DEFAULT_KEY_PREFIX: &str = "presence:";
#[cfg(feature = "redis")]
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
#[cfg(feature = "redis")]
const DEFAULT_EXPIRY: Duration = Duration::from_secs(15);
/// Join/leave events kept in Redis for instances that reconnect.
#[cfg(feature = "redis")]
const DEFAULT_EVENTS_KEPT: usize = 10_000;

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) buffer: usize,
    pub(super) max_topic_len: usize,
    pub(super) max_subscriber_len: usize,
    pub(super) max_descriptor_len: usize,
    #[cfg(feature = "redis")]
    pub(super) key_prefix: String,
    #[cfg(feature = "redis")]
    pub(super) heartbeat: Duration,
    #[cfg(feature = "redis")]
    pub(super) expiry: Duration,
    #[cfg(feature = "redis")]
    pub(super) events_kept: usize,
}

#[cfg(feature = "redis")]
impl Config {
    /// The expiry actually used: at least twice the heartbeat, so one late
    /// heartbeat does not expire a live instance.
    pub(super) fn expiry(&self) -> Duration {
        self.expiry.max(self.heartbeat * 2)
    }
}

/// Builds a [`Presence`]: limits and listener buffers, then the backend.
/// From [`Presence::builder`].
///
/// ```
/// use axum_sse::presence::Presence;
///
/// let presence = Presence::builder()
///     .buffer(256)
///     .max_descriptor_len(4096)
///     .build();
/// # drop(presence);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` or `connect_redis`"]
pub struct PresenceBuilder {
    config: Config,
}

impl Default for PresenceBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PresenceBuilder {
    /// The default settings.
    pub fn new() -> Self {
        Self {
            config: Config {
                buffer: DEFAULT_BUFFER,
                max_topic_len: DEFAULT_MAX_TOPIC_LEN,
                max_subscriber_len: DEFAULT_MAX_SUBSCRIBER_LEN,
                max_descriptor_len: DEFAULT_MAX_DESCRIPTOR_LEN,
                #[cfg(feature = "redis")]
                key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
                #[cfg(feature = "redis")]
                heartbeat: DEFAULT_HEARTBEAT,
                #[cfg(feature = "redis")]
                expiry: DEFAULT_EXPIRY,
                #[cfg(feature = "redis")]
                events_kept: DEFAULT_EVENTS_KEPT,
            },
        }
    }

    /// Sets how many events a listener ([`Presence::events`]) may fall
    /// behind before its stream is ended. Default: 1024 (at least 1).
    pub fn buffer(mut self, events: usize) -> Self {
        self.config.buffer = events.max(1);
        self
    }

    /// Sets the longest topic, in bytes. Default: 1024. A longer one is
    /// [`PresenceError::TooLong`](super::PresenceError::TooLong).
    pub fn max_topic_len(mut self, bytes: usize) -> Self {
        self.config.max_topic_len = bytes;
        self
    }

    /// Sets the longest subscriber id, in bytes. Default: 256.
    pub fn max_subscriber_len(mut self, bytes: usize) -> Self {
        self.config.max_subscriber_len = bytes;
        self
    }

    /// Sets the longest descriptor, in bytes of its JSON. Default: 16 KiB.
    pub fn max_descriptor_len(mut self, bytes: usize) -> Self {
        self.config.max_descriptor_len = bytes;
        self
    }

    /// Sets the prefix of every Redis key the instance uses. Default:
    /// `presence:`. Instances with the same prefix on the same Redis share
    /// presence; give each app its own.
    #[cfg(feature = "redis")]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// Sets how often an instance renews its heartbeat in Redis and sweeps
    /// the members of expired instances. Default: 5 s (at least 1 ms).
    #[cfg(feature = "redis")]
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config.heartbeat = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets how long after its last heartbeat an instance counts as gone:
    /// its members are no longer listed, and the next sweep of another
    /// instance removes them with [`PresenceChange::Expired`] events.
    /// Default: 15 s; at least twice [`heartbeat`](Self::heartbeat).
    ///
    /// [`PresenceChange::Expired`]: super::PresenceChange::Expired
    #[cfg(feature = "redis")]
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.config.expiry = expiry;
        self
    }

    /// Sets how many join/leave events Redis keeps (`MAXLEN ~` of the
    /// events stream) so that an instance that lost its connection for a
    /// while catches up. Default: 10,000 (at least 1).
    #[cfg(feature = "redis")]
    pub fn events_kept(mut self, events: usize) -> Self {
        self.config.events_kept = events.max(1);
        self
    }

    /// An in-memory presence: one instance.
    pub fn build(self) -> Presence {
        Presence::memory(self.config)
    }

    /// A presence shared through the Redis at `url` by every instance with
    /// the same [`key_prefix`](Self::key_prefix). Registers the instance
    /// (its first heartbeat), sweeps expired instances once, and starts its
    /// heartbeat and event reader; they run until the [`Presence`] and every
    /// guard and event stream of it are dropped.
    ///
    /// # Errors
    ///
    /// [`PresenceError::Backend`] when the URL is invalid or Redis cannot be
    /// reached.
    #[cfg(feature = "redis")]
    pub async fn connect_redis(self, url: &str) -> Result<Presence, PresenceError> {
        Presence::connect_redis(url, self.config).await
    }
}
