//! The storage behind [`Broadcast`](super::Broadcast): the [`Backend`] trait
//! and the values it trades in.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering::SeqCst},
        Arc,
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::{EncodedEvent, Event};

use super::{
    position::{self, Generation},
    stats::{self, Stamp},
    wire::{self, Prepared},
    BroadcastError,
};

/// The future a [`Backend`] method returns: boxed, so the trait stays
/// object-safe (`Arc<dyn Backend>`), and `Send`.
pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a topic keeps its events: the storage under a
/// [`Broadcast`](super::Broadcast).
///
/// The crate ships two backends (in memory, [`BroadcastBuilder::build`]; Redis
/// Streams, [`BroadcastBuilder::connect_redis`]); any other store with an
/// ordered log per topic (NATS JetStream, a PostgreSQL table, Kafka) plugs
/// in with [`BroadcastBuilder::backend`]. The backend stores and reads;
/// everything else stays in [`Broadcast`](super::Broadcast), above it: ids
/// and their text, checking and encoding an event once, the fan-out to
/// every subscriber of an instance through one shared buffer, the
/// slow-subscriber policy, the missed-events event, gap filling and the
/// counters.
///
/// # The contract
///
/// - **Topics** are any string (they may come from a URL); a backend maps
///   them to its own names without collisions.
/// - **History.** A topic's history is an ordered log of [`Entry`]s, each
///   at a [`Position`]: positions only grow within a history (an append
///   gets a position greater than every earlier one) and are never
///   reused in it. The history has a [`Generation`], drawn
///   ([`Generation::random`]) when it starts: the first append on a topic
///   that holds nothing, in the store the instances share (a process for an
///   in-memory log). A history that is lost (deleted, flushed, expired, a
///   restart without persistence) must start a new generation when it
///   starts again; a history that survives keeps its generation. Every
///   entry carries the generation it was appended in.
/// - **Bounds** ([`Retention`], from [`BroadcastBuilder::history`] and
///   [`BroadcastBuilder::max_age`]): a backend keeps at least the newest
///   `history` entries (it may keep a few more), and treats an entry older
///   than `max_age` as gone: [`read`](Self::read) does not return it and
///   [`locate`](Self::locate) does not find it. Dropping happens whenever
///   the backend likes; a backend should also expire idle topics.
/// - **[`append`](Self::append)** stores a [`Record`] at the end of the
///   history, in one step: a [`Record::publisher_id`] that an entry still in
///   the history carries (within the bounds) is not stored again: the
///   answer is [`Appended::Duplicate`]. Two appends of one publisher id at
///   once, from any instances, store one entry.
/// - **[`locate`](Self::locate)** is the missed-events signal. It returns
///   the position to resume after, or `None` ("not here"), and must say
///   `None` unless it can prove that no entry after that position was
///   lost: for [`ResumePoint::Channel`], `None` when the generation is not
///   the topic's current one, the position was never handed out in it, or
///   an entry after it was dropped (the position of the last entry dropped
///   may resume exactly, when the backend can tell); for
///   [`ResumePoint::Publisher`], `None` unless an entry of the current
///   history, within the bounds, carries that publisher id. The subscriber
///   then gets the missed-events event and everything retained.
/// - **[`read`](Self::read)** returns retained entries with
///   `after < position <= until`, oldest first, at most `limit`; fewer than
///   `limit` means there is nothing more up to `until` now.
/// - **The live feed.** [`watch`](Self::watch) hands the backend a
///   [`LiveFeed`] for a topic that has subscribers on this instance;
///   [`unwatch`](Self::unwatch) takes it back when the last one left (a new
///   `watch` of the same topic comes only once the previous feed
///   [`is_closed`](LiveFeed::is_closed): it replaces it). While it holds a feed,
///   the backend delivers every entry appended to the topic (by any
///   instance) with [`LiveFeed::send`], in position order, each at least
///   once, naming the position it read after; and, if it knows where the
///   history ends when it starts watching, says so with
///   [`LiveFeed::mark`]. It may deliver late, twice, or skip entries: each
///   subscriber keeps the last position it saw, drops what it has seen,
///   and reads whatever lies between that and the `after` of a delivery
///   from the history first. So a feed may be lossy (a pub/sub
///   notification) as long as every delivery's `after` is honest: no entry
///   between `after` and the delivered one may be missing from
///   [`read`](Self::read). A delivery with a generation other than the last
///   one a subscriber saw gives it the missed-events event first.
/// - **Errors** are [`BroadcastError::Backend`]: `publish` and `subscribe`
///   return them; a subscription whose history read fails retries for some
///   10 seconds, then ends (its client reconnects).
///
/// Methods are called from many tasks at once; the sync ones
/// ([`watch`](Self::watch), [`unwatch`](Self::unwatch)) are called under a
/// lock of the [`Broadcast`](super::Broadcast) and must not block.
///
/// # Running the conformance suite
///
/// The suite in [`conformance`](super::conformance) (feature `test-util`)
/// checks a [`Broadcast`](super::Broadcast) over any backend; its module
/// docs show how to run it in your backend's tests.
///
/// The crate's own `tests/broadcast_backend.rs` is a complete backend in
/// some 200 lines (a `Mutex<Vec<_>>` per topic, a live feed per instance)
/// that passes the suite, also as two instances over one store.
///
/// [`BroadcastBuilder::build`]: super::BroadcastBuilder::build
/// [`BroadcastBuilder::connect_redis`]: super::BroadcastBuilder
/// [`BroadcastBuilder::backend`]: super::BroadcastBuilder::backend
/// [`BroadcastBuilder::history`]: super::BroadcastBuilder::history
/// [`BroadcastBuilder::max_age`]: super::BroadcastBuilder::max_age
pub trait Backend: Send + Sync + 'static {
    /// Stores `record` at the end of `topic`'s history (see the
    /// [contract](Self#the-contract)).
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when the store cannot take it.
    fn append<'a>(
        &'a self,
        topic: &'a str,
        record: Record,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Appended, BroadcastError>>;

    /// The position and generation of the newest entry of `topic`, `None`
    /// when it holds none.
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when the store cannot be read.
    fn newest<'a>(
        &'a self,
        topic: &'a str,
    ) -> BackendFuture<'a, Result<Option<(Position, Generation)>, BroadcastError>>;

    /// The position to resume after for a client whose last event was
    /// `from`, or `None` when events may have been missed (see the
    /// [contract](Self#the-contract)).
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when the store cannot be read.
    fn locate<'a>(
        &'a self,
        topic: &'a str,
        from: ResumePoint<'a>,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Option<Position>, BroadcastError>>;

    /// Up to `limit` retained entries of `topic` after `after` and up to
    /// `until` (to the end for `None`), oldest first.
    ///
    /// # Errors
    ///
    /// [`BroadcastError::Backend`] when the store cannot be read.
    fn read<'a>(
        &'a self,
        topic: &'a str,
        after: Position,
        until: Option<Position>,
        limit: usize,
        retention: &'a Retention,
    ) -> BackendFuture<'a, Result<Vec<Entry>, BroadcastError>>;

    /// Starts delivering the entries appended to `topic` into `feed`,
    /// replacing any (closed) feed this instance had for the topic.
    fn watch(&self, topic: &str, feed: LiveFeed);

    /// Stops delivering into `feed` (if it is still the topic's feed): the
    /// topic has no subscriber on this instance any more. By default
    /// nothing happens; a backend may as well drop a feed once
    /// [`LiveFeed::is_closed`].
    fn unwatch(&self, topic: &str, feed: &LiveFeed) {
        let _ = (topic, feed);
    }
}

/// A place in a topic's history, ordered: positions grow with every
/// append. Two numbers, `major` then `minor` (a sequence number is
/// `Position::from(n)`; a Redis stream id `ms-seq` is `Position::new(ms,
/// seq)`).
///
/// The text of a position is part of the event ids the channel hands out:
/// `major` alone when `minor` is 0, `major-minor` otherwise.
/// [`Position::ZERO`] comes before every entry; backends never store it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    major: u64,
    minor: u64,
}

impl Position {
    /// Before every entry.
    pub const ZERO: Self = Self::new(0, 0);

    /// The position `major`, `minor`.
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }

    /// The first number.
    pub const fn major(self) -> u64 {
        self.major
    }

    /// The second number.
    pub const fn minor(self) -> u64 {
        self.minor
    }

    /// A position exactly as [`Display`](fmt::Display) writes it (so an id
    /// has one text only).
    pub(super) fn parse(text: &str) -> Option<Self> {
        let number = |s: &str| {
            let canonical = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            canonical.then(|| s.parse::<u64>().ok()).flatten()
        };
        match text.split_once('-') {
            None => Some(Self::new(number(text)?, 0)),
            Some((major, minor)) => {
                let minor = number(minor).filter(|&minor| minor != 0)?;
                Some(Self::new(number(major)?, minor))
            }
        }
    }
}

impl From<u64> for Position {
    fn from(major: u64) -> Self {
        Self::new(major, 0)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "{}", self.major)
        } else {
            write!(f, "{}-{}", self.major, self.minor)
        }
    }
}

/// A topic's bounds, from the [`BroadcastBuilder`](super::BroadcastBuilder):
/// how many events it keeps and how old they may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    history: usize,
    max_age: Option<Duration>,
}

impl Retention {
    pub(super) const fn new(history: usize, max_age: Option<Duration>) -> Self {
        Self { history, max_age }
    }

    /// Keep at least the newest this many entries
    /// ([`BroadcastBuilder::history`](super::BroadcastBuilder::history)).
    pub const fn history(&self) -> usize {
        self.history
    }

    /// Entries older than this are gone
    /// ([`BroadcastBuilder::max_age`](super::BroadcastBuilder::max_age));
    /// `None`: no limit.
    pub const fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// Entries appended before this time are gone; `None` without a
    /// maximum age.
    pub fn cutoff(&self) -> Option<SystemTime> {
        self.max_age.map(|age| {
            SystemTime::now()
                .checked_sub(age)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        })
    }
}

/// What a client resumes from, as [`Backend::locate`] gets it. The crate has
/// already told apart ids of the channel's form from publisher ids, and
/// answered "missed" for text that is neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumePoint<'a> {
    /// An id the channel handed out: the entry at `position` of the
    /// history of `generation`.
    Channel {
        /// The history the id was handed out in.
        generation: Generation,
        /// Its position there.
        position: Position,
    },
    /// An id a publisher gave its event (see
    /// [`Broadcast::publish`](super::Broadcast::publish)).
    Publisher(&'a str),
}

/// What [`Backend::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Appended {
    /// Stored as the entry at `position` of the history of `generation`.
    Stored {
        /// The new entry's position.
        position: Position,
        /// The generation of the history it joined.
        generation: Generation,
    },
    /// Not stored: an entry in the history carries its publisher id.
    Duplicate,
}

/// One event to append: its wire form and, if it came with one, its
/// publisher's id. From [`Broadcast::publish`](super::Broadcast::publish),
/// already checked.
pub struct Record {
    prepared: Prepared,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("publisher_id", &self.publisher_id())
            .finish_non_exhaustive()
    }
}

impl Record {
    pub(super) fn prepare(event: Event) -> Result<Self, BroadcastError> {
        Ok(Self {
            prepared: wire::prepare(event)?,
        })
    }

    /// The id the publisher gave the event, if any: stored once (see
    /// [`Backend::append`]).
    pub fn publisher_id(&self) -> Option<&str> {
        match &self.prepared {
            Prepared::Channel(_) => None,
            Prepared::Publisher { id, .. } => Some(id),
        }
    }

    /// The event's wire form without `id`: what a store that keeps bytes
    /// keeps, to make an [`Entry`] from later with [`Entry::from_stored`].
    ///
    /// # Errors
    ///
    /// [`BroadcastError::InvalidEvent`] if the event cannot be encoded.
    pub fn stored(&self) -> Result<Bytes, BroadcastError> {
        match &self.prepared {
            Prepared::Channel(event) => Ok(event.clone().encode()?.into_bytes()),
            Prepared::Publisher { stored, .. } => Ok(Bytes::copy_from_slice(stored)),
        }
    }

    /// The entry this record becomes at `position` of the history of
    /// `generation`: the event encoded once, with its id (the publisher's,
    /// or the channel's for that position).
    ///
    /// # Errors
    ///
    /// [`BroadcastError::InvalidEvent`] if the event cannot be encoded.
    pub fn into_entry(
        self,
        position: Position,
        generation: Generation,
    ) -> Result<Entry, BroadcastError> {
        let (event, publisher_id) = match self.prepared {
            Prepared::Channel(event) => (
                wire::encode_with_id(event, position::format_id(generation, position).as_str())?,
                None,
            ),
            Prepared::Publisher {
                id,
                stored,
                encoded,
            } => (
                wire::with_publisher_id(&stored, &id, encoded),
                Some(Arc::from(id)),
            ),
        };
        Ok(Entry {
            position,
            generation,
            event,
            publisher_id,
        })
    }
}

/// One stored event of a topic: its position, the generation of the
/// history it belongs to, and the event, encoded once with its id.
#[derive(Debug, Clone)]
pub struct Entry {
    position: Position,
    generation: Generation,
    event: EncodedEvent,
    publisher_id: Option<Arc<str>>,
}

impl Entry {
    /// An entry from what [`Record::stored`] gave and
    /// [`Record::publisher_id`] said, as a store that keeps bytes read it
    /// back. `None` for bytes that no event encodes to, or a publisher id
    /// that cannot be one (the store was written by something else).
    pub fn from_stored(
        position: Position,
        generation: Generation,
        publisher_id: Option<&str>,
        stored: &[u8],
    ) -> Option<Self> {
        let (event, publisher_id) = match publisher_id {
            Some(id) => {
                let id = wire::publisher_id(id.as_bytes()).ok()?;
                (wire::with_id(stored, id)?, Some(Arc::from(id)))
            }
            None => (
                wire::with_id(stored, &position::format_id(generation, position))?,
                None,
            ),
        };
        Some(Self {
            position,
            generation,
            event,
            publisher_id,
        })
    }

    /// Its position.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The generation of the history it belongs to.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The id its publisher gave it, if any.
    pub fn publisher_id(&self) -> Option<&str> {
        self.publisher_id.as_deref()
    }

    /// The event as subscribers get it, with its id.
    pub fn event(&self) -> &EncodedEvent {
        &self.event
    }
}

/// What the live feed carries: an entry, or (`event: None`) a mark that
/// every entry up to `position` has been accounted for.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) position: Position,
    /// The generation of the entry (`None` for a mark).
    pub(super) generation: Option<Generation>,
    /// The position the source read after: every entry up to it came
    /// before.
    pub(super) after: Position,
    pub(super) event: Option<EncodedEvent>,
    /// When it was sent, if the feed stamps its entries (for metrics).
    pub(super) stamp: Stamp,
}

/// The live entries of one topic on one instance, as a [`Backend`] delivers
/// them (see [`Backend::watch`]): the [`Broadcast`](super::Broadcast) fans
/// each out to every subscriber of the topic through one shared buffer.
///
/// Cloning it is cheap; every clone feeds the same subscribers.
#[derive(Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<Live>,
    /// Subscriptions of this instance on the feed. Changed only under the
    /// [`Broadcast`](super::Broadcast)'s lock of its topics, and never
    /// raised again once it fell to 0: a closed feed stays closed.
    members: Arc<AtomicUsize>,
    /// Whether entries carry when they were sent (the delivery-time
    /// metric, when the backend's positions hold no time).
    stamped: bool,
}

impl fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFeed")
            .field("subscribers", &self.members.load(SeqCst))
            .finish()
    }
}

impl LiveFeed {
    /// A feed with one member, and its receiver.
    pub(super) fn new(buffer: usize, stamped: bool) -> (Self, broadcast::Receiver<Live>) {
        let (sender, receiver) = broadcast::channel(buffer);
        let members = Arc::new(AtomicUsize::new(1));
        (
            Self {
                sender,
                members,
                stamped,
            },
            receiver,
        )
    }

    /// One more member's receiver (under the topics' lock, while the feed
    /// is open).
    pub(super) fn join(&self) -> broadcast::Receiver<Live> {
        self.members.fetch_add(1, SeqCst);
        self.sender.subscribe()
    }

    /// One member fewer (under the topics' lock); whether it was the last.
    pub(super) fn leave(&self) -> bool {
        self.members.fetch_sub(1, SeqCst) == 1
    }

    /// Delivers `entry`, the next entry of the topic after `after` as far as
    /// the backend knows: every entry up to `after` came before it. Pass the
    /// previous entry's position when the backend delivers each entry in
    /// turn; subscribers that have not seen up to `after` read the entries
    /// between from [`Backend::read`] first.
    pub fn send(&self, after: Position, entry: &Entry) {
        // No receivers is not an error: the entry is in the history.
        let _ = self.sender.send(Live {
            position: entry.position,
            generation: Some(entry.generation),
            after,
            event: Some(entry.event.clone()),
            stamp: if self.stamped {
                stats::stamp_now()
            } else {
                stats::NO_STAMP
            },
        });
    }

    /// Says that every entry up to `position` has been accounted for (the
    /// newest entry when the backend started watching): subscribers that
    /// have not seen it read up to it from the history now, rather than at
    /// the next entry.
    pub fn mark(&self, position: Position) {
        let _ = self.sender.send(Live {
            position,
            generation: None,
            after: position,
            event: None,
            stamp: stats::NO_STAMP,
        });
    }

    /// Whether no subscriber listens any more: the backend may drop the
    /// feed. A closed feed never opens again (a new subscriber brings a new
    /// feed).
    pub fn is_closed(&self) -> bool {
        self.members.load(SeqCst) == 0
    }

    /// Whether `self` and `other` feed the same subscribers.
    pub fn same_as(&self, other: &Self) -> bool {
        self.sender.same_channel(&other.sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_has_one_text() {
        for (position, text) in [
            (Position::from(42), "42"),
            (Position::ZERO, "0"),
            (Position::new(1_700_000_000_000, 3), "1700000000000-3"),
            (
                Position::new(u64::MAX, u64::MAX),
                "18446744073709551615-18446744073709551615",
            ),
        ] {
            assert_eq!(position.to_string(), text);
            assert_eq!(Position::parse(text), Some(position), "{text}");
        }
        // `-0` is written without its minor: one text per position.
        for text in [
            "",
            "+1",
            "01",
            "1-0",
            "1-",
            "-1",
            " 1",
            "1-01",
            "1-2-3",
            "18446744073709551616",
        ] {
            assert_eq!(Position::parse(text), None, "{text:?}");
        }
        assert!(Position::new(2, 0) > Position::new(1, 99));
    }
}
