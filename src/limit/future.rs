use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{layer::StreamPermit, StreamLimitBody};
use crate::{util::answer::AnswerBody, util::headers};

pin_project! {
    /// The response future of [`StreamLimitService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] inner: F, permit: Option<StreamPermit> },
        Refused { answer: Option<Response<StreamLimitBody<B>>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn inner(inner: F, permit: Option<StreamPermit>) -> Self {
        Self {
            kind: Kind::Inner { inner, permit },
        }
    }

    pub(super) fn refused(answer: Response<StreamLimitBody<B>>) -> Self {
        Self {
            kind: Kind::Refused {
                answer: Some(answer),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<StreamLimitBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { inner, permit } => {
                let response = ready!(inner.poll(cx))?;
                // Only an event stream keeps its permit; any other answer is
                // complete, and releases it now.
                let permit = permit
                    .take()
                    .filter(|_| headers::is_event_stream(response.headers()));
                Poll::Ready(Ok(
                    response.map(|body| StreamLimitBody::new(AnswerBody::inner(body), permit))
                ))
            }
            KindProj::Refused { answer } => Poll::Ready(Ok(answer
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused = matches!(self.kind, Kind::Refused { .. });
        f.debug_struct("ResponseFuture")
            .field("refused", &refused)
            .finish()
    }
}
