use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::stats::{CloseReason, StreamRecord};

/// The limits of one stream and where it stands.
#[derive(Debug)]
pub(super) struct Limits {
    idle_timeout: Option<Duration>,
    /// This stream's, jitter applied.
    max_duration: Option<Duration>,
    /// Set when the body is first polled.
    deadline: Option<Instant>,
    /// When the last frame went out (or the body was first polled).
    last_event: Option<Instant>,
    record: Option<Arc<StreamRecord>>,
}

impl Limits {
    pub(super) fn new(
        idle_timeout: Option<Duration>,
        max_duration: Option<Duration>,
        record: Option<Arc<StreamRecord>>,
    ) -> Self {
        Self {
            idle_timeout,
            max_duration,
            deadline: None,
            last_event: None,
            record,
        }
    }

    /// When the stream ends if nothing happens, and why. `None`: never.
    fn due(&self, last_event: Instant) -> Option<(Instant, CloseReason)> {
        let idle = self
            .idle_timeout
            .and_then(|timeout| last_event.checked_add(timeout))
            .map(|due| (due, CloseReason::Idle));
        let max = self.deadline.map(|due| (due, CloseReason::MaxDuration));
        match (idle, max) {
            (Some(idle), Some(max)) => Some(if max.0 <= idle.0 { max } else { idle }),
            (idle, max) => idle.or(max),
        }
    }

    fn end(&self, reason: CloseReason) {
        tracing::trace!(
            reason = reason.as_str(),
            "SSE stream reached its time limit"
        );
        if let Some(record) = &self.record {
            record.end(reason);
        }
    }
}

pin_project! {
    /// The body of a response under [`TimeLimitLayer`](super::TimeLimitLayer): the inner body,
    /// ended cleanly when it stays idle or lasts too long, if it is an event
    /// stream.
    #[derive(Debug)]
    pub struct TimeLimitBody<B> {
        #[pin]
        inner: B,
        // Armed the first time the inner body waits. Boxed, like the
        // limits: a stream without limits carries two empty pointers.
        timer: Option<Pin<Box<Sleep>>>,
        // `None`: not an event stream (or no limit), passed through.
        limits: Option<Box<Limits>>,
        ended: bool,
    }
}

impl<B> TimeLimitBody<B> {
    pub(super) fn new(inner: B, limits: Option<Limits>) -> Self {
        Self {
            inner,
            timer: None,
            limits: limits.map(Box::new),
            ended: false,
        }
    }
}

impl<B> Body for TimeLimitBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let Some(limits) = this.limits.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        if *this.ended {
            return Poll::Ready(None);
        }
        let last_event = match limits.last_event {
            Some(at) => at,
            None => {
                let now = Instant::now();
                limits.deadline = limits.max_duration.and_then(|max| now.checked_add(max));
                *limits.last_event.insert(now)
            }
        };
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            match &frame {
                Some(Ok(_)) => {
                    // No timer work per frame: the timer reads `last_event`
                    // when it fires. A busy stream never lets the timer
                    // fire, so the deadline is checked here too.
                    let now = Instant::now();
                    limits.last_event = Some(now);
                    if limits.deadline.is_some_and(|deadline| now >= deadline) {
                        limits.end(CloseReason::MaxDuration);
                        *this.ended = true;
                    }
                }
                _ => *this.ended = true,
            }
            return Poll::Ready(frame);
        }
        let Some((due, _)) = limits.due(last_event) else {
            return Poll::Pending;
        };
        let timer = this.timer.get_or_insert_with(|| Box::pin(sleep_until(due)));
        loop {
            ready!(timer.as_mut().poll(cx));
            let last_event = limits.last_event.unwrap_or(last_event);
            let Some((due, reason)) = limits.due(last_event) else {
                return Poll::Pending;
            };
            if due > timer.deadline() {
                // Events went out since the timer was armed.
                timer.as_mut().reset(due);
                continue;
            }
            limits.end(reason);
            *this.ended = true;
            return Poll::Ready(None);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.limits {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}
