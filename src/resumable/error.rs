//! Why a response could not start, be read, or take an event.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

use crate::{broadcast::BroadcastError, EventError};

/// Why [`ResumableResponses`](super::ResumableResponses) could not start or
/// resume a response.
///
/// As a response ([`IntoResponse`]): `503 Service Unavailable` with
/// `Retry-After: 1` for [`TooManyLive`](Self::TooManyLive),
/// [`ShuttingDown`](Self::ShuttingDown) and
/// [`Backend`](Self::Backend) (another instance, or a moment later, can
/// serve it), `409 Conflict` for [`AlreadyExists`](Self::AlreadyExists),
/// `400 Bad Request` for [`InvalidId`](Self::InvalidId); a short text body
/// saying why.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResumableError {
    /// This instance already runs its maximum number of producers (see
    /// [`ResumableBuilder::max_live`](super::ResumableBuilder::max_live)).
    TooManyLive {
        /// The bound.
        limit: usize,
    },
    /// The store's shutdown was triggered: it starts no new response.
    ShuttingDown,
    /// A response with this id is already in the store.
    AlreadyExists,
    /// A response id given to
    /// [`start_with_id`](super::ResumableResponses::start_with_id) is
    /// empty, longer than 64 bytes, or holds a byte other than ASCII
    /// letters, digits, `-`, `_`, `.` and `:`.
    InvalidId,
    /// The log's backend (Redis) failed.
    Backend(BroadcastError),
}

impl ResumableError {
    /// The status [`IntoResponse`] answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooManyLive { .. } | Self::ShuttingDown | Self::Backend(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::AlreadyExists => StatusCode::CONFLICT,
            Self::InvalidId => StatusCode::BAD_REQUEST,
        }
    }

    /// The text body [`IntoResponse`] answers with.
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl IntoResponse for ResumableError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, self.body_text()).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl fmt::Display for ResumableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyLive { limit } => write!(
                f,
                "too many live resumable responses on this instance (at most {limit})"
            ),
            Self::ShuttingDown => f.write_str("the server is shutting down"),
            Self::AlreadyExists => f.write_str("a response with this id already exists"),
            Self::InvalidId => f.write_str(
                "invalid response id: 1 to 64 bytes of ASCII letters, digits, '-', '_', '.', ':'",
            ),
            Self::Backend(err) => write!(f, "the response log failed: {err}"),
        }
    }
}

impl std::error::Error for ResumableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend(err) => Some(err),
            _ => None,
        }
    }
}

/// Why an [`EventSink`](super::EventSink) did not take an event.
///
/// After [`TooLarge`](Self::TooLarge) and [`Closed`](Self::Closed) every
/// later send fails the same way: the producer should return.
#[derive(Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// The event has an invalid field; nothing was written.
    InvalidEvent(EventError),
    /// The event's type is the store's reserved `axum-sse-resumable`;
    /// nothing was written.
    ReservedType,
    /// The event carries an `id`: the log gives ids.
    IdNotAllowed,
    /// The event would take the response past its bound of events or bytes
    /// (see [`ResumableBuilder::max_events`](super::ResumableBuilder::max_events),
    /// [`max_bytes`](super::ResumableBuilder::max_bytes)); the response
    /// was ended before it, incomplete.
    TooLarge,
    /// The response was cancelled or has ended.
    Closed,
    /// The log's backend (Redis) failed; nothing was written.
    Backend(BroadcastError),
}

impl From<BroadcastError> for SinkError {
    fn from(err: BroadcastError) -> Self {
        match err {
            BroadcastError::InvalidEvent(err) => Self::InvalidEvent(err),
            BroadcastError::IdNotAllowed => Self::IdNotAllowed,
            err => Self::Backend(err),
        }
    }
}

impl From<EventError> for SinkError {
    fn from(err: EventError) -> Self {
        Self::InvalidEvent(err)
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEvent(err) => write!(f, "invalid event: {err}"),
            Self::ReservedType => f.write_str("the event type `axum-sse-resumable` is reserved"),
            Self::IdNotAllowed => {
                f.write_str("a response's event cannot carry an `id`: the log gives ids")
            }
            Self::TooLarge => f.write_str("the response outgrew its bound of events or bytes"),
            Self::Closed => f.write_str("the response was cancelled or has ended"),
            Self::Backend(err) => write!(f, "the response log failed: {err}"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            Self::Backend(err) => Some(err),
            _ => None,
        }
    }
}
