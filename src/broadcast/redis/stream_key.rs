//! Key naming, and Redis stream ids.

use std::fmt;

use crate::broadcast::Position;

// The crate's own keys are `{prefix}\0` and a name that does not start
// with NUL; a topic that starts with NUL gets one more, so no topic (which
// may come from a URL: `%00` decodes to NUL) ever names one of them.

/// The key of a topic's stream: the prefix and the topic (with a NUL before
/// a topic that starts with NUL).
pub(super) fn topic_key(prefix: &str, topic: &str) -> String {
    if topic.starts_with('\0') {
        format!("{prefix}\0{topic}")
    } else {
        format!("{prefix}{topic}")
    }
}

/// The key of the change stream every publish appends its topic's key to.
pub(super) fn changes_key(prefix: &str) -> String {
    format!("{prefix}\0changes")
}

/// The key of the hash from the publisher ids of a topic's retained events
/// to their stream ids.
pub(super) fn publisher_ids_key(prefix: &str, topic: &str) -> String {
    format!("{prefix}\0ids\0{topic}")
}

/// The key of the list of a topic's publisher ids in publish order, by
/// which the hash is trimmed as the stream is.
pub(super) fn publisher_order_key(prefix: &str, topic: &str) -> String {
    format!("{prefix}\0order\0{topic}")
}

/// A Redis stream id, `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StreamKey {
    ms: u64,
    seq: u64,
}

impl StreamKey {
    /// Before every id a stream can hold.
    pub(super) const ZERO: Self = Self { ms: 0, seq: 0 };

    /// The last id before millisecond `ms`.
    pub(super) fn before_ms(ms: u64) -> Self {
        match ms.checked_sub(1) {
            Some(ms) => Self { ms, seq: u64::MAX },
            None => Self::ZERO,
        }
    }

    /// An id exactly as Redis writes it.
    pub(super) fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        let number = |s: &str| {
            let canonical = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            canonical.then(|| s.parse().ok()).flatten()
        };
        Some(Self {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

impl From<StreamKey> for Position {
    fn from(key: StreamKey) -> Self {
        Self::new(key.ms, key.seq)
    }
}

impl From<Position> for StreamKey {
    fn from(position: Position) -> Self {
        Self {
            ms: position.major(),
            seq: position.minor(),
        }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_topic_names_one_of_the_crates_own_keys() {
        let own = [
            changes_key("p:"),
            publisher_ids_key("p:", "t"),
            publisher_order_key("p:", "t"),
        ];
        for topic in ["\0changes", "\0ids\0t", "\0order\0t", "\0", "t"] {
            assert!(!own.contains(&topic_key("p:", topic)), "{topic:?}");
        }
        assert_eq!(topic_key("p:", "news"), "p:news");
        assert_ne!(topic_key("p:", "\0a"), topic_key("p:", "\0\0a"));
    }

    #[test]
    fn stream_ids_parse_as_redis_writes_them() {
        assert_eq!(
            StreamKey::parse("1700000000000-3"),
            Some(StreamKey {
                ms: 1_700_000_000_000,
                seq: 3
            })
        );
        assert_eq!(StreamKey::parse("0-1").unwrap().to_string(), "0-1");
        for id in [
            "",
            "5",
            "1-",
            "-1",
            "01-0",
            "1-+2",
            "1-2-3",
            "18446744073709551616-0",
        ] {
            assert_eq!(StreamKey::parse(id), None, "{id:?}");
        }
        assert!(StreamKey::parse("2-0") > StreamKey::parse("1-99"));
        assert_eq!(
            StreamKey::before_ms(5),
            StreamKey {
                ms: 4,
                seq: u64::MAX
            }
        );
        assert_eq!(StreamKey::before_ms(0), StreamKey::ZERO);
    }
}
