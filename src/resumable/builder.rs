//! Settings of a response store.

use std::time::Duration;

use crate::{broadcast::Broadcast, EncodedEvent, Event, SseShutdown};

use super::{control::Control, store::Logs, ResumableResponses};

/// Default [`ResumableBuilder::ttl`].
const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Default [`ResumableBuilder::max_duration`].
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(10 * 60);
/// Default [`ResumableBuilder::max_events`].
const DEFAULT_MAX_EVENTS: usize = 10_000;
/// Default [`ResumableBuilder::max_bytes`].
const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
/// Default [`ResumableBuilder::max_live`].
const DEFAULT_MAX_LIVE: usize = 1024;
/// Default [`ResumableBuilder::max_retained`].
const DEFAULT_MAX_RETAINED: usize = 4096;
/// Default [`ResumableBuilder::reader_buffer`].
const DEFAULT_READER_BUFFER: usize = 64;
/// Default [`ResumableBuilder::drain_window`].
const DEFAULT_DRAIN_WINDOW: Duration = Duration::from_secs(5);
/// Default [`ResumableBuilder::key_prefix`].
#[cfg(feature = "redis")]
const DEFAULT_KEY_PREFIX: &str = "sse:response:";

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) ttl: Duration,
    pub(super) max_duration: Duration,
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) max_live: usize,
    pub(super) max_retained: usize,
    pub(super) reader_buffer: usize,
    pub(super) shutdown: Option<SseShutdown>,
    pub(super) drain_window: Duration,
    /// Sent before the rest of a response to a client whose id is not of
    /// its log; `None`: nothing.
    pub(super) missed: Option<EncodedEvent>,
    /// Sent as the last event to a reader of a response that ended
    /// incomplete; `None`: nothing.
    pub(super) incomplete: Option<EncodedEvent>,
    #[cfg(feature = "redis")]
    pub(super) key_prefix: String,
}

/// The default [`ResumableBuilder::missed_event`].
fn default_missed() -> EncodedEvent {
    Event::new()
        .event("missed")
        .data("")
        .encode()
        .expect("a valid event")
}

/// The default [`ResumableBuilder::incomplete_event`].
fn default_incomplete() -> EncodedEvent {
    Event::new()
        .event("incomplete")
        .data(r#"{"error":{"message":"the response ended before it was complete"}}"#)
        .encode()
        .expect("a valid event")
}

/// An event the store sends for a response, checked: it must have data
/// and no id (it must not move the client's last event id).
fn checked(event: Event, what: &str) -> EncodedEvent {
    let encoded = event
        .encode_dispatchable()
        .unwrap_or_else(|err| panic!("ResumableBuilder::{what}: {err}"));
    assert!(
        !super::control::has_id(encoded.as_bytes()),
        "ResumableBuilder::{what}: the event must not carry an `id`"
    );
    encoded
}

/// Builds [`ResumableResponses`]: bounds, expiry and shutdown, then where
/// the logs live. From [`ResumableResponses::builder`].
///
/// ```
/// use std::time::Duration;
/// use axum_sse::{resumable::ResumableResponses, SseShutdown};
///
/// let responses = ResumableResponses::builder()
///     .ttl(Duration::from_secs(60))
///     .max_duration(Duration::from_secs(120))
///     .max_events(5_000)
///     .max_bytes(256 * 1024)
///     .max_live(100)
///     .shutdown(SseShutdown::new())
///     .drain_window(Duration::from_secs(10))
///     .build();
/// # drop(responses);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` or `connect_redis`"]
pub struct ResumableBuilder {
    config: Config,
}

impl Default for ResumableBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ResumableBuilder {
    /// The default settings.
    pub fn new() -> Self {
        Self {
            config: Config {
                ttl: DEFAULT_TTL,
                max_duration: DEFAULT_MAX_DURATION,
                max_events: DEFAULT_MAX_EVENTS,
                max_bytes: DEFAULT_MAX_BYTES,
                max_live: DEFAULT_MAX_LIVE,
                max_retained: DEFAULT_MAX_RETAINED,
                reader_buffer: DEFAULT_READER_BUFFER,
                shutdown: None,
                drain_window: DEFAULT_DRAIN_WINDOW,
                missed: Some(default_missed()),
                incomplete: Some(default_incomplete()),
                #[cfg(feature = "redis")]
                key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            },
        }
    }

    /// Sets how long a response's log is kept after its last event (its
    /// end, for a finished response). Default: 5 minutes.
    ///
    /// After it, a resume answers [`Resume::NotFound`](super::Resume::NotFound)
    /// (`204 No Content`). In memory a timer per finished response removes
    /// it; with Redis every write pushes back the key's expiry (`PEXPIRE`).
    /// With Redis a reader also ends when the log stays silent this long
    /// (its producer's instance may be gone), with the
    /// [`incomplete_event`](Self::incomplete_event); in memory a reader
    /// waits for its producer, which always writes its end.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// Sets how long a producer may run. Default: 10 minutes. A producer
    /// still running then is dropped and its response ends, incomplete.
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.config.max_duration = duration;
        self
    }

    /// Sets how many events a response may hold. Default: 10,000. The
    /// event that would pass it ends the response instead
    /// ([`SinkError::TooLarge`](super::SinkError::TooLarge)). The whole
    /// response stays in its log, so every resume is exact.
    pub fn max_events(mut self, events: usize) -> Self {
        self.config.max_events = events;
        self
    }

    /// Sets how many bytes a response's events may take, as encoded, without
    /// the ids the log adds (some 30 bytes an event). Default: 1 MiB. The
    /// event that would pass it ends the response instead
    /// ([`SinkError::TooLarge`](super::SinkError::TooLarge)).
    ///
    /// In memory an instance holds at most
    /// ([`max_live`](Self::max_live) + [`max_retained`](Self::max_retained))
    /// × `max_bytes` of logs: some 5 GiB at the defaults. Lower one of them
    /// to what the instance can hold.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.config.max_bytes = bytes;
        self
    }

    /// Sets how many producers may run at once on this instance. Default:
    /// 1024. At the bound, [`start`](ResumableResponses::start) returns
    /// [`ResumableError::TooManyLive`](super::ResumableError::TooManyLive)
    /// (`503` with `Retry-After: 1`).
    pub fn max_live(mut self, responses: usize) -> Self {
        self.config.max_live = responses;
        self
    }

    /// Sets how many finished responses an in-memory store keeps for their
    /// [`ttl`](Self::ttl). Default: 4096. Past it, the oldest finished is
    /// dropped at once. With Redis the finished logs live in Redis, bounded
    /// by the TTL only.
    pub fn max_retained(mut self, responses: usize) -> Self {
        self.config.max_retained = responses;
        self
    }

    /// Sets how many events a reader may fall behind the producer before it
    /// rereads the log from where it was (rather than holding more memory).
    /// Default: 64. Values below 1 count as 1. This is the log's
    /// [`BroadcastBuilder::buffer`](crate::broadcast::BroadcastBuilder::buffer).
    pub fn reader_buffer(mut self, events: usize) -> Self {
        self.config.reader_buffer = events.max(1);
        self
    }

    /// Drains on `shutdown`: once triggered, [`start`](ResumableResponses::start)
    /// refuses with [`ResumableError::ShuttingDown`](super::ResumableError::ShuttingDown),
    /// and every open stream of a response ends with a `retry` line (no
    /// blank line after it, so no client dispatches an event for it) drawn
    /// evenly from the [`drain_window`](Self::drain_window), so the clients
    /// reconnect (to another instance) spread over it. Producers go on;
    /// [`drain`](ResumableResponses::drain) waits for them. Default: none.
    ///
    /// Clients that do not reconnect (the `openai` SDKs) see their stream
    /// end early, as if the reply were complete: serve them from a store
    /// without this handle, and let the process wait for
    /// [`drain`](ResumableResponses::drain) before it exits.
    pub fn shutdown(mut self, shutdown: SseShutdown) -> Self {
        self.config.shutdown = Some(shutdown);
        self
    }

    /// Sets the window over which reconnects are spread on shutdown.
    /// Default: 5 seconds.
    pub fn drain_window(mut self, window: Duration) -> Self {
        self.config.drain_window = window;
        self
    }

    /// Sets the event a client gets first when it resumes with an id that
    /// is not of the response's log (forged, garbled, of another response,
    /// longer than the [`LastEventIdLayer`](crate::LastEventIdLayer)'s
    /// limit is taken as none at all), before the whole response; `None`
    /// sends the whole response with no notice. Default: `event: missed`
    /// with empty data, which a browser dispatches to
    /// `addEventListener("missed", ..)`.
    ///
    /// Choose it for your clients: the `openai` SDKs and the AI SDK parse
    /// every event's data as JSON, and fail on empty data. For them give it
    /// data they read, or `None` if they start over from an empty reply
    /// anyway.
    ///
    /// # Panics
    ///
    /// When the event has an invalid field, no `data` field
    /// ([`EventError::NoData`](crate::EventError::NoData)) or an `id`.
    pub fn missed_event(mut self, event: Option<Event>) -> Self {
        self.config.missed = event.map(|event| checked(event, "missed_event"));
        self
    }

    /// Sets the event a reader sends last when the response ended
    /// incomplete: its producer failed, panicked, was cancelled, ran past
    /// [`max_duration`](Self::max_duration) or its bounds, or (Redis) its
    /// instance went silent for a [`ttl`](Self::ttl). So a client never
    /// takes a cut reply for a whole one. `None` ends such a stream like a
    /// complete one. Default: `event: incomplete` with the data
    /// `{"error":{"message":"the response ended before it was complete"}}`,
    /// which the `openai` SDKs raise as an API error and a browser
    /// dispatches to `addEventListener("incomplete", ..)`.
    ///
    /// Only readers that reach the end get it: a resume from the last event
    /// before the end answers [`Resume::Complete`](super::Resume::Complete)
    /// (`204`), as for a complete response.
    ///
    /// # Panics
    ///
    /// When the event has an invalid field, no `data` field
    /// ([`EventError::NoData`](crate::EventError::NoData)) or an `id`.
    pub fn incomplete_event(mut self, event: Option<Event>) -> Self {
        self.config.incomplete = event.map(|event| checked(event, "incomplete_event"));
        self
    }

    /// Sets the prefix of each response's Redis key: the log of response
    /// `r1` is the stream `{prefix}r1`. Default: `sse:response:`.
    #[cfg(feature = "redis")]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// The settings every response's log is built with.
    fn log_settings(&self) -> crate::broadcast::BroadcastBuilder {
        Broadcast::builder()
            // Every event of a response, and the start and end markers.
            .history(self.config.max_events.saturating_add(3))
            .buffer(self.config.reader_buffer)
            .missed_event(Control::Missed.event())
    }

    /// A store in memory: one instance. Each response's log is a
    /// [`Broadcast`] of its own, dropped when the response expires.
    pub fn build(self) -> ResumableResponses {
        let template = self.log_settings();
        ResumableResponses::from_parts(self.config, Logs::Memory(template))
    }

    /// A store over Redis Streams at `url`, shared by every instance
    /// connected to the same Redis with the same
    /// [`key_prefix`](Self::key_prefix): a response started on one is
    /// resumed on any.
    ///
    /// # Errors
    ///
    /// [`ResumableError::Backend`](super::ResumableError::Backend) when the
    /// URL is invalid or Redis cannot be reached now.
    #[cfg(feature = "redis")]
    pub async fn connect_redis(
        self,
        url: &str,
    ) -> Result<ResumableResponses, super::ResumableError> {
        let log = self
            .log_settings()
            .key_prefix(self.config.key_prefix.clone())
            .idle_expiry(self.config.ttl)
            .connect_redis(url)
            .await
            .map_err(super::ResumableError::Backend)?;
        Ok(ResumableResponses::from_parts(
            self.config,
            Logs::Shared(log),
        ))
    }
}
