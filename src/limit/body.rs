use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::layer::StreamPermit;
use crate::util::answer::AnswerBody;

pin_project! {
    /// The body of a response under
    /// [`StreamLimitLayer`](super::StreamLimitLayer): the inner body, holding
    /// the stream's permits until it ends; or the `429` answer.
    #[derive(Debug)]
    pub struct StreamLimitBody<B> {
        #[pin]
        inner: AnswerBody<B>,
        // Boxed: a stream under no limit carries one null pointer, not the
        // permit's 80 bytes (every byte of a stream counts when it is idle).
        permit: Option<Box<StreamPermit>>,
    }
}

impl<B> StreamLimitBody<B> {
    pub(super) fn new(inner: AnswerBody<B>, permit: Option<StreamPermit>) -> Self {
        Self {
            inner,
            permit: permit.map(Box::new),
        }
    }
}

impl<B> Body for StreamLimitBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = frame {
            // The stream is over, whether or not the body is dropped soon.
            *this.permit = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
