"""Sorting and filtering helpers for the specimen table: row permutations over RunState columns
with numpy or Python's C-level `sort`, status filter sets and row ranges."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from herbdesk.runstate.columns import OptionalFloats
from herbdesk.runstate.state import STATUS_PROCESSING, STATUS_RETRYING, RunState
from herbdesk.ui.columns import (
    COL_CONFIDENCE,
    COL_COST,
    COL_ERROR,
    COL_FIELDS,
    COL_FILE,
    COL_QUALITY,
    COL_SEQ,
    COL_SPECIMEN,
    COL_STATUS,
    COL_TIME,
    NUMERIC_COLUMNS,
    STATUS_RANK,
    column_term,
)


def _text_key(s: str) -> str | None:
    return s.casefold() or None  # empty sorts last, like a missing number


def _status_key(s: str) -> int:
    return STATUS_RANK.get(s, len(STATUS_RANK))


def sort_source(state: RunState, column: int) -> tuple[Sequence[Any], Callable[[Any], Any] | None]:
    """The state column behind a table column and how to turn a cell into its sort key."""
    sources: dict[int, tuple[Sequence[Any], Callable[[Any], Any] | None]] = {
        COL_SEQ: (state.sequence, None),
        COL_STATUS: (state.row_status, _status_key),
        COL_SPECIMEN: (state.specimen_id, None),
        COL_FILE: (state.image, _text_key),
        COL_FIELDS: (state.fields_extracted, None),
        COL_CONFIDENCE: (state.confidence, None),
        COL_TIME: (state.time_ms, None),
        COL_COST: (state.cost_usd, None),
        COL_ERROR: (state.error, _text_key),
        COL_QUALITY: (state.quality.labels(len(state.specimen_id)), _text_key),
    }
    return sources[column]


def sorted_rows(state: RunState, n: int, column: int, descending: bool) -> list[int]:
    """State rows 0..n-1 ordered by a column; missing values last in either direction.

    Stable both ways: equal keys keep run order. Number columns sort in numpy (a stable
    argsort over float64 with NaN for missing), text columns with Python's C-level sort.
    """
    out: list[int] = sorted_array(state, n, column, descending).tolist()
    return out


def sorted_array(state: RunState, n: int, column: int, descending: bool) -> np.ndarray:
    term = column_term(column)
    if term is not None:  # ranks of the term's distinct values, then one argsort
        return state.terms.sorted_rows(term, n, descending)
    if column in NUMERIC_COLUMNS:
        try:
            return _sorted_numeric(state, n, column, descending)
        except (OverflowError, TypeError, ValueError):  # a value no float64 holds exactly
            pass
    col, key = sort_source(state, column)
    values: Sequence[Any] = col[:n] if key is None else [key(v) for v in col[:n]]
    present = [r for r in range(n) if values[r] is not None]
    missing = [r for r in range(n) if values[r] is None]
    present.sort(key=values.__getitem__, reverse=descending)  # stable both ways
    return np.array(present + missing, dtype=np.int64)


def _sorted_numeric(state: RunState, n: int, column: int, descending: bool) -> np.ndarray:
    col, _key = sort_source(state, column)
    if isinstance(col, OptionalFloats):  # NaN already stands for "no value"
        values = np.frombuffer(col, np.float64, n)
    else:
        nan = math.nan
        values = np.fromiter((nan if v is None else v for v in col[:n]), np.float64, n)
    if np.isinf(values).any() or np.abs(values[~np.isnan(values)]).max(initial=0) > 2**53:
        raise OverflowError("beyond exact float64")
    missing = np.isnan(values)
    present = np.flatnonzero(~missing)
    keys = values[present]
    order = present[np.argsort(-keys if descending else keys, kind="stable")]
    return np.concatenate([order, np.flatnonzero(missing)]).astype(np.int64, copy=False)


def status_set(status: str | None) -> frozenset[str] | None:
    """The statuses a status filter shows (None: all); processing includes retrying."""
    if not status or status == "All":
        return None
    if status == STATUS_PROCESSING:
        return frozenset({STATUS_PROCESSING, STATUS_RETRYING})
    return frozenset({status})


def ranges(sorted_rows: Sequence[int]) -> list[tuple[int, int]]:
    """(first, last) runs of consecutive values in an ascending sequence."""
    out: list[tuple[int, int]] = []
    for r in sorted_rows:
        if out and out[-1][1] == r - 1:
            out[-1] = (out[-1][0], r)
        else:
            out.append((r, r))
    return out
