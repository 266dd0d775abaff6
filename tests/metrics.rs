//! The `metrics` feature, end to end over a real `axum::serve` on loopback:
//! each test registers its layers and broadcasts with a recorder of its own
//! (`metrics::with_local_recorder` around `build`), so tests running at once
//! never see each other's metrics.
#![cfg(feature = "metrics")]

mod common;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use axum::{
    http::{header, StatusCode},
    routing::get,
    Router,
};
use common::{eventually, fetch, never_reading_client, read_to_end, read_until, serve};
use futures_util::{stream, StreamExt};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use axum_sse::{
    broadcast::{Broadcast, Subscription},
    CloseReason, Event, LastEventId, SseBody, SseLayer, SseMetrics, SseShutdown, SseStats,
    SseWriter,
};

type Labels = Vec<(String, String)>;

/// What a debugging recorder holds, read through its snapshots (each of
/// which drains it): counters and gauges as they are now, histograms as
/// every value recorded so far.
struct Recorded {
    snapshotter: Snapshotter,
    values: HashMap<(String, Labels), DebugValue>,
    histograms: HashMap<(String, Labels), Vec<f64>>,
    units: HashMap<String, Option<Unit>>,
}

impl Recorded {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Self {
            snapshotter: recorder.snapshotter(),
            values: HashMap::new(),
            histograms: HashMap::new(),
            units: HashMap::new(),
        }
    }

    fn read(&mut self) {
        for (key, unit, _description, value) in self.snapshotter.snapshot().into_vec() {
            let (_, key) = key.into_parts();
            let mut labels: Labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let name = key.name().to_owned();
            self.units.insert(name.clone(), unit);
            match value {
                DebugValue::Histogram(values) => self
                    .histograms
                    .entry((name, labels))
                    .or_default()
                    .extend(values.into_iter().map(|v| v.into_inner())),
                // A snapshot swaps counters and gauges to zero: what it
                // reads is the change since the last one (this crate's
                // gauges only move up and down, never set).
                DebugValue::Counter(n) => {
                    let total = self
                        .values
                        .entry((name, labels))
                        .or_insert(DebugValue::Counter(0));
                    if let DebugValue::Counter(total) = total {
                        *total += n;
                    }
                }
                DebugValue::Gauge(n) => {
                    let total = self
                        .values
                        .entry((name, labels))
                        .or_insert(DebugValue::Gauge(0.0.into()));
                    if let DebugValue::Gauge(total) = total {
                        *total = (total.into_inner() + n.into_inner()).into();
                    }
                }
            }
        }
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> (String, Labels) {
        let mut labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        (name.to_owned(), labels)
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.read();
        match self.values.get(&Self::key(name, labels)) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{name} {labels:?}: {other:?}"),
        }
    }

    fn gauge(&mut self, name: &str) -> f64 {
        self.read();
        match self.values.get(&Self::key(name, &[])) {
            Some(DebugValue::Gauge(n)) => n.into_inner(),
            other => panic!("{name}: {other:?}"),
        }
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.read();
        self.histograms
            .get(&Self::key(name, labels))
            .cloned()
            .unwrap_or_default()
    }

    fn closed(&mut self, reason: CloseReason) -> u64 {
        self.counter("sse_streams_closed_total", &[("reason", reason.as_str())])
    }

    fn durations(&mut self, reason: CloseReason) -> Vec<f64> {
        self.histogram(
            "sse_stream_duration_seconds",
            &[("reason", reason.as_str())],
        )
    }
}

/// A handler that sends `hello`, then waits (inline) for the client to go.
async fn hello_then_wait(mut sse: SseWriter) {
    if sse.send(Event::new().data("hello")).await.is_ok() {
        std::future::pending::<()>().await;
    }
}

/// Everything until the end of the body, under a paused clock.
async fn read_to_end_paused(body: hyper::body::Incoming) -> String {
    let collect = http_body_util::BodyExt::collect(body);
    let bytes = tokio::time::timeout(Duration::from_secs(600), collect)
        .await
        .expect("the body did not end within 600 s")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn serve_until(app: Router, shutdown: SseShutdown) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.triggered().await })
            .await
            .unwrap()
    });
    addr
}

#[tokio::test]
async fn streams_count_as_they_open_send_and_finish_and_match_the_stats() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(&recorder);
    let (finish, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let finish_rx = std::sync::Mutex::new(Some(finish_rx));
    let finish_rx = std::sync::Arc::new(finish_rx);
    let handler = move |mut sse: SseWriter| {
        let finish_rx = finish_rx.lock().unwrap().take();
        async move {
            sse.send(Event::new().data("a")).await.unwrap();
            sse.send(Event::new().data("bc")).await.unwrap();
            if let Some(finish_rx) = finish_rx {
                let _ = finish_rx.await;
            }
        }
    };
    let layer = metrics::with_local_recorder(&recorder, || {
        SseLayer::builder().metrics(SseMetrics::new()).build()
    });
    let stats = layer.stats();
    let app = Router::new().route("/", get(handler)).layer(layer);
    let addr = serve(app).await;

    let mut body = fetch(addr, "/").await.into_body();
    assert_eq!(
        read_until(&mut body, "data: bc\n\n").await,
        "data: a\n\ndata: bc\n\n"
    );
    assert_eq!(recorded.counter("sse_streams_opened_total", &[]), 1);
    assert_eq!(recorded.gauge("sse_streams_open"), 1.0);
    assert_eq!(recorded.counter("sse_sent_events_total", &[]), 2);
    assert_eq!(recorded.counter("sse_sent_bytes_total", &[]), 19);
    assert_eq!(recorded.closed(CloseReason::Finished), 0);

    finish.send(()).unwrap();
    assert_eq!(read_to_end(body).await, "");
    eventually(Duration::from_secs(5), "the stream closed", || {
        stats.open_streams() == 0
    })
    .await;
    assert_eq!(recorded.gauge("sse_streams_open"), 0.0);
    assert_eq!(recorded.closed(CloseReason::Finished), 1);
    let durations = recorded.durations(CloseReason::Finished);
    assert_eq!(durations.len(), 1, "{durations:?}");
    assert!(durations[0] >= 0.0 && durations[0] < 10.0, "{durations:?}");

    // The exported counters are the stats' counters.
    let now = stats.snapshot();
    assert_eq!(
        recorded.counter("sse_streams_opened_total", &[]),
        now.accepted()
    );
    assert_eq!(
        recorded.counter("sse_sent_events_total", &[]),
        now.events_sent()
    );
    assert_eq!(
        recorded.counter("sse_sent_bytes_total", &[]),
        now.bytes_sent()
    );
    // Every reason is registered, at zero until it happens.
    assert_eq!(recorded.closed(CloseReason::Idle), 0);
    assert!(recorded.send_wait_is_empty());
    // Described with their units.
    assert_eq!(
        recorded.units["sse_stream_duration_seconds"],
        Some(Unit::Seconds)
    );
    assert_eq!(recorded.units["sse_sent_bytes_total"], Some(Unit::Bytes));
    assert_eq!(recorded.units["sse_streams_open"], Some(Unit::Count));
}

impl Recorded {
    fn send_wait_is_empty(&mut self) -> bool {
        self.histogram("sse_send_wait_seconds", &[]).is_empty()
    }
}

#[tokio::test]
async fn without_the_builder_call_nothing_is_registered() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (layer, feed) = metrics::with_local_recorder(&recorder, || {
        (SseLayer::builder().build(), Broadcast::builder().build())
    });
    let app = Router::new().route("/", get(hello_then_wait)).layer(layer);
    let mut body = fetch(serve(app).await, "/").await.into_body();
    assert_eq!(read_until(&mut body, "\n\n").await, "data: hello\n\n");
    let mut sub = feed.subscribe("t", None).await.unwrap();
    feed.publish("t", Event::new().data("x")).await.unwrap();
    assert!(sub.next().await.is_some());
    assert!(snapshotter.snapshot().into_vec().is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_close_reason_is_counted_with_the_stream_duration() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(&recorder);
    let shutdown = SseShutdown::new();
    // One stats handle and one prefix over four layers: they add up.
    let stats = SseStats::new();
    let layer = |builder: axum_sse::SseLayerBuilder| {
        metrics::with_local_recorder(&recorder, || {
            builder
                .stats(stats.clone())
                .metrics(SseMetrics::new())
                .build()
        })
    };
    let main = layer(SseLayer::builder().shutdown(shutdown.clone()));
    let idle = layer(
        SseLayer::builder()
            .idle_timeout(Duration::from_secs(30))
            .max_streams(1),
    );
    let max = layer(SseLayer::builder().max_duration(Duration::from_secs(60)));
    let slow = layer(
        SseLayer::builder()
            .max_queued_events(1)
            .send_timeout(Duration::from_secs(2)),
    );
    let slow_handler = |mut sse: SseWriter| async move {
        // Its own task, so it keeps its timer while the connection is stuck.
        tokio::spawn(async move {
            let data = "x".repeat(16 * 1024);
            while sse.send(Event::new().data(&data)).await.is_ok() {}
        });
    };
    let failing = || async {
        let items: Vec<Result<Event, std::io::Error>> = vec![
            Ok(Event::new().data("hello")),
            Err(std::io::Error::other("boom")),
        ];
        SseBody::new(stream::iter(items))
    };
    let app = Router::new()
        .route("/forever", get(hello_then_wait))
        .route(
            "/finish",
            get(|mut sse: SseWriter| async move {
                sse.send(Event::new().data("hello")).await.unwrap();
            }),
        )
        .route("/error", get(failing))
        .layer(main)
        .route("/idle", get(hello_then_wait).layer(idle))
        .route("/max", get(hello_then_wait).layer(max))
        .route("/slow", get(slow_handler).layer(slow));
    let addr = serve_until(app, shutdown.clone()).await;
    let closed = |n: u64| {
        let stats = stats.clone();
        async move {
            eventually(Duration::from_secs(600), "the streams closed", || {
                stats.snapshot().closed_total() == n
            })
            .await
        }
    };

    // Client gone.
    let mut body = fetch(addr, "/forever").await.into_body();
    read_until(&mut body, "\n\n").await;
    drop(body);
    closed(1).await;
    assert_eq!(recorded.closed(CloseReason::ClientGone), 1);

    // Finished, and an error of a stream-style body.
    read_to_end_paused(fetch(addr, "/finish").await.into_body()).await;
    let response = fetch(addr, "/error").await;
    let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    closed(3).await;
    assert_eq!(recorded.closed(CloseReason::Finished), 1);
    assert_eq!(recorded.closed(CloseReason::Error), 1);

    // Idle after 30 s; a second stream meanwhile is refused by the limit.
    let started = tokio::time::Instant::now();
    let mut idle_body = fetch(addr, "/idle").await.into_body();
    read_until(&mut idle_body, "\n\n").await;
    assert_eq!(
        fetch(addr, "/idle").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        recorded.counter("sse_streams_rejected_total", &[("reason", "limit")]),
        1
    );
    assert_eq!(read_to_end_paused(idle_body).await, "");
    closed(4).await;
    assert_eq!(recorded.closed(CloseReason::Idle), 1);
    let idle = recorded.durations(CloseReason::Idle);
    assert_eq!(idle.len(), 1);
    assert!((30.0..31.0).contains(&idle[0]), "{idle:?}");
    assert!(started.elapsed() >= Duration::from_secs(30));

    // The maximum duration.
    let body = fetch(addr, "/max").await.into_body();
    assert_eq!(read_to_end_paused(body).await, "data: hello\n\n");
    closed(5).await;
    let max = recorded.durations(CloseReason::MaxDuration);
    assert_eq!(max.len(), 1);
    assert!((60.0..61.0).contains(&max[0]), "{max:?}");

    // A slow consumer: sends wait on the full queue, the last one for the
    // whole send timeout.
    let client = never_reading_client(addr, "/slow").await;
    eventually(Duration::from_secs(600), "the writer gave up", || {
        stats.snapshot().closed_total() == 5 && !recorded.send_wait_is_empty() && {
            let waits = recorded.histogram("sse_send_wait_seconds", &[]);
            waits.iter().any(|&w| w >= 2.0)
        }
    })
    .await;
    drop(client);
    closed(6).await;
    assert_eq!(recorded.closed(CloseReason::SlowConsumer), 1);
    let waits = recorded.histogram("sse_send_wait_seconds", &[]);
    let longest = waits.iter().copied().fold(0.0, f64::max);
    assert!((2.0..2.1).contains(&longest), "{waits:?}");
    assert!(recorded.durations(CloseReason::SlowConsumer)[0] >= 2.0);

    // The shutdown ends the open stream and refuses new ones.
    let mut body = fetch(addr, "/forever").await.into_body();
    read_until(&mut body, "\n\n").await;
    assert_eq!(recorded.gauge("sse_streams_open"), 1.0);
    shutdown.trigger();
    assert_eq!(read_to_end_paused(body).await, "");
    closed(7).await;
    assert_eq!(recorded.closed(CloseReason::Shutdown), 1);

    // Each reason once, and the exported counters are the stats'.
    let now = stats.snapshot();
    for reason in [
        CloseReason::ClientGone,
        CloseReason::Finished,
        CloseReason::Error,
        CloseReason::Idle,
        CloseReason::MaxDuration,
        CloseReason::SlowConsumer,
        CloseReason::Shutdown,
    ] {
        assert_eq!(recorded.closed(reason), 1, "{reason}");
        assert_eq!(recorded.closed(reason), now.closed(reason), "{reason}");
        assert_eq!(recorded.durations(reason).len(), 1, "{reason}");
    }
    assert_eq!(recorded.counter("sse_streams_opened_total", &[]), 7);
    assert_eq!(recorded.gauge("sse_streams_open"), 0.0);
    assert_eq!(
        recorded.counter("sse_sent_bytes_total", &[]),
        now.bytes_sent()
    );
}

#[tokio::test]
async fn a_request_after_the_shutdown_counts_as_rejected() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(&recorder);
    let shutdown = SseShutdown::new();
    let layer = metrics::with_local_recorder(&recorder, || {
        SseLayer::builder()
            .shutdown(shutdown.clone())
            .metrics(SseMetrics::new().prefix("app_sse"))
            .build()
    });
    let app = Router::new().route("/", get(hello_then_wait)).layer(layer);
    // Served without the graceful shutdown, so the server still answers.
    let addr = serve(app).await;
    shutdown.trigger();
    assert_eq!(
        fetch(addr, "/").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        recorded.counter("app_sse_streams_rejected_total", &[("reason", "shutdown")]),
        1
    );
    assert_eq!(
        recorded.counter("app_sse_streams_rejected_total", &[("reason", "limit")]),
        0
    );
}

async fn subscribe(
    axum::extract::State(feed): axum::extract::State<Broadcast>,
    last_event_id: Option<LastEventId>,
) -> SseBody<Subscription> {
    let last = last_event_id.as_ref().map(LastEventId::as_str);
    SseBody::new(feed.subscribe("news", last).await.unwrap())
}

#[tokio::test]
async fn a_broadcast_counts_subscribers_publishes_and_the_time_to_each_subscriber() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(&recorder);
    let feed = metrics::with_local_recorder(&recorder, || {
        Broadcast::builder().metrics(SseMetrics::new()).build()
    });
    let app = Router::new()
        .route("/events", get(subscribe))
        .layer(SseLayer::new())
        .with_state(feed.clone());
    let addr = serve(app).await;

    let mut first = fetch(addr, "/events").await.into_body();
    let request = http::Request::get("/events")
        .header("last-event-id", "not-an-id-of-ours")
        .body(http_body_util::Empty::new())
        .unwrap();
    let mut second = common::request(addr, request).await.into_body();
    assert_eq!(
        read_until(&mut second, "\n\n").await,
        "event: missed\ndata:\n\n"
    );
    eventually(Duration::from_secs(5), "both subscribed", || {
        feed.stats().subscribers() == 2
    })
    .await;
    assert_eq!(recorded.gauge("sse_broadcast_subscribers"), 2.0);
    assert_eq!(
        recorded.counter("sse_broadcast_missed_resumes_total", &[]),
        1
    );

    for text in ["a", "b", "c"] {
        feed.publish("news", Event::new().data(text)).await.unwrap();
    }
    for body in [&mut first, &mut second] {
        let mut received = String::new();
        while !received.contains("data: c\n") {
            received.push_str(&read_until(body, "\n\n").await);
        }
        assert_eq!(received.matches("data: ").count(), 3, "{received:?}");
    }
    assert_eq!(recorded.counter("sse_broadcast_published_total", &[]), 3);
    // One delivery per event and subscriber.
    let delivery = recorded.histogram("sse_broadcast_delivery_seconds", &[]);
    assert_eq!(delivery.len(), 6, "{delivery:?}");
    assert!(
        delivery.iter().all(|&d| (0.0..10.0).contains(&d)),
        "{delivery:?}"
    );
    assert_eq!(
        recorded.units["sse_broadcast_delivery_seconds"],
        Some(Unit::Seconds)
    );

    drop(first);
    eventually(Duration::from_secs(5), "one left", || {
        feed.stats().subscribers() == 1
    })
    .await;
    assert_eq!(recorded.gauge("sse_broadcast_subscribers"), 1.0);
    drop(second);
    eventually(Duration::from_secs(5), "all left", || {
        feed.stats().subscribers() == 0
    })
    .await;
    assert_eq!(recorded.gauge("sse_broadcast_subscribers"), 0.0);
}

#[tokio::test]
async fn replays_are_not_deliveries_and_a_slow_subscriber_is_counted() {
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(&recorder);
    let feed = metrics::with_local_recorder(&recorder, || {
        Broadcast::builder()
            .buffer(1)
            .metrics(SseMetrics::new())
            .build()
    });
    let first = feed.publish("t", Event::new().data("0")).await.unwrap();
    feed.publish("t", Event::new().data("1")).await.unwrap();
    let mut resumed = feed.subscribe("t", Some(&first)).await.unwrap();
    let mut slow = feed.subscribe("t", None).await.unwrap();
    assert!(resumed.next().await.is_some(), "the replay of 1");
    assert!(recorded
        .histogram("sse_broadcast_delivery_seconds", &[])
        .is_empty());
    // `slow` reads nothing while three go out through a buffer of one.
    for text in ["2", "3", "4"] {
        feed.publish("t", Event::new().data(text)).await.unwrap();
    }
    assert!(slow.next().await.is_none(), "disconnected");
    assert_eq!(
        recorded.counter("sse_broadcast_slow_disconnects_total", &[]),
        1
    );
    assert_eq!(recorded.counter("sse_broadcast_published_total", &[]), 5);
}

#[tokio::test]
async fn a_prometheus_scrape_has_every_metric_in_the_text_format() {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0],
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let (layer, feed) = metrics::with_local_recorder(&recorder, || {
        (
            SseLayer::builder().metrics(SseMetrics::new()).build(),
            Broadcast::builder().metrics(SseMetrics::new()).build(),
        )
    });
    let app = Router::new()
        .route("/events", get(subscribe))
        .route(
            "/finish",
            get(|mut sse: SseWriter| async move {
                sse.send(Event::new().data("hello")).await.unwrap();
            }),
        )
        .layer(layer)
        .with_state(feed.clone())
        .route("/metrics", get(move || async move { handle.render() }));
    let addr = serve(app).await;

    read_to_end(fetch(addr, "/finish").await.into_body()).await;
    let mut body = fetch(addr, "/events").await.into_body();
    eventually(Duration::from_secs(5), "subscribed", || {
        feed.stats().subscribers() == 1
    })
    .await;
    feed.publish("news", Event::new().data("x")).await.unwrap();
    read_until(&mut body, "\n\n").await;

    let response = fetch(addr, "/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::CONTENT_TYPE).is_some());
    let text = read_to_end(response.into_body()).await;
    for line in [
        "# TYPE sse_streams_open gauge",
        "sse_streams_open 1",
        "# TYPE sse_streams_opened_total counter",
        "sse_streams_opened_total 2",
        "# TYPE sse_streams_closed_total counter",
        "sse_streams_closed_total{reason=\"finished\"} 1",
        "sse_streams_closed_total{reason=\"client_gone\"} 0",
        "sse_streams_rejected_total{reason=\"limit\"} 0",
        "# TYPE sse_stream_duration_seconds histogram",
        "sse_stream_duration_seconds_count{reason=\"finished\"} 1",
        "sse_stream_duration_seconds_bucket{reason=\"finished\",le=\"+Inf\"} 1",
        "sse_sent_events_total 1",
        "sse_sent_bytes_total ",
        "# TYPE sse_send_wait_seconds histogram",
        "# HELP sse_sent_bytes_total Bytes of events sent",
        "sse_broadcast_subscribers 1",
        "sse_broadcast_published_total 1",
        "sse_broadcast_slow_disconnects_total 0",
        "sse_broadcast_missed_resumes_total 0",
        "sse_broadcast_delivery_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "no {line:?} in\n{text}"
        );
    }
}

/// The Redis to test against, or `None` to skip (outside CI only), as in
/// `tests/broadcast_redis.rs`.
#[cfg(feature = "redis")]
fn redis_url() -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| !ci.is_empty()) => panic!(
            "REDIS_URL is not set, and CI is: the Redis tests must run in CI \
             (start a server with `eval \"$(.ci/redis.sh)\"`)"
        ),
        _ => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: REDIS_URL is not set: skipping the Redis metrics test \
                 (run `eval \"$(.ci/redis.sh)\"` first to run it)"
            );
            None
        }
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_broadcast_times_each_delivery_from_the_entry() {
    let Some(url) = redis_url() else { return };
    let recorder = DebuggingRecorder::new();
    let mut recorded = Recorded::new(&recorder);
    // The handles are registered in `connect_redis`, on this thread (a
    // current-thread runtime), under the guard.
    let (a, b) = {
        let _local = metrics::set_default_local_recorder(&recorder);
        let prefix = format!("axum-sse-test:{:016x}:", fastrand::u64(..));
        let connect = |prefix: String| {
            Broadcast::builder()
                .key_prefix(prefix)
                .metrics(SseMetrics::new())
                .connect_redis(&url)
        };
        (
            connect(prefix.clone()).await.unwrap(),
            connect(prefix).await.unwrap(),
        )
    };
    let mut sub = b.subscribe("news", None).await.unwrap();
    assert_eq!(recorded.gauge("sse_broadcast_subscribers"), 1.0);
    // Instance A publishes; the subscriber on B gets it through Redis. The
    // first event of a topic on B may reach it through a gap fill from the
    // history (its reader started after the subscription), which is not
    // timed; every event after it is a live one.
    async fn next(sub: &mut Subscription) {
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("delivered within 10 s")
            .unwrap();
    }
    a.publish("news", Event::new().data("first")).await.unwrap();
    next(&mut sub).await;
    let before = recorded
        .histogram("sse_broadcast_delivery_seconds", &[])
        .len();
    for text in ["a", "b", "c"] {
        a.publish("news", Event::new().data(text)).await.unwrap();
        next(&mut sub).await;
    }
    assert_eq!(recorded.counter("sse_broadcast_published_total", &[]), 4);
    let delivery = recorded.histogram("sse_broadcast_delivery_seconds", &[]);
    assert_eq!(delivery.len() - before, 3, "{delivery:?}");
    // Redis's clock in milliseconds against this machine's, one host here.
    assert!(
        delivery.iter().all(|&d| (0.0..10.0).contains(&d)),
        "{delivery:?}"
    );
}
