//! Property tests: any bytes under any chunking decode like the single
//! chunk, which decodes like a naive transcription of the spec (decode the
//! whole stream as text, then split lines), and nothing panics.

use std::time::Duration;

use axum_sse::decode::{DecodeError, DecodedEvent, Decoder};
use bytes::Bytes;
use proptest::prelude::*;

type Outcome = (
    Vec<Result<DecodedEvent, DecodeError>>,
    Option<Duration>,
    String,
);

/// Decodes `input` cut at `cuts` (sorted positions).
fn decode(decoder: Decoder, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = decoder;
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        decoder.feed(Bytes::copy_from_slice(&input[start..end]));
        start = end;
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

/// The spec's algorithm, written as plainly as possible on decoded text.
fn reference(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                lines.push(std::mem::take(&mut line));
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    // `line` is incomplete at the end of the stream: discarded.
    let (mut data, mut event_type, mut id) = (String::new(), String::new(), String::new());
    // The last event ID string: `id` as of the latest empty line.
    let mut last_id = String::new();
    let (mut retry, mut block_retry) = (None, None);
    let mut events = Vec::new();
    for line in lines {
        if line.is_empty() {
            last_id.clone_from(&id);
            let retry_of_block = block_retry.take();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            data.pop();
            let mut event = DecodedEvent::new(
                if event_type.is_empty() {
                    "message"
                } else {
                    &event_type
                },
                std::mem::take(&mut data),
                id.clone(),
            );
            if let Some(r) = retry_of_block {
                event = event.with_retry(r);
            }
            events.push(Ok(event));
            event_type.clear();
        } else if line.starts_with(':') {
        } else {
            let (name, value) = match line.find(':') {
                Some(i) => {
                    let value = &line[i + 1..];
                    (&line[..i], value.strip_prefix(' ').unwrap_or(value))
                }
                None => (&line[..], ""),
            };
            match name {
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "event" => event_type = value.to_owned(),
                "id" if !value.contains('\0') => id = value.to_owned(),
                "retry" if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) => {
                    let ms = value.parse::<u64>().unwrap_or(u64::MAX);
                    retry = Some(Duration::from_millis(ms));
                    block_retry = retry;
                }
                _ => {}
            }
        }
    }
    (events, retry, last_id)
}

/// Bytes rich in the stream's syntax.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"data",
        b"event",
        b"id",
        b"retry",
        b":",
        b": ",
        b" ",
        b"  ",
        b"\n",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"a",
        b"xyz",
        b"0",
        b"42",
        b"99999999999999999999",
        b"\0",
        b"\xEF\xBB\xBF",
        b"\xEF",
        b"\xBB",
        b"\xBF",
        b"\xFF",
        b"\xC3\xA9",
        b"\xE2\x82",
        b"\xF0\x9F\x8E\x89",
        b"data: x\n",
        b"\n\n",
        b"id: 1\n",
        b"retry: 10\n",
    ];
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(tokens), 0..48).prop_map(|t| t.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..128),
    ]
}

fn cuts(len: usize, picks: &[prop::sample::Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = picks.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn matches_reference(input in sse_bytes()) {
        prop_assert_eq!(decode(Decoder::new(), &input, &[]), reference(&input));
    }

    #[test]
    fn chunking_does_not_matter(
        input in sse_bytes(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let cuts = cuts(input.len(), &picks);
        prop_assert_eq!(decode(Decoder::new(), &input, &cuts), decode(Decoder::new(), &input, &[]));
        let bytes: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(decode(Decoder::new(), &input, &bytes), decode(Decoder::new(), &input, &[]));
    }

    #[test]
    fn chunking_does_not_matter_with_small_limits(
        input in sse_bytes(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        line in 0usize..24,
        event in 0usize..48,
    ) {
        let decoder = || Decoder::new().max_line_len(line).max_event_len(event);
        let cuts = cuts(input.len(), &picks);
        let whole = decode(decoder(), &input, &[]);
        prop_assert_eq!(decode(decoder(), &input, &cuts), whole.clone());
        let bytes: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(decode(decoder(), &input, &bytes), whole);
    }
}
