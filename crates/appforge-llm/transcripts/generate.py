#!/usr/bin/env python3
"""Writes the offline demo transcripts (Anthropic Messages API SSE) from the model outputs in
src/. Deterministic: the same sources give the same bytes. Run from anywhere:

    python3 crates/appforge-llm/transcripts/generate.py
"""
import hashlib
import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"

# name -> (source, input tokens, cache tokens written, preamble)
TRANSCRIPTS = {
    "todo-app": ("todo-app.txt", 1874, 1236),
    "habit-tracker": ("habit-tracker.txt", 1882, 1236),
    "landing-page": ("landing-page.txt", 1869, 1236),
    "modify-dark-mode": ("modify-dark-mode.json", 4128, 702),
    "plan-phases": ("plan-phases.txt", 392, 0),
    "chat-plan": ("chat-plan.txt", 2950, 0),
}


def model_text(source: str) -> str:
    text = (SRC / source).read_text(encoding="utf-8")
    if source.endswith(".json"):
        # Models wrap JSON in prose and a fence more often than not; the parser repairs it.
        change_set = json.loads(text)
        body = json.dumps(change_set, indent=2, ensure_ascii=False)
        return f"I'll add a dark mode toggle to the header.\n\n```json\n{body}\n```\n"
    return text


def deltas(text: str, seed: str):
    """Splits text into deltas of 1 to 8 token-like pieces, as the API streams them."""
    rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
    pieces = re.findall(r"\s+|\w+|[^\w\s]", text)
    i = 0
    while i < len(pieces):
        n = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5, 6, 8])
        yield "".join(pieces[i : i + n])
        i += n


def frame(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def transcript(name: str, source: str, input_tokens: int, cache_write: int) -> str:
    text = model_text(source)
    assert "".join(deltas(text, name)) == text
    message_id = "msg_01" + hashlib.sha256(name.encode()).hexdigest()[:22]
    output_tokens = max(1, round(len(text) / 3.6))
    out = [
        frame(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": cache_write,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                    },
                },
            },
        ),
        frame("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        frame("ping", {"type": "ping"}),
    ]
    for i, delta in enumerate(deltas(text, name)):
        out.append(frame("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": delta}}))
        if i % 400 == 399:
            out.append(frame("ping", {"type": "ping"}))
    out += [
        frame("content_block_stop", {"type": "content_block_stop", "index": 0}),
        frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        frame("message_stop", {"type": "message_stop"}),
    ]
    return "".join(out)


def main():
    for name, (source, input_tokens, cache_write) in TRANSCRIPTS.items():
        path = HERE / f"{name}.sse"
        path.write_text(transcript(name, source, input_tokens, cache_write), encoding="utf-8")
        print(f"{path.relative_to(HERE)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
