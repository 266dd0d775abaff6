//! The bounded queue between a stream's writers and its response body.
//!
//! Events are bytes, and the body sends whatever is queued as one frame, so
//! the queue is a single byte buffer rather than a channel of messages: a
//! send appends the event's bytes, the body takes the whole buffer. That
//! costs no allocation and no queue node per event, and coalescing comes for
//! free. It is bounded by events and by bytes; writers that find it full
//! wait on a [`Notify`] until the body drains it or goes away, for at most
//! the send timeout: then the writer aborts the queue, which drops what it
//! holds and ends the stream (the slow-consumer policy). The handler that
//! the body itself polls waits with neither a `Notify` nor a timer: the body
//! polls it again as soon as it took the queue.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use tokio::{sync::Notify, time::Instant};

use super::inline;
use crate::util::frame_buffer::FrameBuffer;

/// How much a queue may hold before writers wait, and for how long they
/// wait.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_events: usize,
    pub(crate) max_bytes: usize,
    pub(crate) send_timeout: Duration,
}

#[derive(Debug)]
pub(crate) struct Queue {
    limits: QueueLimits,
    state: Mutex<State>,
    /// Woken when the body drained the buffer while a writer waited, or
    /// went away.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    buf: FrameBuffer,
    events: usize,
    writers: usize,
    /// The body is gone, or the queue was aborted: nothing queued will ever
    /// be read.
    closed: bool,
    /// A writer gave up on a client too slow to read: the body ends.
    aborted: bool,
    /// The body, waiting for bytes or for the last writer to go.
    reader: Option<Waker>,
    /// A writer found the queue full and waits for the next drain: only
    /// then does a drain notify (which takes a lock of its own).
    writer_waiting: bool,
}

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    Full,
    Closed,
}

impl Queue {
    /// A queue with one writer (the caller's).
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                buf: FrameBuffer::new(limits.max_bytes),
                events: 0,
                writers: 1,
                closed: false,
                aborted: false,
                reader: None,
                writer_waiting: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::util::sync::lock(&self.state)
    }

    /// Queues `event` if there is room. An event larger than the byte limit
    /// still goes into an empty queue, so it is never stuck.
    pub(crate) fn try_push(&self, event: &[u8]) -> Result<(), PushError> {
        self.push_or_report(event, false)
    }

    /// Queues `event` if there is room; `will_wait`: if there is none, the
    /// caller waits for the next drain.
    fn push_or_report(&self, event: &[u8], will_wait: bool) -> Result<(), PushError> {
        let inline = self.polled_inline_here();
        let reader = {
            let mut state = self.lock();
            if state.closed {
                return Err(PushError::Closed);
            }
            let over_bytes = state.buf.len() + event.len() > self.limits.max_bytes;
            if state.events > 0 && (state.events >= self.limits.max_events || over_bytes) {
                state.writer_waiting |= will_wait;
                return Err(PushError::Full);
            }
            state.buf.extend(event);
            state.events += 1;
            // Only the first event needs to wake the body: it takes them all.
            // The handler it is polling right now wakes no one: the body
            // takes the queue as soon as the handler yields.
            if state.events == 1 && !inline {
                state.reader.take()
            } else {
                None
            }
        };
        if let Some(reader) = reader {
            reader.wake();
        }
        Ok(())
    }

    /// Queues `event`, waiting while the queue is full.
    pub(crate) async fn push(&self, event: &[u8]) -> Result<(), PushError> {
        loop {
            let drained = self.changed.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            // Registered before trying, so a drain in between is not missed.
            match self.push_or_report(event, true) {
                Err(PushError::Full) => drained.await,
                done => return done,
            }
        }
    }

    /// Queues `event` for the handler its body is polling on this thread,
    /// unless `deadline` passes first (`None`). While the queue is full it
    /// waits with no waker and no timer: the body takes the queue as soon
    /// as the handler yields, and polls the handler again for its next
    /// frame; the deadline is checked each time, before trying.
    pub(crate) async fn push_inline(
        &self,
        event: &[u8],
        deadline: Instant,
    ) -> Option<Result<(), PushError>> {
        std::future::poll_fn(|_| {
            if Instant::now() >= deadline {
                return Poll::Ready(None);
            }
            match self.try_push(event) {
                Err(PushError::Full) => Poll::Pending,
                done => Poll::Ready(Some(done)),
            }
        })
        .await
    }

    /// Whether this thread's body is polling the handler that writes to
    /// this queue (the push comes from the handler itself).
    pub(crate) fn polled_inline_here(&self) -> bool {
        inline::is_polled_here(self.address())
    }

    fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// Resolves once the body is gone.
    pub(crate) async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_closed() {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.lock().aborted
    }

    pub(crate) fn has_writers(&self) -> bool {
        self.lock().writers > 0
    }

    pub(crate) fn add_writer(&self) {
        self.lock().writers += 1;
    }

    pub(crate) fn remove_writer(&self) {
        let reader = {
            let mut state = self.lock();
            state.writers -= 1;
            if state.writers == 0 {
                state.reader.take()
            } else {
                None
            }
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// The limits the queue was made with.
    pub(crate) fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Everything queued, as one frame with the number of events in it;
    /// the end once the queue is empty and every writer is gone, or at once
    /// when it was aborted.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let (frame, events, writer_waiting) = {
            let mut state = self.lock();
            if state.aborted {
                return Poll::Ready(Taken::Aborted);
            }
            if state.buf.is_empty() {
                if state.writers == 0 {
                    return Poll::Ready(Taken::Finished);
                }
                match &mut state.reader {
                    Some(waker) => waker.clone_from(cx.waker()),
                    None => state.reader = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            let events = std::mem::take(&mut state.events);
            let writer_waiting = std::mem::take(&mut state.writer_waiting);
            (state.buf.take(), events, writer_waiting)
        };
        if writer_waiting {
            self.changed.notify_waiters();
        }
        Poll::Ready(Taken::Frame { frame, events })
    }

    /// The body is gone: drop what is queued and release every writer.
    pub(crate) fn close(&self) {
        self.shut(false);
    }

    /// The client is too slow: drop what is queued, release every writer
    /// and tell the body to end the stream.
    pub(crate) fn abort(&self) {
        self.shut(true);
    }

    fn shut(&self, abort: bool) {
        let reader = {
            let mut state = self.lock();
            state.closed = true;
            state.aborted |= abort;
            state.buf.clear();
            state.events = 0;
            state.reader.take()
        };
        self.changed.notify_waiters();
        if let (true, Some(reader)) = (abort, reader) {
            reader.wake();
        }
    }
}

/// What the body takes from the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Everything queued, `events` events in all.
    Frame { frame: Bytes, events: usize },
    /// Every writer is gone and everything was taken.
    Finished,
    /// A writer gave up on the client: end the stream now.
    Aborted,
}

/// The body's end of a queue: dropping it closes the queue.
#[derive(Debug)]
pub(crate) struct QueueReader(pub(crate) Arc<Queue>);

impl QueueReader {
    /// Runs `poll`, the body polling the handler that writes to this queue:
    /// the handler's pushes wake no one and wait without a waker or timer
    /// (see [`Queue::push_inline`]).
    pub(crate) fn poll_inline<R>(&self, poll: impl FnOnce() -> R) -> R {
        let _inline = inline::InlinePoll::enter(self.0.address());
        poll()
    }

    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        self.0.poll_take(cx)
    }
}

impl Drop for QueueReader {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use futures_util::{
        task::{noop_waker_ref, ArcWake},
        FutureExt,
    };

    const LIMITS: QueueLimits = QueueLimits {
        max_events: 3,
        max_bytes: 10,
        send_timeout: Duration::from_secs(30),
    };

    /// The next frame, `Some(None)` at the end.
    fn take(queue: &Queue) -> Poll<Option<Bytes>> {
        queue
            .poll_take(&mut Context::from_waker(noop_waker_ref()))
            .map(|taken| match taken {
                Taken::Frame { frame, .. } => Some(frame),
                Taken::Finished => None,
                Taken::Aborted => panic!("aborted"),
            })
    }

    #[test]
    fn queued_events_leave_as_one_frame() {
        let queue = Queue::new(LIMITS);
        queue.try_push(b"a\n\n").unwrap();
        queue.try_push(b"b\n\n").unwrap();
        assert_eq!(take(&queue), Poll::Ready(Some(Bytes::from("a\n\nb\n\n"))));
        assert_eq!(take(&queue), Poll::Pending);
    }

    #[test]
    fn bounded_by_events_and_by_bytes() {
        let queue = Queue::new(LIMITS);
        for _ in 0..3 {
            queue.try_push(b"x\n").unwrap();
        }
        assert_eq!(queue.try_push(b"x\n"), Err(PushError::Full));
        let _ = take(&queue);
        queue.try_push(b"123456\n").unwrap();
        assert_eq!(queue.try_push(b"1234\n"), Err(PushError::Full));
        let _ = take(&queue);
        // Too big for the limit, but alone it still goes through.
        queue.try_push(b"0123456789abcdef\n").unwrap();
        assert_eq!(queue.try_push(b"x\n"), Err(PushError::Full));
    }

    #[test]
    fn ends_when_the_last_writer_leaves_after_draining() {
        let queue = Queue::new(LIMITS);
        queue.add_writer();
        queue.try_push(b"x\n\n").unwrap();
        queue.remove_writer();
        queue.remove_writer();
        assert_eq!(take(&queue), Poll::Ready(Some(Bytes::from("x\n\n"))));
        assert_eq!(take(&queue), Poll::Ready(None));
    }

    #[tokio::test]
    async fn a_waiting_writer_goes_on_once_drained_and_fails_once_closed() {
        let queue = std::sync::Arc::new(Queue::new(QueueLimits {
            max_events: 1,
            ..LIMITS
        }));
        queue.try_push(b"1\n\n").unwrap();
        let writer = tokio::spawn({
            let queue = queue.clone();
            async move {
                queue.push(b"2\n\n").await?;
                queue.push(b"3\n\n").await
            }
        });
        tokio::task::yield_now().await;
        assert_eq!(take(&queue), Poll::Ready(Some(Bytes::from("1\n\n"))));
        while take(&queue) == Poll::Pending {
            tokio::task::yield_now().await;
        }
        queue.close();
        assert_eq!(writer.await.unwrap(), Err(PushError::Closed));
        queue.closed().await;
    }

    #[test]
    fn frames_count_their_events() {
        let queue = Queue::new(LIMITS);
        queue.try_push(b"a\n\n").unwrap();
        queue.try_push(b"b\n\n").unwrap();
        let taken = queue.poll_take(&mut Context::from_waker(noop_waker_ref()));
        assert_eq!(
            taken,
            Poll::Ready(Taken::Frame {
                frame: Bytes::from("a\n\nb\n\n"),
                events: 2
            })
        );
    }

    struct CountWakes(AtomicUsize);

    impl ArcWake for CountWakes {
        fn wake_by_ref(count: &Arc<Self>) {
            count.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn the_handler_polled_by_its_body_wakes_no_one() {
        let reader = QueueReader(Arc::new(Queue::new(LIMITS)));
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = futures_util::task::waker(Arc::clone(&wakes));
        assert!(reader
            .poll_take(&mut Context::from_waker(&waker))
            .is_pending());
        reader.poll_inline(|| reader.0.try_push(b"a\n\n")).unwrap();
        assert_eq!(wakes.0.load(SeqCst), 0);
        assert!(!reader.0.polled_inline_here(), "only while polled");
        assert_eq!(take(&reader.0), Poll::Ready(Some(Bytes::from("a\n\n"))));
        // From anywhere else, the first event wakes the body.
        assert!(reader
            .poll_take(&mut Context::from_waker(&waker))
            .is_pending());
        reader.0.try_push(b"b\n\n").unwrap();
        assert_eq!(wakes.0.load(SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_inline_push_gives_up_at_its_deadline() {
        let queue = Queue::new(QueueLimits {
            max_events: 1,
            ..LIMITS
        });
        queue.try_push(b"1\n\n").unwrap();
        let push = queue.push_inline(b"2\n\n", Instant::now() + Duration::from_secs(1));
        tokio::pin!(push);
        assert_eq!(push.as_mut().now_or_never(), None, "waits while full");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(push.await, None, "gave up");
        assert_eq!(take(&queue), Poll::Ready(Some(Bytes::from("1\n\n"))));
    }

    #[test]
    fn an_aborted_queue_drops_its_bytes_and_ends_at_once() {
        let queue = Queue::new(LIMITS);
        queue.try_push(b"a\n\n").unwrap();
        queue.abort();
        assert_eq!(queue.try_push(b"b\n\n"), Err(PushError::Closed));
        assert!(queue.is_closed());
        let taken = queue.poll_take(&mut Context::from_waker(noop_waker_ref()));
        assert_eq!(taken, Poll::Ready(Taken::Aborted));
    }
}
