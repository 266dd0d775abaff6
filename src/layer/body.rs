use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use crate::queue::QueueReader;
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
        Inner { #[pin] body: B },
        Stream { stream: WriterStream<F> },
    }
}

impl<F, B> ResponseBody<F, B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
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
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Stream { stream } => stream.poll_frame(cx).map(|frame| frame.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Stream { stream } => stream.ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
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
    ended: bool,
}

impl<F> WriterStream<F> {
    pub(crate) fn new(handler: Option<Pin<Box<F>>>, reader: QueueReader) -> Self {
        Self {
            handler,
            reader,
            ended: false,
        }
    }

    fn poll_frame<B, E>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>>
    where
        F: Future<Output = Result<Response<B>, E>>,
    {
        if let Some(handler) = &mut self.handler {
            if let Poll::Ready(output) = handler.as_mut().poll(cx) {
                self.handler = None;
                report_late_answer(output);
            }
        }
        match ready!(self.reader.poll_take(cx)) {
            Some(frame) => Poll::Ready(Some(Frame::data(frame))),
            // Every writer is gone; the handler may still be finishing.
            None if self.handler.is_some() => Poll::Pending,
            None => {
                self.ended = true;
                Poll::Ready(None)
            }
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
