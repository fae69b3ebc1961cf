"""Darwin Core term values per specimen row, stored column-wise for the table (Qt-free).

A run of a million specimens holds ten-odd values each: a dict per row would cost ~1 KB a
row. Each term is instead a categorical column: one int32 code per row (0: no value) into
that term's distinct values, so repeated values (country, collector, taxon) are held once
and a term nobody extracted costs nothing. The folds (state.py, chunks.py, fold_columns.py)
set a row's values from its last finish's `dwc` object (docs/events.md); searching and
sorting work on the distinct values and then map codes to rows with numpy, so neither
calls Python once per row.

Opening a log decodes no values: the column fold keeps, per row, where its `dwc` object is
in the file (`set_spans`; decoding them took most of an open's time). A row shown reads its
own object back (a few per repaint); the first search, sort or any other look at whole
columns reads them all once (`build`), in batches that bound the memory it takes. The window
runs that read (`prepare`: the build, then each term's search text and sort order) on a thread of
its own while the folds go on: one lock orders the two, taken per batch, and a row refolded
meanwhile keeps its new values (the batch fills only rows whose span is still the one it read).
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Protocol, cast

import numpy as np
import orjson

from herbdesk.common.dwc import canonical_term
from herbdesk.events import fastscan
from herbdesk.events.reader import open_regular
from herbdesk.runstate import textsort

BUILD_BATCH = 65_536  # rows decoded at a time by `build`: ~30 MB of objects, not all at once
ROW_CACHE = 4096  # rows read back for painting kept decoded (a few screens)

_SEP = "\x00"  # between the distinct values of a term in its search text; no needle has it
_term_of: dict[str, str | None] = {}  # the few keys a log uses, canonicalised once


def _term(key: str) -> str | None:
    term = _term_of.get(key)
    if term is None and key not in _term_of:
        term = _term_of[key] = canonical_term(key)
    return term


def value_text(value: Any) -> str:
    """A term's value as shown: raw.jsonl's `{value, confidence}` unwrapped; "" for none."""
    if isinstance(value, dict):
        value = value.get("value")
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)):  # a number (decimalLatitude), as JSON wrote it
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _last_text(obj: dict[str, Any], names: set[str]) -> str:
    """What `TermColumns.set_row` keeps of a record holding a term under several names."""
    out = ""
    for key, value in obj.items():
        if key in names:
            out = value_text(value) or out
    return out


class SpanSource(Protocol):
    """Where spans (offset, length) of a log are read back from."""

    def read(self, offset: int, length: int) -> bytes:
        """One span (a row shown)."""
        ...

    def mapped(self) -> AbstractContextManager[Buffer]:
        """The whole log as one buffer, for reading many spans (`TermColumns.build`)."""
        ...


Buffer = bytes | bytearray | memoryview | mmap.mmap
# fastscan.value_columns' answer: per key (raw bytes) its codes and values; the odd spans
Parsed = tuple[list[tuple[bytes, np.ndarray, list[str | bytes]]], np.ndarray]


class FileSpans:
    """Spans of a log file. One row at a time through a file kept open (as EventIndex reads
    events back); many at once from a read-only mapping of the file, closed after."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] | None = None

    def read(self, offset: int, length: int) -> bytes:
        if self._fh is None:
            self._fh = open_regular(self.path)
        self._fh.seek(offset)
        return self._fh.read(length)

    @contextmanager
    def mapped(self) -> Iterator[Buffer]:
        with open_regular(self.path) as fh:
            if fh.seek(0, 2) == 0:  # an empty file cannot be mapped
                yield b""
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                yield mm

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class BufferSpans:
    """Spans of bytes held in memory (a log read whole, tests, benchmarks)."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    @contextmanager
    def mapped(self) -> Iterator[Buffer]:
        yield self.data


def _object(raw: bytes | memoryview | None) -> dict[str, Any] | None:
    """A `dwc` object from its JSON; None for anything else (or a span of a changed file)."""
    if not raw:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return obj if type(obj) is dict else None


def _row_texts(obj: dict[str, Any] | None) -> dict[str, str]:
    """{term: text} of one record, as `TermColumns.set_row` keeps them (the last non-empty
    value of a term written under several names)."""
    out: dict[str, str] = {}
    if obj:
        for key, raw in obj.items():
            term = _term(key) if isinstance(key, str) else None
            text = value_text(raw) if term is not None else ""
            if text:
                out[term] = text  # type: ignore[index]
    return out


class TermColumn:
    """One term: a code per row into `values` (values[0] is "", no value)."""

    __slots__ = ("_code_of", "_indexed", "_rank", "_starts", "_text", "codes", "values")

    def __init__(self) -> None:
        self.codes = np.zeros(0, np.int32)
        self.values: list[str] = [""]
        # text -> code, for interning; None after a build (a million entries cost ~100 MB
        # while the values are only looked at) until a value is added again
        self._code_of: dict[str, int] | None = {"": 0}
        # search text: the casefolded distinct values joined by _SEP, and where each starts
        self._text = ""
        self._starts = np.zeros(1, np.int64)
        self._indexed = 1  # values[:_indexed] are in _text
        self._rank: np.ndarray | None = None  # sort rank per code, for len(values) codes

    def _grow(self, n: int) -> None:
        if len(self.codes) < n:
            codes = np.zeros(max(n, 2 * len(self.codes), 1024), np.int32)
            codes[: len(self.codes)] = self.codes
            self.codes = codes

    def code(self, text: str) -> int:
        code_of = self._codes()
        c = code_of.get(text)
        if c is None:
            c = code_of[text] = len(self.values)
            self.values.append(text)
        return c

    def set(self, row: int, text: str) -> None:
        self._grow(row + 1)
        self.codes[row] = self.code(text)

    def _codes(self) -> dict[str, int]:
        if self._code_of is None:
            self._code_of = dict(zip(self.values, range(len(self.values)), strict=True))
        return self._code_of

    def compact(self) -> None:
        """Drop what only adding values needs (rebuilt when one is added)."""
        self._code_of = None

    def codes_of(self, texts: list[str]) -> np.ndarray:
        """The code of each text ("" is 0, no value), new texts interned first."""
        code_of, values = self._codes(), self.values
        fresh = set(texts).difference(code_of)
        start = len(values)
        if len(fresh) == len(texts):  # all new and distinct (catalog numbers): codes in order
            code_of.update(zip(texts, range(start, start + len(texts)), strict=True))
            values.extend(texts)
            return np.arange(start, start + len(texts), dtype=np.int32)
        if fresh:
            new = list(fresh)
            code_of.update(zip(new, range(start, start + len(new)), strict=True))
            values.extend(new)
        return np.fromiter(map(code_of.__getitem__, texts), np.int32, len(texts))

    def set_texts(self, rows: np.ndarray, texts: list[str]) -> None:
        """codes[rows] = the codes of `texts`."""
        self.set_codes(rows, self.codes_of(texts))

    def set_codes(self, rows: np.ndarray, codes: np.ndarray) -> None:
        self._grow(int(rows.max()) + 1)
        self.codes[rows] = codes

    def clear(self, rows: np.ndarray) -> None:
        rows = rows[rows < len(self.codes)]
        self.codes[rows] = 0

    def value(self, row: int) -> str:
        return self.values[self.codes[row]] if row < len(self.codes) else ""

    def codes_for(self, n: int) -> np.ndarray:
        """The codes of rows 0..n-1 (rows past the column's end have none)."""
        if len(self.codes) >= n:
            return self.codes[:n]
        out = np.zeros(n, np.int32)
        out[: len(self.codes)] = self.codes
        return out

    def _index(self) -> None:
        """Extend the search text with values added since (values are only ever appended)."""
        new = self.values[self._indexed :]
        if not new:
            return
        text = _SEP.join(new)
        if text.count(_SEP) == len(new) - 1:  # no value holds the separator: one casefold
            text = text.casefold()
            folded = text.split(_SEP)
        else:
            folded = [v.casefold().replace(_SEP, " ") for v in new]
            text = _SEP.join(folded)
        lengths = np.fromiter(map(len, folded), np.int64, len(folded)) + 1
        del folded
        ends = len(self._text) + np.cumsum(lengths)
        self._text += _SEP + text
        self._starts = np.concatenate((self._starts, ends - lengths + 1))
        self._indexed = len(self.values)

    def matching(self, needle: str) -> np.ndarray:
        """bool per code: the value contains `needle` (casefolded); False for "no value"."""
        self._index()
        hit = np.zeros(len(self.values), bool)
        at = self._find(needle)
        if len(at):
            hit[np.searchsorted(self._starts, at, "right") - 1] = True
        hit[0] = False
        return hit

    def _find(self, needle: str) -> np.ndarray:
        """Where `needle` starts in the search text (overlapping matches too: any start in a
        value is enough), compared in numpy over the text's code points (each candidate start
        filtered by each further character) rather than one Python object per match: a
        common word matched 800,000 values (0.3 s as a regex's list of matches)."""
        points = textsort.code_points(self._text)
        want = [ord(c) for c in needle]
        m = len(want)
        if not m or m > len(points) or max(want) > np.iinfo(points.dtype).max:
            return np.zeros(0, np.int64)
        at = np.flatnonzero(points[: len(points) - m + 1] == want[0])
        for k in range(1, m):
            at = at[points[at + k] == want[k]]
        return at

    def rank(self) -> np.ndarray:
        """Sort rank per code: casefolded order, equal casefolded values tied; 0 (none) last."""
        if self._rank is not None and len(self._rank) == len(self.values):
            return self._rank
        self._index()
        rank = textsort.ranks(self._text, self._starts, _SEP)  # folded values, in numpy
        rank[0] = np.iinfo(np.int64).max
        self._rank = rank
        return rank


class TermColumns:
    """Every term's column; a row's values are those of its last finish.

    A row's values are either in the columns or still in the log (a span of `source`, set
    by `set_spans`, decoded by `build`); a later finish of the row replaces either.
    """

    def __init__(self) -> None:
        self._cols: dict[str, TermColumn] = {}
        # where the log is read back from; None: the folds decode values at once
        self.source: SpanSource | None = None
        self._span_off = np.zeros(0, np.int64)
        self._span_len = np.zeros(0, np.int32)  # 0: the row has no span waiting
        self._spans = False  # some span was ever set (the folds must then clear rows)
        self._cache: dict[int, dict[str, str]] = {}  # rows read back for painting
        # The folds (GUI thread) and a background `prepare` take `_lock` around each change;
        # `_building` makes a second build wait for the first rather than race it.
        self._lock = threading.RLock()
        self._building = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._cols) or self._spans

    def terms(self) -> list[str]:
        """Terms with at least one value recorded (in any row, ever)."""
        self.build()
        return list(self._cols)

    def column(self, term: str) -> TermColumn | None:
        self.build()
        return self._cols.get(term)

    # ------------------------------------------------------------------ spans
    def set_spans(self, rows: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> None:
        """Distinct rows' values are the `dwc` objects at (offset, length) of `source`
        (length 0: the row has none). Nothing is decoded here."""
        with self._lock:
            assert self.source is not None
            self._spans = True
            self._cache.clear()
            for col in self._cols.values():
                col.clear(rows)
            n = int(rows.max(initial=-1)) + 1
            old = len(self._span_len)
            if old < n:
                size = max(n, 2 * old, 1024)
                self._span_off = np.resize(self._span_off, size)
                self._span_len = np.resize(self._span_len, size)
                self._span_len[old:] = 0  # np.resize repeats the array into the new part
            self._span_off[rows] = offsets
            self._span_len[rows] = lengths

    def _drop_spans(self, rows: np.ndarray) -> None:
        with self._lock:
            if self._spans:
                self._cache.clear()
                rows = rows[rows < len(self._span_len)]
                self._span_len[rows] = 0

    def pending(self) -> int:
        """Rows whose values are still only in the log."""
        return int(np.count_nonzero(self._span_len)) if self._spans else 0

    def build(
        self,
        progress: Callable[[int, int], object] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Decode every row's values still in the log into the columns (once: later folds
        keep them current); False if `should_stop` ended it first (the rest stay spans).

        Batches of BUILD_BATCH rows: one orjson call per batch, and no more than a batch's
        objects alive at a time. A batch is read without the lock (the log is only appended
        to, so a span's bytes never change) and filled under it, for the rows that still
        point at the span read: a row the folds set again meanwhile keeps what they set."""
        if not self._spans:
            return True
        with self._building:
            while True:  # rows given spans while a round ran are read by the next one
                done = self._build_round(progress, should_stop)
                if done is not None:
                    break
            with self._lock:
                self._cache.clear()
                for col in self._cols.values():
                    col.compact()
        return done

    def _build_round(
        self, progress: Callable[[int, int], object] | None, should_stop: Callable[[], bool]
    ) -> bool | None:
        """One pass of `build` over the rows pending at its start; None: some may be left."""
        with self._lock:
            rows = np.flatnonzero(self._span_len)
            if not len(rows):
                return True
            assert self.source is not None
            order = rows[np.argsort(self._span_off[rows], kind="stable")]  # file order
            offs, lens = self._span_off[order], self._span_len[order]
        batches = [slice(i, i + BUILD_BATCH) for i in range(0, len(order), BUILD_BATCH)]
        with self.source.mapped() as buf, ThreadPoolExecutor(1) as pool:
            # the compiled reader runs without the GIL: the next batch is read beside this
            # one's Python decoding (the two halves, ~2 s and ~3 s at 1M rows)
            fast = fastscan.AVAILABLE

            def read(b: slice) -> Future[Parsed] | None:
                return pool.submit(fastscan.value_columns, buf, offs[b], lens[b]) if fast else None

            ahead = read(batches[0])
            for k, b in enumerate(batches):
                parsed = ahead.result() if ahead is not None else None
                if should_stop():
                    return False
                ahead = read(batches[k + 1]) if k + 1 < len(batches) else None
                with self._lock:
                    self._fill_batch(buf, order[b], offs[b], lens[b], parsed)
                if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
                    # the pages read stay in the page cache but leave this process's
                    # resident set (they counted in its peak: ~220 MB of a 1M-row build)
                    buf.madvise(mmap.MADV_DONTNEED)
                if progress is not None:
                    progress(min(b.stop, len(order)), len(order))
        return None

    def _fill_batch(
        self,
        buf: Buffer,
        rows: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        parsed: Parsed | None,
    ) -> None:
        """One batch of `build` (under the lock): its rows whose span is unchanged take the
        values read there, and their spans are done."""
        span_len = self._span_len
        still = (span_len[rows] == lengths) & (self._span_off[rows] == offsets)
        if still.all():
            self._fill_parsed(buf, rows, offsets, lengths, parsed)
        elif still.any():  # some refolded meanwhile (rare): the rest read again, alone
            self._fill_spans(buf, rows[still], offsets[still], lengths[still])
        span_len[rows[still]] = 0

    def prepare(
        self,
        progress: Callable[[int, int], object] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Everything a search or sort looks at, made at once (the window runs this on a
        thread of its own when the first one is asked for): the build, then each term's
        search text and sort order. False if stopped first."""
        if not self.build(progress, should_stop):
            return False
        for term in list(self._cols):
            if should_stop():
                return False
            with self._lock:
                col = self._cols[term]
                col.rank()  # makes the search text too
        return True

    def set_from_block(
        self, block: Buffer, rows: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
    ) -> None:
        """`set_rows` with each row's `dwc` object the span (offset, length) of `block`
        (length <= 0: none): the column fold of a log without a `source`."""
        with self._lock:
            self.clear_rows(rows)
            has = lengths > 0
            if has.any():
                self._fill_spans(block, rows[has], offsets[has], lengths[has])

    def _fill_spans(
        self, buf: Buffer, rows: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Distinct rows (their codes cleared) take the objects at spans of `buf`: flat ones
        read into columns in C (fastscan.value_columns), any other decoded here."""
        parsed = fastscan.value_columns(buf, offsets, lengths) if fastscan.AVAILABLE else None
        self._fill_parsed(buf, rows, offsets, lengths, parsed)

    def _fill_parsed(
        self,
        buf: Buffer,
        rows: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        parsed: Parsed | None,
    ) -> None:
        """`_fill_spans` given value_columns' answer for the spans (None: not read in C)."""
        if parsed is not None:
            cols, odd = parsed
            redo = odd | self._fill_columns(rows, cols)
        else:
            redo = np.ones(len(rows), bool)
        at = np.flatnonzero(redo)
        if len(at):
            ends = (offsets[at] + lengths[at]).tolist()
            raws = [bytes(buf[o:e]) for o, e in zip(offsets[at].tolist(), ends, strict=True)]
            self._fill(rows[at], _objects(raws))

    def _fill_columns(
        self, rows: np.ndarray, cols: list[tuple[bytes, np.ndarray, list[str | bytes]]]
    ) -> np.ndarray:
        """Rows take their values from `value_columns`' columns, one decode per distinct
        value; returns the rows holding a term under two names, left to `_fill`."""
        by_term: dict[str, list[tuple[np.ndarray, list[str | bytes]]]] = {}
        for key, codes, raws in cols:
            term = _term(key.decode())  # UTF-8 checked by the scan, no escapes
            if term is not None:
                by_term.setdefault(term, []).append((codes, raws))
        redo = np.zeros(len(rows), bool)
        for term, keys in by_term.items():
            col = self._col(term)
            got = []
            for codes, raws in keys:
                remap = np.zeros(len(raws) + 1, np.int32)
                remap[1:] = col.codes_of(_texts(raws))
                got.append(remap[codes])
            if len(keys) == 1:
                col.set_codes(rows, got[0])
                continue
            named = np.sum([codes > 0 for codes, _ in keys], axis=0)
            both = named > 1
            redo |= both
            merged = np.sum(got, axis=0).astype(np.int32)
            merged[both] = 0
            col.set_codes(rows, merged)
        return redo

    def _row_from_span(self, row: int) -> dict[str, str] | None:
        """The values of a row still in the log (None if it has none there), read back."""
        if not self._spans or row >= len(self._span_len) or not self._span_len[row]:
            return None
        got = self._cache.get(row)
        if got is None:
            assert self.source is not None
            raw = self.source.read(int(self._span_off[row]), int(self._span_len[row]))
            got = _row_texts(_object(raw))
            if len(self._cache) >= ROW_CACHE:
                self._cache.clear()
            self._cache[row] = got
        return got

    def _col(self, term: str) -> TermColumn:
        col = self._cols.get(term)
        if col is None:
            col = self._cols[term] = TermColumn()
        return col

    # ------------------------------------------------------------------ filling
    def set_row(self, row: int, dwc: Any) -> None:
        """The row's values become those of `dwc` ({term: value} or raw.jsonl's
        {term: {value, confidence}}); any other shape clears them. One row at a time: no
        numpy call per column (the folds of single lines call this)."""
        with self._lock:
            if self._spans and row < len(self._span_len) and self._span_len[row]:
                self._span_len[row] = 0
                self._cache.pop(row, None)
            for col in self._cols.values():
                codes = col.codes
                if row < len(codes) and codes[row]:
                    codes[row] = 0
            if not isinstance(dwc, Mapping):
                return
            for key, raw in dwc.items():
                term = _term(key) if isinstance(key, str) else None
                text = value_text(raw) if term is not None else ""
                if text:
                    self._col(term).set(row, text)  # type: ignore[arg-type]

    def set_raw(self, row: int, raw: bytes | memoryview | None) -> None:
        """`set_row` from the raw JSON of a `dwc` object (bulk folds decode only this)."""
        obj = None
        if raw:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                obj = None
        self.set_row(row, obj if type(obj) is dict else None)

    def set_rows(self, rows: np.ndarray, raws: Iterable[bytes | memoryview | None]) -> None:
        """`set_raw` for distinct rows at once (the column fold without a `source`)."""
        with self._lock:
            self.clear_rows(rows)
            loads = orjson.loads
            objs: list[dict[str, Any] | None] = []
            for raw in raws:
                try:
                    obj = loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    obj = None
                objs.append(obj if type(obj) is dict else None)
            self._fill(rows, objs)

    def _fill(self, rows: np.ndarray, records: list[dict[str, Any] | None]) -> None:
        """Distinct rows (their codes cleared) take the values of `records` (None: none).

        Term by term over the block's objects rather than value by value: a list of the
        block's values per term, interned with set and map calls (a quarter of the cost).
        """
        keep = [j for j, o in enumerate(records) if o]
        if not keep:
            return
        objs = cast("list[dict[str, Any]]", [records[j] for j in keep])
        at = rows[np.array(keep, np.int64)]
        keys_of: dict[str, list[str]] = {}
        for key in set().union(*objs):
            term = _term(key)
            if term is not None:
                keys_of.setdefault(term, []).append(key)
        for term, keys in keys_of.items():
            if len(keys) == 1:
                key = keys[0]
                vals = [o.get(key, "") for o in objs]  # absent: "" keeps the all-text path
            else:  # two spellings of one term in a block: the last non-empty one in a record
                names = set(keys)
                vals = [_last_text(o, names) for o in objs]
            if set(map(type, vals)) == {str}:
                texts = list(map(str.strip, cast("list[str]", vals)))
            else:
                texts = [v.strip() if type(v) is str else value_text(v) for v in vals]
            self._col(term).set_texts(at, texts)

    def clear_rows(self, rows: np.ndarray) -> None:
        with self._lock:
            self._drop_spans(rows)
            for col in self._cols.values():
                col.clear(rows)

    # ------------------------------------------------------------------ reading
    def value(self, term: str, row: int) -> str:
        """One cell (painting): a row still in the log is read back, not the whole column."""
        got = self._row_from_span(row)
        if got is not None:
            return got.get(term, "")
        col = self._cols.get(term)
        return col.value(row) if col is not None else ""

    def row_values(self, row: int) -> dict[str, str]:
        got = self._row_from_span(row)
        if got is not None:
            return dict(got)
        out = {}
        for term, col in list(self._cols.items()):  # a background build may add a term
            text = col.value(row)
            if text:
                out[term] = text
        return out

    def as_lists(self, n: int) -> dict[str, list[str]]:
        """Each term's values of rows 0..n-1, by term name; terms with no value left out
        (how two folds of one log are compared)."""
        self.build()
        out = {}
        for term in sorted(self._cols):
            col = self._cols[term]
            values = [col.values[c] for c in col.codes_for(n).tolist()]
            if any(values):
                out[term] = values
        return out

    def hits(self, needle: str, n: int) -> np.ndarray:
        """bool per row 0..n-1: some term value contains `needle` (casefolded)."""
        self.build()
        mask = np.zeros(n, bool)
        for col in self._cols.values():
            hit = col.matching(needle)
            if hit.any():
                mask |= hit[col.codes_for(n)]
        return mask

    def row_hits(self, needle: str, rows: np.ndarray) -> np.ndarray:
        """`hits` for some rows only (live updates, a status filter's candidates)."""
        self.build()
        mask = np.zeros(len(rows), bool)
        for col in self._cols.values():
            hit = col.matching(needle)
            if hit.any():
                inside = rows < len(col.codes)
                mask[inside] |= hit[col.codes[rows[inside]]]
        return mask

    def sorted_rows(self, term: str, n: int, descending: bool) -> np.ndarray:
        """Rows 0..n-1 by the term's value (casefolded), stable; rows without one last."""
        self.build()
        col = self._cols.get(term)
        if col is None:
            return np.arange(n, dtype=np.int64)
        codes = col.codes_for(n)
        keys = col.rank()[codes]
        present = np.flatnonzero(codes != 0)
        k = keys[present]
        order = present[np.argsort(-k if descending else k, kind="stable")]
        return np.concatenate((order, np.flatnonzero(codes == 0))).astype(np.int64, copy=False)


def _texts(values: list[str | bytes]) -> list[str]:
    """The texts of value_columns' values: strings stripped, raw JSON (valid) decoded."""
    texts = list(map(str.strip, values)) if _all_str(values) else None  # type: ignore[arg-type]
    if texts is not None:
        return texts
    raw = [i for i, v in enumerate(values) if type(v) is bytes]
    decoded = orjson.loads(b"[" + b",".join(cast("list[bytes]", [values[i] for i in raw])) + b"]")
    out = [v.strip() if type(v) is str else "" for v in values]
    for i, v in zip(raw, decoded, strict=True):
        out[i] = str(v) if type(v) is float or type(v) is int else value_text(v)
    return out


def _all_str(values: list[Any]) -> bool:
    return set(map(type, values)) <= {str}


def _objects(raws: list[bytes]) -> list[dict[str, Any] | None]:
    """Each raw `dwc` object decoded (None: none or not an object), in one orjson call when
    all look like objects (a call per object cost ~1 us more each)."""
    if raws and all(r[:1] == b"{" and r[-1:] == b"}" for r in raws):
        try:
            got = orjson.loads(b"[" + b",".join(raws) + b"]")
        except orjson.JSONDecodeError:
            got = None
        if isinstance(got, list) and len(got) == len(raws):  # else a span of a changed file
            return [o if type(o) is dict else None for o in got]
    return [_object(r) for r in raws]


def fold_spans(
    terms: TermColumns,
    block: bytes | bytearray,
    base: int,
    rows: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    ok: np.ndarray,
) -> None:
    """The column fold's `set_raw` for distinct rows: each row's last finish, whose `dwc`
    object is the span (offset, length) of `block` (length <= 0: none) if it succeeded.
    `block` starts at byte `base` of the log: with a `source`, only that place is kept."""
    has = ok & (lengths > 0)
    if not terms and not has.any():
        return  # logs without values: nothing to do per row
    if terms.source is not None:
        at = offsets.astype(np.int64) + base
        terms.set_spans(rows, np.where(has, at, 0), np.where(has, lengths, 0))
        return
    terms.set_from_block(block, rows, offsets, np.where(has, lengths, 0))
