use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, StatusCode};
use tower::Service;

use super::{ResponseFuture, StreamLimitBody, StreamLimitLayer};
use crate::util::answer::retry_later;

/// The service made by [`StreamLimitLayer`].
#[derive(Debug, Clone)]
pub struct StreamLimitService<S> {
    inner: S,
    // `None`: no limit configured (in an `SseLayer`); all passes through.
    limit: Option<Arc<StreamLimitLayer>>,
}

impl<S> StreamLimitService<S> {
    pub(crate) fn new(inner: S, limit: Option<StreamLimitLayer>) -> Self {
        Self {
            inner,
            limit: limit.filter(StreamLimitLayer::is_set).map(Arc::new),
        }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StreamLimitService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<StreamLimitBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(limit) = &self.limit else {
            return ResponseFuture::inner(self.inner.call(request), None);
        };
        let (parts, body) = request.into_parts();
        let admitted = limit.admit(&parts);
        let request = Request::from_parts(parts, body);
        match admitted {
            Ok(permit) => {
                // Inside an `SseLayer`, a writer stream is answered before
                // this future sees it: the `SseLayer` holds the permit in
                // the stream body instead, whichever way the handler answers.
                let mut permit = Some(permit);
                crate::layer::record(request.extensions(), |settings| {
                    settings.permits.extend(permit.take());
                });
                ResponseFuture::inner(self.inner.call(request), permit)
            }
            Err(refusal) => {
                tracing::debug!(refusal, "request refused by a stream limit");
                if let Some(stats) = &limit.stats {
                    stats.reject_by_limit();
                }
                let answer =
                    retry_later(StatusCode::TOO_MANY_REQUESTS, refusal, &limit.retry_after);
                ResponseFuture::refused(answer.map(|body| StreamLimitBody::new(body, None)))
            }
        }
    }
}
