//! `SseLayer`: the middleware that turns a handler's [`SseWriter`] into an
//! event stream response, and sets the SSE headers.
//!
//! Default settings:
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseWriter};
//!
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!     }))
//!     .layer(SseLayer::new());
//! ```
//!
//! Customised:
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseWriter};
//!
//! let layer = SseLayer::builder()
//!     .max_queued_events(16)         // events queued before `send` waits
//!     .max_queued_bytes(16 * 1024)   // bytes queued before `send` waits
//!     .build();
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!     }))
//!     .layer(layer);
//! ```
//!
//! [`SseWriter`]: crate::SseWriter

mod body;
mod future;
mod service;

pub use self::{body::ResponseBody, future::ResponseFuture, service::SseService};

use std::time::Duration;

use tower::Layer;

use crate::{
    queue::QueueLimits, stream_service::EventStreamService, HeartbeatLayer, LastEventIdLayer,
    LastEventIdService, RetryLayer,
};

/// Events a writer may queue before `send` waits, by default.
const DEFAULT_MAX_QUEUED_EVENTS: usize = 1024;
/// Bytes a writer may queue before `send` waits, by default.
const DEFAULT_MAX_QUEUED_BYTES: usize = 64 * 1024;

/// Serves [`SseWriter`](crate::SseWriter) streams and sets the SSE headers on
/// every `text/event-stream` response of the routes it wraps; with the
/// [builder](SseLayer::builder), also heartbeats, a `retry` advice and the
/// rules for `Last-Event-ID`.
///
/// For each request it:
/// - reads the request's `Last-Event-ID` (see [`LastEventIdLayer`]);
/// - lets the handler extract an [`SseWriter`](crate::SseWriter);
/// - answers `200` with the SSE headers as soon as the writer starts the
///   stream, and keeps driving the handler so it can go on sending;
/// - passes any other answer through untouched;
/// - adds `Cache-Control: no-cache`, `X-Accel-Buffering: no` and, on
///   HTTP/1.x, `Connection: keep-alive` to every event stream, including
///   axum's own `Sse` and [`SseBody`](crate::SseBody);
/// - starts every event stream with the `retry` advice and sends heartbeats
///   on idle streams, if configured.
#[derive(Debug, Clone)]
#[must_use]
pub struct SseLayer {
    limits: QueueLimits,
    heartbeat: Option<HeartbeatLayer>,
    retry: Option<RetryLayer>,
    last_event_id: LastEventIdLayer,
}

impl SseLayer {
    /// The layer with default settings; see [`SseLayerBuilder`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a layer.
    pub fn builder() -> SseLayerBuilder {
        SseLayerBuilder {
            layer: Self {
                limits: QueueLimits {
                    max_events: DEFAULT_MAX_QUEUED_EVENTS,
                    max_bytes: DEFAULT_MAX_QUEUED_BYTES,
                },
                heartbeat: None,
                retry: None,
                last_event_id: LastEventIdLayer::new(),
            },
        }
    }
}

impl Default for SseLayer {
    fn default() -> Self {
        Self::new()
    }
}

/// The stack an [`SseLayer`] puts around a service, outermost first:
/// Last-Event-ID, retry, heartbeat, then the writer and headers.
pub type SseStack<S> = LastEventIdService<
    EventStreamService<
        EventStreamService<SseService<S>, Option<HeartbeatLayer>>,
        Option<RetryLayer>,
    >,
>;

impl<S> Layer<S> for SseLayer {
    type Service = SseStack<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let service = SseService::new(inner, self.limits);
        let service = EventStreamService::new(service, self.heartbeat.clone());
        let service = EventStreamService::new(service, self.retry.clone());
        self.last_event_id.layer(service)
    }
}

/// Configures an [`SseLayer`]; made by [`SseLayer::builder`].
///
/// ```
/// use std::time::Duration;
/// use axum_sse::{LastEventIdLayer, SseLayer};
///
/// let layer = SseLayer::builder()
///     .heartbeat(Duration::from_secs(15))
///     .retry(Duration::from_secs(3))
///     .last_event_id(LastEventIdLayer::new().query_param("lastEventId"))
///     .build();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SseLayerBuilder {
    layer: SseLayer,
}

impl SseLayerBuilder {
    /// Sets how many events a writer may queue for a client before
    /// [`send`](crate::SseWriter::send) waits. Default: 1024. Zero is taken
    /// as one.
    pub fn max_queued_events(mut self, events: usize) -> Self {
        self.layer.limits.max_events = events.max(1);
        self
    }

    /// Sets how many bytes of events a writer may queue for a client before
    /// [`send`](crate::SseWriter::send) waits. Default: 64 KiB. An event
    /// larger than this still goes out, alone.
    ///
    /// Everything queued leaves as one body frame, so this is also the
    /// largest write a burst of events turns into.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.layer.limits.max_bytes = bytes.max(1);
        self
    }

    /// Sends a heartbeat on event streams idle for an interval: pass the
    /// interval, or a [`HeartbeatLayer`] to choose the message. Default: no
    /// heartbeat. 15 seconds is a common choice: below the idle timeouts of
    /// most proxies, and it bounds how long a vanished client goes unnoticed.
    pub fn heartbeat(mut self, heartbeat: impl Into<HeartbeatLayer>) -> Self {
        self.layer.heartbeat = Some(heartbeat.into());
        self
    }

    /// Starts every event stream with `retry: <ms>`, the delay clients wait
    /// before reconnecting. Default: none (browsers then pick their own,
    /// typically 3 seconds).
    pub fn retry(mut self, delay: Duration) -> Self {
        self.layer.retry = Some(RetryLayer::new(delay));
        self
    }

    /// Sets the rules for reading `Last-Event-ID`. Default:
    /// [`LastEventIdLayer::new`] (the header only, at most 1024 bytes, an
    /// invalid id treated as absent).
    pub fn last_event_id(mut self, rules: LastEventIdLayer) -> Self {
        self.layer.last_event_id = rules;
        self
    }

    /// Builds the layer.
    pub fn build(self) -> SseLayer {
        self.layer
    }
}

impl Default for SseLayerBuilder {
    fn default() -> Self {
        SseLayer::builder()
    }
}
