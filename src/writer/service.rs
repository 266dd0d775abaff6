use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower::Service;

use super::{body::ResponseBody, future::ResponseFuture};
use crate::{
    writer::extract::WriterSlot, writer::queue::QueueLimits, writer::StreamSlot, SseStats,
};

/// The service made by [`SseLayer`](crate::SseLayer).
#[derive(Debug, Clone)]
pub struct SseService<S> {
    inner: S,
    // Shared: axum clones a route's service once per connection.
    limits: Arc<QueueLimits>,
    stats: SseStats,
}

impl<S> SseService<S> {
    pub(crate) fn new(inner: S, limits: QueueLimits, stats: SseStats) -> Self {
        Self {
            inner,
            limits: Arc::new(limits),
            stats,
        }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SseService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<S::Future, ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let version = request.version();
        let slot = Arc::new(StreamSlot::new(*self.limits));
        request
            .extensions_mut()
            .insert(WriterSlot(Arc::clone(&slot)));
        ResponseFuture::new(self.inner.call(request), slot, version, self.stats.clone())
    }
}
