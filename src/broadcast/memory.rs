//! The in-memory backend: one process; positions `1`, `2`, … per topic, in a
//! generation drawn when the topic is created.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Instant,
};

use futures_util::{stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{util::sync::lock, EncodedEvent, Event};

use super::{
    builder::Config,
    position::{self, Generation},
    stats::Counters,
    wire::{self, Prepared},
    BroadcastError, BroadcastStatsSnapshot, Subscription,
};

pub(super) struct Memory {
    config: Config,
    counters: Arc<Counters>,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

struct Topic {
    state: Mutex<TopicState>,
}

struct TopicState {
    /// Drawn when the topic is created: ids of another process, or of
    /// another topic, name another generation.
    generation: Generation,
    /// The position of the next event. Never reused: a topic that has published is
    /// never dropped, so an old id can never point at a different event.
    next: u64,
    /// Retained events, oldest first, with consecutive ids.
    history: VecDeque<Entry>,
    /// The publisher ids of retained events, and their positions.
    publisher_ids: HashMap<Arc<str>, u64>,
    live: broadcast::Sender<EncodedEvent>,
    /// Removed from the map: whoever holds it must look the topic up again.
    retired: bool,
}

struct Entry {
    id: u64,
    /// The publisher's id, if the event came with one.
    publisher_id: Option<Arc<str>>,
    /// Set only when a maximum age is.
    at: Option<Instant>,
    event: EncodedEvent,
}

impl Memory {
    pub(super) fn new(config: Config) -> Self {
        Self {
            config,
            counters: Arc::default(),
            topics: Mutex::default(),
        }
    }

    pub(super) fn stats(&self) -> BroadcastStatsSnapshot {
        self.counters.snapshot()
    }

    /// Runs `f` on the state of `name`, created if missing, under its lock.
    fn with_topic<R>(&self, name: &str, f: impl FnOnce(&Arc<Topic>, &mut TopicState) -> R) -> R {
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
                                live: broadcast::channel(self.config.buffer).0,
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
                state.expire(&self.config);
                return f(&topic, &mut state);
            }
        }
    }

    pub(super) fn publish(&self, name: &str, event: Event) -> Result<String, BroadcastError> {
        match wire::prepare(event)? {
            Prepared::Channel(event) => self.with_topic(name, |_, state| {
                let id = state.next;
                let text = position::format_id(state.generation, id);
                let event = wire::encode_with_id(event, text.as_str())?;
                state.push(&self.config, None, event);
                self.counters.published();
                Ok(text)
            }),
            Prepared::Publisher { id, stored } => {
                let event = wire::with_id(&stored, &id).expect("an event's own wire form");
                self.with_topic(name, |_, state| {
                    // A retry of a publish still in the history: stored once.
                    if !state.publisher_ids.contains_key(id.as_str()) {
                        state.push(&self.config, Some(Arc::from(id.as_str())), event);
                        self.counters.published();
                    }
                    Ok(id)
                })
            }
        }
    }

    pub(super) fn subscribe(
        self: &Arc<Self>,
        name: &str,
        last_event_id: Option<&str>,
    ) -> Subscription {
        let (topic, live, missed, replay) = self.with_topic(name, |topic, state| {
            // Under the topic's lock no event is published: the snapshot ends
            // exactly where the live receiver starts.
            let live = state.live.subscribe();
            let (missed, replay) = match last_event_id {
                None => (false, Vec::new()),
                Some(id) => state.replay_after(id),
            };
            (Arc::clone(topic), live, missed, replay)
        });
        let counters = Arc::clone(&self.counters);
        let head = missed
            .then(|| self.config.missed.clone())
            .into_iter()
            .chain(replay);
        let live = stream::unfold(
            (live, Arc::clone(&counters)),
            |(mut live, counters)| async move {
                match live.recv().await {
                    Ok(event) => Some((event, (live, counters))),
                    Err(RecvError::Lagged(_)) => {
                        counters.slow_disconnect();
                        None
                    }
                    Err(RecvError::Closed) => None,
                }
            },
        );
        let memory = Arc::clone(self);
        let name = name.to_owned();
        Subscription::new(
            stream::iter(head).chain(live).boxed(),
            missed,
            counters,
            Some(Box::new(move || memory.release(&name, &topic))),
        )
    }

    /// Forgets `topic` once nobody listens to it, if it never published
    /// (a topic with ids handed out stays, so its ids are never reused).
    fn release(&self, name: &str, topic: &Arc<Topic>) {
        let mut topics = lock(&self.topics);
        if !topics.get(name).is_some_and(|t| Arc::ptr_eq(t, topic)) {
            return;
        }
        let mut state = lock(&topic.state);
        if state.next == 1 && state.live.receiver_count() == 0 {
            state.retired = true;
            topics.remove(name);
        }
    }
}

impl TopicState {
    /// Appends `event` at the next position, drops the oldest beyond the
    /// history, and sends it live.
    fn push(&mut self, config: &Config, publisher_id: Option<Arc<str>>, event: EncodedEvent) {
        let id = self.next;
        self.next += 1;
        if let Some(publisher_id) = &publisher_id {
            self.publisher_ids.insert(Arc::clone(publisher_id), id);
        }
        let at = config.max_age.map(|_| Instant::now());
        self.history.push_back(Entry {
            id,
            publisher_id,
            at,
            event: event.clone(),
        });
        if self.history.len() > config.history {
            self.pop_oldest();
        }
        // No receivers is not an error: the event is in the history.
        let _ = self.live.send(event);
    }

    /// Drops the oldest retained event, and its publisher id.
    fn pop_oldest(&mut self) {
        if let Some(Entry {
            publisher_id: Some(publisher_id),
            ..
        }) = self.history.pop_front()
        {
            self.publisher_ids.remove(&publisher_id);
        }
    }

    /// Drops events older than the maximum age.
    fn expire(&mut self, config: &Config) {
        let Some(max_age) = config.max_age else {
            return;
        };
        let now = Instant::now();
        while self
            .history
            .front()
            .and_then(|entry| entry.at)
            .is_some_and(|at| now.duration_since(at) >= max_age)
        {
            self.pop_oldest();
        }
    }

    /// Whether events were missed, and the retained events to replay for a
    /// client whose last event was `id`. An id of another generation (another
    /// process, another topic) or not of the channel's making is unknown; a
    /// publisher id is known while its event is retained.
    fn replay_after(&self, id: &str) -> (bool, Vec<EncodedEvent>) {
        let first = self.history.front().map_or(self.next, |entry| entry.id);
        // `id` is known if it is retained or the one just before the oldest
        // retained (nothing after it was dropped).
        let known = self.publisher_ids.get(id).copied().or_else(|| {
            position::split_id(id)
                .filter(|&(generation, _)| generation == self.generation)
                .and_then(|(_, position)| parse_id(position))
                .filter(|&id| id < self.next && id + 1 >= first)
        });
        let skip = match known {
            Some(id) => (id + 1 - first) as usize,
            None => 0,
        };
        let replay = self
            .history
            .iter()
            .skip(skip)
            .map(|entry| entry.event.clone())
            .collect();
        (known.is_none(), replay)
    }
}

/// A decimal id exactly as the channel writes it (no sign, no leading zero).
fn parse_id(id: &str) -> Option<u64> {
    let canonical = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then(|| id.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_decimals() {
        assert_eq!(parse_id("42"), Some(42));
        assert_eq!(parse_id("0"), Some(0));
        for id in ["", "+1", "01", "1-0", " 1", "99999999999999999999"] {
            assert_eq!(parse_id(id), None, "{id:?}");
        }
    }
}
