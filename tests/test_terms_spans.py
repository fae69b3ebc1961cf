"""Term values kept where they are in the log (runstate/terms.py): an opened log's rows read
their values back from the file when shown, and the first whole-column look decodes them all.
Every answer must be the one of the values decoded at once (the live fold, event by event).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from herbdesk.events import EventBus, EventLogWriter, EventType, fastscan
from herbdesk.events.reader import iter_events
from herbdesk.runstate import terms as terms_mod
from herbdesk.runstate.load import load_state
from herbdesk.runstate.state import RunState
from herbdesk.runstate.terms import BufferSpans, FileSpans, TermColumns

NAMES = ("Quercus robur L.", "Acer rubrum", "Carex \u00e9l\u00e9gante", "Betula", "")
PLACES = ("Qu\u00e9bec", "Ottawa", "M\u00fcnchen", "3 km N of Lake \u00c5", "")


def _write_run(path: Path, n: int, seed: int = 5) -> None:
    """A run's log: specimens finished, some failed, some finished again with new values."""
    rng = random.Random(seed)
    bus = EventBus("run-1", EventLogWriter(path))
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": n})
    for k in range(n + n // 3):
        i = k if k < n else rng.randrange(n)  # the last third: resumed specimens again
        ok = rng.random() < 0.85
        data = {"image": f"{i}.jpg", "success": ok, "fields_extracted": 3}
        if ok:
            data["dwc"] = {
                "scientificName": rng.choice(NAMES),
                "catalogNumber": f"MO-{i}-{k}",
                "locality": rng.choice(PLACES),
            }
        else:
            data["error"] = {"kind": "bad_reply", "message": "no"}
        et = EventType.SPECIMEN_COMPLETED if ok else EventType.SPECIMEN_FAILED
        bus.emit(et, specimen_id=f"s{i}", sequence=i, data=data)
    bus.emit(EventType.EXTRACTION_COMPLETED, data={})


def _event_by_event(path: Path) -> RunState:
    state = RunState()
    for ev in iter_events(path):
        state.apply(ev)
    return state


def test_an_opened_log_reads_values_back_and_builds_them_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "events.jsonl"
    _write_run(log, 900)
    ref = _event_by_event(log)
    got, _ = load_state(log)
    assert isinstance(got.terms.source, FileSpans)
    assert got.terms.pending() > 600  # nothing decoded while opening
    for row in range(0, got.rows, 7):  # cells, one row read back at a time
        for term in ("scientificName", "catalogNumber", "locality"):
            assert got.terms.value(term, row) == ref.terms.value(term, row)
        assert got.terms.row_values(row) == ref.terms.row_values(row)
    assert got.terms.pending() > 600
    monkeypatch.setattr(terms_mod, "BUILD_BATCH", 97)  # many batches, a ragged last one
    needle = "qu\u00e9bec"
    assert got.terms.hits(needle, got.rows).tolist() == ref.terms.hits(needle, ref.rows).tolist()
    assert got.terms.pending() == 0
    assert got.terms.as_lists(got.rows) == ref.terms.as_lists(ref.rows)
    for desc in (False, True):
        a = got.terms.sorted_rows("scientificName", got.rows, desc)
        b = ref.terms.sorted_rows("scientificName", ref.rows, desc)
        assert a.tolist() == b.tolist()


def test_a_later_finish_replaces_values_wherever_they_are() -> None:
    one = '{"locality":"Qu\u00e9bec"}'.encode()
    two = b'{"locality":"Ottawa","country":"Canada"}'
    terms = TermColumns()
    terms.source = BufferSpans(one + two)
    rows = np.array([0, 1, 2], np.int64)
    at, n = np.array([0, len(one), 0]), np.array([len(one), len(two), 0], np.int32)
    terms.set_spans(rows, at, n)
    assert [terms.value("locality", r) for r in range(3)] == ["Qu\u00e9bec", "Ottawa", ""]
    terms.set_row(1, {"locality": "Hull"})  # a finish folded event by event
    assert terms.value("locality", 1) == "Hull" and terms.value("country", 1) == ""
    terms.set_row(0, None)  # a failed finish: no values
    assert terms.value("locality", 0) == ""
    terms.set_spans(np.array([1]), at[1:2], n[1:2])  # in the log again
    assert terms.row_values(1) == {"locality": "Ottawa", "country": "Canada"}
    terms.set_spans(np.array([1]), np.array([0]), np.array([0], np.int32))  # finished, none
    assert terms.row_values(1) == {} and terms.pending() == 0
    terms.set_spans(np.array([2]), at[1:2], n[1:2])
    assert terms.as_lists(3) == {
        "country": ["", "", "Canada"],
        "locality": ["", "", "Ottawa"],
    }
    # after the build, the live fold adds values again: a known one keeps its code
    terms.set_row(0, {"locality": "Ottawa", "country": "Mexico"})
    col = terms.column("locality")
    assert col is not None and col.codes[0] == col.codes[2] != 0
    assert terms.as_lists(3) == {
        "country": ["Mexico", "", "Canada"],
        "locality": ["Ottawa", "", "Ottawa"],
    }


def test_a_log_changed_since_it_was_opened_gives_no_values_not_an_error(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    _write_run(log, 300)
    got, _ = load_state(log)
    text = log.read_bytes()
    row = got.rows - 1
    assert got.terms.value("catalogNumber", 1)  # read back while the file is unchanged
    log.write_bytes(text.replace(b"{", b"(")[: len(text) // 2])  # rewritten, then cut short
    assert got.terms.value("catalogNumber", 1)  # a row read back is kept (a few screens)
    assert got.terms.value("catalogNumber", row) == ""
    assert got.terms.value("catalogNumber", 0) == ""
    assert got.terms.hits("mo-", got.rows).sum() == 0
    assert got.terms.pending() == 0


def test_without_the_compiled_reader_the_build_decodes_in_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "events.jsonl"
    _write_run(log, 200)
    ref = _event_by_event(log)
    got, _ = load_state(log)
    assert got.terms.pending()
    monkeypatch.setattr(fastscan, "AVAILABLE", False)
    assert got.terms.as_lists(got.rows) == ref.terms.as_lists(ref.rows)


def test_search_text_is_casefolded_whatever_the_values_hold() -> None:
    """The search text is made in one casefold unless some value holds its separator (NUL)."""
    terms = TermColumns()
    terms.set_row(0, {"locality": "STRASSE \u03a3\u039f\u03a3"})
    terms.set_row(1, {"locality": "Stra\u00dfe"})
    assert terms.hits("strasse", 2).tolist() == [True, True]  # \u00df folds to "ss"
    assert terms.hits("\u03c3\u03bf\u03c3", 2).tolist() == [True, False]
    terms.set_row(2, {"locality": "a\x00b"})  # indexed later, the other way
    assert terms.hits("a b", 3).tolist() == [False, False, True]


def test_rows_between_spans_set_far_apart_have_none() -> None:
    terms = TermColumns()
    terms.source = BufferSpans(b'{"country":"Canada"}')
    terms.set_spans(np.array([3]), np.array([0]), np.array([20], np.int32))
    terms.set_spans(np.array([5000]), np.array([0]), np.array([20], np.int32))  # grows
    assert terms.pending() == 2
    assert terms.as_lists(5001)["country"].count("Canada") == 2


@pytest.mark.parametrize(
    "alphabet", ["abAB k", "ab\u00e9\u00df k", "a\u2013b\u01c5 ", "a\U0001f33fb\u00e9 "]
)
def test_value_search_finds_what_in_finds(alphabet: str) -> None:
    """The search text is compared in numpy whatever width its characters need (one, two or
    four bytes): every value holding the casefolded needle, no other."""
    rng = random.Random(alphabet)
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 7))) for _ in range(400)]
    terms = TermColumns()
    for row, v in enumerate(values):
        terms.set_row(row, {"locality": v})
    for _ in range(60):
        needle = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 4))).casefold()
        want = [needle in v.strip().casefold() for v in values]  # values are kept stripped
        assert terms.hits(needle, len(values)).tolist() == want, needle
    assert not terms.hits("\U0001f600", len(values)).any()  # wider than the text's characters


def test_a_background_prepare_keeps_what_the_folds_set_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window prepares an opened log's values on a thread of its own while the folds go
    on: a row set again between two of its batches keeps the new values, not the old span's."""
    import threading

    records = [f'{{"locality":"Place {i}","scientificName":"Carex {i % 7}"}}' for i in range(40)]
    data = "".join(records).encode()
    starts = np.cumsum([0] + [len(r.encode()) for r in records])[:-1]
    terms = TermColumns()
    terms.source = BufferSpans(data)
    rows = np.arange(40, dtype=np.int64)
    terms.set_spans(rows, starts, np.array([len(r) for r in records], np.int32))
    monkeypatch.setattr(terms_mod, "BUILD_BATCH", 8)  # five batches
    first_batch, refolded = threading.Event(), threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 8:  # after the first batch: the GUI thread refolds rows of later ones
            first_batch.set()
            assert refolded.wait(10)

    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(terms.prepare(progress)))
    worker.start()
    assert first_batch.wait(10)
    terms.set_row(20, {"locality": "Hull"})  # decoded at once
    terms.set_spans(np.array([30]), starts[3:4], np.array([len(records[3])], np.int32))
    terms.set_row(2, {"locality": "Gatineau"})  # a row the first batch already filled
    refolded.set()
    worker.join(10)
    assert result == [True] and terms.pending() == 0
    assert terms.value("locality", 20) == "Hull" and terms.value("scientificName", 20) == ""
    assert terms.value("locality", 30) == "Place 3"  # the span set meanwhile, not Place 30
    assert terms.value("locality", 2) == "Gatineau"
    assert terms.value("locality", 39) == "Place 39"
    by_place = terms.sorted_rows("locality", 40, False)
    assert [terms.value("locality", int(r)) for r in by_place[:3]] == [
        "Gatineau",
        "Hull",
        "Place 0",
    ]


def test_a_stopped_prepare_leaves_the_rest_in_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [f'{{"locality":"Place {i}"}}' for i in range(30)]
    data = "".join(records).encode()
    starts = np.cumsum([0] + [len(r) for r in records])[:-1]
    terms = TermColumns()
    terms.source = BufferSpans(data)
    terms.set_spans(np.arange(30), starts, np.array([len(r) for r in records], np.int32))
    monkeypatch.setattr(terms_mod, "BUILD_BATCH", 10)
    seen: list[int] = []
    assert not terms.prepare(lambda done, total: seen.append(done), lambda: bool(seen))
    assert seen == [10] and terms.pending() == 20
    assert terms.value("locality", 25) == "Place 25"  # still read back from the log
    assert terms.hits("place 2", 30).sum() == 11  # a later look finishes the build
