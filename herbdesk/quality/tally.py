"""Quality counts over a run's specimens, kept right when a specimen is finished again.

RunState folds every source (live, opened, tailed, distributed) through one QualityTally:
a row's newest quality replaces its earlier one (a resumed or re-delivered specimen), so the
counts are always over distinct specimens, as the success counts are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

# What a row contributes: usable, filled terms, invalid terms, finding check names, fingerprint
_Entry = tuple[bool, tuple[str, ...], tuple[str, ...], tuple[str, ...], str | None]
_Kind = tuple[bool, tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # _Entry without the fp
_NO_FP, _FP_NUMBER, _FP_TEXT = 0, 1, 2
_HEX16 = re.compile(r"[0-9a-f]{16}")  # herbdesk's fingerprints (checks.fingerprint)


def entry_of(quality: Mapping[str, Any] | None) -> _Entry | None:
    """A row's contribution from an event's `quality` object (None: not judged)."""
    if not isinstance(quality, Mapping):
        return None
    findings = quality.get("findings") or ()
    checks = tuple(
        str(f[0]) for f in findings if isinstance(f, (list, tuple)) and f and isinstance(f[0], str)
    )
    fp = quality.get("fingerprint")
    usable = bool(quality.get("usable"))
    if not usable:  # as the run rule: identical junk is counted as junk, not as identical
        fp = None
    return (
        usable,
        _strs(quality.get("filled")),
        _strs(quality.get("invalid")),
        checks,
        fp if isinstance(fp, str) else None,
    )


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else ()


class QualityTally:
    """Per row, the *kind* of its record (usable, filled terms, invalid terms, checks: a run has
    a few hundred kinds, interned once) and its fingerprint as a number; a million rows take
    ~13 MB (a tuple of strings per row took ~1 KB, and most of an opened log's fold time)."""

    def __init__(self) -> None:
        self._kinds: list[_Kind] = []
        self._kind_no: dict[_Kind, int] = {}
        self._kind_usable = np.zeros(0, np.bool_)
        self._labels: list[str] = []
        self._kind = np.full(0, -1, np.int32)  # per row; -1: not judged
        self._fp = np.zeros(0, np.uint64)  # per row: a fingerprint of 16 hex digits, as a number
        self._fp_state = np.zeros(0, np.uint8)  # per row: _NO_FP, _FP_NUMBER or _FP_TEXT
        self._fp_text: dict[int, str] = {}  # rows whose fingerprint is other text
        self._judged = 0
        self._identical: int | None = None  # cached until a row changes
        self._kind_n = np.zeros(0, np.int64)  # rows of each kind
        self._counts: tuple[Counter[str], Counter[str], Counter[str]] | None = None  # cached
        # each kind's (filled, invalid, checks) names as entries (kind, name number), so the
        # counts of a whole load are one weighted bincount, not a Python loop over kinds
        self._names: dict[str, int] = {}
        self._name_list: list[str] = []
        self._entries: tuple[list[int], list[int], list[int], list[int], list[int], list[int]] = (
            [],
            [],
            [],
            [],
            [],
            [],
        )  # kind, name per category: filled, invalid, checks
        self._entry_arrays: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.usable = 0

    def __len__(self) -> int:
        return self._judged

    def set(self, row: int, quality: Mapping[str, Any] | None) -> None:
        """The row's quality is now `quality` (None or absent: the row is not judged)."""
        e = entry_of(quality)
        self._grow(row + 1)
        self._identical = None
        old = int(self._kind[row])
        if old >= 0:  # one row: scalar steps (numpy's per-call cost is ~10x a scalar's)
            self._count(old, -1)
            self._judged -= 1
            self._kind[row] = -1
            if self._fp_state[row] == _FP_TEXT:
                del self._fp_text[row]
            self._fp_state[row] = _NO_FP
        if e is None:
            return
        k = self._kind_of(e[:4])
        self._kind[row] = k
        self._count(k, 1)
        self._judged += 1
        fp = e[4]
        if fp is not None:
            if _HEX16.fullmatch(fp):
                self._fp[row], self._fp_state[row] = int(fp, 16), _FP_NUMBER
            else:
                self._fp_state[row] = _FP_TEXT
                self._fp_text[row] = fp

    def clear_row(self, row: int) -> None:
        self.set(row, None)

    def clear_rows(self, rows: np.ndarray) -> None:
        """`clear_row` for distinct rows."""
        self._grow(int(rows.max()) + 1 if len(rows) else 0)
        self._drop(rows)

    def set_kinds(
        self, rows: np.ndarray, kinds: np.ndarray, fp: np.ndarray, has: np.ndarray
    ) -> None:
        """`set` for distinct rows whose objects are known kinds (`kind_of`, `scan_kinds`),
        with their fingerprints as numbers (has: the object has one)."""
        if not len(rows):
            return
        self._grow(int(rows.max()) + 1)
        self._drop(rows)
        self._kind[rows] = kinds
        self._count_many(kinds, 1)
        self._judged += len(rows)
        self._fp[rows] = fp
        self._fp_state[rows] = np.where(has & self._kind_usable[kinds], _FP_NUMBER, _NO_FP)

    def kind_of(self, quality: Mapping[str, Any]) -> int | None:
        """The kind number of a quality object (None if it is not one)."""
        e = entry_of(quality)
        return None if e is None else self._kind_of(e[:4])

    def key_kind(self, key: bytes) -> int:
        """The kind of a quality object the compiled scanner gives as its key (the object
        without what the tally ignores, as JSON; herbdesk/runstate/fold_columns.py); -1: not one."""
        try:
            k = self.kind_of(orjson.loads(key))
        except orjson.JSONDecodeError:  # not expected (the scan validated it): read in full
            return -1
        return -1 if k is None else k

    def entries(self) -> list[tuple[int, _Entry]]:
        """(row, its contribution) of every judged row, in row order, as `entry_of` gives it."""
        out = []
        for row in np.flatnonzero(self._kind >= 0).tolist():
            usable, filled, invalid, checks = self._kinds[int(self._kind[row])]
            state = int(self._fp_state[row])
            fp = (
                f"{int(self._fp[row]):016x}"
                if state == _FP_NUMBER
                else self._fp_text[row]
                if state == _FP_TEXT
                else None
            )
            out.append((row, (usable, filled, invalid, checks, fp)))
        return out

    def _kind_of(self, base: _Kind) -> int:
        k = self._kind_no.get(base)
        if k is None:
            k = self._kind_no[base] = len(self._kinds)
            self._kinds.append(base)
            self._kind_usable = np.append(self._kind_usable, base[0])
            self._kind_n = np.append(self._kind_n, 0)
            usable, _f, _i, checks = base
            shown = [c for c in dict.fromkeys(checks) if c != "required_missing"]
            head = "usable" if usable else "NOT usable"
            self._labels.append(f"{head}: {', '.join(shown)}" if shown else head)
            for cat, names in enumerate((base[1], base[2], tuple(set(checks)))):
                kinds, numbers = self._entries[2 * cat], self._entries[2 * cat + 1]
                for name in names:
                    kinds.append(k)
                    numbers.append(self._name_no(name))
            self._entry_arrays = None
        return k

    def _name_no(self, name: str) -> int:
        n = self._names.get(name)
        if n is None:
            n = self._names[name] = len(self._name_list)
            self._name_list.append(name)
        return n

    def _grow(self, n: int) -> None:
        if n <= len(self._kind):
            return
        size = max(n, 2 * len(self._kind), 1024)
        more = size - len(self._kind)
        self._kind = np.concatenate((self._kind, np.full(more, -1, np.int32)))
        self._fp = np.concatenate((self._fp, np.zeros(more, np.uint64)))
        self._fp_state = np.concatenate((self._fp_state, np.zeros(more, np.uint8)))

    def _drop(self, rows: np.ndarray) -> None:
        """Take the rows' contributions out (rows distinct, within the arrays)."""
        self._identical = None
        old = self._kind[rows]
        judged = old >= 0
        if not judged.any():
            return
        self._count_many(old[judged], -1)
        self._judged -= int(judged.sum())
        self._kind[rows] = -1
        if self._fp_text:
            for row in rows[self._fp_state[rows] == _FP_TEXT].tolist():
                del self._fp_text[row]
        self._fp_state[rows] = _NO_FP

    def _count(self, k: int, n: int) -> None:
        """One row's change: the term counts, if made, follow it (a live run reads them on
        every refresh; recounting all kinds each time cost a tail at 10k events/s ~9 %)."""
        self._kind_n[k] += n
        self.usable += n * self._kinds[k][0]
        if self._counts is not None:
            self._add_kind(self._counts, k, n)

    def _count_many(self, kinds: np.ndarray, sign: int) -> None:
        """Many rows' change (a loaded block): the term counts are made again when read."""
        n = np.bincount(kinds, minlength=len(self._kinds)) * sign
        self._kind_n += n
        self.usable += int(n[self._kind_usable].sum())
        self._counts = None

    def _term_counts(self) -> tuple[Counter[str], Counter[str], Counter[str]]:
        """Filled terms, invalid terms, finding checks: rows counted per kind, once a change."""
        if self._counts is None:
            if self._entry_arrays is None:
                e = self._entries
                self._entry_arrays = [
                    (np.asarray(e[2 * c], np.intp), np.asarray(e[2 * c + 1], np.intp))
                    for c in range(3)
                ]
            weights = self._kind_n.astype(np.float64)  # exact: counts are far below 2**53
            made = []
            for kinds, numbers in self._entry_arrays:
                totals = np.bincount(numbers, weights[kinds], len(self._name_list))
                names = self._name_list
                made.append(Counter({names[i]: int(totals[i]) for i in np.flatnonzero(totals > 0)}))
            self._counts = (made[0], made[1], made[2])
        return self._counts

    def _add_kind(
        self, counts: tuple[Counter[str], Counter[str], Counter[str]], k: int, n: int
    ) -> None:
        """`n` rows of kind `k` into (filled terms, invalid terms, finding checks)."""
        _usable, filled, invalid, checks = self._kinds[k]
        for t in filled:
            counts[0][t] += n
        for t in invalid:
            counts[1][t] += n
        for c in set(checks):
            counts[2][c] += n

    @property
    def filled(self) -> Counter[str]:
        """Rows per filled term (a term never filled counts 0)."""
        return self._term_counts()[0]

    @property
    def invalid(self) -> Counter[str]:
        return self._term_counts()[1]

    @property
    def findings(self) -> Counter[str]:
        """Rows per check found (once a row however often the row has it)."""
        return self._term_counts()[2]

    def _row_kind(self, row: int) -> _Kind | None:
        k = int(self._kind[row]) if 0 <= row < len(self._kind) else -1
        return self._kinds[k] if k >= 0 else None

    def row_usable(self, row: int) -> bool | None:
        e = self._row_kind(row)
        return e[0] if e is not None else None

    def row_checks(self, row: int) -> tuple[str, ...]:
        e = self._row_kind(row)
        return e[3] if e is not None else ()

    def row_label(self, row: int) -> str:
        """The table's quality cell: "usable", or "NOT usable: <checks>" ("" if not judged)."""
        k = int(self._kind[row]) if 0 <= row < len(self._kind) else -1
        return self._labels[k] if k >= 0 else ""

    def labels(self, n: int) -> list[str]:
        kinds = np.full(n, -1, np.int32)
        m = min(n, len(self._kind))
        kinds[:m] = self._kind[:m]
        table = [*self._labels, ""]  # -1: the last
        return [table[k] for k in kinds.tolist()]

    @property
    def identical_records(self) -> int:
        """Records whose filled values equal another specimen's (a stuck model, a cached reply)."""
        if self._identical is None:
            fps = self._fp[self._fp_state == _FP_NUMBER]
            _values, counts = np.unique(fps, return_counts=True)
            texts = Counter(self._fp_text.values())
            self._identical = int(counts[counts > 1].sum()) + sum(
                n for n in texts.values() if n > 1
            )
        return self._identical

    def summary(self, records: int) -> dict[str, Any]:
        """The documented `quality` object of `herbdesk summary` (docs/quality.md).

        `records` is the number of finished specimens: failed ones count as not usable.
        """
        terms = {
            t: {"filled": n, "valid": n - self.invalid[t], "invalid": self.invalid[t]}
            for t, n in sorted(self.filled.items())
            if n > 0
        }
        return {
            "records": records,
            "judged": self._judged,
            "usable": self.usable,
            "usable_rate": round(self.usable / records, 4) if records else None,
            "identical_records": self.identical_records,
            "terms": terms,
            "findings": {c: n for c, n in sorted(self.findings.items()) if n > 0},
        }
