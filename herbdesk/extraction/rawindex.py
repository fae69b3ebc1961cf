"""Finding one specimen's full record in raw.jsonl without loading the file.

Keeps only byte offsets (the last record of each specimen wins) and reads the growing file
incrementally, so the detail view works on a live run and on a 100,000-record file alike.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson


class RawIndex:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._offsets: dict[str, int] = {}
        self._by_image: dict[str, int] = {}
        self._scanned = 0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Index records appended since the last call (whole lines only)."""
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                return
            if size < self._scanned:  # replaced or truncated: start over
                self._offsets.clear()
                self._by_image.clear()
                self._scanned = 0
            if size == self._scanned:
                return
            with open(self.path, "rb") as fh:
                fh.seek(self._scanned)
                pos = self._scanned
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # a partial last line: wait for the rest
                    try:
                        rec = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        pos += len(line)
                        continue
                    if isinstance(rec, dict):
                        sid = rec.get("specimen_id")
                        if sid:
                            self._offsets[str(sid)] = pos
                        img = rec.get("image")
                        if img:
                            self._by_image[str(img)] = pos
                    pos += len(line)
                self._scanned = pos

    def _read_at(self, offset: int) -> dict[str, Any] | None:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            line = fh.readline()
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return rec if isinstance(rec, dict) else None

    def get(self, specimen_id: str, image: str | None = None) -> dict[str, Any] | None:
        """The latest record of a specimen (by id, else by image file name), or None."""
        self.refresh()
        off = self._offsets.get(specimen_id)
        if off is None and image:
            off = self._by_image.get(image)
        return self._read_at(off) if off is not None else None

    def __len__(self) -> int:
        return len(self._offsets)
