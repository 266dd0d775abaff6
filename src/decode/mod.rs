//! A spec-exact Server-Sent Events decoder.
//!
//! This module implements the WHATWG HTML algorithm for
//! [interpreting an event stream][spec], turning bytes into the events an
//! `EventSource` would dispatch:
//!
//! * [`Decoder`] is the push-style core without I/O: [`feed`](Decoder::feed)
//!   it chunks, pull [`DecodedEvent`]s with
//!   [`next_event`](Decoder::next_event). It works in sync code.
//! * [`EventStream`] wraps any `Stream<Item = Result<Bytes, E>>` and yields
//!   `Result<DecodedEvent, DecodeError<E>>`.
//! * [`EventStream::from_body`] (a [`BodyEventStream`]) does the same for any
//!   [`http_body::Body`], skipping trailers.
//!
//! # Conformance
//!
//! Every rule of the algorithm is followed, whatever the chunking of the
//! input (a chunk may end anywhere, even inside a UTF-8 character, a CRLF
//! pair or the byte order mark):
//!
//! * lines end with CRLF, LF or CR; a CRLF split across two chunks is one
//!   line ending, and a line ended by CR is handled at once, without waiting
//!   for the next chunk;
//! * one UTF-8 byte order mark at the very start of the stream is skipped;
//! * text is decoded as UTF-8 with invalid sequences replaced by U+FFFD;
//! * lines starting with `:` are comments; a line without `:` is a field
//!   with an empty value; one space after the first `:` is removed; unknown
//!   fields are ignored;
//! * `data` appends its value and `\n` to the data buffer; an empty line
//!   dispatches the event with the final `\n` removed, or dispatches nothing
//!   when the data buffer is empty (so a lone `data` line dispatches an event
//!   whose data is `""`), and in both cases resets the data and event type
//!   buffers;
//! * `event` sets the event type, `"message"` when empty or absent;
//! * `id` sets the last event ID buffer (an empty value clears it) unless the
//!   value contains U+0000 NULL; the buffer persists across events;
//! * an empty line sets the last event ID string (what
//!   [`Decoder::last_event_id`] returns, and what a client resumes from) to
//!   the buffer, even when it dispatches nothing; the `id` of a block that
//!   never ended is never reported, and the next stream's buffer starts from
//!   the last event ID string;
//! * `retry` sets the reconnection time, in milliseconds, when its value is
//!   one or more ASCII digits, as soon as its line is parsed (dispatched or
//!   not); values beyond `u64::MAX` saturate to `u64::MAX` milliseconds;
//! * at the end of the stream an incomplete line and an undispatched event
//!   are discarded.
//!
//! # Bounded memory
//!
//! A line longer than [`Decoder::max_line_len`] or an event whose data grows
//! past [`Decoder::max_event_len`] is an error ([`DecodeError::LineTooLong`],
//! [`DecodeError::EventTooLarge`]) instead of unbounded growth; the stream
//! ends after it. Complete lines are parsed in place in the chunks they
//! arrive in; only a line split across chunks is copied.
//!
//! # Example
//!
//! ```
//! use axum_sse::decode::{DecodedEvent, EventStream};
//! use bytes::Bytes;
//! use futures_util::{stream, StreamExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let chunks = ["event: greet\nid: 1\nda", "ta: hello\r", "\n\r\ndata: bye\n\n"];
//! let body = stream::iter(chunks.map(|c| Ok::<_, std::io::Error>(Bytes::from(c))));
//! let events: Vec<_> = EventStream::new(body).map(Result::unwrap).collect().await;
//! assert_eq!(
//!     events,
//!     [
//!         DecodedEvent::new("greet", "hello", "1"),
//!         DecodedEvent::new("message", "bye", "1"),
//!     ]
//! );
//! # }
//! ```
//!
//! [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

mod decoder;
mod stream;

pub use decoder::Decoder;
pub use stream::{BodyChunks, BodyEventStream, EventStream};

/// One decoded event, as the spec dispatches it.
///
/// Build one with [`DecodedEvent::new`] (and [`with_retry`](Self::with_retry)),
/// for instance to compare in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodedEvent {
    /// The event type: the last `event` field of the block, or `"message"`
    /// when there was none or it was empty.
    pub event: String,
    /// The `data` lines of the block joined by `\n` (the final `\n` removed).
    pub data: String,
    /// The last event ID at dispatch time: set by the latest valid `id`
    /// field of this or any earlier dispatched block of the stream, `""` if
    /// none.
    pub last_event_id: String,
    /// The reconnection time set by a valid `retry` field in this event's
    /// block, if any. [`Decoder::retry`] keeps the latest one of the stream.
    pub retry: Option<Duration>,
}

impl DecodedEvent {
    /// An event with the given type, data and last event ID, and no `retry`.
    ///
    /// ```
    /// use axum_sse::decode::DecodedEvent;
    ///
    /// let ev = DecodedEvent::new("message", "hi", "");
    /// assert_eq!((ev.event.as_str(), ev.data.as_str()), ("message", "hi"));
    /// assert_eq!(ev.retry, None);
    /// ```
    pub fn new(
        event: impl Into<String>,
        data: impl Into<String>,
        last_event_id: impl Into<String>,
    ) -> Self {
        Self {
            event: event.into(),
            data: data.into(),
            last_event_id: last_event_id.into(),
            retry: None,
        }
    }

    /// Sets [`retry`](Self::retry).
    ///
    /// ```
    /// use axum_sse::decode::DecodedEvent;
    /// use std::time::Duration;
    ///
    /// let ev = DecodedEvent::new("message", "hi", "").with_retry(Duration::from_secs(3));
    /// assert_eq!(ev.retry, Some(Duration::from_millis(3000)));
    /// ```
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }
}

/// An error while decoding an event stream.
///
/// `E` is the error type of the byte stream; [`Decoder`] itself reports
/// `DecodeError<Infallible>` (the default), which can only be a limit error.
/// After a limit error an [`EventStream`] ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError<E = Infallible> {
    /// The underlying byte stream failed; [`std::error::Error::source`]
    /// returns this error.
    Source(E),
    /// A line (without its line ending) was longer than `limit` bytes.
    LineTooLong {
        /// The configured [`Decoder::max_line_len`].
        limit: usize,
    },
    /// The data of one event grew past `limit` bytes (counting one byte per
    /// `data` line for the `\n` that joins them).
    EventTooLarge {
        /// The configured [`Decoder::max_event_len`].
        limit: usize,
    },
}

impl DecodeError {
    /// Converts a decoder error (never `Source`) into one for a byte stream.
    fn widen<E>(self) -> DecodeError<E> {
        match self {
            DecodeError::Source(never) => match never {},
            DecodeError::LineTooLong { limit } => DecodeError::LineTooLong { limit },
            DecodeError::EventTooLarge { limit } => DecodeError::EventTooLarge { limit },
        }
    }
}

impl<E> fmt::Display for DecodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Source(_) => f.write_str("error reading the event stream"),
            DecodeError::LineTooLong { limit } => {
                write!(f, "event stream line longer than {limit} bytes")
            }
            DecodeError::EventTooLarge { limit } => {
                write!(f, "event stream event data larger than {limit} bytes")
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for DecodeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Source(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn error_display_and_source() {
        let e: DecodeError<std::io::Error> = DecodeError::Source(std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "error reading the event stream");
        assert_eq!(e.source().unwrap().to_string(), "boom");
        let e = DecodeError::<std::io::Error>::LineTooLong { limit: 8 };
        assert_eq!(e.to_string(), "event stream line longer than 8 bytes");
        assert!(e.source().is_none());
        let e: DecodeError<std::io::Error> = DecodeError::EventTooLarge { limit: 9 }.widen();
        assert_eq!(e.to_string(), "event stream event data larger than 9 bytes");
    }

    #[test]
    fn errors_are_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<DecodeError>();
        check::<DecodeError<std::io::Error>>();
    }
}
