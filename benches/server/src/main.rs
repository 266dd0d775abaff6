//! The load-harness server: every endpoint of the bench protocol
//! (`../shared/bench/PROTOCOL.md` in the project's workspace, summed up in
//! `benches/server/README.md`) served with this crate, so the harness can
//! compare it with axum's own `Sse`.
//!
//! Build it as its own package, the way the harness builds its reference
//! servers (axum's default features, the harness's release profile):
//!
//! ```text
//! cargo build --release --manifest-path benches/server/Cargo.toml
//! benches/server/target/release/bench_server --port 3000 [--stream-api] [--push-sub]
//!     [--http1-only] [--axum-serve] [--metrics]
//! ```
//!
//! `--metrics`: the layer exports its metrics (`SseLayerBuilder::metrics`)
//! into a Prometheus recorder (`metrics-exporter-prometheus`, installed
//! globally, buckets on every histogram), rendered at `GET /metrics`. Off,
//! the same binary (the crate's `metrics` feature is on either way), so a
//! run compares the cost of the call alone.
//!
//! Served with `axum_sse::serve` (HTTP/1.1 and h2c; `--http1-only`: HTTP/1.1
//! only; `--axum-serve`: through `axum::serve` with `TCP_NODELAY`, as
//! before, for comparison).
//!
//! - `GET /stream?n=N&size=B`: N `tick` events through the `SseWriter` push
//!   API (`--stream-api`: through `SseBody` over a stream instead).
//! - `GET /idle`: a stream with no events, kept alive by the heartbeat
//!   layer (15 s): an `SseBody` over a stream that never yields, as
//!   axum's `Sse` over `stream::pending()` in the reference server.
//! - `GET /sub`, `POST /pub?n=N&interval_us=I`: fan-out of published
//!   messages to every subscriber. Each message is encoded once into an
//!   `EncodedEvent` and every subscriber's body sends the same bytes, as a
//!   `broadcast::Subscription` is served (`--push-sub`: through the push
//!   API, `SseWriter::send_encoded`). The protocol numbers messages 0..N
//!   per `/pub` call, so this endpoint keeps its own sequence on a tokio
//!   broadcast rather than `broadcast::Broadcast`, whose ids belong to the
//!   channel.
//!
//! Binds 127.0.0.1 only; the port comes from `--port` or `PORT`.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
    Router,
};
use axum_sse::{EncodedEvent, Event, SseBody, SseError, SseLayer, SseMetrics, SseWriter};
use futures_util::{stream, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

#[derive(Clone)]
struct AppState {
    stream_api: bool,
    published: broadcast::Sender<EncodedEvent>,
}

#[derive(Deserialize)]
struct StreamQuery {
    n: Option<u64>,
    size: Option<usize>,
}

#[derive(Deserialize)]
struct PubQuery {
    n: Option<u64>,
    interval_us: Option<u64>,
}

fn payload(size: usize) -> String {
    (b'a'..=b'z').cycle().take(size).map(char::from).collect()
}

fn tick(i: u64, data: &str) -> Event {
    Event::new().event("tick").id(i).data(data)
}

async fn stream_events(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
    mut sse: SseWriter,
) -> Result<Response, SseError> {
    let n = query.n.unwrap_or(1000);
    let data: Arc<str> = payload(query.size.unwrap_or(16)).into();
    if state.stream_api {
        let events = stream::iter(0..n).map(move |i| tick(i, &data));
        return Ok(SseBody::new(events).into_response());
    }
    for i in 0..n {
        sse.send(tick(i, &data)).await?;
    }
    Ok(().into_response())
}

/// An idle stream needs no handler left running: a body over a stream that
/// never yields, which the heartbeat layer keeps alive.
async fn idle() -> SseBody<stream::Pending<Event>> {
    SseBody::new(stream::pending())
}

/// Subscribed before the head goes out, as the protocol requires: a body
/// over the subscription, each message the same `EncodedEvent` for every
/// subscriber (the way `broadcast::Subscription` is served).
async fn subscribe(State(state): State<AppState>) -> SseBody<impl Stream<Item = EncodedEvent>> {
    let published = state.published.subscribe();
    SseBody::new(stream::unfold(published, |mut published| async move {
        loop {
            match published.recv().await {
                Ok(event) => return Some((event, published)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }))
}

/// The same through the push API (`--push-sub`): a handler that sends each
/// message as it arrives.
async fn subscribe_push(State(state): State<AppState>, mut sse: SseWriter) -> Result<(), SseError> {
    let mut published = state.published.subscribe();
    sse.start()?;
    loop {
        match published.recv().await {
            Ok(event) => sse.send_encoded(&event).await?,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

async fn publish(State(state): State<AppState>, Query(query): Query<PubQuery>) -> String {
    let n = query.n.unwrap_or(1000);
    let interval = Duration::from_micros(query.interval_us.unwrap_or(0));
    let subscribers = state.published.receiver_count();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for seq in 0..n {
            if !interval.is_zero() && seq > 0 {
                tokio::time::sleep_until(start + interval * seq as u32).await;
            }
            let ts_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            let event = Event::new()
                .id(seq)
                .data(itoa::Buffer::new().format(ts_ns))
                .encode()
                .expect("ids and numbers are valid");
            let _ = state.published.send(event);
        }
    });
    subscribers.to_string()
}

fn flag(name: &str) -> bool {
    std::env::args().any(|arg| arg == name)
}

fn port() -> u16 {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            if let Some(port) = args.next().and_then(|p| p.parse().ok()) {
                return port;
            }
        }
    }
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

#[tokio::main]
async fn main() {
    let capacity = std::env::var("BENCH_BCAST_CAP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16384);
    let state = AppState {
        stream_api: flag("--stream-api"),
        published: broadcast::channel(capacity).0,
    };
    // The layer wraps the streaming routes only: every route it wraps
    // carries a copy of its stack (which `axum::serve` would clone with the
    // router for every connection; `axum_sse::serve` shares one router).
    let subscribe = if flag("--push-sub") {
        get(subscribe_push)
    } else {
        get(subscribe)
    };
    let layer = SseLayer::builder().heartbeat(Duration::from_secs(15));
    let mut scrape = None;
    let layer = if flag("--metrics") {
        use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0],
            )
            .and_then(|b| b.install_recorder())
            .expect("install the Prometheus recorder");
        // The exporter leaves its upkeep (draining histogram samples) to
        // the caller.
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        scrape = Some(handle);
        layer.metrics(SseMetrics::new())
    } else {
        layer
    };
    let app = Router::new()
        .route("/stream", get(stream_events))
        .route("/idle", get(idle))
        .route("/sub", subscribe)
        .layer(layer.build())
        .route("/health", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || async move { scrape.map(|h| h.render()).unwrap_or_default() }),
        )
        .route("/pub", post(publish))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port()))
        .await
        .expect("bind 127.0.0.1");
    eprintln!(
        "bench_server listening on {}",
        listener.local_addr().unwrap()
    );
    if flag("--axum-serve") {
        // The way before `axum_sse::serve`, for comparison.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.expect("server error");
        return;
    }
    axum_sse::serve(listener, app)
        .http2(!flag("--http1-only"))
        .await
        .expect("server error");
}
