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
///
/// The data stays bytes until asked for as text: a consumer that parses JSON from bytes skips
/// a separate UTF-8 pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseFrame<'a> {
    event: &'a str,
    data: &'a [u8],
    id: &'a str,
}

impl<'a> SseFrame<'a> {
    /// The `event:` field, or `""`.
    pub fn event(&self) -> &'a str {
        self.event
    }

    /// The `data:` lines joined with `\n`, as text (invalid UTF-8 replaced by U+FFFD).
    pub fn data(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.data)
    }

    /// The `data:` lines joined with `\n`, as bytes.
    pub fn data_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The last `id:` field seen on the stream, or `""`.
    pub fn id(&self) -> &'a str {
        self.id
    }
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
///             frames.push((frame.event().to_owned(), frame.data().into_owned()));
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
    data: Data,
    id: Vec<u8>,
}

/// Where a line is: inside the current chunk, or joined from pieces of several.
#[derive(Debug, Clone, Copy)]
enum Line<'a> {
    InChunk(usize, usize),
    Joined(&'a [u8]),
}

/// The data of the frame being read. A single `data:` line inside the current chunk is only
/// remembered by position; it is copied when the chunk ends before the frame does, or when
/// a second line joins it.
#[derive(Debug, Default, Clone)]
enum Data {
    #[default]
    None,
    InChunk(usize, usize),
    Owned(Vec<u8>),
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
        let mut at = 0;
        if chunk.is_empty() {
            return Ok(());
        }
        if self.skip_lf {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                at = 1;
            }
        }
        let result = self.lines(chunk, at, &mut on_frame);
        // The chunk is going away: keep what the pending frame still needs.
        if let Data::InChunk(start, end) = self.data {
            self.data = Data::Owned(chunk[start..end].to_vec());
        }
        result
    }

    fn lines<E>(
        &mut self,
        chunk: &[u8],
        mut at: usize,
        on_frame: &mut impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(found) = memchr::memchr2(b'\n', b'\r', &chunk[at..]) {
            let pos = at + found;
            let mut next = pos + 1;
            if chunk[pos] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.partial.is_empty() {
                self.line(chunk, Line::InChunk(at, pos), on_frame)?;
            } else {
                self.partial.extend_from_slice(&chunk[at..pos]);
                let line = std::mem::take(&mut self.partial);
                let result = self.line(chunk, Line::Joined(&line), on_frame);
                self.partial = line;
                self.partial.clear();
                result?;
            }
            at = next;
        }
        self.partial.extend_from_slice(&chunk[at..]);
        Ok(())
    }

    /// Bytes held for the frame being read (its unfinished line and its data so far): a
    /// caller can bound it against a peer that never ends a line or a frame.
    pub fn pending_bytes(&self) -> usize {
        let data = match &self.data {
            Data::Owned(owned) => owned.len(),
            Data::None | Data::InChunk(..) => 0,
        };
        self.partial.len() + data
    }

    /// Ends the stream, handing `on_frame` the last frame when the input stopped after its
    /// `data:` without the blank line that ends a frame (or without even the line end of its
    /// last line). The SSE standard discards such a frame; model APIs' own SDKs deliver it, so
    /// the caller decides whether it is whole (for JSON data: whether it parses).
    ///
    /// Returns `true` when bytes were pending that made no frame (an `event:` or `id:` line
    /// with no `data:` after it).
    ///
    /// ```
    /// use appforge_llm::SseDecoder;
    ///
    /// let mut decoder = SseDecoder::new();
    /// let mut frames = Vec::new();
    /// let mut keep = |frame: appforge_llm::SseFrame<'_>| {
    ///     frames.push(frame.data().into_owned());
    ///     Ok::<_, ()>(())
    /// };
    /// decoder.feed(b"data: 1\n\nevent: stop\ndata: {}", &mut keep).unwrap();
    /// assert_eq!(decoder.finish_with(&mut keep), Ok(false));
    /// assert_eq!(frames, ["1", "{}"]);
    /// ```
    ///
    /// # Errors
    ///
    /// The error `on_frame` returns.
    pub fn finish_with<E>(
        &mut self,
        mut on_frame: impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let line = std::mem::take(&mut self.partial);
        let mut result = if line.is_empty() {
            Ok(())
        } else {
            // The bytes of the last line are all there: its line end is what is missing.
            self.line(&[], Line::Joined(&line), &mut on_frame)
        };
        let mut orphan = false;
        if result.is_ok() {
            orphan = matches!(self.data, Data::None) && !self.event.is_empty();
            // After `feed`, pending data is owned: no chunk is needed to dispatch it.
            result = self.dispatch(&[], &mut on_frame);
        }
        self.finish();
        result.map(|()| orphan)
    }

    /// Ends the stream. Returns `true` when an incomplete frame was pending (bytes after the
    /// last blank line); such a frame is discarded, as the SSE standard requires.
    pub fn finish(&mut self) -> bool {
        let pending =
            !self.partial.is_empty() || !matches!(self.data, Data::None) || !self.event.is_empty();
        self.partial.clear();
        self.data = Data::None;
        self.event.clear();
        self.skip_lf = false;
        pending
    }

    /// Handles one line, found in `chunk` or joined from several chunks.
    fn line<E>(
        &mut self,
        chunk: &[u8],
        line: Line<'_>,
        on_frame: &mut impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let (bytes, offset) = match line {
            Line::InChunk(start, end) => (&chunk[start..end], Some(start)),
            Line::Joined(bytes) => (bytes, None),
        };
        if bytes.is_empty() {
            return self.dispatch(chunk, on_frame);
        }
        if bytes[0] == b':' {
            return Ok(());
        }
        let (field, value_at) = match memchr::memchr(b':', bytes) {
            Some(colon) => (
                &bytes[..colon],
                colon + 1 + usize::from(bytes.get(colon + 1) == Some(&b' ')),
            ),
            None => (bytes, bytes.len()),
        };
        let value = &bytes[value_at..];
        match field {
            b"data" => {
                self.data = match (std::mem::take(&mut self.data), offset) {
                    (Data::None, Some(start)) => {
                        Data::InChunk(start + value_at, start + bytes.len())
                    }
                    (Data::None, None) => Data::Owned(value.to_vec()),
                    (Data::InChunk(s, e), _) => {
                        let mut owned = Vec::with_capacity(e - s + 1 + value.len());
                        owned.extend_from_slice(&chunk[s..e]);
                        owned.push(b'\n');
                        owned.extend_from_slice(value);
                        Data::Owned(owned)
                    }
                    (Data::Owned(mut owned), _) => {
                        owned.push(b'\n');
                        owned.extend_from_slice(value);
                        Data::Owned(owned)
                    }
                };
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
        chunk: &[u8],
        on_frame: &mut impl FnMut(SseFrame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let data = std::mem::take(&mut self.data);
        let bytes: &[u8] = match &data {
            Data::None => {
                self.event.clear();
                return Ok(());
            }
            Data::InChunk(s, e) => &chunk[*s..*e],
            Data::Owned(owned) => owned,
        };
        let result = {
            let event = utf8(&self.event);
            let id = if self.id.is_empty() {
                Cow::Borrowed("")
            } else {
                utf8(&self.id)
            };
            on_frame(SseFrame {
                event: &event,
                data: bytes,
                id: &id,
            })
        };
        self.event.clear();
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
                    frames.push((
                        f.event().to_owned(),
                        f.data().into_owned(),
                        f.id().to_owned(),
                    ));
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

    fn finish_chunks(chunks: &[&[u8]]) -> (Frames, bool) {
        let mut decoder = SseDecoder::new();
        let mut frames = Vec::new();
        let mut keep = |f: SseFrame<'_>| {
            frames.push((
                f.event().to_owned(),
                f.data().into_owned(),
                f.id().to_owned(),
            ));
            Ok::<_, ()>(())
        };
        for chunk in chunks {
            decoder.feed(chunk, &mut keep).unwrap();
        }
        let orphan = decoder.finish_with(&mut keep).unwrap();
        (frames, orphan)
    }

    #[test]
    fn finish_with_hands_over_a_last_frame_without_its_blank_line() {
        let whole = [frame("", "a", ""), frame("stop", "{\"x\":1}", "")];
        for input in [
            &b"data: a\n\nevent: stop\ndata: {\"x\":1}\n"[..],
            b"data: a\n\nevent: stop\ndata: {\"x\":1}",
            b"data: a\n\nevent: stop\ndata: {\"x\":1}\r",
            b"data: a\r\n\r\nevent: stop\r\ndata: {\"x\":1}\r\n",
        ] {
            for at in 0..=input.len() {
                let (frames, orphan) = finish_chunks(&[&input[..at], &input[at..]]);
                assert_eq!(
                    frames,
                    whole,
                    "{:?} split at {at}",
                    String::from_utf8_lossy(input)
                );
                assert!(!orphan);
            }
        }
    }

    #[test]
    fn finish_with_hands_over_a_cut_line_as_it_is_and_reports_frames_without_data() {
        let (frames, orphan) = finish_chunks(&[b"data: a\n\ndata: {\"te"]);
        assert_eq!(frames, [frame("", "a", ""), frame("", "{\"te", "")]);
        assert!(!orphan);
        let (frames, orphan) = finish_chunks(&[b"data: a\n\nevent: message_st"]);
        assert_eq!(frames, [frame("", "a", "")]);
        assert!(orphan);
        let (frames, orphan) = finish_chunks(&[b"data: a\n\n"]);
        assert_eq!(frames, [frame("", "a", "")]);
        assert!(!orphan);
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
                    frames.push((
                        f.event().to_owned(),
                        f.data().into_owned(),
                        f.id().to_owned(),
                    ));
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
