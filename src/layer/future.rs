use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Response, Version};

use super::{
    body::{report_late_answer, WriterStream},
    ResponseBody,
};
use crate::{
    headers,
    stats::{SseStats, StreamRecord},
    writer::StreamSlot,
};

/// The response future of [`SseService`](super::SseService).
///
/// It drives the handler until the handler answers or a writer starts the
/// stream; in the second case the handler goes on inside the response body.
pub struct ResponseFuture<F> {
    // Boxed so that it can move into the body once the stream starts.
    handler: Option<Pin<Box<F>>>,
    slot: Arc<StreamSlot>,
    version: Version,
    stats: SseStats,
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        handler: F,
        slot: Arc<StreamSlot>,
        version: Version,
        stats: SseStats,
    ) -> Self {
        Self {
            handler: Some(Box::pin(handler)),
            slot,
            version,
            stats,
        }
    }

    fn stream_response<B>(&self, handler: Option<Pin<Box<F>>>) -> Response<ResponseBody<F, B>> {
        let reader = self
            .slot
            .take_reader()
            .expect("a started stream has a reader until the layer takes it");
        let record = StreamRecord::open(&self.stats);
        let stream = WriterStream::new(handler, reader, Arc::clone(&record));
        let mut response = Response::new(ResponseBody::stream(stream));
        headers::insert_sse_headers(response.headers_mut(), Some(self.version));
        // For the layers around: time limits and shutdown say why it ends.
        response.extensions_mut().insert(record);
        response
    }

    fn pass_through<B>(&self, response: Response<B>) -> Response<ResponseBody<F, B>> {
        if !headers::is_event_stream(response.headers()) {
            return response.map(|body| ResponseBody::inner(body, None));
        }
        let record = StreamRecord::open(&self.stats);
        let mut response =
            response.map(|body| ResponseBody::inner(body, Some(Arc::clone(&record))));
        headers::insert_sse_headers(response.headers_mut(), Some(self.version));
        response.extensions_mut().insert(record);
        response
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<F, B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let handler = this
            .handler
            .as_mut()
            .expect("ResponseFuture polled after completion");
        match handler.as_mut().poll(cx) {
            Poll::Ready(Ok(response)) => {
                this.handler = None;
                let Some(writer_alive) = this.slot.writer_alive() else {
                    return Poll::Ready(Ok(this.pass_through(response)));
                };
                if !this
                    .slot
                    .settle(writer_alive && response.status().is_success())
                {
                    this.slot.take_reader();
                    return Poll::Ready(Ok(this.pass_through(response)));
                }
                report_late_answer(Ok::<_, E>(response));
                Poll::Ready(Ok(this.stream_response(None)))
            }
            Poll::Ready(Err(err)) => {
                this.handler = None;
                this.slot.settle(false);
                this.slot.take_reader();
                Poll::Ready(Err(err))
            }
            Poll::Pending => {
                this.slot.register_layer(cx.waker());
                if this.slot.is_streaming() {
                    let handler = this.handler.take();
                    Poll::Ready(Ok(this.stream_response(handler)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<F> Drop for ResponseFuture<F> {
    fn drop(&mut self) {
        // Dropped before answering (the client left early): close the queue
        // so writers see the connection closed instead of waiting forever.
        if self.handler.is_some() {
            self.slot.take_reader();
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("pending", &self.handler.is_some())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}
