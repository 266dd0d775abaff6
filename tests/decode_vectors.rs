//! Test vectors for the event stream decoder: every rule of the WHATWG
//! "interpreting an event stream" algorithm, each decoded as one chunk,
//! split in two at every byte, split in three at every pair of bytes (short
//! inputs), one byte per chunk (drained after each chunk, or all queued
//! first), and through `EventStream`; all must agree with the expectation.

use std::time::Duration;

use axum_sse::decode::{DecodedEvent, Decoder, EventStream};
use bytes::Bytes;
use futures_util::{stream, StreamExt};

struct Case {
    name: &'static str,
    input: Vec<u8>,
    /// (type, data, last event id) of each dispatched event.
    events: Vec<(String, String, String)>,
    /// Final reconnection time, in milliseconds.
    retry: Option<u64>,
    /// Final last event ID buffer.
    last_id: String,
}

fn case(
    name: &'static str,
    input: impl AsRef<[u8]>,
    events: &[(&str, &str, &str)],
    retry: Option<u64>,
    last_id: &str,
) -> Case {
    Case {
        name,
        input: input.as_ref().to_vec(),
        events: events
            .iter()
            .map(|&(t, d, i)| (t.to_owned(), d.to_owned(), i.to_owned()))
            .collect(),
        retry,
        last_id: last_id.to_owned(),
    }
}

const M: &str = "message";

fn cases() -> Vec<Case> {
    let long = "x".repeat(2000);
    let long_input = format!("data: {long}\n\n");
    let hundred_nines = format!("retry: {}\n", "9".repeat(100));
    vec![
        // Empty input, BOM.
        case("empty", b"", &[], None, ""),
        case("only_bom", b"\xEF\xBB\xBF", &[], None, ""),
        case("only_partial_bom", b"\xEF\xBB", &[], None, ""),
        case("bom_then_event", b"\xEF\xBB\xBFdata: a\n\n", &[(M, "a", "")], None, ""),
        case("bom_then_crlf", b"\xEF\xBB\xBF\r\ndata: a\r\n\r\n", &[(M, "a", "")], None, ""),
        case("two_boms_second_is_part_of_name", b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n", &[], None, ""),
        case("bom_after_first_line_not_stripped", b"data: a\n\n\xEF\xBB\xBFdata: b\n\n", &[(M, "a", "")], None, ""),
        case("bom_in_value_kept", b"\xEF\xBB\xBFdata: \xEF\xBB\xBFx\n\n", &[(M, "\u{FEFF}x", "")], None, ""),
        case("partial_bom_is_invalid_utf8_in_name", b"\xEF\xBBdata: a\n\n", &[], None, ""),
        case("partial_bom_then_line_end", b"\xEF\n\ndata:a\n\n", &[(M, "a", "")], None, ""),
        case("bom_prefix_then_comment", b"\xEF:x\ndata\n\n", &[(M, "", "")], None, ""),
        // Comments and blank lines.
        case("only_comments", b": hello\n:world\n\n", &[], None, ""),
        case("comment_only_colon", b":\n\n", &[], None, ""),
        case("comment_colon_space", b": \n", &[], None, ""),
        case("comment_between_data", b"data: a\n: comment\ndata: b\n\n", &[(M, "a\nb", "")], None, ""),
        case("comment_does_not_dispatch", b"data: a\n: x\n", &[], None, ""),
        case("comment_looking_like_field", b":data: a\n\n", &[], None, ""),
        case("blank_lines_only", b"\n\n\r\n\r\r", &[], None, ""),
        // Line endings.
        case("lf", b"data: hello\n\n", &[(M, "hello", "")], None, ""),
        case("crlf", b"data: hello\r\n\r\n", &[(M, "hello", "")], None, ""),
        case("cr_only_stream", b"data: hello\r\rdata: x\r\r", &[(M, "hello", ""), (M, "x", "")], None, ""),
        case("mixed_endings", b"data: a\r\ndata: b\rdata: c\n\r\n", &[(M, "a\nb\nc", "")], None, ""),
        case("lf_cr_is_two_endings", b"data: a\n\rdata: b\n\n", &[(M, "a", ""), (M, "b", "")], None, ""),
        case("cr_cr_lf", b"data: a\r\r\n", &[(M, "a", "")], None, ""),
        case("crlf_twice", b"data: a\r\n\r\ndata: b\r\n\r\n", &[(M, "a", ""), (M, "b", "")], None, ""),
        case("cr_at_start", b"\rdata: a\r\r", &[(M, "a", "")], None, ""),
        case("eof_right_after_cr_dispatches", b"data: a\r\r", &[(M, "a", "")], None, ""),
        case("crlf_then_cr", b"data: a\r\n\rdata: b\r\n\n", &[(M, "a", ""), (M, "b", "")], None, ""),
        // data.
        case("multiple_data_lines", b"data: a\ndata: b\ndata: c\n\n", &[(M, "a\nb\nc", "")], None, ""),
        case("data_no_space", b"data:a\n\n", &[(M, "a", "")], None, ""),
        case("data_two_spaces_keeps_one", b"data:  a\n\n", &[(M, " a", "")], None, ""),
        case("data_trailing_space_kept", b"data: a \n\n", &[(M, "a ", "")], None, ""),
        case("data_tab_not_stripped", b"data:\tx\n\n", &[(M, "\tx", "")], None, ""),
        case("data_colon_empty", b"data:\n\n", &[(M, "", "")], None, ""),
        case("data_colon_space_empty", b"data: \n\n", &[(M, "", "")], None, ""),
        case("data_without_colon_dispatches_empty", b"data\n\n", &[(M, "", "")], None, ""),
        case("two_empty_data_lines_is_newline", b"data\ndata\n\n", &[(M, "\n", "")], None, ""),
        case("empty_data_then_value", b"data:\ndata: x\n\n", &[(M, "\nx", "")], None, ""),
        case("data_value_with_colons", b"data: a:b: c\n\n", &[(M, "a:b: c", "")], None, ""),
        case("data_nul_kept", b"data: a\x00b\n\n", &[(M, "a\0b", "")], None, ""),
        case("many_events", b"data: 1\n\ndata: 2\n\ndata: 3\n\n", &[(M, "1", ""), (M, "2", ""), (M, "3", "")], None, ""),
        case("long_line", long_input.as_bytes(), &[(M, &long, "")], None, ""),
        // Field names.
        case("field_name_case_sensitive", b"Data: x\n\nDATA: y\n\n", &[], None, ""),
        case("field_name_trailing_space", b"data : x\n\n", &[], None, ""),
        case("field_name_leading_space", b" data: x\n\n", &[], None, ""),
        case("unknown_fields_ignored", b"foo: bar\ndata: x\nbaz\n\n", &[(M, "x", "")], None, ""),
        case("invalid_utf8_field_name", b"d\xFFata: x\n\n", &[], None, ""),
        // event.
        case("event_type", b"event: update\ndata: x\n\n", &[("update", "x", "")], None, ""),
        case("event_type_reset_after_dispatch", b"event: a\ndata: 1\n\ndata: 2\n\n", &[("a", "1", ""), (M, "2", "")], None, ""),
        case("event_empty_is_message", b"event:\ndata: x\n\n", &[(M, "x", "")], None, ""),
        case("event_no_colon_is_message", b"event\ndata: x\n\n", &[(M, "x", "")], None, ""),
        case("event_without_data_not_dispatched_and_reset", b"event: a\n\ndata: x\n\n", &[(M, "x", "")], None, ""),
        case("event_last_wins", b"event: a\nevent: b\ndata: x\n\n", &[("b", "x", "")], None, ""),
        case("event_after_data", b"data: x\nevent: late\n\n", &[("late", "x", "")], None, ""),
        case("event_two_spaces", b"event:  a\ndata\n\n", &[(" a", "", "")], None, ""),
        case("event_with_colons", b"event:a:b\ndata\n\n", &[("a:b", "", "")], None, ""),
        case("event_invalid_utf8", b"event: \xC0\xAF\ndata\n\n", &[("\u{FFFD}\u{FFFD}", "", "")], None, ""),
        case("event_type_of_unterminated_block_reset_at_eof", b"event: a\ndata: 1\n", &[], None, ""),
        // id.
        case("id_set", b"id: 1\ndata: x\n\n", &[(M, "x", "1")], None, "1"),
        case("id_persists", b"id: 1\ndata: a\n\ndata: b\n\n", &[(M, "a", "1"), (M, "b", "1")], None, "1"),
        case("id_no_colon_resets", b"id: 1\ndata: a\n\nid\ndata: b\n\n", &[(M, "a", "1"), (M, "b", "")], None, ""),
        case("id_colon_empty_resets", b"id: 1\ndata: a\n\nid:\ndata: b\n\n", &[(M, "a", "1"), (M, "b", "")], None, ""),
        case("id_with_nul_ignored", b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", &[(M, "a", "1"), (M, "b", "1")], None, "1"),
        case("id_only_nul_ignored", b"id: \x00\ndata: a\n\n", &[(M, "a", "")], None, ""),
        case("id_only_block_sets_id_without_dispatch", b"id: 5\n\ndata: a\n\n", &[(M, "a", "5")], None, "5"),
        case("id_after_data_applies", b"data: a\nid: 9\n\n", &[(M, "a", "9")], None, "9"),
        case("id_last_wins", b"id: 1\nid: 2\ndata\n\n", &[(M, "", "2")], None, "2"),
        case("id_of_unterminated_block_not_kept", b"data: a\n\nid: 7\ndata: b\n", &[(M, "a", "")], None, ""),
        case("id_of_unterminated_block_after_id", b"id: 1\ndata: a\n\nid: 2\ndata: b", &[(M, "a", "1")], None, "1"),
        case("id_unterminated_line_not_applied", b"id: 7", &[], None, ""),
        case("id_unicode", "id: é€\ndata\n\n", &[(M, "", "é€")], None, "é€"),
        case("id_two_spaces", b"id:  x\n\n", &[], None, " x"),
        case("id_invalid_utf8", b"id: \xFF\n\n", &[], None, "\u{FFFD}"),
        // retry.
        case("retry_space", b"retry: 1000\n", &[], Some(1000), ""),
        case("retry_no_space", b"retry:1000\n\n", &[], Some(1000), ""),
        case("retry_invalid_suffix_ignored", b"retry:10a\n", &[], None, ""),
        case("retry_empty_ignored", b"retry:\nretry\nretry: \n", &[], None, ""),
        case("retry_invalid_keeps_previous", b"retry: 100\nretry: 1e3\nretry: -1\nretry:  5\nretry: +5\nretry: 5 \n", &[], Some(100), ""),
        case("retry_last_valid_wins", b"retry: 1\nretry: 2\n", &[], Some(2), ""),
        case("retry_zero", b"retry: 0\n", &[], Some(0), ""),
        case("retry_leading_zeros", b"retry: 007\n", &[], Some(7), ""),
        case("retry_u64_max", b"retry: 18446744073709551615\n", &[], Some(u64::MAX), ""),
        case("retry_overflow_saturates", b"retry: 18446744073709551616\n", &[], Some(u64::MAX), ""),
        case("retry_hundred_digits_saturates", hundred_nines.as_bytes(), &[], Some(u64::MAX), ""),
        case("retry_non_ascii_digits_ignored", "retry: ١٢٣\n", &[], None, ""),
        case("retry_unterminated_ignored", b"retry: 5", &[], None, ""),
        case("retry_with_event", b"retry: 5\ndata: a\n\n", &[(M, "a", "")], Some(5), ""),
        // End of stream.
        case("unterminated_block_not_dispatched", b"data: a\n", &[], None, ""),
        case("unterminated_line", b"data: a", &[], None, ""),
        case("unterminated_after_event", b"data: a\n\ndata: b\n", &[(M, "a", "")], None, ""),
        case("unterminated_after_cr_line", b"data: a\r", &[], None, ""),
        // Unicode and invalid UTF-8.
        case("unicode_data", "data: héllo wörld 🎉 日本\n\n", &[(M, "héllo wörld 🎉 日本", "")], None, ""),
        case("invalid_utf8_replaced", b"data: a\xFFb\n\n", &[(M, "a\u{FFFD}b", "")], None, ""),
        case("truncated_multibyte_one_replacement", b"data: \xE2\x82\n\n", &[(M, "\u{FFFD}", "")], None, ""),
        case("surrogate_bytes_replaced", b"data: \xED\xA0\x80\n\n", &[(M, "\u{FFFD}\u{FFFD}\u{FFFD}", "")], None, ""),
        case("overlong_encoding_replaced", b"data: \xC0\x80\n\n", &[(M, "\u{FFFD}\u{FFFD}", "")], None, ""),
        case("truncated_multibyte_across_data_lines", b"data: \xE2\x82\ndata: \xAC\n\n", &[(M, "\u{FFFD}\n\u{FFFD}", "")], None, ""),
        // Examples from the specification.
        case(
            "spec_example_stock",
            b"data: YHOO\ndata: +2\ndata: 10\n\n",
            &[(M, "YHOO\n+2\n10", "")],
            None,
            "",
        ),
        case(
            "spec_example_ids",
            b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
            &[(M, "first event", "1"), (M, "second event", ""), (M, " third event", "")],
            None,
            "",
        ),
        case(
            "spec_example_empty_data",
            b"data\n\ndata\ndata\n\ndata:",
            &[(M, "", ""), (M, "\n", "")],
            None,
            "",
        ),
        case("spec_example_space", b"data:test\n\ndata: test\n\n", &[(M, "test", ""), (M, "test", "")], None, ""),
        case(
            "all_fields",
            b"event: e\nid: i\nretry: 3\ndata: d\n\n",
            &[("e", "d", "i")],
            Some(3),
            "i",
        ),
    ]
}

type Outcome = (Vec<DecodedEvent>, Option<Duration>, String);

fn drain(decoder: &mut Decoder, out: &mut Vec<DecodedEvent>) {
    while let Some(event) = decoder.next_event().expect("no limit error") {
        out.push(event);
    }
}

/// Feeds `chunks`, draining after each one (or only at the end).
fn decode(chunks: &[&[u8]], drain_each: bool) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(Bytes::copy_from_slice(chunk));
        if drain_each {
            drain(&mut decoder, &mut events);
        }
    }
    decoder.finish();
    drain(&mut decoder, &mut events);
    (events, decoder.retry(), decoder.last_event_id().to_owned())
}

fn decode_stream(rt: &tokio::runtime::Runtime, chunks: Vec<Bytes>) -> Outcome {
    rt.block_on(async {
        let mut events = EventStream::new(stream::iter(chunks.into_iter().map(Ok::<_, ()>)));
        let mut out = Vec::new();
        while let Some(event) = events.next().await {
            out.push(event.expect("no error"));
        }
        (out, events.retry(), events.last_event_id().to_owned())
    })
}

#[test]
fn vectors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "duplicate case {}", case.name);
        let input = &case.input[..];
        let whole = decode(&[input], true);
        let got: Vec<_> = whole
            .0
            .iter()
            .map(|e| (e.event.clone(), e.data.clone(), e.last_event_id.clone()))
            .collect();
        assert_eq!(got, case.events, "{}: events", case.name);
        assert_eq!(
            whole.1,
            case.retry.map(Duration::from_millis),
            "{}: retry",
            case.name
        );
        assert_eq!(whole.2, case.last_id, "{}: last event id", case.name);

        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(
                decode(&[a, b], true),
                whole,
                "{}: split at {split}",
                case.name
            );
        }
        if input.len() <= 48 {
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let chunks = [&input[..i], &input[i..j], &input[j..]];
                    assert_eq!(
                        decode(&chunks, true),
                        whole,
                        "{}: split at {i}, {j}",
                        case.name
                    );
                }
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode(&bytes, true), whole, "{}: byte by byte", case.name);
        assert_eq!(
            decode(&bytes, false),
            whole,
            "{}: byte by byte, queued",
            case.name
        );

        let chunks = bytes.iter().map(|b| Bytes::copy_from_slice(b)).collect();
        assert_eq!(
            decode_stream(&rt, chunks),
            whole,
            "{}: stream, byte by byte",
            case.name
        );
        let chunks = vec![Bytes::copy_from_slice(input)];
        assert_eq!(
            decode_stream(&rt, chunks),
            whole,
            "{}: stream, one chunk",
            case.name
        );
    }
}

/// Every rule, with the retry of each event.
#[test]
fn retry_is_per_block() {
    let (events, retry, _) = decode(
        &[b"retry: 5\ndata: a\n\ndata: b\n\nretry: 7\n\ndata: c\nretry: x\n\n"],
        true,
    );
    let retries: Vec<_> = events.iter().map(|e| e.retry).collect();
    assert_eq!(retries, [Some(Duration::from_millis(5)), None, None]);
    assert_eq!(retry, Some(Duration::from_millis(7)));
}

/// Decoding the same input twice with one decoder: the second stream starts
/// fresh (its BOM is skipped, nothing left over), keeping the last event ID.
#[test]
fn finish_starts_a_new_stream() {
    for case in cases() {
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        for _ in 0..2 {
            decoder.feed(case.input.clone());
            decoder.finish();
        }
        drain(&mut decoder, &mut events);
        let (once, _, last_id) = decode(&[&case.input], true);
        assert_eq!(events.len(), 2 * once.len(), "{}", case.name);
        assert_eq!(decoder.last_event_id(), last_id, "{}", case.name);
        // Second-round events carry the first round's ID until an id field.
        if last_id.is_empty() {
            assert_eq!(events[once.len()..], once[..], "{}", case.name);
        }
    }
}
