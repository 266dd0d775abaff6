//! Metrics: the counters of [`SseStats`](crate::SseStats) and of a
//! [`Broadcast`](crate::broadcast::Broadcast), and histograms of latency and
//! stream life, through the [`metrics`](https://docs.rs/metrics) facade, so
//! any exporter (Prometheus, OpenTelemetry, StatsD) takes them. Feature
//! `metrics`.
//!
//! Nothing is exported until a builder is given an [`SseMetrics`]:
//! [`SseLayerBuilder::metrics`](crate::SseLayerBuilder::metrics) for the
//! streams of a layer,
//! [`BroadcastBuilder::metrics`](crate::broadcast::BroadcastBuilder::metrics)
//! for a broadcast. Without that call (or without the feature) nothing is
//! registered and nothing is recorded.
//!
//! The metric handles are registered when the layer or the broadcast is
//! built, with the recorder current then: install the exporter's recorder
//! first (globally, `metrics::set_global_recorder`, or for a scope,
//! `metrics::with_local_recorder`).
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{broadcast::Broadcast, Event, SseLayer, SseMetrics, SseWriter};
//!
//! // Install the exporter's recorder first, for example
//! // `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`.
//! let layer = SseLayer::builder().metrics(SseMetrics::new()).build();
//! let feed = Broadcast::builder().metrics(SseMetrics::new()).build();
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!     }))
//!     .layer(layer);
//! # drop(feed);
//! ```
//!
//! Customised: another prefix for the names (here `chat_streams_open`, ...).
//!
//! ```
//! use axum_sse::{SseLayer, SseMetrics};
//!
//! let layer = SseLayer::builder()
//!     .metrics(SseMetrics::new().prefix("chat"))
//!     .build();
//! # drop(layer);
//! ```
//!
//! # The metrics
//!
//! Names follow the Prometheus conventions (`_total` on counters, the base
//! unit as a suffix); `sse` is the default prefix. Durations are recorded
//! in seconds. Every metric is described to the recorder (with its unit),
//! which exporters turn into `# HELP` lines.
//!
//! Of an [`SseLayer`](crate::SseLayer), counting what its
//! [`SseStats`](crate::SseStats) counts:
//!
//! | name | type | labels | unit | what |
//! | --- | --- | --- | --- | --- |
//! | `sse_streams_open` | gauge | | streams | event streams open now |
//! | `sse_streams_opened_total` | counter | | streams | responses that started an event stream ([`accepted`](crate::SseStatsSnapshot::accepted)) |
//! | `sse_streams_rejected_total` | counter | `reason`: `limit` (answered 429), `shutdown` (answered 503) | requests | requests refused before the handler ran |
//! | `sse_streams_closed_total` | counter | `reason`: a [`CloseReason`] ([`as_str`](crate::CloseReason::as_str): `client_gone`, `finished`, `error`, `idle`, `max_duration`, `slow_consumer`, `shutdown`) | streams | event streams that ended |
//! | `sse_stream_duration_seconds` | histogram | `reason`, as above | seconds | how long each event stream lasted, recorded when it ends |
//! | `sse_sent_events_total` | counter | | events | [`events_sent`](crate::SseStatsSnapshot::events_sent) |
//! | `sse_sent_bytes_total` | counter | | bytes | [`bytes_sent`](crate::SseStatsSnapshot::bytes_sent) |
//! | `sse_send_wait_seconds` | histogram | | seconds | how long an [`SseWriter::send`](crate::SseWriter::send) waited for room in a full queue (only sends that found it full), until it had room, the client left, or the [send timeout](crate::SseLayerBuilder::send_timeout) |
//!
//! Of a [`Broadcast`](crate::broadcast::Broadcast), this instance's counts,
//! as [`BroadcastStatsSnapshot`](crate::broadcast::BroadcastStatsSnapshot)
//! has them:
//!
//! | name | type | labels | unit | what |
//! | --- | --- | --- | --- | --- |
//! | `sse_broadcast_subscribers` | gauge | | subscriptions | subscriptions open now |
//! | `sse_broadcast_published_total` | counter | | events | events published through this instance |
//! | `sse_broadcast_slow_disconnects_total` | counter | | subscriptions | subscriptions ended because they fell behind their buffer |
//! | `sse_broadcast_missed_resumes_total` | counter | | subscriptions | subscriptions that started with the missed-events event |
//! | `sse_broadcast_delivery_seconds` | histogram | | seconds | from [`publish`](crate::broadcast::Broadcast::publish) taking a live event to a subscription yielding it into its stream; with Redis, from the Redis server's time of the entry (millisecond resolution, and that server's clock against this machine's); with a custom [`Backend`](crate::broadcast::Backend), from its handing the entry to the live feed ([`LiveFeed::send`](crate::broadcast::LiveFeed::send)); events a subscriber fills from the history (after its instance's reader reconnected, or the first of a topic on an instance) are not timed |
//!
//! Several layers (or broadcasts) given the same prefix add up into the same
//! metrics. A layer without `metrics` does not count into them, even when
//! it shares an [`SseStats`](crate::SseStats) with one that has.
//!
//! Histograms leave their buckets to the exporter. With
//! `metrics-exporter-prometheus`, `set_buckets_for_metric` with
//! `Matcher::Suffix("_seconds".into())` makes them Prometheus histograms
//! (else they are summaries); `examples/feed.rs` does so.
//!
//! # Cost
//!
//! With the feature off, none. With it on and no `metrics` call, a check of
//! an empty `Option` where a counter changes. With metrics on, two
//! counter increments per body frame (events and bytes; through the
//! recorder's handles, an atomic addition each with the Prometheus
//! exporter), a few per stream, a clock read per send that waits, and with
//! a broadcast a clock read per publish and per live event delivered.
//! `BENCHMARKS.md` has the measured cost.

use std::{
    borrow::Cow,
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};

use crate::stats::CloseReason;

/// The default prefix of every metric name.
const DEFAULT_PREFIX: &str = "sse";

/// Turns metrics on for a layer or a broadcast: given to
/// [`SseLayerBuilder::metrics`](crate::SseLayerBuilder::metrics) or
/// [`BroadcastBuilder::metrics`](crate::broadcast::BroadcastBuilder::metrics).
/// See the [module docs](self) for the metrics and their names.
///
/// ```
/// use axum_sse::SseMetrics;
///
/// let metrics = SseMetrics::new(); // names `sse_streams_open`, ...
/// let metrics = SseMetrics::new().prefix("chat"); // `chat_streams_open`, ...
/// # drop(metrics);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SseMetrics {
    prefix: Cow<'static, str>,
}

impl SseMetrics {
    /// Metrics named `sse_...`.
    pub const fn new() -> Self {
        Self {
            prefix: Cow::Borrowed(DEFAULT_PREFIX),
        }
    }

    /// Sets the prefix of every metric name: `{prefix}_streams_open`, ...
    /// Default: `sse`. An empty prefix leaves the names without one
    /// (`streams_open`). The exporter decides what it accepts in a name
    /// (Prometheus: ASCII letters, digits, `_` and `:`, not first a digit).
    pub fn prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{name}", self.prefix)
        }
    }
}

impl Default for SseMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The handles of a layer's metrics, registered once when it is built.
pub(crate) struct StreamMetrics {
    open: Gauge,
    opened: Counter,
    rejected_by_limit: Counter,
    rejected_by_shutdown: Counter,
    closed: [Counter; CloseReason::ALL.len()],
    duration: [Histogram; CloseReason::ALL.len()],
    events: Counter,
    bytes: Counter,
    send_wait: Histogram,
}

impl StreamMetrics {
    /// Registers the handles with the current recorder.
    pub(crate) fn register(config: &SseMetrics) -> Arc<Self> {
        let open = config.name("streams_open");
        let opened = config.name("streams_opened_total");
        let rejected = config.name("streams_rejected_total");
        let closed = config.name("streams_closed_total");
        let duration = config.name("stream_duration_seconds");
        let events = config.name("sent_events_total");
        let bytes = config.name("sent_bytes_total");
        let send_wait = config.name("send_wait_seconds");
        describe_gauge!(open.clone(), Unit::Count, "Event streams open now.");
        describe_counter!(
            opened.clone(),
            Unit::Count,
            "Event streams opened: responses that started an event stream."
        );
        describe_counter!(
            rejected.clone(),
            Unit::Count,
            "Requests refused before the handler ran: by a stream limit (429) or after the shutdown (503)."
        );
        describe_counter!(
            closed.clone(),
            Unit::Count,
            "Event streams that ended, by why they ended."
        );
        describe_histogram!(
            duration.clone(),
            Unit::Seconds,
            "How long event streams lasted, by why they ended."
        );
        describe_counter!(
            events.clone(),
            Unit::Count,
            "Events sent: those of writers and the farewell events of a shutdown."
        );
        describe_counter!(
            bytes.clone(),
            Unit::Bytes,
            "Bytes of events sent, and of stream-style bodies."
        );
        describe_histogram!(
            send_wait.clone(),
            Unit::Seconds,
            "How long a send waited for room in a full queue."
        );
        Arc::new(Self {
            open: gauge!(open),
            opened: counter!(opened),
            rejected_by_limit: counter!(rejected.clone(), "reason" => "limit"),
            rejected_by_shutdown: counter!(rejected, "reason" => "shutdown"),
            closed: CloseReason::ALL
                .map(|reason| counter!(closed.clone(), "reason" => reason.as_str())),
            duration: CloseReason::ALL
                .map(|reason| histogram!(duration.clone(), "reason" => reason.as_str())),
            events: counter!(events),
            bytes: counter!(bytes),
            send_wait: histogram!(send_wait),
        })
    }

    pub(crate) fn opened(&self) {
        self.opened.increment(1);
        self.open.increment(1.0);
    }

    #[inline]
    pub(crate) fn sent(&self, events: usize, bytes: usize) {
        if events > 0 {
            self.events.increment(events as u64);
        }
        self.bytes.increment(bytes as u64);
    }

    pub(crate) fn closed(&self, reason: CloseReason, lasted: Duration) {
        self.closed[reason.index()].increment(1);
        self.duration[reason.index()].record(lasted);
        self.open.decrement(1.0);
    }

    pub(crate) fn rejected_by_limit(&self) {
        self.rejected_by_limit.increment(1);
    }

    pub(crate) fn rejected_by_shutdown(&self) {
        self.rejected_by_shutdown.increment(1);
    }
}

impl fmt::Debug for StreamMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamMetrics").finish_non_exhaustive()
    }
}

/// Records how long a send waited when dropped: at the end of the wait,
/// whatever ended it (room, a closed stream, the timeout, or the send
/// future dropped).
pub(crate) struct SendWait<'a> {
    metrics: &'a StreamMetrics,
    started: tokio::time::Instant,
}

impl<'a> SendWait<'a> {
    pub(crate) fn start(metrics: &'a StreamMetrics) -> Self {
        Self {
            metrics,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Drop for SendWait<'_> {
    fn drop(&mut self) {
        self.metrics.send_wait.record(self.started.elapsed());
    }
}

/// The handles of a broadcast's metrics, registered once when it is built.
pub(crate) struct BroadcastMetrics {
    subscribers: Gauge,
    published: Counter,
    slow_disconnects: Counter,
    missed_resumes: Counter,
    delivery: Histogram,
}

impl BroadcastMetrics {
    /// Registers the handles with the current recorder.
    pub(crate) fn register(config: &SseMetrics) -> Arc<Self> {
        let subscribers = config.name("broadcast_subscribers");
        let published = config.name("broadcast_published_total");
        let slow = config.name("broadcast_slow_disconnects_total");
        let missed = config.name("broadcast_missed_resumes_total");
        let delivery = config.name("broadcast_delivery_seconds");
        describe_gauge!(
            subscribers.clone(),
            Unit::Count,
            "Broadcast subscriptions open now on this instance."
        );
        describe_counter!(
            published.clone(),
            Unit::Count,
            "Events published through this instance."
        );
        describe_counter!(
            slow.clone(),
            Unit::Count,
            "Subscriptions ended because they fell further behind than their buffer."
        );
        describe_counter!(
            missed.clone(),
            Unit::Count,
            "Subscriptions that resumed from an id not in the history and started with the missed-events event."
        );
        describe_histogram!(
            delivery.clone(),
            Unit::Seconds,
            "Time from publishing a live event to a subscription yielding it."
        );
        Arc::new(Self {
            subscribers: gauge!(subscribers),
            published: counter!(published),
            slow_disconnects: counter!(slow),
            missed_resumes: counter!(missed),
            delivery: histogram!(delivery),
        })
    }

    pub(crate) fn subscribed(&self, missed: bool) {
        self.subscribers.increment(1.0);
        if missed {
            self.missed_resumes.increment(1);
        }
    }

    pub(crate) fn unsubscribed(&self) {
        self.subscribers.decrement(1.0);
    }

    pub(crate) fn published(&self) {
        self.published.increment(1);
    }

    pub(crate) fn slow_disconnect(&self) {
        self.slow_disconnects.increment(1);
    }

    /// A live event stamped `at` reached a subscription.
    #[inline]
    pub(crate) fn delivered(&self, at: Published) {
        let elapsed = match at {
            Published::None => return,
            Published::Local(at) => at.elapsed(),
            Published::Wall(at) => SystemTime::now()
                .duration_since(at)
                .unwrap_or(Duration::ZERO),
        };
        self.delivery.record(elapsed);
    }
}

impl fmt::Debug for BroadcastMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastMetrics").finish_non_exhaustive()
    }
}

/// When a live event was published, carried with it to its subscribers for
/// the delivery histogram.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Published {
    /// Metrics are off: nothing to measure.
    None,
    /// Published in this process.
    Local(tokio::time::Instant),
    /// Published elsewhere, at this wall-clock time (Redis's).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Wall(SystemTime),
}
