//! An incremental decoder of server-sent events.
//!
//! Linear in the bytes: each byte is scanned once by `memchr`, whole lines inside a chunk are
//! never copied into a line buffer, and the frame buffers are reused, so decoding allocates
//! nothing per event once warm. Tolerates `\n`, `\r\n` and `\r` line ends, comments, multi-line
//! `data:` and chunk boundaries anywhere (inside a line, inside a `\r\n`, inside a UTF-8
//! character).

use std::borrow::Cow;

/// One decoded frame: its `event:` name (empty when absent), its `data:` lines joined by `\n`,
/// and the last `id:` seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseFrame<'a> {
    /// The `event:` field, or `""`.
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
    /// The last `id:` field seen on the stream, or `""`.
    pub id: &'a str,
}

/// An incremental SSE decoder: [`feed`](SseDecoder::feed) it bytes as they arrive.
///
/// ```
/// use appforge_llm::SseDecoder;
///
/// let mut decoder = SseDecoder::new();
/// let mut frames = Vec::new();
/// for chunk in [&b"event: ping\r\nda"[..], b"ta: {}\r", b"\n\r\n: comment\n"] {
///     decoder
///         .feed(chunk, |frame| {
///             frames.push((frame.event.to_owned(), frame.data.to_owned()));
///             Ok::<_, ()>(())
///         })
///         .unwrap();
/// }
/// assert_eq!(frames, [("ping".to_owned(), "{}".to_owned())]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct SseDecoder {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening the next one belongs to it.
    skip_lf: bool,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    id: Vec<u8>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `chunk`, calling `on_frame` for every frame it completes.
    ///
    /// # Errors
    ///
    /// Stops at, and returns, the first error `on_frame` returns; the decoder should then be
    /// dropped.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        mut on_frame: impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = chunk;
        if rest.is_empty() {
            return Ok(());
        }
        if self.skip_lf {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) {
            let mut next = pos + 1;
            if rest[pos] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.partial.is_empty() {
                self.line(&rest[..pos], &mut on_frame)?;
            } else {
                self.partial.extend_from_slice(&rest[..pos]);
                let line = std::mem::take(&mut self.partial);
                let result = self.line(&line, &mut on_frame);
                self.partial = line;
                self.partial.clear();
                result?;
            }
            rest = &rest[next..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Ends the stream. Returns `true` when an incomplete frame was pending (bytes after the
    /// last blank line); such a frame is discarded, as the SSE standard requires.
    pub fn finish(&mut self) -> bool {
        let pending = !self.partial.is_empty() || self.has_data || !self.event.is_empty();
        self.partial.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.skip_lf = false;
        pending
    }

    fn line<E>(
        &mut self,
        line: &[u8],
        on_frame: &mut impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if line.is_empty() {
            return self.dispatch(on_frame);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.id.clear();
                self.id.extend_from_slice(value);
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch<E>(
        &mut self,
        on_frame: &mut impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.has_data {
            self.event.clear();
            return Ok(());
        }
        let result = {
            let event = utf8(&self.event);
            let data = utf8(&self.data);
            let id = utf8(&self.id);
            on_frame(SseFrame {
                event: &event,
                data: &data,
                id: &id,
            })
        };
        self.event.clear();
        self.data.clear();
        self.has_data = false;
        result
    }
}

fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Frames = Vec<(String, String, String)>;

    fn decode_chunks(chunks: &[&[u8]]) -> (Frames, bool) {
        let mut decoder = SseDecoder::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            decoder
                .feed(chunk, |f| {
                    frames.push((f.event.to_owned(), f.data.to_owned(), f.id.to_owned()));
                    Ok::<_, ()>(())
                })
                .unwrap();
        }
        let pending = decoder.finish();
        (frames, pending)
    }

    fn decode(input: &[u8]) -> Frames {
        decode_chunks(&[input]).0
    }

    fn frame(event: &str, data: &str, id: &str) -> (String, String, String) {
        (event.to_owned(), data.to_owned(), id.to_owned())
    }

    #[test]
    fn joins_multi_line_data_with_newlines() {
        let frames = decode(b"event: x\ndata: a\ndata:b\ndata\n\n");
        assert_eq!(frames, [frame("x", "a\nb\n", "")]);
    }

    #[test]
    fn accepts_every_line_ending() {
        let frames = decode(b"data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n");
        assert_eq!(
            frames,
            [frame("", "1", ""), frame("", "2", ""), frame("", "3", "")]
        );
    }

    #[test]
    fn skips_comments_and_unknown_fields_and_frames_without_data() {
        let frames = decode(b": hi\nretry: 10\nevent: lost\n\nfoo: bar\ndata: x\n\n");
        assert_eq!(frames, [frame("", "x", "")]);
    }

    #[test]
    fn remembers_the_last_id() {
        let frames = decode(b"id: 7\ndata: a\n\ndata: b\n\n");
        assert_eq!(frames, [frame("", "a", "7"), frame("", "b", "7")]);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let (frames, pending) = decode_chunks(&[b"data: a\r", b"\n\r", b"\n"]);
        assert_eq!(frames, [frame("", "a", "")]);
        assert!(!pending);
    }

    #[test]
    fn utf8_split_between_chunks_survives() {
        let text = "data: h\u{e9}llo \u{1f600}\n\n".as_bytes();
        let (frames, _) = decode_chunks(&[&text[..8], &text[8..15], &text[15..]]);
        assert_eq!(frames, [frame("", "h\u{e9}llo \u{1f600}", "")]);
    }

    #[test]
    fn an_unterminated_frame_is_reported_and_discarded() {
        let (frames, pending) = decode_chunks(&[b"data: a\n\ndata: b\n"]);
        assert_eq!(frames, [frame("", "a", "")]);
        assert!(pending);
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use proptest::prelude::*;

    fn frames_of(chunks: &[&[u8]]) -> Vec<(String, String, String)> {
        let mut decoder = SseDecoder::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            decoder
                .feed(chunk, |f| {
                    frames.push((f.event.to_owned(), f.data.to_owned(), f.id.to_owned()));
                    Ok::<_, ()>(())
                })
                .unwrap();
        }
        frames
    }

    const SAMPLE: &str = "event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\
        event: content_block_delta\ndata: {\"text\":\"h\u{e9}\u{1f600}\"}\ndata:second\r\rid: 9\n\
        data\n\nevent: ping\rdata: {}\r\n\r\n";

    #[test]
    fn every_two_way_split_gives_the_same_frames() {
        let bytes = SAMPLE.as_bytes();
        let whole = frames_of(&[bytes]);
        assert_eq!(whole.len(), 4);
        for at in 0..=bytes.len() {
            assert_eq!(
                frames_of(&[&bytes[..at], &bytes[at..]]),
                whole,
                "split at {at}"
            );
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_frames() {
        let bytes = SAMPLE.as_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(frames_of(&chunks), frames_of(&[bytes]));
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z {}\":,\u{e9}\u{1f600}]{0,12}".prop_map(|v| format!("data: {v}")),
            "[a-z_]{0,8}".prop_map(|v| format!("event: {v}")),
            "[a-z ]{0,8}".prop_map(|v| format!(": {v}")),
            "[0-9]{0,3}".prop_map(|v| format!("id: {v}")),
            Just("data".to_owned()),
            Just(String::new()),
        ]
    }

    fn ending() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_frames(
            lines in proptest::collection::vec((line(), ending()), 0..40),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..12),
        ) {
            let text: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
            let bytes = text.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for at in points {
                chunks.push(&bytes[from..at]);
                from = at;
            }
            chunks.push(&bytes[from..]);
            prop_assert_eq!(frames_of(&chunks), frames_of(&[bytes]));
        }
    }
}
