//! Finding the bytes a field value must not hold.
//!
//! Most values are short (an event type, an id, a token of an LLM reply),
//! where setting up a vectorised search costs more than the search: these
//! are checked eight bytes at a time in a `u64`. Longer ones go to `memchr`.

/// From this length on, `memchr` is faster.
const SHORT: usize = 64;

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether one of the eight bytes of `word` is `byte`: a byte equal to it is
/// zero after the XOR, and only a zero byte borrows into its high bit when
/// one is subtracted from every byte while its own high bit was clear.
#[inline(always)]
fn holds(word: u64, byte: u8) -> bool {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// Whether a short `value` holds CR or LF, or NUL too when `nul` is set.
#[inline(always)]
fn short_holds(value: &[u8], nul: bool) -> bool {
    let Some(last) = value.len().checked_sub(8) else {
        return value
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || (nul && b == 0));
    };
    let word = |at: usize| {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&value[at..at + 8]);
        u64::from_ne_bytes(bytes)
    };
    let word_holds = |word: u64| holds(word, b'\r') | holds(word, b'\n') | (nul & holds(word, 0));
    // Whole words, then the last eight bytes (which may overlap the last
    // whole word).
    (0..last).step_by(8).any(|at| word_holds(word(at))) || word_holds(word(last))
}

/// Where `value` has its first CR or LF.
#[inline]
pub(super) fn find_line_break(value: &[u8]) -> Option<usize> {
    if value.len() < SHORT && !short_holds(value, false) {
        return None;
    }
    memchr::memchr2(b'\r', b'\n', value)
}

/// Whether `value` holds CR, LF, or NUL too when `nul` is set.
#[inline]
pub(super) fn holds_forbidden(value: &[u8], nul: bool) -> bool {
    if value.len() < SHORT {
        short_holds(value, nul)
    } else {
        memchr::memchr2(b'\r', b'\n', value).is_some()
            || (nul && memchr::memchr(0, value).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_forbidden(value: &[u8], nul: bool) -> bool {
        value
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || (nul && b == 0))
    }

    #[test]
    fn every_position_and_length_is_checked() {
        for len in 0..80 {
            let clean = vec![b'a'; len];
            assert!(!holds_forbidden(&clean, true));
            assert_eq!(find_line_break(&clean), None);
            for at in 0..len {
                for byte in [b'\r', b'\n', 0] {
                    let mut value = clean.clone();
                    value[at] = byte;
                    assert!(holds_forbidden(&value, true), "{len} {at} {byte}");
                    assert_eq!(
                        holds_forbidden(&value, false),
                        byte != 0,
                        "{len} {at} {byte}"
                    );
                    let expected = (byte != 0).then_some(at);
                    assert_eq!(find_line_break(&value), expected, "{len} {at} {byte}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_byte_loop(value in proptest::collection::vec(any::<u8>(), 0..100), nul: bool) {
            prop_assert_eq!(holds_forbidden(&value, nul), naive_forbidden(&value, nul));
            prop_assert_eq!(
                find_line_break(&value),
                value.iter().position(|&b| b == b'\r' || b == b'\n')
            );
        }
    }
}
