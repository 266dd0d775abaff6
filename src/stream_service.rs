//! The service and future shared by the layers that wrap event-stream bodies
//! (heartbeat, retry, time limits): everything else passes through
//! untouched.
//!
//! Where two layers of one kind apply to a stream, the one closest to the
//! handler wins and the other passes the stream through: a layer that wraps
//! an event stream marks the response, and an outer layer of the same kind
//! that sees the mark adds nothing. Inside an [`SseLayer`](crate::SseLayer)
//! a layer does not wrap at all: it records its setting for the request's
//! stream, and the `SseLayer` applies it in its own order, whichever way the
//! handler answers (see the crate docs, "Layer ordering").

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use http::{Extensions, Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use crate::{layer::Overrides, util::headers};

/// Marks a response whose event stream a per-stream layer of each kind
/// (one bit per kind) already wrapped.
#[derive(Debug, Clone, Copy, Default)]
struct Applied(u8);

pub(crate) const RETRY: u8 = 1;
pub(crate) const HEARTBEAT: u8 = 1 << 1;
pub(crate) const TIME_LIMIT: u8 = 1 << 2;

fn is_applied(extensions: &Extensions, kind: u8) -> bool {
    extensions
        .get::<Applied>()
        .is_some_and(|Applied(kinds)| kinds & kind != 0)
}

fn mark_applied(extensions: &mut Extensions, kind: u8) {
    match extensions.get_mut::<Applied>() {
        Some(Applied(kinds)) => *kinds |= kind,
        None => {
            extensions.insert(Applied(kind));
        }
    }
}

/// Wraps the body of `response` with `wrapper`, or passes it through if it
/// is not an event stream or a layer of its kind closer to the handler
/// already wrapped it.
fn wrap_once<W: WrapEventStream, B>(
    wrapper: Option<&W>,
    response: Response<B>,
) -> Response<W::Body<B>> {
    let (mut parts, body) = response.into_parts();
    let body = match wrapper {
        Some(wrapper)
            if headers::is_event_stream(&parts.headers)
                && !is_applied(&parts.extensions, W::KIND) =>
        {
            mark_applied(&mut parts.extensions, W::KIND);
            wrapper.wrap_stream(body, &parts.extensions)
        }
        _ => W::pass_through(body),
    };
    Response::from_parts(parts, body)
}

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

    /// Wraps the body of `response` if it is an event stream (by its
    /// content type) that no layer of this kind closer to the handler
    /// wrapped already; passes it through otherwise.
    fn wrap_response<B>(&self, response: http::Response<B>) -> http::Response<Self::Body<B>> {
        wrap_once(Some(self), response)
    }

    /// Wraps `body`, an event stream, with what the response's extensions
    /// tell about it (such as what [`SseLayer`](crate::SseLayer) records
    /// about the stream).
    #[doc(hidden)]
    fn wrap_stream<B>(&self, body: B, _extensions: &Extensions) -> Self::Body<B> {
        self.wrap_body(body, true)
    }
}

/// An optional layer, as [`SseLayer`](crate::SseLayer) holds its own: `None`
/// passes every body through. Either way, a setting recorded for the stream
/// by a layer inside the `SseLayer` (or by the handler) replaces it.
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
        let recorded = response
            .extensions()
            .get::<Overrides>()
            .and_then(W::recorded);
        wrap_once(recorded.as_ref().or(self.as_ref()), response)
    }
}

pub(crate) mod sealed {
    use crate::layer::{Overrides, StreamSettings};

    pub trait Sealed {
        /// This kind's bit in the mark of a wrapped response.
        const KIND: u8;

        /// Whether the layer, inside an `SseLayer`, records its setting for
        /// the `SseLayer` to apply instead of wrapping bodies itself.
        const RECORDS: bool = true;

        /// Records the layer's setting for the request's stream.
        fn record(&self, _settings: &mut StreamSettings) {}

        /// The setting of this kind recorded for the stream, if any.
        fn recorded(_overrides: &Overrides) -> Option<Self>
        where
            Self: Sized,
        {
            None
        }
    }

    /// `SseLayer`'s own layers record nothing: they apply what was recorded.
    impl<W: Sealed> Sealed for Option<W> {
        const KIND: u8 = W::KIND;
        const RECORDS: bool = false;
    }
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

    define_inner_service_accessors!();
}

impl<S, W, ReqBody, ResBody> Service<Request<ReqBody>> for EventStreamService<S, W>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    W: WrapEventStream,
{
    type Response = Response<W::Body<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, W>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Inside an `SseLayer`: it applies the setting, in its own order.
        let recorded = W::RECORDS
            && crate::layer::record(request.extensions(), |settings| {
                self.wrapper.record(settings);
            });
        ResponseFuture {
            inner: self.inner.call(request),
            wrapper: Some((!recorded).then(|| Arc::clone(&self.wrapper))),
        }
    }
}

pin_project! {
    /// The response future of [`EventStreamService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F, W> {
        #[pin]
        inner: F,
        // `Some(None)`: the setting was recorded for an `SseLayer` to apply.
        wrapper: Option<Option<Arc<W>>>,
    }
}

impl<F, W, B, E> Future for ResponseFuture<F, W>
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
            .expect("ResponseFuture polled after completion");
        Poll::Ready(Ok(match wrapper {
            Some(wrapper) => wrapper.wrap_response(response),
            None => response.map(W::pass_through),
        }))
    }
}
