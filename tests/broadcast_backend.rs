//! A backend of one's own, built only through the public
//! [`axum_sse::broadcast::Backend`] trait: a `Mutex<Vec<_>>` log per topic
//! with its live feed, as naive as a backend can be. It passes the
//! conformance suite, so the trait is enough to bring another store.
#![cfg(feature = "test-util")]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use axum_sse::{
    broadcast::{
        conformance, Appended, Backend, BackendFuture, Broadcast, BroadcastError, Entry,
        Generation, LiveFeed, Position, Record, ResumePoint, Retention,
    },
    Event,
};
use futures_util::StreamExt;

/// Every topic's log; `Arc`, so that "another instance" shares it.
#[derive(Clone, Default)]
struct VecLog {
    topics: Arc<Mutex<HashMap<String, Log>>>,
}

struct Log {
    generation: Generation,
    /// The position of the next entry.
    next: u64,
    /// Retained entries with the time they were appended, oldest first.
    entries: Vec<(SystemTime, Entry)>,
    /// One live feed per instance whose subscribers watch the topic.
    feeds: Vec<LiveFeed>,
}

impl Log {
    fn new() -> Self {
        Self {
            generation: Generation::random(),
            next: 1,
            entries: Vec::new(),
            feeds: Vec::new(),
        }
    }

    /// Drops entries beyond the bounds.
    fn trim(&mut self, retention: &Retention) {
        let excess = self.entries.len().saturating_sub(retention.history());
        self.entries.drain(..excess);
        if let Some(cutoff) = retention.cutoff() {
            self.entries.retain(|(at, _)| *at >= cutoff);
        }
    }

    /// The position of the oldest retained entry (the next one if none).
    fn first(&self) -> u64 {
        self.entries
            .first()
            .map_or(self.next, |(_, entry)| entry.position().major())
    }
}

impl VecLog {
    /// Loses every history, as a store that was wiped.
    fn wipe(&self) {
        let mut topics = self.topics.lock().unwrap();
        for log in topics.values_mut() {
            let feeds = std::mem::take(&mut log.feeds);
            *log = Log::new();
            log.feeds = feeds;
        }
    }

    fn with_log<R>(&self, topic: &str, f: impl FnOnce(&mut Log) -> R) -> R {
        let mut topics = self.topics.lock().unwrap();
        f(topics.entry(topic.to_owned()).or_insert_with(Log::new))
    }
}

impl Backend for VecLog {
    fn append<'a>(
        &'a self,
        topic: &'a str,
        record: Record,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Appended, BroadcastError>> {
        let result = self.with_log(topic, |log| {
            log.trim(retention);
            if let Some(id) = record.publisher_id() {
                if log
                    .entries
                    .iter()
                    .any(|(_, e)| e.publisher_id() == Some(id))
                {
                    return Ok(Appended::Duplicate);
                }
            }
            let position = Position::from(log.next);
            let entry = record.into_entry(position, log.generation)?;
            for feed in &log.feeds {
                feed.send(Position::from(log.next - 1), &entry);
            }
            log.next += 1;
            log.entries.push((SystemTime::now(), entry));
            log.trim(retention);
            Ok(Appended::Stored {
                position,
                generation: log.generation,
            })
        });
        Box::pin(async move { result })
    }

    fn newest<'a>(
        &'a self,
        topic: &'a str,
    ) -> BackendFuture<'a, Result<Option<(Position, Generation)>, BroadcastError>> {
        let newest = self.with_log(topic, |log| {
            log.entries
                .last()
                .map(|(_, entry)| (entry.position(), log.generation))
        });
        Box::pin(async move { Ok(newest) })
    }

    fn locate<'a>(
        &'a self,
        topic: &'a str,
        from: ResumePoint<'a>,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Option<Position>, BroadcastError>> {
        let found = self.with_log(topic, |log| {
            log.trim(retention);
            match from {
                ResumePoint::Channel {
                    generation,
                    position,
                } => {
                    let n = position.major();
                    // Retained, or the last one dropped: nothing after it
                    // was lost.
                    (generation == log.generation
                        && position.minor() == 0
                        && n < log.next
                        && n + 1 >= log.first())
                    .then_some(position)
                }
                ResumePoint::Publisher(id) => log
                    .entries
                    .iter()
                    .find(|(_, e)| e.publisher_id() == Some(id))
                    .map(|(_, e)| e.position()),
                _ => None,
            }
        });
        Box::pin(async move { Ok(found) })
    }

    fn read<'a>(
        &'a self,
        topic: &'a str,
        after: Position,
        until: Option<Position>,
        limit: usize,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Vec<Entry>, BroadcastError>> {
        let entries = self.with_log(topic, |log| {
            log.trim(retention);
            log.entries
                .iter()
                .map(|(_, entry)| entry)
                .filter(|e| e.position() > after && until.map_or(true, |u| e.position() <= u))
                .take(limit)
                .cloned()
                .collect()
        });
        Box::pin(async move { Ok(entries) })
    }

    fn watch(&self, topic: &str, feed: LiveFeed) {
        self.with_log(topic, |log| {
            log.feeds.retain(|f| !f.is_closed());
            log.feeds.push(feed);
        });
    }

    fn unwatch(&self, topic: &str, feed: &LiveFeed) {
        self.with_log(topic, |log| log.feeds.retain(|f| !f.same_as(feed)));
    }
}

fn broadcast(log: &VecLog) -> Broadcast {
    Broadcast::builder().backend(log.clone())
}

#[tokio::test]
async fn publish_and_resume_through_a_users_backend() {
    let log = VecLog::default();
    let feed = broadcast(&log);
    let mut live = feed.subscribe("news", None).await.unwrap();
    let a = feed.publish("news", Event::new().data("a")).await.unwrap();
    let b = feed.publish("news", Event::new().data("b")).await.unwrap();
    let next = live.next().await.unwrap();
    assert_eq!(next.as_bytes(), format!("data: a\nid: {a}\n\n").as_bytes());
    let mut resumed = feed.subscribe("news", Some(&a)).await.unwrap();
    assert!(!resumed.missed_events());
    let next = resumed.next().await.unwrap();
    assert_eq!(next.as_bytes(), format!("data: b\nid: {b}\n\n").as_bytes());
    assert_eq!(feed.stats().published(), 2);
    assert_eq!(feed.stats().subscribers(), 2);
    drop((live, resumed));
    assert_eq!(feed.stats().subscribers(), 0);
    // The topic's feed went back to the backend.
    assert!(log.topics.lock().unwrap()["news"].feeds.is_empty());
}

#[tokio::test]
async fn foreign_ids_get_the_missed_events_event() {
    conformance::foreign_ids_get_the_missed_events_event(&broadcast(&VecLog::default())).await;
}

#[tokio::test]
async fn a_lost_history_gets_the_missed_events_event() {
    let log = VecLog::default();
    let feed = broadcast(&log);
    conformance::a_lost_history_gets_the_missed_events_event(&feed, async {
        log.wipe();
        feed.clone()
    })
    .await;
}

#[tokio::test]
async fn publisher_ids_are_stored_once_and_resume() {
    conformance::publisher_ids_are_stored_once_and_resume(&broadcast(&VecLog::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_publishes_store_once() {
    let log = VecLog::default();
    // Two instances over one store.
    conformance::concurrent_identical_publishes_store_once(&broadcast(&log), &broadcast(&log))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_under_concurrent_publishing_has_no_gap_and_no_duplicate() {
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let log = VecLog::default();
    let publisher = broadcast(&log);
    // Every subscription on a new instance over the same store.
    conformance::resuming_under_concurrent_publishing(
        &publisher,
        || {
            let log = log.clone();
            async move { broadcast(&log) }
        },
        100,
        seed,
    )
    .await;
}
