//! Memory limits: over-long lines and over-large events are errors, at the
//! same point of the stream whatever the chunking, and never grow buffers.

use axum_sse::decode::{DecodeError, DecodedEvent, Decoder, EventStream};
use bytes::Bytes;
use futures_util::{stream, StreamExt};

type Item = Result<DecodedEvent, DecodeError>;

/// Feeds `chunks` to `decoder`, collecting every result until the first error.
fn run(mut decoder: Decoder, chunks: &[&[u8]]) -> Vec<Item> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(Bytes::copy_from_slice(chunk));
        loop {
            match decoder.next_event() {
                Ok(None) => break,
                Ok(Some(event)) => out.push(Ok(event)),
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    decoder.finish();
    while let Some(event) = decoder.next_event().unwrap() {
        out.push(Ok(event));
    }
    out
}

fn decoder() -> Decoder {
    Decoder::new().max_line_len(16).max_event_len(32)
}

/// Checks `input` gives `expected` under every split in two and byte by byte.
fn check(input: &[u8], expected: &[Item]) {
    assert_eq!(run(decoder(), &[input]), expected, "one chunk");
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(run(decoder(), &[a, b]), expected, "split at {split}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(decoder(), &bytes), expected, "byte by byte");
}

fn ok(data: &str) -> Item {
    Ok(DecodedEvent::new("message", data, ""))
}

const LINE: DecodeError = DecodeError::LineTooLong { limit: 16 };
const EVENT: DecodeError = DecodeError::EventTooLarge { limit: 32 };

#[test]
fn line_at_limit_is_accepted() {
    check(b"data: 0123456789\n\n", &[ok("0123456789")]); // 16 bytes
    check(b"data: 0123456789\r\n\r\n", &[ok("0123456789")]);
    check(b"\xEF\xBB\xBFdata: 0123456789\n\n", &[ok("0123456789")]); // BOM not counted
}

#[test]
fn line_over_limit_is_an_error() {
    check(b"data: 01234567890\n\n", &[Err(LINE)]);
    check(
        b"data: a\n\n: 0123456789abcdef\ndata: b\n\n",
        &[ok("a"), Err(LINE)],
    );
    check(b"data: a\n\nevent: 0123456789ab", &[ok("a"), Err(LINE)]);
    // An unterminated over-long last line is an error too (it was buffered).
    check(b"data: a\n\ndata: 0123456789abcdef", &[ok("a"), Err(LINE)]);
}

#[test]
fn event_at_limit_is_accepted() {
    // 3 lines of 10 bytes + 2 empty ones: 11 + 11 + 8 + 1 + 1 = 32.
    check(
        b"data: 0123456789\ndata: 0123456789\ndata: 0123456\ndata\ndata\n\n",
        &[ok("0123456789\n0123456789\n0123456\n\n")],
    );
}

#[test]
fn event_over_limit_is_an_error() {
    check(
        b"data: 1\n\ndata: 0123456789\ndata: 0123456789\ndata: 0123456789\n\ndata: 2\n\n",
        &[ok("1"), Err(EVENT)],
    );
    // Empty data lines count one byte each.
    let many_empty = "data\n".repeat(33);
    check(many_empty.as_bytes(), &[Err(EVENT)]);
}

#[test]
fn comments_and_other_fields_do_not_count_towards_the_event() {
    let input = format!("{}data: x\n\n", ": 0123456789abcd\nid: 1\n".repeat(20));
    let expected = [Ok(DecodedEvent::new("message", "x", "1"))];
    assert_eq!(run(decoder(), &[input.as_bytes()]), expected);
}

#[test]
fn ten_megabytes_without_newline() {
    let limit = 64 * 1024;
    let big = Bytes::from(vec![b'x'; 10 * 1024 * 1024]);
    let mut decoder = Decoder::new().max_line_len(limit);
    decoder.feed(big.clone());
    assert_eq!(
        decoder.next_event(),
        Err(DecodeError::LineTooLong { limit })
    );
    assert_eq!(decoder.next_event(), Ok(None));

    // Fed in pieces, the error comes as soon as the limit is passed.
    let mut decoder = Decoder::new().max_line_len(limit);
    let mut fed = 0;
    for piece in big.chunks(4096) {
        decoder.feed(Bytes::copy_from_slice(piece));
        fed += piece.len();
        match decoder.next_event() {
            Ok(None) => assert!(fed <= limit),
            other => {
                assert_eq!(other, Err(DecodeError::LineTooLong { limit }));
                break;
            }
        }
    }
    assert_eq!(fed, limit + 4096);
}

#[tokio::test]
async fn endless_line_ends_the_stream() {
    let endless = stream::repeat(Ok::<_, ()>(Bytes::from(vec![b'x'; 8192])));
    let mut events = EventStream::with_decoder(endless, Decoder::new().max_line_len(1 << 20));
    assert_eq!(
        events.next().await,
        Some(Err(DecodeError::LineTooLong { limit: 1 << 20 }))
    );
    assert_eq!(events.next().await, None);
}

#[tokio::test]
async fn endless_event_ends_the_stream() {
    let endless = stream::repeat(Ok::<_, ()>(Bytes::from("data: abcdefgh\n".repeat(100))));
    let mut events = EventStream::with_decoder(endless, Decoder::new().max_event_len(1 << 20));
    assert_eq!(
        events.next().await,
        Some(Err(DecodeError::EventTooLarge { limit: 1 << 20 }))
    );
    assert_eq!(events.next().await, None);
}

#[test]
fn zero_limits_do_not_panic() {
    let d = || Decoder::new().max_line_len(0).max_event_len(0);
    assert_eq!(run(d(), &[b"\n\n\r\n"]), []);
    assert_eq!(
        run(d(), &[b"\nx"]),
        [Err(DecodeError::LineTooLong { limit: 0 })]
    );
    let d = || Decoder::new().max_event_len(0);
    assert_eq!(
        run(d(), &[b"data\n\n"]),
        [Err(DecodeError::EventTooLarge { limit: 0 })]
    );
}
