//! Heartbeat: a keep-alive after every idle interval of an event stream.
//!
//! Proxies and load balancers close connections that stay silent, and a
//! server only learns that a client vanished when a write fails. A heartbeat
//! solves both: when no event went out for the interval, the layer sends a
//! comment line (`:\n`, which clients ignore). Every event resets the
//! interval, so a busy stream carries no heartbeats at all.
//!
//! The comment is a line, not a block: no blank line follows it, so it joins
//! the block of the next event. Loose parsers (the `openai` SDKs among them)
//! dispatch any block that ends after a field was seen, or after an `id`
//! once one was seen, as an event with empty data; a heartbeat never ends
//! one.
//!
//! It works on any `text/event-stream` response, this crate's or axum's own
//! `Sse`, and leaves other responses alone:
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{HeartbeatLayer, SseBody, Event};
//! use futures_util::stream;
//!
//! let app: Router = Router::new()
//!     .route("/feed", get(|| async { SseBody::new(stream::pending::<Event>()) }))
//!     .layer(HeartbeatLayer::new(Duration::from_secs(15)));
//! ```
//!
//! `EventSource` never shows comments to the page. A page that wants to see
//! liveness can get a visible event instead:
//!
//! ```
//! use std::time::Duration;
//! use axum_sse::{Event, HeartbeatLayer};
//!
//! let heartbeat = HeartbeatLayer::new(Duration::from_secs(15))
//!     .event(Event::new().event("ping").data(""));
//! let with_text = HeartbeatLayer::new(Duration::from_secs(15)).comment("still here");
//! ```
//!
//! A heartbeat is only ever put between two whole events, never inside one,
//! even when the inner body splits an event across frames. Each stream has
//! one timer, armed when the body first waits for an event.

mod body;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tower::Layer;

pub use self::body::HeartbeatBody;
use crate::{
    layer::{Overrides, StreamSettings},
    stream_service::{sealed, EventStreamService, WrapEventStream},
    Event, EventError,
};

/// Sends a keep-alive on event streams that stay idle for an interval.
/// See the [module docs](crate::heartbeat).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it, with either handler style. Of two heartbeats on one stream
/// the one closest to the handler wins, and
/// [`SseWriter::set_heartbeat`](crate::SseWriter::set_heartbeat) over both:
/// a stream has one heartbeat timer. See [layer ordering](crate#layer-ordering-and-tower-http).
#[derive(Debug, Clone)]
#[must_use]
pub struct HeartbeatLayer {
    // Shared with every stream's body: one pointer per stream, not 48 bytes.
    setting: Arc<Setting>,
}

/// The interval and the bytes of a heartbeat.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub(crate) interval: Duration,
    pub(crate) message: Bytes,
}

impl HeartbeatLayer {
    /// A heartbeat after `interval` without an event. The message is an empty
    /// comment line, `:\n`, by default. A zero interval is taken as one
    /// millisecond.
    pub fn new(interval: Duration) -> Self {
        Self {
            setting: Arc::new(Setting {
                interval: interval.max(Duration::from_millis(1)),
                message: Bytes::from_static(b":\n"),
            }),
        }
    }

    /// Sends the comment line `: text\n` as the heartbeat (several comment
    /// lines if `text` has line breaks), with no blank line after it.
    pub fn comment(mut self, text: impl AsRef<str>) -> Self {
        // Comments alone end no block: the lines, without a blank line.
        Arc::make_mut(&mut self.setting).message = Event::new()
            .comment(text)
            .encode()
            .expect("comments are always valid")
            .into_bytes();
        self
    }

    /// Sends `event` as the heartbeat, for clients that must see it. It goes
    /// out as built, as a block of its own, so it must have `data` (empty
    /// will do): without, `EventSource` dispatches nothing and loose parsers
    /// an event with empty data.
    ///
    /// # Panics
    ///
    /// If a field of `event` was refused or it has no `data` field
    /// ([`EventError::NoData`]); [`try_event`](Self::try_event) reports that
    /// instead.
    pub fn event(self, event: Event) -> Self {
        self.try_event(event)
            .unwrap_or_else(|err| panic!("invalid heartbeat event: {err}"))
    }

    /// Sends `event` as the heartbeat, or reports why it is invalid.
    ///
    /// # Errors
    ///
    /// The first invalid field of `event`, or [`EventError::NoData`].
    pub fn try_event(mut self, event: Event) -> Result<Self, EventError> {
        Arc::make_mut(&mut self.setting).message = event.encode_dispatchable()?.into_bytes();
        Ok(self)
    }

    /// The idle interval after which a heartbeat is sent.
    pub fn interval(&self) -> Duration {
        self.setting.interval
    }
}

impl From<Duration> for HeartbeatLayer {
    fn from(interval: Duration) -> Self {
        Self::new(interval)
    }
}

/// The service made by [`HeartbeatLayer`]: the event-stream service every
/// per-stream layer of this crate shares, with this layer's setting.
pub type HeartbeatService<S> = EventStreamService<S, HeartbeatLayer>;

impl<S> Layer<S> for HeartbeatLayer {
    type Service = HeartbeatService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EventStreamService::new(inner, self.clone())
    }
}

impl sealed::Sealed for HeartbeatLayer {
    const KIND: u8 = crate::stream_service::HEARTBEAT;

    fn record(&self, settings: &mut StreamSettings) {
        settings.overrides.heartbeat = Some(self.clone());
    }

    fn recorded(overrides: &Overrides) -> Option<Self> {
        overrides.heartbeat.clone()
    }
}

impl WrapEventStream for HeartbeatLayer {
    type Body<B> = HeartbeatBody<B>;

    fn wrap_body<B>(&self, body: B, is_event_stream: bool) -> HeartbeatBody<B> {
        let heartbeat = is_event_stream.then(|| Arc::clone(&self.setting));
        HeartbeatBody::new(body, heartbeat)
    }

    fn pass_through<B>(body: B) -> HeartbeatBody<B> {
        HeartbeatBody::new(body, None)
    }
}
