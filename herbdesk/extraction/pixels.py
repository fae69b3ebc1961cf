"""A budget of decoded pixels shared by every worker of the process.

A sheet is decoded whole before it is downscaled: a PNG just under the pixel limit is ~1 GB as
RGB, and its conversion copies double that. Four workers decoding four such sheets at once took
the process to 7 GB. Decodes draw their pixel count from one budget, so at most about one
largest-sheet's worth is being decoded at any time, whatever the concurrency; small sheets
still decode side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PixelBudget:
    """At most `limit` pixels in decodes at once; a decode larger than the whole budget waits
    until it can run alone (it is never refused here: the image size limit does that)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("pixel budget must be >= 1")
        self.limit = limit
        self._cond = threading.Condition()
        self.in_use = 0
        self.peak = 0  # most pixels ever held at once (for tests and benchmarks)
        self.waits = 0  # decodes that had to wait for the budget

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need = max(1, min(pixels, self.limit))
        with self._cond:
            if self.in_use + need > self.limit:
                self.waits += 1
            while self.in_use + need > self.limit:
                self._cond.wait()
            self.in_use += need
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= need
                self._cond.notify_all()
