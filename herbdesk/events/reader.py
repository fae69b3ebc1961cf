"""Reading event logs: skip and count damaged lines, never stop at one."""

from __future__ import annotations

import os
import queue
import stat
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, overload

import numpy as np
import orjson

from herbdesk.events import fastscan
from herbdesk.events.codec import BadLine, decode, encode
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.types import Event

MAX_BAD_SAMPLES = 200
# Longer lines are skipped (and counted) without being held: herbdesk's own lines are a few KB
# (a raw record with a long model reply stays well under this), and reading a line whole
# would let one damaged or hostile file take all memory.
MAX_LINE_BYTES = 16 << 20
_SKIP_CHUNK = 1 << 20


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


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: Path | str, mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"{path} is not a regular file ({kind}), so it cannot be an event log"


def not_regular_reason(path: Path | str) -> str | None:
    """Why `path`, symlinks followed, cannot be read as a log; None if it is a regular file
    or does not exist (yet). A FIFO blocks a reader until some writer comes, /dev/zero never
    ends: neither may be read as a log."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _not_regular(path, mode)


def open_regular(path: Path | str, buffering: int = -1) -> IO[bytes]:
    """Open a log for reading; OSError unless it is a regular file.

    A FIFO would block `open` until some writer appears, and a directory is no log: both are
    refused up front (O_NONBLOCK makes the open itself return at once).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)  # Windows
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(_not_regular(path, mode))
        return open(fd, "rb", buffering=buffering, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _lines(fh: IO[bytes]) -> Iterator[tuple[bytes, int, bool]]:
    """(line or its head, its full length, whether it was too long) for every line."""
    while True:
        raw = fh.readline(MAX_LINE_BYTES)
        if not raw:
            return
        if len(raw) < MAX_LINE_BYTES or raw.endswith(b"\n"):
            yield raw, len(raw), False
            continue
        length = len(raw)
        head = raw[:200]
        del raw
        while True:  # discard the rest of the line a chunk at a time
            rest = fh.readline(_SKIP_CHUNK)
            length += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        yield head, length, True


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
    with open_regular(path) as fh:
        for line_no, (raw, length, too_long) in enumerate(_lines(fh), start=1):
            start = offset
            offset += length
            if too_long:
                stats.lines += 1
                stats.record_bad(line_no, start, f"line longer than {MAX_LINE_BYTES} bytes", raw)
                continue
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


def head_stats(path: Path | str, max_lines: int) -> tuple[ReadStats, bool]:
    """The read statistics of a log's first `max_lines` lines, stopping at its first event,
    and whether they were all its lines: a glance that tells a log from another file (a CSV,
    an image) without reading it all. Raises OSError as iter_events does."""
    stats = ReadStats()
    dec = AutoDecoder()
    offset = 0
    with open_regular(path) as fh:
        for line_no, (raw, length, too_long) in enumerate(_lines(fh), start=1):
            if stats.lines >= max_lines:
                return stats, False
            start, offset = offset, offset + length
            line = raw.strip()
            if not line:
                continue
            stats.lines += 1
            if too_long:
                stats.record_bad(line_no, start, f"line longer than {MAX_LINE_BYTES} bytes", raw)
                continue
            try:
                dec(line)
            except BadLine as exc:
                stats.record_bad(line_no, start, str(exc), line)
                continue
            stats.events += 1
            return stats, False
    return stats, True


def head_objects(path: Path | str, max_lines: int) -> Iterator[dict[str, object]]:
    """The JSON objects among a log's first `max_lines` lines, for a glance at its head (the
    run id, its extraction.started): lines that are not objects are skipped, and an
    unreadable file has none."""
    try:
        with open(path, "rb") as fh:
            for _ in range(max_lines):
                line = fh.readline()
                if not line:
                    return
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    yield obj
    except OSError:
        return


# --------------------------------------------------------------------------- bulk reading
CHUNK_BYTES = 4 << 20


@dataclass
class LineChunk:
    """Whole lines read in one block: the lines (no newline), their byte offsets, line numbers.

    Lines of MAX_LINE_BYTES or more are never held: each is an empty placeholder in `lines`
    and an entry (line number, offset, first bytes) in `too_long`, for the fold to count.
    """

    lines: list[bytes]
    starts: list[int]
    first_line_no: int
    end_offset: int  # byte offset just past the last line of this chunk
    too_long: list[tuple[int, int, bytes]] = field(default_factory=list)
    # Scanned blocks (events/fastscan.py) leave `lines` and `starts` empty: the block itself,
    # its file offset and one record per line stand for them.
    data: bytes | bytearray = b""
    base: int = 0
    records: fastscan.Columns | None = None
    scanner: fastscan.BlockScanner | None = None


def iter_line_chunks(
    fh: IO[bytes], chunk_bytes: int = CHUNK_BYTES, first_bytes: int | None = None
) -> Iterator[LineChunk]:
    """Blocks of whole lines from a binary file, a few MB at a time (bulk loads).

    Splitting a block at once costs a fraction of reading line by line. `first_bytes` makes
    the first block small, so the first rows of a big file show at once. A last line without
    its newline is still yielded. With the compiled scanner, blocks are scanned instead of
    split (in the calling thread, without the GIL: the window's loader does it beside the
    fold).
    """
    if fastscan.AVAILABLE:
        yield from _scanned_chunks(fh, fastscan.BlockScanner(), chunk_bytes, first_bytes)
        return
    carry = b""
    pos = 0  # offset of `carry`'s first byte
    line_no = 1
    skip_start = skip_len = -1  # an over-long line being discarded
    skip_head = b""
    pending: list[tuple[int, int, bytes]] = []
    size = first_bytes or chunk_bytes
    while True:
        block = fh.read(size)
        size = chunk_bytes
        if not block:
            break
        if skip_start >= 0:
            j = block.find(b"\n")
            if j < 0:
                skip_len += len(block)
                continue
            skip_len += j + 1
            pending.append((line_no, skip_start, skip_head))
            line_no += 1
            pos = skip_start + skip_len
            skip_start = -1
            block = block[j + 1 :]
        buf = carry + block if carry else block
        lines = buf.split(b"\n")
        carry = lines.pop()
        first = line_no
        # line offsets in C (numpy), not a Python loop: this runs for every line of a load
        lens = np.fromiter(map(len, lines), np.int64, len(lines))
        ends = np.cumsum(lens + 1)
        starts: list[int] = (ends - (lens + 1) + pos).tolist()
        if int(lens.max(initial=0)) >= MAX_LINE_BYTES:
            for k, p in enumerate(lines):
                if len(p) >= MAX_LINE_BYTES:
                    pending.append((line_no + k, starts[k], p[:200]))
                    lines[k] = b""  # keeps numbering; empty lines are skipped by every reader
        if len(lines):
            pos += int(ends[-1])
            line_no += len(lines)
        if len(carry) >= MAX_LINE_BYTES:
            skip_start, skip_len, skip_head = pos, len(carry), carry[:200]
            carry = b""
        if lines or pending:
            yield LineChunk(lines, starts, first, pos, pending)
            pending = []
    if skip_start >= 0:
        pending.append((line_no, skip_start, skip_head))
    if carry or pending:
        lines = [carry] if carry else []
        starts = [pos] if carry else []
        yield LineChunk(lines, starts, line_no, pos + len(carry), pending)


class EventIndex:
    """Where each event of an opened log is, so nobody holds a million Event objects.

    Per event: the byte offset and length of its line and a small code of its type. Events
    only a stateful decoder can rebuild (the original scripts' logs, result records) are held
    as objects; herbdesk lines are decoded again from the file when a view asks for them.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.starts = array("q")
        self.lengths = array("I")  # lines are shorter than MAX_LINE_BYTES
        self.types = array("H")
        self.type_names: list[str] = []
        self._type_code: dict[str, int] = {}
        self.held: dict[int, Event] = {}
        self._fh: IO[bytes] | None = None

    def __len__(self) -> int:
        return len(self.types)

    def type_code(self, event_type: str) -> int:
        code = self._type_code.get(event_type)
        if code is None:
            code = self._type_code[event_type] = len(self.type_names)
            self.type_names.append(event_type)
        return code

    def add_line(self, start: int, length: int, event_type: str) -> None:
        self.starts.append(start)
        self.lengths.append(length)
        self.types.append(self.type_code(event_type))

    def extend_lines(self, starts: list[int], lengths: list[int], event_types: list[str]) -> None:
        """`add_line` for many lines at once (bulk loads)."""
        for t in set(event_types).difference(self._type_code):
            self.type_code(t)
        self.starts.extend(starts)
        self.lengths.extend(lengths)
        self.types.extend(map(self._type_code.__getitem__, event_types))

    def extend_kinds(
        self, starts: np.ndarray, lengths: np.ndarray, kinds: np.ndarray, names: Sequence[str]
    ) -> None:
        """`add_line` for scanned lines: `names[kind]` is each line's event type."""
        codes = np.array([self.type_code(n) if n else 0 for n in names], np.uint16)
        self.starts.frombytes(np.ascontiguousarray(starts, np.int64).tobytes())
        self.lengths.frombytes(np.ascontiguousarray(lengths, np.uint32).tobytes())
        self.types.frombytes(codes[kinds].tobytes())

    def add_event(self, event: Event) -> None:
        self.held[len(self.types)] = event
        self.starts.append(-1)
        self.lengths.append(0)
        self.types.append(self.type_code(event.event_type))

    def event_type(self, i: int) -> str:
        return self.type_names[self.types[i]]

    def event(self, i: int) -> Event:
        """The i-th event, decoded from its line (IndexError past the end)."""
        if i < 0:
            i += len(self.types)
        held = self.held.get(i)
        if held is not None:
            return held
        start = self.starts[i]  # raises IndexError like a list
        if self.path is None:
            raise IndexError(i)
        if self._fh is None:
            self._fh = open_regular(self.path)
        self._fh.seek(start)
        return self._decode(i, self._fh.read(self.lengths[i]))

    def iter_events(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        """Events start..stop-1 in order, read a block of lines at a time (replay, filters)."""
        n = len(self.types)
        stop = n if stop is None else max(0, min(stop, n))
        i = max(0, start)
        while i < stop:
            held = self.held.get(i)
            if held is not None:
                yield held
                i += 1
                continue
            j = i
            base = self.starts[i]
            while j < stop and self.starts[j] >= 0 and self.starts[j] - base < _SKIP_CHUNK * 4:
                j += 1
            end = self.starts[j - 1] + self.lengths[j - 1]
            if self._fh is None:
                if self.path is None:
                    raise IndexError(i)
                self._fh = open_regular(self.path)
            self._fh.seek(base)
            buf = self._fh.read(end - base)
            for k in range(i, j):
                off = self.starts[k] - base
                yield self._decode(k, buf[off : off + self.lengths[k]])
            i = j

    def _decode(self, i: int, line: bytes) -> Event:
        try:
            return decode(line.strip())
        except BadLine as exc:  # the file was rewritten since it was opened
            return Event(
                event_type=self.event_type(i),
                run_id="",
                seq=0,
                timestamp="",
                data={"error": f"line no longer readable: {exc}"},
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class EventStore(Sequence[Event]):
    """The events a view lists: the first `limit` events of an opened file's index (decoded
    when asked for), followed by events held in memory (live runs and tails).

    Held events are kept as their encoded JSON line (an Event only if it cannot be encoded):
    bytes cost a third of the memory of an Event with its dicts, and the garbage collector
    never scans them, where hundreds of thousands of held dicts made each full collection
    freeze the window for a noticeable fraction of a second.
    """

    def __init__(self, index: EventIndex | None = None, limit: int = 0) -> None:
        self.file_index = index
        self.limit = limit
        self.tail: list[bytes | Event] = []
        self._tail_types = array("H")
        self._type_names: list[str] = []
        self._type_code: dict[str, int] = {}

    def __len__(self) -> int:
        return self.limit + len(self.tail)

    @overload
    def __getitem__(self, i: int) -> Event: ...
    @overload
    def __getitem__(self, i: slice) -> list[Event]: ...
    def __getitem__(self, i: int | slice) -> Event | list[Event]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return list(self.iter_range(start, stop))
            return [self[k] for k in range(start, stop, step)]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        if i < self.limit and self.file_index is not None:
            return self.file_index.event(i)
        return self._held(i - self.limit)

    def _held(self, k: int) -> Event:
        item = self.tail[k]
        if isinstance(item, Event):
            return item
        try:
            return decode(item)
        except BadLine as exc:  # not expected: it was encoded from an Event
            return Event(
                event_type=self._type_names[self._tail_types[k]],
                run_id="",
                seq=0,
                timestamp="",
                data={"error": f"cannot decode a held event: {exc}"},
            )

    def __iter__(self) -> Iterator[Event]:
        return self.iter_range(0, len(self))

    def iter_range(self, start: int, stop: int) -> Iterator[Event]:
        if start < self.limit and self.file_index is not None:
            yield from self.file_index.iter_events(start, min(stop, self.limit))
        for k in range(max(0, start - self.limit), max(0, min(stop, len(self)) - self.limit)):
            yield self._held(k)

    def event_type(self, i: int) -> str:
        """The type of event i without decoding it."""
        if i < self.limit and self.file_index is not None:
            return self.file_index.event_type(i)
        return self._type_names[self._tail_types[i - self.limit]]

    def held_type_codes(self, start: int, stop: int) -> tuple[array[int], list[str]]:
        """The type codes of the held events among events start..stop-1 (a copy) and the type
        names they index, read after the codes, so every code has its name."""
        codes = self._tail_types[max(0, start - self.limit) : max(0, stop - self.limit)]
        return codes, list(self._type_names)

    def types_in(self, start: int, stop: int) -> set[str]:
        """The distinct event types of events start..stop-1."""
        out: set[str] = set()
        if start < self.limit and self.file_index is not None:
            idx = self.file_index
            out |= {idx.type_names[c] for c in set(idx.types[start : min(stop, self.limit)])}
        codes = self._tail_types[max(0, start - self.limit) : max(0, stop - self.limit)]
        out |= {self._type_names[c] for c in set(codes)}
        return out

    def extend(self, events: Iterable[Event]) -> None:
        tail, types, code_of = self.tail, self._tail_types, self._type_code
        for ev in events:
            try:
                # a copy without the newline: orjson's own result keeps its larger working
                # allocation, which measured 5 KB of RSS per held event
                tail.append(encode(ev)[:-1])
            except (TypeError, orjson.JSONEncodeError):  # a value JSON cannot hold
                tail.append(ev)
            code = code_of.get(ev.event_type)
            if code is None:
                code = code_of[ev.event_type] = len(self._type_names)
                self._type_names.append(ev.event_type)
            types.append(code)


def _scanned_chunks(
    fh: IO[bytes], scanner: fastscan.BlockScanner, chunk_bytes: int, first_bytes: int | None
) -> Iterator[LineChunk]:
    """`iter_line_chunks` with the compiled scanner: blocks are scanned, never split.

    Each block is read into a fresh buffer behind the previous block's unfinished line (one
    copy of the file's bytes in all); the scan stops at the block's last newline.
    """
    carry = b""
    pos = 0  # file offset of the buffer's first byte
    line_no = 1
    skipping: list[int] | None = None  # [start, length] of an over-long line being discarded
    skip_head = b""
    pending: list[tuple[int, int, bytes]] = []
    size = first_bytes or chunk_bytes
    while True:
        buf = bytearray(len(carry) + size)
        buf[: len(carry)] = carry
        got = fh.readinto(memoryview(buf)[len(carry) :])  # type: ignore[attr-defined]  # binary files have it
        size = chunk_bytes
        if not got:
            break
        del buf[len(carry) + got :]
        if skipping is not None:  # carry is empty while a line is discarded
            j = buf.find(b"\n")
            if j < 0:
                skipping[1] += len(buf)
                continue
            pending.append((line_no, skipping[0], skip_head))
            line_no += 1
            pos = skipping[0] + skipping[1] + j + 1
            skipping = None
            del buf[: j + 1]
        cut = buf.rfind(b"\n") + 1
        carry = bytes(buf[cut:])
        if len(carry) >= MAX_LINE_BYTES:
            skipping, skip_head, carry = [pos + cut, len(carry)], carry[:200], b""
        if cut or pending:
            records = scanner.scan(buf, cut)
            for i in np.flatnonzero(records.len >= MAX_LINE_BYTES).tolist():
                start = int(records.start[i])
                pending.append((line_no + i, pos + start, bytes(buf[start : start + 200])))
                records.kind[i] = fastscan.KIND_BLANK  # counted as too long, never folded
            yield LineChunk([], [], line_no, pos + cut, pending, buf, pos, records, scanner)
            pending = []
            line_no += len(records)
            pos += cut
    if skipping is not None:
        pending.append((line_no, skipping[0], skip_head))
    if carry:
        records = scanner.scan(carry)
        yield LineChunk([], [], line_no, pos + len(carry), pending, carry, pos, records, scanner)
    elif pending:
        yield LineChunk([], [], line_no, pos, pending)


def read_ahead(chunks: Iterator[LineChunk], depth: int = 2) -> Iterator[LineChunk]:
    """The same blocks, read and scanned by a helper thread `depth` blocks ahead.

    Reading and the compiled scan run without the GIL, so on two cores they overlap the fold
    instead of adding to it. An error in the reader is raised here, in order.
    """
    q: queue.Queue[tuple[LineChunk | None, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[LineChunk | None, BaseException | None]) -> bool:
        while not stop.is_set():  # the consumer may have gone: never block for good
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((None, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((None, exc))

    worker = threading.Thread(target=produce, name="herbdesk-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            chunk, error = q.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        worker.join()
