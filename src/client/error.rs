//! Why an [`EventSource`](super::EventSource) stopped.

use std::fmt;

use axum::BoxError;
use http::{HeaderValue, StatusCode, Uri};

use crate::decode::DecodeError;

/// Why an [`EventSource`](super::EventSource) gave up.
///
/// An `EventSource` yields an error at most once, as its last item: network
/// errors and streams that end are retried without showing up here (they
/// are logged with `tracing` at `debug` level) until
/// [`max_retries`](super::EventSourceBuilder::max_retries) is reached.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL cannot be requested: it is not absolute, or its scheme is not
    /// `http` while the built-in client is used (which speaks plain HTTP only;
    /// for `https` pass a client with a TLS connector to
    /// [`EventSourceBuilder::client`](super::EventSourceBuilder::client)).
    InvalidUrl {
        /// The URL.
        url: Uri,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server answered with a status other than `200 OK` (and other than
    /// `204 No Content`, which ends the stream without an error). As the
    /// spec says, the connection fails and is not retried.
    Status(StatusCode),
    /// The server answered `200 OK` with a `Content-Type` that is not
    /// `text/event-stream` (the header, if there was one). The connection
    /// fails and is not retried.
    ContentType(Option<HeaderValue>),
    /// The stream broke a limit of the decoder (a line or an event too
    /// long); the connection fails and is not retried.
    Decode(DecodeError),
    /// The connection failed or ended more than
    /// [`max_retries`](super::EventSourceBuilder::max_retries) times in a row
    /// without a successful reconnection. [`source`](std::error::Error::source)
    /// is the last network error, if the last attempt failed with one.
    RetriesExhausted {
        /// The configured maximum number of retries.
        max_retries: u32,
        /// The last network or body error, `None` if the stream just ended.
        source: Option<BoxError>,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "cannot request `{url}`: {reason}"),
            Self::Status(status) => {
                write!(f, "the server answered `{status}` instead of `200 OK`")
            }
            Self::ContentType(Some(value)) => write!(
                f,
                "the server answered with content type {value:?} instead of `text/event-stream`"
            ),
            Self::ContentType(None) => f.write_str(
                "the server answered without a content type instead of `text/event-stream`",
            ),
            Self::Decode(e) => write!(f, "cannot decode the event stream: {e}"),
            Self::RetriesExhausted { max_retries, .. } => write!(
                f,
                "the connection was lost and reconnecting failed (max_retries: {max_retries})"
            ),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            Self::RetriesExhausted {
                source: Some(e), ..
            } => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_and_source() {
        let e = ClientError::Status(StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            e.to_string(),
            "the server answered `500 Internal Server Error` instead of `200 OK`"
        );
        let e = ClientError::ContentType(Some(HeaderValue::from_static("text/html")));
        assert_eq!(
            e.to_string(),
            "the server answered with content type \"text/html\" instead of `text/event-stream`"
        );
        assert!(e.source().is_none());
        let e = ClientError::RetriesExhausted {
            max_retries: 3,
            source: Some("connection reset".into()),
        };
        assert_eq!(
            e.to_string(),
            "the connection was lost and reconnecting failed (max_retries: 3)"
        );
        assert_eq!(e.source().unwrap().to_string(), "connection reset");
        let e = ClientError::Decode(DecodeError::LineTooLong { limit: 4 });
        assert_eq!(
            e.to_string(),
            "cannot decode the event stream: event stream line longer than 4 bytes"
        );
        assert!(e.source().is_some());
        let e = ClientError::InvalidUrl {
            url: Uri::from_static("/relative"),
            reason: "the URL is not absolute",
        };
        assert_eq!(
            e.to_string(),
            "cannot request `/relative`: the URL is not absolute"
        );
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<ClientError>();
    }
}
