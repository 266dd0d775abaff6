//! Why a hub refused a subscription or an update.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::broadcast::BroadcastError;

use super::SelectorError;

/// Why [`Hub::subscribe`](super::Hub::subscribe) or
/// [`Hub::publish`](super::Hub::publish) failed. [`status`](Self::status)
/// gives the HTTP status to answer with.
#[derive(Debug)]
#[non_exhaustive]
pub enum HubError {
    /// A subscription without any selector (`400`).
    NoSelector,
    /// More selectors than [`HubBuilder::max_selectors`](super::HubBuilder::max_selectors) (`400`).
    TooManySelectors {
        /// The configured maximum.
        max: usize,
    },
    /// A selector's text was refused (`400`).
    InvalidSelector(SelectorError),
    /// The update was refused: a bad topic, type or id, too many topics
    /// (`400`). The text says which.
    InvalidUpdate(String),
    /// The authorization has expired (`401`).
    Expired,
    /// The authorization does not cover every topic of the update (`403`).
    Forbidden,
    /// The hub log failed or refused the update: `503` when the backend
    /// is unreachable; `400` for an id the log refuses
    /// ([`BroadcastError::InvalidId`]: not 1 to 64 bytes of visible ASCII,
    /// or of the log's own form); `500` otherwise.
    Broadcast(BroadcastError),
}

impl HubError {
    /// The status to answer with: `400` for a bad request, `401` expired,
    /// `403` forbidden, `503` when the backend is unreachable.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoSelector
            | Self::TooManySelectors { .. }
            | Self::InvalidSelector(_)
            | Self::InvalidUpdate(_)
            | Self::Broadcast(BroadcastError::IdNotAllowed | BroadcastError::InvalidId(_)) => {
                StatusCode::BAD_REQUEST
            }
            Self::Expired => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Broadcast(err) if err.is_backend() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Broadcast(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text of the answer's body.
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

/// [`status`](HubError::status) and the text.
impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}

impl From<SelectorError> for HubError {
    fn from(err: SelectorError) -> Self {
        Self::InvalidSelector(err)
    }
}

impl From<BroadcastError> for HubError {
    fn from(err: BroadcastError) -> Self {
        Self::Broadcast(err)
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSelector => f.write_str("a subscription needs at least one topic selector"),
            Self::TooManySelectors { max } => {
                write!(f, "a subscription may have at most {max} topic selectors")
            }
            Self::InvalidSelector(err) => err.fmt(f),
            Self::InvalidUpdate(why) => write!(f, "invalid update: {why}"),
            Self::Expired => f.write_str("the authorization has expired"),
            Self::Forbidden => {
                f.write_str("not authorized to publish to every topic of the update")
            }
            Self::Broadcast(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for HubError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidSelector(err) => Some(err),
            Self::Broadcast(err) => Some(err),
            _ => None,
        }
    }
}
