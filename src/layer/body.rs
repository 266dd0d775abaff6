use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use crate::{
    queue::{QueueReader, Taken},
    stats::{CloseReason, StreamRecord},
};
use axum::BoxError;
use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of [`SseService`](super::SseService): the handler's
    /// own body, passed through, or the event stream its writer feeds.
    pub struct ResponseBody<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        // `record`: the handler's own event stream (a stream-style body).
        Inner { #[pin] body: B, record: Option<Arc<StreamRecord>> },
        Stream { stream: WriterStream<F> },
    }
}

impl<F, B> ResponseBody<F, B> {
    pub(crate) fn inner(body: B, record: Option<Arc<StreamRecord>>) -> Self {
        Self {
            kind: Kind::Inner { body, record },
        }
    }

    pub(crate) fn stream(stream: WriterStream<F>) -> Self {
        Self {
            kind: Kind::Stream { stream },
        }
    }
}

impl<F, B, E> Body for ResponseBody<F, B>
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
            KindProj::Inner { body, record: None } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Inner {
                body,
                record: Some(record),
            } => {
                let frame = ready!(body.poll_frame(cx));
                match &frame {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            record.sent(0, data.len());
                        }
                    }
                    Some(Err(_)) => record.end(CloseReason::Error),
                    None => record.end(CloseReason::Finished),
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

impl<F, B> fmt::Debug for ResponseBody<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Stream { .. } => "stream",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
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
    ended: bool,
}

impl<F> WriterStream<F> {
    pub(crate) fn new(
        handler: Option<Pin<Box<F>>>,
        reader: QueueReader,
        record: Arc<StreamRecord>,
    ) -> Self {
        Self {
            handler,
            reader,
            record,
            ended: false,
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
        match ready!(self.reader.poll_take(cx)) {
            Taken::Frame { frame, events } => {
                self.record.sent(events, frame.len());
                Poll::Ready(Some(Frame::data(frame)))
            }
            // Every writer is gone; the handler may still be finishing.
            Taken::Finished if self.handler.is_some() => Poll::Pending,
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
