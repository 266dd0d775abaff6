//! `SseWriter`: the push side of a stream, and the slot it shares with the
//! layer that answers the request.

use std::{
    fmt,
    future::Future,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc, Mutex, PoisonError,
    },
    task::{Poll, Waker},
    time::Duration,
};

use axum::response::{IntoResponse, Response};
use futures_util::task::AtomicWaker;
use http::StatusCode;
use tokio::time::Instant;

use crate::{
    extract::SseWriterRejection,
    layer::StreamSettings,
    queue::{PushError, Queue, QueueLimits, QueueReader},
    EncodedEvent, Event, EventError, HeartbeatLayer, LastEventId, RetryLayer,
};

const OPEN: u8 = 0;
const STREAMING: u8 = 1;
const ANSWERED: u8 = 2;

/// What the layer and the writer(s) of one request share: whether the stream
/// has started, and the receiving end of the queue until the layer takes it.
pub(crate) struct StreamSlot {
    limits: QueueLimits,
    /// `OPEN` until the stream starts (`STREAMING`) or the handler answers
    /// without it (`ANSWERED`); never changes after that.
    state: AtomicU8,
    /// Wakes the layer's response future when a writer starts the stream from
    /// another task.
    layer_waker: AtomicWaker,
    /// The body's end of the queue, from the writer's extraction until the
    /// layer takes it.
    reader: Mutex<Option<QueueReader>>,
    /// What the layers inside the `SseLayer` and the handler set for this
    /// stream; boxed, so a stream without such settings carries a null
    /// pointer.
    settings: Mutex<Option<Box<StreamSettings>>>,
}

impl StreamSlot {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            state: AtomicU8::new(OPEN),
            layer_waker: AtomicWaker::new(),
            reader: Mutex::new(None),
            settings: Mutex::new(None),
        }
    }

    /// Records a per-stream setting (a layer's, at call time).
    pub(crate) fn record(&self, f: impl FnOnce(&mut StreamSettings)) {
        f(self.lock_settings().get_or_insert_with(Box::default));
    }

    /// Records a per-stream setting of the handler's, unless the stream
    /// already started (or the request was answered without it).
    fn configure(&self, f: impl FnOnce(&mut StreamSettings)) -> Result<(), SseError> {
        let mut settings = self.lock_settings();
        // Under the lock: the layer takes the settings only once the stream
        // started, so a setting recorded while it was open is taken.
        match self.state.load(Ordering::Acquire) {
            OPEN => {
                f(settings.get_or_insert_with(Box::default));
                Ok(())
            }
            STREAMING => Err(SseError::StreamStarted),
            _ => Err(SseError::ResponseAlreadySent),
        }
    }

    /// The recorded settings, taken once the response is decided.
    pub(crate) fn take_settings(&self) -> Option<Box<StreamSettings>> {
        self.lock_settings().take()
    }

    /// Creates the request's writer. There is one queue per request, so a
    /// second extraction is refused (clone the writer instead).
    pub(crate) fn open_writer(
        self: &Arc<Self>,
        last_event_id: Option<LastEventId>,
    ) -> Result<SseWriter, SseWriterRejection> {
        let mut reader = self.lock_reader();
        if reader.is_some() || self.state.load(Ordering::Acquire) != OPEN {
            return Err(SseWriterRejection::AlreadyExtracted);
        }
        let queue = Arc::new(Queue::new(self.limits));
        *reader = Some(QueueReader(Arc::clone(&queue)));
        Ok(SseWriter {
            queue,
            slot: Arc::clone(self),
            last_event_id: last_event_id.map(|LastEventId(id)| id.into()),
        })
    }

    pub(crate) fn take_reader(&self) -> Option<QueueReader> {
        self.lock_reader().take()
    }

    /// Whether a writer was extracted (`None` if not), and if so whether one
    /// still exists.
    pub(crate) fn writer_alive(&self) -> Option<bool> {
        self.lock_reader()
            .as_ref()
            .map(|reader| reader.0.has_writers())
    }

    pub(crate) fn is_streaming(&self) -> bool {
        self.state.load(Ordering::Acquire) == STREAMING
    }

    /// Called when the handler returned `respond_with_stream` (its writer
    /// lives on and it answered with success) or not. Returns whether the
    /// request streams: a writer may have started the stream first.
    pub(crate) fn settle(&self, respond_with_stream: bool) -> bool {
        let target = if respond_with_stream {
            STREAMING
        } else {
            ANSWERED
        };
        match self
            .state
            .compare_exchange(OPEN, target, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => respond_with_stream,
            Err(current) => current == STREAMING,
        }
    }

    pub(crate) fn register_layer(&self, waker: &Waker) {
        self.layer_waker.register(waker);
    }

    /// Starts the stream unless the request was already answered.
    #[inline]
    fn start(&self) -> Result<(), Refused> {
        if self.is_streaming() {
            return Ok(());
        }
        self.start_now()
    }

    fn start_now(&self) -> Result<(), Refused> {
        match self
            .state
            .compare_exchange(OPEN, STREAMING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                tracing::debug!("SSE stream started");
                self.layer_waker.wake();
                Ok(())
            }
            Err(STREAMING) => Ok(()),
            Err(_) => Err(Refused::ResponseAlreadySent),
        }
    }

    fn lock_reader(&self) -> std::sync::MutexGuard<'_, Option<QueueReader>> {
        // The lock is never held across code that can panic.
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_settings(&self) -> std::sync::MutexGuard<'_, Option<Box<StreamSettings>>> {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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

/// Why an event could not be sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum SseError {
    /// The client is gone; nothing more can reach it.
    ConnectionClosed,
    /// The handler answered the request without the stream (or the handler
    /// failed) before this send.
    ResponseAlreadySent,
    /// A field of the event was refused; nothing was sent.
    InvalidEvent(EventError),
    /// The client read too slowly: the queue to it stayed full for the send
    /// timeout. Its stream was closed and what was queued dropped; later
    /// sends return [`ConnectionClosed`](Self::ConnectionClosed).
    Timeout,
    /// A per-stream setting ([`SseWriter::set_retry`],
    /// [`SseWriter::set_heartbeat`]) came after the stream started; it was
    /// not applied.
    StreamStarted,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectionClosed => f.write_str("the SSE client closed the connection"),
            Self::ResponseAlreadySent => f.write_str(
                "the request was already answered without an event stream; \
                 send events before returning a response",
            ),
            Self::InvalidEvent(err) => write!(f, "invalid SSE event: {err}"),
            Self::Timeout => f.write_str(
                "the SSE client read too slowly: the send timed out and the stream was closed",
            ),
            Self::StreamStarted => f.write_str(
                "the SSE stream already started: set its retry and heartbeat before the first send",
            ),
        }
    }
}

impl std::error::Error for SseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            Self::ConnectionClosed
            | Self::ResponseAlreadySent
            | Self::Timeout
            | Self::StreamStarted => None,
        }
    }
}

/// Why a valid event was not queued: the errors of a send without a payload,
/// small enough that the send's fast path returns them in a register.
#[derive(Debug, Clone, Copy)]
enum Refused {
    ResponseAlreadySent,
    ConnectionClosed,
    Timeout,
}

impl From<Refused> for SseError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::ResponseAlreadySent => Self::ResponseAlreadySent,
            Refused::ConnectionClosed => Self::ConnectionClosed,
            Refused::Timeout => Self::Timeout,
        }
    }
}

impl From<EventError> for SseError {
    fn from(err: EventError) -> Self {
        Self::InvalidEvent(err)
    }
}

/// A handler returning `Result<_, SseError>` answers `500` with the error's
/// text if the stream has not started; once it has, the layer discards the
/// handler's answer.
impl IntoResponse for SseError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Why [`SseWriter::try_send`] did not send; hands the event back where it
/// can.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrySendError {
    /// The queue is full: the client reads slower than the handler writes.
    Full(Event),
    /// The client is gone.
    Closed(Event),
    /// The handler answered the request without the stream.
    ResponseAlreadySent(Event),
    /// A field of the event was refused.
    InvalidEvent(EventError),
}

impl TrySendError {
    /// The event that was not sent, if it is still whole.
    pub fn into_event(self) -> Option<Event> {
        match self {
            Self::Full(event) | Self::Closed(event) | Self::ResponseAlreadySent(event) => {
                Some(event)
            }
            Self::InvalidEvent(_) => None,
        }
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the SSE queue is full"),
            Self::Closed(_) => SseError::ConnectionClosed.fmt(f),
            Self::ResponseAlreadySent(_) => SseError::ResponseAlreadySent.fmt(f),
            Self::InvalidEvent(err) => write!(f, "invalid SSE event: {err}"),
        }
    }
}

impl std::error::Error for TrySendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            _ => None,
        }
    }
}
