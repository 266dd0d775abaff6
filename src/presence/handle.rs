//! The presence handle and its guards.

use std::{fmt, sync::Arc};

use serde_json::Value;

use super::{
    builder::Config, events::PresenceEvents, member::random_subscriber, memory::Memory, Member,
    PresenceBuilder, PresenceError,
};

/// Who follows which topic, and a stream of joins and leaves. Cheap to
/// clone: clones share the same state. See the [module docs](super).
#[derive(Clone)]
pub struct Presence {
    backend: Backend,
    config: Arc<Config>,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Memory>),
    #[cfg(feature = "redis")]
    Redis(Arc<super::redis::Instance>),
}

impl Default for Presence {
    fn default() -> Self {
        Self::new()
    }
}

impl Presence {
    /// An in-memory presence with the default settings (one instance).
    pub fn new() -> Self {
        PresenceBuilder::new().build()
    }

    /// Settings, then the backend.
    pub fn builder() -> PresenceBuilder {
        PresenceBuilder::new()
    }

    /// A presence shared through the Redis at `url`, with the default
    /// settings; see [`PresenceBuilder::connect_redis`].
    ///
    /// # Errors
    ///
    /// [`PresenceError::Backend`] when the URL is invalid or Redis cannot be
    /// reached.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Self, PresenceError> {
        PresenceBuilder::new().connect_redis(url).await
    }

    pub(super) fn memory(config: Config) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(Memory::new(config.buffer))),
            config: Arc::new(config),
        }
    }

    #[cfg(feature = "redis")]
    pub(super) async fn connect_redis(url: &str, config: Config) -> Result<Self, PresenceError> {
        let instance = super::redis::Instance::connect(url, config.clone()).await?;
        Ok(Self {
            backend: Backend::Redis(instance),
            config: Arc::new(config),
        })
    }

    /// Joins `topic` as a new subscriber (a random `urn:uuid:` id) described
    /// by `descriptor`; see [`join_as`](Self::join_as).
    ///
    /// # Errors
    ///
    /// As [`join_as`](Self::join_as) (the drawn id is never too long).
    pub async fn join(
        &self,
        topic: &str,
        descriptor: Value,
    ) -> Result<PresenceGuard, PresenceError> {
        // The drawn id is not held to `max_subscriber_len`: that bounds the
        // app's ids.
        self.join_checked(topic, &random_subscriber(), descriptor)
            .await
    }

    /// Joins `topic` as `subscriber`, described by `descriptor` (what
    /// [`list`](Self::list) and the events show: a user id, a profile,
    /// `null`). The member stays until the returned guard is dropped (or
    /// [`left`](PresenceGuard::leave)): hold it in the stream that serves
    /// the subscriber, and any end of that stream leaves.
    ///
    /// A subscriber id should be unique per connection (the same id may
    /// join several topics, as one connection following several topics
    /// does); every join is its own member, so two joins of one id to one
    /// topic are listed twice.
    ///
    /// # Errors
    ///
    /// - [`PresenceError::TooLong`] when the topic, the subscriber id or the
    ///   descriptor's JSON is longer than the builder allows (1024, 256 and
    ///   16 KiB bytes by default).
    /// - [`PresenceError::Backend`] when Redis failed; nothing joined.
    pub async fn join_as(
        &self,
        topic: &str,
        subscriber: &str,
        descriptor: Value,
    ) -> Result<PresenceGuard, PresenceError> {
        check_len(
            "subscriber",
            subscriber.len(),
            self.config.max_subscriber_len,
        )?;
        self.join_checked(topic, subscriber, descriptor).await
    }

    async fn join_checked(
        &self,
        topic: &str,
        subscriber: &str,
        descriptor: Value,
    ) -> Result<PresenceGuard, PresenceError> {
        self.check_topic(topic)?;
        let descriptor_len = serde_json::to_vec(&descriptor).map_or(0, |json| json.len());
        check_len("descriptor", descriptor_len, self.config.max_descriptor_len)?;
        let topic: Arc<str> = topic.into();
        let member = Member::new(subscriber.into(), Arc::new(descriptor));
        let leave = match &self.backend {
            Backend::Memory(memory) => {
                Leave::Memory(Arc::clone(memory), memory.join(&topic, member.clone()))
            }
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => {
                Leave::Redis(Arc::clone(redis), redis.join(&topic, member.clone()).await?)
            }
        };
        Ok(PresenceGuard {
            topic,
            member,
            leave: Some(leave),
        })
    }

    /// The members of `topic` now: in memory in the order they joined; with
    /// Redis those of every live instance (not those of an expired one,
    /// even before a sweep removes them), in no set order.
    ///
    /// To keep a list up to date, call [`events`](Self::events) first, then
    /// `list`, then apply the events.
    ///
    /// # Errors
    ///
    /// [`PresenceError::TooLong`] for a topic longer than allowed;
    /// [`PresenceError::Backend`] when Redis failed.
    pub async fn list(&self, topic: &str) -> Result<Vec<Member>, PresenceError> {
        self.check_topic(topic)?;
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.list(topic)),
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => redis.list(topic).await,
        }
    }

    /// The joins and leaves of `topic` from now on (with Redis, on every
    /// instance). A topic longer than
    /// [`max_topic_len`](PresenceBuilder::max_topic_len) can have no
    /// members: its stream ends at once, and holds nothing.
    pub fn events(&self, topic: &str) -> PresenceEvents {
        if self.check_topic(topic).is_err() {
            return PresenceEvents::ended();
        }
        self.listen(Some(topic))
    }

    /// The joins and leaves of every topic from now on.
    pub fn all_events(&self) -> PresenceEvents {
        self.listen(None)
    }

    fn listen(&self, topic: Option<&str>) -> PresenceEvents {
        match &self.backend {
            Backend::Memory(memory) => memory.fanout.subscribe(topic, Arc::clone(memory) as _),
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => redis.fanout.subscribe(topic, Arc::clone(redis) as _),
        }
    }

    fn check_topic(&self, topic: &str) -> Result<(), PresenceError> {
        check_len("topic", topic.len(), self.config.max_topic_len)
    }

    #[cfg(test)]
    pub(super) fn memory_backend(&self) -> Option<&Memory> {
        match &self.backend {
            Backend::Memory(memory) => Some(memory),
            #[cfg(feature = "redis")]
            Backend::Redis(_) => None,
        }
    }
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), PresenceError> {
    if len > max {
        return Err(PresenceError::TooLong { what, len, max });
    }
    Ok(())
}

impl fmt::Debug for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.backend {
            Backend::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "redis",
        };
        f.debug_struct("Presence")
            .field("backend", &backend)
            .field("config", &self.config)
            .finish()
    }
}

/// A member of a topic: dropping the guard leaves. From
/// [`Presence::join`] and [`Presence::join_as`].
///
/// In memory the leave is done when `drop` returns; with Redis it is queued
/// to the instance's background task (so it also works where no runtime
/// runs) and done within a round trip. [`leave`](Self::leave) does it now
/// and reports an error. A guard that is never dropped (a crashed process)
/// leaves with Redis when its instance expires; see the module docs.
#[must_use = "the member leaves when the guard is dropped"]
pub struct PresenceGuard {
    topic: Arc<str>,
    member: Member,
    leave: Option<Leave>,
}

enum Leave {
    Memory(Arc<Memory>, u64),
    #[cfg(feature = "redis")]
    Redis(Arc<super::redis::Instance>, u64),
}

impl PresenceGuard {
    /// The topic joined.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The member: its subscriber id and descriptor.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The subscriber id (pass it to [`Presence::join_as`] to join more
    /// topics as the same subscriber).
    pub fn subscriber(&self) -> &str {
        self.member.subscriber()
    }

    /// Leaves now.
    ///
    /// # Errors
    ///
    /// [`PresenceError::Backend`] when Redis failed: the instance then
    /// retries in the background, as for a dropped guard, until Redis
    /// answers (or the instance expires, see the module docs).
    pub async fn leave(mut self) -> Result<(), PresenceError> {
        match self.leave.take() {
            Some(Leave::Memory(memory, id)) => {
                memory.leave(&self.topic, id);
                Ok(())
            }
            #[cfg(feature = "redis")]
            Some(Leave::Redis(redis, id)) => redis.leave(id).await,
            None => Ok(()),
        }
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        match self.leave.take() {
            Some(Leave::Memory(memory, id)) => memory.leave(&self.topic, id),
            #[cfg(feature = "redis")]
            Some(Leave::Redis(redis, id)) => redis.leave_later(id),
            None => {}
        }
    }
}

impl fmt::Debug for PresenceGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceGuard")
            .field("topic", &self.topic)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}
