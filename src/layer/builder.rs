use std::time::Duration;

use bytes::Bytes;

use super::SseLayer;
use crate::{
    writer::queue::QueueLimits, ClientKey, Event, EventError, HeartbeatLayer, LastEventIdLayer,
    RetryLayer, ShutdownLayer, SseShutdown, SseStats, StreamLimitLayer, TimeLimitLayer,
};

/// Events a writer may queue before `send` waits, by default.
const DEFAULT_MAX_QUEUED_EVENTS: usize = 1024;
/// Bytes a writer may queue before `send` waits, by default.
const DEFAULT_MAX_QUEUED_BYTES: usize = 64 * 1024;
/// How long a send waits for room before the client counts as too slow, by
/// default.
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Configures an [`SseLayer`]; made by [`SseLayer::builder`].
///
/// ```
/// use std::time::Duration;
/// use axum_sse::{Event, LastEventIdLayer, SseLayer, SseShutdown};
///
/// let shutdown = SseShutdown::new();
/// let layer = SseLayer::builder()
///     .heartbeat(Duration::from_secs(15))
///     .retry(Duration::from_secs(3))
///     .last_event_id(LastEventIdLayer::new().query_param("lastEventId"))
///     .send_timeout(Duration::from_secs(10))
///     .idle_timeout(Duration::from_secs(600))
///     .max_duration(Duration::from_secs(3600))
///     .max_duration_jitter(Duration::from_secs(300))
///     .max_streams(10_000)
///     .max_streams_per_client(8)
///     .shutdown(shutdown.clone())
///     .farewell(Event::new().event("shutdown").data("restarting"))
///     .build();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SseLayerBuilder {
    limits: QueueLimits,
    heartbeat: Option<HeartbeatLayer>,
    retry: Option<RetryLayer>,
    last_event_id: Option<LastEventIdLayer>,
    time_limit: TimeLimitLayer,
    stream_limit: Option<StreamLimitLayer>,
    shutdown: Option<SseShutdown>,
    farewell: Option<Bytes>,
    stats: Option<SseStats>,
    #[cfg(feature = "metrics")]
    metrics: Option<crate::SseMetrics>,
}

impl SseLayerBuilder {
    pub(super) fn new() -> Self {
        Self {
            limits: QueueLimits {
                max_events: DEFAULT_MAX_QUEUED_EVENTS,
                max_bytes: DEFAULT_MAX_QUEUED_BYTES,
                send_timeout: DEFAULT_SEND_TIMEOUT,
            },
            heartbeat: None,
            retry: None,
            last_event_id: None,
            time_limit: TimeLimitLayer::new(),
            stream_limit: None,
            shutdown: None,
            farewell: None,
            stats: None,
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// Sets how many events a writer may queue for a client before
    /// [`send`](crate::SseWriter::send) waits. Default: 1024. Zero is taken
    /// as one.
    pub fn max_queued_events(mut self, events: usize) -> Self {
        self.limits.max_events = events.max(1);
        self
    }

    /// Sets how many bytes of events a writer may queue for a client before
    /// [`send`](crate::SseWriter::send) waits. Default: 64 KiB. An event
    /// larger than this still goes out, alone.
    ///
    /// Everything queued leaves as one body frame, so this is also the
    /// largest write a burst of events turns into.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_bytes = bytes.max(1);
        self
    }

    /// Sets how long a [`send`](crate::SseWriter::send) waits for room in a
    /// full queue before it gives up on the client. Default: 30 seconds.
    ///
    /// This is the slow-consumer policy: a client that reads too slowly
    /// fills its queue (bounded by
    /// [`max_queued_events`](Self::max_queued_events) and
    /// [`max_queued_bytes`](Self::max_queued_bytes)), then sends wait. One
    /// that stays that slow for the whole timeout has its stream closed:
    /// what was queued is dropped, the send returns
    /// [`SseError::Timeout`](crate::SseError::Timeout), later sends
    /// [`ConnectionClosed`](crate::SseError::ConnectionClosed), and the
    /// client gets a clean end of stream (an `EventSource` reconnects and
    /// resumes from its `Last-Event-ID`). Memory per client stays bounded
    /// either way. [`try_send`](crate::SseWriter::try_send) never waits.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.limits.send_timeout = timeout;
        self
    }

    /// Sends a heartbeat on event streams idle for an interval: pass the
    /// interval, or a [`HeartbeatLayer`] to choose the message. Default: no
    /// heartbeat. 15 seconds is a common choice: below the idle timeouts of
    /// most proxies, and it bounds how long a vanished client goes unnoticed.
    pub fn heartbeat(mut self, heartbeat: impl Into<HeartbeatLayer>) -> Self {
        self.heartbeat = Some(heartbeat.into());
        self
    }

    /// Starts every event stream with `retry: <ms>`, the delay clients wait
    /// before reconnecting. Default: none (browsers then pick their own,
    /// typically 3 seconds).
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = Some(RetryLayer::new(delay));
        self
    }

    /// Sets the rules for reading `Last-Event-ID`, as a [`LastEventIdLayer`]
    /// mounted just outside the handler's writer would. Default: none of
    /// its own, so a [`LastEventIdLayer`] around the `SseLayer` sets them,
    /// and without one the default rules of [`LastEventIdLayer::new`] apply
    /// (the header only, at most 1024 bytes, an invalid id treated as
    /// absent). A [`LastEventIdLayer`] closer to the handler (on the route)
    /// replaces these rules.
    pub fn last_event_id(mut self, rules: LastEventIdLayer) -> Self {
        self.last_event_id = Some(rules);
        self
    }

    /// Ends a stream cleanly after `timeout` without an event (heartbeats
    /// do not count). Default: none. See [`TimeLimitLayer`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.time_limit = self.time_limit.idle_timeout(timeout);
        self
    }

    /// Ends a stream cleanly `duration` after it started, less the
    /// [jitter](Self::max_duration_jitter). Default: none. See
    /// [`TimeLimitLayer`].
    pub fn max_duration(mut self, duration: Duration) -> Self {
        self.time_limit = self.time_limit.max_duration(duration);
        self
    }

    /// Shortens each stream's [maximum duration](Self::max_duration) by a
    /// random amount up to `jitter`, so clients that connected together do
    /// not all reconnect together. Default: zero.
    pub fn max_duration_jitter(mut self, jitter: Duration) -> Self {
        self.time_limit = self.time_limit.max_duration_jitter(jitter);
        self
    }

    /// Allows at most `streams` event streams open at once; more are
    /// answered `429 Too Many Requests` with `Retry-After`. Default: no
    /// limit. See [`StreamLimitLayer`].
    pub fn max_streams(self, streams: usize) -> Self {
        self.map_stream_limit(|limit| limit.max_streams(streams))
    }

    /// Allows each client at most `streams` event streams open at once.
    /// Default: no limit. Clients are told apart by peer IP address (which
    /// needs `into_make_service_with_connect_info::<SocketAddr>()`) unless
    /// [`client_key`](Self::client_key) says otherwise. See
    /// [`StreamLimitLayer`].
    pub fn max_streams_per_client(self, streams: usize) -> Self {
        self.map_stream_limit(|limit| limit.max_streams_per_client(streams))
    }

    /// Sets how a request names its client for
    /// [`max_streams_per_client`](Self::max_streams_per_client). See
    /// [`StreamLimitLayer::client_key`].
    pub fn client_key<F, K>(self, key: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<K> + Send + Sync + 'static,
        K: Into<ClientKey>,
    {
        self.map_stream_limit(|limit| limit.client_key(key))
    }

    /// Sets every stream limit at once, `Retry-After` included, replacing
    /// the ones set before. Default: none.
    pub fn stream_limit(mut self, limit: StreamLimitLayer) -> Self {
        self.stream_limit = Some(limit);
        self
    }

    fn map_stream_limit(mut self, f: impl FnOnce(StreamLimitLayer) -> StreamLimitLayer) -> Self {
        self.stream_limit = Some(f(self.stream_limit.take().unwrap_or_default()));
        self
    }

    /// Ends every open stream when `shutdown` is triggered (after the
    /// [farewell](Self::farewell) event, if any) and answers later requests
    /// `503 Service Unavailable`, so a graceful shutdown of the server
    /// completes. Default: none. See [`crate::shutdown`].
    pub fn shutdown(mut self, shutdown: SseShutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Sends `event` as the last event of each stream the
    /// [shutdown](Self::shutdown) ends. Default: none.
    ///
    /// # Panics
    ///
    /// If a field of `event` was refused or it has no `data` field
    /// ([`EventError::NoData`]); [`try_farewell`](Self::try_farewell)
    /// reports that instead.
    pub fn farewell(self, event: Event) -> Self {
        self.try_farewell(event)
            .unwrap_or_else(|err| panic!("invalid farewell event: {err}"))
    }

    /// Sends `event` as the last event of each stream the
    /// [shutdown](Self::shutdown) ends, or reports why it is invalid.
    ///
    /// # Errors
    ///
    /// The first invalid field of `event`, or [`EventError::NoData`].
    pub fn try_farewell(mut self, event: Event) -> Result<Self, EventError> {
        self.farewell = Some(event.encode_dispatchable()?.into_bytes());
        Ok(self)
    }

    /// Counts into `stats`, shared with other layers or read elsewhere.
    /// Default: counters of the layer's own, read with
    /// [`SseLayer::stats`].
    pub fn stats(mut self, stats: SseStats) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Exports the layer's counts through the `metrics` facade, and
    /// histograms of stream durations and of sends waiting on a full queue:
    /// see [`crate::metrics`] for the names. Default: none. The handles are
    /// registered by [`build`](Self::build), with the recorder current then.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, metrics: crate::SseMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds the layer.
    pub fn build(self) -> SseLayer {
        let stats = self.stats.unwrap_or_default();
        #[cfg(feature = "metrics")]
        let stats = stats.with_metrics(
            self.metrics
                .as_ref()
                .map(crate::metrics::StreamMetrics::register),
        );
        let shutdown = self.shutdown.map(|shutdown| {
            ShutdownLayer::new(shutdown)
                .farewell_bytes(self.farewell)
                .stats(stats.clone())
        });
        SseLayer {
            limits: self.limits,
            heartbeat: self.heartbeat,
            retry: self.retry,
            last_event_id: self.last_event_id,
            time_limit: self.time_limit.is_set().then_some(self.time_limit),
            stream_limit: self.stream_limit.map(|limit| limit.stats(stats.clone())),
            shutdown,
            stats,
        }
    }
}

impl Default for SseLayerBuilder {
    fn default() -> Self {
        SseLayer::builder()
    }
}
