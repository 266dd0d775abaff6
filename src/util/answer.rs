//! Answers a layer gives in place of the inner service.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// The `Retry-After` of a layer's `429` and `503` answers, by default.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

pin_project! {
    /// The inner service's body, or a short plain-text answer that a layer
    /// gave instead of calling it (a `400` for a malformed `Last-Event-ID`,
    /// for instance).
    #[derive(Debug)]
    pub struct AnswerBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Text { text: Option<Bytes> },
    }
}

impl<B> AnswerBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }
}

/// A plain-text answer with `status`.
pub(crate) fn text_answer<B>(status: StatusCode, text: String) -> Response<AnswerBody<B>> {
    let mut response = Response::new(AnswerBody {
        kind: Kind::Text {
            text: Some(Bytes::from(text)),
        },
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A plain-text answer with `status` and `Retry-After` (whole seconds,
/// rounded up), for a refusal the client should try again after.
pub(crate) fn retry_later<B>(
    status: StatusCode,
    text: &'static str,
    retry_after: &HeaderValue,
) -> Response<AnswerBody<B>> {
    let mut response = text_answer(status, text.to_owned());
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after.clone());
    response
}

/// The `Retry-After` value for `delay`: whole seconds, rounded up.
pub(crate) fn retry_after_value(delay: Duration) -> HeaderValue {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    HeaderValue::from(secs)
}

impl<B> Body for AnswerBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Text { text } => Poll::Ready(text.take().map(|text| Ok(Frame::data(text)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Text { text } => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Text { text } => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
        }
    }
}
