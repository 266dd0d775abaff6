//! Any event our encoder writes decodes back to the same event under the
//! WHATWG algorithm, however the bytes are chunked.

use std::time::Duration;

use axum_sse::{
    decode::{DecodedEvent, Decoder},
    Event,
};
use bytes::Bytes;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Fields {
    event: Option<String>,
    id: Option<String>,
    retry: Option<u32>,
    comment: Option<String>,
    data: String,
}

fn fields() -> impl Strategy<Value = Fields> {
    // Single-line fields: anything but CR and LF (and NUL for ids).
    let single_line = "[^\r\n]{0,12}";
    let id = "[^\r\n\0]{0,12}";
    // Data: any text, line breaks of every kind included.
    let data = prop::collection::vec(
        prop_oneof![
            "[^\r\n]{0,8}",
            Just("\n".to_owned()),
            Just("\r".to_owned()),
            Just("\r\n".to_owned())
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat());
    (
        prop::option::of(single_line),
        prop::option::of(id),
        prop::option::of(any::<u32>()),
        prop::option::of("[^\r\n]{0,8}"),
        data,
    )
        .prop_map(|(event, id, retry, comment, data)| Fields {
            event,
            id,
            retry,
            comment,
            data,
        })
}

fn encode(fields: &Fields) -> Bytes {
    let mut event = Event::new();
    if let Some(comment) = &fields.comment {
        event = event.comment(comment);
    }
    if let Some(kind) = &fields.event {
        event = event.event(kind);
    }
    if let Some(id) = &fields.id {
        event = event.id(id);
    }
    if let Some(ms) = fields.retry {
        event = event.retry(Duration::from_millis(ms.into()));
    }
    event.data(&fields.data).encode().unwrap().into_bytes()
}

/// What a client should see for each event, with the last event id carried
/// over from earlier ones.
fn expected(events: &[Fields]) -> Vec<DecodedEvent> {
    let mut last_id = String::new();
    events
        .iter()
        .map(|fields| {
            if let Some(id) = &fields.id {
                last_id.clone_from(id);
            }
            let kind = match fields.event.as_deref() {
                None | Some("") => "message",
                Some(kind) => kind,
            };
            let data = fields.data.replace("\r\n", "\n").replace('\r', "\n");
            let decoded = DecodedEvent::new(kind, data, last_id.clone());
            match fields.retry {
                Some(ms) => decoded.with_retry(Duration::from_millis(ms.into())),
                None => decoded,
            }
        })
        .collect()
}

fn decode(chunks: &[&[u8]]) -> Vec<DecodedEvent> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(Bytes::copy_from_slice(chunk));
        while let Some(event) = decoder.next_event().unwrap() {
            events.push(event);
        }
    }
    decoder.finish();
    while let Some(event) = decoder.next_event().unwrap() {
        events.push(event);
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn encoded_events_decode_back_under_any_chunking(
        events in prop::collection::vec(fields(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let wire: Vec<u8> = events.iter().flat_map(|fields| encode(fields).to_vec()).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&wire[start..cut]);
            start = cut;
        }
        chunks.push(&wire[start..]);
        prop_assert_eq!(decode(&chunks), expected(&events));
    }
}
