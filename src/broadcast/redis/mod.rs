//! The Redis Streams backend: topics shared by every instance on one Redis.
//!
//! Publishing is one script: an `XADD` (the stored value is the event's wire
//! form without `id`, and the stream's generation) and an entry on the
//! change stream. Each instance reads every topic with subscribers over one
//! connection (see [`reader`]) and fans the events out in memory through a
//! `tokio::sync::broadcast` channel per topic. Every live event names the id
//! the reader read after (`prev`), so a subscriber that has not yet seen
//! `prev` knows there is a gap and fills it with `XRANGE` first: events are
//! never missing between the replay and the live feed, whenever the reader
//! started or however often it reconnected.
use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{stream, StreamExt};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamId, StreamRangeReply},
    AsyncCommands, Client, RedisError, RedisResult, Value,
};
use tokio::sync::broadcast;

use crate::{EncodedEvent, Event};

mod feed;
mod reader;
mod stream_key;

use self::{feed::Feed, reader::Shard, stream_key::StreamKey};
use super::{
    builder::Config,
    position::{self, Generation},
    stats::Counters,
    wire, BroadcastError, BroadcastStatsSnapshot, Subscription,
};

/// The stream entry field holding the event's wire form.
const FIELD: &str = "sse";
/// The stream entry field holding the generation of the stream's history.
const GENERATION_FIELD: &str = "g";

/// `XADD` in the generation of the stream: the newest entry's, or (for a
/// stream that does not exist or holds nothing) the new one in `ARGV[1]`.
/// One script, so no other publish can start a second generation between
/// the read and the write. Then the stream's expiry is pushed back.
///
/// Last, the stream's key goes on the change stream that readers follow.
///
/// `KEYS[1]`: the stream, `KEYS[2]`: the change stream. `ARGV`: new
/// generation, `MAXLEN`, wire form, expiry in milliseconds, `MAXLEN` of the
/// change stream. Returns `{id, generation}`.
const PUBLISH_SCRIPT: &str = r"
local generation = ARGV[1]
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if newest then
  local fields = newest[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'g' then generation = fields[i + 1] end
  end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'sse', ARGV[3], 'g', generation)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'k', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {id, generation}
";
/// Change entries kept: readers that fall further behind sweep every topic.
const CHANGES_MAXLEN: usize = 100_000;
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
    /// Shared by publishing and history reads; reconnects on its own.
    conn: ConnectionManager,
    /// The reader: topics with subscribers on this instance, by key.
    shard: Arc<Shard>,
    changes_key: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.shard.close();
    }
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
        let changes_key = stream_key::changes_key(&config.key_prefix);
        let shard = Arc::new(Shard::new(changes_key.clone()));
        tokio::spawn(reader::run(Arc::clone(&shard), client));
        Ok(Arc::new(Self {
            counters: Arc::new(Counters::new(&config)),
            config,
            conn,
            shard,
            changes_key,
        }))
    }

    pub(super) fn stats(&self) -> BroadcastStatsSnapshot {
        self.counters.snapshot()
    }

    fn key(&self, topic: &str) -> String {
        stream_key::topic_key(&self.config.key_prefix, topic)
    }

    pub(super) async fn publish(
        &self,
        topic: &str,
        event: Event,
    ) -> Result<String, BroadcastError> {
        let wire = wire::encode_without_id(event)?;
        let mut conn = self.conn.clone();
        let expiry = u64::try_from(self.config.expiry().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (id, generation): (String, String) = redis::cmd("EVAL")
            .arg(PUBLISH_SCRIPT)
            .arg(2)
            .arg(self.key(topic))
            .arg(&self.changes_key)
            .arg(Generation::random().to_string())
            .arg(self.config.history)
            .arg(wire.as_bytes())
            .arg(expiry)
            .arg(CHANGES_MAXLEN)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        self.counters.published();
        Ok(format!("{generation}.{id}"))
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
        let live = self.hub(&key);
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
                let resume = position::split_id(id).and_then(|(generation, position)| {
                    let id = StreamKey::parse(position).filter(|&id| id > floor)?;
                    Some((generation, id))
                });
                let known = match resume {
                    Some((generation, id)) => feed.exists(generation, id).await.map_err(backend)?,
                    None => false,
                };
                let resume = resume.map(|(_, id)| id);
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
        // The instance (and its readers) lives as long as its subscriptions.
        let instance = Arc::clone(self);
        Ok(Subscription::new(
            stream.boxed(),
            missed,
            Arc::clone(&self.counters),
            Some(Box::new(move || drop(instance))),
        ))
    }

    /// A receiver of the live events of the stream at `key`.
    fn hub(&self, key: &str) -> broadcast::Receiver<Live> {
        self.shard.subscribe(key, self.config.buffer)
    }
}

/// The generation an entry was written in, if it names one.
fn generation(entry: &StreamId) -> Option<Generation> {
    match entry.map.get(GENERATION_FIELD) {
        Some(Value::BulkString(text)) => Generation::parse(std::str::from_utf8(text).ok()?),
        _ => None,
    }
}

/// The id of an entry and its event (`None` if it holds none, or no
/// generation).
fn entry(entry: StreamId) -> Option<(StreamKey, Option<EncodedEvent>)> {
    let id = StreamKey::parse(&entry.id)?;
    let event = match (entry.map.get(FIELD), generation(&entry)) {
        (Some(Value::BulkString(wire)), Some(generation)) => {
            wire::with_id(wire, &position::format_id(generation, &entry.id))
        }
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
