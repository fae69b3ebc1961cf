"""Reading event logs: skip and count damaged lines, never stop at one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from herbdesk.events.codec import BadLine
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.types import Event

MAX_BAD_SAMPLES = 200


@dataclass
class BadLineInfo:
    """Where a skipped line was and why, for the status bar and `summary`."""

    line_no: int
    offset: int
    reason: str
    excerpt: str


@dataclass
class ReadStats:
    """Counters of one read: lines seen, events decoded, lines skipped (with samples)."""

    lines: int = 0
    events: int = 0
    bad_lines: int = 0
    bad_samples: list[BadLineInfo] = field(default_factory=list)

    def record_bad(self, line_no: int, offset: int, reason: str, raw: bytes) -> None:
        self.bad_lines += 1
        if len(self.bad_samples) < MAX_BAD_SAMPLES:
            excerpt = raw[:160].decode("utf-8", "replace")
            self.bad_samples.append(BadLineInfo(line_no, offset, reason, excerpt))


LineDecoder = Callable[[bytes], Event]


def iter_events(
    path: Path | str,
    stats: ReadStats | None = None,
    decoder: LineDecoder | None = None,
) -> Iterator[Event]:
    """Yield every decodable event of a JSONL file in order; bad lines go to `stats`.

    A last line without its newline is still read (a finished file may lack one); a torn
    line fails to decode and is counted like any other bad line. By default each line's shape
    is detected: herbdesk events, the original scripts' events, or result records.
    """
    stats = stats if stats is not None else ReadStats()
    dec = decoder or AutoDecoder()
    offset = 0
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            start = offset
            offset += len(raw)
            line = raw.strip()
            if not line:
                continue
            stats.lines += 1
            try:
                ev = dec(line)
            except BadLine as exc:
                stats.record_bad(line_no, start, str(exc), line)
                continue
            stats.events += 1
            yield ev


def read_events(path: Path | str) -> tuple[list[Event], ReadStats]:
    """All events of a file plus read statistics."""
    stats = ReadStats()
    return list(iter_events(path, stats)), stats
