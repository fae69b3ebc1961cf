"""Reading a reply body decoded, up to a cap, without ever holding more than the cap.

httpx decodes each network chunk whole: one 64 KB chunk of a gzip bomb is ~64 MB before any
size check can run (a ~200 KB reply expanded by ~280 MiB). Here the raw stream is inflated
with zlib's `max_length`, a step at a time, so no more than `cap + 1` decoded bytes (and one
step) ever exist.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

# What the engine asks for (Accept-Encoding), and all it can decode within a cap.
ACCEPT_ENCODING = "gzip, deflate"
_STEP = 1 << 16  # decoded bytes per zlib call: the most held outside the body itself


class DecodeError(ValueError):
    """The body is not valid in its Content-Encoding, or the encoding is not one we asked for."""


class TooLarge(Exception):
    """The decoded body passed the cap; `head` holds its first bytes."""

    def __init__(self, head: bytes) -> None:
        super().__init__("decoded body larger than the cap")
        self.head = head


def _inflater(encoding: str) -> zlib._Decompress | None:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if enc == "deflate":  # zlib-wrapped per the RFC; some servers send it raw (handled below)
        return zlib.decompressobj()
    raise DecodeError(f"content-encoding {encoding!r} was not asked for")


def read_capped(raw: Iterable[bytes], encoding: str, cap: int) -> bytes:
    """The decoded body from raw (still encoded) chunks; TooLarge once it passes `cap`."""
    z = _inflater(encoding)
    out = bytearray()
    first = True
    for chunk in raw:
        if z is None:
            out += chunk
        else:
            data = chunk
            while data and len(out) <= cap:
                try:
                    out += z.decompress(data, min(cap + 1 - len(out), _STEP))
                except zlib.error as exc:
                    if not (first and encoding.strip().lower() == "deflate"):
                        raise DecodeError(f"{encoding} body is corrupt: {exc}") from exc
                    z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate after all
                    first = False
                    continue
                first = False
                data = z.unconsumed_tail
        if len(out) > cap:
            raise TooLarge(bytes(out[:4000]))
    if z is not None:
        try:
            out += z.flush()
        except zlib.error as exc:
            raise DecodeError(f"{encoding} body is corrupt: {exc}") from exc
        if len(out) > cap:
            raise TooLarge(bytes(out[:4000]))
    return bytes(out)
