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
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseWriter};
//!
//! let layer = SseLayer::builder()
//!     .max_queued_events(16)         // events queued before `send` waits
//!     .max_queued_bytes(16 * 1024)   // bytes queued before `send` waits
//!     .send_timeout(Duration::from_secs(10)) // then the client is too slow
//!     .heartbeat(Duration::from_secs(15))
//!     .idle_timeout(Duration::from_secs(600))
//!     .max_duration(Duration::from_secs(3600))
//!     .max_streams(10_000)
//!     .build();
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!     }))
//!     .layer(layer);
//! ```
//!
//! [`SseWriter`]: crate::SseWriter

mod builder;
mod service;
mod settings;

pub use self::builder::SseLayerBuilder;
pub use self::service::{ResponseBody, ResponseFuture, SseService};
pub(crate) use self::settings::{record, Overrides, StreamSettings};

use tower::Layer;

use crate::{
    limit::StreamLimitService,
    shutdown::ShutdownService,
    stream_service::EventStreamService,
    writer::{queue::QueueLimits, service::WriterService},
    HeartbeatLayer, LastEventIdLayer, LastEventIdService, RetryLayer, ShutdownLayer, SseStats,
    StreamLimitLayer, TimeLimitLayer,
};

/// Serves [`SseWriter`](crate::SseWriter) streams and sets the SSE headers on
/// every `text/event-stream` response of the routes it wraps; with the
/// [builder](SseLayer::builder), also heartbeats, a `retry` advice, the
/// rules for `Last-Event-ID`, time limits, stream limits and a graceful
/// shutdown.
///
/// For each request it:
/// - answers `503` once its [shutdown](SseLayerBuilder::shutdown) was
///   triggered, and `429` when a [stream limit](SseLayerBuilder::max_streams)
///   is reached, before the handler runs;
/// - reads the request's `Last-Event-ID` (see [`LastEventIdLayer`]);
/// - lets the handler extract an [`SseWriter`](crate::SseWriter);
/// - answers `200` with the SSE headers as soon as the writer starts the
///   stream, and keeps driving the handler so it can go on sending;
/// - passes any other answer through untouched;
/// - adds `Cache-Control: no-cache, no-transform`, `X-Accel-Buffering: no` and, on
///   HTTP/1.x, `Connection: keep-alive` to every event stream, including
///   axum's own `Sse` and [`SseBody`](crate::SseBody);
/// - starts every event stream with the `retry` advice, sends heartbeats on
///   idle streams and ends streams past their time limits, if configured
///   here, by a [`RetryLayer`], [`HeartbeatLayer`] or [`TimeLimitLayer`]
///   inside it (on a route, say: the one closest to the handler wins), or
///   by the handler ([`SseWriter::set_retry`](crate::SseWriter::set_retry),
///   [`SseWriter::set_heartbeat`](crate::SseWriter::set_heartbeat));
/// - holds the permits of the [`StreamLimitLayer`]s inside it, and ends
///   writer streams on the shutdowns of the [`ShutdownLayer`]s inside it,
///   for the life of each stream;
/// - counts streams in its [`SseStats`].
///
/// See the crate docs, [layer ordering](crate#layer-ordering-and-tower-http),
/// for how it composes with the layers around it and inside it.
#[derive(Debug, Clone)]
#[must_use]
pub struct SseLayer {
    limits: QueueLimits,
    heartbeat: Option<HeartbeatLayer>,
    retry: Option<RetryLayer>,
    last_event_id: Option<LastEventIdLayer>,
    time_limit: Option<TimeLimitLayer>,
    stream_limit: Option<StreamLimitLayer>,
    shutdown: Option<ShutdownLayer>,
    stats: SseStats,
}

impl SseLayer {
    /// The layer with default settings; see [`SseLayerBuilder`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a layer.
    pub fn builder() -> SseLayerBuilder {
        SseLayerBuilder::new()
    }

    /// The counters of the streams this layer serves (shared with its
    /// clones, and with the handle given to
    /// [`SseLayerBuilder::stats`], if any).
    pub fn stats(&self) -> SseStats {
        self.stats.clone()
    }
}

impl Default for SseLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for SseLayer {
    type Service = SseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let service = WriterService::new(inner, self.limits, self.stats.clone());
        let service = EventStreamService::new(service, self.time_limit);
        let service = EventStreamService::new(service, self.heartbeat.clone());
        let service = EventStreamService::new(service, self.retry.clone());
        let service = StreamLimitService::new(service, self.stream_limit.clone());
        let service = ShutdownService::new(service, self.shutdown.clone());
        SseService::new(LastEventIdService::new(service, self.last_event_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, future::Future, pin::Pin};

    use axum::body::Body;
    use http::Response;

    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    type Handler = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    #[test]
    fn bodies_and_futures_are_send() {
        // `Sync` when the inner body is (axum's `Body` is not).
        assert_send_sync::<crate::TimeLimitBody<String>>();
        assert_send_sync::<crate::limit::StreamLimitBody<String>>();
        assert_send_sync::<crate::shutdown::ShutdownBody<String>>();
        assert_send::<crate::shutdown::ShutdownBody<Body>>();
        assert_send::<crate::limit::ResponseFuture<Handler, Body>>();
        assert_send::<crate::shutdown::ResponseFuture<Handler, Body>>();
        assert_send::<ResponseFuture<Handler, Body>>();
        assert_send::<ResponseBody<Handler, Body>>();
        assert_send_sync::<SseLayer>();
        assert_send_sync::<crate::SseShutdown>();
        assert_send_sync::<crate::SseStats>();
    }
}
