use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use appforge_llm::protocol::{ProtocolEvent, ProtocolParser};

use crate::report::Report;

/// Flags of the `file-parse` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Size of the synthetic protocol stream, in MB.
    #[arg(long, default_value_t = 64)]
    megabytes: usize,
    /// Bytes per chunk handed to the parser (a model streams a few tokens at a time).
    #[arg(long, default_value_t = 64)]
    chunk_bytes: usize,
    /// Parse the stream this many times and report the fastest run (the machine is shared).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// A generation of about `bytes` bytes: sections, then TypeScript files of about 8 KB.
fn synthetic_stream(bytes: usize) -> (String, usize) {
    let lines = [
        "import { useMemo, useState } from 'react';\n",
        "export function Component({ items }: { items: string[] }) {\n",
        "  const [filter, setFilter] = useState('');\n",
        "  const visible = useMemo(() => items.filter((i) => i.includes(filter)), [items, filter]);\n",
        "  // ===FILE:not/a/marker.ts=== inside a comment stays content\n",
        "  return <ul className=\"flex flex-col gap-2\">{visible.map((i) => <li key={i}>{i}</li>)}</ul>;\n",
        "}\n",
        "\n",
    ];
    let mut out = String::with_capacity(bytes + 16 * 1024);
    out.push_str("===NAME===\nBench App\n===DESCRIPTION===\nSynthetic.\n===APP_TYPE===\nreact\n");
    let mut files = 0;
    while out.len() < bytes {
        let _ = writeln!(out, "===FILE:src/components/Component{files}.tsx===");
        let start = out.len();
        let mut i = 0;
        while out.len() - start < 8 * 1024 {
            out.push_str(lines[i % lines.len()]);
            i += 1;
        }
        files += 1;
    }
    out.push_str("===DEPENDENCIES===\nreact: ^18.3.1\n===SETUP===\nnpm install\n===END===\n");
    (out, files)
}

/// One timed parse of `text` in `chunk`-byte pieces: elapsed time, events, delta bytes.
fn parse_once(text: &str, chunk: usize, files: usize) -> (Duration, u64, usize) {
    let start = Instant::now();
    let mut parser = ProtocolParser::new();
    let mut delta_bytes = 0usize;
    let mut events = 0u64;
    let mut on_event = |event: ProtocolEvent<'_>| {
        events += 1;
        if let ProtocolEvent::FileDelta { text, .. } = event {
            delta_bytes += text.len();
        }
    };
    for piece in text.as_bytes().chunks(chunk) {
        // The synthetic text is ASCII, so every byte offset is a char boundary.
        let piece = std::str::from_utf8(piece).expect("ASCII");
        parser.feed(black_box(piece), &mut on_event);
    }
    let parsed = parser.finish(&mut on_event);
    let elapsed = start.elapsed();
    assert_eq!(parsed.files.len(), files, "every file parsed");
    assert!(parsed.ended);
    drop(black_box(parsed));
    (elapsed, events, delta_bytes)
}

pub(crate) fn run(args: &Args) -> Report {
    let (text, files) = synthetic_stream(args.megabytes * 1024 * 1024);
    let chunk = args.chunk_bytes.max(1);
    let mut times = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..args.runs.max(1) {
        let (elapsed, events, delta_bytes) = parse_once(&text, chunk, files);
        times.push(elapsed);
        counts = (events, delta_bytes);
    }
    times.sort_unstable();
    let best = times[0];
    let median = times[times.len() / 2];
    Report::new(
        "file-parse",
        u64::try_from(text.len()).unwrap_or(u64::MAX),
        best,
    )
    .with("megabytes", args.megabytes)
    .with("chunk_bytes", chunk)
    .with("runs", times.len())
    .with("median_seconds", median.as_secs_f64())
    .with("files", files)
    .with("events", counts.0)
    .with("delta_bytes", counts.1)
}
