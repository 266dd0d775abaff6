//! Why publishing or subscribing failed.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::EventError;

/// Why [`Broadcast`](super::Broadcast) could not publish, subscribe or
/// connect.
#[derive(Debug)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The event has an invalid field.
    InvalidEvent(EventError),
    /// The event carries an `id` where none may be: the missed-events event
    /// (see [`BroadcastBuilder::try_missed_event`](super::BroadcastBuilder::try_missed_event))
    /// must not move the client's last event id.
    IdNotAllowed,
    /// The published event carries an `id` of its own that cannot be a
    /// publisher id: see [`Broadcast::publish`](super::Broadcast::publish).
    InvalidId(IdError),
    /// The backend failed: Redis is unreachable, answered with an error, or
    /// its URL is invalid; or a [`Backend`](super::Backend) of your own
    /// returned this. The source says which.
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl BroadcastError {
    /// Whether the backend failed (as opposed to the event being refused).
    /// Such a failure is usually transient: answer `503` and let the client
    /// retry.
    pub fn is_backend(&self) -> bool {
        matches!(self, Self::Backend(_))
    }
}

/// `503 Service Unavailable` when the backend failed (a client retries),
/// `500 Internal Server Error` otherwise (the handler built a bad event); a
/// short text body either way.
impl IntoResponse for BroadcastError {
    fn into_response(self) -> Response {
        let status = if self.is_backend() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        tracing::warn!(error = %self, "broadcast failed");
        (status, self.to_string()).into_response()
    }
}

/// Why a published event's own `id` cannot be a publisher id: it must be 1
/// to 64 bytes of visible ASCII (`0x21` to `0x7E`), set once, and not of the
/// form of the channel's own ids. In [`BroadcastError::InvalidId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError {
    reason: &'static str,
}

impl IdError {
    pub(super) const fn new(reason: &'static str) -> Self {
        Self { reason }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid publisher event id: {}", self.reason)
    }
}

impl std::error::Error for IdError {}

impl From<IdError> for BroadcastError {
    fn from(err: IdError) -> Self {
        Self::InvalidId(err)
    }
}

impl From<EventError> for BroadcastError {
    fn from(err: EventError) -> Self {
        Self::InvalidEvent(err)
    }
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEvent(err) => write!(f, "invalid event: {err}"),
            Self::IdNotAllowed => f.write_str("the missed-events event cannot carry an `id`"),
            Self::InvalidId(err) => err.fmt(f),
            Self::Backend(err) => write!(f, "the broadcast backend failed: {err}"),
        }
    }
}

impl std::error::Error for BroadcastError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            Self::Backend(err) => Some(&**err),
            Self::InvalidId(err) => Some(err),
            Self::IdNotAllowed => None,
        }
    }
}
