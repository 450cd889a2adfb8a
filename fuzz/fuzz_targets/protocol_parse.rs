//! Fuzzes the generation protocol parser: arbitrary text, split into arbitrary chunks.
//!
//! `cargo +nightly fuzz run protocol_parse`
//!
//! The first byte chooses a chunk size; the rest is the model's text. Checked: no panic,
//! chunking never changes the result or the events, every kept path passes validation, the
//! deltas of a file add up to its content, and `complete_len` is a char boundary of the input.
#![no_main]

use appforge_llm::protocol::{ProtocolEvent, ProtocolParser, parse, validate_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let whole = parse(text);

    let size = usize::from(size % 64) + 1;
    let mut parser = ProtocolParser::new();
    let mut current = String::new();
    let mut streamed: Vec<(String, String)> = Vec::new();
    let mut on_event = |event: ProtocolEvent<'_>| match event {
        ProtocolEvent::FileStarted { .. } => current.clear(),
        ProtocolEvent::FileDelta { text, .. } => current.push_str(text),
        ProtocolEvent::FileCompleted { path, bytes } => {
            assert_eq!(bytes, current.len());
            streamed.push((path.to_owned(), std::mem::take(&mut current)));
        }
        _ => {}
    };
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        parser.feed(&text[start..end], &mut on_event);
        start = end;
    }
    let chunked = parser.finish(&mut on_event);

    assert_eq!(chunked, whole);
    assert!(whole.complete_len <= text.len() && text.is_char_boundary(whole.complete_len));
    for file in &whole.files {
        assert_eq!(validate_path(&file.path).as_deref(), Ok(file.path.as_str()));
        // A duplicate keeps its later content: the last streamed version of the path.
        let last = streamed.iter().rev().find(|(p, _)| *p == file.path).map(|(_, c)| c);
        assert_eq!(last, Some(&file.content));
    }
});
