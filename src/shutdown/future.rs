use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::Response;
use pin_project_lite::pin_project;

use super::{body::Watch, ShutdownBody};
use crate::{stats::record_of, util::answer::AnswerBody, util::headers};

pin_project! {
    /// The response future of [`ShutdownService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] inner: F, watch: Option<Watch> },
        Answered { answer: Option<Response<ShutdownBody<B>>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn inner(inner: F, watch: Option<Watch>) -> Self {
        Self {
            kind: Kind::Inner { inner, watch },
        }
    }

    pub(super) fn refused(answer: Response<ShutdownBody<B>>) -> Self {
        Self {
            kind: Kind::Answered {
                answer: Some(answer),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ShutdownBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { inner, watch } => {
                let response = std::task::ready!(inner.poll(cx))?;
                let watch = watch
                    .take()
                    .filter(|_| headers::is_event_stream(response.headers()));
                let Some(watch) = watch else {
                    return Poll::Ready(Ok(
                        response.map(|body| ShutdownBody::pass_through(AnswerBody::inner(body)))
                    ));
                };
                let record = record_of(response.extensions());
                Poll::Ready(Ok(response.map(|body| {
                    ShutdownBody::watching(AnswerBody::inner(body), watch, record)
                })))
            }
            KindProj::Answered { answer } => Poll::Ready(Ok(answer
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused = matches!(self.kind, Kind::Answered { .. });
        f.debug_struct("ResponseFuture")
            .field("refused", &refused)
            .finish()
    }
}
