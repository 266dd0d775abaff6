//! Resumable responses shared over Redis by two instances, each a real
//! `axum::serve` on loopback: a reply started on one is resumed on the
//! other, and a shutdown of one drains its clients onto the other.
//!
//! `REDIS_URL` names the server (`eval "$(.ci/redis.sh)"` starts one).
//! Without it the tests fail when `CI` is set and are skipped (with a note)
//! otherwise.
#![cfg(feature = "redis")]

mod common;
#[path = "resumable_support/mod.rs"]
mod support;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use http::StatusCode;
use http_body_util::BodyExt;

use axum_sse::{
    resumable::{ResumableResponses, Resume},
    Event, SseShutdown,
};
use common::{redis_url, serve};
use futures_util::StreamExt;
use support::*;

fn unique_prefix() -> String {
    format!("axum-sse-test:{:016x}:response:", fastrand::u64(..))
}

/// Two stores on one Redis under `prefix`, as two instances would be; B's
/// readers give a silent log `b_ttl` (default: the store's).
async fn two_stores(
    url: &str,
    prefix: &str,
    b_ttl: Option<Duration>,
) -> (ResumableResponses, ResumableResponses) {
    let builder = || ResumableResponses::builder().key_prefix(prefix);
    let a = builder().connect_redis(url).await.unwrap();
    let b = match b_ttl {
        Some(ttl) => builder().ttl(ttl),
        None => builder(),
    };
    (a, b.connect_redis(url).await.unwrap())
}

async fn instance(url: &str, prefix: &str, shutdown: Option<SseShutdown>) -> (SocketAddr, App) {
    let mut builder = ResumableResponses::builder()
        .key_prefix(prefix)
        .ttl(Duration::from_secs(60))
        .max_live(5_000)
        .drain_window(Duration::from_secs(2));
    if let Some(shutdown) = shutdown {
        builder = builder.shutdown(shutdown);
    }
    let app = app(builder.connect_redis(url).await.unwrap());
    (serve(router(app.clone())).await, app)
}

#[tokio::test]
async fn a_reply_started_on_one_instance_is_resumed_on_the_other_exactly() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let (a, app_a) = instance(&url, &prefix, None).await;
    let (b, app_b) = instance(&url, &prefix, None).await;
    let mut rng = fastrand::Rng::with_seed(1414);
    let n = 30;
    for (round, pause_ms) in [0, 0, 50, 200, 1_500].into_iter().enumerate() {
        let id = start_reply(a, n, 10).await;
        let drop_at = rng.usize(1..=n);
        let (status, first) = read_events(a, &id, None, Some(drop_at)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(count_events(&first), drop_at);
        let (_, last) = whole_events(&first);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let (status, rest) = read_events(b, &id, last.as_deref(), None).await;
        assert_eq!(status, StatusCode::OK);
        // The last event id alone names the reply, on the other instance.
        let (status, named) = read_path(b, "/resume", last.as_deref(), None).await;
        assert_eq!((status, &named), (StatusCode::OK, &rest));
        let mut joined = first;
        joined.extend_from_slice(&rest);
        assert_eq!(reply_of(&joined), reply_text(n), "drop at {drop_at}");
        // Byte for byte one uninterrupted read, on either instance.
        for addr in [a, b] {
            let (_, whole) = read_events(addr, &id, None, None).await;
            assert_eq!(
                String::from_utf8_lossy(&joined),
                String::from_utf8_lossy(&whole)
            );
        }
        let (_, last) = whole_events(&joined);
        let (status, _) = read_events(b, &id, last.as_deref(), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "read to its end");
        assert_eq!(app_a.generations.load(Ordering::SeqCst), round + 1);
    }
    assert_eq!(app_b.generations.load(Ordering::SeqCst), 0);
    // An id B never saw and Redis never had.
    let (status, _) = read_events(b, "0123456789abcdef", None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn another_instance_tells_a_live_log_from_a_missing_one_at_once() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let (a, b) = two_stores(&url, &prefix, None).await;
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let id = a
        .start(|mut sink| async move {
            let _ = wait.await;
            sink.send(Event::new().data("late")).await
        })
        .await
        .unwrap();
    // Only the start marker is in the log: B finds it all the same.
    let Resume::Stream(mut stream) = b.resume(&id, None).await.unwrap() else {
        panic!("a live log with no event yet was taken for a missing one")
    };
    go.send(()).unwrap();
    let event = stream.next().await.unwrap();
    assert!(
        event.as_bytes().starts_with(b"data: late\nid: "),
        "{event:?}"
    );
    assert!(stream.next().await.is_none(), "the response ended");
    // Its Redis stream gone (expired, deleted): B has nothing to read.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let deleted: u32 = redis::cmd("DEL")
        .arg(format!("{prefix}{id}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "the log's key is {prefix}{id}");
    assert!(matches!(
        b.resume(&id, None).await.unwrap(),
        Resume::NotFound
    ));
}

#[tokio::test]
async fn a_cancel_on_another_instance_stops_the_producer() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let (a, b) = two_stores(&url, &prefix, None).await;
    /// Tells when the producer's future is dropped: it was stopped.
    struct Stopped(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = self.0.take().map(|stopped| stopped.send(()));
        }
    }
    let (stopped, on_stopped) = tokio::sync::oneshot::channel();
    let id = a
        .start(move |mut sink| async move {
            let _stopped = Stopped(Some(stopped));
            sink.send(Event::new().data("first")).await?;
            std::future::pending().await
        })
        .await
        .unwrap();
    let Resume::Stream(mut reader) = b.resume(&id, None).await.unwrap() else {
        panic!("the response is on Redis")
    };
    let first = reader.next().await.unwrap();
    assert!(
        first.as_bytes().starts_with(b"data: first\nid: "),
        "{first:?}"
    );
    assert_eq!(a.live(), 1);
    assert!(
        b.cancel(&id).await.unwrap(),
        "B finds the response in Redis"
    );
    // Bounded, so a regression fails instead of hanging the suite.
    tokio::time::timeout(Duration::from_secs(10), on_stopped)
        .await
        .expect("the producer on A was stopped")
        .unwrap();
    let incomplete = reader.next().await.expect("B's reader is told");
    assert!(
        incomplete.as_bytes().starts_with(b"event: incomplete\n"),
        "{incomplete:?}"
    );
    assert!(
        reader.next().await.is_none(),
        "B's reader ends with the response"
    );
    common::eventually(Duration::from_secs(10), "A's slot freed", || a.live() == 0).await;
    // The response ended incomplete where it was: its one event, on either
    // instance; a second cancel changes nothing.
    for store in [&a, &b] {
        let Resume::Stream(stream) = store.resume(&id, None).await.unwrap() else {
            panic!("the log is kept for the TTL")
        };
        let events: Vec<_> = stream.collect().await;
        assert_eq!(events, vec![first.clone(), incomplete.clone()]);
    }
    assert!(b.cancel(&id).await.unwrap());
    assert!(
        !b.cancel("0123456789abcdef").await.unwrap(),
        "an unknown id"
    );
    assert!(
        !a.cancel("0123456789abcdef").await.unwrap(),
        "an unknown id"
    );
}

#[tokio::test]
async fn a_reader_tells_its_client_when_a_producer_elsewhere_goes_silent() {
    let Some(url) = redis_url() else { return };
    // B's readers wait one second of silence for another instance.
    let (a, b) = two_stores(&url, &unique_prefix(), Some(Duration::from_secs(1))).await;
    let id = a
        .start(|mut sink| async move {
            sink.send(Event::new().data("a")).await?;
            std::future::pending().await
        })
        .await
        .unwrap();
    let Resume::Stream(stream) = b.resume(&id, None).await.unwrap() else {
        panic!()
    };
    let events: Vec<_> = stream.collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].as_bytes().starts_with(b"data: a\nid: "));
    assert!(
        events[1]
            .as_bytes()
            .starts_with(b"event: incomplete\ndata: {\"error\""),
        "the client is told, not handed a cut reply as a whole one: {events:?}"
    );
    assert!(a.cancel(&id).await.unwrap());
}

/// How many streams the shutdown test holds open.
const STREAMS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_of_one_instance_drains_every_stream_onto_the_other() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let shutdown = SseShutdown::new();
    let (a, app_a) = instance(&url, &prefix, Some(shutdown.clone())).await;
    let (b, app_b) = instance(&url, &prefix, None).await;
    // 20 tokens, 100 ms apart, from when every stream is open: every reply
    // is being generated when the shutdown comes.
    let n = 20;
    app_a.gate.send_replace(false);
    let started = std::time::Instant::now();
    let opens: Vec<_> = (0..STREAMS)
        .map(|_| {
            tokio::spawn(async move {
                let id = start_reply(a, n, 100).await;
                let response = send(a, http::Method::GET, &format!("/replies/{id}"), None).await;
                assert_eq!(response.status(), StatusCode::OK);
                (id, response)
            })
        })
        .collect();
    let mut clients = Vec::new();
    for open in opens {
        let (id, response) = open.await.unwrap();
        clients.push(tokio::spawn(async move {
            // Reads A until it ends (the shutdown), then follows its retry
            // to B and reads the rest.
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            let (events, retry) = text
                .rsplit_once("retry: ")
                .unwrap_or_else(|| panic!("{id} ended without a retry: {text:?}"));
            // A lone line that ends no block, so no client dispatches it.
            let retry: u64 = retry.strip_suffix('\n').unwrap().parse().unwrap();
            assert!(retry <= 2_000, "{retry}");
            let (whole, last) = whole_events(events.as_bytes());
            assert_eq!(
                whole.len(),
                events.len(),
                "only whole events before the retry"
            );
            tokio::time::sleep(Duration::from_millis(retry)).await;
            let (status, rest) = read_events(b, &id, last.as_deref(), None).await;
            assert_eq!(status, StatusCode::OK, "{id} after {last:?}");
            let mut joined = whole.to_vec();
            joined.extend_from_slice(&rest);
            assert_eq!(reply_of(&joined), reply_text(n), "{id}");
            retry
        }));
    }
    eprintln!(
        "{STREAMS} replies started and read in {:?}",
        started.elapsed()
    );
    app_a.gate.send_replace(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.trigger();
    assert!(
        app_a.responses.drain(Duration::from_secs(60)).await,
        "every producer finished within the deadline"
    );
    let mut retries = Vec::new();
    for client in clients {
        retries.push(client.await.unwrap());
    }
    assert_eq!(
        app_a.generations.load(Ordering::SeqCst),
        STREAMS,
        "each generated once"
    );
    assert_eq!(app_b.generations.load(Ordering::SeqCst), 0);
    retries.sort_unstable();
    let spread = retries[retries.len() * 9 / 10] - retries[retries.len() / 10];
    assert!(
        spread > 1_000,
        "reconnects spread over the window: {spread} ms"
    );
}
