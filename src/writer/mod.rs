//! The push path: request → layer → handler → writer → queue → body →
//! frames. One step a file:
//!
//! | step | file |
//! | --- | --- |
//! | [`SseLayer`](crate::SseLayer)'s innermost service gives each request a slot for its writer | `service.rs` (`WriterService`) |
//! | the commit rule: a slot is open, then streaming or answered, never both | `slot.rs` (`StreamSlot`) |
//! | the handler extracts its writer from the slot, or gets a `500` naming the missing layer | `extract.rs` |
//! | the service's future drives the handler until it answers or a writer starts the stream | `future.rs` |
//! | the writer encodes nothing (events are bytes already) and pushes them | `mod.rs` (`SseWriter`) |
//! | into one bounded byte buffer per stream (backpressure, send timeout) | `queue.rs` |
//! | a push from the handler its body is polling wakes no one | `inline.rs` |
//! | the response body takes everything queued as one frame, and keeps polling the handler inline | `body.rs` |
//! | why a send failed | `error.rs` |

pub(crate) mod body;
mod error;
pub(crate) mod extract;
pub(crate) mod future;
mod inline;
pub(crate) mod queue;
pub(crate) mod service;
mod slot;

pub(crate) use self::error::Refused;
pub use self::error::{SseError, TrySendError};
pub(crate) use self::slot::StreamSlot;

use std::{fmt, future::Future, sync::Arc, task::Poll, time::Duration};

use tokio::time::Instant;

use crate::{
    writer::queue::{PushError, Queue},
    EncodedEvent, Event, HeartbeatLayer, RetryLayer,
};

/// Pushes events to the client of one request.
///
/// Extract it in a handler on a route with [`SseLayer`](crate::SseLayer).
/// The stream starts at the first [`send`](Self::send) (or at
/// [`start`](Self::start)): the layer then answers `200` with the SSE headers
/// at once and keeps driving the handler, so it can go on sending inline.
/// Until then the handler may answer anything else (a 401, a 400), and that
/// answer is what the client gets.
///
/// ```
/// use axum::{routing::get, Router};
/// use axum_sse::{Event, SseError, SseLayer, SseWriter};
///
/// async fn countdown(mut sse: SseWriter) -> Result<(), SseError> {
///     for n in (1..=3).rev() {
///         sse.send(Event::new().id(n).data(n.to_string())).await?;
///     }
///     sse.send(Event::new().event("liftoff").data("")).await
/// }
///
/// let app: Router = Router::new()
///     .route("/countdown", get(countdown))
///     .layer(SseLayer::new());
/// ```
///
/// The writer can also move to a task of its own: a handler that spawns it
/// and returns a success starts the stream then, and the stream ends when the
/// last clone of the writer is dropped.
///
/// The queue between the writer and the client is bounded: `send` waits
/// while it is full (backpressure), `try_send` hands the event back. A send
/// that waits longer than the layer's
/// [send timeout](crate::SseLayerBuilder::send_timeout) gives up on the
/// client: its stream is closed and the send returns [`SseError::Timeout`].
pub struct SseWriter {
    queue: Arc<Queue>,
    slot: Arc<StreamSlot>,
    last_event_id: Option<Arc<str>>,
}

impl Clone for SseWriter {
    fn clone(&self) -> Self {
        self.queue.add_writer();
        Self {
            queue: Arc::clone(&self.queue),
            slot: Arc::clone(&self.slot),
            last_event_id: self.last_event_id.clone(),
        }
    }
}

impl Drop for SseWriter {
    fn drop(&mut self) {
        self.queue.remove_writer();
    }
}

impl SseWriter {
    /// Sends one event, starting the stream if it has not started yet.
    /// Waits while the queue to the client is full.
    ///
    /// # Errors
    ///
    /// - [`SseError::InvalidEvent`] if a field of `event` was refused; nothing
    ///   is sent and the stream does not start.
    /// - [`SseError::ResponseAlreadySent`] if the handler already answered
    ///   without the stream.
    /// - [`SseError::Timeout`] if the queue stayed full for the send timeout
    ///   (the client reads too slowly): the stream is closed, and later sends
    ///   return [`SseError::ConnectionClosed`].
    /// - [`SseError::ConnectionClosed`] once the client is gone.
    pub async fn send(&mut self, event: Event) -> Result<(), SseError> {
        if let Some(err) = event.error() {
            return Err(err.into());
        }
        Ok(self.push(event.wire()).await?)
    }

    /// Sends an event that is already encoded, such as one shared by many
    /// streams: its bytes are copied into the queue, never encoded again.
    ///
    /// # Errors
    ///
    /// As for [`send`](Self::send), but an encoded event is always valid.
    pub async fn send_encoded(&mut self, event: &EncodedEvent) -> Result<(), SseError> {
        Ok(self.push(event.as_bytes()).await?)
    }

    async fn push(&mut self, wire: &[u8]) -> Result<(), Refused> {
        self.slot.start()?;
        // Most sends find room: no waiting machinery (and no timer) for them.
        match self.queue.try_push(wire) {
            Ok(()) => Ok(()),
            Err(PushError::Closed) => Err(Refused::ConnectionClosed),
            Err(PushError::Full) => self.push_slow(wire).await,
        }
    }

    /// Waits for room, for at most the send timeout; past it the client is
    /// too slow, and its stream is closed.
    ///
    /// The deadline is checked first: a handler sending inline is polled
    /// only when the connection takes the next frame, so when it finally
    /// is, room is there, and only the time it waited tells a slow client.
    async fn push_slow(&self, wire: &[u8]) -> Result<(), Refused> {
        #[cfg(feature = "metrics")]
        let _wait = self.slot.metrics().map(crate::metrics::SendWait::start);
        let limit = self.queue.limits().send_timeout;
        let pushed = if self.queue.polled_inline_here() {
            // The handler, polled by its own body: no timer, as that body
            // is not polled at all while the client reads nothing.
            self.queue.push_inline(wire, Instant::now() + limit).await
        } else {
            let deadline = tokio::time::sleep(limit);
            let push = self.queue.push(wire);
            tokio::pin!(deadline, push);
            std::future::poll_fn(|cx| {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                push.as_mut().poll(cx).map(Some)
            })
            .await
        };
        match pushed {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => Err(Refused::ConnectionClosed),
            None => {
                tracing::debug!(?limit, "SSE client too slow; closing its stream");
                self.queue.abort();
                Err(Refused::Timeout)
            }
        }
    }

    /// Sends one event if the queue has room, without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] and [`TrySendError::Closed`] hand the event
    /// back; the others are as for [`send`](Self::send).
    pub fn try_send(&mut self, event: Event) -> Result<(), TrySendError> {
        if let Some(err) = event.error() {
            return Err(TrySendError::InvalidEvent(err));
        }
        if self.slot.start().is_err() {
            return Err(TrySendError::ResponseAlreadySent(event));
        }
        match self.queue.try_push(event.wire()) {
            Ok(()) => Ok(()),
            Err(PushError::Full) => Err(TrySendError::Full(event)),
            Err(PushError::Closed) => Err(TrySendError::Closed(event)),
        }
    }

    /// Starts the stream without sending an event: the client gets the `200`
    /// and the headers now.
    ///
    /// # Errors
    ///
    /// [`SseError::ResponseAlreadySent`] if the handler already answered
    /// without the stream.
    pub fn start(&mut self) -> Result<(), SseError> {
        Ok(self.slot.start()?)
    }

    /// The `Last-Event-ID` the client sent when it reconnected, under the
    /// rules of the route's [`LastEventIdLayer`](crate::LastEventIdLayer)
    /// (or the default rules): where to resume.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Sets this stream's reconnection time: the `retry: <ms>` advice the
    /// stream starts with (WHATWG HTML, "9.2.6 Interpreting an event
    /// stream"), in whole milliseconds, as [`RetryLayer`] sends it. It wins
    /// over every [`RetryLayer`] and the
    /// [`SseLayerBuilder::retry`](crate::SseLayerBuilder::retry) setting
    /// that apply to the route, for this stream only. Call it before the
    /// stream starts (the first send, or [`start`](Self::start)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::{Event, SseError, SseWriter};
    ///
    /// async fn slow_feed(mut sse: SseWriter) -> Result<(), SseError> {
    ///     sse.set_retry(Duration::from_secs(30))?;
    ///     sse.send(Event::new().data("hello")).await // `retry: 30000` comes with it
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SseError::StreamStarted`] once the stream started: its retry and
    /// heartbeat were decided then. [`SseError::ResponseAlreadySent`] if
    /// the handler already answered without the stream.
    pub fn set_retry(&mut self, delay: Duration) -> Result<(), SseError> {
        let retry = RetryLayer::new(delay);
        self.slot
            .configure(|settings| settings.overrides.retry = Some(retry))
    }

    /// Sets this stream's heartbeat: pass the idle interval, or a
    /// [`HeartbeatLayer`] to choose the message too. It wins over every
    /// [`HeartbeatLayer`] and the
    /// [`SseLayerBuilder::heartbeat`](crate::SseLayerBuilder::heartbeat)
    /// setting that apply to the route, for this stream only. Call it
    /// before the stream starts.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::{Event, SseError, SseWriter};
    ///
    /// async fn behind_a_strict_proxy(mut sse: SseWriter) -> Result<(), SseError> {
    ///     sse.set_heartbeat(Duration::from_secs(5))?;
    ///     sse.send(Event::new().data("hello")).await
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`set_retry`](Self::set_retry).
    pub fn set_heartbeat(&mut self, heartbeat: impl Into<HeartbeatLayer>) -> Result<(), SseError> {
        let heartbeat = heartbeat.into();
        self.slot
            .configure(|settings| settings.overrides.heartbeat = Some(heartbeat))
    }

    /// Whether the stream has started.
    pub fn is_started(&self) -> bool {
        self.slot.is_streaming()
    }

    /// Resolves when the client is gone (or the request was answered without
    /// the stream): from then on every send fails.
    ///
    /// ```
    /// # use axum_sse::SseWriter;
    /// async fn watch(mut sse: SseWriter) {
    ///     sse.start().ok();
    ///     sse.closed().await;
    ///     tracing::info!("client left");
    /// }
    /// ```
    pub async fn closed(&self) {
        self.queue.closed().await;
    }

    /// Whether the client is gone.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

impl fmt::Debug for SseWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseWriter")
            .field("started", &self.is_started())
            .field("last_event_id", &self.last_event_id)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
