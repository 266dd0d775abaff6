//! Retry: tells clients how long to wait before reconnecting.
//!
//! The layer adds a `retry: <ms>` line to every event stream (WHATWG HTML,
//! "9.2.6 Interpreting an event stream": the field sets the reconnection
//! time). The line joins the block of the first event that has `data`, just
//! before that block's own lines: it never forms a block of its own, which
//! loose parsers (the `openai` SDKs among them) would dispatch as an event
//! with empty data, and a `retry` the event sets itself still wins. A stream
//! that ends before its first event carries no advice. Other responses are
//! left alone.
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
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Layer;

use crate::{
    layer::{Overrides, StreamSettings},
    stream_service::{sealed, EventStreamService, WrapEventStream},
    util::position::{LineKind, LineWalker},
    Event,
};

/// Starts every event stream with a `retry:` field. See the
/// [module docs](crate::retry).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it, with either handler style. Of two on one stream the one
/// closest to the handler wins, and
/// [`SseWriter::set_retry`](crate::SseWriter::set_retry) over both: a
/// stream carries one `retry:` line. See [layer ordering](crate#layer-ordering-and-tower-http).
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryLayer {
    prefix: Bytes,
}

impl RetryLayer {
    /// Advises clients to wait `delay` (in whole milliseconds) before they
    /// reconnect: `retry: <ms>\n`, sent with the first event.
    pub fn new(delay: Duration) -> Self {
        // A `retry` alone ends no block: the line, without a blank line.
        let prefix = Event::new()
            .retry(delay)
            .encode()
            .expect("retry is always valid")
            .into_bytes();
        Self { prefix }
    }
}

/// The service made by [`RetryLayer`]: the event-stream service every
/// per-stream layer of this crate shares, with this layer's setting.
pub type RetryService<S> = EventStreamService<S, RetryLayer>;

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventStreamService::new(inner, self.clone())
    }
}

impl sealed::Sealed for RetryLayer {
    const KIND: u8 = crate::stream_service::RETRY;

    fn record(&self, settings: &mut StreamSettings) {
        settings.overrides.retry = Some(self.clone());
    }

    fn recorded(overrides: &Overrides) -> Option<Self> {
        overrides.retry.clone()
    }
}

impl WrapEventStream for RetryLayer {
    type Body<B> = RetryBody<B>;

    fn wrap_body<B>(&self, inner: B, is_event_stream: bool) -> RetryBody<B> {
        RetryBody {
            inner,
            prefix: is_event_stream.then(|| self.prefix.clone()),
            first_event: FirstEvent::default(),
        }
    }

    fn pass_through<B>(inner: B) -> RetryBody<B> {
        RetryBody {
            inner,
            prefix: None,
            first_event: FirstEvent::default(),
        }
    }
}

pin_project! {
    /// The body of a response under [`RetryLayer`]: the inner body, with the
    /// `retry:` line in the block of its first event.
    #[derive(Debug)]
    pub struct RetryBody<B> {
        #[pin]
        inner: B,
        // Until it is sent.
        prefix: Option<Bytes>,
        first_event: FirstEvent,
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
        let frame = ready!(this.inner.poll_frame(cx));
        let Some(prefix) = this.prefix else {
            return Poll::Ready(frame);
        };
        let Some(Ok(data)) = frame
            .as_ref()
            .map(|frame| frame.as_ref().map(Frame::data_ref))
        else {
            return Poll::Ready(frame);
        };
        let Some(at) = data.and_then(|data| this.first_event.insertion_point(data)) else {
            return Poll::Ready(frame);
        };
        let data = data.expect("found in the data");
        let mut joined = BytesMut::with_capacity(data.len() + prefix.len());
        joined.extend_from_slice(&data[..at]);
        joined.extend_from_slice(prefix);
        joined.extend_from_slice(&data[at..]);
        *this.prefix = None;
        Poll::Ready(Some(Ok(Frame::data(joined.freeze()))))
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

/// Finds where the retry advice joins the stream: a line start in the block
/// of the first `data` line, as early as the frame at hand allows.
#[derive(Debug, Clone, Default)]
struct FirstEvent {
    lines: LineWalker,
    /// The first `data` line ended with a CR that was the last byte of its
    /// frame: insert after the LF that may open the next frame.
    after_data_line: bool,
}

impl FirstEvent {
    /// Where in `data` to insert the advice, once the first `data` line is
    /// complete.
    fn insertion_point(&mut self, data: &[u8]) -> Option<usize> {
        if data.is_empty() {
            return None;
        }
        if self.after_data_line {
            return Some(self.lines.pending_lf(data));
        }
        // A line start in the current block, the earliest one in `data`.
        let mut line_start = self
            .lines
            .at_line_start()
            .then(|| self.lines.pending_lf(data));
        let mut found = None;
        self.lines.walk(data, |kind, next| {
            match kind {
                LineKind::Blank => line_start = Some(next),
                LineKind::Data => {
                    found = Some(line_start.unwrap_or(next));
                    return false;
                }
                LineKind::Comment | LineKind::Retry | LineKind::OtherField => {
                    line_start.get_or_insert(next);
                }
            }
            true
        });
        if found == Some(data.len()) && data.last() == Some(&b'\r') {
            // Between the CR and LF of one line ending: inserting there
            // would make the LF a blank line of its own.
            self.after_data_line = true;
            return None;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::FirstEvent;

    /// The frames with the advice `R\n` inserted where the body puts it.
    fn with_advice(frames: &[&str]) -> String {
        let mut first_event = FirstEvent::default();
        let mut sent = false;
        let mut wire = String::new();
        for frame in frames {
            match first_event
                .insertion_point(frame.as_bytes())
                .filter(|_| !sent)
            {
                Some(at) => {
                    sent = true;
                    wire.push_str(&frame[..at]);
                    wire.push_str("R\n");
                    wire.push_str(&frame[at..]);
                }
                None => wire.push_str(frame),
            }
        }
        wire
    }

    #[test]
    fn the_advice_opens_the_block_of_the_first_event_with_data() {
        assert_eq!(with_advice(&["data: a\n\n"]), "R\ndata: a\n\n");
        assert_eq!(
            with_advice(&["id: 1\ndata: a\n\n"]),
            "R\nid: 1\ndata: a\n\n"
        );
        // Comments, blocks without data and heartbeats before it stay as they are.
        assert_eq!(
            with_advice(&[": hi\n\n", ":\n", "event: x\n\nid: 2\ndata: a\n\n"]),
            ": hi\n\n:\nevent: x\n\nR\nid: 2\ndata: a\n\n"
        );
        assert_eq!(
            with_advice(&["data: a\r\rdata: b\r\r"]),
            "R\ndata: a\r\rdata: b\r\r"
        );
    }

    #[test]
    fn a_split_first_event_gets_the_advice_at_a_line_start_inside_it() {
        assert_eq!(
            with_advice(&["id: 1\n", "data: a\n\n"]),
            "id: 1\nR\ndata: a\n\n"
        );
        assert_eq!(
            with_advice(&["id: 1\nda", "ta: a\n\n"]),
            "id: 1\ndata: a\nR\n\n"
        );
        assert_eq!(with_advice(&["data: a", "\n", "\n"]), "data: a\nR\n\n");
        // Never between the CR and the LF of one line ending.
        assert_eq!(with_advice(&["data: a\r", "\n\n"]), "R\ndata: a\r\n\n");
        assert_eq!(with_advice(&["da", "ta: a\r", "\n\n"]), "data: a\r\nR\n\n");
        assert_eq!(with_advice(&["da", "ta: a\r", "", "\r"]), "data: a\rR\n\r");
        assert_eq!(with_advice(&["\r", "\ndata: a\n\n"]), "\r\nR\ndata: a\n\n");
    }

    #[test]
    fn a_stream_without_data_gets_no_advice() {
        assert_eq!(with_advice(&[":\n", "id: 1\n\n"]), ":\nid: 1\n\n");
    }
}
