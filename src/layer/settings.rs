//! What the layers inside an [`SseLayer`](super::SseLayer), and the handler,
//! set for one writer stream before it starts.
//!
//! A writer stream is answered by the `SseLayer` itself, while the route's
//! own layers are still waiting for the handler: they never see the stream
//! response. So a per-stream layer called with a request that carries the
//! layer's slot records its setting here instead of wrapping the body, and
//! the `SseLayer` applies it in its own order. Inner layers are called
//! after outer ones and the handler runs last, so the last write of each
//! kind (the setting closest to the handler) wins.

use http::Extensions;

use crate::{
    limit::StreamPermit, shutdown::Watch, writer::extract::WriterSlot, HeartbeatLayer, RetryLayer,
    TimeLimitLayer,
};

/// The per-stream settings recorded in a request's slot.
#[derive(Debug, Default)]
pub struct StreamSettings {
    /// Applied by the `SseLayer`'s own retry, heartbeat and time-limit
    /// layers in place of their configuration.
    pub(crate) overrides: Overrides,
    /// The permits of the stream limits inside the `SseLayer`: they live as
    /// long as the stream body.
    pub(crate) permits: Vec<StreamPermit>,
    /// The shutdowns inside the `SseLayer`: each ends a writer stream.
    pub(crate) shutdowns: Vec<Watch>,
}

/// The settings that replace those of the `SseLayer`'s own layers, carried
/// in the stream response's extensions from the `SseLayer`'s innermost part
/// to its own layers.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub(crate) retry: Option<RetryLayer>,
    pub(crate) heartbeat: Option<HeartbeatLayer>,
    pub(crate) time_limit: Option<TimeLimitLayer>,
}

impl Overrides {
    pub(crate) fn is_empty(&self) -> bool {
        self.retry.is_none() && self.heartbeat.is_none() && self.time_limit.is_none()
    }
}

/// Records into the request's slot, if the request is under an
/// [`SseLayer`](super::SseLayer). Returns whether it was.
pub(crate) fn record(extensions: &Extensions, f: impl FnOnce(&mut StreamSettings)) -> bool {
    match extensions.get::<WriterSlot>() {
        Some(WriterSlot(slot)) => {
            slot.record(f);
            true
        }
        None => false,
    }
}
