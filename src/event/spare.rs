//! One spare event encoding per thread.
//!
//! A handler that sends events in a loop builds one [`Event`](super::Event)
//! after another, and each is dropped once its bytes are copied into the
//! stream's queue. Handing the dropped event's encoding to the next event
//! built on the same thread saves two allocations and two frees per event,
//! and keeps a buffer that already grew to the size of the events sent.

use std::cell::Cell;

use super::{Encoding, INITIAL_CAPACITY};

/// Buffers larger than this are freed rather than kept.
const MAX_KEPT: usize = 16 * 1024;

thread_local! {
    static SPARE: Cell<Option<Box<Encoding>>> = const { Cell::new(None) };
}

/// An empty encoding: the thread's spare one if there is one.
#[inline]
pub(super) fn take() -> Box<Encoding> {
    let mut encoding = SPARE
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_default();
    if encoding.buf.capacity() == 0 {
        encoding.buf.reserve_exact(INITIAL_CAPACITY);
    }
    encoding
}

/// Keeps `encoding`, emptied, as the thread's spare one.
#[inline]
pub(super) fn give_back(mut encoding: Box<Encoding>) {
    if encoding.buf.capacity() > MAX_KEPT {
        encoding.buf = Vec::new();
    }
    encoding.buf.clear();
    encoding.invalid = None;
    encoding.opens_block = false;
    let _ = SPARE.try_with(|spare| spare.set(Some(encoding)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_encoding_is_handed_out_again_empty() {
        let mut encoding = take();
        encoding.buf.extend_from_slice(&[b'x'; 300]);
        encoding.opens_block = true;
        let capacity = encoding.buf.capacity();
        let address = encoding.buf.as_ptr();
        give_back(encoding);
        let again = take();
        assert!(again.buf.is_empty() && again.invalid.is_none() && !again.opens_block);
        assert_eq!(
            (again.buf.capacity(), again.buf.as_ptr()),
            (capacity, address)
        );
        assert_eq!(take().buf.capacity(), INITIAL_CAPACITY, "one spare is kept");
    }

    #[test]
    fn large_buffers_are_not_kept() {
        let mut encoding = take();
        encoding.buf.reserve(MAX_KEPT + 1);
        give_back(encoding);
        assert_eq!(take().buf.capacity(), INITIAL_CAPACITY);
    }
}
