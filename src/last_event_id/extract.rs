//! The `LastEventId` extractors and their rejection.

use std::fmt;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response as AxumResponse},
};
use http::{request::Parts, StatusCode};

use super::{InvalidLastEventId, LastEventId, LastEventIdLayer};

/// Put in request extensions by [`LastEventIdLayer`]: what it read, so the
/// extractors use its rules.
#[derive(Clone)]
pub(super) struct ReadByLayer(pub(super) Option<LastEventId>);

/// The request's last event id under the rules of the layer, or the default
/// rules if no layer read it.
pub(crate) fn last_event_id(parts: &Parts) -> Option<LastEventId> {
    match parts.extensions.get::<ReadByLayer>() {
        Some(ReadByLayer(id)) => id.clone(),
        None => LastEventIdLayer::new()
            .read(&parts.headers, &parts.uri)
            .unwrap_or_else(|invalid| {
                tracing::debug!(%invalid, "Last-Event-ID ignored");
                None
            }),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = LastEventIdRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        last_event_id(parts).ok_or(LastEventIdRejection::Missing)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for LastEventId {
    type Rejection = LastEventIdRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(last_event_id(parts))
    }
}

/// Why a request's last event id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LastEventIdRejection {
    /// The handler needs a last event id and the request has none.
    Missing,
    /// The id is malformed (and the layer was told to reject such ids).
    Invalid(InvalidLastEventId),
}

impl LastEventIdRejection {
    /// The status of the answer: `400 Bad Request`.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    /// The text of the answer.
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for LastEventIdRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("this endpoint needs a Last-Event-ID"),
            Self::Invalid(invalid) => write!(f, "invalid Last-Event-ID: {invalid}"),
        }
    }
}

impl std::error::Error for LastEventIdRejection {}

impl IntoResponse for LastEventIdRejection {
    fn into_response(self) -> AxumResponse {
        (self.status(), self.body_text()).into_response()
    }
}
