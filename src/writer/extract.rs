//! The `SseWriter` extractor and its rejection.

use std::{fmt, sync::Arc};

use axum::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{request::Parts, StatusCode};

use crate::{last_event_id::last_event_id, writer::StreamSlot, SseWriter};

/// Put in request extensions by [`SseLayer`](crate::SseLayer): where the
/// request's writer comes from.
#[derive(Clone)]
pub(crate) struct WriterSlot(pub(crate) Arc<StreamSlot>);

impl<S: Send + Sync> FromRequestParts<S> for SseWriter {
    type Rejection = SseWriterRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let WriterSlot(slot) = parts
            .extensions
            .get::<WriterSlot>()
            .ok_or(SseWriterRejection::MissingLayer)?;
        slot.open_writer(last_event_id(parts))
    }
}

/// Why an [`SseWriter`] could not be extracted. Both cases are mistakes in
/// the application, so both answer `500 Internal Server Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SseWriterRejection {
    /// The route has no [`SseLayer`](crate::SseLayer).
    MissingLayer,
    /// The handler extracted a second `SseWriter` for the same request.
    AlreadyExtracted,
}

impl SseWriterRejection {
    /// The status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The text of the answer.
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for SseWriterRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLayer => f.write_str(
                "SseWriter needs SseLayer on this route: add `.layer(axum_sse::SseLayer::new())` \
                 to the router",
            ),
            Self::AlreadyExtracted => f.write_str(
                "SseWriter was extracted twice for one request: clone the first writer instead",
            ),
        }
    }
}

impl std::error::Error for SseWriterRejection {}

impl IntoResponse for SseWriterRejection {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}
