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
    /// The event carries an `id`: the channel assigns ids itself (put an id
    /// of your own in the data if you need it).
    IdNotAllowed,
    /// The backend failed: Redis is unreachable, answered with an error, or
    /// its URL is invalid. The source says which.
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

impl From<EventError> for BroadcastError {
    fn from(err: EventError) -> Self {
        Self::InvalidEvent(err)
    }
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEvent(err) => write!(f, "invalid event: {err}"),
            Self::IdNotAllowed => {
                f.write_str("a published event cannot carry an `id`: the channel assigns event ids")
            }
            Self::Backend(err) => write!(f, "the broadcast backend failed: {err}"),
        }
    }
}

impl std::error::Error for BroadcastError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidEvent(err) => Some(err),
            Self::Backend(err) => Some(&**err),
            Self::IdNotAllowed => None,
        }
    }
}
