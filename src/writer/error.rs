//! Why a send failed.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::{Event, EventError};

/// Why an event could not be sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum SseError {
    /// The client is gone; nothing more can reach it.
    ConnectionClosed,
    /// The handler answered the request without the stream (or the handler
    /// failed) before this send.
    ResponseAlreadySent,
    /// A field of the event was refused; nothing was sent.
    InvalidEvent(EventError),
    /// The client read too slowly: the queue to it stayed full for the send
    /// timeout. Its stream was closed and what was queued dropped; later
    /// sends return [`ConnectionClosed`](Self::ConnectionClosed).
    Timeout,
    /// A per-stream setting ([`SseWriter::set_retry`](crate::SseWriter::set_retry),
    /// [`SseWriter::set_heartbeat`](crate::SseWriter::set_heartbeat)) came after the stream started; it was
    /// not applied.
    StreamStarted,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectionClosed => f.write_str("the SSE client closed the connection"),
            Self::ResponseAlreadySent => f.write_str(
                "the request was already answered without an event stream; \
                 send events before returning a response",
            ),
            Self::InvalidEvent(err) => write!(f, "invalid SSE event: {err}"),
            Self::Timeout => f.write_str(
                "the SSE client read too slowly: the send timed out and the stream was closed",
            ),
            Self::StreamStarted => f.write_str(
                "the SSE stream already started: set its retry and heartbeat before the first send",
            ),
        }
    }
}

impl std::error::Error for SseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            Self::ConnectionClosed
            | Self::ResponseAlreadySent
            | Self::Timeout
            | Self::StreamStarted => None,
        }
    }
}

/// Why a valid event was not queued: the errors of a send without a payload,
/// small enough that the send's fast path returns them in a register.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refused {
    ResponseAlreadySent,
    ConnectionClosed,
    Timeout,
}

impl From<Refused> for SseError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::ResponseAlreadySent => Self::ResponseAlreadySent,
            Refused::ConnectionClosed => Self::ConnectionClosed,
            Refused::Timeout => Self::Timeout,
        }
    }
}

impl From<EventError> for SseError {
    fn from(err: EventError) -> Self {
        Self::InvalidEvent(err)
    }
}

/// A handler returning `Result<_, SseError>` answers `500` with the error's
/// text if the stream has not started; once it has, the layer discards the
/// handler's answer.
impl IntoResponse for SseError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Why [`SseWriter::try_send`](crate::SseWriter::try_send) did not send; hands the event back where it
/// can.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrySendError {
    /// The queue is full: the client reads slower than the handler writes.
    Full(Event),
    /// The client is gone.
    Closed(Event),
    /// The handler answered the request without the stream.
    ResponseAlreadySent(Event),
    /// A field of the event was refused.
    InvalidEvent(EventError),
}

impl TrySendError {
    /// The event that was not sent, if it is still whole.
    pub fn into_event(self) -> Option<Event> {
        match self {
            Self::Full(event) | Self::Closed(event) | Self::ResponseAlreadySent(event) => {
                Some(event)
            }
            Self::InvalidEvent(_) => None,
        }
    }
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the SSE queue is full"),
            Self::Closed(_) => SseError::ConnectionClosed.fmt(f),
            Self::ResponseAlreadySent(_) => SseError::ResponseAlreadySent.fmt(f),
            Self::InvalidEvent(err) => write!(f, "invalid SSE event: {err}"),
        }
    }
}

impl std::error::Error for TrySendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            _ => None,
        }
    }
}
