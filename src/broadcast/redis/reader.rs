//! The reader: new entries of every topic this instance serves, over one
//! connection.
//!
//! Every publish also appends the topic's key to one change stream
//! (`{prefix}changes`, in the same script). The reader blocks on that one
//! stream, then reads the new entries of the changed topics it serves, with
//! one non-blocking `XREAD .. STREAMS k1 k2 .. id1 id2 ..` for many topics
//! at once: an event costs the reader the same work with ten topics or
//! 100,000. Each topic is read after the last id the reader saw in it, so
//! nothing a change entry announced can be skipped; and whenever the change
//! stream may have been missed (at the start, after a reconnection, after a
//! quiet `BLOCK` period) the reader sweeps every topic it serves the same
//! way. A topic joins when its first subscriber arrives and leaves at the
//! next read after its last one left: a topic nobody subscribes to costs no
//! reader work. A reader with no topics holds no connection.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::Duration,
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamRangeReply, StreamReadReply},
    Client, RedisResult, Value,
};
use tokio::sync::Notify;

use super::{entry_of, stream_key::StreamKey, BACKOFF_MAX, BACKOFF_MIN, BLOCK_MS, PAGE};
use crate::{
    broadcast::{Entry, LiveFeed},
    util::sync::lock,
};

/// Streams per `XREAD` (and new topics per pipeline of `XREVRANGE`s).
const BATCH: usize = 1000;

/// Change entries read at once.
const CHANGES_PAGE: usize = 4096;

/// A reader's connection: answers come after up to `BLOCK_MS`. The reader
/// retries with a backoff of its own.
fn reader_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_millis(BLOCK_MS) + Duration::from_secs(10))
}

/// The topics one reader serves.
pub(super) struct Shard {
    /// Redis key → the topic's live feed and where the reader is in its
    /// stream.
    topics: Mutex<HashMap<String, Watched>>,
    /// Keys added since the reader last looked: only these are started, so
    /// a step costs the same with ten topics or 100,000.
    fresh: Mutex<Vec<String>>,
    /// The change stream: the key of every stream published to.
    changes_key: String,
    /// Wakes a reader that has no topics (and so no connection), or that
    /// must stop.
    notify: Notify,
    closed: AtomicBool,
}

struct Watched {
    feed: LiveFeed,
    /// The last id read; `None` until the reader has read the newest.
    cursor: Option<StreamKey>,
}

/// One topic as a read sees it.
struct Watch {
    key: String,
    cursor: StreamKey,
    feed: LiveFeed,
}

impl Shard {
    pub(super) fn new(changes_key: String) -> Self {
        Self {
            topics: Mutex::default(),
            fresh: Mutex::default(),
            changes_key,
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Starts reading the stream at `key` into `feed` (replacing a feed
    /// nobody listens to any more).
    pub(super) fn watch(&self, key: &str, feed: LiveFeed) {
        let mut topics = lock(&self.topics);
        topics.insert(key.to_owned(), Watched { feed, cursor: None });
        // Under the topics' lock: the reader takes it after the topic is in.
        lock(&self.fresh).push(key.to_owned());
        drop(topics);
        // A reader without topics waits for this; one with topics takes the
        // new one at its next step.
        self.notify.notify_one();
    }

    /// Stops reading the stream at `key` into `feed`.
    pub(super) fn unwatch(&self, key: &str, feed: &LiveFeed) {
        let mut topics = lock(&self.topics);
        if topics.get(key).is_some_and(|w| w.feed.same_as(feed)) {
            topics.remove(key);
        }
    }

    /// Stops the reader (after its current read).
    pub(super) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.notify.notify_one();
    }

    /// Drops topics nobody listens to; every topic to read (all of them).
    fn sweep(&self) -> Vec<Watch> {
        let mut topics = lock(&self.topics);
        // A feed nobody listens to is never listened to again: a new
        // subscriber brings a new feed.
        topics.retain(|_, watched| !watched.feed.is_closed());
        // Topics whose start a failed step interrupted: started next step.
        let mut fresh = lock(&self.fresh);
        fresh.clear();
        fresh.extend(
            topics
                .iter()
                .filter(|(_, watched)| watched.cursor.is_none())
                .map(|(key, _)| key.clone()),
        );
        topics
            .iter()
            .filter_map(|(key, watched)| {
                Some(Watch {
                    key: key.clone(),
                    cursor: watched.cursor?,
                    feed: watched.feed.clone(),
                })
            })
            .collect()
    }

    /// The topics added since the last call that are still to start, and
    /// whether the reader has no topic at all.
    fn take_fresh(&self) -> (Vec<(String, LiveFeed)>, bool) {
        let topics = lock(&self.topics);
        let keys = std::mem::take(&mut *lock(&self.fresh));
        let fresh = keys
            .into_iter()
            .filter_map(|key| {
                let watched = topics.get(&key).filter(|w| w.cursor.is_none())?;
                Some((key, watched.feed.clone()))
            })
            .collect();
        (fresh, topics.is_empty())
    }

    /// Hands `entries` of `key` to its feed, if the feed read is still the
    /// one watched; moves its cursor. An entry without an event (`None`)
    /// only moves the cursor, and is marked so subscribers read past it.
    fn deliver(
        &self,
        key: &str,
        feed: &LiveFeed,
        entries: impl IntoIterator<Item = (StreamKey, Option<Entry>)>,
    ) {
        let mut topics = lock(&self.topics);
        let Some(watched) = topics.get_mut(key).filter(|w| w.feed.same_as(feed)) else {
            return;
        };
        for (id, entry) in entries {
            match (watched.cursor, entry) {
                (Some(cursor), Some(entry)) => watched.feed.send(cursor.into(), &entry),
                _ => watched.feed.mark(id.into()),
            }
            watched.cursor = Some(id);
        }
    }
}

impl Shard {
    /// The topics among `keys` that the reader reads, where it is in them;
    /// drops those nobody listens to any more.
    fn watches<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Vec<Watch> {
        let mut topics = lock(&self.topics);
        keys.into_iter()
            .filter_map(|key| {
                if topics.get(key).is_some_and(|w| w.feed.is_closed()) {
                    topics.remove(key);
                }
                let watched = topics.get(key)?;
                Some(Watch {
                    key: key.to_owned(),
                    cursor: watched.cursor?,
                    feed: watched.feed.clone(),
                })
            })
            .collect()
    }
}

/// The reader task: runs until the shard is closed.
pub(super) async fn run(shard: Arc<Shard>, client: Client) {
    let mut conn: Option<ConnectionManager> = None;
    // Where the reader is in the change stream; `None`: not known, so
    // changes may have been missed and every topic is swept.
    let mut changes: Option<StreamKey> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        if shard.closed.load(SeqCst) {
            return;
        }
        let (fresh, empty) = shard.take_fresh();
        if empty {
            // Nothing to read: no connection either.
            conn = None;
            changes = None;
            shard.notified().await;
            continue;
        }
        let result = async {
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(
                    ConnectionManager::new_with_config(client.clone(), reader_config()).await?,
                ),
            };
            let cursor = match changes {
                Some(cursor) => cursor,
                None => {
                    // From here on, every change is seen: then sweep.
                    let cursor = super::newest(conn, &shard.changes_key).await?;
                    changes = Some(cursor);
                    read_all(&shard, conn, shard.sweep()).await?;
                    cursor
                }
            };
            if !fresh.is_empty() {
                start(&shard, conn, &fresh).await?;
            }
            match wait_for_changes(&shard, conn, cursor).await? {
                Some((cursor, changed)) => {
                    changes = Some(cursor);
                    let watch = shard.watches(changed.iter().map(String::as_str));
                    read_all(&shard, conn, watch).await?;
                }
                // A quiet period: sweep at the next step, in case the
                // change stream was trimmed, flushed or written by a
                // publisher that does not announce.
                None => changes = None,
            }
            RedisResult::Ok(())
        }
        .await;
        match result {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(err) => {
                tracing::warn!(error = %err, ?backoff, "broadcast: Redis read failed; reconnecting");
                conn = None;
                changes = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

impl Shard {
    async fn notified(&self) {
        if !self.closed.load(SeqCst) {
            self.notify.notified().await;
        }
    }
}

/// Blocks up to `BLOCK_MS` for change entries after `cursor`: the new
/// cursor and the keys that changed, or `None` if nothing did.
async fn wait_for_changes(
    shard: &Shard,
    conn: &mut ConnectionManager,
    cursor: StreamKey,
) -> RedisResult<Option<(StreamKey, HashSet<String>)>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(CHANGES_PAGE)
        .arg("BLOCK")
        .arg(BLOCK_MS)
        .arg("STREAMS")
        .arg(&shard.changes_key)
        .arg(cursor.to_string())
        .query_async(conn)
        .await?;
    let Some(entries) = reply.and_then(|reply| reply.keys.into_iter().next()) else {
        return Ok(None);
    };
    let mut cursor = cursor;
    let mut changed = HashSet::new();
    for entry in entries.ids {
        if let Some(id) = StreamKey::parse(&entry.id) {
            cursor = id;
        }
        if let Some(Value::BulkString(key)) = entry.map.get("k") {
            if let Ok(key) = String::from_utf8(key.clone()) {
                changed.insert(key);
            }
        }
    }
    Ok(Some((cursor, changed)))
}

/// Reads the new entries of every topic in `watch`, many per `XREAD`, until
/// none has more.
async fn read_all(
    shard: &Shard,
    conn: &mut ConnectionManager,
    mut watch: Vec<Watch>,
) -> RedisResult<()> {
    while !watch.is_empty() {
        let mut more = Vec::new();
        for batch in watch.chunks(BATCH) {
            more.extend(read(shard, conn, batch).await?);
        }
        watch = shard.watches(more.iter().map(String::as_str));
    }
    Ok(())
}

/// Reads the newest id of each new topic: the reader reads after it.
/// Subscribers that read the history before it fill what they lack up to it
/// now, rather than at the next event, which may be long in coming.
async fn start(
    shard: &Shard,
    conn: &mut ConnectionManager,
    fresh: &[(String, LiveFeed)],
) -> RedisResult<()> {
    for batch in fresh.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for (key, _) in batch {
            pipe.cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let replies: Vec<StreamRangeReply> = pipe.query_async(conn).await?;
        for ((key, feed), reply) in batch.iter().zip(replies) {
            let newest = reply
                .ids
                .first()
                .and_then(|entry| StreamKey::parse(&entry.id))
                .unwrap_or(StreamKey::ZERO);
            shard.deliver(key, feed, [(newest, None)]);
        }
    }
    Ok(())
}

/// One non-blocking read of the topics in `watch`; the keys that returned a
/// full page (and may hold more).
async fn read(
    shard: &Shard,
    conn: &mut ConnectionManager,
    watch: &[Watch],
) -> RedisResult<Vec<String>> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT").arg(PAGE).arg("STREAMS");
    for topic in watch {
        cmd.arg(&topic.key);
    }
    for topic in watch {
        cmd.arg(topic.cursor.to_string());
    }
    let reply: Option<StreamReadReply> = cmd.query_async(conn).await?;
    let Some(reply) = reply else {
        return Ok(Vec::new());
    };
    let feeds: HashMap<&str, &LiveFeed> = watch.iter().map(|w| (w.key.as_str(), &w.feed)).collect();
    let mut more = Vec::new();
    for stream in reply.keys {
        let Some(&feed) = feeds.get(stream.key.as_str()) else {
            continue;
        };
        if stream.ids.len() >= PAGE {
            more.push(stream.key.clone());
        }
        let entries = stream.ids.iter().filter_map(|entry| match entry_of(entry) {
            (Some(id), entry) => Some((id, entry)),
            (None, _) => None,
        });
        shard.deliver(&stream.key, feed, entries);
    }
    Ok(more)
}
