//! Last-Event-ID: where a reconnecting client asks to resume.
//!
//! A browser's `EventSource` that lost its connection reconnects with a
//! `Last-Event-ID` header holding the id of the last event it saw. The
//! [`LastEventId`] extractor reads it, as a required value or as an
//! `Option`:
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::LastEventId;
//!
//! async fn resume(last: Option<LastEventId>) -> String {
//!     match last {
//!         Some(LastEventId(id)) => format!("resuming after {id}"),
//!         None => "starting fresh".to_owned(),
//!     }
//! }
//! let app: Router = Router::new().route("/events", get(resume));
//! ```
//!
//! On its own the extractor reads the header with the default rules.
//! [`LastEventIdLayer`] sets the rules for the routes it wraps, and can also
//! read a query parameter for the first connection, where a browser cannot
//! set headers:
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{LastEventId, LastEventIdLayer};
//!
//! let app: Router = Router::new()
//!     .route("/events", get(|last: Option<LastEventId>| async move { format!("{last:?}") }))
//!     .layer(
//!         LastEventIdLayer::new()
//!             .query_param("lastEventId") // `/events?lastEventId=42`
//!             .max_len(64)
//!             .reject_invalid(), // 400 instead of "absent"
//!     );
//! ```
//!
//! A valid id is UTF-8 without CR, LF or NUL (an id a server could have
//! sent) and at most [`max_len`](LastEventIdLayer::max_len) bytes. An
//! invalid one is treated as absent (and logged at debug level), or answered
//! with `400 Bad Request` before the handler runs when the layer says
//! [`reject_invalid`](LastEventIdLayer::reject_invalid). An empty value is
//! absent: it is what a client with no last event id would send.

mod extract;
mod layer;
mod service;

use std::fmt;

pub(crate) use self::extract::last_event_id;
pub use self::{
    extract::LastEventIdRejection,
    layer::LastEventIdLayer,
    service::{LastEventIdService, ResponseFuture},
};

/// The request header a reconnecting client sends.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The longest id accepted by default, in bytes.
const DEFAULT_MAX_LEN: usize = 1024;

/// The id of the last event a reconnecting client saw.
///
/// Extract it as `LastEventId` (missing: `400`) or `Option<LastEventId>`.
/// See the [module docs](crate::last_event_id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LastEventId(pub String);

impl LastEventId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was wrong with a last event id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidLastEventId {
    /// Longer than the limit, in bytes.
    TooLong {
        /// The limit it broke.
        max_len: usize,
    },
    /// Not UTF-8.
    NotUtf8,
    /// Holds CR, LF or NUL, which no event id can.
    ForbiddenCharacter,
}

impl fmt::Display for InvalidLastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { max_len } => write!(f, "longer than {max_len} bytes"),
            Self::NotUtf8 => f.write_str("not UTF-8"),
            Self::ForbiddenCharacter => f.write_str("contains CR, LF or NUL"),
        }
    }
}

impl std::error::Error for InvalidLastEventId {}
