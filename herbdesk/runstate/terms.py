"""Darwin Core term values per specimen row, stored column-wise for the table (Qt-free).

A run of a million specimens holds ten-odd values each: a dict per row would cost ~1 KB a
row. Each term is instead a categorical column: one int32 code per row (0: no value) into
that term's distinct values, so repeated values (country, collector, taxon) are held once
and a term nobody extracted costs nothing. The folds (state.py, chunks.py, fold_columns.py)
set a row's values from its last finish's `dwc` object (docs/events.md); searching and
sorting work on the distinct values and then map codes to rows with numpy, so neither
calls Python once per row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy as np
import orjson

from herbdesk.common.dwc import canonical_term

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


class TermColumn:
    """One term: a code per row into `values` (values[0] is "", no value)."""

    __slots__ = ("_code_of", "_indexed", "_rank", "_starts", "_text", "codes", "values")

    def __init__(self) -> None:
        self.codes = np.zeros(0, np.int32)
        self.values: list[str] = [""]
        self._code_of: dict[str, int] = {"": 0}
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
        c = self._code_of.get(text)
        if c is None:
            c = self._code_of[text] = len(self.values)
            self.values.append(text)
        return c

    def set(self, row: int, text: str) -> None:
        self._grow(row + 1)
        self.codes[row] = self.code(text)

    def set_texts(self, rows: np.ndarray, texts: list[str]) -> None:
        """codes[rows] = the codes of `texts` ("" is no value), new texts interned first."""
        code_of, values = self._code_of, self.values
        new = list(set(texts).difference(code_of))
        if new:
            code_of.update(zip(new, range(len(values), len(values) + len(new)), strict=True))
            values.extend(new)
        self._grow(int(rows.max()) + 1)
        self.codes[rows] = np.fromiter(map(code_of.__getitem__, texts), np.int32, len(texts))

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
        folded = [v.casefold().replace(_SEP, " ") for v in new]
        lengths = np.fromiter(map(len, folded), np.int64, len(folded)) + 1
        ends = len(self._text) + np.cumsum(lengths)
        self._text += _SEP + _SEP.join(folded)
        self._starts = np.concatenate((self._starts, ends - lengths + 1))
        self._indexed = len(self.values)

    def matching(self, needle: str) -> np.ndarray:
        """bool per code: the value contains `needle` (casefolded); False for "no value"."""
        self._index()
        hit = np.zeros(len(self.values), bool)
        at = [m.start() for m in re.finditer(re.escape(needle), self._text)]
        if at:
            hit[np.searchsorted(self._starts, np.array(at, np.int64), "right") - 1] = True
        hit[0] = False
        return hit

    def rank(self) -> np.ndarray:
        """Sort rank per code: casefolded order, equal casefolded values tied; 0 (none) last."""
        if self._rank is not None and len(self._rank) == len(self.values):
            return self._rank
        self._index()
        folded = self._text.split(_SEP)  # folded[i] is values[i]'s; folded[0] is ""
        order = np.array(sorted(range(1, len(folded)), key=folded.__getitem__), np.int64)
        rank = np.empty(len(folded), np.int64)
        if len(order):
            ordered = np.array(folded, dtype=object)[order]
            new = ordered[1:] != ordered[:-1]  # equal casefolded values share a rank
            rank[order] = np.concatenate(([0], np.cumsum(new)))
        rank[0] = np.iinfo(np.int64).max
        self._rank = rank
        return rank


class TermColumns:
    """Every term's column; a row's values are those of its last finish."""

    def __init__(self) -> None:
        self._cols: dict[str, TermColumn] = {}

    def __bool__(self) -> bool:
        return bool(self._cols)

    def terms(self) -> list[str]:
        """Terms with at least one value recorded (in any row, ever)."""
        return list(self._cols)

    def column(self, term: str) -> TermColumn | None:
        return self._cols.get(term)

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
        """`set_raw` for distinct rows at once (the column fold of an opened log).

        Term by term over the block's objects rather than value by value: a list of the
        block's values per term, interned with set and map calls (a quarter of the cost).
        """
        self.clear_rows(rows)
        keep: list[int] = []
        objs: list[dict[str, Any]] = []
        loads = orjson.loads
        for row, raw in zip(rows.tolist(), raws, strict=True):
            if not raw:
                continue
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                continue
            if type(obj) is dict and obj:
                keep.append(row)
                objs.append(obj)
        if not objs:
            return
        at = np.array(keep, np.int64)
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
        for col in self._cols.values():
            col.clear(rows)

    # ------------------------------------------------------------------ reading
    def value(self, term: str, row: int) -> str:
        col = self._cols.get(term)
        return col.value(row) if col is not None else ""

    def row_values(self, row: int) -> dict[str, str]:
        out = {}
        for term, col in self._cols.items():
            text = col.value(row)
            if text:
                out[term] = text
        return out

    def as_lists(self, n: int) -> dict[str, list[str]]:
        """Each term's values of rows 0..n-1, by term name; terms with no value left out
        (how two folds of one log are compared)."""
        out = {}
        for term in sorted(self._cols):
            col = self._cols[term]
            values = [col.values[c] for c in col.codes_for(n).tolist()]
            if any(values):
                out[term] = values
        return out

    def hits(self, needle: str, n: int) -> np.ndarray:
        """bool per row 0..n-1: some term value contains `needle` (casefolded)."""
        mask = np.zeros(n, bool)
        for col in self._cols.values():
            hit = col.matching(needle)
            if hit.any():
                mask |= hit[col.codes_for(n)]
        return mask

    def row_hits(self, needle: str, rows: np.ndarray) -> np.ndarray:
        """`hits` for some rows only (live updates, a status filter's candidates)."""
        mask = np.zeros(len(rows), bool)
        for col in self._cols.values():
            hit = col.matching(needle)
            if hit.any():
                inside = rows < len(col.codes)
                mask[inside] |= hit[col.codes[rows[inside]]]
        return mask

    def sorted_rows(self, term: str, n: int, descending: bool) -> np.ndarray:
        """Rows 0..n-1 by the term's value (casefolded), stable; rows without one last."""
        col = self._cols.get(term)
        if col is None:
            return np.arange(n, dtype=np.int64)
        codes = col.codes_for(n)
        keys = col.rank()[codes]
        present = np.flatnonzero(codes != 0)
        k = keys[present]
        order = present[np.argsort(-k if descending else k, kind="stable")]
        return np.concatenate((order, np.flatnonzero(codes == 0))).astype(np.int64, copy=False)


def fold_spans(
    terms: TermColumns,
    block: bytes | bytearray,
    rows: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    ok: np.ndarray,
) -> None:
    """The column fold's `set_raw` for distinct rows: each row's last finish, whose `dwc`
    object is the span (offset, length) of `block` (length <= 0: none) if it succeeded."""
    has = ok & (lengths > 0)
    if not terms and not has.any():
        return  # logs without values: nothing to do per row
    view = memoryview(block)
    raws: list[memoryview | None] = [None] * len(rows)
    for j in np.flatnonzero(has).tolist():
        o = int(offsets[j])
        raws[j] = view[o : o + int(lengths[j])]
    terms.set_rows(rows, raws)
