//! The store: starts producers, keeps their logs, opens readers.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use futures_util::{FutureExt, StreamExt};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    broadcast::{Broadcast, BroadcastBuilder},
    util::sync::lock,
    Event,
};

use super::{
    builder::Config,
    control::{self, Control},
    sink::{EventSink, Shared},
    stream::{self, Resume},
    ResumableBuilder, ResumableError, SinkError,
};

/// Where the logs live.
pub(super) enum Logs {
    /// A broadcast per response, built from these settings.
    Memory(BroadcastBuilder),
    /// One broadcast (Redis) for all: a topic per response.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Shared(Broadcast),
}

/// Resumable responses: producers that outlive their clients, and readers
/// that resume their logs. A cheap handle: clone it into your state.
///
/// See the [module docs](super) for the model and an example.
#[derive(Clone)]
pub struct ResumableResponses {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: Config,
    logs: Logs,
    state: Mutex<State>,
    tasks: TaskTracker,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Running producers of this instance.
    live: usize,
    /// Finished responses kept in memory, oldest first (may name some
    /// already removed; cleaned when it grows).
    finished: VecDeque<(String, u64)>,
    retained: usize,
    next_seq: u64,
}

struct Entry {
    /// The response's own log (memory only).
    log: Option<Broadcast>,
    /// Set while its producer runs on this instance.
    cancel: Option<CancellationToken>,
    /// Tells this response from a later one with the same id.
    seq: u64,
}

impl Inner {
    /// Whether the logs are shared by instances (Redis): a producer may
    /// then run, and die, elsewhere.
    pub(super) fn is_shared(&self) -> bool {
        matches!(self.logs, Logs::Shared(_))
    }
}

impl Default for ResumableResponses {
    fn default() -> Self {
        Self::new()
    }
}

impl ResumableResponses {
    /// An in-memory store with the default settings (see
    /// [`ResumableBuilder`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Settings first, then where the logs live.
    pub fn builder() -> ResumableBuilder {
        ResumableBuilder::new()
    }

    pub(super) fn from_parts(config: Config, logs: Logs) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                logs,
                state: Mutex::default(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Starts a response: spawns `producer` with the [`EventSink`] of a new
    /// log, and returns the response's id (32 hex digits, random) at once.
    ///
    /// The producer runs on its own task, whether anyone reads the
    /// response or not, until it returns, [`cancel`](Self::cancel) is
    /// called, or [`max_duration`](ResumableBuilder::max_duration) passes.
    /// `Ok(())` completes the response; an error, a cancel or the time limit
    /// ends it incomplete. Either way readers get every event written, then
    /// the end of the stream.
    ///
    /// Needs a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ResumableError::TooManyLive`], [`ResumableError::ShuttingDown`],
    /// and with Redis [`ResumableError::Backend`]. The producer is not run
    /// then.
    pub async fn start<F, Fut>(&self, producer: F) -> Result<String, ResumableError>
    where
        F: FnOnce(EventSink) -> Fut,
        Fut: Future<Output = Result<(), SinkError>> + Send + 'static,
    {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        // 128 random bits: no need to ask Redis whether the id is taken.
        self.start_inner(&id, false, producer).await?;
        Ok(id)
    }

    /// [`start`](Self::start) with an id of your choosing (1 to 64 bytes of
    /// ASCII letters, digits, `-`, `_`, `.`, `:`), such as a chat's id and
    /// turn, so that any instance finds the response from what the client
    /// knows.
    ///
    /// # Errors
    ///
    /// Those of [`start`](Self::start); [`ResumableError::InvalidId`];
    /// [`ResumableError::AlreadyExists`] when the store holds a response
    /// with this id (with Redis: one whose log has not expired; two
    /// instances starting the same id at the same moment are not told
    /// apart, so make such ids unique).
    pub async fn start_with_id<F, Fut>(&self, id: &str, producer: F) -> Result<(), ResumableError>
    where
        F: FnOnce(EventSink) -> Fut,
        Fut: Future<Output = Result<(), SinkError>> + Send + 'static,
    {
        self.start_inner(id, true, producer).await
    }

    async fn start_inner<F, Fut>(
        &self,
        id: &str,
        check_shared: bool,
        producer: F,
    ) -> Result<(), ResumableError>
    where
        F: FnOnce(EventSink) -> Fut,
        Fut: Future<Output = Result<(), SinkError>> + Send + 'static,
    {
        if !is_response_id(id) {
            return Err(ResumableError::InvalidId);
        }
        let inner = &self.inner;
        if inner
            .config
            .shutdown
            .as_ref()
            .is_some_and(|s| s.is_triggered())
        {
            return Err(ResumableError::ShuttingDown);
        }
        if check_shared && matches!(inner.logs, Logs::Shared(_)) {
            // A finished response of another instance lives only in Redis.
            if let Resume::Stream(_) | Resume::Complete = self.resume(id, None).await? {
                return Err(ResumableError::AlreadyExists);
            }
        }
        let cancel = CancellationToken::new();
        // A log of its own (memory) gets its start marker before anyone can
        // find it; a shared one (Redis) only once this start is accepted.
        let (log, own) = match &inner.logs {
            Logs::Memory(template) => {
                let log = template.clone().build();
                log.publish(id, Control::Start.event())
                    .await
                    .map_err(ResumableError::Backend)?;
                (log.clone(), Some(log))
            }
            Logs::Shared(log) => (log.clone(), None),
        };
        let seq = {
            let mut state = lock(&inner.state);
            if state.entries.contains_key(id) {
                return Err(ResumableError::AlreadyExists);
            }
            if state.live >= inner.config.max_live {
                return Err(ResumableError::TooManyLive {
                    limit: inner.config.max_live,
                });
            }
            state.live += 1;
            state.next_seq += 1;
            let seq = state.next_seq;
            state.entries.insert(
                id.to_owned(),
                Entry {
                    log: own,
                    cancel: Some(cancel.clone()),
                    seq,
                },
            );
            seq
        };
        // With Redis, a cancel may come from any instance: listen for it
        // from before the response can be found.
        let mut cancel_requests = None;
        if matches!(inner.logs, Logs::Shared(_)) {
            let listened = log.subscribe(&cancel_topic(id), None).await;
            let started = match listened {
                Ok(requests) => {
                    cancel_requests = Some(requests);
                    log.publish(id, Control::Start.event()).await.map(drop)
                }
                Err(err) => Err(err),
            };
            if let Err(err) = started {
                let mut state = lock(&inner.state);
                state.live -= 1;
                state.entries.remove(id);
                return Err(ResumableError::Backend(err));
            }
        }
        let shared = Arc::new(Shared {
            log,
            topic: id.to_owned(),
            max_events: inner.config.max_events,
            max_bytes: inner.config.max_bytes,
            state: AsyncMutex::default(),
        });
        // A producer that panics ends its response like one that failed:
        // its readers must not wait for an end that never comes.
        let run = AssertUnwindSafe(producer(EventSink::new(Arc::clone(&shared)))).catch_unwind();
        let weak = Arc::downgrade(inner);
        let max_duration = inner.config.max_duration;
        let cancel_requested = async move {
            let Some(mut requests) = cancel_requests else {
                return std::future::pending().await;
            };
            if requests.next().await.is_none() {
                // Redis failed for some 10 s: this response can now only be
                // cancelled on this instance.
                tracing::warn!("lost the cancel requests of a resumable response");
                std::future::pending::<()>().await;
            }
        };
        inner.tasks.spawn(async move {
            let outcome = tokio::select! {
                result = run => match result {
                    Ok(Ok(())) => Control::End,
                    Err(_panic) => {
                        tracing::error!("resumable producer panicked");
                        Control::Cut
                    }
                    Ok(Err(err)) => {
                        if !matches!(err, SinkError::TooLarge | SinkError::Closed) {
                            tracing::warn!(error = %err, "resumable producer failed");
                        }
                        Control::Cut
                    }
                },
                () = cancel.cancelled() => Control::Cut,
                () = cancel_requested => Control::Cut,
                () = tokio::time::sleep(max_duration) => {
                    tracing::warn!(?max_duration, "resumable producer ran out of time");
                    Control::Cut
                }
            };
            if let Err(err) = shared.finish(outcome).await {
                tracing::warn!(error = %err, "could not write the end of a resumable response");
            }
            finished(weak, shared.topic.clone(), seq);
        });
        Ok(())
    }

    /// Stops the producer of response `id` and ends the response there,
    /// incomplete: readers get what was written, then the end of their
    /// stream. A response that has already ended stays as it is.
    ///
    /// In memory the producer runs on this instance, or nowhere. With
    /// Redis it may run on any instance of the store: when it does not run
    /// here and its log exists, the request goes through Redis to every
    /// instance, and the one running the producer stops it (in about one
    /// round trip to Redis).
    ///
    /// Returns `true` when a producer was running here and is stopped, or
    /// (Redis) when the response's log exists and the request was sent;
    /// `false` when no such response is known (in memory: none runs here).
    ///
    /// # Errors
    ///
    /// [`ResumableError::Backend`] when Redis cannot be reached.
    pub async fn cancel(&self, id: &str) -> Result<bool, ResumableError> {
        let running_here = lock(&self.inner.state)
            .entries
            .get(id)
            .and_then(|entry| entry.cancel.clone());
        if let Some(cancel) = running_here {
            cancel.cancel();
            return Ok(true);
        }
        let Logs::Shared(log) = &self.inner.logs else {
            return Ok(false);
        };
        // Only for a log that exists: a request for any id would leave a
        // key in Redis.
        if let Resume::NotFound = self.resume(id, None).await? {
            return Ok(false);
        }
        log.publish(&cancel_topic(id), Event::new().data("cancel"))
            .await
            .map_err(ResumableError::Backend)?;
        Ok(true)
    }

    /// Opens a reader of response `id` from a client's `Last-Event-ID`
    /// (`None`: from the start), an event id of the form
    /// `{response id}/{log id}` (see the [module docs](super#event-ids)).
    ///
    /// - [`Resume::Stream`]: the events after `last_event_id` (all of them
    ///   without one), then the live rest, ending with the response. An id
    ///   that is not one of this log's (forged, garbled, of another
    ///   response) gets the [missed event](ResumableBuilder::missed_event)
    ///   (`event: missed`, empty data) first, then the whole response. (A
    ///   `Last-Event-ID` past the [`LastEventIdLayer`](crate::LastEventIdLayer)'s
    ///   limit, 1,024 bytes by default, reaches the handler as none.) The
    ///   stream ends with the response, after the
    ///   [incomplete event](ResumableBuilder::incomplete_event) if it was
    ///   cut short.
    /// - [`Resume::Complete`]: the response has ended (complete, or cut
    ///   short) and the client has read it to its end, or it ended with no
    ///   event; `204 No Content` stops an `EventSource`.
    /// - [`Resume::NotFound`]: no such response (or `id` cannot name one),
    ///   or its log expired (TTL) or was dropped; also `204`.
    ///
    /// # Errors
    ///
    /// [`ResumableError::Backend`] when Redis cannot be reached.
    pub async fn resume(
        &self,
        id: &str,
        last_event_id: Option<&str>,
    ) -> Result<Resume, ResumableError> {
        if !is_response_id(id) {
            return Ok(Resume::NotFound);
        }
        let log = match &self.inner.logs {
            Logs::Memory(_) => {
                let state = lock(&self.inner.state);
                match state.entries.get(id).and_then(|entry| entry.log.clone()) {
                    Some(log) => log,
                    None => return Ok(Resume::NotFound),
                }
            }
            Logs::Shared(log) => log.clone(),
        };
        stream::open(&self.inner, log, id, last_event_id).await
    }

    /// Opens a reader of the response that `last_event_id` (a client's
    /// `Last-Event-ID`) names, after that event: every event's id is
    /// `{response id}/{log id}` (see the [module docs](super#event-ids)), so
    /// a client that only sends its last event id (an MCP client's `GET`,
    /// a browser's `EventSource` reopened on one URL for every response)
    /// is resumed without any other state.
    ///
    /// As [`resume`](Self::resume) for that response and id;
    /// [`Resume::NotFound`] for an id that names no response (not of this
    /// form). Check that the client may read the response it names: the
    /// id is what the client sends, not a proof of anything.
    ///
    /// ```
    /// use axum_sse::{resumable::{ResumableResponses, Resume}, Event};
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let responses = ResumableResponses::new();
    /// responses
    ///     .start_with_id("call-7", |mut sink| async move {
    ///         sink.send(Event::new().data("a")).await?;
    ///         sink.send(Event::new().data("b")).await
    ///     })
    ///     .await?;
    /// let Resume::Stream(stream) = responses.resume("call-7", None).await? else { panic!() };
    /// let first = stream.take(1).collect::<Vec<_>>().await.remove(0);
    /// let text = std::str::from_utf8(first.as_bytes())?;
    /// let last_event_id = text.strip_prefix("data: a\nid: ").unwrap().trim_end();
    /// assert!(last_event_id.starts_with("call-7/"));
    ///
    /// let Resume::Stream(rest) = responses.resume_by_event_id(last_event_id).await? else { panic!() };
    /// let rest: Vec<_> = rest.collect().await;
    /// assert!(rest[0].as_bytes().starts_with(b"data: b\nid: call-7/"));
    /// assert_eq!(rest.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ResumableError::Backend`] when Redis cannot be reached.
    pub async fn resume_by_event_id(&self, last_event_id: &str) -> Result<Resume, ResumableError> {
        match control::split_qualified(last_event_id) {
            Some((id, _)) => self.resume(id, Some(last_event_id)).await,
            None => Ok(Resume::NotFound),
        }
    }

    /// Waits until every producer of this instance has returned, at most
    /// `deadline`; then cancels those still running (their responses end
    /// incomplete) and waits for them to write their end. Starts refused
    /// from here on with [`ResumableError::ShuttingDown`] once the
    /// [`shutdown`](ResumableBuilder::shutdown) handle is triggered; call
    /// this after it. Returns whether every producer finished in time.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let tasks = &self.inner.tasks;
        tasks.close();
        let in_time = tokio::time::timeout(deadline, tasks.wait()).await.is_ok();
        if !in_time {
            let state = lock(&self.inner.state);
            for entry in state.entries.values() {
                if let Some(cancel) = &entry.cancel {
                    cancel.cancel();
                }
            }
        }
        tasks.wait().await;
        tasks.reopen();
        in_time
    }

    /// How many producers run on this instance now.
    pub fn live(&self) -> usize {
        lock(&self.inner.state).live
    }

    /// How many finished responses this instance keeps in memory (always 0
    /// with Redis, where they live in Redis).
    pub fn retained(&self) -> usize {
        lock(&self.inner.state).retained
    }
}

/// Whether `id` can name a response: 1 to 64 bytes of ASCII letters,
/// digits, `-`, `_`, `.`, `:` (never `/`, which ends the response's part of
/// an event id).
fn is_response_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The topic on which any instance asks the one that runs response `id`'s
/// producer to cancel it (Redis only). A response id never holds `/`, so
/// no response's log has this name.
fn cancel_topic(id: &str) -> String {
    format!("{id}/cancel")
}

/// The producer of `id` returned: free its live slot, and keep its log for
/// the TTL (memory) or forget it (Redis keeps it).
fn finished(inner: Weak<Inner>, id: String, seq: u64) {
    let ttl = {
        let Some(inner) = inner.upgrade() else { return };
        let mut state = lock(&inner.state);
        state.live -= 1;
        let memory = matches!(inner.logs, Logs::Memory(_));
        if !memory {
            state.entries.remove(&id);
            return;
        }
        if let Some(entry) = state.entries.get_mut(&id) {
            entry.cancel = None;
        }
        state.retained += 1;
        state.finished.push_back((id.clone(), seq));
        let max = inner.config.max_retained;
        while state.retained > max {
            let Some((oldest, seq)) = state.finished.pop_front() else {
                break;
            };
            state.remove_finished(&oldest, seq);
        }
        if state.finished.len() > 2 * max.max(16) {
            let State {
                entries, finished, ..
            } = &mut *state;
            finished.retain(|(id, seq)| entries.get(id).is_some_and(|e| e.is_finished(*seq)));
        }
        inner.config.ttl
    };
    // Not on the producer's task: `drain` waits for producers, not for
    // their logs to expire.
    tokio::spawn(async move {
        tokio::time::sleep(ttl).await;
        if let Some(inner) = inner.upgrade() {
            lock(&inner.state).remove_finished(&id, seq);
        }
    });
}

impl State {
    /// Drops the log of `id` if it is still the finished response `seq`.
    fn remove_finished(&mut self, id: &str, seq: u64) {
        if self
            .entries
            .get(id)
            .is_some_and(|entry| entry.is_finished(seq))
        {
            self.entries.remove(id);
            self.retained -= 1;
        }
    }
}

impl Entry {
    fn is_finished(&self, seq: u64) -> bool {
        self.seq == seq && self.cancel.is_none()
    }
}

impl fmt::Debug for ResumableResponses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.inner.logs {
            Logs::Memory(_) => "memory",
            Logs::Shared(_) => "redis",
        };
        f.debug_struct("ResumableResponses")
            .field("backend", &backend)
            .field("live", &self.live())
            .field("retained", &self.retained())
            .field("config", &self.inner.config)
            .finish()
    }
}
