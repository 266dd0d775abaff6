use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, StatusCode};
use tower::Service;

use super::{body::Watch, ResponseFuture, ShutdownBody, ShutdownLayer};
use crate::util::answer::retry_later;

/// The service made by [`ShutdownLayer`].
#[derive(Debug, Clone)]
pub struct ShutdownService<S> {
    inner: S,
    // `None`: no shutdown configured (in an `SseLayer`); all passes through.
    layer: Option<Arc<ShutdownLayer>>,
}

impl<S> ShutdownService<S> {
    pub(crate) fn new(inner: S, layer: Option<ShutdownLayer>) -> Self {
        Self {
            inner,
            layer: layer.map(Arc::new),
        }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ShutdownService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ShutdownBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(layer) = &self.layer else {
            return ResponseFuture::inner(self.inner.call(request), None);
        };
        if layer.shutdown.is_triggered() {
            tracing::debug!("request refused: shutting down");
            if let Some(stats) = &layer.stats {
                stats.reject_by_shutdown();
            }
            let answer = retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
                &layer.retry_after,
            );
            return ResponseFuture::refused(answer.map(ShutdownBody::pass_through));
        }
        let watch = Watch {
            shutdown: layer.shutdown.clone(),
            farewell: layer.farewell.clone(),
        };
        // Inside an `SseLayer`, a writer stream is answered before this
        // future sees it: the `SseLayer` ends that stream on this shutdown.
        // A stream-style answer still passes through here, and is wrapped.
        crate::layer::record(request.extensions(), |settings| {
            settings.shutdowns.push(watch.clone());
        });
        ResponseFuture::inner(self.inner.call(request), Some(watch))
    }
}
