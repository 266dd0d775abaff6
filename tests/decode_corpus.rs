//! Runs the fuzz target's check (`fuzz/fuzz_targets/decode.rs`) on the
//! stable toolchain over every file of `fuzz/corpus/decode`, under every
//! split of the input rather than only the one its first two bytes pick.

use std::path::Path;

use axum_sse::decode::{DecodeError, DecodedEvent, Decoder};
use bytes::Bytes;

type Outcome = (
    Vec<Result<DecodedEvent, DecodeError>>,
    Option<std::time::Duration>,
    String,
);

/// The same decoding as the fuzz target: small limits, drain after each chunk.
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

#[test]
fn fuzz_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut files = 0;
    let mut outcomes = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        files += 1;
        // The first two bytes pick the fuzz target's split; all splits run here.
        let input = data.get(2..).unwrap_or_default();
        let whole = decode(&[input]);
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(
                decode(&[a, b]),
                whole,
                "{}: split at {split}",
                path.display()
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode(&bytes), whole, "{}: byte by byte", path.display());
        outcomes += whole.0.len();
    }
    assert!(
        files >= 12,
        "only {files} corpus files in {}",
        dir.display()
    );
    assert!(outcomes > 0);
}
