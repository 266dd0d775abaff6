//! The future of a layer that may answer before the inner service does.

use std::{
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use pin_project_lite::pin_project;

pin_project! {
    /// The inner service's future `F`, with what the layer needs once it
    /// answers (`T`: a stream permit, a shutdown watch), or the answer the
    /// layer gave instead of calling it (`R`: a `400`, `429` or `503`).
    #[project = EarlyProj]
    pub(crate) enum Early<F, T, R> {
        Inner { #[pin] inner: F, then: Option<T> },
        Answered { answer: Option<R> },
    }
}

/// What an [`Early`] future came to.
pub(crate) enum Outcome<O, T, R> {
    /// The inner service answered `O`; `T` is the layer's.
    Inner(O, T),
    /// The layer answered.
    Answered(R),
}

impl<F, T, R> Early<F, T, R> {
    pub(crate) fn inner(inner: F, then: T) -> Self {
        Self::Inner {
            inner,
            then: Some(then),
        }
    }

    pub(crate) fn answered(answer: R) -> Self {
        Self::Answered {
            answer: Some(answer),
        }
    }

    pub(crate) fn is_answered(&self) -> bool {
        matches!(self, Self::Answered { .. })
    }
}

impl<F: Future, T, R> Early<F, T, R> {
    /// Polls the inner future, if the layer called it.
    ///
    /// # Panics
    ///
    /// If polled again after it was ready.
    pub(crate) fn poll_outcome(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<F::Output, T, R>> {
        const DONE: &str = "ResponseFuture polled after completion";
        Poll::Ready(match self.project() {
            EarlyProj::Inner { inner, then } => {
                let output = ready!(inner.poll(cx));
                Outcome::Inner(output, then.take().expect(DONE))
            }
            EarlyProj::Answered { answer } => Outcome::Answered(answer.take().expect(DONE)),
        })
    }
}
