//! An update, and its form in the hub log.
//!
//! The hub log is one [`Broadcast`](crate::broadcast::Broadcast) topic. An
//! update is logged as one event whose only field (besides the id) is one
//! `data:` line holding a JSON envelope:
//!
//! ```text
//! data: {"v":1,"t":["topic", ...],"p":false,"e":"type","r":1500,"d":"the data"}
//! id: <the log's id>
//! ```
//!
//! `v` is the envelope version, `t` the topics (canonical first), `p`
//! private, `e` the event type (absent: none), `r` the retry in
//! milliseconds (absent: none), `d` the data. JSON escapes line breaks, so
//! the envelope is one line whatever the data. Subscribers never see it: the
//! hub decodes it and sends the update's own fields with the log's id.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::{EncodedEvent, Event};

use super::{selector::has_control, HubError, Topic};

/// The version of the envelope this code writes and reads.
pub(crate) const ENVELOPE_VERSION: u64 = 1;

/// One update for a [`Hub`](super::Hub): topics (the first is canonical,
/// the others alternate), data, and the optional event type, retry and
/// id.
///
/// ```
/// use std::time::Duration;
/// use axum_sse::hub::Update;
///
/// let update = Update::new("https://example.com/books/1")
///     .topic("https://example.com/users/42/books/1")
///     .data("{\"title\":\"Dune\"}")
///     .event("book")
///     .retry(Duration::from_secs(2))
///     .private(true);
/// assert_eq!(update.topics().len(), 2);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Update {
    topics: Vec<String>,
    data: String,
    private: bool,
    event_type: Option<String>,
    retry: Option<Duration>,
    id: Option<String>,
}

impl Update {
    /// An update of `topic` (its canonical topic), public, with empty data.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topics: vec![topic.into()],
            data: String::new(),
            private: false,
            event_type: None,
            retry: None,
            id: None,
        }
    }

    /// Adds an alternate topic: subscribers matching it receive the update
    /// too (once, however many of its topics they match).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Sets the data (the SSE `data`; line breaks split it into several
    /// `data:` lines, read back joined by LF). Default: empty.
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = data.into();
        self
    }

    /// Marks the update private: only subscribers whose
    /// [`Authorization`](super::Authorization) covers one of its topics
    /// receive it. Default: public.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Sets the SSE `event` type. Default: none (a `message`).
    pub fn event(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the SSE `retry` (the reconnection time). Default: none.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets the update's own id (Mercure's `id` field), used as the SSE
    /// `id` verbatim and resumable from, instead of one the hub log
    /// assigns. Publishing the same id again while the update is in the hub
    /// log's history stores and sends nothing (a retry is idempotent). An
    /// id is 1 to 64 bytes of visible ASCII, not `earliest`, not of the
    /// log's own form
    /// ([`BroadcastError::InvalidId`](crate::broadcast::BroadcastError::InvalidId)).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The topics, canonical first.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Whether the update is private.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Checks the update and builds the event logged for it.
    pub(crate) fn into_log_event(self, max_topics: usize) -> Result<Event, HubError> {
        if self.topics.len() > max_topics {
            return Err(HubError::InvalidUpdate(format!(
                "more than {max_topics} topics"
            )));
        }
        for topic in &self.topics {
            if topic.is_empty() || has_control(topic) {
                return Err(HubError::InvalidUpdate(
                    "a topic is empty or contains a control or format character".to_owned(),
                ));
            }
        }
        if let Some(event_type) = &self.event_type {
            if has_control(event_type) {
                return Err(HubError::InvalidUpdate(
                    "the type contains a control or format character".to_owned(),
                ));
            }
        }
        let mut envelope = Map::new();
        envelope.insert("v".into(), ENVELOPE_VERSION.into());
        envelope.insert("t".into(), self.topics.into());
        envelope.insert("p".into(), self.private.into());
        if let Some(event_type) = self.event_type {
            envelope.insert("e".into(), event_type.into());
        }
        if let Some(retry) = self.retry {
            let millis = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX);
            envelope.insert("r".into(), millis.into());
        }
        envelope.insert("d".into(), self.data.into());
        let event = Event::new().data(Value::Object(envelope).to_string());
        Ok(match self.id {
            None => event,
            Some(id) => {
                if id == "earliest" || id.is_empty() || has_control(&id) {
                    return Err(HubError::InvalidUpdate(
                        "the id is empty, `earliest`, or contains a control or format character"
                            .to_owned(),
                    ));
                }
                event
                    .try_id(id.as_str())
                    .map_err(|err| HubError::InvalidUpdate(err.to_string()))?
            }
        })
    }
}

/// A logged update, decoded: what every subscriber's filter reads, and the
/// event subscribers receive (encoded once per event per process).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) topics: Box<[Topic]>,
    pub(crate) private: bool,
    pub(crate) out: EncodedEvent,
}

/// The id and the envelope of a logged event: its `id:` line and its one
/// `data:` line. `None` when it is not a hub log event.
pub(crate) fn split(wire: &[u8]) -> Option<(Option<&str>, &str)> {
    let mut id = None;
    let mut data = None;
    for line in wire.split(|&b| b == b'\n') {
        if let Some(value) = line.strip_prefix(b"id:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            id = Some(std::str::from_utf8(value).ok()?);
        } else if let Some(value) = line.strip_prefix(b"data:") {
            if data.is_some() {
                return None;
            }
            let value = value.strip_prefix(b" ").unwrap_or(value);
            data = Some(std::str::from_utf8(value).ok()?);
        }
    }
    Some((id, data?))
}

/// The id of a logged event when its last field is the id (as the log
/// writes it): found from the end, without reading the data. `None`
/// otherwise (then [`split`] reads every line).
pub(crate) fn last_id(wire: &[u8]) -> Option<&str> {
    let body = wire.strip_suffix(b"\n\n")?;
    let line = match memchr::memrchr(b'\n', body) {
        Some(at) => &body[at + 1..],
        None => body,
    };
    let value = line.strip_prefix(b"id:")?;
    std::str::from_utf8(value.strip_prefix(b" ").unwrap_or(value)).ok()
}

/// Decodes a logged event's envelope into what subscribers receive.
pub(crate) fn decode(id: Option<&str>, envelope: &str) -> Option<Decoded> {
    let Value::Object(mut envelope) = serde_json::from_str::<Value>(envelope).ok()? else {
        return None;
    };
    if envelope.get("v")?.as_u64()? != ENVELOPE_VERSION {
        return None;
    }
    let topics = envelope
        .get("t")?
        .as_array()?
        .iter()
        .map(|topic| topic.as_str().map(Topic::new))
        .collect::<Option<Box<[Topic]>>>()?;
    let private = envelope.get("p")?.as_bool()?;
    let mut event = Event::new();
    if let Some(event_type) = envelope.get("e") {
        event = event.try_event(event_type.as_str()?).ok()?;
    }
    if let Some(retry) = envelope.get("r") {
        event = event.retry(Duration::from_millis(retry.as_u64()?));
    }
    let Value::String(data) = envelope.remove("d")? else {
        return None;
    };
    event = event.data(data);
    if let Some(id) = id {
        event = event.try_id(id).ok()?;
    }
    Some(Decoded {
        topics,
        private,
        out: event.encode().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(update: Update, id: &str) -> Vec<u8> {
        let event = update.into_log_event(16).unwrap().id(id);
        event.encode().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn an_update_round_trips_through_the_log_byte_exact() {
        let update = Update::new("a")
            .topic("b")
            .data("line 1\nline 2\r\n\n data: not a field")
            .event("book")
            .retry(Duration::from_millis(1500))
            .private(true);
        let wire = logged(update, "G.7");
        // One data line, one id line: the envelope never splits.
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 3);
        let (id, envelope) = split(&wire).unwrap();
        assert_eq!(id, Some("G.7"));
        assert_eq!(last_id(&wire), Some("G.7"));
        assert_eq!(last_id(b"id: 1\ndata: x\n\n"), None);
        assert_eq!(last_id(b"data: x\nid:\n\n"), Some(""));
        let decoded = decode(id, envelope).unwrap();
        assert!(decoded.private);
        let names: Vec<&str> = decoded.topics.iter().map(|t| &*t.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            decoded.out.as_bytes(),
            b"event: book\nretry: 1500\ndata: line 1\ndata: line 2\ndata:\ndata:  data: not a field\nid: G.7\n\n"
                .as_slice()
        );
    }

    #[test]
    fn other_events_are_not_updates() {
        for wire in [
            &b"event: missed\ndata:\n\n"[..],
            b"data: x\nid: 1\n\n",
            b"data: {\"v\":2,\"t\":[],\"p\":false,\"d\":\"\"}\n\n",
            b"data: {\"v\":1,\"t\":[1],\"p\":false,\"d\":\"\"}\n\n",
            b"data: {\"v\":1,\"t\":[],\"p\":false,\"d\":\"\",\"e\":\"a\\nb\"}\n\n",
            b"data: {}\ndata: {}\n\n",
        ] {
            let decoded = split(wire).and_then(|(id, env)| decode(id, env));
            assert!(decoded.is_none(), "{}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn bad_updates_are_refused() {
        for update in [
            Update::new(""),
            Update::new("a\u{0}"),
            Update::new("a").event("x\ny"),
            Update::new("a").id("earliest"),
            Update::new("a").id("x\ny"),
            Update::new("a").topic("b").topic("c"),
        ] {
            assert!(
                matches!(
                    update.clone().into_log_event(2),
                    Err(HubError::InvalidUpdate(_))
                ),
                "{update:?}"
            );
        }
    }
}
