//! What stays above the [`Backend`]: ids, the fan-out of each topic's live
//! feed to its subscribers on this instance, gap filling, the missed-events
//! event and the slow-subscriber policy.
//!
//! A subscriber joins the topic's live feed first, then reads the history
//! after its position. Every live entry names the position its source read
//! after, so a subscriber that has not yet seen that position knows there is
//! a gap and fills it from the history first: events are never missing
//! between the replay and the live feed, however late the backend started
//! watching or however often it reconnected.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{stream, StreamExt};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::Instant,
};

use crate::{util::sync::lock, EncodedEvent, Event};

use super::{
    backend::{Appended, Live, LiveFeed, Record, ResumePoint, Retention},
    builder::Config,
    position::{self, Generation},
    stats::Counters,
    wire, Backend, BroadcastError, BroadcastStatsSnapshot, Position, Subscription,
};

/// Entries read from the history at once.
pub(super) const PAGE: usize = 256;
/// How long a subscriber keeps trying to read the history before its
/// subscription ends.
const READ_RETRY: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub(super) struct Engine {
    backend: Arc<dyn Backend>,
    retention: Retention,
    buffer: usize,
    missed: EncodedEvent,
    counters: Arc<Counters>,
    /// The live feed of each topic with subscribers on this instance.
    hubs: Mutex<HashMap<String, LiveFeed>>,
    name: &'static str,
    /// Live entries carry when they were sent (metrics on, and a backend
    /// whose positions hold no time).
    stamped: bool,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Engine {
    pub(super) fn new(backend: Arc<dyn Backend>, config: &Config, name: &'static str) -> Self {
        let counters = Arc::new(Counters::new(config));
        Self {
            backend,
            retention: Retention::new(config.history, config.max_age),
            buffer: config.buffer,
            missed: config.missed.clone(),
            // Redis positions are its clock's milliseconds: no stamp needed.
            stamped: name != "redis" && counters.timed(),
            counters,
            hubs: Mutex::default(),
            name,
        }
    }

    /// A live entry reached a subscriber's queue: the delivery-time metric,
    /// from the entry's time with Redis, else from when it was sent.
    #[inline]
    fn delivered(&self, live: &Live) {
        #[cfg(feature = "redis")]
        if self.name == "redis" {
            self.counters.delivered_from_redis(live.position.major());
            return;
        }
        self.counters.delivered(live.stamp);
    }

    pub(super) fn name(&self) -> &'static str {
        self.name
    }

    pub(super) fn stats(&self) -> BroadcastStatsSnapshot {
        self.counters.snapshot()
    }

    pub(super) async fn publish(
        &self,
        topic: &str,
        event: Event,
    ) -> Result<String, BroadcastError> {
        let record = Record::prepare(event)?;
        let publisher_id = record.publisher_id().map(str::to_owned);
        match self.backend.append(topic, record, &self.retention).await? {
            Appended::Stored {
                position,
                generation,
            } => {
                self.counters.published();
                Ok(publisher_id.unwrap_or_else(|| position::format_id(generation, position)))
            }
            Appended::Duplicate => publisher_id.ok_or_else(|| {
                BroadcastError::Backend(
                    "the backend took an event without a publisher id for a duplicate".into(),
                )
            }),
        }
    }

    /// A receiver of the live feed of `topic`, which the backend watches
    /// from now on if it did not.
    fn join(&self, topic: &str) -> (LiveFeed, broadcast::Receiver<Live>) {
        let mut hubs = lock(&self.hubs);
        if let Some(feed) = hubs.get(topic).filter(|feed| !feed.is_closed()) {
            return (feed.clone(), feed.join());
        }
        // Under the lock: the backend sees watch and unwatch of a topic in
        // order, and the receiver exists before it can drop the feed.
        let (feed, receiver) = LiveFeed::new(self.buffer, self.stamped);
        hubs.insert(topic.to_owned(), feed.clone());
        self.backend.watch(topic, feed.clone());
        (feed, receiver)
    }

    /// One subscriber fewer on the feed of `topic`; hands it back to the
    /// backend when it was the last.
    fn leave(&self, topic: &str, feed: &LiveFeed) {
        let mut hubs = lock(&self.hubs);
        if feed.leave() {
            if hubs.get(topic).is_some_and(|f| f.same_as(feed)) {
                hubs.remove(topic);
            }
            self.backend.unwatch(topic, feed);
        }
    }

    pub(super) async fn subscribe(
        self: &Arc<Self>,
        topic: &str,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, BroadcastError> {
        // Live first: whatever the history reads below miss, the live feed
        // (or a gap fill) brings.
        let (hub, live) = self.join(topic);
        // Declared before the feed: dropped after its receiver.
        let membership = Membership {
            engine: Arc::clone(self),
            topic: topic.to_owned(),
            feed: hub,
        };
        let mut feed = Feed {
            engine: Arc::clone(self),
            topic: topic.to_owned(),
            last: Position::ZERO,
            pending: VecDeque::new(),
            replay_done: true,
            live,
            generation: None,
        };
        let mut missed = false;
        match last_event_id {
            None => {
                if let Some((position, generation)) = self.backend.newest(topic).await? {
                    feed.last = position;
                    feed.generation = Some(generation);
                }
            }
            Some(id) => {
                let from = match position::split_id(id) {
                    Some((generation, position)) => {
                        Position::parse(position).map(|position| ResumePoint::Channel {
                            generation,
                            position,
                        })
                    }
                    None => wire::publisher_id(id.as_bytes())
                        .ok()
                        .map(ResumePoint::Publisher),
                };
                let resume = match from {
                    Some(from) => self.backend.locate(topic, from, &self.retention).await?,
                    None => None,
                };
                match resume {
                    Some(position) => {
                        feed.last = position;
                        if let Some(ResumePoint::Channel { generation, .. }) = from {
                            feed.generation = Some(generation);
                        }
                    }
                    None => {
                        missed = true;
                        feed.pending.push_back(self.missed.clone());
                    }
                }
                // The first page now, so an unreachable store is an error
                // here (and a resumed subscription holds its first events
                // when returned: resumable responses tell a missing log by
                // that); the rest as the subscriber reads.
                let read = feed.read_after(None).await?;
                feed.replay_done = read < PAGE;
            }
        }
        let stream = stream::unfold(feed, |mut feed| async move {
            let event = feed.next().await?;
            Some((event, feed))
        });
        Ok(Subscription::new(
            stream.boxed(),
            missed,
            Arc::clone(&self.counters),
            Some(Box::new(move || drop(membership))),
        ))
    }
}

/// A subscription's place in its topic's hub: leaving when dropped.
struct Membership {
    engine: Arc<Engine>,
    topic: String,
    feed: LiveFeed,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.engine.leave(&self.topic, &self.feed);
    }
}

/// One subscriber's state: what it has seen, and what it still has to yield.
struct Feed {
    engine: Arc<Engine>,
    topic: String,
    /// Everything up to this position has been queued or deliberately
    /// skipped.
    last: Position,
    pending: VecDeque<EncodedEvent>,
    /// Whether the history after `last` has been read to its end.
    replay_done: bool,
    live: broadcast::Receiver<Live>,
    /// The generation of the last event queued, once known.
    generation: Option<Generation>,
}

impl Feed {
    async fn next(&mut self) -> Option<EncodedEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if !self.replay_done {
                match self.read_retrying(None).await {
                    Ok(read) => self.replay_done = read < PAGE,
                    Err(err) => return self.fail(&err),
                }
                continue;
            }
            match self.live.recv().await {
                Ok(live) if live.position <= self.last => {}
                Ok(live) => {
                    // Entries between what we saw and what the source read
                    // after: read them from the history first.
                    while live.after > self.last {
                        match self.read_retrying(Some(live.after)).await {
                            Ok(read) if read == PAGE => {}
                            Ok(_) => self.last = live.after,
                            Err(err) => return self.fail(&err),
                        }
                    }
                    self.last = live.position;
                    if live.event.is_some() {
                        self.engine.delivered(&live);
                    }
                    self.queue(live.generation, live.event);
                }
                Err(RecvError::Lagged(_)) => {
                    self.engine.counters.slow_disconnect();
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn fail(&self, err: &BroadcastError) -> Option<EncodedEvent> {
        tracing::warn!(topic = %self.topic, error = %err, "broadcast: reading the history failed; ending the subscription");
        None
    }

    /// [`read_after`](Self::read_after), tried again while the store comes
    /// back (a restart, a failover): a connected subscriber rides out a
    /// short outage rather than ending.
    async fn read_retrying(&mut self, until: Option<Position>) -> Result<usize, BroadcastError> {
        let deadline = Instant::now() + READ_RETRY;
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.read_after(until).await {
                Ok(read) => return Ok(read),
                Err(err) if Instant::now() + backoff < deadline => {
                    tracing::debug!(topic = %self.topic, error = %err, ?backoff, "broadcast: reading the history failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Queues `event`, after the missed-events event if it starts a new
    /// generation: the history was lost since the last event, and what it
    /// held but had not reached this subscriber is gone.
    fn queue(&mut self, generation: Option<Generation>, event: Option<EncodedEvent>) {
        if let Some(generation) = generation {
            if self.generation.is_some_and(|seen| seen != generation) {
                self.pending.push_back(self.engine.missed.clone());
            }
            self.generation = Some(generation);
        }
        self.pending.extend(event);
    }

    /// Queues up to a page of entries after `last` (up to `until`), moving
    /// `last`; returns how many entries were read.
    async fn read_after(&mut self, until: Option<Position>) -> Result<usize, BroadcastError> {
        let engine = &self.engine;
        let entries = engine
            .backend
            .read(&self.topic, self.last, until, PAGE, &engine.retention)
            .await?;
        let read = entries.len();
        for entry in entries {
            if entry.position() <= self.last {
                continue;
            }
            self.last = entry.position();
            let generation = entry.generation();
            self.queue(Some(generation), Some(entry.event().clone()));
        }
        Ok(read)
    }
}
