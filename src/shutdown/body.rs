use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::SseShutdown;
use crate::{
    stats::{CloseReason, StreamRecord},
    util::answer::AnswerBody,
    util::position::Position,
};

/// What an event stream needs to end on shutdown.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    pub(crate) shutdown: SseShutdown,
    pub(crate) farewell: Option<Bytes>,
}

impl Watch {
    /// Resolves once the shutdown is triggered.
    pub(crate) fn wait(&self) -> WaitForCancellationFutureOwned {
        self.shutdown.wait()
    }
}

pin_project! {
    /// Where a watched stream stands.
    #[derive(Debug)]
    struct Watching {
        // Made when the stream first waits.
        #[pin]
        cancelled: Option<WaitForCancellationFutureOwned>,
        watch: Watch,
        phase: Phase,
        // The waker the shutdown wakes; registering again takes a lock, so
        // it is done only when the waker changes.
        registered: Option<Waker>,
        // Tracked only with a farewell, which must not land inside an event.
        position: Position,
        record: Option<Arc<StreamRecord>>,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Streaming,
    /// Triggered: send what the inner body has ready, once.
    Draining,
    /// Then the farewell (if any), and the end.
    Farewell,
    Done,
}

pin_project! {
    /// The body of a response under [`ShutdownLayer`](super::ShutdownLayer):
    /// the inner body until the shutdown, then the farewell event and the
    /// end, if it is an event stream; or the `503` answer.
    #[derive(Debug)]
    pub struct ShutdownBody<B> {
        #[pin]
        inner: AnswerBody<B>,
        // `None`: not an event stream, passed through. Boxed: a stream
        // under no shutdown carries one null pointer, not 170 bytes.
        watching: Option<Pin<Box<Watching>>>,
    }
}

impl<B> ShutdownBody<B> {
    pub(super) fn pass_through(inner: AnswerBody<B>) -> Self {
        Self {
            inner,
            watching: None,
        }
    }

    pub(super) fn watching(
        inner: AnswerBody<B>,
        watch: Watch,
        record: Option<Arc<StreamRecord>>,
    ) -> Self {
        Self {
            inner,
            watching: Some(Box::pin(Watching {
                cancelled: None,
                watch,
                phase: Phase::Streaming,
                registered: None,
                position: Position::default(),
                record,
            })),
        }
    }
}

impl<B> Body for ShutdownBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let Some(watching) = this.watching.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        let mut state = watching.as_mut().project();
        loop {
            match *state.phase {
                Phase::Streaming => {
                    if state.watch.shutdown.is_triggered() {
                        *state.phase = Phase::Draining;
                        continue;
                    }
                    match this.inner.as_mut().poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            track(state.watch, state.position, &frame);
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Poll::Ready(end) => {
                            *state.phase = Phase::Done;
                            return Poll::Ready(end);
                        }
                        Poll::Pending => {}
                    }
                    let registered = state
                        .registered
                        .as_ref()
                        .is_some_and(|waker| waker.will_wake(cx.waker()));
                    if registered {
                        return Poll::Pending;
                    }
                    if state.cancelled.is_none() {
                        state.cancelled.set(Some(state.watch.shutdown.wait()));
                    }
                    let cancelled = state.cancelled.as_mut().as_pin_mut().expect("set above");
                    if cancelled.poll(cx).is_ready() {
                        *state.phase = Phase::Draining;
                        continue;
                    }
                    *state.registered = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Phase::Draining => {
                    *state.phase = Phase::Farewell;
                    match this.inner.as_mut().poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            track(state.watch, state.position, &frame);
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Poll::Ready(end) => {
                            *state.phase = Phase::Done;
                            return Poll::Ready(end);
                        }
                        Poll::Pending => {}
                    }
                }
                Phase::Farewell => {
                    *state.phase = Phase::Done;
                    tracing::trace!("SSE stream ended by the shutdown");
                    if let Some(record) = &state.record {
                        record.end(CloseReason::Shutdown);
                    }
                    let Some(farewell) = &state.watch.farewell else {
                        return Poll::Ready(None);
                    };
                    if !state.position.between_events() {
                        // The inner body stopped inside an event: a
                        // farewell now would corrupt it.
                        return Poll::Ready(None);
                    }
                    if let Some(record) = &state.record {
                        record.sent(1, farewell.len());
                    }
                    return Poll::Ready(Some(Ok(Frame::data(farewell.clone()))));
                }
                Phase::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.watching.as_ref().map(|state| state.phase) {
            None | Some(Phase::Streaming) => self.inner.is_end_stream(),
            Some(Phase::Done) => true,
            Some(Phase::Draining | Phase::Farewell) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.watching {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// Follows where the stream stands, if a farewell will need to know.
fn track(watch: &Watch, position: &mut Position, frame: &Frame<Bytes>) {
    if watch.farewell.is_some() {
        if let Some(data) = frame.data_ref() {
            position.advance(data);
        }
    }
}
