//! A live feed: publish over HTTP, every subscriber gets it, reconnecting
//! clients resume where they stopped.
//!
//! ```text
//! cargo run --example feed
//! open http://127.0.0.1:3000/
//! curl -N http://127.0.0.1:3000/events
//! ID=$(curl -sd 'hello' 'http://127.0.0.1:3000/publish?event=greeting')  # the id
//! curl -sd 'again' http://127.0.0.1:3000/publish
//! curl -N -H "Last-Event-ID: $ID" http://127.0.0.1:3000/events   # replays 'again', then live
//! ```
//!
//! `GET /` is a page listing the events as they arrive (with a form to
//! publish). `GET /events` subscribes to the feed, resuming after the
//! request's `Last-Event-ID` (header, or `lastEventId` query parameter) when
//! it has one. `POST /publish` publishes its text body as the event's data,
//! with the event type given by `?event=TYPE` (default: a plain message),
//! and answers with the id the feed gave it.
//!
//! With `REDIS_URL` set (and `--features redis`), the feed lives in Redis, so
//! several instances share it: an event published on one reaches the
//! clients of all, and a client resumes on any of them.
//!
//! ```text
//! cargo run --features redis --example feed                       # REDIS_URL=redis://127.0.0.1:6379/
//! PORT=3001 cargo run --features redis --example feed
//! curl -N http://127.0.0.1:3001/events &
//! curl -d 'from 3000' http://127.0.0.1:3000/publish
//! ```
//!
//! With `--features metrics`, `GET /metrics` answers a Prometheus scrape
//! (text format, through `metrics-exporter-prometheus`): the streams of the
//! layer and the feed's counters, and histograms with buckets for Grafana's
//! heatmaps and `histogram_quantile` (see the `axum_sse::metrics` docs for
//! every name):
//!
//! ```text
//! cargo run --features metrics --example feed
//! curl -s http://127.0.0.1:3000/metrics
//! # PromQL: streams open, closes by reason, p99 publish-to-subscriber
//! #   sse_streams_open
//! #   sum by (reason) (rate(sse_streams_closed_total[5m]))
//! #   histogram_quantile(0.99, sum by (le) (rate(sse_broadcast_delivery_seconds_bucket[5m])))
//! ```
//!
//! Environment: `PORT` (3000), `REDIS_URL` (unset: in memory), `HISTORY`
//! (1000 events kept for replay).

use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Router,
};
use axum_sse::{
    broadcast::{Broadcast, BroadcastError},
    Event, LastEventId, LastEventIdLayer, SseBody, SseLayer,
};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

#[path = "support/mod.rs"]
mod support;

/// The one topic of this demo.
const TOPIC: &str = "feed";

#[derive(Clone)]
struct App {
    feed: Broadcast,
    /// Turns `true` on shutdown, which ends every open stream.
    shutdown: watch::Receiver<bool>,
}

async fn events(
    State(app): State<App>,
    last_event_id: Option<LastEventId>,
) -> Result<impl IntoResponse, BroadcastError> {
    let last = last_event_id.as_ref().map(LastEventId::as_str);
    let subscription = app.feed.subscribe(TOPIC, last).await?;
    tracing::debug!(?last, missed = subscription.missed_events(), "subscribed");
    let mut shutdown = app.shutdown;
    let stream = subscription.take_until(async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    });
    Ok(SseBody::new(stream))
}

#[derive(Deserialize)]
struct PublishQuery {
    event: Option<String>,
}

async fn publish(
    State(app): State<App>,
    Query(query): Query<PublishQuery>,
    text: String,
) -> Response {
    let mut event = Event::new();
    if let Some(event_type) = query.event.filter(|t| !t.is_empty()) {
        event = event.event(event_type);
    }
    match app.feed.publish(TOPIC, event.data(text)).await {
        Ok(id) => (StatusCode::CREATED, id).into_response(),
        // An event type with a line break.
        Err(err @ BroadcastError::InvalidEvent(_)) => {
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
        Err(err) => err.into_response(),
    }
}

async fn connect() -> Broadcast {
    let history = support::env_or("HISTORY", 1000);
    let builder = Broadcast::builder().history(history);
    #[cfg(feature = "metrics")]
    let builder = builder.metrics(axum_sse::SseMetrics::new());
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => redis(builder, &url).await,
        _ => {
            tracing::info!(history, "feed in memory");
            builder.build()
        }
    }
}

#[cfg(feature = "redis")]
async fn redis(builder: axum_sse::broadcast::BroadcastBuilder, url: &str) -> Broadcast {
    let feed = builder
        .connect_redis(url)
        .await
        .unwrap_or_else(|err| panic!("cannot use Redis at {url}: {err}"));
    tracing::info!(url, "feed in Redis");
    feed
}

#[cfg(not(feature = "redis"))]
async fn redis(_: axum_sse::broadcast::BroadcastBuilder, _: &str) -> Broadcast {
    panic!("REDIS_URL is set: run with `--features redis` to use Redis");
}

/// Installs the Prometheus recorder (before the layer and the feed are
/// built: they register their metrics with the recorder current then) and
/// returns the route that renders it.
#[cfg(feature = "metrics")]
fn metrics_route() -> Router {
    use axum::http::header;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    // Latencies from 100 µs, stream lives up to a day: buckets make true
    // Prometheus histograms (without them, the exporter writes summaries).
    const LATENCY: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0, 30.0,
    ];
    const LIFE: &[f64] = &[
        1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
    ];
    let handle = PrometheusBuilder::new()
        // A full name wins over a suffix.
        .set_buckets_for_metric(Matcher::Full("sse_stream_duration_seconds".into()), LIFE)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY))
        .and_then(|b| b.install_recorder())
        .expect("the Prometheus recorder installs once, with valid buckets");
    // The exporter leaves its periodic upkeep (draining histogram buffers)
    // to the caller.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Router::new().route(
        "/metrics",
        get(move || {
            let text = handle.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
        }),
    )
}

/// Without the `metrics` feature: no `/metrics`.
#[cfg(not(feature = "metrics"))]
fn metrics_route() -> Router {
    Router::new()
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let metrics = metrics_route();
    let feed = connect().await;
    let (stop, shutdown) = watch::channel(false);

    let layer = SseLayer::builder()
        .heartbeat(Duration::from_secs(15))
        .retry(Duration::from_secs(2))
        .last_event_id(LastEventIdLayer::new().query_param("lastEventId"));
    #[cfg(feature = "metrics")]
    let layer = layer.metrics(axum_sse::SseMetrics::new());
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/events", get(events))
        .route("/publish", post(publish))
        .with_state(App { feed, shutdown })
        .layer(layer.build())
        .merge(metrics);

    let listener = support::bind().await;
    tracing::info!("feed demo on http://{}/", listener.local_addr().unwrap());
    axum_sse::serve(listener, app)
        .with_graceful_shutdown(async move {
            support::shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await
        .expect("server error");
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>axum-sse feed</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  #status { color: #666; font-size: 0.9em; }
  ol { list-style: none; padding: 0; }
  li { border-bottom: 1px solid #eee; padding: 0.3rem 0; }
  li .meta { color: #888; font: 0.8em ui-monospace, monospace; margin-right: 0.6rem; }
  li.missed { color: #a40; }
</style>
</head>
<body>
<h1>axum-sse feed</h1>
<form id="publish">
  <input id="text" placeholder="text" size="30" required>
  <input id="type" placeholder="event type (optional)" size="18">
  <button>Publish</button>
</form>
<p id="status">connecting…</p>
<ol id="events"></ol>
<script>
  const list = document.getElementById("events");
  const status = document.getElementById("status");
  const source = new EventSource("/events");
  function show(e, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = (e.lastEventId || "-") + " " + e.type;
    li.append(meta, e.data);
    list.prepend(li);
    document.body.dataset.count = list.children.length;
  }
  // EventSource hands named events only to listeners for their type.
  const listening = new Set();
  function listen(type) {
    if (!type || listening.has(type)) return;
    listening.add(type);
    source.addEventListener(type, (e) => show(e));
  }
  listen("message");
  for (const type of (new URLSearchParams(location.search).get("types") || "").split(",")) listen(type);
  source.addEventListener("missed", (e) => show({ lastEventId: "", type: "missed", data: "some events were missed" }, "missed"));
  source.addEventListener("open", () => { status.textContent = "live"; });
  source.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  document.getElementById("publish").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = document.getElementById("text");
    const type = document.getElementById("type").value.trim();
    listen(type);
    const query = type ? "?event=" + encodeURIComponent(type) : "";
    const response = await fetch("/publish" + query, { method: "POST", body: text.value });
    status.textContent = response.ok ? "published as " + await response.text() : "error: " + await response.text();
    text.value = "";
  });
</script>
</body>
</html>
"#;
