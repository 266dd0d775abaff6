//! The reader: new entries of the topics this instance serves.

use std::{pin::pin, sync::Arc, time::Duration};

use futures_util::future::{select, Either};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamReadOptions, StreamReadReply},
    AsyncCommands, RedisResult,
};

use crate::EncodedEvent;

use super::{
    entry, newest, stream_key::StreamKey, Hub, Live, Redis, BACKOFF_MAX, BACKOFF_MIN, BLOCK_MS,
    PAGE,
};

/// What one step of a reader found.
enum Read {
    /// The newest id when the reader started: it reads after it.
    Start(StreamKey),
    Entries(Vec<(StreamKey, Option<EncodedEvent>)>),
}

/// A reader's connection: answers come after up to `BLOCK_MS`. The reader
/// retries with a backoff of its own.
fn reader_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_millis(BLOCK_MS) + Duration::from_secs(5))
}

/// The one task per instance and topic that reads new entries.
pub(super) struct Reader {
    shared: Arc<Redis>,
    topic: String,
    key: String,
    hub: Arc<Hub>,
    conn: Option<ConnectionManager>,
    /// The last id read, once known.
    cursor: Option<StreamKey>,
}

impl Reader {
    pub(super) fn new(shared: Arc<Redis>, topic: String, key: String, hub: Arc<Hub>) -> Self {
        Self {
            shared,
            topic,
            key,
            hub,
            conn: None,
            cursor: None,
        }
    }

    pub(super) async fn run(mut self) {
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
