"""The run's image index: (path, size, mtime) -> specimen id, so a resume need not rehash.

A file in the run directory (`images.idx`) of fixed 56-byte records appended as images are
hashed: a 64-bit key of the path, its size, its mtime in ns and the 32-byte sha256. Loaded
whole into numpy arrays (a million entries: 56 MB, read in well under a second). An entry is
trusted only while the file's size and mtime are exactly as recorded; a torn last record (a
kill mid-append) is ignored, a file with a foreign header is ignored whole (everything is
hashed again, which is only slower).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from herbdesk.extraction.images import FileStamp

INDEX = "images.idx"
MAGIC = b"HDIDX\x00\x01\n"
RECORD = np.dtype([("key", "<u8"), ("size", "<i8"), ("mtime_ns", "<i8"), ("sid", "V32")])
# A file modified this recently may be modified again within the same mtime tick (the
# filesystem's clock is coarse): its entry could vouch for bytes it never saw. Not recorded.
RACY_NS = 2_000_000_000
FLUSH_EVERY = 256


def path_key(path: Path | str) -> int:
    """64 bits of blake2b of the path's bytes (a key collision would also need the same size
    and mtime to the nanosecond to be trusted)."""
    digest = hashlib.blake2b(os.fsencode(path), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class ImageIndex:
    """Look-ups against the entries found at open; appends new ones (buffered, flushed every
    FLUSH_EVERY records and at close: a kill loses at most those, which are rehashed)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / INDEX
        self._keys = np.zeros(0, "<u8")
        self._rows = np.zeros(0, RECORD)
        self._load()
        self._pending: list[bytes] = []
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        if self._fh.tell() == 0:
            self._fh.write(MAGIC)
        elif not self._valid:
            # a foreign or damaged file: start it over (its entries were never trusted)
            self._fh.close()
            self._fh = open(self.path, "wb")  # noqa: SIM115
            self._fh.write(MAGIC)
        else:
            self._fh.truncate(len(MAGIC) + len(self._rows_all) * RECORD.itemsize)
        self.lookups = 0  # how many look-ups were answered from the index (tests, benchmarks)

    def _load(self) -> None:
        self._valid = False
        self._rows_all = np.zeros(0, RECORD)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._valid = True
            return
        if not raw.startswith(MAGIC):
            return
        self._valid = True
        body = raw[len(MAGIC) :]
        n = len(body) // RECORD.itemsize  # a torn last record is left out
        rows = np.frombuffer(body, RECORD, n)
        self._rows_all = rows
        # the last entry of a key wins: a stable sort keeps append order within a key
        order = np.argsort(rows["key"], kind="stable")
        keys = rows["key"][order]
        last = np.ones(len(keys), bool)
        last[:-1] = keys[1:] != keys[:-1]
        self._rows = rows[order][last]
        self._keys = self._rows["key"]

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, path: Path | str, stamp: FileStamp) -> str | None:
        """The specimen id recorded for this path, if its size and mtime are as recorded."""
        if not len(self._keys):
            return None
        k = np.uint64(path_key(path))
        i = int(np.searchsorted(self._keys, k))
        if i >= len(self._keys) or self._keys[i] != k:
            return None
        row = self._rows[i]
        if (int(row["size"]), int(row["mtime_ns"])) != stamp:
            return None
        self.lookups += 1
        return bytes(row["sid"]).hex()

    def add(self, path: Path | str, stamp: FileStamp, specimen_id: str) -> None:
        """Record a hashed image (unless modified too recently to vouch for, see RACY_NS)."""
        size, mtime_ns = stamp
        if time.time_ns() - mtime_ns < RACY_NS or len(specimen_id) != 64:
            return
        rec = np.zeros(1, RECORD)
        rec["key"], rec["size"], rec["mtime_ns"] = path_key(path), size, mtime_ns
        rec["sid"] = bytes.fromhex(specimen_id)
        self._pending.append(rec.tobytes())
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._pending and not self._fh.closed:
            self._fh.write(b"".join(self._pending))
            self._fh.flush()
            self._pending.clear()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.flush()
        self._fh.close()
