//! The in-memory backend: one process; positions `1`, `2`, … per topic, in a
//! generation drawn when the topic is created.
//!
//! Every operation is synchronous under the topic's lock: an append stores
//! the entry and hands it to the live feed in one step, so the feed never
//! has a gap to fill (each delivery names the position just before it).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::util::sync::lock;

use super::{
    backend::{Appended, BackendFuture, Entry, LiveFeed, Record, ResumePoint, Retention},
    position::Generation,
    Backend, BroadcastError, Position,
};

#[derive(Default)]
pub(super) struct Memory {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

struct Topic {
    state: Mutex<TopicState>,
}

struct TopicState {
    /// Drawn when the topic is created: ids of another process, or of
    /// another topic, name another generation.
    generation: Generation,
    /// The position of the next event. Never reused: a topic that has
    /// published is never dropped, so an old id can never point at a
    /// different event.
    next: u64,
    /// Retained events, oldest first, with consecutive positions.
    history: VecDeque<Stored>,
    /// The publisher ids of retained events, and their positions.
    publisher_ids: HashMap<Arc<str>, u64>,
    /// The live feed, while the topic has subscribers (its buffer belongs
    /// to the feed: a topic nobody listens to holds none).
    live: Option<LiveFeed>,
    /// Removed from the map: whoever holds it must look the topic up again.
    retired: bool,
}

struct Stored {
    /// Set only when a maximum age is.
    at: Option<Instant>,
    entry: Entry,
}

/// An answer that is ready: the in-memory backend never waits.
fn ready<'a, T: Send + 'a>(value: T) -> BackendFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Memory {
    /// Runs `f` on the state of `name`, created if missing, under its lock.
    fn with_topic<R>(
        &self,
        name: &str,
        retention: Option<&Retention>,
        f: impl FnOnce(&mut TopicState) -> R,
    ) -> R {
        loop {
            let topic = {
                let mut topics = lock(&self.topics);
                match topics.get(name) {
                    Some(topic) => Arc::clone(topic),
                    None => {
                        let topic = Arc::new(Topic {
                            state: Mutex::new(TopicState {
                                generation: Generation::random(),
                                next: 1,
                                history: VecDeque::new(),
                                publisher_ids: HashMap::new(),
                                live: None,
                                retired: false,
                            }),
                        });
                        topics.insert(name.to_owned(), Arc::clone(&topic));
                        topic
                    }
                }
            };
            let mut state = lock(&topic.state);
            if !state.retired {
                if let Some(retention) = retention {
                    state.expire(retention);
                }
                return f(&mut state);
            }
        }
    }

    /// Runs `f` on the state of `name` under its lock, if the topic exists:
    /// reading a topic never creates it.
    fn with_existing<R>(
        &self,
        name: &str,
        retention: Option<&Retention>,
        f: impl FnOnce(&mut TopicState) -> R,
    ) -> Option<R> {
        let topic = Arc::clone(lock(&self.topics).get(name)?);
        let mut state = lock(&topic.state);
        if state.retired {
            // Retired only when it never published: nothing to read.
            return None;
        }
        if let Some(retention) = retention {
            state.expire(retention);
        }
        Some(f(&mut state))
    }

    fn append(
        &self,
        name: &str,
        record: Record,
        retention: &Retention,
    ) -> Result<Appended, BroadcastError> {
        self.with_topic(name, Some(retention), |state| {
            // A retry of a publish still in the history: stored once.
            if let Some(id) = record.publisher_id() {
                if state.publisher_ids.contains_key(id) {
                    return Ok(Appended::Duplicate);
                }
            }
            let position = state.next;
            let entry = record.into_entry(position.into(), state.generation)?;
            state.push(retention, entry);
            Ok(Appended::Stored {
                position: position.into(),
                generation: state.generation,
            })
        })
    }

    fn locate(&self, name: &str, from: ResumePoint<'_>, retention: &Retention) -> Option<Position> {
        self.with_existing(name, Some(retention), |state| {
            let first = state.history.front().map_or(state.next, |s| s.position());
            match from {
                ResumePoint::Publisher(id) => state.publisher_ids.get(id).map(|&p| p.into()),
                // Known if it is retained or the one just before the oldest
                // retained (nothing after it was dropped).
                ResumePoint::Channel {
                    generation,
                    position,
                } => (generation == state.generation
                    && position.minor() == 0
                    && position.major() < state.next
                    && position.major() + 1 >= first)
                    .then_some(position),
            }
        })
        .flatten()
    }

    fn read(
        &self,
        name: &str,
        after: Position,
        until: Option<Position>,
        limit: usize,
        retention: &Retention,
    ) -> Vec<Entry> {
        self.with_existing(name, Some(retention), |state| {
            let first = state.history.front().map_or(state.next, |s| s.position());
            // Consecutive positions: the first one after `after` is found
            // by arithmetic.
            let skip = usize::try_from(after.major().saturating_add(1).saturating_sub(first))
                .unwrap_or(usize::MAX);
            state
                .history
                .iter()
                .skip(skip)
                .take_while(|s| until.map_or(true, |until| s.entry.position() <= until))
                .take(limit)
                .map(|s| s.entry.clone())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Frees the live feed of `topic` once nobody listens to it, and forgets
    /// the topic if it never published (a topic with ids handed out stays,
    /// so its ids are never reused).
    fn release(&self, name: &str, feed: &LiveFeed) {
        let mut topics = lock(&self.topics);
        let Some(topic) = topics.get(name).cloned() else {
            return;
        };
        let mut state = lock(&topic.state);
        if state.live.as_ref().is_some_and(|live| live.same_as(feed)) {
            state.live = None;
        }
        if state.next == 1 && state.live.is_none() {
            state.retired = true;
            topics.remove(name);
        }
    }
}

impl Backend for Memory {
    fn append<'a>(
        &'a self,
        topic: &'a str,
        record: Record,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Appended, BroadcastError>> {
        ready(self.append(topic, record, retention))
    }

    fn newest<'a>(
        &'a self,
        topic: &'a str,
    ) -> BackendFuture<'a, Result<Option<(Position, Generation)>, BroadcastError>> {
        let newest = self.with_existing(topic, None, |state| {
            (state.next > 1).then(|| (Position::from(state.next - 1), state.generation))
        });
        ready(Ok(newest.flatten()))
    }

    fn locate<'a>(
        &'a self,
        topic: &'a str,
        from: ResumePoint<'a>,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Option<Position>, BroadcastError>> {
        ready(Ok(self.locate(topic, from, retention)))
    }

    fn read<'a>(
        &'a self,
        topic: &'a str,
        after: Position,
        until: Option<Position>,
        limit: usize,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Vec<Entry>, BroadcastError>> {
        ready(Ok(self.read(topic, after, until, limit, retention)))
    }

    fn watch(&self, topic: &str, feed: LiveFeed) {
        self.with_topic(topic, None, |state| state.live = Some(feed));
    }

    fn unwatch(&self, topic: &str, feed: &LiveFeed) {
        self.release(topic, feed);
    }
}

impl Stored {
    fn position(&self) -> u64 {
        self.entry.position().major()
    }
}

impl TopicState {
    /// Appends `entry` (at the next position), drops the oldest beyond the
    /// history, and sends it live.
    fn push(&mut self, retention: &Retention, entry: Entry) {
        let position = self.next;
        self.next += 1;
        if let Some(publisher_id) = entry.publisher_id() {
            self.publisher_ids.insert(Arc::from(publisher_id), position);
        }
        if let Some(live) = &self.live {
            live.send(Position::from(position - 1), &entry);
        }
        let at = retention.max_age().map(|_| Instant::now());
        self.history.push_back(Stored { at, entry });
        if self.history.len() > retention.history() {
            self.pop_oldest();
        }
    }

    /// Drops the oldest retained event, and its publisher id.
    fn pop_oldest(&mut self) {
        if let Some(stored) = self.history.pop_front() {
            if let Some(publisher_id) = stored.entry.publisher_id() {
                self.publisher_ids.remove(publisher_id);
            }
        }
    }

    /// Drops events older than the maximum age.
    fn expire(&mut self, retention: &Retention) {
        let Some(max_age) = retention.max_age() else {
            return;
        };
        let now = Instant::now();
        while self
            .history
            .front()
            .and_then(|stored| stored.at)
            .is_some_and(|at| now.duration_since(at) >= max_age)
        {
            self.pop_oldest();
        }
    }
}
