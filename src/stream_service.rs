//! The service and future shared by the layers that wrap event-stream bodies
//! (heartbeat, retry, time limits): everything else passes through
//! untouched.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use crate::headers;

/// How a layer changes the body of a `text/event-stream` response.
///
/// Implemented by [`HeartbeatLayer`](crate::HeartbeatLayer),
/// [`RetryLayer`](crate::RetryLayer) and
/// [`TimeLimitLayer`](crate::TimeLimitLayer); not meant to be implemented
/// outside this crate.
pub trait WrapEventStream: Clone + sealed::Sealed {
    /// The body of every response under the layer.
    type Body<B>;

    /// Wraps `body`, which is an event stream only if `is_event_stream`.
    fn wrap_body<B>(&self, body: B, is_event_stream: bool) -> Self::Body<B>;

    /// `body`, left as it is.
    fn pass_through<B>(body: B) -> Self::Body<B>;

    /// Wraps the body of `response`, an event stream if its content type
    /// says so. A layer that needs more of the response than that (such as
    /// what [`SseLayer`](crate::SseLayer) records about the stream) looks
    /// here.
    fn wrap_response<B>(&self, response: http::Response<B>) -> http::Response<Self::Body<B>> {
        let is_event_stream = headers::is_event_stream(response.headers());
        response.map(|body| self.wrap_body(body, is_event_stream))
    }
}

/// An optional layer: `None` passes every body through.
impl<W: WrapEventStream> WrapEventStream for Option<W> {
    type Body<B> = W::Body<B>;

    fn wrap_body<B>(&self, body: B, is_event_stream: bool) -> Self::Body<B> {
        match self {
            Some(wrapper) => wrapper.wrap_body(body, is_event_stream),
            None => W::pass_through(body),
        }
    }

    fn pass_through<B>(body: B) -> Self::Body<B> {
        W::pass_through(body)
    }

    fn wrap_response<B>(&self, response: http::Response<B>) -> http::Response<Self::Body<B>> {
        match self {
            Some(wrapper) => wrapper.wrap_response(response),
            None => response.map(W::pass_through),
        }
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
    impl<W: Sealed> Sealed for Option<W> {}
}

/// A service that lets `W` wrap the body of its event-stream responses.
#[derive(Debug, Clone)]
pub struct EventStreamService<S, W> {
    inner: S,
    // Shared: axum clones a route's service once per connection, so a
    // service should be cheap to clone.
    wrapper: Arc<W>,
}

impl<S, W> EventStreamService<S, W> {
    pub(crate) fn new(inner: S, wrapper: W) -> Self {
        Self {
            inner,
            wrapper: Arc::new(wrapper),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, W, ReqBody, ResBody> Service<Request<ReqBody>> for EventStreamService<S, W>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    W: WrapEventStream,
{
    type Response = Response<W::Body<ResBody>>;
    type Error = S::Error;
    type Future = EventStreamFuture<S::Future, W>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        EventStreamFuture {
            inner: self.inner.call(request),
            wrapper: Some(Arc::clone(&self.wrapper)),
        }
    }
}

pin_project! {
    /// The response future of [`EventStreamService`].
    #[derive(Debug)]
    pub struct EventStreamFuture<F, W> {
        #[pin]
        inner: F,
        wrapper: Option<Arc<W>>,
    }
}

impl<F, W, B, E> Future for EventStreamFuture<F, W>
where
    F: Future<Output = Result<Response<B>, E>>,
    W: WrapEventStream,
{
    type Output = Result<Response<W::Body<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let wrapper = this
            .wrapper
            .take()
            .expect("EventStreamFuture polled after completion");
        Poll::Ready(Ok(wrapper.wrap_response(response)))
    }
}
