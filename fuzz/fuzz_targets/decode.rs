//! Fuzzes the event stream decoder: the first two bytes pick where the rest
//! is split in two; the split input, the whole input and the input byte by
//! byte must decode alike (events, errors and final state), with small
//! limits so that limit errors are exercised too. The same check runs on the
//! stable toolchain over `corpus/decode` in `tests/decode_corpus.rs`.
#![no_main]

use axum_sse::decode::{DecodeError, DecodedEvent, Decoder};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

type Outcome = (
    Vec<Result<DecodedEvent, DecodeError>>,
    Option<std::time::Duration>,
    String,
);

fn decode(chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new().max_line_len(64).max_event_len(256);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(Bytes::copy_from_slice(chunk));
        loop {
            match decoder.next_event() {
                Ok(None) => break,
                result => out.push(result.map(Option::unwrap)),
            }
        }
    }
    decoder.finish();
    while let Some(event) = decoder.next_event().unwrap() {
        out.push(Ok(event));
    }
    (out, decoder.retry(), decoder.last_event_id().to_owned())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let input = &data[2..];
    let split = usize::from(u16::from_le_bytes([data[0], data[1]])) % (input.len() + 1);
    let whole = decode(&[input]);
    let (a, b) = input.split_at(split);
    assert_eq!(decode(&[a, b]), whole);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(decode(&bytes), whole);
});
