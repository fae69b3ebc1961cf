"""Quality counts over a run's specimens, kept right when a specimen is finished again.

RunState folds every source (live, opened, tailed, distributed) through one QualityTally:
a row's newest quality replaces its earlier one (a resumed or re-delivered specimen), so the
counts are always over distinct specimens, as the success counts are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

# What a row contributes: usable, filled terms, invalid terms, finding check names, fingerprint
_Entry = tuple[bool, tuple[str, ...], tuple[str, ...], tuple[str, ...], str | None]


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
    def __init__(self) -> None:
        self._rows: dict[int, _Entry] = {}
        self.usable = 0
        self.filled: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self.findings: Counter[str] = Counter()
        self._fingerprints: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._rows)

    def set(self, row: int, quality: Mapping[str, Any] | None) -> None:
        """The row's quality is now `quality` (None or absent: the row is not judged)."""
        old = self._rows.pop(row, None)
        if old is not None:
            self._add(old, -1)
        new = entry_of(quality)
        if new is not None:
            self._rows[row] = new
            self._add(new, 1)

    def clear_row(self, row: int) -> None:
        self.set(row, None)

    def _add(self, e: _Entry, sign: int) -> None:
        usable, filled, invalid, checks, fp = e
        self.usable += sign * usable
        for t in filled:
            self.filled[t] += sign
        for t in invalid:
            self.invalid[t] += sign
        for c in set(checks):
            self.findings[c] += sign
        if fp:
            self._fingerprints[fp] += sign

    def row_usable(self, row: int) -> bool | None:
        e = self._rows.get(row)
        return e[0] if e is not None else None

    def row_checks(self, row: int) -> tuple[str, ...]:
        e = self._rows.get(row)
        return e[3] if e is not None else ()

    def row_label(self, row: int) -> str:
        """The table's quality cell: "usable", or "NOT usable: <checks>" ("" if not judged)."""
        e = self._rows.get(row)
        if e is None:
            return ""
        checks = [c for c in dict.fromkeys(e[3]) if c != "required_missing"]
        head = "usable" if e[0] else "NOT usable"
        return f"{head}: {', '.join(checks)}" if checks else head

    def labels(self, n: int) -> list[str]:
        return [self.row_label(r) for r in range(n)]

    @property
    def identical_records(self) -> int:
        """Records whose filled values equal another specimen's (a stuck model, a cached reply)."""
        return sum(n for n in self._fingerprints.values() if n > 1)

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
            "judged": len(self._rows),
            "usable": self.usable,
            "usable_rate": round(self.usable / records, 4) if records else None,
            "identical_records": self.identical_records,
            "terms": terms,
            "findings": {c: n for c, n in sorted(self.findings.items()) if n > 0},
        }
