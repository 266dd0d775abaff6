//! Production-grade Server-Sent Events for axum and tower.
//!
//! Mount [`SseLayer`] on a router, extract an [`SseWriter`] in a handler, and
//! send [`Event`]s:
//!
//! ```
//! use axum::{extract::Query, routing::get, Router};
//! use axum_sse::{Event, SseError, SseLayer, SseWriter};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Prompt { prompt: String }
//!
//! #[derive(Serialize)]
//! struct Token<'a> { token: &'a str }
//!
//! async fn chat(mut sse: SseWriter, Query(q): Query<Prompt>) -> Result<(), SseError> {
//!     let words: Vec<&str> = q.prompt.split_whitespace().collect();
//!     for (i, word) in words.iter().enumerate() {
//!         let event = Event::new().event("token").id(i + 1).json(&Token { token: word })?;
//!         sse.send(event).await?; // the first send answers 200 + SSE headers
//!     }
//!     sse.send(Event::new().event("done").id(words.len() + 1).data("{}")).await
//! }
//!
//! let app: Router = Router::new()
//!     .route("/chat", get(chat))
//!     .layer(SseLayer::new());
//! ```
//!
//! The [`cookbook`] has recipes for what users ask most: LLM token
//! streaming, progress, a live feed with resume, relaying, authorization,
//! CORS, proxies, compression and testing.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `client` | no | `client::EventSource`: a reconnecting SSE client (`retry`, `Last-Event-ID`, back-off from a floor, POST bodies, a read timeout) over hyper-util's HTTP client |
//! | `metrics` | no | `SseMetrics`: the counters of `SseStats` and of a broadcast, and latency and stream-duration histograms, through the `metrics` facade for any exporter (see `metrics`) |
//! | `redis` | no | `broadcast::Broadcast::redis`: broadcast channels over Redis Streams, shared by several instances; `presence::Presence::redis`: presence across instances, with a crash bound |
//! | `hub` | no | `hub::Hub`: many topics on one connection with one cursor, topic selectors (exact, URL pattern, URI template), authorization and private updates |
//! | `test-util` | no | `test_util::sse_events`: read a router's event stream in a test, in process, with a timeout per event |
//!
//! # Where things are
//!
//! | what | where |
//! | --- | --- |
//! | the push path: layer → handler → writer → queue → body | [`SseLayer`], [`SseWriter`] (`src/writer/`) |
//! | one message, encoded as it is built | [`Event`], [`EncodedEvent`] (`src/event/`) |
//! | the stream-style entry | [`SseBody`] (`src/body.rs`) |
//! | per-stream protocol layers | [`HeartbeatLayer`], [`RetryLayer`], [`LastEventIdLayer`] |
//! | lifecycle layers | [`TimeLimitLayer`], [`StreamLimitLayer`], [`ShutdownLayer`], [`SseStats`] |
//! | one event to many subscribers, with replay | [`broadcast`] |
//! | who follows a topic, joins and leaves | [`presence`] |
//! | many topics on one connection, selectors, private updates | `hub` (feature `hub`) |
//! | reading streams | [`decode`], `client` (feature `client`), `test_util` (feature `test-util`) |
//! | recipes | [`cookbook`] |
//! | a reply that outlives its client, resumed on any instance (Redis: `redis`) | [`resumable`] |
//!
//! The sections below are kept in `src/docs/` and cover how a request flows
//! and what the crate puts on the wire, layer ordering with tower-http, and
//! running in production.

#![doc = include_str!("docs/request-flow.md")]
#![doc = include_str!("docs/layer-ordering.md")]
#![doc = include_str!("docs/production.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

mod body;
pub mod broadcast;
#[doc = include_str!("docs/cookbook.md")]
pub mod cookbook {}
#[cfg(feature = "client")]
pub mod client;
pub mod decode;
mod event;
pub mod heartbeat;
#[cfg(feature = "hub")]
pub mod hub;
pub mod last_event_id;
pub mod layer;
pub mod limit;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod presence;
pub mod resumable;
pub mod retry;
pub mod serve;
pub mod shutdown;
pub mod stats;
pub mod stream_service;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod time_limit;
mod util;
mod writer;

use axum::BoxError;

/// The README's code blocks, compiled and run as doc tests so the first
/// code a user reads keeps working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use crate::{
    body::{SseBody, SseItem},
    event::{EncodedEvent, Event, EventError, EventField, EventIdValue},
    heartbeat::{HeartbeatBody, HeartbeatLayer, HeartbeatService},
    last_event_id::{
        InvalidLastEventId, LastEventId, LastEventIdLayer, LastEventIdRejection, LastEventIdService,
    },
    layer::{SseLayer, SseLayerBuilder},
    limit::{ClientKey, StreamLimitLayer},
    retry::{RetryBody, RetryLayer, RetryService},
    serve::{serve, Serve, ServeFuture},
    shutdown::{ShutdownLayer, SseShutdown},
    stats::{CloseReason, SseStats, SseStatsSnapshot},
    time_limit::{TimeLimitBody, TimeLimitLayer, TimeLimitService},
    util::answer::AnswerBody,
    writer::extract::SseWriterRejection,
    writer::{SseError, SseWriter, TrySendError},
};

#[cfg(feature = "metrics")]
pub use crate::metrics::SseMetrics;
