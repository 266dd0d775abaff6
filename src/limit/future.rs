use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{layer::StreamPermit, StreamLimitBody};
use crate::util::{
    answer::AnswerBody,
    early::{Early, Outcome},
    headers,
};

pin_project! {
    /// The response future of [`StreamLimitService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: Early<F, Option<StreamPermit>, Response<StreamLimitBody<B>>>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn inner(inner: F, permit: Option<StreamPermit>) -> Self {
        Self {
            inner: Early::inner(inner, permit),
        }
    }

    pub(super) fn refused(answer: Response<StreamLimitBody<B>>) -> Self {
        Self {
            inner: Early::answered(answer),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<StreamLimitBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll_outcome(cx)) {
            Outcome::Inner(output, permit) => output.map(|response| {
                // Only an event stream keeps its permit; any other answer is
                // complete, and releases it now.
                let permit = permit.filter(|_| headers::is_event_stream(response.headers()));
                response.map(|body| StreamLimitBody::new(AnswerBody::inner(body), permit))
            }),
            Outcome::Answered(answer) => Ok(answer),
        })
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused = self.inner.is_answered();
        f.debug_struct("ResponseFuture")
            .field("refused", &refused)
            .finish()
    }
}
