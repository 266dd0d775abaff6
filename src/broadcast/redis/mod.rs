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
    wire::{self, Prepared},
    BroadcastError, BroadcastStatsSnapshot, Subscription,
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
/// With a publisher id (`ARGV[6]` not empty): if the hash maps it to an
/// entry still in the stream that carries it (field `p`), not older than the
/// age cutoff, nothing is written and that entry is the answer; otherwise
/// the entry is added with its `p`, mapped in the hash and listed in the
/// order list, and ids whose entries the stream no longer holds are dropped
/// from the head of the list and from the hash. Hash and list expire with
/// the stream. All in the one script: two publishes of the same id, from any
/// instances, store one entry.
///
/// Last, the stream's key goes on the change stream that readers follow.
///
/// `KEYS`: the stream, the change stream, the id hash, the order list.
/// `ARGV`: new generation, `MAXLEN`, wire form, expiry in milliseconds,
/// `MAXLEN` of the change stream, publisher id or empty, age cutoff in
/// milliseconds (entries of earlier milliseconds are not history; 0 for no
/// cutoff). Returns `{id, generation, stored}` (`stored` 0 for a retry).
const PUBLISH_SCRIPT: &str = r"
local function field(entry, name)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
end
local function retained(sid, pid)
  local entry = redis.call('XRANGE', KEYS[1], sid, sid)[1]
  return entry and field(entry, 'p') == pid
end
local pid = ARGV[6]
if pid ~= '' then
  local sid = redis.call('HGET', KEYS[3], pid)
  if sid and tonumber(string.match(sid, '^%d+')) >= tonumber(ARGV[7]) and retained(sid, pid) then
    return {sid, '', 0}
  end
end
local generation = ARGV[1]
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if newest then
  generation = field(newest, 'g') or generation
end
local id
if pid ~= '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'sse', ARGV[3], 'g', generation, 'p', pid)
  redis.call('HSET', KEYS[3], pid, id)
  redis.call('RPUSH', KEYS[4], pid)
  while true do
    local head = redis.call('LINDEX', KEYS[4], 0)
    if not head then break end
    local sid = redis.call('HGET', KEYS[3], head)
    if sid and retained(sid, head) then break end
    redis.call('LPOP', KEYS[4])
    if sid then redis.call('HDEL', KEYS[3], head) end
  end
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'sse', ARGV[3], 'g', generation)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'k', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {id, generation, 1}
";
/// The stream id of the retained entry of publisher id `ARGV[1]`, or nil.
/// `KEYS`: the stream, the id hash.
const RESOLVE_SCRIPT: &str = r"
local sid = redis.call('HGET', KEYS[2], ARGV[1])
if not sid then return false end
local entry = redis.call('XRANGE', KEYS[1], sid, sid)[1]
if not entry then return false end
local fields = entry[2]
for i = 1, #fields, 2 do
  if fields[i] == 'p' and fields[i + 1] == ARGV[1] then return sid end
end
return false
";
/// The stream entry field holding the publisher's id.
const PUBLISHER_FIELD: &str = "p";
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
            config,
            counters: Arc::default(),
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
        let (wire, publisher_id) = match wire::prepare(event)? {
            Prepared::Channel(event) => (event.encode()?.into_bytes(), None),
            Prepared::Publisher { id, stored } => (bytes::Bytes::from(stored), Some(id)),
        };
        let mut conn = self.conn.clone();
        let expiry = u64::try_from(self.config.expiry().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (id, generation, stored): (String, String, u8) = redis::cmd("EVAL")
            .arg(PUBLISH_SCRIPT)
            .arg(4)
            .arg(self.key(topic))
            .arg(&self.changes_key)
            .arg(stream_key::publisher_ids_key(
                &self.config.key_prefix,
                topic,
            ))
            .arg(stream_key::publisher_order_key(
                &self.config.key_prefix,
                topic,
            ))
            .arg(Generation::random().to_string())
            .arg(self.config.history)
            .arg(&wire[..])
            .arg(expiry)
            .arg(CHANGES_MAXLEN)
            .arg(publisher_id.as_deref().unwrap_or(""))
            .arg(self.cutoff_ms())
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        if stored == 1 {
            self.counters.published();
        }
        Ok(publisher_id.unwrap_or_else(|| format!("{generation}.{id}")))
    }

    /// Entries of milliseconds before this are not history (see `max_age`);
    /// 0 without a maximum age.
    fn cutoff_ms(&self) -> u64 {
        let Some(max_age) = self.config.max_age else {
            return 0;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(now.saturating_sub(max_age).as_millis()).unwrap_or(u64::MAX)
    }

    /// Entries older than this are not history (see `max_age`).
    fn floor(&self) -> StreamKey {
        StreamKey::before_ms(self.cutoff_ms())
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
                let resume = match position::split_id(id) {
                    Some((generation, position)) => match StreamKey::parse(position) {
                        Some(position) if position > floor => feed
                            .exists(generation, position)
                            .await
                            .map_err(backend)?
                            .then_some(position),
                        _ => None,
                    },
                    None => match wire::publisher_id(id.as_bytes()) {
                        Ok(id) => self
                            .resolve(topic, id)
                            .await
                            .map_err(backend)?
                            .filter(|&position| position > floor),
                        Err(_) => None,
                    },
                };
                match resume {
                    Some(id) => feed.last = id,
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

    /// The stream id of the retained event of `topic` published with id
    /// `publisher_id`.
    async fn resolve(&self, topic: &str, publisher_id: &str) -> RedisResult<Option<StreamKey>> {
        let sid: Option<String> = redis::cmd("EVAL")
            .arg(RESOLVE_SCRIPT)
            .arg(2)
            .arg(self.key(topic))
            .arg(stream_key::publisher_ids_key(
                &self.config.key_prefix,
                topic,
            ))
            .arg(publisher_id)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(sid.as_deref().and_then(StreamKey::parse))
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
/// generation). The event's id is its publisher's, if it came with one.
fn entry(entry: StreamId) -> Option<(StreamKey, Option<EncodedEvent>)> {
    let id = StreamKey::parse(&entry.id)?;
    let event = match (
        entry.map.get(FIELD),
        generation(&entry),
        entry.map.get(PUBLISHER_FIELD),
    ) {
        (Some(Value::BulkString(wire)), _, Some(Value::BulkString(publisher_id))) => {
            let publisher_id = self::wire::publisher_id(publisher_id).ok();
            publisher_id.and_then(|publisher_id| self::wire::with_id(wire, publisher_id))
        }
        (Some(Value::BulkString(wire)), Some(generation), None) => {
            self::wire::with_id(wire, &position::format_id(generation, &entry.id))
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
