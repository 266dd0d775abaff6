//! The Redis Streams backend: topics shared by every instance on one Redis.
//!
//! Publishing is an `XADD` (the stored value is the event's wire form
//! without `id`). Each instance runs one reader task per topic with
//! subscribers: a blocking `XREAD` on a connection of its own, fanned out in
//! memory through a `tokio::sync::broadcast` channel. Every live event names
//! the id the reader read after (`prev`), so a subscriber that has not yet
//! seen `prev` knows there is a gap and fills it with `XRANGE` first: events
//! are never missing between the replay and the live feed, whenever the
//! reader started or however often it reconnected.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{
    future::{select, Either},
    stream, StreamExt,
};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamId, StreamMaxlen, StreamRangeReply, StreamReadOptions, StreamReadReply},
    AsyncCommands, Client, RedisError, RedisResult, Value,
};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{EncodedEvent, Event};

use super::{
    builder::Config, stats::Counters, wire, BroadcastError, BroadcastStatsSnapshot, Subscription,
};

/// The stream entry field holding the event's wire form.
const FIELD: &str = "sse";
/// Entries read per `XRANGE` or `XREAD`.
const PAGE: usize = 256;
/// How long one `XREAD` blocks, in milliseconds.
const BLOCK_MS: u64 = 5_000;
/// The reader's first and longest wait before reconnecting.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub(super) struct Redis {
    config: Config,
    counters: Arc<Counters>,
    client: Client,
    /// Shared by publishing and history reads; reconnects on its own.
    conn: ConnectionManager,
    /// One per topic with subscribers on this instance.
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

struct Hub {
    live: broadcast::Sender<Live>,
}

/// What a reader fans out: an entry, or (`event: None`) a mark that every
/// entry up to `id` has been accounted for.
#[derive(Clone)]
struct Live {
    id: StreamKey,
    /// The id the reader read after: every entry up to it came before.
    prev: StreamKey,
    event: Option<EncodedEvent>,
}

/// What one step of a reader found.
enum Read {
    /// The newest id when the reader started: it reads after it.
    Start(StreamKey),
    Entries(Vec<(StreamKey, Option<EncodedEvent>)>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn backend(err: RedisError) -> BroadcastError {
    BroadcastError::Backend(Box::new(err))
}

/// Publishing and history reads: fail fast while Redis is away.
fn command_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(5))
}

/// A reader's connection: answers come after up to `BLOCK_MS`. The reader
/// retries with a backoff of its own.
fn reader_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_millis(BLOCK_MS) + Duration::from_secs(5))
}

impl Redis {
    pub(super) async fn connect(
        url: &str,
        mut config: Config,
    ) -> Result<Arc<Self>, BroadcastError> {
        // `MAXLEN ~ 0` could trim an entry before a reader sees it.
        config.history = config.history.max(1);
        let client = Client::open(url).map_err(backend)?;
        let conn = ConnectionManager::new_with_config(client.clone(), command_config())
            .await
            .map_err(backend)?;
        Ok(Arc::new(Self {
            config,
            counters: Arc::default(),
            client,
            conn,
            hubs: Mutex::default(),
        }))
    }

    pub(super) fn stats(&self) -> BroadcastStatsSnapshot {
        self.counters.snapshot()
    }

    fn key(&self, topic: &str) -> String {
        format!("{}{topic}", self.config.key_prefix)
    }

    pub(super) async fn publish(
        &self,
        topic: &str,
        event: Event,
    ) -> Result<String, BroadcastError> {
        let wire = wire::encode_without_id(event)?;
        let mut conn = self.conn.clone();
        let id: String = conn
            .xadd_maxlen(
                self.key(topic),
                StreamMaxlen::Approx(self.config.history),
                "*",
                &[(FIELD, wire.as_bytes())],
            )
            .await
            .map_err(backend)?;
        self.counters.published();
        Ok(id)
    }

    /// Entries older than this are not history (see `max_age`).
    fn floor(&self) -> StreamKey {
        let Some(max_age) = self.config.max_age else {
            return StreamKey::ZERO;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let cutoff = now.saturating_sub(max_age).as_millis();
        StreamKey::before_ms(u64::try_from(cutoff).unwrap_or(u64::MAX))
    }

    pub(super) async fn subscribe(
        self: &Arc<Self>,
        topic: &str,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, BroadcastError> {
        let key = self.key(topic);
        // Live first: whatever the history reads below miss, the live feed
        // (or a gap fill) brings.
        let live = self.hub(topic, &key);
        let mut feed = Feed {
            conn: self.conn.clone(),
            key,
            last: StreamKey::ZERO,
            pending: VecDeque::new(),
            replay_done: true,
            live,
            counters: Arc::clone(&self.counters),
        };
        let mut missed = false;
        match last_event_id {
            None => feed.last = feed.newest().await.map_err(backend)?,
            Some(id) => {
                let floor = self.floor();
                let resume = StreamKey::parse(id).filter(|&id| id > floor);
                let known = match resume {
                    Some(id) => feed.exists(id).await.map_err(backend)?,
                    None => false,
                };
                match resume {
                    Some(id) if known => feed.last = id,
                    _ => {
                        missed = true;
                        feed.last = floor;
                        feed.pending.push_back(self.config.missed.clone());
                    }
                }
                // The first page now, so an unreachable Redis is an error
                // here; the rest as the subscriber reads.
                let read = feed.read_after(None).await.map_err(backend)?;
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
            None,
        ))
    }

    /// A receiver of `topic`'s live events, starting the reader if none
    /// runs.
    fn hub(self: &Arc<Self>, topic: &str, key: &str) -> broadcast::Receiver<Live> {
        let mut hubs = lock(&self.hubs);
        if let Some(hub) = hubs.get(topic) {
            return hub.live.subscribe();
        }
        let (live, receiver) = broadcast::channel(self.config.buffer);
        let hub = Arc::new(Hub { live });
        hubs.insert(topic.to_owned(), Arc::clone(&hub));
        tokio::spawn(Reader::new(Arc::clone(self), topic.to_owned(), key.to_owned(), hub).run());
        receiver
    }

    /// Removes `hub` if nobody listens to it any more; the reader then stops.
    /// Subscribing happens under the same lock, so nobody can join after.
    fn retire(&self, topic: &str, hub: &Arc<Hub>) -> bool {
        let mut hubs = lock(&self.hubs);
        if hub.live.receiver_count() > 0 {
            return false;
        }
        if hubs.get(topic).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            hubs.remove(topic);
        }
        true
    }
}

/// The one task per instance and topic that reads new entries.
struct Reader {
    shared: Arc<Redis>,
    topic: String,
    key: String,
    hub: Arc<Hub>,
    conn: Option<ConnectionManager>,
    /// The last id read, once known.
    cursor: Option<StreamKey>,
}

impl Reader {
    fn new(shared: Arc<Redis>, topic: String, key: String, hub: Arc<Hub>) -> Self {
        Self {
            shared,
            topic,
            key,
            hub,
            conn: None,
            cursor: None,
        }
    }

    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            if self.hub.live.receiver_count() == 0 && self.shared.retire(&self.topic, &self.hub) {
                return;
            }
            let hub = Arc::clone(&self.hub);
            let read = {
                let closed = pin!(hub.live.closed());
                let read = pin!(self.read());
                match select(closed, read).await {
                    Either::Left(((), _)) => None,
                    Either::Right((read, _)) => Some(read),
                }
            };
            let Some(read) = read else {
                // Nobody listens: check again under the lock. The abandoned
                // `XREAD` still blocks its connection, so that one goes.
                self.conn = None;
                continue;
            };
            // No receivers is fine below: the reader stops soon.
            match read {
                Ok(Read::Start(newest)) => {
                    // Subscribers that read the history before this id was
                    // taken fill what they lack up to it now, rather than at
                    // the next event, which may be long in coming.
                    self.cursor = Some(newest);
                    let _ = hub.live.send(Live {
                        id: newest,
                        prev: newest,
                        event: None,
                    });
                }
                Ok(Read::Entries(entries)) => {
                    backoff = BACKOFF_MIN;
                    for (id, event) in entries {
                        let prev = self.cursor.replace(id).unwrap_or(StreamKey::ZERO);
                        let _ = hub.live.send(Live { id, prev, event });
                    }
                }
                Err(err) => {
                    tracing::warn!(topic = %self.topic, error = %err, ?backoff, "broadcast: Redis read failed; reconnecting");
                    self.conn = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// The newest id if the reader has none yet, else the next entries after
    /// it, waiting up to `BLOCK_MS` for some.
    async fn read(&mut self) -> RedisResult<Read> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(
                ConnectionManager::new_with_config(self.shared.client.clone(), reader_config())
                    .await?,
            ),
        };
        let Some(cursor) = self.cursor else {
            return Ok(Read::Start(newest(conn, &self.key).await?));
        };
        let options = StreamReadOptions::default()
            .block(BLOCK_MS as usize)
            .count(PAGE);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&self.key], &[cursor.to_string()], &options)
            .await?;
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids);
        Ok(Read::Entries(entries.filter_map(entry).collect()))
    }
}

/// The id of an entry and its event (`None` if it holds none).
fn entry(entry: StreamId) -> Option<(StreamKey, Option<EncodedEvent>)> {
    let id = StreamKey::parse(&entry.id)?;
    let event = match entry.map.get(FIELD) {
        Some(Value::BulkString(wire)) => wire::with_id(wire, &entry.id),
        _ => None,
    };
    if event.is_none() {
        tracing::warn!(id = %entry.id, "broadcast: skipping a Redis stream entry that holds no event");
    }
    Some((id, event))
}

/// The newest id of the stream at `key`, `0-0` if it is empty.
async fn newest(conn: &mut ConnectionManager, key: &str) -> RedisResult<StreamKey> {
    let reply: StreamRangeReply = conn.xrevrange_count(key, "+", "-", 1).await?;
    Ok(reply
        .ids
        .first()
        .and_then(|entry| StreamKey::parse(&entry.id))
        .unwrap_or(StreamKey::ZERO))
}

/// One subscriber's state: what it has seen, and what it still has to yield.
struct Feed {
    conn: ConnectionManager,
    key: String,
    /// Everything up to this id has been queued or deliberately skipped.
    last: StreamKey,
    pending: VecDeque<EncodedEvent>,
    /// Whether the history after `last` has been read to its end.
    replay_done: bool,
    live: broadcast::Receiver<Live>,
    counters: Arc<Counters>,
}

impl Feed {
    async fn next(&mut self) -> Option<EncodedEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if !self.replay_done {
                match self.read_after(None).await {
                    Ok(read) => self.replay_done = read < PAGE,
                    Err(err) => return self.fail(&err),
                }
                continue;
            }
            match self.live.recv().await {
                Ok(live) if live.id <= self.last => {}
                Ok(live) => {
                    // Entries between what we saw and what the reader read
                    // after: read them from the history first.
                    while live.prev > self.last {
                        match self.read_after(Some(live.prev)).await {
                            Ok(read) if read == PAGE => {}
                            Ok(_) => self.last = live.prev,
                            Err(err) => return self.fail(&err),
                        }
                    }
                    self.last = live.id;
                    self.pending.extend(live.event);
                }
                Err(RecvError::Lagged(_)) => {
                    self.counters.slow_disconnect();
                    return None;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn fail(&self, err: &RedisError) -> Option<EncodedEvent> {
        tracing::warn!(key = %self.key, error = %err, "broadcast: reading the history failed; ending the subscription");
        None
    }

    async fn newest(&mut self) -> RedisResult<StreamKey> {
        newest(&mut self.conn, &self.key).await
    }

    async fn exists(&mut self, id: StreamKey) -> RedisResult<bool> {
        let id = id.to_string();
        let reply: StreamRangeReply = self.conn.xrange_count(&self.key, &id, &id, 1).await?;
        Ok(!reply.ids.is_empty())
    }

    /// Queues up to a page of entries after `last` (up to `end`), moving
    /// `last`; returns how many entries were read.
    async fn read_after(&mut self, end: Option<StreamKey>) -> RedisResult<usize> {
        let start = format!("({}", self.last);
        let end = end.map_or_else(|| "+".to_owned(), |end| end.to_string());
        let reply: StreamRangeReply = self.conn.xrange_count(&self.key, start, end, PAGE).await?;
        let read = reply.ids.len();
        for (id, event) in reply.ids.into_iter().filter_map(entry) {
            self.last = id;
            self.pending.extend(event);
        }
        Ok(read)
    }
}

/// A Redis stream id, `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamKey {
    ms: u64,
    seq: u64,
}

impl StreamKey {
    /// Before every id a stream can hold.
    const ZERO: Self = Self { ms: 0, seq: 0 };

    /// The last id before millisecond `ms`.
    fn before_ms(ms: u64) -> Self {
        match ms.checked_sub(1) {
            Some(ms) => Self { ms, seq: u64::MAX },
            None => Self::ZERO,
        }
    }

    /// An id exactly as Redis writes it.
    fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        let number = |s: &str| {
            let canonical = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            canonical.then(|| s.parse().ok()).flatten()
        };
        Some(Self {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_as_redis_writes_them() {
        assert_eq!(
            StreamKey::parse("1700000000000-3"),
            Some(StreamKey {
                ms: 1_700_000_000_000,
                seq: 3
            })
        );
        assert_eq!(StreamKey::parse("0-1").unwrap().to_string(), "0-1");
        for id in [
            "",
            "5",
            "1-",
            "-1",
            "01-0",
            "1-+2",
            "1-2-3",
            "18446744073709551616-0",
        ] {
            assert_eq!(StreamKey::parse(id), None, "{id:?}");
        }
        assert!(StreamKey::parse("2-0") > StreamKey::parse("1-99"));
        assert_eq!(
            StreamKey::before_ms(5),
            StreamKey {
                ms: 4,
                seq: u64::MAX
            }
        );
        assert_eq!(StreamKey::before_ms(0), StreamKey::ZERO);
    }
}
