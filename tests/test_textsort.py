"""Term sort order in numpy (runstate/textsort.py) is exactly Python's string order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herbdesk.runstate import textsort

SEP = "\x00"


def numpy_ranks(values: list[str], monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    monkeypatch.setattr(textsort, "PYTHON_BELOW", 0)  # the numpy path even for a few values
    lens = [len(v) + 1 for v in values]
    starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
    return textsort.ranks(SEP.join(values), starts, SEP)


def python_ranks(values: list[str]) -> list[int]:
    distinct = sorted(set(values))
    return [distinct.index(v) for v in values]


# letters sharing long prefixes, one-byte, two-byte and astral characters
TEXT = st.text(alphabet=st.sampled_from("ab \u00e9\u4e2d\U0001f600"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=60))
def test_ranks_match_pythons_order(values: list[str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        assert numpy_ranks(values, mp).tolist() == python_ranks(values)


def test_ties_beyond_many_chunks_and_the_python_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values alike for 40 characters, then differing: many chunks, then few ties left."""
    head = "12 km N of Carex Lake, Saskatchewan road "
    values = [head + tail for tail in ("b", "a", "", "ab", "a", "\u00e9", "B")] * 500
    monkeypatch.setattr(textsort, "_FINISH_TIES", 10)  # chunks all the way
    assert numpy_ranks(values, monkeypatch).tolist() == python_ranks(values)
    monkeypatch.setattr(textsort, "_FINISH_TIES", 10_000)  # Python finishes the ties
    assert numpy_ranks(values, monkeypatch).tolist() == python_ranks(values)
