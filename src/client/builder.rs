//! `EventSourceBuilder`: the settings of an [`EventSource`].

use std::fmt;
use std::time::Duration;

use axum::{body::Body, BoxError};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri};
use tower::{util::BoxCloneSyncService, Service, ServiceExt};

use super::EventSource;
use crate::InvalidLastEventId;

/// The HTTP client an [`EventSource`] sends its requests with.
pub(super) type HttpClient = BoxCloneSyncService<Request<Body>, Response<Body>, BoxError>;

/// Settings of an [`EventSource`], made by [`EventSource::builder`].
///
/// ```
/// use std::time::Duration;
/// use axum_sse::client::EventSource;
/// use http::{header, HeaderValue};
///
/// let events = EventSource::builder("http://127.0.0.1:3000/chat?prompt=hi".parse().unwrap())
///     .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"))
///     .last_event_id("41")                  // resume after event 41
///     .retry(Duration::from_secs(1))        // until the server sends `retry`
///     .max_backoff(Duration::from_secs(30))
///     .max_retries(10)                      // then yield an error and end
///     .build();
/// assert_eq!(events.last_event_id(), "41");
/// ```
#[must_use]
pub struct EventSourceBuilder {
    pub(super) url: Uri,
    pub(super) headers: HeaderMap,
    pub(super) last_event_id: String,
    pub(super) retry: Duration,
    pub(super) max_backoff: Duration,
    pub(super) max_retries: Option<u32>,
    pub(super) client: Option<HttpClient>,
}

impl fmt::Debug for EventSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceBuilder")
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("last_event_id", &self.last_event_id)
            .field("retry", &self.retry)
            .field("max_backoff", &self.max_backoff)
            .field("max_retries", &self.max_retries)
            .field("custom_client", &self.client.is_some())
            .finish()
    }
}

impl EventSourceBuilder {
    /// The default [`retry`](Self::retry): 3 seconds.
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);
    /// The default [`max_backoff`](Self::max_backoff): 60 seconds.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);

    pub(super) fn new(url: Uri) -> Self {
        Self {
            url,
            headers: HeaderMap::new(),
            last_event_id: String::new(),
            retry: Self::DEFAULT_RETRY,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            max_retries: None,
            client: None,
        }
    }

    /// Adds a header to every request (none by default), for instance
    /// `Authorization`. `Accept`, `Cache-Control` and `Last-Event-ID` are set
    /// by the client itself: use [`last_event_id`](Self::last_event_id) for
    /// the latter.
    ///
    /// ```
    /// use axum_sse::client::EventSource;
    /// use http::{HeaderName, HeaderValue};
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .header(HeaderName::from_static("x-tenant"), HeaderValue::from_static("blue"))
    ///     .build();
    /// # drop(events);
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the last event ID sent with the first request (default: none),
    /// to resume a stream seen before. Later requests send the last event ID
    /// of the stream, as the spec says.
    ///
    /// # Panics
    ///
    /// If `id` contains CR, LF or NUL, which no event ID can hold; see
    /// [`try_last_event_id`](Self::try_last_event_id).
    ///
    /// ```
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .last_event_id("17")
    ///     .build();
    /// assert_eq!(events.last_event_id(), "17");
    /// ```
    #[track_caller]
    pub fn last_event_id(self, id: impl Into<String>) -> Self {
        match self.try_last_event_id(id) {
            Ok(this) => this,
            Err(e) => panic!("invalid last event ID: {e}"),
        }
    }

    /// Like [`last_event_id`](Self::last_event_id), but an ID with CR, LF or
    /// NUL is an error instead of a panic.
    ///
    /// ```
    /// use axum_sse::{client::EventSource, InvalidLastEventId};
    ///
    /// let builder = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap());
    /// let err = builder.try_last_event_id("1\n2").unwrap_err();
    /// assert_eq!(err, InvalidLastEventId::ForbiddenCharacter);
    /// ```
    pub fn try_last_event_id(mut self, id: impl Into<String>) -> Result<Self, InvalidLastEventId> {
        let id = id.into();
        if id.contains(['\r', '\n', '\0']) {
            return Err(InvalidLastEventId::ForbiddenCharacter);
        }
        self.last_event_id = id;
        Ok(self)
    }

    /// Sets the reconnection time used until the server sends a `retry`
    /// field (default [`DEFAULT_RETRY`](Self::DEFAULT_RETRY), 3 s, as in
    /// browsers).
    ///
    /// After a stream ends or breaks, the client waits the reconnection time
    /// before it reconnects. When attempts fail in a row, the wait doubles
    /// each time up to [`max_backoff`](Self::max_backoff), with random
    /// jitter in the upper half of the extra wait; it never goes below the
    /// reconnection time, and it is reset by a successful connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .retry(Duration::from_millis(500))
    ///     .build();
    /// assert_eq!(events.retry(), Duration::from_millis(500));
    /// ```
    pub const fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the longest wait between reconnection attempts that failed in a
    /// row (default [`DEFAULT_MAX_BACKOFF`](Self::DEFAULT_MAX_BACKOFF),
    /// 60 s). A reconnection time above it, set here or by the server, wins.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .max_backoff(Duration::from_secs(10))
    ///     .build();
    /// # drop(events);
    /// ```
    pub const fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Gives up after `n` reconnection attempts in a row that did not lead
    /// to an open stream (default: never gives up, like browsers). The
    /// stream then yields [`ClientError::RetriesExhausted`] and ends.
    /// `max_retries(0)` never reconnects.
    ///
    /// [`ClientError::RetriesExhausted`]: super::ClientError::RetriesExhausted
    ///
    /// ```
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .max_retries(5)
    ///     .build();
    /// # drop(events);
    /// ```
    pub const fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// Sends the requests with `client` instead of the built-in one
    /// (hyper-util's client over plain HTTP/1.1): any [`tower::Service`]
    /// from `http::Request<axum::body::Body>` to an `http::Response`, for
    /// instance a hyper-util client with an HTTPS connector, or a
    /// client wrapped in tower layers. Redirects are followed either way.
    ///
    /// ```
    /// use axum::body::Body;
    /// use axum_sse::client::EventSource;
    /// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    ///
    /// // `build(https_connector)` works the same way.
    /// let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .client(client)
    ///     .build();
    /// # drop(events);
    /// ```
    pub fn client<S, B>(mut self, client: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let client = client
            .map_response(|response| response.map(Body::new))
            .map_err(Into::into);
        self.client = Some(BoxCloneSyncService::new(client));
        self
    }

    /// Builds the [`EventSource`]. It connects when first polled.
    pub fn build(self) -> EventSource {
        EventSource::from_builder(self)
    }
}
