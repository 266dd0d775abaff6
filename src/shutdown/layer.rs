use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use tower::Layer;

use super::{ShutdownService, SseShutdown};
use crate::{
    util::answer::{retry_after_value, DEFAULT_RETRY_AFTER},
    Event, EventError, SseStats,
};

/// Ends the event streams of the routes it wraps when its [`SseShutdown`]
/// is triggered, and refuses new requests then. See the
/// [module docs](crate::shutdown).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it, with either handler style. Two on one stream are two
/// handles: either ends it, with its own farewell. See [layer ordering](crate#layer-ordering-and-tower-http).
#[derive(Debug, Clone)]
#[must_use]
pub struct ShutdownLayer {
    pub(super) shutdown: SseShutdown,
    pub(super) farewell: Option<Bytes>,
    pub(super) retry_after: HeaderValue,
    pub(super) stats: Option<SseStats>,
}

impl ShutdownLayer {
    /// Ends streams when `shutdown` is triggered, with no farewell event.
    pub fn new(shutdown: SseShutdown) -> Self {
        Self {
            shutdown,
            farewell: None,
            retry_after: retry_after_value(DEFAULT_RETRY_AFTER),
            stats: None,
        }
    }

    /// Sends `event` as the last event of every stream the shutdown ends.
    /// Default: none.
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

    /// Sends `event` as the last event of every stream the shutdown ends, or
    /// reports why it is invalid.
    ///
    /// # Errors
    ///
    /// The first invalid field of `event`, or [`EventError::NoData`].
    pub fn try_farewell(mut self, event: Event) -> Result<Self, EventError> {
        self.farewell = Some(event.encode_dispatchable()?.into_bytes());
        Ok(self)
    }

    /// Sets the `Retry-After` of the `503` answers (whole seconds, rounded
    /// up). Default: 5 seconds.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = retry_after_value(delay);
        self
    }

    pub(crate) fn farewell_bytes(mut self, farewell: Option<Bytes>) -> Self {
        self.farewell = farewell;
        self
    }

    pub(crate) fn stats(mut self, stats: SseStats) -> Self {
        self.stats = Some(stats);
        self
    }
}

impl<S> Layer<S> for ShutdownLayer {
    type Service = ShutdownService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ShutdownService::new(inner, Some(self.clone()))
    }
}
