//! `Stream` adapters over byte streams and HTTP bodies.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::{DecodeError, DecodedEvent, Decoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the byte stream.
    Reading,
    /// The byte stream ended: returning the events left in the decoder.
    Draining,
    /// Returned `None` or a limit error: nothing more.
    Done,
}

pin_project! {
    /// Decodes a stream of byte chunks into [`DecodedEvent`]s.
    ///
    /// Wraps any `Stream<Item = Result<Bytes, E>>` and yields
    /// `Result<DecodedEvent, DecodeError<E>>`. An error of the byte stream
    /// is passed on as [`DecodeError::Source`] and the byte stream is polled
    /// again afterwards; a limit error ends the stream. When the byte stream
    /// ends, an incomplete last event is discarded.
    ///
    /// ```
    /// use axum_sse::decode::{DecodeError, EventStream};
    /// use bytes::Bytes;
    /// use futures_util::{stream, StreamExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), DecodeError<std::io::Error>> {
    /// let bytes = stream::iter([Ok(Bytes::from("retry: 3000\ndata: hi\n\n"))]);
    /// let mut events = EventStream::new(bytes);
    /// let event = events.next().await.unwrap()?;
    /// assert_eq!((event.event.as_str(), event.data.as_str()), ("message", "hi"));
    /// assert!(events.next().await.is_none());
    /// assert_eq!(events.retry(), Some(std::time::Duration::from_secs(3)));
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct EventStream<S> {
        #[pin]
        stream: S,
        decoder: Decoder,
        state: State,
    }
}

impl<S> EventStream<S> {
    /// Decodes `stream` with a default [`Decoder`].
    pub fn new(stream: S) -> Self {
        Self::with_decoder(stream, Decoder::new())
    }

    /// Decodes `stream` with `decoder`, for instance one with other limits.
    ///
    /// ```
    /// use axum_sse::decode::{DecodeError, Decoder, EventStream};
    /// use bytes::Bytes;
    /// use futures_util::{stream, StreamExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bytes = stream::iter([Ok::<_, std::io::Error>(Bytes::from(": a long comment\n"))]);
    /// let mut events = EventStream::with_decoder(bytes, Decoder::new().max_line_len(10));
    /// assert!(matches!(
    ///     events.next().await,
    ///     Some(Err(DecodeError::LineTooLong { limit: 10 }))
    /// ));
    /// assert!(events.next().await.is_none());
    /// # }
    /// ```
    pub fn with_decoder(stream: S, decoder: Decoder) -> Self {
        Self {
            stream,
            decoder,
            state: State::Reading,
        }
    }

    /// The last event ID of the events dispatched so far; see
    /// [`Decoder::last_event_id`].
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The latest reconnection time set by a `retry` field; see
    /// [`Decoder::retry`].
    pub fn retry(&self) -> Option<Duration> {
        self.decoder.retry()
    }

    /// The byte stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The byte stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The byte stream, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().stream
    }

    /// Returns the byte stream, dropping the decoder and what it buffered.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<B> EventStream<BodyChunks<B>> {
    /// Decodes an HTTP body, such as a response body, skipping its trailers.
    ///
    /// ```
    /// use axum_sse::decode::{DecodedEvent, EventStream};
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let body = String::from("event: tick\ndata: 1\n\n");
    /// let events: Vec<_> = EventStream::from_body(body).collect().await;
    /// assert_eq!(events, [Ok(DecodedEvent::new("tick", "1", ""))]);
    /// # }
    /// ```
    pub fn from_body(body: B) -> Self {
        Self::new(BodyChunks::new(body))
    }
}

impl<S, E> Stream for EventStream<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    type Item = Result<DecodedEvent, DecodeError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if *this.state == State::Done {
                return Poll::Ready(None);
            }
            match this.decoder.next_event() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(e) => {
                    *this.state = State::Done;
                    return Poll::Ready(Some(Err(e.widen())));
                }
            }
            if *this.state == State::Draining {
                *this.state = State::Done;
                return Poll::Ready(None);
            }
            match ready!(this.stream.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.decoder.feed(chunk),
                Some(Err(e)) => return Poll::Ready(Some(Err(DecodeError::Source(e)))),
                None => {
                    this.decoder.finish();
                    *this.state = State::Draining;
                }
            }
        }
    }
}

impl<S, E> FusedStream for EventStream<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    fn is_terminated(&self) -> bool {
        self.state == State::Done
    }
}

/// An [`EventStream`] over an HTTP body, made by [`EventStream::from_body`].
pub type BodyEventStream<B> = EventStream<BodyChunks<B>>;

pin_project! {
    /// The data frames of an [`http_body::Body`] as a stream of [`Bytes`],
    /// skipping trailers and empty frames.
    ///
    /// Frames of a body whose data is [`Bytes`] are passed on without a copy.
    ///
    /// ```
    /// use axum_sse::decode::BodyChunks;
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut chunks = BodyChunks::new(String::from("data: x\n\n"));
    /// assert_eq!(chunks.next().await.unwrap().unwrap(), "data: x\n\n");
    /// assert!(chunks.next().await.is_none());
    /// # }
    /// ```
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct BodyChunks<B> {
        #[pin]
        body: B,
    }
}

impl<B> BodyChunks<B> {
    /// Wraps `body`.
    pub fn new(body: B) -> Self {
        Self { body }
    }

    /// The body.
    pub fn get_ref(&self) -> &B {
        &self.body
    }

    /// The body, mutably.
    pub fn get_mut(&mut self) -> &mut B {
        &mut self.body
    }

    /// The body, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut B> {
        self.project().body
    }

    /// Returns the body.
    pub fn into_inner(self) -> B {
        self.body
    }
}

impl<B: http_body::Body> Stream for BodyChunks<B> {
    type Item = Result<Bytes, B::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut body = self.project().body;
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        let len = data.remaining();
                        if len > 0 {
                            return Poll::Ready(Some(Ok(data.copy_to_bytes(len))));
                        }
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};
    use http_body::{Body, Frame};

    /// A body yielding the given frames, in order.
    struct Frames(Vec<Result<Frame<Bytes>, std::io::Error>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(if self.0.is_empty() {
                None
            } else {
                Some(self.0.remove(0))
            })
        }
    }

    #[tokio::test]
    async fn body_skips_trailers_and_passes_errors() {
        let body = Frames(vec![
            Ok(Frame::data(Bytes::from("data: a\r"))),
            Ok(Frame::data(Bytes::new())),
            Ok(Frame::trailers(Default::default())),
            Ok(Frame::data(Bytes::from("\n\r\ndata: b"))),
            Err(std::io::Error::other("reset")),
            Ok(Frame::data(Bytes::from("\n\ndata: c"))),
        ]);
        let mut events = EventStream::from_body(body);
        assert_eq!(events.next().await.unwrap().unwrap().data, "a");
        match events.next().await {
            Some(Err(DecodeError::Source(e))) => assert_eq!(e.to_string(), "reset"),
            other => panic!("{other:?}"),
        }
        assert_eq!(events.next().await.unwrap().unwrap().data, "b");
        assert!(!events.is_terminated());
        assert!(events.next().await.is_none());
        assert!(events.is_terminated());
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn limit_error_ends_stream() {
        let chunks = stream::iter(
            ["data: 1\n\n", "data: 123456789", "0\n\n", "data: 2\n\n"]
                .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        let mut events = EventStream::with_decoder(chunks, Decoder::new().max_event_len(10));
        assert_eq!(events.next().await.unwrap().unwrap().data, "1");
        assert!(matches!(
            events.next().await,
            Some(Err(DecodeError::EventTooLarge { limit: 10 }))
        ));
        assert!(events.is_terminated());
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn events_of_last_chunk_are_all_returned() {
        let chunks = stream::iter([Ok::<_, std::io::Error>(Bytes::from(
            "id: 1\ndata: a\n\ndata: b\n\ndata: c\n\ndata: lost",
        ))]);
        let events = EventStream::new(chunks);
        let data: Vec<_> = events.map(|e| e.unwrap().data).collect().await;
        assert_eq!(data, ["a", "b", "c"]);
    }
}
