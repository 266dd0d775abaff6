use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower::Service;

use super::{body::WriterBody, future::WriterFuture};
use crate::{
    writer::extract::WriterSlot, writer::queue::QueueLimits, writer::StreamSlot, SseStats,
};

/// The innermost part of [`SseLayer`](crate::SseLayer)'s stack: gives each
/// request a writer slot and answers with the stream once it starts.
#[derive(Debug, Clone)]
pub(crate) struct WriterService<S> {
    inner: S,
    // Shared: axum clones a route's service once per connection.
    limits: Arc<QueueLimits>,
    stats: SseStats,
}

impl<S> WriterService<S> {
    pub(crate) fn new(inner: S, limits: QueueLimits, stats: SseStats) -> Self {
        Self {
            inner,
            limits: Arc::new(limits),
            stats,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for WriterService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<WriterBody<S::Future, ResBody>>;
    type Error = S::Error;
    type Future = WriterFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let version = request.version();
        let slot = StreamSlot::new(*self.limits);
        #[cfg(feature = "metrics")]
        let slot = slot.with_metrics(self.stats.metrics());
        let slot = Arc::new(slot);
        request
            .extensions_mut()
            .insert(WriterSlot(Arc::clone(&slot)));
        WriterFuture::new(self.inner.call(request), slot, version, self.stats.clone())
    }
}
