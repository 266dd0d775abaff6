//! Which handler this thread's body is polling.
//!
//! A handler that sends inline is polled by its own response body, on the
//! connection's task (see `body.rs`). While the body polls it, this module
//! marks the stream's queue as "polled here". A push into a marked queue
//! comes from the handler itself, so it needs to wake nobody (the body takes
//! the queue as soon as the handler yields) and, when the queue is full,
//! waits with no waker and no timer (the body polls the handler again for
//! its next frame).
//!
//! The invariant, relied on by `Queue::try_push` and `Queue::push_inline`:
//! a queue is marked only during one poll of its handler by its own body, on
//! the thread doing that poll, and the previous mark is restored when that
//! poll ends, unwinding included. A push from any other task or thread
//! never sees its queue marked, and so always wakes the body.

use std::cell::Cell;

thread_local! {
    /// The queue whose handler this thread's body is polling, by address.
    static POLLED_INLINE: Cell<usize> = const { Cell::new(0) };
}

/// Marks the queue at `address` as polled by its body on this thread,
/// until dropped.
pub(super) struct InlinePoll {
    previous: usize,
}

impl InlinePoll {
    pub(super) fn enter(address: usize) -> Self {
        let previous = POLLED_INLINE
            .try_with(|polled| polled.replace(address))
            .unwrap_or(0);
        Self { previous }
    }
}

impl Drop for InlinePoll {
    fn drop(&mut self) {
        let _ = POLLED_INLINE.try_with(|polled| polled.set(self.previous));
    }
}

/// Whether this thread's body is polling the handler of the queue at
/// `address`.
pub(super) fn is_polled_here(address: usize) -> bool {
    POLLED_INLINE
        .try_with(|polled| polled.get() == address)
        .unwrap_or(false)
}
