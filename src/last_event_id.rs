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

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response as AxumResponse},
};
use http::{request::Parts, HeaderMap, Request, Response, StatusCode, Uri};
use percent_encoding::percent_decode_str;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::answer::{text_answer, AnswerBody};

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

/// Put in request extensions by [`LastEventIdLayer`]: what it read, so the
/// extractors use its rules.
#[derive(Clone)]
struct ReadByLayer(Option<LastEventId>);

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

/// Reads and checks the `Last-Event-ID` of each request for the
/// [`LastEventId`] extractor and [`SseWriter::last_event_id`].
/// See the [module docs](crate::last_event_id).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it. Of two on one request, the id handlers see follows the
/// rules of the one closest to the handler; each one with
/// [`reject_invalid`](Self::reject_invalid) answers `400` to an id invalid
/// under its own rules. See [layer ordering](crate#layer-ordering-and-tower-http).
///
/// [`SseWriter::last_event_id`]: crate::SseWriter::last_event_id
#[derive(Debug, Clone)]
#[must_use]
pub struct LastEventIdLayer {
    query_param: Option<Arc<str>>,
    max_len: usize,
    reject_invalid: bool,
}

impl Default for LastEventIdLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl LastEventIdLayer {
    /// The default rules: the header only, at most 1024 bytes, an invalid id
    /// treated as absent.
    pub fn new() -> Self {
        Self {
            query_param: None,
            max_len: DEFAULT_MAX_LEN,
            reject_invalid: false,
        }
    }

    /// Also reads the query parameter `name` when the header is absent,
    /// decoded as browsers encode it (`URLSearchParams`: `+` is a space,
    /// `%XX` a byte; so `?lastEventId=order+17` is `order 17`).
    /// Default: none.
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = Some(name.into().into());
        self
    }

    /// Sets the longest id accepted, in bytes. Default: 1024.
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// Answers `400 Bad Request` to a request with an invalid id, before the
    /// handler runs. Default: an invalid id is treated as absent.
    pub fn reject_invalid(mut self) -> Self {
        self.reject_invalid = true;
        self
    }

    /// The id of a request: the header, else the query parameter if one is
    /// set. A present but invalid header is not replaced by the query.
    fn read(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Option<LastEventId>, InvalidLastEventId> {
        if let Some(value) = headers.get(LAST_EVENT_ID) {
            return self.check(value.as_bytes());
        }
        let (Some(name), Some(query)) = (&self.query_param, uri.query()) else {
            return Ok(None);
        };
        let Some(raw) = query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key) == name.as_bytes()).then_some(value)
        }) else {
            return Ok(None);
        };
        if raw.len() > self.max_len.saturating_mul(3) {
            // Even fully percent-encoded it would be too long: do not decode.
            return Err(InvalidLastEventId::TooLong {
                max_len: self.max_len,
            });
        }
        self.check(&form_decode(raw))
    }

    fn check(&self, bytes: &[u8]) -> Result<Option<LastEventId>, InvalidLastEventId> {
        if bytes.len() > self.max_len {
            return Err(InvalidLastEventId::TooLong {
                max_len: self.max_len,
            });
        }
        let id = std::str::from_utf8(bytes).map_err(|_| InvalidLastEventId::NotUtf8)?;
        if id.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(InvalidLastEventId::ForbiddenCharacter);
        }
        Ok((!id.is_empty()).then(|| LastEventId(id.to_owned())))
    }
}

/// Decodes a query string name or value as browsers encode it
/// (`URLSearchParams`, the WHATWG URL standard's
/// `application/x-www-form-urlencoded`): `+` is a space, `%XX` a byte.
fn form_decode(raw: &str) -> Vec<u8> {
    if raw.contains('+') {
        // Before percent-decoding, so that `%2B` stays a plus.
        percent_decode_str(&raw.replace('+', " ")).collect()
    } else {
        percent_decode_str(raw).collect()
    }
}

impl<S> Layer<S> for LastEventIdLayer {
    type Service = LastEventIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LastEventIdService::new(inner, Some(self.clone()))
    }
}

/// The service made by [`LastEventIdLayer`].
#[derive(Debug, Clone)]
pub struct LastEventIdService<S> {
    inner: S,
    // Shared: axum clones a route's service once per connection. `None`:
    // no rules of its own (an `SseLayer` not given any); an outer layer's
    // rules, or the default ones, apply.
    layer: Option<Arc<LastEventIdLayer>>,
}

impl<S> LastEventIdService<S> {
    pub(crate) fn new(inner: S, layer: Option<LastEventIdLayer>) -> Self {
        Self {
            inner,
            layer: layer.map(Arc::new),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LastEventIdService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<AnswerBody<ResBody>>;
    type Error = S::Error;
    type Future = LastEventIdFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let Some(layer) = &self.layer else {
            return LastEventIdFuture {
                kind: FutureKind::Inner {
                    inner: self.inner.call(request),
                },
            };
        };
        // An inner layer, called later, replaces what this one read: the
        // rules closest to the handler win.
        let id = match layer.read(request.headers(), request.uri()) {
            Ok(id) => id,
            Err(invalid) if layer.reject_invalid => {
                let rejection = LastEventIdRejection::Invalid(invalid);
                tracing::debug!(%rejection, "request refused");
                let answer = text_answer(rejection.status(), rejection.body_text());
                return LastEventIdFuture {
                    kind: FutureKind::Answered {
                        answer: Some(answer),
                    },
                };
            }
            Err(invalid) => {
                tracing::debug!(%invalid, "Last-Event-ID ignored");
                None
            }
        };
        request.extensions_mut().insert(ReadByLayer(id));
        LastEventIdFuture {
            kind: FutureKind::Inner {
                inner: self.inner.call(request),
            },
        }
    }
}

pin_project! {
    /// The response future of [`LastEventIdService`].
    pub struct LastEventIdFuture<F, B> {
        #[pin]
        kind: FutureKind<F, B>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F, B> {
        Inner { #[pin] inner: F },
        Answered { answer: Option<Response<AnswerBody<B>>> },
    }
}

impl<F, B> fmt::Debug for LastEventIdFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answered = matches!(self.kind, FutureKind::Answered { .. });
        f.debug_struct("LastEventIdFuture")
            .field("answered", &answered)
            .finish()
    }
}

impl<F, B, E> Future for LastEventIdFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AnswerBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Inner { inner } => inner
                .poll(cx)
                .map(|result| result.map(|response| response.map(AnswerBody::inner))),
            FutureKindProj::Answered { answer } => Poll::Ready(Ok(answer
                .take()
                .expect("LastEventIdFuture polled after completion"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        layer: &LastEventIdLayer,
        header: Option<&[u8]>,
        uri: &str,
    ) -> Result<Option<String>, InvalidLastEventId> {
        let mut headers = HeaderMap::new();
        if let Some(value) = header {
            headers.insert(LAST_EVENT_ID, http::HeaderValue::from_bytes(value).unwrap());
        }
        layer
            .read(&headers, &uri.parse().unwrap())
            .map(|id| id.map(|LastEventId(id)| id))
    }

    #[test]
    fn the_header_wins_over_the_query() {
        let layer = LastEventIdLayer::new().query_param("lastEventId");
        assert_eq!(
            read(&layer, Some(b"7"), "/?lastEventId=3"),
            Ok(Some("7".into()))
        );
        assert_eq!(
            read(&layer, None, "/?a=1&lastEventId=3"),
            Ok(Some("3".into()))
        );
        assert_eq!(
            read(&layer, None, "/?lastEventId=%E2%9C%93%20x"),
            Ok(Some("✓ x".into()))
        );
        assert_eq!(read(&layer, None, "/?other=3"), Ok(None));
        assert_eq!(
            read(&LastEventIdLayer::new(), None, "/?lastEventId=3"),
            Ok(None)
        );
    }

    #[test]
    fn the_query_is_decoded_as_browsers_encode_it() {
        // `new URLSearchParams({ lastEventId: "order 17+1/ü" }).toString()`
        let layer = LastEventIdLayer::new().query_param("lastEventId");
        assert_eq!(
            read(&layer, None, "/?lastEventId=order+17%2B1%2F%C3%BC"),
            Ok(Some("order 17+1/ü".into()))
        );
        assert_eq!(
            read(&layer, None, "/?a=1&lastEventId=order%2017"),
            Ok(Some("order 17".into()))
        );
        // Names are decoded too.
        assert_eq!(
            read(&layer, None, "/?last%45ventId=7"),
            Ok(Some("7".into()))
        );
        let spaced = LastEventIdLayer::new().query_param("last id");
        assert_eq!(read(&spaced, None, "/?last+id=8"), Ok(Some("8".into())));
    }

    #[test]
    fn empty_is_absent() {
        let layer = LastEventIdLayer::new().query_param("lastEventId");
        assert_eq!(read(&layer, Some(b""), "/"), Ok(None));
        assert_eq!(read(&layer, None, "/?lastEventId="), Ok(None));
        assert_eq!(read(&layer, None, "/?lastEventId"), Ok(None));
    }

    #[test]
    fn invalid_ids_are_reported() {
        let layer = LastEventIdLayer::new().query_param("id").max_len(8);
        assert_eq!(
            read(&layer, Some(b"\xff\xfe"), "/"),
            Err(InvalidLastEventId::NotUtf8)
        );
        assert_eq!(
            read(&layer, Some(b"123456789"), "/"),
            Err(InvalidLastEventId::TooLong { max_len: 8 })
        );
        for bad in ["/?id=a%0Ab", "/?id=a%0Db", "/?id=a%00b"] {
            assert_eq!(
                read(&layer, None, bad),
                Err(InvalidLastEventId::ForbiddenCharacter),
                "{bad}"
            );
        }
        assert_eq!(
            read(&layer, None, "/?id=%FF"),
            Err(InvalidLastEventId::NotUtf8)
        );
        let long = format!("/?id={}", "%41".repeat(9));
        assert_eq!(
            read(&layer, None, &long),
            Err(InvalidLastEventId::TooLong { max_len: 8 })
        );
    }
}
