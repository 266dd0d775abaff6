//! Resume positions: event ids that name the history they belong to.
//!
//! An id the channel hands out is `{generation}.{position}`: an 11-character
//! generation (64 random bits, URL-safe base64 digits) and the position in
//! that generation's history (`42` in memory, the Redis stream id
//! `1700000000000-0` with Redis). A generation is drawn when a topic's
//! history starts: per process and topic in memory, per stream in Redis
//! (stored with every entry, so a stream that was deleted, flushed or
//! expired starts a new one). The layout is private: clients and handlers
//! only compare and echo ids.

use std::fmt;

/// The longest id the channel hands out, in bytes. Longer values are not
/// read at all.
pub(super) const MAX_ID_LEN: usize = 64;

/// Characters of an encoded generation.
const GENERATION_LEN: usize = 11;

const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The generation of a topic's history: drawn when the history starts, so
/// that ids of one history are never taken for positions in another (see
/// [`Backend`](super::Backend)). Its text (11 characters of `A-Za-z0-9-_`)
/// is the head of every id the channel hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Generation(u64);

impl Generation {
    /// A new generation, different from every other with overwhelming
    /// probability (64 random bits).
    pub fn random() -> Self {
        Self(fastrand::u64(..))
    }

    /// The generation with this value, as a store kept it
    /// ([`get`](Self::get)).
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Its value, for a store to keep.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// A generation exactly as [`Display`](fmt::Display) writes it.
    pub(super) fn parse(text: &str) -> Option<Self> {
        if text.len() != GENERATION_LEN {
            return None;
        }
        let mut value: u128 = 0;
        for b in text.bytes() {
            let digit = DIGITS.iter().position(|&d| d == b)?;
            value = (value << 6) | digit as u128;
        }
        // 11 digits carry 66 bits: the top two must be zero.
        u64::try_from(value).ok().map(Self)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; GENERATION_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 6 * (GENERATION_LEN - 1 - i);
            *slot = DIGITS[((u128::from(self.0) >> shift) & 63) as usize];
        }
        f.write_str(std::str::from_utf8(&out).expect("ASCII digits"))
    }
}

/// The id of the event at `position` of generation `generation`.
pub(super) fn format_id(generation: Generation, position: impl fmt::Display) -> String {
    format!("{generation}.{position}")
}

/// The generation and the position text of an id the channel could have
/// handed out; `None` for anything else (too long, no generation).
pub(super) fn split_id(id: &str) -> Option<(Generation, &str)> {
    if id.len() > MAX_ID_LEN || !id.is_char_boundary(GENERATION_LEN) {
        return None;
    }
    let (generation, rest) = id.split_at(GENERATION_LEN);
    Some((Generation::parse(generation)?, rest.strip_prefix('.')?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_round_trip_and_only_canonical_text_parses() {
        for value in [0, 1, 63, 64, u64::MAX, 0x0123_4567_89ab_cdef] {
            let text = Generation(value).to_string();
            assert_eq!(text.len(), GENERATION_LEN);
            assert_eq!(Generation::parse(&text), Some(Generation(value)), "{text}");
        }
        assert_eq!(Generation(0).to_string(), "AAAAAAAAAAA");
        assert_eq!(Generation(u64::MAX).to_string(), "P__________");
        // 66 bits do not fit, other lengths and characters are not ours.
        for text in [
            "Q__________",
            "AAAAAAAAAA",
            "AAAAAAAAAAAA",
            "AAAAAAAAAA=",
            "AAAAAAAAAAé",
        ] {
            assert_eq!(Generation::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn ids_split_into_generation_and_position() {
        let generation = Generation(7);
        let id = format_id(generation, "1700000000000-0");
        assert_eq!(id.len(), 27);
        assert_eq!(split_id(&id), Some((generation, "1700000000000-0")));
        let longest = format_id(Generation(u64::MAX), format!("{}-{}", u64::MAX, u64::MAX));
        assert!(longest.len() <= MAX_ID_LEN, "{}", longest.len());
        assert_eq!(split_id(&longest).map(|(_, p)| p.len()), Some(41));
        for id in [
            "",
            "42",
            "AAAAAAAAAAH42",
            "AAAAAAAAAAH",
            "éAAAAAAAAAA.1",
            "AAAAAAAAAAé.1",
        ] {
            assert_eq!(split_id(id), None, "{id:?}");
        }
        let long = format!("AAAAAAAAAAH.{}", "1".repeat(MAX_ID_LEN));
        assert_eq!(split_id(&long), None);
    }
}
