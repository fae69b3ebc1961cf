"""Ranks of many strings in code-point order, sorted in numpy a chunk of characters at a time.

A term's sort order is the order of its distinct casefolded values. Python's `sorted` of
780,000 long localities takes ~0.8 s in one C call that holds the GIL, so a window preparing
them on a thread of its own still froze for that long. Here the values are compared eight
characters at a time packed into one uint64 (most significant first, so integer order is
code-point order, which is Python's `str` order): one stable argsort on the first chunk, then
only the values still tied are sorted again by their next chunk, within their tie. Each step
is one numpy call of milliseconds, and the ties shrink quickly.
"""

from __future__ import annotations

import numpy as np

PYTHON_BELOW = 50_000  # fewer values than this: Python's sort is quick enough
_FINISH_TIES = 2_000  # tied values left this few: settled by Python's sort


def code_points(text: str) -> np.ndarray:
    """The text's code points: one byte each where they fit (a copy of the text's own
    buffer), else two or four."""
    try:
        return np.frombuffer(text.encode("latin-1"), np.uint8)
    except UnicodeEncodeError:
        wide = max(text) > "\uffff"
        enc = text.encode("utf-32-le" if wide else "utf-16-le")
        return np.frombuffer(enc, np.uint32 if wide else np.uint16)


def ranks(text: str, starts: np.ndarray, sep: str) -> np.ndarray:
    """Rank of each value of `text` (values joined by `sep`, value i beginning at starts[i];
    no value holds `sep`): 0 for the smallest, equal values sharing one rank."""
    n = len(starts)
    if n < PYTHON_BELOW:
        return _python_ranks(text.split(sep))
    points = code_points(text)
    bits = 8 if points.dtype == np.uint8 else 16 if points.dtype == np.uint16 else 21
    per = 64 // bits  # characters in one key
    ends = np.empty(n, np.int64)
    ends[:-1] = starts[1:] - len(sep)
    ends[-1] = len(points)
    starts = starts.astype(np.int64)

    def key(values: np.ndarray, chunk: int) -> np.ndarray:
        out = np.zeros(len(values), np.uint64)
        first = starts[values] + chunk * per
        stop = ends[values]
        for j in range(per):
            at = first + j
            inside = at < stop
            ch = np.zeros(len(values), np.uint64)
            ch[inside] = points[at[inside]]
            out |= ch << np.uint64(bits * (per - 1 - j))
        return out

    order = np.arange(n, dtype=np.int64)
    k0 = key(order, 0)
    order = np.argsort(k0, kind="stable")
    keys = k0[order]
    same = keys[1:] == keys[:-1]  # same[i]: order[i] and order[i+1] tie so far
    longest = int((ends - starts).max(initial=0))
    chunk = 1
    while same.any() and chunk * per < longest:
        tied = np.zeros(n, bool)
        tied[:-1] |= same
        tied[1:] |= same
        pos = np.flatnonzero(tied)
        group = np.cumsum(np.concatenate(([True], ~same)))[pos]  # which tie each is in
        if len(pos) <= _FINISH_TIES:
            _settle(text, starts, ends, order, pos, group, same)
            break
        sub = order[pos]
        kk = key(sub, chunk)
        o = np.lexsort((kk, group))  # within each tie (groups stay in place), by next chunk
        order[pos] = sub[o]
        kk, group = kk[o], group[o]
        next_to = pos[1:] == pos[:-1] + 1
        still = next_to & (group[1:] == group[:-1]) & (kk[1:] == kk[:-1])
        same[:] = False
        same[pos[:-1][next_to]] = still[next_to]
        chunk += 1
    rank = np.empty(n, np.int64)
    rank[order] = np.concatenate(([0], np.cumsum(~same)))
    return rank


def _settle(
    text: str,
    starts: np.ndarray,
    ends: np.ndarray,
    order: np.ndarray,
    pos: np.ndarray,
    group: np.ndarray,
    same: np.ndarray,
) -> None:
    """The few values still tied (at positions `pos` of `order`, in ties `group`), sorted
    whole by Python within their ties; `order` and `same` updated in place."""
    values = order[pos]
    spans = zip(starts[values].tolist(), ends[values].tolist(), strict=True)
    texts = [text[s:e] for s, e in spans]
    groups = group.tolist()
    o = sorted(range(len(pos)), key=lambda i: (groups[i], texts[i]))
    order[pos] = values[o]
    for i in range(len(pos) - 1):
        if pos[i + 1] == pos[i] + 1:
            a, b = o[i], o[i + 1]
            same[pos[i]] = groups[a] == groups[b] and texts[a] == texts[b]


def _python_ranks(values: list[str]) -> np.ndarray:
    order = np.array(sorted(range(len(values)), key=values.__getitem__), np.int64)
    rank = np.empty(len(values), np.int64)
    if len(order):
        ordered = np.array(values, dtype=object)[order]
        new = ordered[1:] != ordered[:-1]  # equal values share a rank
        rank[order] = np.concatenate(([0], np.cumsum(new)))
    return rank
