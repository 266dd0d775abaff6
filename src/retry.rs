//! Retry: tells clients how long to wait before reconnecting.
//!
//! The layer puts a `retry: <ms>` field at the head of every event stream,
//! before any event, so even a client that drops before the first event
//! knows the delay. Other responses are left alone.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, RetryLayer, SseBody};
//! use futures_util::stream;
//!
//! let app: Router = Router::new()
//!     .route("/feed", get(|| async { SseBody::new(stream::pending::<Event>()) }))
//!     .layer(RetryLayer::new(Duration::from_secs(3)));
//! ```

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Layer;

use crate::{
    stream_service::{sealed, EventStreamService, WrapEventStream},
    Event,
};

/// Starts every event stream with a `retry:` field. See the
/// [module docs](crate::retry).
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryLayer {
    prefix: Bytes,
}

impl RetryLayer {
    /// Advises clients to wait `delay` (in whole milliseconds) before they
    /// reconnect.
    pub fn new(delay: Duration) -> Self {
        let prefix = Event::new()
            .retry(delay)
            .encode()
            .expect("retry is always valid")
            .into_bytes();
        Self { prefix }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = EventStreamService<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        EventStreamService::new(inner, self.clone())
    }
}

impl sealed::Sealed for RetryLayer {}

impl WrapEventStream for RetryLayer {
    type Body<B> = RetryBody<B>;

    fn wrap_body<B>(&self, inner: B, is_event_stream: bool) -> RetryBody<B> {
        RetryBody {
            inner,
            prefix: is_event_stream.then(|| self.prefix.clone()),
        }
    }

    fn pass_through<B>(inner: B) -> RetryBody<B> {
        RetryBody {
            inner,
            prefix: None,
        }
    }
}

pin_project! {
    /// The body of a response under [`RetryLayer`]: the `retry:` field, then
    /// the inner body.
    #[derive(Debug)]
    pub struct RetryBody<B> {
        #[pin]
        inner: B,
        prefix: Option<Bytes>,
    }
}

impl<B> Body for RetryBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        match this.prefix.take() {
            Some(prefix) => Poll::Ready(Some(Ok(Frame::data(prefix)))),
            None => this.inner.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let Some(prefix) = &self.prefix else {
            return inner;
        };
        let extra = prefix.len() as u64;
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint.set_lower(inner.lower() + extra);
        hint
    }
}
