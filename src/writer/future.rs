use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Response, Version};

use super::body::{report_late_answer, Held, WriterBody, WriterStream};
use crate::layer::Overrides;
use crate::{
    stats::{SseStats, StreamRecord},
    util::headers,
    writer::StreamSlot,
};

/// The response future of [`WriterService`](super::service::WriterService).
///
/// It drives the handler until the handler answers or a writer starts the
/// stream; in the second case the handler goes on inside the response body.
pub(crate) struct WriterFuture<F> {
    // Boxed so that it can move into the body once the stream starts.
    handler: Option<Pin<Box<F>>>,
    slot: Arc<StreamSlot>,
    version: Version,
    stats: SseStats,
}

impl<F> WriterFuture<F> {
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

    fn stream_response<B>(&self, handler: Option<Pin<Box<F>>>) -> Response<WriterBody<F, B>> {
        let reader = self
            .slot
            .take_reader()
            .expect("a started stream has a reader until the layer takes it");
        let record = StreamRecord::open(&self.stats);
        let (overrides, held) = self.settings(true);
        let stream = WriterStream::new(handler, reader, Arc::clone(&record), held);
        let mut response = Response::new(WriterBody::stream(stream));
        headers::insert_sse_headers(response.headers_mut(), Some(self.version));
        // For the layers around: time limits and shutdown say why it ends.
        response.extensions_mut().insert(record);
        if let Some(overrides) = overrides {
            response.extensions_mut().insert(overrides);
        }
        response
    }

    fn pass_through<B>(&self, response: Response<B>) -> Response<WriterBody<F, B>> {
        if !headers::is_event_stream(response.headers()) {
            // Permits recorded by the limits inside are released now.
            drop(self.slot.take_settings());
            return response.map(|body| WriterBody::inner(body, None, None));
        }
        let record = StreamRecord::open(&self.stats);
        // The shutdowns inside watch the stream themselves: it passed
        // through them.
        let (overrides, held) = self.settings(false);
        let mut response =
            response.map(|body| WriterBody::inner(body, Some(Arc::clone(&record)), held));
        headers::insert_sse_headers(response.headers_mut(), Some(self.version));
        response.extensions_mut().insert(record);
        if let Some(overrides) = overrides {
            response.extensions_mut().insert(overrides);
        }
        response
    }

    /// What the layers inside (and the handler) recorded for the stream:
    /// the settings for the layer's own parts to apply, and what the body
    /// holds (with the shutdowns to watch, if `shutdowns`).
    fn settings(&self, shutdowns: bool) -> (Option<Overrides>, Option<Box<Held>>) {
        let Some(mut settings) = self.slot.take_settings() else {
            return (None, None);
        };
        let overrides = std::mem::take(&mut settings.overrides);
        let overrides = (!overrides.is_empty()).then_some(overrides);
        (overrides, Held::from_settings(*settings, shutdowns))
    }
}

impl<F, B, E> Future for WriterFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<WriterBody<F, B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let handler = this
            .handler
            .as_mut()
            .expect("WriterFuture polled after completion");
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
                drop(this.slot.take_settings());
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

impl<F> Drop for WriterFuture<F> {
    fn drop(&mut self) {
        // Dropped before answering (the client left early): close the queue
        // so writers see the connection closed instead of waiting forever.
        if self.handler.is_some() {
            self.slot.take_reader();
            drop(self.slot.take_settings());
        }
    }
}

impl<F> fmt::Debug for WriterFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterFuture")
            .field("pending", &self.handler.is_some())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}
