//! Stream limits: how many event streams may be open at once, in all and
//! per client.
//!
//! `tower::limit::ConcurrencyLimit` releases its permit when the response
//! future completes, that is when the headers go out, so it never counts
//! open event streams. [`StreamLimitLayer`] keeps the permit inside the
//! response body for the stream's whole life, and releases it when the
//! stream ends (or at once, for a response that is not an event stream).
//!
//! - A global maximum ([`max_streams`](StreamLimitLayer::max_streams)).
//! - A maximum per client
//!   ([`max_streams_per_client`](StreamLimitLayer::max_streams_per_client)),
//!   the client being named by a [key function](StreamLimitLayer::client_key)
//!   of the request: by default the peer's IP address, from axum's
//!   `ConnectInfo<SocketAddr>` (serve the app with
//!   `into_make_service_with_connect_info::<SocketAddr>()`; behind a proxy,
//!   key by the forwarded address or by the user instead).
//!
//! A request over a limit is answered `429 Too Many Requests` with
//! `Retry-After` before the handler runs. The limits apply to every request
//! the layer wraps, so put it on the streaming routes only. One layer is one
//! budget, shared by every route it is applied to (and by its clones);
//! per-client counts are kept only for clients with a stream open.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseWriter};
//!
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!     }))
//!     .layer(
//!         SseLayer::builder()
//!             .max_streams(10_000)
//!             .max_streams_per_client(8)
//!             .build(),
//!     );
//! // axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//! ```
//!
//! Keyed by an authenticated user rather than by address, on its own:
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseBody, StreamLimitLayer};
//! use futures_util::stream;
//! use http::{header::AUTHORIZATION, request::Parts};
//!
//! let limit = StreamLimitLayer::new()
//!     .max_streams(10_000)
//!     .max_streams_per_client(4)
//!     .client_key(|parts: &Parts| {
//!         parts.headers.get(AUTHORIZATION).map(|token| token.as_bytes().to_vec())
//!     })
//!     .retry_after(Duration::from_secs(30));
//! let app: Router = Router::new()
//!     .route("/feed", get(|| async { SseBody::new(stream::pending::<Event>()) }))
//!     .layer(limit);
//! ```
//!
//! A browser's `EventSource` does not reconnect after a `429` (any status
//! but `200` stops it): a page that should retry listens for `error` and
//! opens a new one later.

mod body;
mod future;
mod key;
mod layer;
mod service;

pub(crate) use self::layer::StreamPermit;
pub use self::{
    body::StreamLimitBody, future::ResponseFuture, key::ClientKey, layer::StreamLimitLayer,
    service::StreamLimitService,
};
