//! The Redis Streams backend: topics shared by every instance on one Redis,
//! behind the [`Backend`] trait.
//!
//! Publishing is one script: an `XADD` (the stored value is the event's wire
//! form without `id`, and the stream's generation) and an entry on the
//! change stream. Each instance reads every topic with subscribers over one
//! connection (see [`reader`]) and delivers the entries into the topics'
//! live feeds, each naming the id the reader read after, so the
//! [`Broadcast`](super::Broadcast) above fills any gap from the history.
use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamId, StreamRangeReply},
    AsyncCommands, Client, RedisError, RedisResult, Value,
};

mod reader;
mod stream_key;

use self::{reader::Shard, stream_key::StreamKey};
use super::{
    backend::{Appended, BackendFuture, Entry, LiveFeed, Record, ResumePoint, Retention},
    builder::Config,
    position::Generation,
    Backend, BroadcastError, Position,
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
/// Entries read per `XREAD`.
const PAGE: usize = 256;
/// How long one `XREAD` blocks, in milliseconds.
const BLOCK_MS: u64 = 5_000;
/// The reader's first and longest wait before reconnecting.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

pub(super) struct Redis {
    config: Config,
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

/// Entries of milliseconds before this are not history (see `max_age`);
/// 0 without a maximum age.
fn cutoff_ms(retention: &Retention) -> u64 {
    retention.cutoff().map_or(0, |cutoff| {
        let since = cutoff.duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Entries up to this are not history (see `max_age`).
fn floor(retention: &Retention) -> Position {
    StreamKey::before_ms(cutoff_ms(retention)).into()
}

impl Redis {
    pub(super) async fn connect(url: &str, config: Config) -> Result<Arc<Self>, BroadcastError> {
        let client = Client::open(url).map_err(backend)?;
        let conn = ConnectionManager::new_with_config(client.clone(), command_config())
            .await
            .map_err(backend)?;
        let changes_key = stream_key::changes_key(&config.key_prefix);
        let shard = Arc::new(Shard::new(changes_key.clone()));
        tokio::spawn(reader::run(Arc::clone(&shard), client));
        Ok(Arc::new(Self {
            config,
            conn,
            shard,
            changes_key,
        }))
    }

    fn key(&self, topic: &str) -> String {
        stream_key::topic_key(&self.config.key_prefix, topic)
    }

    async fn append(
        &self,
        topic: &str,
        record: Record,
        retention: &Retention,
    ) -> Result<Appended, BroadcastError> {
        let wire = record.stored()?;
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
            // `MAXLEN ~ 0` could trim an entry before a reader sees it.
            .arg(retention.history().max(1))
            .arg(&wire[..])
            .arg(expiry)
            .arg(CHANGES_MAXLEN)
            .arg(record.publisher_id().unwrap_or(""))
            .arg(cutoff_ms(retention))
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        if stored == 0 {
            return Ok(Appended::Duplicate);
        }
        let invalid =
            || BroadcastError::Backend("Redis answered a publish with an invalid id".into());
        let position = StreamKey::parse(&id).ok_or_else(invalid)?.into();
        let generation = Generation::parse(&generation).ok_or_else(invalid)?;
        Ok(Appended::Stored {
            position,
            generation,
        })
    }

    async fn newest(&self, topic: &str) -> RedisResult<Option<(Position, Generation)>> {
        let reply: StreamRangeReply = self
            .conn
            .clone()
            .xrevrange_count(self.key(topic), "+", "-", 1)
            .await?;
        Ok(reply.ids.first().and_then(|newest| {
            let position = StreamKey::parse(&newest.id)?.into();
            Some((position, generation(newest)?))
        }))
    }

    async fn locate(
        &self,
        topic: &str,
        from: ResumePoint<'_>,
        retention: &Retention,
    ) -> RedisResult<Option<Position>> {
        let floor = floor(retention);
        let found = match from {
            ResumePoint::Channel {
                generation,
                position,
            } => {
                // Redis keeps no record of what it trimmed: only an entry
                // still held proves that nothing after it was lost.
                if position <= floor {
                    return Ok(None);
                }
                let id = StreamKey::from(position).to_string();
                let reply: StreamRangeReply = self
                    .conn
                    .clone()
                    .xrange_count(self.key(topic), &id, &id, 1)
                    .await?;
                reply
                    .ids
                    .first()
                    .is_some_and(|entry| self::generation(entry) == Some(generation))
                    .then_some(position)
            }
            ResumePoint::Publisher(id) => self.resolve(topic, id).await?,
        };
        Ok(found.filter(|&position| position > floor))
    }

    async fn read(
        &self,
        topic: &str,
        after: Position,
        until: Option<Position>,
        limit: usize,
        retention: &Retention,
    ) -> RedisResult<Vec<Entry>> {
        let start = format!("({}", StreamKey::from(after.max(floor(retention))));
        let end = until.map_or_else(|| "+".to_owned(), |end| StreamKey::from(end).to_string());
        let reply: StreamRangeReply = self
            .conn
            .clone()
            .xrange_count(self.key(topic), start, end, limit)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|entry| entry_of(&entry).1)
            .collect())
    }

    /// The stream id of the retained event of `topic` published with id
    /// `publisher_id`.
    async fn resolve(&self, topic: &str, publisher_id: &str) -> RedisResult<Option<Position>> {
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
        Ok(sid
            .as_deref()
            .and_then(StreamKey::parse)
            .map(Position::from))
    }
}

impl Backend for Redis {
    fn append<'a>(
        &'a self,
        topic: &'a str,
        record: Record,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Appended, BroadcastError>> {
        Box::pin(self.append(topic, record, retention))
    }

    fn newest<'a>(
        &'a self,
        topic: &'a str,
    ) -> BackendFuture<'a, Result<Option<(Position, Generation)>, BroadcastError>> {
        Box::pin(async move { self.newest(topic).await.map_err(backend) })
    }

    fn locate<'a>(
        &'a self,
        topic: &'a str,
        from: ResumePoint<'a>,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Option<Position>, BroadcastError>> {
        Box::pin(async move { self.locate(topic, from, retention).await.map_err(backend) })
    }

    fn read<'a>(
        &'a self,
        topic: &'a str,
        after: Position,
        until: Option<Position>,
        limit: usize,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Vec<Entry>, BroadcastError>> {
        Box::pin(async move {
            self.read(topic, after, until, limit, retention)
                .await
                .map_err(backend)
        })
    }

    fn watch(&self, topic: &str, feed: LiveFeed) {
        self.shard.watch(&self.key(topic), feed);
    }

    fn unwatch(&self, topic: &str, feed: &LiveFeed) {
        self.shard.unwatch(&self.key(topic), feed);
    }
}

/// The generation an entry was written in, if it names one.
fn generation(entry: &StreamId) -> Option<Generation> {
    match entry.map.get(GENERATION_FIELD) {
        Some(Value::BulkString(text)) => Generation::parse(std::str::from_utf8(text).ok()?),
        _ => None,
    }
}

/// The id of an entry and the entry (`None` if it holds no event, or no
/// generation). The event's id is its publisher's, if it came with one.
fn entry_of(entry: &StreamId) -> (Option<StreamKey>, Option<Entry>) {
    let Some(id) = StreamKey::parse(&entry.id) else {
        return (None, None);
    };
    let found = match (
        entry.map.get(FIELD),
        generation(entry),
        entry.map.get(PUBLISHER_FIELD),
    ) {
        (Some(Value::BulkString(stored)), Some(generation), publisher_id) => {
            let publisher_id = match publisher_id {
                Some(Value::BulkString(id)) => std::str::from_utf8(id).ok().map(Some),
                Some(_) => None,
                None => Some(None),
            };
            publisher_id.and_then(|publisher_id| {
                Entry::from_stored(id.into(), generation, publisher_id, stored)
            })
        }
        _ => None,
    };
    if found.is_none() {
        tracing::warn!(id = %entry.id, "broadcast: skipping a Redis stream entry that holds no event");
    }
    (Some(id), found)
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
