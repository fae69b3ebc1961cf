"""The typed fast path of bulk folds (events/bulk.py) must give exactly what the general path
gives, for any value a specimen line's fields may hold: right types, wrong types, nulls,
missing fields, numbers out of range, odd metrics and errors."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from test_perf_bulk import _same_state

import herbdesk.runstate.chunks as bulkload
from herbdesk.events import bulk, fastscan
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import ReadStats, iter_line_chunks
from herbdesk.runstate.chunks import apply_chunk
from herbdesk.runstate.state import RunState

MISSING = object()
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 7, 2**53, 2**53 + 1, 2**63, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 0.5, 0.99, 1e300, -3.5]),
    st.text(max_size=6),
    st.sampled_from(["", "12", "0.7", "a.jpg"]),
    st.just({"kind": "bad_reply", "message": "no JSON"}),
    st.just([1, 2]),
    st.just(MISSING),
)
_NAME = st.sampled_from(["a.jpg", "", "b/c.jpg"])
_INT = st.integers(0, 100)
_FLOAT = st.one_of(st.floats(0, 1), st.integers(0, 5))
VALID = {
    "image": _NAME,
    "path": _NAME,
    "success": st.booleans(),
    "fields_extracted": _INT,
    "confidence": _FLOAT,
    "processing_time_ms": _FLOAT,
    "attempts": _INT,
    "tokens": _INT,
    "cost_usd": _FLOAT,
    "error": st.sampled_from([{"kind": "k", "message": "m"}, "boom", {"message": 3}]),
    "dwc": st.sampled_from(
        [
            {"scientificName": "Quercus robur L.", "country": "Canada"},
            {"catalogNumber": "MO-1", "dwc:Locality": " Ottawa ", "bogus": "x"},
            {"scientificName": {"value": "Acer", "confidence": 0.4}, "decimalLatitude": 45.5},
            {},
        ]
    ),
}
FIELDS = tuple(VALID)


def _mostly_valid(field: str) -> st.SearchStrategy[Any]:
    v = VALID[field]
    # nine values in ten have the type the fast path takes, so whole lines often do too
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda good: v if good else ODD)


METRICS = st.sampled_from(
    [MISSING, MISSING, None, {}, {"total_processed": 3}, {"a": [1, {"b": 2}]}, [1], "x", 5]
)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    obj: dict[str, Any] = {
        "schema_version": draw(st.sampled_from([1] * 9 + ["1", None, MISSING])),
        "event_type": draw(
            st.sampled_from(
                [
                    "specimen.queued",
                    "specimen.processing",
                    "specimen.completed",
                    "specimen.failed",
                    "specimen.completed",
                    "specimen.failed",
                    "specimen.retrying",
                    "extraction.completed",
                    7,
                ]
            )
        ),
        "seq": draw(
            st.one_of(st.integers(0, 40), st.integers(0, 40), st.sampled_from([-1, 2**63, "3"]))
        ),
        "timestamp": draw(
            st.sampled_from(["2026-11-26T10:00:00.000Z", "2026-11-26T10:00:01", "", "junk"])
        ),
        "run_id": draw(st.sampled_from(["r1", "r1", "", None, 3])),
        "specimen_id": draw(st.sampled_from(["s1", "s2", "s3", "s1", "s2", None, 4, MISSING])),
        "sequence": draw(st.sampled_from([1, 2, 3, None, MISSING, 2.0, "2"])),
        "data": draw(
            st.one_of(
                st.fixed_dictionaries({}, optional={f: _mostly_valid(f) for f in FIELDS}),
                st.fixed_dictionaries({}, optional={f: _mostly_valid(f) for f in FIELDS}),
                st.sampled_from([None, [], "x"]),
            )
        ),
        "metrics": draw(METRICS),
    }

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not MISSING}
        return v

    return json.dumps(clean(obj), separators=(",", ":")).encode()  # ints past 64 bits too


def _fold(data: bytes, fast: bool) -> RunState:
    """The Python path (no compiled scanner: tests/test_fastscan.py covers that one), with the
    typed decode (`fast`) or the general path for every line."""
    state, stats = RunState(), ReadStats()
    saved = bulkload.decode_bulk, fastscan.AVAILABLE
    fastscan.AVAILABLE = False
    if not fast:
        bulkload.decode_bulk = lambda _line: None  # type: ignore[assignment]
    try:
        for chunk in iter_line_chunks(io.BytesIO(data), chunk_bytes=512):
            assert chunk.records is None
            apply_chunk(state, chunk, stats, AutoDecoder())
    finally:
        bulkload.decode_bulk, fastscan.AVAILABLE = saved
    state.bad_lines = stats.bad_lines
    return state


@settings(max_examples=150, deadline=None)
@given(st.lists(lines(), min_size=1, max_size=30))
def test_fast_path_equals_general_path(log: list[bytes]) -> None:
    data = b"\n".join(log) + b"\n"
    _same_state(_fold(data, fast=True), _fold(data, fast=False))
    # about one line in five takes the fast path; test_fast_path_cases_that_random_logs_rarely_hit
    # sends every specimen type through it deterministically


def test_fast_path_takes_ordinary_lines_and_leaves_the_rest() -> None:
    good = orjson.dumps(
        {
            "schema_version": 1,
            "seq": 3,
            "event_type": "specimen.completed",
            "timestamp": "2026-11-26T10:00:00.000Z",
            "run_id": "r",
            "specimen_id": "s",
            "data": {"success": True, "confidence": 0.9, "extra": {"ignored": [1]}},
            "metrics": {"total_processed": 1},
        }
    )
    assert bulk.decode_bulk(good) is not None
    for bad in (
        good.replace(b'"confidence":0.9', b'"confidence":"0.9"'),  # converted by the general path
        good.replace(b'"seq":3', b'"seq":-3'),
        good.replace(b'"metrics":{"total_processed":1}', b'"metrics":[1]'),
        good.replace(b"specimen.completed", b"validation.checkpoint"),
        good.replace(b'"schema_version":1,', b""),
        good[:-3],
    ):
        assert bulk.decode_bulk(bad) is None, bad


def test_fast_path_cases_that_random_logs_rarely_hit() -> None:
    def line(seq: int, et: str, data: dict[str, Any], **extra: Any) -> bytes:
        obj = {"schema_version": 1, "seq": seq, "event_type": et, "run_id": "r"}
        obj.update(specimen_id="s1", timestamp="2026-11-26T10:00:00Z", data=data)
        obj.update(extra)
        return orjson.dumps(obj)

    done = "specimen.completed"
    log = [
        line(1, "specimen.queued", {"image": "a.jpg", "path": "/x/a.jpg"}),
        line(2, done, {"confidence": 1, "error": "e"}, metrics={"total_processed": 1}),
        line(
            3,
            done,
            {"success": False, "error": {"kind": "k", "message": "m"}},
            specimen_id="s2",
            metrics={},
        ),
        line(4, "specimen.failed", {"tokens": 2**60, "cost_usd": 2**60}, metrics={}),
        line(6, "specimen.processing", {"image": "b.jpg"}, metrics=None),
    ]
    data = b"\n".join(log) + b"\n"
    assert all(bulk.decode_bulk(x) is not None for x in log)
    fast = _fold(data, fast=True)
    _same_state(fast, _fold(data, fast=False))
    assert fast.latest_metrics == {"total_processed": 1}  # empty snapshots replace nothing
    assert fast.error[1] == "k: m" and fast.row_status[1] == "failed"
    assert fast.image[0] == "a.jpg" and fast.path[0] == "/x/a.jpg"
    assert fast.seq_gaps == 1 and fast.tokens == 0 and fast.row_status[0] == "processing"


def test_damaged_lines_never_crash_the_fast_path_and_fold_as_the_general_path() -> None:
    head = (
        b'{"schema_version":1,"seq":1,"event_type":"specimen.completed","run_id":"r",'
        b'"specimen_id":"s1","timestamp":"2026-11-26T10:00:00Z",'
    )
    cases = [
        head + b'"data":{"image":"\xff"}}',  # invalid UTF-8 in a field the fold reads
        head + b'"data":{},"metrics":{"a":"\xff"}}',  # ... in the raw metrics
        head + b'"data":{"success":false,"error":{"kind":"k","x":1e400}}}',  # overflow in error
        head + b'"data":{"success":false,"error":"\xff"}}',
        head + b'"data":{"x":"\xed\xa0\x80"}}',  # a lone surrogate as raw bytes, skipped field
        head + b'"data":{"image":"M\xc3\xbcller.jpg"}}',  # valid text beyond ASCII
    ]
    for depth in (500, 1000, 1030):  # msgspec's nesting limit is below orjson's
        cases.append(head + b'"data":{"x":' + b"[" * depth + b"]" * depth + b"}}")
    for line in cases:
        data = line + b"\n"
        _same_state(_fold(data, fast=True), _fold(data, fast=False))
    # the one known difference: a number past a double's range in a field the fold never reads
    inf = head + b'"data":{},"metrics":{"a":1e400}}\n'
    fast, general = _fold(inf, fast=True), _fold(inf, fast=False)
    assert (general.events, general.bad_lines) == (0, 1)
    assert (fast.events, fast.bad_lines, fast.latest_metrics) == (1, 0, {})
