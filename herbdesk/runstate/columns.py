"""Column types of RunState: per-row floats with None as NaN, and the rows changed for views."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, SupportsIndex, cast, overload

import numpy as np

NAN = float("nan")
set_float = array.__setitem__
"""array('d').__setitem__ unbound: the folds' per-row store, without a method lookup."""
append_float = array.append
"""array('d').append unbound, for the same reason."""


if TYPE_CHECKING:
    _FloatArray = array[float]
else:
    _FloatArray = array  # not subscriptable at run time before Python 3.12


class ChangedRows:
    """Rows touched since the views last looked, as a sorted array of distinct rows.

    The event-by-event fold adds rows one at a time; the column fold of a bulk load adds whole
    arrays (a million-event load touches every row: putting them in a Python set cost ~8 % of
    the fold, and the views wanted an array anyway).
    """

    def __init__(self) -> None:
        self._single: set[int] = set()
        self._arrays: list[np.ndarray] = []

    def add(self, row: int) -> None:
        self._single.add(row)

    def add_array(self, rows: np.ndarray) -> None:
        self._arrays.append(rows)

    def __len__(self) -> int:
        """How many were added, counting repeats (0: nothing changed)."""
        return len(self._single) + sum(len(a) for a in self._arrays)

    def rows(self) -> np.ndarray:
        """The distinct rows touched so far, ascending (int64)."""
        parts = [a for a in self._arrays if len(a)]
        if self._single:
            parts.append(np.fromiter(self._single, np.int64, len(self._single)))
        if not parts:
            return np.empty(0, np.int64)
        # rows are small non-negative ints: marking them costs a fraction of np.unique
        # (which hashed or sorted a million rows for 0.1-0.3 s)
        seen = np.zeros(max(int(a.max()) for a in parts) + 1, np.bool_)
        for a in parts:
            seen[a] = True
        return np.flatnonzero(seen)


def row_in(rows: np.ndarray, row: int) -> bool:
    """Whether `row` is in a sorted array of rows (`RunState.take_changed_rows`)."""
    i = int(np.searchsorted(rows, row))
    return i < len(rows) and int(rows[i]) == row


class OptionalFloats(_FloatArray):
    """A column of floats or None: array('d') with NaN standing for None.

    Eight bytes a row instead of a list slot plus a float object (32 bytes): a 333,000-row run
    holds three such columns. Reading gives None where nothing was recorded, as a list would;
    numpy views it directly (`np.frombuffer`). NaN itself is never a value: `values.num` refuses it.
    """

    def __new__(cls, values: Iterable[float | None] = ()) -> OptionalFloats:
        return cast(
            OptionalFloats, super().__new__(cls, "d", (NAN if v is None else v for v in values))
        )

    @overload  # type: ignore[override]
    def __getitem__(self, i: SupportsIndex) -> float | None: ...
    @overload
    def __getitem__(self, i: slice) -> list[float | None]: ...
    def __getitem__(self, i: SupportsIndex | slice) -> float | list[float | None] | None:
        if isinstance(i, slice):
            return [None if v != v else v for v in array.__getitem__(self, i)]
        v = array.__getitem__(self, i)
        return None if v != v else v

    def __setitem__(self, i: SupportsIndex, v: float | None) -> None:  # type: ignore[override]
        set_float(self, i, NAN if v is None else v)

    def append(self, v: float | None) -> None:
        append_float(self, NAN if v is None else v)

    def __iter__(self) -> Iterator[float | None]:  # type: ignore[override]
        return (None if v != v else v for v in array.__iter__(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, OptionalFloats)):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def tolist(self) -> list[float | None]:  # type: ignore[override]
        return list(self)

    def __copy__(self) -> OptionalFloats:
        return OptionalFloats(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> OptionalFloats:
        return OptionalFloats(self)

    __hash__ = None
