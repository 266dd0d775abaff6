//! Stats: counters of the event streams an [`SseLayer`](crate::SseLayer)
//! serves, readable at any time from a cheap, cloneable [`SseStats`] handle.
//!
//! Every layer has one; [`SseLayer::stats`](crate::SseLayer::stats) hands it
//! out:
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseWriter};
//!
//! let layer = SseLayer::new();
//! let stats = layer.stats();
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!     }))
//!     .layer(layer);
//! assert_eq!(stats.open_streams(), 0);
//! ```
//!
//! Several layers (one per router, say) can count into one handle, given to
//! each builder, and a metrics exporter can read it periodically:
//!
//! ```
//! use axum_sse::{CloseReason, SseLayer, SseStats};
//!
//! let stats = SseStats::new();
//! let public = SseLayer::builder().stats(stats.clone()).build();
//! let admin = SseLayer::builder().stats(stats.clone()).build();
//!
//! let now = stats.snapshot();
//! println!(
//!     "open {} accepted {} refused {} idle-closed {} bytes {}",
//!     now.open_streams(),
//!     now.accepted(),
//!     now.rejected_by_limit() + now.rejected_by_shutdown(),
//!     now.closed(CloseReason::Idle),
//!     now.bytes_sent(),
//! );
//! ```
//!
//! With the `metrics` feature,
//! [`SseLayerBuilder::metrics`](crate::SseLayerBuilder::metrics) exports
//! these counts through the `metrics` facade as they change (see the
//! `metrics` module), with histograms of stream durations by close reason.
//!
//! Each stream also logs at debug level when it opens and when it closes,
//! with the reason and how long it lasted.
//!
//! Counting costs two relaxed atomic additions per body frame (events and
//! bytes; events queued together leave as one frame) and a few per stream.

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, AtomicU8, Ordering::Relaxed},
        Arc,
    },
};

// Tokio's clock: the one the time limits end streams by (and, in tests, the
// paused one).
use tokio::time::Instant;

/// Why an event stream ended, as [`SseStats`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client went away (or its connection failed) first.
    ClientGone,
    /// The handler's stream ended: every writer was dropped (or the
    /// stream-style body ended) and everything queued was sent.
    Finished,
    /// The stream-style body failed (an error item, an invalid event).
    Error,
    /// No event for the idle timeout.
    Idle,
    /// The stream reached its maximum duration.
    MaxDuration,
    /// The client read too slowly: a send waited longer than the send
    /// timeout.
    SlowConsumer,
    /// The server shut down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in the order of the counters.
    pub(crate) const ALL: [Self; 7] = [
        Self::ClientGone,
        Self::Finished,
        Self::Error,
        Self::Idle,
        Self::MaxDuration,
        Self::SlowConsumer,
        Self::Shutdown,
    ];

    /// A short snake-case name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientGone => "client_gone",
            Self::Finished => "finished",
            Self::Error => "error",
            Self::Idle => "idle",
            Self::MaxDuration => "max_duration",
            Self::SlowConsumer => "slow_consumer",
            Self::Shutdown => "shutdown",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Default)]
struct Counters {
    // Written per frame: kept together.
    events: AtomicU64,
    bytes: AtomicU64,
    open: AtomicU64,
    accepted: AtomicU64,
    rejected_by_limit: AtomicU64,
    rejected_by_shutdown: AtomicU64,
    closed: [AtomicU64; CloseReason::ALL.len()],
}

/// Counters of the event streams served by one or more
/// [`SseLayer`](crate::SseLayer)s. Cloning shares the counters. See the
/// [module docs](crate::stats).
#[derive(Clone, Default)]
pub struct SseStats {
    counters: Arc<Counters>,
    /// The metrics of the layer that holds this handle, if it has any.
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<crate::metrics::StreamMetrics>>,
}

impl SseStats {
    /// New counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Event streams open now.
    pub fn open_streams(&self) -> u64 {
        self.counters.open.load(Relaxed)
    }

    /// All counters, read now. Each is read on its own, so a snapshot taken
    /// while streams open and close may be off by the few that are changing.
    pub fn snapshot(&self) -> SseStatsSnapshot {
        let c = &*self.counters;
        SseStatsSnapshot {
            open: c.open.load(Relaxed),
            accepted: c.accepted.load(Relaxed),
            rejected_by_limit: c.rejected_by_limit.load(Relaxed),
            rejected_by_shutdown: c.rejected_by_shutdown.load(Relaxed),
            closed: CloseReason::ALL.map(|reason| c.closed[reason.index()].load(Relaxed)),
            events: c.events.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
        }
    }

    pub(crate) fn reject_by_limit(&self) {
        self.counters.rejected_by_limit.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.rejected_by_limit();
        }
    }

    pub(crate) fn reject_by_shutdown(&self) {
        self.counters.rejected_by_shutdown.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.rejected_by_shutdown();
        }
    }

    /// The same counters, exporting into `metrics` (or not at all).
    #[cfg(feature = "metrics")]
    pub(crate) fn with_metrics(self, metrics: Option<Arc<crate::metrics::StreamMetrics>>) -> Self {
        Self { metrics, ..self }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn metrics(&self) -> Option<&Arc<crate::metrics::StreamMetrics>> {
        self.metrics.as_ref()
    }
}

impl fmt::Debug for SseStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// The counters of an [`SseStats`] at one moment.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SseStatsSnapshot {
    open: u64,
    accepted: u64,
    rejected_by_limit: u64,
    rejected_by_shutdown: u64,
    closed: [u64; CloseReason::ALL.len()],
    events: u64,
    bytes: u64,
}

impl SseStatsSnapshot {
    /// Event streams open.
    pub fn open_streams(&self) -> u64 {
        self.open
    }

    /// Event streams opened so far: responses that started a stream.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Requests answered `429 Too Many Requests` by a stream limit.
    pub fn rejected_by_limit(&self) -> u64 {
        self.rejected_by_limit
    }

    /// Requests answered `503 Service Unavailable` after the shutdown.
    pub fn rejected_by_shutdown(&self) -> u64 {
        self.rejected_by_shutdown
    }

    /// Event streams that ended for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }

    /// Event streams that ended, for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// Events sent: those of [`SseWriter`](crate::SseWriter)s and the
    /// farewell events of a shutdown. Stream-style bodies (an
    /// [`SseBody`](crate::SseBody), axum's `Sse`) count in bytes only, and
    /// heartbeats and the `retry` prefix not at all.
    pub fn events_sent(&self) -> u64 {
        self.events
    }

    /// Bytes of the events counted by [`events_sent`](Self::events_sent),
    /// plus the bytes of stream-style bodies.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes
    }
}

impl fmt::Debug for SseStatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Closed<'a>(&'a SseStatsSnapshot);
        impl fmt::Debug for Closed<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(
                        CloseReason::ALL.map(|reason| (reason.as_str(), self.0.closed(reason))),
                    )
                    .finish()
            }
        }
        f.debug_struct("SseStatsSnapshot")
            .field("open", &self.open)
            .field("accepted", &self.accepted)
            .field("rejected_by_limit", &self.rejected_by_limit)
            .field("rejected_by_shutdown", &self.rejected_by_shutdown)
            .field("closed", &Closed(self))
            .field("events", &self.events)
            .field("bytes", &self.bytes)
            .finish()
    }
}

const NO_REASON: u8 = u8::MAX;

/// One open event stream, shared by the bodies that wrap it: each may say
/// why the stream ends (the first to say wins); the close is counted when the
/// last of them is dropped, that is when the connection lets go of the body.
#[derive(Debug)]
pub(crate) struct StreamRecord {
    stats: SseStats,
    reason: AtomicU8,
    opened: Instant,
}

impl StreamRecord {
    /// Counts a new open stream.
    pub(crate) fn open(stats: &SseStats) -> Arc<Self> {
        let c = &stats.counters;
        c.accepted.fetch_add(1, Relaxed);
        c.open.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &stats.metrics {
            metrics.opened();
        }
        tracing::debug!("SSE stream opened");
        Arc::new(Self {
            stats: stats.clone(),
            reason: AtomicU8::new(NO_REASON),
            opened: Instant::now(),
        })
    }

    /// Counts a frame of `events` events (zero when unknown) and `bytes`
    /// bytes.
    #[inline]
    pub(crate) fn sent(&self, events: usize, bytes: usize) {
        let c = &self.stats.counters;
        if events > 0 {
            c.events.fetch_add(events as u64, Relaxed);
        }
        c.bytes.fetch_add(bytes as u64, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.stats.metrics {
            metrics.sent(events, bytes);
        }
    }

    /// Says why the stream ends, unless a reason was already given.
    pub(crate) fn end(&self, reason: CloseReason) {
        let _ = self
            .reason
            .compare_exchange(NO_REASON, reason.index() as u8, Relaxed, Relaxed);
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        let reason = CloseReason::ALL
            .get(usize::from(*self.reason.get_mut()))
            .copied()
            .unwrap_or(CloseReason::ClientGone);
        let c = &self.stats.counters;
        c.closed[reason.index()].fetch_add(1, Relaxed);
        c.open.fetch_sub(1, Relaxed);
        let lasted = self.opened.elapsed();
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.stats.metrics {
            metrics.closed(reason, lasted);
        }
        tracing::debug!(
            reason = reason.as_str(),
            duration_ms = lasted.as_millis() as u64,
            "SSE stream closed"
        );
    }
}

/// Where a response carries its stream's record, for the layers around it.
pub(crate) fn record_of(extensions: &http::Extensions) -> Option<Arc<StreamRecord>> {
    extensions.get::<Arc<StreamRecord>>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_a_silent_drop_is_a_client_gone() {
        let stats = SseStats::new();
        let record = StreamRecord::open(&stats);
        record.sent(3, 30);
        record.sent(0, 5);
        record.end(CloseReason::Idle);
        record.end(CloseReason::Finished);
        assert_eq!(stats.open_streams(), 1);
        drop(record);
        drop(StreamRecord::open(&stats));
        let now = stats.snapshot();
        assert_eq!(now.open_streams(), 0);
        assert_eq!(now.accepted(), 2);
        assert_eq!(now.closed(CloseReason::Idle), 1);
        assert_eq!(now.closed(CloseReason::ClientGone), 1);
        assert_eq!(now.closed(CloseReason::Finished), 0);
        assert_eq!(now.closed_total(), 2);
        assert_eq!((now.events_sent(), now.bytes_sent()), (3, 35));
    }
}
