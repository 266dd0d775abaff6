//! Why joining, leaving or listing failed.

use std::fmt;

/// Why [`Presence`](super::Presence) could not join, leave, list or connect.
#[derive(Debug)]
#[non_exhaustive]
pub enum PresenceError {
    /// A topic, subscriber id or descriptor is longer than allowed; `what`
    /// names which, `len` and `max` are in bytes (the descriptor's as JSON).
    TooLong {
        /// `"topic"`, `"subscriber"` or `"descriptor"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed, in bytes.
        max: usize,
    },
    /// The backend failed: Redis is unreachable, answered with an error, or
    /// its URL is invalid. The source says which.
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl PresenceError {
    /// Whether the backend failed (as opposed to the input being refused).
    /// Such a failure is usually transient: answer `503` and let the client
    /// retry.
    pub fn is_backend(&self) -> bool {
        matches!(self, Self::Backend(_))
    }
}

impl fmt::Display for PresenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { what, len, max } => {
                write!(
                    f,
                    "the presence {what} is {len} bytes long, more than {max}"
                )
            }
            Self::Backend(err) => write!(f, "the presence backend failed: {err}"),
        }
    }
}

impl std::error::Error for PresenceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend(err) => Some(&**err),
            Self::TooLong { .. } => None,
        }
    }
}

/// `503 Service Unavailable` when the backend failed (a client retries),
/// `500 Internal Server Error` otherwise (the app passed a bad member); a
/// short text body either way.
impl axum::response::IntoResponse for PresenceError {
    fn into_response(self) -> axum::response::Response {
        let status = if self.is_backend() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::INTERNAL_SERVER_ERROR
        };
        tracing::warn!(error = %self, "presence failed");
        (status, self.to_string()).into_response()
    }
}
