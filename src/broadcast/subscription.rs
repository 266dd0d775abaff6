//! The stream a subscriber reads.

use std::{
    fmt,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use futures_util::{stream::BoxStream, Stream};

use crate::EncodedEvent;

use super::stats::Counters;

/// The events of one topic for one subscriber: the replay, then live events.
///
/// A [`Stream`] of [`EncodedEvent`]s, ready for
/// [`SseBody::new`](crate::SseBody::new). Every event carries its channel
/// id, so a client that reconnects with `Last-Event-ID` resumes where it
/// stopped.
///
/// The stream ends when the subscriber falls further behind than its
/// buffer (see [`BroadcastBuilder::buffer`](super::BroadcastBuilder::buffer)),
/// and when the backend (Redis, or a [`Backend`](super::Backend) of your
/// own) cannot be read for some 10 seconds while the subscription needs its
/// history (shorter outages are retried). The client reconnects and resumes
/// from the history.
#[must_use = "a subscription does nothing unless polled"]
pub struct Subscription {
    // Dropped before `_guard`, so the guard sees the receiver gone. The
    // mutex only makes the subscription `Sync`: polling takes `&mut self`,
    // so it is never locked.
    stream: Mutex<BoxStream<'static, EncodedEvent>>,
    missed: bool,
    _guard: Guard,
}

impl Subscription {
    pub(super) fn new(
        stream: BoxStream<'static, EncodedEvent>,
        missed: bool,
        counters: Arc<Counters>,
        on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
    ) -> Self {
        counters.subscribed(missed);
        Self {
            stream: Mutex::new(stream),
            missed,
            _guard: Guard { counters, on_drop },
        }
    }

    /// Whether the resume id was no longer (or never) in the history, so
    /// events may have been missed; the stream then starts with the
    /// missed-events event.
    pub fn missed_events(&self) -> bool {
        self.missed
    }
}

impl Stream for Subscription {
    type Item = EncodedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        self.stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .poll_next(cx)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("missed_events", &self.missed)
            .finish_non_exhaustive()
    }
}

struct Guard {
    counters: Arc<Counters>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.counters.unsubscribed();
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}
