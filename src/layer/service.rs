//! `SseService`: what [`SseLayer`](super::SseLayer) makes of a service, one
//! opaque type over the stack of its parts.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use axum::BoxError;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Service;

use crate::{
    heartbeat::HeartbeatBody,
    last_event_id::{self, LastEventIdService},
    limit::{self, StreamLimitBody, StreamLimitService},
    retry::RetryBody,
    shutdown::{self, ShutdownBody, ShutdownService},
    stream_service::{self, EventStreamService},
    time_limit::TimeLimitBody,
    util::answer::AnswerBody,
    writer::{body::WriterBody, future::WriterFuture, service::WriterService},
    HeartbeatLayer, RetryLayer, TimeLimitLayer,
};

/// The parts, outermost first: Last-Event-ID, shutdown, stream limits,
/// retry, heartbeat, time limits (inside the heartbeat, so heartbeats are
/// not activity), then the writer and headers. The retry, heartbeat and
/// time-limit parts apply what a layer inside (or the handler) set for the
/// stream in place of their own setting.
pub(super) type Stack<S> = LastEventIdService<
    ShutdownService<
        StreamLimitService<
            EventStreamService<
                EventStreamService<
                    EventStreamService<WriterService<S>, Option<TimeLimitLayer>>,
                    Option<HeartbeatLayer>,
                >,
                Option<RetryLayer>,
            >,
        >,
    >,
>;

/// The body of the stack's responses, for a handler future `F` and body `B`.
type StackBody<F, B> = AnswerBody<
    ShutdownBody<StreamLimitBody<RetryBody<HeartbeatBody<TimeLimitBody<WriterBody<F, B>>>>>>,
>;

/// The event-stream parts' future around the writer's.
type WrappedFuture<F> = stream_service::ResponseFuture<
    stream_service::ResponseFuture<
        stream_service::ResponseFuture<WriterFuture<F>, Option<TimeLimitLayer>>,
        Option<HeartbeatLayer>,
    >,
    Option<RetryLayer>,
>;

/// The body the event-stream parts answer with.
type WrappedBody<F, B> = RetryBody<HeartbeatBody<TimeLimitBody<WriterBody<F, B>>>>;

/// The future of the stack, for a handler future `F` and body `B`.
type StackFuture<F, B> = last_event_id::ResponseFuture<
    shutdown::ResponseFuture<
        limit::ResponseFuture<WrappedFuture<F>, WrappedBody<F, B>>,
        StreamLimitBody<WrappedBody<F, B>>,
    >,
    ShutdownBody<StreamLimitBody<WrappedBody<F, B>>>,
>;

/// The service made by [`SseLayer`](super::SseLayer): see there for what it
/// does to each request.
#[derive(Debug, Clone)]
pub struct SseService<S> {
    inner: Stack<S>,
}

impl<S> SseService<S> {
    pub(super) fn new(inner: Stack<S>) -> Self {
        Self { inner }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SseService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<S::Future, ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`SseService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: StackFuture<F, B>,
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<F, B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(response.map(|inner| ResponseBody {
            inner,
            unflushed: false,
            error: None,
        })))
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// The response body of [`SseService`]: the handler's own body, or the
    /// event stream its writer feeds, with what the layer's parts add.
    pub struct ResponseBody<F, B> {
        #[pin]
        inner: StackBody<F, B>,
        // A data frame went to hyper since the body last returned `Pending`.
        unflushed: bool,
        // An error held back for one poll (see `poll_frame`).
        error: Option<BoxError>,
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
        let this = self.project();
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Err(error))) if *this.unflushed => {
                // hyper drops what it has not written yet when a body fails:
                // yield once, so that it writes the events before the error.
                *this.unflushed = false;
                *this.error = Some(error);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => {
                *this.unflushed = false;
                Poll::Pending
            }
            ready => {
                *this.unflushed = matches!(&ready, Poll::Ready(Some(Ok(_))));
                ready
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.error.is_none() && self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F, B> fmt::Debug for ResponseBody<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
