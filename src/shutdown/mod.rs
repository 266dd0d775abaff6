//! Graceful shutdown: end every open event stream, so the server can stop.
//!
//! An event stream never ends by itself, so `axum::serve(..)
//! .with_graceful_shutdown(..)` waits for it forever: the server does not
//! stop until every client has gone. An [`SseShutdown`] handle given to the
//! layer fixes that. When it is [triggered](SseShutdown::trigger):
//!
//! - every open stream sends the farewell event, if one is set (a whole
//!   event, never inside another), and ends cleanly; events that were
//!   already queued go out first;
//! - every new request under the layer is answered `503 Service
//!   Unavailable` with `Retry-After`, before the handler runs;
//! - the graceful shutdown of the server then completes as soon as the
//!   clients have read their farewell (bound the wait for clients that read
//!   nothing with [`Serve::shutdown_timeout`](crate::serve::Serve::shutdown_timeout)).
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseShutdown, SseWriter};
//!
//! # async fn run() {
//! let shutdown = SseShutdown::new();
//! let app: Router = Router::new()
//!     .route("/events", get(|mut sse: SseWriter| async move {
//!         let _ = sse.send(Event::new().data("hello")).await;
//!         sse.closed().await;
//!     }))
//!     .layer(
//!         SseLayer::builder()
//!             .shutdown(shutdown.clone())
//!             .farewell(Event::new().event("shutdown").data("restarting"))
//!             .build(),
//!     );
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         tokio::signal::ctrl_c().await.ok();
//!         shutdown.trigger(); // every stream says goodbye and ends
//!     })
//!     .await
//!     .unwrap();
//! # }
//! ```
//!
//! [`ShutdownLayer`] does the same on its own, for any `text/event-stream`
//! response (axum's own `Sse` included):
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseBody, SseShutdown, ShutdownLayer};
//! use futures_util::stream;
//!
//! let shutdown = SseShutdown::new();
//! let app: Router = Router::new()
//!     .route("/feed", get(|| async { SseBody::new(stream::pending::<Event>()) }))
//!     .layer(
//!         ShutdownLayer::new(shutdown.clone())
//!             .farewell(Event::new().event("shutdown").data(""))
//!             .retry_after(Duration::from_secs(30)),
//!     );
//! shutdown.trigger();
//! assert!(shutdown.is_triggered());
//! ```
//!
//! A browser's `EventSource` reconnects by itself after a stream ends, but a
//! `503` stops it for good (any status but `200` does): the farewell event is
//! the page's cue to reconnect later, elsewhere.
//!
//! A client that reads nothing at all keeps its connection busy until the
//! socket gives up, and the server's graceful shutdown waits for it: bound
//! the wait with a timeout around the server's future.

mod body;
mod future;
mod handle;
mod layer;
mod service;

pub(crate) use self::body::Watch;
pub use self::{
    body::ShutdownBody, future::ResponseFuture, handle::SseShutdown, layer::ShutdownLayer,
    service::ShutdownService,
};
