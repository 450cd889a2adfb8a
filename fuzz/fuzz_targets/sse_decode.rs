//! Fuzzes the SSE decoder and the event parser: any bytes, split anywhere, must decode to the
//! same frames as when fed whole, and parsing and accumulating them must never panic.
//!
//! ```text
//! cargo +nightly fuzz run sse_decode
//! ```
#![no_main]

use appforge_llm::{Accumulator, SseDecoder, StreamEvent};
use libfuzzer_sys::fuzz_target;

type Frame = (String, Vec<u8>, String);

fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let _ = decoder.feed(chunk, |frame| {
            out.push((
                frame.event().to_owned(),
                frame.data_bytes().to_vec(),
                frame.id().to_owned(),
            ));
            Ok::<_, ()>(())
        });
    }
    decoder.finish();
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, bytes)) = input.split_first() else {
        return;
    };
    let whole = frames(&[bytes]);

    // Split into pieces whose sizes cycle through 1 + seed's bits: boundaries land everywhere.
    let mut chunks = Vec::new();
    let mut rest = bytes;
    let mut step = usize::from(seed % 7) + 1;
    while !rest.is_empty() {
        let at = step.min(rest.len());
        let (head, tail) = rest.split_at(at);
        chunks.push(head);
        rest = tail;
        step = step % 13 + 1;
    }
    assert_eq!(frames(&chunks), whole);

    let mut acc = Accumulator::new();
    let mut decoder = SseDecoder::new();
    let _ = decoder.feed(bytes, |frame| {
        if let Ok(event) = StreamEvent::from_frame(&frame) {
            let _ = acc.push(&event);
        }
        Ok::<_, ()>(())
    });
    let _ = acc.partial();
    let _ = acc.finish();
});
