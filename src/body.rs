//! `SseBody`: an HTTP body over a stream of events, the stream-style entry.
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseBody};
//! use futures_util::stream;
//!
//! async fn numbers() -> SseBody<impl futures_util::Stream<Item = Event>> {
//!     SseBody::new(stream::iter(1..=3).map(|n| Event::new().id(n).data(n.to_string())))
//! }
//! # use futures_util::StreamExt;
//! let app: Router = Router::new().route("/numbers", get(numbers));
//! ```

use std::{
    fmt,
    pin::Pin,
    task::{ready, Context, Poll},
};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::{util::frame_buffer::FrameBuffer, util::headers, BoxError, EncodedEvent, Event};

/// Default upper bound, in bytes, of one body frame made of several events.
const DEFAULT_FRAME_BUDGET: usize = 64 * 1024;

/// Joins the events that are ready at once into one frame, up to a byte
/// budget, so a burst costs one write instead of one per event. Events are
/// written straight into the frame; a shared [`EncodedEvent`] that is ready
/// alone goes out as it is, with no copy. No event waits for company.
#[derive(Debug)]
struct Coalescer {
    buf: FrameBuffer,
    budget: usize,
}

impl Coalescer {
    fn new(budget: usize) -> Self {
        Self {
            buf: FrameBuffer::new(budget),
            budget,
        }
    }

    /// Builds a frame from `first` and whatever `next_ready` still yields
    /// without waiting, until the budget is reached. An item after the first
    /// that fails stops the gathering and is returned with the frame.
    ///
    /// # Errors
    ///
    /// Why the first item has no bytes.
    fn frame<I: SseItem>(
        &mut self,
        first: I,
        mut next_ready: impl FnMut() -> Option<I>,
    ) -> Result<(Bytes, Option<BoxError>), BoxError> {
        let mut pending = match first.into_shared() {
            Ok(shared) => {
                if shared.len() >= self.budget {
                    return Ok((shared, None));
                }
                let Some(second) = next_ready() else {
                    return Ok((shared, None));
                };
                self.buf.extend(&shared);
                Some(second)
            }
            Err(first) => {
                first.with_wire(|wire| self.buf.extend(wire))?;
                None
            }
        };
        let mut failed = None;
        while self.buf.len() < self.budget {
            let Some(item) = pending.take().or_else(&mut next_ready) else {
                break;
            };
            if let Err(err) = item.with_wire(|wire| self.buf.extend(wire)) {
                failed = Some(err);
                break;
            }
        }
        Ok((self.buf.take(), failed))
    }
}

pin_project! {
    /// An HTTP body streaming the events of a [`Stream`]: the stream-style way
    /// to answer with Server-Sent Events.
    ///
    /// The stream yields [`Event`]s, or `Result<Event, E>` for a fallible
    /// source. An error, or an event with an invalid field, ends the body with
    /// that error (hyper then aborts the connection, so the client can tell
    /// the stream broke).
    ///
    /// As a handler's return value it answers `200` with
    /// `Content-Type: text/event-stream`, `Cache-Control: no-cache, no-transform` and
    /// `X-Accel-Buffering: no`; [`SseLayer`](crate::SseLayer) on the route
    /// adds `Connection: keep-alive` on HTTP/1.x. Events that are ready at
    /// the same time go out in one frame.
    #[must_use = "a body does nothing unless it is returned or polled"]
    pub struct SseBody<S> {
        #[pin]
        stream: S,
        coalescer: Coalescer,
        // An error or the end, met while gathering a frame, to report on the
        // next poll.
        deferred: Option<Option<BoxError>>,
        // The connection was given a chance to write what came before a
        // deferred error.
        flushed: bool,
    }
}

impl<S> SseBody<S> {
    /// A body streaming the events of `stream`.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            coalescer: Coalescer::new(DEFAULT_FRAME_BUDGET),
            deferred: None,
            flushed: false,
        }
    }

    /// Sets the most bytes one frame gathers from events that are ready
    /// together. Default: 64 KiB. An event larger than this is still sent
    /// whole.
    pub fn frame_budget(mut self, bytes: usize) -> Self {
        self.coalescer = Coalescer::new(bytes.max(1));
        self
    }
}

impl<S> fmt::Debug for SseBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("frame_budget", &self.coalescer.budget)
            .finish_non_exhaustive()
    }
}

/// What an [`SseBody`] stream may yield: an [`Event`], an [`EncodedEvent`],
/// or a `Result` of either.
pub trait SseItem: sealed::Sealed + Sized {
    /// The event's bytes if they are shared already, else the item back.
    #[doc(hidden)]
    fn into_shared(self) -> Result<Bytes, Self>;

    /// Calls `f` with the event's bytes, or says why there are none.
    #[doc(hidden)]
    fn with_wire<R>(self, f: impl FnOnce(&[u8]) -> R) -> Result<R, BoxError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Event {}
    impl Sealed for crate::EncodedEvent {}
    impl<T: Sealed, E> Sealed for Result<T, E> {}
}

impl SseItem for Event {
    fn into_shared(self) -> Result<Bytes, Self> {
        Err(self)
    }

    fn with_wire<R>(self, f: impl FnOnce(&[u8]) -> R) -> Result<R, BoxError> {
        Ok(f(self.check()?.wire()))
    }
}

impl SseItem for EncodedEvent {
    fn into_shared(self) -> Result<Bytes, Self> {
        Ok(self.into_bytes())
    }

    fn with_wire<R>(self, f: impl FnOnce(&[u8]) -> R) -> Result<R, BoxError> {
        Ok(f(self.as_bytes()))
    }
}

impl<T: SseItem, E: Into<BoxError>> SseItem for Result<T, E> {
    fn into_shared(self) -> Result<Bytes, Self> {
        match self {
            Ok(item) => item.into_shared().map_err(Ok),
            Err(err) => Err(Err(err)),
        }
    }

    fn with_wire<R>(self, f: impl FnOnce(&[u8]) -> R) -> Result<R, BoxError> {
        self.map_err(Into::into)?.with_wire(f)
    }
}

impl<S> Body for SseBody<S>
where
    S: Stream,
    S::Item: SseItem,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Some(deferred) = this.deferred.take() {
            if deferred.is_some() && !*this.flushed {
                // hyper drops what it has not written yet when a body fails:
                // yield once, so that it writes the events before the error.
                *this.flushed = true;
                *this.deferred = Some(deferred);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // Keep reporting the end once reached.
            *this.deferred = Some(None);
            return Poll::Ready(deferred.map(Err));
        }
        let Some(first) = ready!(this.stream.as_mut().poll_next(cx)) else {
            *this.deferred = Some(None);
            return Poll::Ready(None);
        };
        let mut stream = this.stream;
        let mut ended = false;
        let gathered = this
            .coalescer
            .frame(first, || match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => Some(item),
                Poll::Ready(None) => {
                    ended = true;
                    None
                }
                Poll::Pending => None,
            });
        let (frame, failed) = match gathered {
            Ok(gathered) => gathered,
            Err(err) => {
                *this.deferred = Some(None);
                return Poll::Ready(Some(Err(err)));
            }
        };
        if let Some(err) = failed {
            *this.deferred = Some(Some(err));
        } else if ended {
            *this.deferred = Some(None);
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.deferred, Some(None))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl<S> IntoResponse for SseBody<S>
where
    S: Stream + Send + 'static,
    S::Item: SseItem,
{
    fn into_response(self) -> Response {
        let mut response = Response::new(axum::body::Body::new(self));
        headers::insert_sse_headers(response.headers_mut(), None);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::BodyExt;

    fn ev(n: u32) -> Event {
        Event::new().id(n).data("x")
    }

    #[tokio::test]
    async fn ready_events_share_one_frame() {
        let mut body = SseBody::new(stream::iter((0..10).map(ev)));
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let expected: String = (0..10).map(|n| format!("id: {n}\ndata: x\n\n")).collect();
        assert_eq!(frame, expected);
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn the_frame_budget_splits_bursts() {
        // Each event is 15 bytes; a frame stops growing once it holds 30.
        let mut body = SseBody::new(stream::iter((0..7).map(ev))).frame_budget(30);
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [30, 30, 30, 15]);
    }

    #[tokio::test]
    async fn an_error_ends_the_body_after_the_events_before_it() {
        let items = vec![Ok(ev(1)), Err("upstream broke"), Ok(ev(2))];
        let mut body = SseBody::new(stream::iter(items));
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, "id: 1\ndata: x\n\n");
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "upstream broke");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn an_invalid_event_in_a_burst_ends_the_body_after_the_events_before_it() {
        let events = [ev(1), ev(2), Event::new().id("a\nb").data("x"), ev(3)];
        let mut body = SseBody::new(stream::iter(events));
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, "id: 1\ndata: x\n\nid: 2\ndata: x\n\n");
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("CR or LF"), "{err}");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn axum_style_infallible_results_are_accepted() {
        let items = [Ok::<_, std::convert::Infallible>(ev(1))];
        let frame = SseBody::new(stream::iter(items)).frame().await.unwrap();
        assert_eq!(frame.unwrap().into_data().unwrap(), "id: 1\ndata: x\n\n");
    }

    #[tokio::test]
    async fn an_invalid_event_ends_the_body_with_its_error() {
        let mut body = SseBody::new(stream::iter([Event::new().event("a\nb")]));
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("CR or LF"), "{err}");
    }
}
