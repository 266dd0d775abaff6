//! Presence over Redis: members in hashes, changes in one stream, instances
//! kept alive by heartbeats and swept by each other when they stop.
//!
//! Each instance holds two connections: one for the scripts (join, leave,
//! list, heartbeat, sweep; see [`scripts`]) and one for its reader, which
//! blocks on the events stream and fans each change out to this instance's
//! listeners. Every change, this instance's own included, reaches its
//! listeners through Redis, so all instances see them in one order.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{stream, StreamExt};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::StreamReadReply,
    Client, RedisError, RedisResult, Value,
};
use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;

use super::{
    builder::Config, events::Fanout, Member, PresenceChange, PresenceError, PresenceEvent,
};
use crate::util::sync::lock;

mod scripts;

/// Members a sweep removes per script call (so Redis is never held long).
const SWEEP_BATCH: usize = 500;
/// Sweep script calls per heartbeat, at most.
const SWEEP_CALLS: usize = 1000;
/// Leaves done at once by the background task.
const LEAVES_AT_ONCE: usize = 64;
/// Events read per `XREAD`, and how long it blocks (ms).
const EVENTS_PAGE: usize = 512;
const BLOCK_MS: u64 = 5_000;
/// The reader's and the leaver's first and longest wait before retrying.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

fn backend(err: RedisError) -> PresenceError {
    PresenceError::Backend(Box::new(err))
}

/// One instance: what guards and listeners hold. Dropping the last one
/// stops its tasks (after the queued leaves are done).
pub(in crate::presence) struct Instance {
    shared: Arc<Shared>,
    leaves: mpsc::UnboundedSender<u64>,
    cancel: CancellationToken,
    pub(in crate::presence) fanout: Arc<Fanout>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What the instance's tasks share with it.
struct Shared {
    config: Config,
    conn: ConnectionManager,
    instances_key: String,
    events_key: String,
    state: Mutex<State>,
    /// Joins and leaves read it; a recovery (a new instance id) writes it,
    /// so no join or leave runs under an id being retired.
    epoch: RwLock<()>,
}

struct State {
    /// This instance's id in Redis; a new one after it was expired.
    instance: String,
    next: u64,
    /// Members of this instance, by join: what a recovery joins again.
    members: HashMap<u64, Local>,
}

struct Local {
    topic: Arc<str>,
    json: String,
    /// Its leave is under way: a recovery does not join it again.
    leaving: bool,
}

fn random_instance() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// Scripts fail fast while Redis is away (the heartbeat retries at its next
/// tick, the leaver with a backoff).
fn command_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(5))
}

/// The reader's connection: answers come after up to `BLOCK_MS`.
fn reader_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_millis(BLOCK_MS) + Duration::from_secs(10))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Instance {
    pub(in crate::presence) async fn connect(
        url: &str,
        config: Config,
    ) -> Result<Arc<Self>, PresenceError> {
        let client = Client::open(url).map_err(backend)?;
        let conn = ConnectionManager::new_with_config(client.clone(), command_config())
            .await
            .map_err(backend)?;
        let prefix = &config.key_prefix;
        let shared = Arc::new(Shared {
            instances_key: format!("{prefix}\0instances"),
            events_key: format!("{prefix}\0events"),
            conn,
            state: Mutex::new(State {
                instance: random_instance(),
                next: 0,
                members: HashMap::new(),
            }),
            epoch: RwLock::new(()),
            config,
        });
        let instance = lock(&shared.state).instance.clone();
        shared.heartbeat(&instance, true).await.map_err(backend)?;
        // Members of instances that expired while none was running.
        shared.sweep().await.map_err(backend)?;
        // Events from here on reach this instance's listeners.
        let cursor = shared.newest_event().await.map_err(backend)?;
        let fanout = Fanout::new(shared.config.buffer);
        let cancel = CancellationToken::new();
        let (leaves, queued) = mpsc::unbounded_channel();
        tokio::spawn(maintain(Arc::clone(&shared), cancel.clone()));
        tokio::spawn(leaver(Arc::clone(&shared), queued, cancel.clone()));
        tokio::spawn(read_events(
            Arc::clone(&shared),
            client,
            cursor,
            Arc::clone(&fanout),
            cancel.clone(),
        ));
        Ok(Arc::new(Self {
            shared,
            leaves,
            cancel,
            fanout,
        }))
    }

    pub(in crate::presence) async fn join(
        &self,
        topic: &Arc<str>,
        member: Member,
    ) -> Result<u64, PresenceError> {
        let json = member.to_json();
        // A lost instance id (expired) is replaced, then the join retried.
        for _ in 0..3 {
            let epoch = self.shared.epoch.read().await;
            let (instance, id) = {
                let mut state = lock(&self.shared.state);
                let id = state.next;
                state.next += 1;
                (state.instance.clone(), id)
            };
            let result = self.shared.join(&instance, id, topic, &json).await;
            let local = Local {
                topic: Arc::clone(topic),
                json: json.clone(),
                leaving: result.is_err(),
            };
            match result {
                Ok(true) => {
                    lock(&self.shared.state).members.insert(id, local);
                    return Ok(id);
                }
                Ok(false) => {
                    drop(epoch);
                    self.shared.recover(&instance).await.map_err(backend)?;
                }
                Err(err) => {
                    // The join may have been done before the answer was
                    // lost: undo it in the background.
                    lock(&self.shared.state).members.insert(id, local);
                    self.leave_later(id);
                    return Err(backend(err));
                }
            }
        }
        Err(PresenceError::Backend(
            "this instance's heartbeat keeps expiring in Redis".into(),
        ))
    }

    /// Leaves now; on failure, the background task retries.
    pub(in crate::presence) async fn leave(&self, id: u64) -> Result<(), PresenceError> {
        match self.shared.leave(id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.leave_later(id);
                Err(backend(err))
            }
        }
    }

    /// Queues the leave for the background task.
    pub(in crate::presence) fn leave_later(&self, id: u64) {
        if let Some(local) = lock(&self.shared.state).members.get_mut(&id) {
            local.leaving = true;
        }
        // Closed only once the instance is gone, and guards hold it.
        let _ = self.leaves.send(id);
    }

    pub(in crate::presence) async fn list(
        &self,
        topic: &str,
    ) -> Result<Vec<Member>, PresenceError> {
        let mut conn = self.shared.conn.clone();
        let members: Vec<Vec<u8>> = redis::cmd("EVAL")
            .arg(scripts::LIST)
            .arg(2)
            .arg(self.shared.topic_key(topic))
            .arg(&self.shared.instances_key)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(members
            .iter()
            .filter_map(|json| Member::from_json(json))
            .collect())
    }
}

impl Shared {
    fn topic_key(&self, topic: &str) -> String {
        format!("{}m:{topic}", self.config.key_prefix)
    }

    fn index_key(&self, instance: &str) -> String {
        format!("{}\0i:{instance}", self.config.key_prefix)
    }

    /// Renews (or with `registering`, creates) the instance's heartbeat;
    /// `false` if the instance was expired.
    async fn heartbeat(&self, instance: &str, registering: bool) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let renewed: i64 = redis::cmd("EVAL")
            .arg(scripts::HEARTBEAT)
            .arg(1)
            .arg(&self.instances_key)
            .arg(instance)
            .arg(millis(self.config.expiry()))
            .arg(if registering { "1" } else { "0" })
            .query_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    /// `false` if the instance was expired (nothing joined).
    async fn join(&self, instance: &str, id: u64, topic: &str, json: &str) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let joined: i64 = redis::cmd("EVAL")
            .arg(scripts::JOIN)
            .arg(4)
            .arg(&self.instances_key)
            .arg(self.topic_key(topic))
            .arg(self.index_key(instance))
            .arg(&self.events_key)
            .arg(instance)
            .arg(format!("{instance}:{id}"))
            .arg(topic)
            .arg(json)
            .arg(self.config.events_kept)
            .query_async(&mut conn)
            .await?;
        Ok(joined == 1)
    }

    async fn leave(&self, id: u64) -> RedisResult<()> {
        let _epoch = self.epoch.read().await;
        let (instance, topic) = {
            let mut state = lock(&self.state);
            let instance = state.instance.clone();
            let Some(local) = state.members.get_mut(&id) else {
                return Ok(());
            };
            local.leaving = true;
            (instance, Arc::clone(&local.topic))
        };
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("EVAL")
            .arg(scripts::LEAVE)
            .arg(3)
            .arg(self.topic_key(&topic))
            .arg(self.index_key(&instance))
            .arg(&self.events_key)
            .arg(format!("{instance}:{id}"))
            .arg(&*topic)
            .arg(self.config.events_kept)
            .query_async(&mut conn)
            .await?;
        lock(&self.state).members.remove(&id);
        Ok(())
    }

    /// One sweep step: of `instance`, or of any expired instance for
    /// `None`. `true` if there may be more to do.
    async fn sweep_step(&self, instance: Option<&str>) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let more: i64 = redis::cmd("EVAL")
            .arg(scripts::SWEEP)
            .arg(2)
            .arg(&self.instances_key)
            .arg(&self.events_key)
            .arg(&self.config.key_prefix)
            .arg(SWEEP_BATCH)
            .arg(self.config.events_kept)
            .arg(instance.unwrap_or(""))
            .query_async(&mut conn)
            .await?;
        Ok(more == 1)
    }

    /// Removes the members of expired instances, with their events.
    async fn sweep(&self) -> RedisResult<()> {
        for _ in 0..SWEEP_CALLS {
            if !self.sweep_step(None).await? {
                break;
            }
        }
        Ok(())
    }

    /// This instance was expired (its heartbeat was late: Redis was away,
    /// or the process stalled) and its members swept or about to be: the
    /// old id's members leave (with `expire` events), then the live ones
    /// join again under a new id.
    async fn recover(&self, old: &str) -> RedisResult<()> {
        let _epoch = self.epoch.write().await;
        if lock(&self.state).instance != old {
            // Another caller recovered already.
            return Ok(());
        }
        while self.sweep_step(Some(old)).await? {}
        let new = random_instance();
        self.heartbeat(&new, true).await?;
        let members: Vec<(u64, Arc<str>, String)> = lock(&self.state)
            .members
            .iter()
            .filter(|(_, local)| !local.leaving)
            .map(|(&id, local)| (id, Arc::clone(&local.topic), local.json.clone()))
            .collect();
        for (id, topic, json) in members {
            self.join(&new, id, &topic, &json).await?;
        }
        tracing::warn!(
            old,
            new,
            "presence: this instance had expired in Redis; its members joined again"
        );
        lock(&self.state).instance = new;
        Ok(())
    }

    async fn newest_event(&self) -> RedisResult<String> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.events_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(reply
            .ids
            .first()
            .map_or_else(|| "0-0".to_owned(), |entry| entry.id.clone()))
    }
}

/// Heartbeat and sweep, every `heartbeat` interval, until cancelled.
async fn maintain(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(shared.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now: `connect` just did both.
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let instance = lock(&shared.state).instance.clone();
        let renewed = match shared.heartbeat(&instance, false).await {
            Ok(true) => Ok(()),
            // Unregistered by the leaver as the instance went away.
            Ok(false) if cancel.is_cancelled() => return,
            Ok(false) => shared.recover(&instance).await,
            Err(err) => Err(err),
        };
        if let Err(err) = renewed {
            tracing::warn!(error = %err, "presence: heartbeat failed; retrying at the next tick");
            continue;
        }
        if let Err(err) = shared.sweep().await {
            tracing::warn!(error = %err, "presence: sweeping expired instances failed");
        }
    }
}

/// Does the leaves of dropped guards; retries those that fail. When the
/// instance is gone (the channel closed) and all are done, it unregisters.
async fn leaver(
    shared: Arc<Shared>,
    mut queued: mpsc::UnboundedReceiver<u64>,
    cancel: CancellationToken,
) {
    let mut pending: Vec<u64> = Vec::new();
    let mut backoff = BACKOFF_MIN;
    let mut open = true;
    loop {
        if pending.is_empty() {
            match queued.recv().await {
                Some(id) => pending.push(id),
                None => break,
            }
        }
        while let Ok(id) = queued.try_recv() {
            pending.push(id);
        }
        let shared_ref = &shared;
        let failed: Vec<u64> = stream::iter(std::mem::take(&mut pending))
            .map(|id| async move { shared_ref.leave(id).await.err().map(|err| (id, err)) })
            .buffer_unordered(LEAVES_AT_ONCE)
            .filter_map(|failed| async move { failed })
            .map(|(id, err)| {
                tracing::warn!(error = %err, "presence: leaving failed; retrying");
                id
            })
            .collect()
            .await;
        if failed.is_empty() {
            backoff = BACKOFF_MIN;
            continue;
        }
        pending = failed;
        if !open && cancel.is_cancelled() {
            // The instance is gone and Redis away: its heartbeat stops, so
            // the members expire and another instance sweeps them.
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = cancel.cancelled(), if open => open = false,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    // Gone: forget the instance now rather than at its expiry.
    let instance = lock(&shared.state).instance.clone();
    loop {
        match shared.sweep_step(Some(&instance)).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                tracing::debug!(error = %err, "presence: unregistering failed; the instance expires instead");
                break;
            }
        }
    }
}

/// Reads the events stream and fans each change out, until cancelled.
async fn read_events(
    shared: Arc<Shared>,
    client: Client,
    mut cursor: String,
    fanout: Arc<Fanout>,
    cancel: CancellationToken,
) {
    let mut conn: Option<ConnectionManager> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let read = async {
            let conn = match &mut conn {
                Some(conn) => conn,
                None => conn.insert(
                    ConnectionManager::new_with_config(client.clone(), reader_config()).await?,
                ),
            };
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(EVENTS_PAGE)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&shared.events_key)
                .arg(&cursor)
                .query_async(conn)
                .await?;
            RedisResult::Ok(reply)
        };
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            result = read => result,
        };
        match result {
            Ok(reply) => {
                backoff = BACKOFF_MIN;
                let entries = reply
                    .and_then(|reply| reply.keys.into_iter().next())
                    .map(|stream| stream.ids)
                    .unwrap_or_default();
                for entry in entries {
                    cursor.clone_from(&entry.id);
                    match event(&entry.map) {
                        Some(event) => fanout.send(&event),
                        None => {
                            tracing::warn!(id = %entry.id, "presence: skipping an events entry that holds no change")
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, ?backoff, "presence: reading events failed; reconnecting");
                conn = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// The change an events entry records.
fn event(fields: &HashMap<String, Value>) -> Option<PresenceEvent> {
    let bytes = |name: &str| match fields.get(name) {
        Some(Value::BulkString(bytes)) => Some(bytes.as_slice()),
        _ => None,
    };
    let change = match bytes("c")? {
        b"join" => PresenceChange::Joined,
        b"leave" => PresenceChange::Left,
        b"expire" => PresenceChange::Expired,
        _ => return None,
    };
    let topic = std::str::from_utf8(bytes("t")?).ok()?;
    let member = Member::from_json(bytes("m")?)?;
    Some(PresenceEvent::new(topic.into(), member, change))
}
