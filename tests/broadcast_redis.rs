//! Broadcast channels over Redis Streams, against a real `redis-server`.
//!
//! `REDIS_URL` names the server (`eval "$(.ci/redis.sh)"` starts one). The
//! restart test starts a `redis-server` of its own, on a free port, so it can
//! stop and start it. Without `REDIS_URL` the tests fail when `CI` is set and
//! are skipped (with a note) otherwise.
#![cfg(feature = "redis")]

mod common;

use std::{
    io::Write as _,
    net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};
use bytes::Bytes;
use common::{fetch, read_until, redis_url, request, serve};
use futures_util::StreamExt;
use http::Request;
use http_body_util::Empty;

use axum_sse::{
    broadcast::{Broadcast, BroadcastError, Subscription},
    EncodedEvent, Event, LastEventId, SseBody, SseLayer,
};

/// A prefix no other test run uses, so tests share one Redis safely.
fn unique_prefix() -> String {
    format!("axum-sse-test:{:016x}:", fastrand::u64(..))
}

async fn instance(url: &str, prefix: &str) -> Broadcast {
    Broadcast::builder()
        .key_prefix(prefix)
        .connect_redis(url)
        .await
        .unwrap()
}

fn text(event: &EncodedEvent) -> &str {
    std::str::from_utf8(event.as_bytes()).unwrap()
}

async fn next(subscription: &mut Subscription) -> EncodedEvent {
    tokio::time::timeout(Duration::from_secs(20), subscription.next())
        .await
        .expect("no event within 20 s")
        .expect("the subscription ended")
}

/// What the channel sends for `Event::new().data(data)` given `id`.
fn wire(data: &str, id: &str) -> String {
    format!("data: {data}\nid: {id}\n\n")
}

async fn publish(feed: &Broadcast, topic: &str, data: &str) -> String {
    let id = feed.publish(topic, Event::new().data(data)).await.unwrap();
    wire(data, &id)
}

async fn events(
    State(feed): State<Broadcast>,
    Path(topic): Path<String>,
    last_event_id: Option<LastEventId>,
) -> Result<SseBody<Subscription>, BroadcastError> {
    let last = last_event_id.as_ref().map(LastEventId::as_str);
    Ok(SseBody::new(feed.subscribe(&topic, last).await?))
}

async fn serve_feed(feed: Broadcast) -> SocketAddr {
    serve(
        Router::new()
            .route("/events/{topic}", get(events))
            .with_state(feed)
            .layer(SseLayer::new()),
    )
    .await
}

async fn fetch_resuming(
    addr: SocketAddr,
    path: &str,
    last_event_id: &str,
) -> hyper::Response<hyper::body::Incoming> {
    let req = Request::get(path)
        .header("last-event-id", last_event_id)
        .body(Empty::<Bytes>::new())
        .unwrap();
    request(addr, req).await
}

/// The `id` of an event as the channel wrote it.
fn id_of(wire: &str) -> &str {
    wire.lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap()
}

#[tokio::test]
async fn an_event_published_on_one_instance_reaches_the_clients_of_another() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = instance(&url, &prefix).await;
    let b = instance(&url, &prefix).await;
    let (addr_a, addr_b) = (serve_feed(a.clone()).await, serve_feed(b.clone()).await);
    let mut on_b = fetch(addr_b, "/events/news").await.into_body();
    let mut on_a = fetch(addr_a, "/events/news").await.into_body();

    let mut expected = String::new();
    for n in 1..=20 {
        expected += &publish(&a, "news", &n.to_string()).await;
    }
    let last = expected
        .rsplit_terminator("\n\n")
        .next()
        .unwrap()
        .to_owned()
        + "\n\n";
    assert_eq!(read_until(&mut on_b, &last).await, expected);
    assert_eq!(read_until(&mut on_a, &last).await, expected);
    // Ids are short, and name their history: the same on every instance.
    let id = id_of(&last);
    assert!(id.len() <= 64, "{id}");
    assert_eq!(a.stats().published(), 20);
    assert_eq!(b.stats().published(), 0);
}

#[tokio::test]
async fn a_client_resumes_on_another_instance_with_its_last_event_id() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = instance(&url, &prefix).await;
    let b = instance(&url, &prefix).await;
    let (addr_a, addr_b) = (serve_feed(a.clone()).await, serve_feed(b.clone()).await);

    let mut first = fetch(addr_a, "/events/t").await.into_body();
    let mut seen = String::new();
    for n in 1..=5 {
        seen += &publish(&a, "t", &n.to_string()).await;
    }
    let fifth = seen.rsplit_terminator("\n\n").next().unwrap().to_owned() + "\n\n";
    assert_eq!(read_until(&mut first, &fifth).await, seen);
    drop(first);

    let mut missed = String::new();
    for n in 6..=8 {
        missed += &publish(&a, "t", &n.to_string()).await;
    }
    let mut resumed = fetch_resuming(addr_b, "/events/t", id_of(&fifth))
        .await
        .into_body();
    let eighth = missed.rsplit_terminator("\n\n").next().unwrap().to_owned() + "\n\n";
    assert_eq!(read_until(&mut resumed, &eighth).await, missed);
    let ninth = publish(&a, "t", "9").await;
    assert_eq!(read_until(&mut resumed, "\n\n").await, ninth);

    // An id Redis never gave: the missed-events event, then the history.
    let mut lost = fetch_resuming(addr_b, "/events/t", "1-999999")
        .await
        .into_body();
    assert_eq!(
        read_until(&mut lost, &ninth).await,
        format!("event: missed\ndata:\n\n{seen}{missed}{ninth}")
    );
    assert_eq!(b.stats().missed_resumes(), 1);
}

#[tokio::test]
async fn an_id_trimmed_from_the_stream_gets_the_missed_events_event() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let feed = Broadcast::builder()
        .key_prefix(&prefix)
        .history(10)
        .connect_redis(&url)
        .await
        .unwrap();
    let mut published = Vec::new();
    for n in 0..600 {
        published.push(publish(&feed, "t", &n.to_string()).await);
    }
    let mut subscription = feed
        .subscribe("t", Some(id_of(&published[0])))
        .await
        .unwrap();
    assert!(subscription.missed_events());
    assert_eq!(
        text(&next(&mut subscription).await),
        "event: missed\ndata:\n\n"
    );
    // Then what Redis kept (`MAXLEN ~ 10` trims in whole blocks): a tail of
    // what was published, in order, up to the last.
    let first = next(&mut subscription).await;
    let start = published
        .iter()
        .position(|p| p == text(&first))
        .expect("a published event");
    assert!(start > 0, "the first event was trimmed");
    assert!(published.len() - start >= 10);
    for expected in &published[start + 1..] {
        assert_eq!(text(&next(&mut subscription).await), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_while_others_publish_has_no_gap_and_no_duplicate() {
    let Some(url) = redis_url() else { return };
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let prefix = unique_prefix();
    let publisher = instance(&url, &prefix).await;
    let started = Instant::now();
    let mut rounds = 0;
    // Bounded in count and in time.
    while rounds < 40 && started.elapsed() < Duration::from_secs(30) {
        rounds += 1;
        let topic = format!("t{rounds}");
        // Before anything: the resume point.
        let before = publish(&publisher, &topic, "0").await;
        let total = rng.usize(20..120);
        let task = {
            let publisher = publisher.clone();
            let topic = topic.clone();
            let mut rng = fastrand::Rng::with_seed(rng.u64(..));
            tokio::spawn(async move {
                let mut published = Vec::new();
                for n in 1..=total {
                    published.push(publish(&publisher, &topic, &n.to_string()).await);
                    if rng.u8(..4) == 0 {
                        tokio::time::sleep(Duration::from_micros(rng.u64(..2000))).await;
                    }
                }
                published
            })
        };
        // A fresh instance, so its reader starts while events are published.
        let subscriber = instance(&url, &prefix).await;
        tokio::time::sleep(Duration::from_micros(rng.u64(..3000))).await;
        let mut subscription = subscriber
            .subscribe(&topic, Some(id_of(&before)))
            .await
            .unwrap();
        assert!(!subscription.missed_events());
        let mut received = Vec::new();
        // Leave and come back once, on another fresh instance, mid-stream.
        let cut = rng.usize(0..total);
        for _ in 0..cut {
            received.push(text(&next(&mut subscription).await).to_owned());
        }
        drop(subscription);
        let resume_from = received.last().map_or(before.clone(), Clone::clone);
        let other = instance(&url, &prefix).await;
        let mut subscription = other
            .subscribe(&topic, Some(id_of(&resume_from)))
            .await
            .unwrap();
        for _ in cut..total {
            received.push(text(&next(&mut subscription).await).to_owned());
        }
        let published = task.await.unwrap();
        assert_eq!(received, published, "seed {seed}, round {rounds}");
        // And nothing twice after the last one.
        let end = publish(&publisher, &topic, "end").await;
        assert_eq!(text(&next(&mut subscription).await), end, "seed {seed}");
    }
    println!("{rounds} rounds");
}

/// A `redis-server` of the test's own, which it can stop and start again on
/// the same port.
struct OwnRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// An append-only file, written before every reply (`appendfsync
    /// always`): a restart keeps every write Redis acknowledged.
    persistent: bool,
}

impl OwnRedis {
    /// `None` (after a note) where there is no `redis-server` and no CI.
    fn start() -> Option<Self> {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("axum-sse-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
            persistent: false,
        };
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI is set (.ci/redis.sh installs it)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "note: no redis-server binary: skipping the restart test"
            );
            return None;
        }
        redis.restart();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Like [`start`](Self::start), with an append-only file.
    fn start_persistent() -> Option<Self> {
        let mut redis = Self::start()?;
        redis.persistent = true;
        redis.restart();
        Some(redis)
    }

    fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn streams_survive_a_redis_restart_and_nothing_is_duplicated() {
    if redis_url().is_none() {
        return;
    }
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix();
    let a = instance(&url, &prefix).await;
    let b = instance(&url, &prefix).await;
    let addr_b = serve_feed(b.clone()).await;
    let mut in_process = b.subscribe("t", None).await.unwrap();
    let mut over_http = fetch(addr_b, "/events/t").await.into_body();

    let mut published = Vec::new();
    for n in 1..=5 {
        published.push(publish(&a, "t", &n.to_string()).await);
    }
    for expected in &published {
        assert_eq!(text(&next(&mut in_process).await), expected);
    }
    let expected = published.concat();
    assert_eq!(read_until(&mut over_http, &published[4]).await, expected);

    redis.stop();
    let err = a.publish("t", Event::new().data("lost")).await.unwrap_err();
    assert!(err.is_backend(), "{err}");
    let err = b.subscribe("t", None).await.unwrap_err();
    assert!(matches!(err, BroadcastError::Backend(_)), "{err}");

    redis.restart();
    // The first publishes may still fail while the connection comes back;
    // every one that succeeds must arrive, once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut back = Vec::new();
    while back.len() < 5 {
        assert!(Instant::now() < deadline, "publishing did not recover");
        let data = format!("back {}", back.len());
        match a.publish("t", Event::new().data(&data)).await {
            Ok(id) => back.push(wire(&data, &id)),
            Err(err) => {
                assert!(err.is_backend(), "{err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Redis kept nothing (no persistence): a new history, announced by the
    // missed-events event.
    assert_eq!(
        text(&next(&mut in_process).await),
        "event: missed\ndata:\n\n"
    );
    for expected in &back {
        assert_eq!(text(&next(&mut in_process).await), expected);
    }
    let expected = format!("event: missed\ndata:\n\n{}", back.concat());
    assert_eq!(read_until(&mut over_http, &back[4]).await, expected);
    // Nothing more, not a duplicate: the next event is the next one.
    let last = publish(&a, "t", "last").await;
    assert_eq!(text(&next(&mut in_process).await), last);
    assert_eq!(read_until(&mut over_http, "\n\n").await, last);
    assert_eq!(b.stats().subscribers(), 2);
    assert_eq!(b.stats().slow_disconnects(), 0);
}

impl OwnRedis {
    /// The clients connected now, but for the `redis-cli` that asks.
    fn clients(&self) -> usize {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["CLIENT", "LIST"])
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|line| line.contains("cmd=") && !line.contains("cmd=client|list"))
            .count()
    }

    /// Runs `redis-cli` against this server.
    fn cli(&self, args: &[&str]) {
        let status = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli {args:?}");
    }
}

#[cfg(feature = "test-util")]
mod conformance {
    use axum_sse::broadcast::conformance;

    use super::*;

    #[tokio::test]
    async fn foreign_ids_get_the_missed_events_event() {
        let Some(url) = redis_url() else { return };
        let feed = instance(&url, &unique_prefix()).await;
        conformance::foreign_ids_get_the_missed_events_event(&feed).await;
    }

    #[tokio::test]
    async fn publisher_ids_are_stored_once_and_resume() {
        let Some(url) = redis_url() else { return };
        let feed = instance(&url, &unique_prefix()).await;
        conformance::publisher_ids_are_stored_once_and_resume(&feed).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_publishes_from_two_instances_store_once() {
        let Some(url) = redis_url() else { return };
        let prefix = unique_prefix();
        let (a, b) = (instance(&url, &prefix).await, instance(&url, &prefix).await);
        for _ in 0..5 {
            let (before_a, before_b) = (a.stats().published(), b.stats().published());
            conformance::concurrent_identical_publishes_store_once(&a, &b).await;
            let stored = a.stats().published() + b.stats().published() - before_a - before_b;
            assert_eq!(stored, 51);
        }
    }

    #[tokio::test]
    async fn an_id_from_before_a_redis_restart_gets_the_missed_events_event() {
        if redis_url().is_none() {
            return;
        }
        let Some(mut redis) = OwnRedis::start() else {
            return;
        };
        let url = redis.url();
        let prefix = unique_prefix();
        let before = instance(&url, &prefix).await;
        conformance::a_lost_history_gets_the_missed_events_event(&before, async {
            // No persistence: the streams are gone.
            redis.restart();
            instance(&url, &prefix).await
        })
        .await;
    }

    #[tokio::test]
    async fn an_id_from_a_flushed_stream_gets_the_missed_events_event() {
        if redis_url().is_none() {
            return;
        }
        let Some(redis) = OwnRedis::start() else {
            return;
        };
        let feed = instance(&redis.url(), &unique_prefix()).await;
        // The same instance goes on after the flush.
        conformance::a_lost_history_gets_the_missed_events_event(&feed, async {
            redis.cli(&["FLUSHALL"]);
            feed.clone()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resuming_under_concurrent_publishing_has_no_gap_and_no_duplicate() {
        let Some(url) = redis_url() else { return };
        let seed = fastrand::u64(..);
        println!("seed {seed}");
        let prefix = unique_prefix();
        let publisher = instance(&url, &prefix).await;
        // Every subscription on a fresh instance, whose reader starts while
        // events are published.
        conformance::resuming_under_concurrent_publishing(
            &publisher,
            || instance(&url, &prefix),
            30,
            seed,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_topics_are_read_over_a_few_connections() {
    // `AXUM_SSE_TOPICS=100000` for the figure of the issue.
    let topics: usize = std::env::var("AXUM_SSE_TOPICS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    const ROUNDS: usize = 3;
    // The bound; the instance holds 2 (one reader, one publisher).
    const MAX_CONNECTIONS: usize = 4;
    if redis_url().is_none() {
        return;
    }
    let Some(redis) = OwnRedis::start() else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix();
    let b = Broadcast::builder()
        .key_prefix(&prefix)
        .buffer(8)
        .connect_redis(&url)
        .await
        .unwrap();
    let mut subscriptions = Vec::with_capacity(topics);
    for n in 0..topics {
        subscriptions.push(b.subscribe(&format!("user-{n}"), None).await.unwrap());
    }
    assert_eq!(b.stats().subscribers(), topics);
    // Only this instance is connected now.
    let held = redis.clients();
    println!("{topics} topics, one subscriber each: {held} Redis connections");
    assert!(
        held <= MAX_CONNECTIONS,
        "{held} connections for {topics} topics"
    );

    // Another instance publishes on every topic, round after round.
    let a = instance(&url, &prefix).await;
    let mut published = vec![Vec::new(); topics];
    for round in 0..ROUNDS {
        for (n, ids) in published.iter_mut().enumerate() {
            let topic = format!("user-{n}");
            ids.push(publish(&a, &topic, &format!("{n}/{round}")).await);
        }
    }
    // Every event, in order, once (the last round shows that nothing came
    // twice before it).
    for (subscription, expected) in subscriptions.iter_mut().zip(&published) {
        for wire in expected {
            assert_eq!(text(&next(subscription).await), wire);
        }
    }
    // The publisher holds one connection (it reads no topic).
    let held = redis.clients() - 1;
    println!("after {} events: {held} Redis connections", topics * ROUNDS);
    assert!(
        held <= MAX_CONNECTIONS,
        "{held} connections for {topics} topics"
    );
    assert_eq!(b.stats().slow_disconnects(), 0);
}

#[tokio::test]
async fn connected_subscribers_go_on_across_a_flushall() {
    if redis_url().is_none() {
        return;
    }
    let Some(redis) = OwnRedis::start() else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix();
    let a = instance(&url, &prefix).await;
    let b = instance(&url, &prefix).await;
    let mut subscription = b.subscribe("t", None).await.unwrap();
    let mut published = Vec::new();
    for n in 1..=3 {
        published.push(publish(&a, "t", &n.to_string()).await);
    }
    for expected in &published {
        assert_eq!(text(&next(&mut subscription).await), expected);
    }
    redis.cli(&["FLUSHALL"]);
    // Published after the flush: a new history, delivered to the subscriber
    // that was there, in order, once, after the missed-events event (what
    // the flush took before this instance read it is gone).
    let mut after = Vec::new();
    for n in 4..=6 {
        after.push(publish(&a, "t", &n.to_string()).await);
    }
    assert_eq!(
        text(&next(&mut subscription).await),
        "event: missed\ndata:\n\n"
    );
    for expected in &after {
        assert_eq!(text(&next(&mut subscription).await), expected);
    }
    // A client resuming from before the flush is told it missed events.
    let mut resumed = b.subscribe("t", Some(id_of(&published[2]))).await.unwrap();
    assert!(resumed.missed_events());
    assert_eq!(text(&next(&mut resumed).await), "event: missed\ndata:\n\n");
    for expected in &after {
        assert_eq!(text(&next(&mut resumed).await), expected);
    }
    let last = publish(&a, "t", "7").await;
    assert_eq!(text(&next(&mut subscription).await), last);
    assert_eq!(text(&next(&mut resumed).await), last);
}

#[tokio::test]
async fn publisher_ids_are_forgotten_with_their_trimmed_events() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let feed = Broadcast::builder()
        .key_prefix(&prefix)
        .history(10)
        .connect_redis(&url)
        .await
        .unwrap();
    for n in 0..600 {
        let id = format!("p-{n}");
        let returned = feed
            .publish("t", Event::new().id(&id).data(n.to_string()))
            .await
            .unwrap();
        assert_eq!(returned, id);
    }
    // The id map is trimmed with the stream (`MAXLEN ~ 10` keeps whole
    // blocks of 100 or so), never grows with what was published.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stream: usize = redis::cmd("XLEN")
        .arg(format!("{prefix}t"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let ids: usize = redis::cmd("HLEN")
        .arg(format!("{prefix}\0ids\0t"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let order: usize = redis::cmd("LLEN")
        .arg(format!("{prefix}\0order\0t"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(stream < 300, "{stream}");
    assert_eq!((ids, order), (stream, stream));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}\0ids\0t"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "the id map expires with the stream: {ttl}");

    // A trimmed id is foreign: the missed-events event; and free again: a
    // publish with it is stored.
    let mut resumed = feed.subscribe("t", Some("p-0")).await.unwrap();
    assert!(resumed.missed_events());
    assert_eq!(text(&next(&mut resumed).await), "event: missed\ndata:\n\n");
    let kept = next(&mut resumed).await;
    assert!(text(&kept).starts_with("data: "), "{}", text(&kept));
    let before = feed.stats().published();
    feed.publish("t", Event::new().id("p-0").data("again"))
        .await
        .unwrap();
    feed.publish("t", Event::new().id("p-599").data("retry"))
        .await
        .unwrap();
    assert_eq!(feed.stats().published(), before + 1);
    let mut exact = feed.subscribe("t", Some("p-599")).await.unwrap();
    assert!(!exact.missed_events());
    assert_eq!(text(&next(&mut exact).await), "data: again\nid: p-0\n\n");
}

#[tokio::test]
async fn a_topic_cannot_name_the_crates_own_keys() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let feed = instance(&url, &prefix).await;
    // Topics from a URL path may start with NUL (`%00`): they are topics
    // like any other, and the instance's reader goes on for the others.
    let mut normal = feed.subscribe("t", None).await.unwrap();
    let mut odd = Vec::new();
    for topic in ["\0changes", "\0ids\0t", "\0order\0t"] {
        odd.push(feed.subscribe(topic, None).await.unwrap());
    }
    feed.publish("t", Event::new().id("x-1").data("1"))
        .await
        .unwrap();
    for (topic, subscription) in ["\0changes", "\0ids\0t", "\0order\0t"].iter().zip(&mut odd) {
        let id = feed.publish(topic, Event::new().data("odd")).await.unwrap();
        assert_eq!(text(&next(subscription).await), wire("odd", &id));
    }
    let id = publish(&feed, "t", "2").await;
    assert_eq!(text(&next(&mut normal).await), "data: 1\nid: x-1\n\n");
    assert_eq!(text(&next(&mut normal).await), id);
}

/// A TCP proxy to Redis that can lose one reply: the command reaches Redis
/// and runs, then the connection drops before its answer arrives, as when
/// a publisher times out on a slow network.
struct LossyProxy {
    addr: SocketAddr,
    lose_next_reply: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LossyProxy {
    async fn start(redis: &str) -> Self {
        use std::sync::{atomic::AtomicBool, Arc};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream: SocketAddr = redis
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()
            .expect("REDIS_URL of the form redis://127.0.0.1:PORT/");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lose_next_reply = Arc::new(AtomicBool::new(false));
        let lose = Arc::clone(&lose_next_reply);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let lose = Arc::clone(&lose);
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if lose.swap(false, std::sync::atomic::Ordering::SeqCst) {
                            // Dropping both halves closes the client's side.
                            return;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            lose_next_reply,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    fn lose_next_reply(&self) {
        self.lose_next_reply
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_publisher_that_retries_after_a_lost_answer_publishes_once() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let proxy = LossyProxy::start(&url).await;
    let publisher = instance(&proxy.url(), &prefix).await;
    let reader = instance(&url, &prefix).await;
    let mut live = reader.subscribe("orders", None).await.unwrap();

    publish(&publisher, "orders", "before").await;
    proxy.lose_next_reply();
    let err = publisher
        .publish("orders", Event::new().id("order-7").data("7"))
        .await
        .unwrap_err();
    assert!(err.is_backend(), "{err}");
    // The publisher cannot know whether Redis took it: it retries, with
    // the same id, until it gets an answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match publisher
            .publish("orders", Event::new().id("order-7").data("7"))
            .await
        {
            Ok(id) => break assert_eq!(id, "order-7"),
            Err(err) => {
                assert!(err.is_backend() && Instant::now() < deadline, "{err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let after = publish(&publisher, "orders", "after").await;
    assert!(text(&next(&mut live).await).starts_with("data: before\n"));
    assert_eq!(text(&next(&mut live).await), "data: 7\nid: order-7\n\n");
    // Not twice: the next event is the next one.
    assert_eq!(text(&next(&mut live).await), after);
}

/// Reads complete events from an HTTP event stream until `count` data
/// events arrived or the stream ends (the server died); the data and id of
/// each, and whether the stream ended.
async fn read_events(
    body: &mut hyper::body::Incoming,
    buffer: &mut String,
    count: usize,
) -> (Vec<(String, String)>, bool) {
    use http_body_util::BodyExt;
    let mut events = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::to_owned)
            };
            if let (Some(data), Some(id)) = (field("data: "), field("id: ")) {
                events.push((data, id));
            } else {
                assert!(
                    !block.contains("event: missed"),
                    "an exact resume: {block:?}"
                );
            }
            if events.len() == count {
                return (events, false);
            }
        }
        match tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("no data within 20 s")
        {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
            // The server is gone (an error) or ended the stream.
            _ => return (events, true),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_dead_instance_resume_exactly_on_another() {
    const CLIENTS: usize = 5;
    const EVENTS: usize = 200;
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    // Instance A lives on a runtime of its own: shutting that down drops
    // its server, its connections and its Redis reader at once, like a
    // process that dies.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr_a = {
        let (url, prefix) = (url.clone(), prefix.clone());
        doomed
            .spawn(async move { serve_feed(instance(&url, &prefix).await).await })
            .await
            .unwrap()
    };
    let addr_b = serve_feed(instance(&url, &prefix).await).await;
    let publisher = instance(&url, &prefix).await;
    let first = publisher
        .publish("t", Event::new().data("start"))
        .await
        .unwrap();

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let body = fetch_resuming(addr_a, "/events/t", &first)
            .await
            .into_body();
        clients.push((body, String::new(), Vec::new()));
    }
    let mut published = Vec::new();
    let publish_range = |range: std::ops::Range<usize>| {
        let publisher = publisher.clone();
        async move {
            let mut ids = Vec::new();
            for n in range {
                let event = Event::new().data(n.to_string());
                let id = publisher.publish("t", event).await.unwrap();
                ids.push((n.to_string(), id));
            }
            ids
        }
    };
    published.extend(publish_range(0..EVENTS / 2).await);
    // Every client reads a part on A.
    for (n, (body, buffer, received)) in clients.iter_mut().enumerate() {
        let (events, ended) = read_events(body, buffer, 10 + 7 * n).await;
        assert!(!ended);
        received.extend(events);
    }
    doomed.shutdown_background();
    // Published once A is gone: every client must resume on B.
    published.extend(publish_range(EVENTS / 2..EVENTS).await);
    // Each client reads what A still sent, then reconnects to B with the
    // last id it saw and reads the rest.
    for (body, buffer, received) in &mut clients {
        let (events, ended) = read_events(body, buffer, EVENTS).await;
        assert!(ended, "A is gone");
        received.extend(events);
        let last = received.last().unwrap().1.clone();
        let mut resumed = fetch_resuming(addr_b, "/events/t", &last).await.into_body();
        let mut buffer = String::new();
        let (events, ended) = read_events(&mut resumed, &mut buffer, EVENTS - received.len()).await;
        assert!(!ended);
        received.extend(events);
    }
    for (_, _, received) in &clients {
        assert_eq!(received, &published, "every event once, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_killed_mid_publish_loses_and_repeats_nothing_acknowledged() {
    const EVENTS: usize = 300;
    if redis_url().is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let Some(mut redis) = OwnRedis::start_persistent() else {
        return;
    };
    let url = redis.url();
    let prefix = unique_prefix();
    let publisher = instance(&url, &prefix).await;
    let reader = instance(&url, &prefix).await;
    let mut live = reader.subscribe("t", None).await.unwrap();
    let halfway = std::sync::Arc::new(tokio::sync::Notify::new());
    let task = {
        let halfway = std::sync::Arc::clone(&halfway);
        tokio::spawn(async move {
            let mut failures = 0;
            for n in 0..EVENTS {
                if n == EVENTS / 2 {
                    halfway.notify_one();
                }
                // Retried with the same id until Redis answers: an answer
                // lost to the kill must not store the event twice.
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let event = Event::new().id(format!("e-{n}")).data(n.to_string());
                    match publisher.publish("t", event).await {
                        Ok(_) => break,
                        Err(err) => {
                            assert!(err.is_backend() && Instant::now() < deadline, "{err}");
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            failures
        })
    };
    halfway.notified().await;
    // SIGKILL mid-publish: no shutdown, what is fsynced is what survives.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    let failures = task.await.unwrap();
    println!("{failures} publishes failed while Redis was away");
    assert!(failures > 0, "Redis went away while publishing");
    for n in 0..EVENTS {
        assert_eq!(
            text(&next(&mut live).await),
            format!("data: {n}\nid: e-{n}\n\n"),
            "every acknowledged event once, in order"
        );
    }
    // The reader instance has not spoken to Redis since the restart: its
    // first command may find the old connection dead (a `Backend` error, as
    // documented), so it retries, with an id of its own to store it once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(err) = reader
        .publish("t", Event::new().id("end").data("end"))
        .await
    {
        assert!(err.is_backend() && Instant::now() < deadline, "{err}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        text(&next(&mut live).await),
        "data: end\nid: end\n\n",
        "nothing twice"
    );
    assert_eq!(reader.stats().slow_disconnects(), 0);
}
