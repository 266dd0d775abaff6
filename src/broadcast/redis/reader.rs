//! The reader: new entries of every topic this instance serves, over a few
//! connections.
//!
//! Topics are spread over [`READERS`] shards by their key. Each shard is one
//! task and (while it has topics) one connection, looping on one blocking
//! `XREAD COUNT .. BLOCK .. STREAMS wake k1 k2 .. id id1 id2 ..` over all its
//! topics. A topic joins a shard when its first subscriber arrives; the
//! shard's own wake-up stream (`{prefix}wake:{instance}:{shard}`, one
//! `XADD` per change, not per topic) ends the blocking read at once so the
//! next one includes it. A topic whose subscribers have all left is dropped
//! at the next read: it costs no reader work after that.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::Duration,
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamRangeReply, StreamReadReply},
    Client, RedisResult,
};
use tokio::sync::{broadcast, Notify};

use super::{
    entry, lock, stream_key::StreamKey, Hub, Live, BACKOFF_MAX, BACKOFF_MIN, BLOCK_MS, PAGE,
};

/// Reader connections per instance. With the publishing connection, an
/// instance holds `READERS + 1` connections to Redis, whatever the number of
/// topics.
pub(super) const READERS: usize = 2;

/// New topics whose newest id is read in one pipeline.
const START_BATCH: usize = 1000;

/// How long a wake-up stream lives after its last wake-up.
const WAKE_EXPIRY_MS: u64 = 60_000;

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
    /// Redis key → the topic's hub and where the reader is in its stream.
    topics: Mutex<HashMap<String, Watched>>,
    /// A wake-up is on its way, or the reader has yet to look at the topics.
    wake_pending: AtomicBool,
    wake_key: String,
    /// Wakes a reader that has no topics (and so no connection), or that
    /// must stop.
    notify: Notify,
    closed: AtomicBool,
}

struct Watched {
    hub: Arc<Hub>,
    /// The last id read; `None` until the reader has read the newest.
    cursor: Option<StreamKey>,
}

/// One topic as a read sees it.
struct Watch {
    key: String,
    cursor: StreamKey,
    hub: Arc<Hub>,
}

impl Shard {
    pub(super) fn new(wake_key: String) -> Self {
        Self {
            topics: Mutex::default(),
            wake_pending: AtomicBool::new(false),
            wake_key,
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// A receiver of the live events of the stream at `key`, adding the
    /// topic (and waking the reader, over `conn`) if it is new here.
    pub(super) fn subscribe(
        &self,
        key: &str,
        buffer: usize,
        conn: &ConnectionManager,
    ) -> broadcast::Receiver<Live> {
        let mut topics = lock(&self.topics);
        if let Some(watched) = topics.get(key) {
            return watched.hub.live.subscribe();
        }
        let (live, receiver) = broadcast::channel(buffer);
        topics.insert(
            key.to_owned(),
            Watched {
                hub: Arc::new(Hub { live }),
                cursor: None,
            },
        );
        drop(topics);
        self.wake(conn);
        receiver
    }

    /// Makes the reader look at its topics again soon: at once if it has
    /// none, else by ending its blocking read with an entry on its wake-up
    /// stream. One wake-up covers every change made before the reader looks.
    fn wake(&self, conn: &ConnectionManager) {
        self.notify.notify_one();
        if self.wake_pending.swap(true, SeqCst) {
            return;
        }
        let mut conn = conn.clone();
        let key = self.wake_key.clone();
        tokio::spawn(async move {
            let woken: RedisResult<()> = redis::pipe()
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg(1)
                .arg("*")
                .arg("w")
                .arg(1)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(WAKE_EXPIRY_MS)
                .ignore()
                .query_async(&mut conn)
                .await;
            if let Err(err) = woken {
                // The reader's read times out after `BLOCK_MS` and looks then.
                tracing::debug!(error = %err, "broadcast: waking the Redis reader failed");
            }
        });
    }

    /// Stops the reader (after its current read).
    pub(super) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.notify.notify_one();
    }

    /// Drops topics nobody listens to; the topics to start (no cursor yet)
    /// and those to read.
    fn snapshot(&self) -> (Vec<(String, Arc<Hub>)>, Vec<Watch>) {
        let mut topics = lock(&self.topics);
        // Subscribing happens under the same lock: nobody joins a hub
        // between this count and its removal.
        topics.retain(|_, watched| watched.hub.live.receiver_count() > 0);
        let mut fresh = Vec::new();
        let mut watch = Vec::with_capacity(topics.len());
        for (key, watched) in topics.iter() {
            let hub = Arc::clone(&watched.hub);
            match watched.cursor {
                None => fresh.push((key.clone(), hub)),
                Some(cursor) => watch.push(Watch {
                    key: key.clone(),
                    cursor,
                    hub,
                }),
            }
        }
        (fresh, watch)
    }

    /// Hands `entries` of `key` to its hub, if the hub read is still the
    /// one watched; moves its cursor.
    fn deliver(&self, key: &str, hub: &Arc<Hub>, entries: impl IntoIterator<Item = Live>) {
        let mut topics = lock(&self.topics);
        let Some(watched) = topics.get_mut(key).filter(|w| Arc::ptr_eq(&w.hub, hub)) else {
            return;
        };
        for mut live in entries {
            if let Some(cursor) = watched.cursor {
                live.prev = cursor;
            }
            watched.cursor = Some(live.id);
            // No receivers is fine: the topic goes at the next read.
            let _ = watched.hub.live.send(live);
        }
    }
}

/// One shard's reader task: runs until the shard is closed.
pub(super) async fn run(shard: Arc<Shard>, client: Client) {
    let mut conn: Option<ConnectionManager> = None;
    let mut wake_cursor = StreamKey::ZERO;
    let mut backoff = BACKOFF_MIN;
    loop {
        if shard.closed.load(SeqCst) {
            return;
        }
        // Before looking: a topic added after this gets a wake-up of its own.
        shard.wake_pending.store(false, SeqCst);
        let (fresh, watch) = shard.snapshot();
        if fresh.is_empty() && watch.is_empty() {
            // Nothing to read: no connection either.
            conn = None;
            shard.notify.notified().await;
            continue;
        }
        let result = async {
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(
                    ConnectionManager::new_with_config(client.clone(), reader_config()).await?,
                ),
            };
            if !fresh.is_empty() {
                start(&shard, conn, &fresh).await?;
            }
            if !watch.is_empty() {
                read(&shard, conn, &watch, &mut wake_cursor).await?;
            }
            RedisResult::Ok(())
        }
        .await;
        match result {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(err) => {
                tracing::warn!(error = %err, ?backoff, "broadcast: Redis read failed; reconnecting");
                conn = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Reads the newest id of each new topic: the reader reads after it.
/// Subscribers that read the history before it fill what they lack up to it
/// now, rather than at the next event, which may be long in coming.
async fn start(
    shard: &Shard,
    conn: &mut ConnectionManager,
    fresh: &[(String, Arc<Hub>)],
) -> RedisResult<()> {
    for batch in fresh.chunks(START_BATCH) {
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
        for ((key, hub), reply) in batch.iter().zip(replies) {
            let newest = reply
                .ids
                .first()
                .and_then(|entry| StreamKey::parse(&entry.id))
                .unwrap_or(StreamKey::ZERO);
            let mark = Live {
                id: newest,
                prev: newest,
                event: None,
            };
            shard.deliver(key, hub, [mark]);
        }
    }
    Ok(())
}

/// One blocking read of every watched topic and the wake-up stream.
async fn read(
    shard: &Shard,
    conn: &mut ConnectionManager,
    watch: &[Watch],
    wake_cursor: &mut StreamKey,
) -> RedisResult<()> {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(PAGE)
        .arg("BLOCK")
        .arg(BLOCK_MS)
        .arg("STREAMS")
        .arg(&shard.wake_key);
    for topic in watch {
        cmd.arg(&topic.key);
    }
    cmd.arg(wake_cursor.to_string());
    for topic in watch {
        cmd.arg(topic.cursor.to_string());
    }
    let reply: Option<StreamReadReply> = cmd.query_async(conn).await?;
    let Some(reply) = reply else {
        return Ok(());
    };
    let hubs: HashMap<&str, &Arc<Hub>> = watch.iter().map(|w| (w.key.as_str(), &w.hub)).collect();
    for stream in reply.keys {
        if stream.key == shard.wake_key {
            if let Some(last) = stream.ids.last().and_then(|e| StreamKey::parse(&e.id)) {
                *wake_cursor = last;
            }
            continue;
        }
        let Some(&hub) = hubs.get(stream.key.as_str()) else {
            continue;
        };
        let entries = stream
            .ids
            .into_iter()
            .filter_map(entry)
            .map(|(id, event)| Live {
                id,
                prev: StreamKey::ZERO,
                event,
            });
        shard.deliver(&stream.key, hub, entries);
    }
    Ok(())
}
