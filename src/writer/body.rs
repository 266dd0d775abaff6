use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use crate::{
    limit::StreamPermit,
    shutdown::Watch,
    stats::{CloseReason, StreamRecord},
    writer::queue::{QueueReader, Taken},
};
use axum::BoxError;
use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::layer::StreamSettings;

pin_project! {
    /// The response body of [`WriterService`](super::service::WriterService): the handler's
    /// own body, passed through, or the event stream its writer feeds.
    pub(crate) struct WriterBody<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        // `record`: the handler's own event stream (a stream-style body).
        // `held`: what the limits inside the layer hold for that stream.
        Inner { #[pin] body: B, record: Option<Arc<StreamRecord>>, held: Option<Box<Held>> },
        Stream { stream: WriterStream<F> },
    }
}

impl<F, B> WriterBody<F, B> {
    pub(crate) fn inner(
        body: B,
        record: Option<Arc<StreamRecord>>,
        held: Option<Box<Held>>,
    ) -> Self {
        Self {
            kind: Kind::Inner { body, record, held },
        }
    }

    pub(crate) fn stream(stream: WriterStream<F>) -> Self {
        Self {
            kind: Kind::Stream { stream },
        }
    }
}

impl<F, B, E> Body for WriterBody<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner {
                body, record: None, ..
            } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Inner {
                body,
                record: Some(record),
                held,
            } => {
                let frame = ready!(body.poll_frame(cx));
                match &frame {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            record.sent(0, data.len());
                        }
                    }
                    Some(Err(_)) => {
                        record.end(CloseReason::Error);
                        *held = None;
                    }
                    None => {
                        record.end(CloseReason::Finished);
                        *held = None;
                    }
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            KindProj::Stream { stream } => stream.poll_frame(cx).map(|frame| frame.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, .. } => body.is_end_stream(),
            Kind::Stream { stream } => stream.ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body, .. } => body.size_hint(),
            Kind::Stream { .. } => SizeHint::default(),
        }
    }
}

impl<F, B> fmt::Debug for WriterBody<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Stream { .. } => "stream",
        };
        f.debug_struct("WriterBody").field("kind", &kind).finish()
    }
}

/// The events a writer queued, and the handler that is still writing them.
///
/// The handler is polled from the body, on the connection's own task: while
/// the client reads, the handler runs; when the connection goes, the handler
/// is dropped with it.
///
/// Each frame is everything queued since the last one.
pub(crate) struct WriterStream<F> {
    handler: Option<Pin<Box<F>>>,
    reader: QueueReader,
    record: Arc<StreamRecord>,
    /// What the limits and shutdowns inside the layer hold for the stream.
    held: Option<Box<Held>>,
    ended: bool,
}

/// What the stream limits and shutdowns inside an `SseLayer` hold for one
/// stream: boxed, so a stream without them carries a null pointer.
pub(crate) struct Held {
    /// Released when the stream ends.
    _permits: Vec<StreamPermit>,
    watches: Vec<Watched>,
    shutdown: Shutdown,
}

struct Watched {
    watch: Watch,
    /// Made when the stream first waits.
    cancelled: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

enum Shutdown {
    Streaming,
    /// Triggered: send what is queued, once, then the farewell, if any.
    Draining(Option<Bytes>),
    Farewell(Option<Bytes>),
    Done,
}

impl Held {
    /// What a stream holds from `settings`, if anything.
    pub(crate) fn from_settings(settings: StreamSettings, shutdowns: bool) -> Option<Box<Self>> {
        let StreamSettings {
            permits,
            shutdowns: watches,
            ..
        } = settings;
        let watches: Vec<Watched> = if shutdowns {
            watches
                .into_iter()
                .map(|watch| Watched {
                    watch,
                    cancelled: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        if permits.is_empty() && watches.is_empty() {
            return None;
        }
        Some(Box::new(Self {
            _permits: permits,
            watches,
            shutdown: Shutdown::Streaming,
        }))
    }

    /// The farewell of the first shutdown that was triggered, if one was.
    fn triggered(&self) -> Option<Option<Bytes>> {
        self.watches
            .iter()
            .find(|watched| watched.watch.shutdown.is_triggered())
            .map(|watched| watched.watch.farewell.clone())
    }

    /// As [`triggered`](Self::triggered), and wakes the task when one is.
    fn poll_triggered(&mut self, cx: &mut Context<'_>) -> Option<Option<Bytes>> {
        self.watches.iter_mut().find_map(|watched| {
            let watch = &watched.watch;
            let cancelled = watched
                .cancelled
                .get_or_insert_with(|| Box::pin(watch.wait()));
            cancelled
                .as_mut()
                .poll(cx)
                .is_ready()
                .then(|| watch.farewell.clone())
        })
    }
}

// The cancellation futures of the shutdowns are not unwind-safe (tokio's
// wait lists sit in cells), which would take `UnwindSafe` from every
// `WriterBody`. A panic cannot leave them half-updated for a later
// reader: each only ever reports that its shutdown was triggered.
impl std::panic::UnwindSafe for Held {}
impl std::panic::RefUnwindSafe for Held {}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("permits", &self._permits.len())
            .field("shutdowns", &self.watches.len())
            .finish_non_exhaustive()
    }
}

impl<F> WriterStream<F> {
    pub(crate) fn new(
        handler: Option<Pin<Box<F>>>,
        reader: QueueReader,
        record: Arc<StreamRecord>,
        held: Option<Box<Held>>,
    ) -> Self {
        Self {
            handler,
            reader,
            record,
            held,
            ended: false,
        }
    }

    /// Ends the stream for a shutdown inside the layer: sends what is
    /// queued, then the farewell. The queue holds whole events only, so the
    /// farewell never lands inside one.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Frame<Bytes>>>> {
        let held = self.held.as_deref_mut()?;
        if matches!(held.shutdown, Shutdown::Streaming) {
            held.shutdown = Shutdown::Draining(held.triggered()?);
        }
        loop {
            match std::mem::replace(&mut held.shutdown, Shutdown::Done) {
                Shutdown::Streaming => unreachable!("checked above"),
                Shutdown::Draining(farewell) => {
                    held.shutdown = Shutdown::Farewell(farewell);
                    if let Poll::Ready(Taken::Frame { frame, events }) = self.reader.poll_take(cx) {
                        self.record.sent(events, frame.len());
                        return Some(Poll::Ready(Some(Frame::data(frame))));
                    }
                }
                Shutdown::Farewell(farewell) => {
                    tracing::trace!("SSE stream ended by the shutdown");
                    self.record.end(CloseReason::Shutdown);
                    self.handler = None;
                    if let Some(farewell) = farewell {
                        self.record.sent(1, farewell.len());
                        return Some(Poll::Ready(Some(Frame::data(farewell))));
                    }
                }
                Shutdown::Done => {
                    self.ended = true;
                    return Some(Poll::Ready(None));
                }
            }
        }
    }

    fn poll_frame<B, E>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>>
    where
        F: Future<Output = Result<Response<B>, E>>,
    {
        if let Some(handler) = &mut self.handler {
            // The handler runs on this very task: its sends must not wake
            // it again (a wasted poll of the whole connection per frame).
            if let Poll::Ready(output) = self.reader.poll_inline(|| handler.as_mut().poll(cx)) {
                self.handler = None;
                report_late_answer(output);
            }
        }
        if let Some(ending) = self.poll_shutdown(cx) {
            return ending;
        }
        let taken = match self.reader.poll_take(cx) {
            Poll::Ready(Taken::Finished) if self.handler.is_some() => Poll::Pending,
            taken => taken,
        };
        let Poll::Ready(taken) = taken else {
            // Waits for events, or for a shutdown inside the layer.
            let triggered = self
                .held
                .as_deref_mut()
                .and_then(|held| held.poll_triggered(cx));
            if let Some(farewell) = triggered {
                let held = self.held.as_deref_mut().expect("triggered above");
                held.shutdown = Shutdown::Farewell(farewell);
                return self.poll_shutdown(cx).expect("ending");
            }
            return Poll::Pending;
        };
        match taken {
            Taken::Frame { frame, events } => {
                self.record.sent(events, frame.len());
                Poll::Ready(Some(Frame::data(frame)))
            }
            // Every writer is gone and the handler too.
            Taken::Finished => {
                self.ended = true;
                self.record.end(CloseReason::Finished);
                Poll::Ready(None)
            }
            // A writer gave up on a client too slow to read.
            Taken::Aborted => {
                self.ended = true;
                self.handler = None;
                self.record.end(CloseReason::SlowConsumer);
                Poll::Ready(None)
            }
        }
    }
}

impl<F> Drop for WriterStream<F> {
    fn drop(&mut self) {
        // A writer gave up on the client while the connection could not
        // even take the body's next frame (the client reads nothing): the
        // slow-consumer policy closed the stream, whoever drops it.
        if !self.ended && self.reader.0.is_aborted() {
            self.record.end(CloseReason::SlowConsumer);
        }
    }
}

/// Logs the handler's own answer, which the stream replaced.
pub(crate) fn report_late_answer<B, E>(output: Result<Response<B>, E>) {
    match output {
        Ok(response) if !response.status().is_success() => tracing::warn!(
            status = %response.status(),
            "handler answered after its SSE stream started; the answer is discarded"
        ),
        Ok(_) => tracing::debug!("SSE handler finished"),
        Err(_) => tracing::warn!("SSE handler failed after its stream started"),
    }
}
