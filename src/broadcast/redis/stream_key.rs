//! Key naming, and Redis stream ids.

use std::fmt;

/// The key of a topic's stream: the prefix and the topic.
pub(super) fn topic_key(prefix: &str, topic: &str) -> String {
    format!("{prefix}{topic}")
}

/// The key of the change stream every publish appends its topic's key to.
/// The NUL byte keeps it apart from any topic a handler names in practice.
pub(super) fn changes_key(prefix: &str) -> String {
    format!("{prefix}\0changes")
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

    /// The millisecond part: when Redis took the entry, by its clock.
    pub(super) const fn ms(&self) -> u64 {
        self.ms
    }

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

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
