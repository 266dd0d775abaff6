//! One subscriber's feed: the replay, then the live events, with gaps filled
//! from the history.

use std::{collections::VecDeque, sync::Arc};

use redis::{
    aio::ConnectionManager, streams::StreamRangeReply, AsyncCommands, RedisError, RedisResult,
};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::{Duration, Instant},
};

use crate::EncodedEvent;

use super::{entry, generation, stream_key::StreamKey, Live, BACKOFF_MAX, BACKOFF_MIN, PAGE};

/// How long a subscriber keeps trying to read the history before its
/// subscription ends.
const READ_RETRY: Duration = Duration::from_secs(10);
use crate::broadcast::{position::Generation, stats::Counters};

/// One subscriber's state: what it has seen, and what it still has to yield.
pub(super) struct Feed {
    pub(super) conn: ConnectionManager,
    pub(super) key: String,
    /// Everything up to this id has been queued or deliberately skipped.
    pub(super) last: StreamKey,
    pub(super) pending: VecDeque<EncodedEvent>,
    /// Whether the history after `last` has been read to its end.
    pub(super) replay_done: bool,
    pub(super) live: broadcast::Receiver<Live>,
    pub(super) counters: Arc<Counters>,
    /// The generation of the last event queued, once known.
    pub(super) generation: Option<Generation>,
    /// The missed-events event.
    pub(super) missed: EncodedEvent,
}

impl Feed {
    pub(super) async fn next(&mut self) -> Option<EncodedEvent> {
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
                Ok(live) if live.id <= self.last => {}
                Ok(live) => {
                    // Entries between what we saw and what the reader read
                    // after: read them from the history first.
                    while live.prev > self.last {
                        match self.read_retrying(Some(live.prev)).await {
                            Ok(read) if read == PAGE => {}
                            Ok(_) => self.last = live.prev,
                            Err(err) => return self.fail(&err),
                        }
                    }
                    self.last = live.id;
                    if live.event.is_some() {
                        self.counters.delivered_from_redis(live.id.ms());
                    }
                    self.queue(live.generation, live.event);
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

    /// [`read_after`](Self::read_after), tried again while Redis comes
    /// back (a restart, a failover, the first command on a connection that
    /// died): a connected subscriber rides out a short outage rather than
    /// ending.
    async fn read_retrying(&mut self, end: Option<StreamKey>) -> RedisResult<usize> {
        let deadline = Instant::now() + READ_RETRY;
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.read_after(end).await {
                Ok(read) => return Ok(read),
                Err(err) if Instant::now() + backoff < deadline => {
                    tracing::debug!(key = %self.key, error = %err, ?backoff, "broadcast: reading the history failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Queues `event`, after the missed-events event if it starts a new
    /// generation: the stream was deleted, flushed or expired since the last
    /// event, and what it held but had not reached this subscriber is gone.
    fn queue(&mut self, generation: Option<Generation>, event: Option<EncodedEvent>) {
        if let Some(generation) = generation {
            if self.generation.is_some_and(|seen| seen != generation) {
                self.pending.push_back(self.missed.clone());
            }
            self.generation = Some(generation);
        }
        self.pending.extend(event);
    }

    /// The newest id of the stream (`0-0` if it is empty); notes its
    /// generation.
    pub(super) async fn newest(&mut self) -> RedisResult<StreamKey> {
        let reply: StreamRangeReply = self.conn.xrevrange_count(&self.key, "+", "-", 1).await?;
        let Some(newest) = reply.ids.first() else {
            return Ok(StreamKey::ZERO);
        };
        self.generation = generation(newest);
        Ok(StreamKey::parse(&newest.id).unwrap_or(StreamKey::ZERO))
    }

    /// Whether the stream holds `id`, written in `generation`.
    pub(super) async fn exists(
        &mut self,
        generation: Generation,
        id: StreamKey,
    ) -> RedisResult<bool> {
        let id = id.to_string();
        let reply: StreamRangeReply = self.conn.xrange_count(&self.key, &id, &id, 1).await?;
        Ok(reply
            .ids
            .first()
            .is_some_and(|entry| self::generation(entry) == Some(generation)))
    }

    /// Queues up to a page of entries after `last` (up to `end`), moving
    /// `last`; returns how many entries were read.
    pub(super) async fn read_after(&mut self, end: Option<StreamKey>) -> RedisResult<usize> {
        let start = format!("({}", self.last);
        let end = end.map_or_else(|| "+".to_owned(), |end| end.to_string());
        let reply: StreamRangeReply = self.conn.xrange_count(&self.key, start, end, PAGE).await?;
        let read = reply.ids.len();
        for (id, generation, event) in reply.ids.into_iter().filter_map(entry) {
            self.last = id;
            self.queue(generation, event);
        }
        Ok(read)
    }
}
