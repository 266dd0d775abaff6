//! The service and future of `LastEventIdLayer`.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use crate::util::{
    answer::{text_answer, AnswerBody},
    early::{Early, Outcome},
};

use super::{extract::ReadByLayer, LastEventIdLayer, LastEventIdRejection};

/// The service made by [`LastEventIdLayer`].
#[derive(Debug, Clone)]
pub struct LastEventIdService<S> {
    inner: S,
    // Shared: axum clones a route's service once per connection. `None`:
    // no rules of its own (an `SseLayer` not given any); an outer layer's
    // rules, or the default ones, apply.
    layer: Option<Arc<LastEventIdLayer>>,
}

impl<S> LastEventIdService<S> {
    pub(crate) fn new(inner: S, layer: Option<LastEventIdLayer>) -> Self {
        Self {
            inner,
            layer: layer.map(Arc::new),
        }
    }

    define_inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LastEventIdService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<AnswerBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let Some(layer) = &self.layer else {
            return ResponseFuture::inner(self.inner.call(request));
        };
        // An inner layer, called later, replaces what this one read: the
        // rules closest to the handler win.
        let id = match layer.read(request.headers(), request.uri()) {
            Ok(id) => id,
            Err(invalid) if layer.reject_invalid => {
                let rejection = LastEventIdRejection::Invalid(invalid);
                tracing::debug!(%rejection, "request refused");
                let answer = text_answer(rejection.status(), rejection.body_text());
                return ResponseFuture {
                    inner: Early::answered(answer),
                };
            }
            Err(invalid) => {
                tracing::debug!(%invalid, "Last-Event-ID ignored");
                None
            }
        };
        request.extensions_mut().insert(ReadByLayer(id));
        ResponseFuture::inner(self.inner.call(request))
    }
}

pin_project! {
    /// The response future of [`LastEventIdService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: Early<F, (), Response<AnswerBody<B>>>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn inner(inner: F) -> Self {
        Self {
            inner: Early::inner(inner, ()),
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("answered", &self.inner.is_answered())
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AnswerBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll_outcome(cx)) {
            Outcome::Inner(output, ()) => output.map(|response| response.map(AnswerBody::inner)),
            Outcome::Answered(answer) => Ok(answer),
        })
    }
}
