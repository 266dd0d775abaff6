//! Time limits: end event streams that stay silent too long, or that have
//! lasted long enough.
//!
//! - An **idle timeout** ends a stream after an interval without an event.
//!   Heartbeats do not count as events when the limits sit inside the
//!   heartbeat, as [`SseLayer`](crate::SseLayer) puts them.
//! - A **maximum duration** ends a stream that long after it started, less
//!   a random **jitter** per stream, so thousands of clients connected at
//!   the same moment (after a deploy, say) do not all reconnect in the same
//!   second.
//!
//! Both end the body cleanly, as if the handler had finished: the client
//! sees the end of the response, never an error, and an `EventSource`
//! reconnects (with `Last-Event-ID`, so it can resume). The stream ends
//! after a whole frame; events the handler still had queued are dropped
//! with it.
//!
//! It works on any `text/event-stream` response and leaves other responses
//! alone:
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseBody, TimeLimitLayer};
//! use futures_util::stream;
//!
//! let app: Router = Router::new()
//!     .route("/feed", get(|| async { SseBody::new(stream::pending::<Event>()) }))
//!     .layer(TimeLimitLayer::new().idle_timeout(Duration::from_secs(300)));
//! ```
//!
//! With every limit, and from the [`SseLayer`](crate::SseLayer) builder:
//!
//! ```
//! use std::time::Duration;
//! use axum_sse::{SseLayer, TimeLimitLayer};
//!
//! let limits = TimeLimitLayer::new()
//!     .idle_timeout(Duration::from_secs(300))
//!     .max_duration(Duration::from_secs(3600))
//!     .max_duration_jitter(Duration::from_secs(300)); // each stream: 55 to 60 minutes
//!
//! let layer = SseLayer::builder()
//!     .heartbeat(Duration::from_secs(15))
//!     .idle_timeout(Duration::from_secs(300))
//!     .max_duration(Duration::from_secs(3600))
//!     .max_duration_jitter(Duration::from_secs(300))
//!     .build();
//! ```
//!
//! Each stream has one timer, armed when the body first waits, and reads the
//! clock once per frame: no timer work per event.

mod body;

use std::{sync::Arc, time::Duration};

use http::Extensions;
use tower::Layer;

use self::body::Limits;
pub use self::body::TimeLimitBody;
use crate::{
    layer::{Overrides, StreamSettings},
    stats::{record_of, StreamRecord},
    stream_service::{sealed, EventStreamService, WrapEventStream},
};

/// Ends event streams that stay idle too long or last too long. See the
/// [module docs](crate::time_limit).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it, with either handler style. Of two on one stream the one
/// closest to the handler wins, as a whole (its idle timeout, maximum
/// duration and jitter replace all of the other's). See [layer ordering](crate#layer-ordering-and-tower-http).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct TimeLimitLayer {
    idle_timeout: Option<Duration>,
    max_duration: Option<Duration>,
    jitter: Duration,
}

impl TimeLimitLayer {
    /// No limit at all until one is set.
    pub const fn new() -> Self {
        Self {
            idle_timeout: None,
            max_duration: None,
            jitter: Duration::ZERO,
        }
    }

    /// Ends a stream after `timeout` without an event. Default: none.
    pub const fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Ends a stream `duration` after it started (less the jitter). Default:
    /// none.
    pub const fn max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(duration);
        self
    }

    /// Shortens each stream's maximum duration by a random amount up to
    /// `jitter` (at most the whole duration), so streams opened together
    /// end spread over that window. Default: zero.
    pub const fn max_duration_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether any limit is set.
    pub(crate) const fn is_set(&self) -> bool {
        self.idle_timeout.is_some() || self.max_duration.is_some()
    }

    fn limits(&self, record: Option<Arc<StreamRecord>>) -> Option<Limits> {
        if !self.is_set() {
            return None;
        }
        let max_duration = self.max_duration.map(|max| {
            let jitter = self.jitter.min(max);
            if jitter.is_zero() {
                return max;
            }
            let nanos = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
            max - Duration::from_nanos(fastrand::u64(..=nanos))
        });
        Some(Limits::new(self.idle_timeout, max_duration, record))
    }
}

/// The service made by [`TimeLimitLayer`]: the event-stream service every
/// per-stream layer of this crate shares, with this layer's setting.
pub type TimeLimitService<S> = EventStreamService<S, TimeLimitLayer>;

impl<S> Layer<S> for TimeLimitLayer {
    type Service = TimeLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventStreamService::new(inner, *self)
    }
}

impl sealed::Sealed for TimeLimitLayer {
    const KIND: u8 = crate::stream_service::TIME_LIMIT;

    fn record(&self, settings: &mut StreamSettings) {
        settings.overrides.time_limit = Some(*self);
    }

    fn recorded(overrides: &Overrides) -> Option<Self> {
        overrides.time_limit
    }
}

impl WrapEventStream for TimeLimitLayer {
    type Body<B> = TimeLimitBody<B>;

    fn wrap_body<B>(&self, body: B, is_event_stream: bool) -> TimeLimitBody<B> {
        TimeLimitBody::new(body, is_event_stream.then(|| self.limits(None)).flatten())
    }

    fn pass_through<B>(body: B) -> TimeLimitBody<B> {
        TimeLimitBody::new(body, None)
    }

    fn wrap_stream<B>(&self, body: B, extensions: &Extensions) -> TimeLimitBody<B> {
        TimeLimitBody::new(body, self.limits(record_of(extensions)))
    }
}
