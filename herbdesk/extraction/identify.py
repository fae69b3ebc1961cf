"""Identifying scanned images as they stream to the workers; one code path for a local run and
a distributed enqueue.

Each image is read once here: its bytes are hashed (the specimen id) and, in a local run,
handed on to the worker that sends them, through a bounded read-ahead (`SpecimenFeed`), so
the first specimen starts while the rest of a large folder is still being identified and at
most a window's worth of bytes is held. On resume the run's image index (imageindex.py)
answers for files unchanged since they were hashed, so completed ones are skipped unread.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from herbdesk.extraction.imageindex import ImageIndex
from herbdesk.extraction.images import FileStamp, ImageList, read_stamped, stamp_of

# Read-ahead of a local run: identified specimens waiting for a worker, with their bytes.
# Workers start once it is full, everything is identified, or READY_S after the first image
# was queued (slow reads, a network share), whichever comes first; the byte budget bounds
# memory for big scans.
READ_AHEAD = 16
READ_AHEAD_BYTES = 256 << 20
READY_S = 0.5


@dataclass(frozen=True, slots=True)
class Found:
    """One image, identified: queue it (`skip` None) or give it a skipped row."""

    path: Path
    specimen_id: str
    skip: str | None = None
    duplicate_of: str | None = None
    data: bytes | None = None
    stamp: FileStamp | None = None  # (size, mtime_ns) as it was read
    gold: bool = False

    def skipped_data(self) -> dict[str, str]:
        d = {"image": self.path.name, "path": str(self.path), "reason": str(self.skip)}
        if self.duplicate_of:
            d["duplicate_of"] = self.duplicate_of
        return d


def path_id(path: Path) -> str:
    """The row id of an image without a content id of its own (unreadable, a duplicate)."""
    return hashlib.sha256(os.fsencode(path)).hexdigest()


def gold_first(images: ImageList, is_gold: Callable[[str], bool]) -> Iterator[tuple[Path, bool]]:
    """The images with known-answer sheets first (named by file name: no read needed), each
    with whether it is one."""
    gold = [i for i in range(len(images)) if is_gold(images.name(i))]
    for i in gold:
        yield images[i], True
    if not gold:
        yield from ((p, False) for p in images)
        return
    is_g = set(gold)
    for i in range(len(images)):
        if i not in is_g:
            yield images[i], False


class Identifier:
    """Gives each image its verdict in order: the first copy of some bytes is queued, later
    copies are duplicates, ids completed before (`done`) are skipped."""

    def __init__(self, done: set[str] | None = None, index: ImageIndex | None = None) -> None:
        self.done = done or set()
        self.index = index
        self._seen: set[bytes] = set()  # digests, not hex strings: half the memory
        self.reads = 0  # images read (tests and benchmarks: the index spares reads)

    def identify(self, path: Path, gold: bool = False) -> Found:
        if self.index is not None and self.done:
            # resume: an unchanged file the index knows is skipped unread if it is done
            try:
                sid = self.index.get(path, stamp_of(os.stat(path)))
            except OSError:
                sid = None  # the read below says why
            if sid is not None and sid in self.done:
                return Found(path, sid, skip="already completed")
        try:
            self.reads += 1
            data, sid, stamp = read_stamped(path)
        except OSError as exc:
            return Found(path, path_id(path), skip=f"unreadable: {exc}")
        if self.index is not None:
            self.index.add(path, stamp, sid)
        if sid in self.done:
            return Found(path, sid, skip="already completed")
        digest = bytes.fromhex(sid)
        if digest in self._seen:
            # its own row, keyed by its path as an unreadable image is: under the original's
            # id it showed as the original skipped, and was never counted
            return Found(
                path, path_id(path), skip="duplicate of an earlier image", duplicate_of=sid
            )
        self._seen.add(digest)
        return Found(path, sid, data=data, stamp=stamp, gold=gold)


class SpecimenFeed:
    """The bounded read-ahead between the identifier thread and the workers.

    `put` waits while READ_AHEAD items or READ_AHEAD_BYTES are waiting (an item is always
    let in when none waits); `unbounded` items (known-answer sheets, put before the run starts,
    without their bytes) do not count. `get` returns None once the identifier is done and the
    feed is empty, or the run is stopping.
    """

    def __init__(
        self,
        should_stop: Callable[[], bool],
        items: int = READ_AHEAD,
        max_bytes: int = READ_AHEAD_BYTES,
    ) -> None:
        self._should_stop = should_stop
        self._max_items, self._max_bytes = items, max_bytes
        self._q: deque[tuple[Found, bool]] = deque()
        self._bounded = 0
        self._bytes = 0
        self._closed = False
        self._first_at = 0.0
        self._cond = threading.Condition()
        self.ready = threading.Event()  # set once workers should start

    def put(self, found: Found, unbounded: bool = False) -> bool:
        """False if the run stopped meanwhile (the item was not queued)."""
        size = len(found.data or b"")
        with self._cond:
            while (
                not unbounded
                and self._bounded
                and (self._bounded >= self._max_items or self._bytes + size > self._max_bytes)
            ):
                self.ready.set()  # full: the workers may start
                if self._should_stop():
                    return False
                self._cond.wait(0.2)
            if not self._first_at:
                self._first_at = time.monotonic()
            self._q.append((found, not unbounded))
            if not unbounded:
                self._bounded += 1
                self._bytes += size
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """No more items are coming."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.ready.set()

    def get(self) -> Found | None:
        with self._cond:
            while not self._q:
                if self._closed or self._should_stop():
                    return None
                self._cond.wait(0.2)
            found, bounded = self._q.popleft()
            if bounded:
                self._bounded -= 1
                self._bytes -= len(found.data or b"")
            self._cond.notify_all()
            return found

    def wait_ready(self) -> None:
        while not self.ready.wait(0.05):
            if self._should_stop():
                return
            if self._first_at and time.monotonic() - self._first_at >= READY_S:
                return
