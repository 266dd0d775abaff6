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
//!     .capacity(16)               // events queued before `send` waits
//!     .frame_budget(16 * 1024)    // bytes gathered into one body frame
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

use tower::Layer;

use crate::{body::DEFAULT_FRAME_BUDGET, writer::StreamConfig};

/// Events a writer may queue before `send` waits, by default.
const DEFAULT_CAPACITY: usize = 128;

/// Serves [`SseWriter`](crate::SseWriter) streams and sets the SSE headers on
/// every `text/event-stream` response of the routes it wraps.
///
/// For each request it:
/// - lets the handler extract an [`SseWriter`](crate::SseWriter);
/// - answers `200` with the SSE headers as soon as the writer starts the
///   stream, and keeps driving the handler so it can go on sending;
/// - passes any other answer through untouched;
/// - adds `Cache-Control: no-cache`, `X-Accel-Buffering: no` and, on
///   HTTP/1.x, `Connection: keep-alive` to every event stream, including
///   axum's own `Sse` and [`SseBody`](crate::SseBody).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct SseLayer {
    config: StreamConfig,
}

impl SseLayer {
    /// The layer with default settings; see [`SseLayerBuilder`].
    pub const fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a layer.
    pub const fn builder() -> SseLayerBuilder {
        SseLayerBuilder {
            config: StreamConfig {
                capacity: DEFAULT_CAPACITY,
                frame_budget: DEFAULT_FRAME_BUDGET,
            },
        }
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
        SseService::new(inner, self.config)
    }
}

/// Configures an [`SseLayer`]; made by [`SseLayer::builder`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct SseLayerBuilder {
    config: StreamConfig,
}

impl SseLayerBuilder {
    /// Sets how many events a writer may queue for a client before
    /// [`send`](crate::SseWriter::send) waits. Default: 128. Zero is taken
    /// as one.
    pub const fn capacity(mut self, events: usize) -> Self {
        self.config.capacity = if events == 0 { 1 } else { events };
        self
    }

    /// Sets the most bytes one body frame gathers from events queued at the
    /// same time. Default: 64 KiB. A larger event is still sent whole; a
    /// single ready event is never held back to wait for others.
    pub const fn frame_budget(mut self, bytes: usize) -> Self {
        self.config.frame_budget = if bytes == 0 { 1 } else { bytes };
        self
    }

    /// Builds the layer.
    pub const fn build(self) -> SseLayer {
        SseLayer {
            config: self.config,
        }
    }
}

impl Default for SseLayerBuilder {
    fn default() -> Self {
        SseLayer::builder()
    }
}
