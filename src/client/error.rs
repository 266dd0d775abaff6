//! Why an [`EventSource`](super::EventSource) stopped.

use std::fmt;
use std::time::Duration;

use axum::BoxError;
use http::{HeaderValue, StatusCode, Uri};

use crate::decode::DecodeError;

/// Why an [`EventSource`](super::EventSource) stopped, or why one of its
/// connections failed.
///
/// An `EventSource` yields an error at most once, as its last item. Two
/// kinds of variants exist:
///
/// * **final**: [`InvalidUrl`](Self::InvalidUrl), [`Status`](Self::Status),
///   [`ContentType`](Self::ContentType) and [`Decode`](Self::Decode) end the
///   stream at once, without reconnecting, as the spec's "fail the
///   connection" does;
/// * **retried**: [`Connect`](Self::Connect), [`ReadTimeout`](Self::ReadTimeout),
///   [`Body`](Self::Body) and [`Ended`](Self::Ended) make the client wait
///   and reconnect (they are logged with `tracing` at `debug` level). They
///   reach you only as the [`source`](Self::RetriesExhausted::source) of
///   [`RetriesExhausted`](Self::RetriesExhausted), when
///   [`max_retries`](super::EventSourceBuilder::max_retries) is reached.
///
/// ```
/// use axum_sse::client::ClientError;
///
/// fn describe(error: &ClientError) -> String {
///     match error {
///         ClientError::Status(status) => format!("refused: {status}"),
///         ClientError::RetriesExhausted { source, .. } => match &**source {
///             ClientError::ReadTimeout(after) => format!("silent for {after:?}"),
///             other => format!("gave up: {other}"),
///         },
///         other => other.to_string(),
///     }
/// }
/// # let e = ClientError::RetriesExhausted {
/// #     max_retries: 0,
/// #     source: Box::new(ClientError::ReadTimeout(std::time::Duration::from_secs(30))),
/// # };
/// # assert_eq!(describe(&e), "silent for 30s");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL cannot be requested: it is not absolute, or its scheme is not
    /// `http` while the built-in client is used (which speaks plain HTTP only;
    /// for `https` pass a client with a TLS connector to
    /// [`EventSourceBuilder::client`](super::EventSourceBuilder::client)).
    /// Final.
    InvalidUrl {
        /// The URL.
        url: Uri,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request failed before a response arrived: the server could not
    /// be reached, or the connection closed before the response head. The
    /// HTTP client's error is the [`source`](std::error::Error::source).
    /// Retried.
    Connect(BoxError),
    /// The server answered with a status other than `200 OK` (and other than
    /// `204 No Content`, which ends the stream without an error). As the
    /// spec says, the connection fails and is not retried. Final.
    Status(StatusCode),
    /// The server answered `200 OK` with a `Content-Type` that is not
    /// `text/event-stream` (the header, if there was one). The connection
    /// fails and is not retried. Final.
    ContentType(Option<HeaderValue>),
    /// No byte came for the
    /// [`read_timeout`](super::EventSourceBuilder::read_timeout) (the
    /// duration), while waiting for the response head or between two chunks
    /// of the body: the connection is taken for dead (half-open) and
    /// dropped. Retried.
    ReadTimeout(Duration),
    /// The response body broke (a reset connection, a chunked body cut
    /// short, ...); the body's error is the
    /// [`source`](std::error::Error::source). Retried.
    Body(BoxError),
    /// The server ended the stream cleanly (or the connection closed at a
    /// message boundary). Retried, as the spec says.
    Ended,
    /// The stream broke a limit of the decoder (a line or an event too
    /// long); the connection fails and is not retried. Final.
    Decode(DecodeError),
    /// The connection failed or ended more than
    /// [`max_retries`](super::EventSourceBuilder::max_retries) times in a row
    /// without a healthy stream in between. Final.
    RetriesExhausted {
        /// The configured maximum number of retries.
        max_retries: u32,
        /// Why the last connection ended: a retried variant
        /// ([`Connect`](Self::Connect), [`ReadTimeout`](Self::ReadTimeout),
        /// [`Body`](Self::Body) or [`Ended`](Self::Ended)). Also returned by
        /// [`Error::source`](std::error::Error::source).
        source: Box<ClientError>,
    },
}

impl ClientError {
    /// Whether the client reconnects after this error (until
    /// [`max_retries`](super::EventSourceBuilder::max_retries)): `true` for
    /// [`Connect`](Self::Connect), [`ReadTimeout`](Self::ReadTimeout),
    /// [`Body`](Self::Body) and [`Ended`](Self::Ended).
    ///
    /// ```
    /// use axum_sse::client::ClientError;
    /// use http::StatusCode;
    ///
    /// assert!(ClientError::Ended.is_retried());
    /// assert!(!ClientError::Status(StatusCode::NOT_FOUND).is_retried());
    /// ```
    pub fn is_retried(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::ReadTimeout(_) | Self::Body(_) | Self::Ended
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "cannot request `{url}`: {reason}"),
            Self::Connect(_) => f.write_str("the request failed before a response arrived"),
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
            Self::ReadTimeout(after) => {
                write!(f, "no data from the server for {after:?} (read timeout)")
            }
            Self::Body(_) => f.write_str("the event stream broke"),
            Self::Ended => f.write_str("the server ended the event stream"),
            Self::Decode(e) => write!(f, "cannot decode the event stream: {e}"),
            // The cause is the `source`, not repeated here.
            Self::RetriesExhausted { max_retries, .. } => write!(
                f,
                "gave up reconnecting after {max_retries} retries in a row"
            ),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Body(e) => Some(&**e),
            Self::Decode(e) => Some(e),
            Self::RetriesExhausted { source, .. } => Some(&**source),
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
            source: Box::new(ClientError::Connect("connection refused".into())),
        };
        assert_eq!(
            e.to_string(),
            "gave up reconnecting after 3 retries in a row"
        );
        let connect = e.source().unwrap();
        assert_eq!(
            connect.to_string(),
            "the request failed before a response arrived"
        );
        assert_eq!(connect.source().unwrap().to_string(), "connection refused");
        let e = ClientError::Body("reset".into());
        assert_eq!(e.to_string(), "the event stream broke");
        assert_eq!(e.source().unwrap().to_string(), "reset");
        let e = ClientError::ReadTimeout(Duration::from_secs(30));
        assert_eq!(
            e.to_string(),
            "no data from the server for 30s (read timeout)"
        );
        assert!(e.source().is_none());
        assert_eq!(
            ClientError::Ended.to_string(),
            "the server ended the event stream"
        );
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
    fn retried_or_final() {
        assert!(ClientError::Connect("x".into()).is_retried());
        assert!(ClientError::Body("x".into()).is_retried());
        assert!(ClientError::ReadTimeout(Duration::ZERO).is_retried());
        assert!(ClientError::Ended.is_retried());
        assert!(!ClientError::Status(StatusCode::BAD_GATEWAY).is_retried());
        assert!(!ClientError::ContentType(None).is_retried());
        assert!(!ClientError::Decode(DecodeError::LineTooLong { limit: 1 }).is_retried());
        let e = ClientError::RetriesExhausted {
            max_retries: 0,
            source: Box::new(ClientError::Ended),
        };
        assert!(!e.is_retried());
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<ClientError>();
    }
}
