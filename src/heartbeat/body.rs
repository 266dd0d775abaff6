use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};

use super::Setting;
use crate::util::position::Position;

pin_project! {
    /// The body of a response under [`HeartbeatLayer`](super::HeartbeatLayer):
    /// the inner body, with a heartbeat after each idle interval if it is an
    /// event stream.
    #[derive(Debug)]
    pub struct HeartbeatBody<B> {
        #[pin]
        inner: B,
        // Armed the first time the inner body waits.
        #[pin]
        timer: Option<Sleep>,
        // `None`: not an event stream, passed through.
        heartbeat: Option<Arc<Setting>>,
        // When the last frame went out (or the stream was first polled).
        idle_since: Option<Instant>,
        position: Position,
    }
}

impl<B> HeartbeatBody<B> {
    pub(super) fn new(inner: B, heartbeat: Option<Arc<Setting>>) -> Self {
        Self {
            inner,
            timer: None,
            heartbeat,
            idle_since: None,
            position: Position::default(),
        }
    }
}

impl<B> Body for HeartbeatBody<B>
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
        let Some(setting) = this.heartbeat.as_deref() else {
            return this.inner.poll_frame(cx);
        };
        let (interval, message) = (&setting.interval, &setting.message);
        let idle_since = this.idle_since.get_or_insert_with(Instant::now);
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if let Some(Ok(frame)) = &frame {
                if let Some(data) = frame.data_ref() {
                    this.position.advance(data);
                }
                // No timer work per event: the timer notices the new
                // `idle_since` when it fires.
                *idle_since = Instant::now();
            }
            return Poll::Ready(frame);
        }
        if this.timer.is_none() {
            this.timer.set(Some(sleep_until(*idle_since + *interval)));
        }
        let mut timer = this.timer.as_mut().as_pin_mut().expect("armed above");
        loop {
            ready!(timer.as_mut().poll(cx));
            let due = *idle_since + *interval;
            if due > timer.deadline() {
                // Events went out since the timer was armed.
                timer.as_mut().reset(due);
                continue;
            }
            let now = Instant::now();
            *idle_since = now;
            timer.as_mut().reset(now + *interval);
            if this.position.between_events() {
                return Poll::Ready(Some(Ok(Frame::data(message.clone()))));
            }
            // The inner body stopped inside an event: a heartbeat here would
            // corrupt it. Wait another interval.
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.heartbeat {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}
