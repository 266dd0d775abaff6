//! `EventSourceBuilder`: the settings of an [`EventSource`].

use std::fmt;
use std::time::Duration;

use axum::{body::Body, BoxError};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
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
/// use http::{header, HeaderValue, Method};
///
/// let events = EventSource::builder("http://127.0.0.1:3000/chat".parse().unwrap())
///     .method(Method::POST)                 // sent again on every reconnection,
///     .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
///     .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"))
///     .body(r#"{"prompt":"hi"}"#)           // with the same body
///     .last_event_id("41")                  // resume after event 41
///     .read_timeout(Duration::from_secs(30)) // silent that long: reconnect
///     .retry(Duration::from_secs(1))        // until the server sends `retry`
///     .min_backoff(Duration::from_millis(500))
///     .max_backoff(Duration::from_secs(30))
///     .max_retries(10)                      // then yield an error and end
///     .build();
/// assert_eq!(events.last_event_id(), "41");
/// ```
#[must_use]
pub struct EventSourceBuilder {
    pub(super) url: Uri,
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Bytes>,
    pub(super) last_event_id: String,
    pub(super) retry: Duration,
    pub(super) min_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) reset_backoff_after: Duration,
    pub(super) read_timeout: Option<Duration>,
    pub(super) max_retries: Option<u32>,
    pub(super) client: Option<HttpClient>,
}

impl fmt::Debug for EventSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceBuilder")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("last_event_id", &self.last_event_id)
            .field("retry", &self.retry)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("reset_backoff_after", &self.reset_backoff_after)
            .field("read_timeout", &self.read_timeout)
            .field("max_retries", &self.max_retries)
            .field("custom_client", &self.client.is_some())
            .finish()
    }
}

impl EventSourceBuilder {
    /// The default [`retry`](Self::retry): 3 seconds.
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);
    /// The default [`min_backoff`](Self::min_backoff): 1 second.
    pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);
    /// The default [`max_backoff`](Self::max_backoff): 60 seconds.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
    /// The default [`reset_backoff_after`](Self::reset_backoff_after):
    /// 60 seconds.
    pub const DEFAULT_RESET_BACKOFF_AFTER: Duration = Duration::from_secs(60);

    pub(super) fn new(url: Uri) -> Self {
        Self {
            url,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: None,
            last_event_id: String::new(),
            retry: Self::DEFAULT_RETRY,
            min_backoff: Self::DEFAULT_MIN_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            reset_backoff_after: Self::DEFAULT_RESET_BACKOFF_AFTER,
            read_timeout: None,
            max_retries: None,
            client: None,
        }
    }

    /// Sets the request method (default `GET`, as a browser's
    /// `EventSource`), for instance `POST` for the streams that LLM APIs and
    /// MCP servers answer a request with. Every reconnection uses it too.
    ///
    /// ```
    /// use axum_sse::client::EventSource;
    /// use http::Method;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/mcp".parse().unwrap())
    ///     .method(Method::POST)
    ///     .build();
    /// # drop(events);
    /// ```
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Sets the request body (default: none). It is sent whole with the
    /// first request and again with every reconnection, and with a `307` or
    /// `308` redirect (a `301`, `302` or `303` redirect of a `POST` turns it
    /// into a `GET` without body, as browsers do). Set its `Content-Type`
    /// with [`header`](Self::header).
    ///
    /// ```
    /// use axum_sse::client::EventSource;
    /// use http::{header, HeaderValue, Method};
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/v1/chat".parse().unwrap())
    ///     .method(Method::POST)
    ///     .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
    ///     .body(r#"{"stream":true}"#)
    ///     .build();
    /// # drop(events);
    /// ```
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Adds a header to every request, reconnections included (none by
    /// default), for instance `Authorization`. A name added twice is sent
    /// twice. `Accept`, `Cache-Control` and `Last-Event-ID` are set
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
    /// After a healthy stream (see
    /// [`reset_backoff_after`](Self::reset_backoff_after)) ends or breaks,
    /// the client waits the reconnection time, even zero, before it
    /// reconnects, as the spec says. After `n` unhealthy connections in a
    /// row it backs off instead, from `base`, the larger of the
    /// reconnection time and [`min_backoff`](Self::min_backoff): the wait
    /// is drawn at random in the upper half of `base * 2^n`, never below
    /// `base`, and never above [`max_backoff`](Self::max_backoff).
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

    /// Sets the longest wait before a reconnection (default
    /// [`DEFAULT_MAX_BACKOFF`](Self::DEFAULT_MAX_BACKOFF), 60 s). It bounds
    /// every wait, the reconnection time included: a server that sends
    /// `retry: 99999999999` does not put the client to sleep for three years.
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

    /// Gives up after `n` reconnection attempts in a row without a healthy
    /// stream (see [`reset_backoff_after`](Self::reset_backoff_after))
    /// (default: never gives up, like browsers). The stream then yields
    /// [`ClientError::RetriesExhausted`], whose `source` says why the last
    /// connection ended, and ends. `max_retries(0)` never reconnects.
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

    /// Sets the floor of the back-off (default
    /// [`DEFAULT_MIN_BACKOFF`](Self::DEFAULT_MIN_BACKOFF), 1 s): after a
    /// connection that was not healthy, the client waits at least this long
    /// (or the reconnection time, if longer) before the next attempt,
    /// whatever `retry` the server sent. A server that sends `retry: 0` and
    /// then fails cannot make the client reconnect in a tight loop (unless
    /// you set zero here). See [`retry`](Self::retry) for the whole rule.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .min_backoff(Duration::from_millis(250))
    ///     .build();
    /// # drop(events);
    /// ```
    pub const fn min_backoff(mut self, min_backoff: Duration) -> Self {
        self.min_backoff = min_backoff;
        self
    }

    /// Sets how long a stream must stay open to count as healthy when it
    /// dispatches no event (default
    /// [`DEFAULT_RESET_BACKOFF_AFTER`](Self::DEFAULT_RESET_BACKOFF_AFTER),
    /// 60 s).
    ///
    /// A connection is **healthy** when the server answered `200 OK` with
    /// `text/event-stream` and the stream then either dispatched at least
    /// one event or stayed open this long (a quiet stream that a proxy cuts
    /// after a minute is healthy). A healthy stream resets the back-off and
    /// the count of [`max_retries`](Self::max_retries). Anything else counts
    /// as a failure: a connection error, a read timeout, and also a `200`
    /// that closes before its first event, so a server that accepts and
    /// drops every stream gets the back-off, not a storm of reconnections.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .reset_backoff_after(Duration::from_secs(30))
    ///     .build();
    /// # drop(events);
    /// ```
    pub const fn reset_backoff_after(mut self, after: Duration) -> Self {
        self.reset_backoff_after = after;
        self
    }

    /// Sets the read timeout (default: none, as in browsers): when no byte
    /// arrives for this long, while waiting for the response head or
    /// between two chunks of the body, the connection is taken for dead
    /// (a half-open connection, a stalled proxy), dropped, and the client
    /// reconnects as after any failure; the cause is
    /// [`ClientError::ReadTimeout`].
    ///
    /// Choose it well above the server's heartbeat interval (and above the
    /// time the server may take to answer): comments count as bytes, so a
    /// server that sends a heartbeat every 15 s keeps a stream alive under a
    /// 45 s read timeout. Zero times every connection out at once.
    ///
    /// [`ClientError::ReadTimeout`]: super::ClientError::ReadTimeout
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::builder("http://127.0.0.1:3000/".parse().unwrap())
    ///     .read_timeout(Duration::from_secs(45))
    ///     .build();
    /// # drop(events);
    /// ```
    pub const fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
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
