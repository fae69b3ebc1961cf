"""Blanking a secret (the API key) out of any text a run writes or shows.

The one place key redaction happens. Servers and proxies echo credentials in error texts, and
models quote what they see; texts are then cut to a length. So a whole key is not enough to
look for: any run of `MIN_SECRET_LEN` or more characters of the key is blanked (that covers a
key cut at either end and a fragment from its middle), and texts are redacted before they are
cut, never after. A secret shorter than `MIN_SECRET_LEN` is not treated as one: blanking a
one-letter key would mangle every word holding that letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_LEN = 8


class Redactor:
    """Redacts one secret; built once per key (the search pattern is compiled here)."""

    def __init__(self, secret: str | None) -> None:
        self._pattern: re.Pattern[str] | None = None
        n = MIN_SECRET_LEN
        if secret and len(secret) >= n:
            pieces = {secret[i : i + n] for i in range(len(secret) - n + 1)}
            self._pattern = re.compile("|".join(re.escape(p) for p in sorted(pieces)))

    def redact(self, text: str) -> str:
        """`text` with every run of the secret's characters (>= MIN_SECRET_LEN) blanked."""
        pat = self._pattern
        if pat is None or not text:
            return text
        m = pat.search(text)
        if m is None:
            return text
        out: list[str] = []
        last = 0
        while m is not None:
            start, end = m.span()
            # pieces overlap along a run of the key: grow the span while the next one touches
            nxt = pat.search(text, start + 1)
            while nxt is not None and nxt.start() <= end:
                end = max(end, nxt.end())
                nxt = pat.search(text, nxt.start() + 1)
            out += [text[last:start], REDACTED]
            last = end
            m = nxt
        out.append(text[last:])
        return "".join(out)

    def maybe(self, text: str | None) -> str | None:
        """redact() that passes None through (optional texts such as raw_text)."""
        return None if text is None else self.redact(text)

    def cut(self, text: str, limit: int) -> str:
        """Redacted, then cut to `limit` characters: a cut never leaves part of a key behind."""
        return self.redact(text)[:limit]

    def deep(self, value: Any) -> Any:
        """Every string inside dicts and lists redacted (usage blocks, nested replies)."""
        return map_strings(value, self.redact)


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every string in it, keys included, through dicts and lists."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {map_strings(k, fn): map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value


def redact_secret(text: str, secret: str | None) -> str:
    """One-off redaction of `secret` from `text` (build a Redactor to redact many texts)."""
    return Redactor(secret).redact(text)
