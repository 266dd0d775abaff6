use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{body::Watch, ShutdownBody};
use crate::{
    stats::record_of,
    util::{
        answer::AnswerBody,
        early::{Early, Outcome},
        headers,
    },
};

pin_project! {
    /// The response future of [`ShutdownService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: Early<F, Option<Watch>, Response<ShutdownBody<B>>>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn inner(inner: F, watch: Option<Watch>) -> Self {
        Self {
            inner: Early::inner(inner, watch),
        }
    }

    pub(super) fn refused(answer: Response<ShutdownBody<B>>) -> Self {
        Self {
            inner: Early::answered(answer),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ShutdownBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll_outcome(cx)) {
            Outcome::Inner(output, watch) => output.map(|response| {
                let watch = watch.filter(|_| headers::is_event_stream(response.headers()));
                let Some(watch) = watch else {
                    return response
                        .map(|body| ShutdownBody::pass_through(AnswerBody::inner(body)));
                };
                let record = record_of(response.extensions());
                response.map(|body| ShutdownBody::watching(AnswerBody::inner(body), watch, record))
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
