"""The compiled scan (events/_scan.c) and the column fold (fastfold.py) must give exactly the
state the general path gives: every column, counter, series, float bit, bad line and index
entry, on realistic and on hostile logs.

The reference folds every line through orjson + `RunState.apply_object` / `codec.from_dict`
(one LineChunk of plain lines, `decode_bulk` disabled). The scanned path runs with the
scanner forced on, `MIN_SEGMENT` at 1 (every scanned run folds in columns) and at its
default, and with several block sizes so segments cross blocks. `fold_records` is wrapped so
a test cannot pass by never reaching the column fold.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import struct
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import herbdesk.runstate.chunks as bulkload
from herbdesk.events import bulk, fastscan
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import EventIndex, LineChunk, ReadStats, iter_line_chunks
from herbdesk.events.types import parse_ts
from herbdesk.quality.tally import QualityTally
from herbdesk.runstate import fold_columns as fastfold
from herbdesk.runstate.chunks import apply_chunk
from herbdesk.runstate.columns import ChangedRows
from herbdesk.runstate.state import RunState
from herbdesk.runstate.terms import BufferSpans, TermColumns
from herbdesk.runstate.values import count as _count
from herbdesk.runstate.values import num as _num

pytestmark = pytest.mark.skipif(fastscan._scan is None, reason="events/_scan.c is not built")

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}
CHUNK_SIZES = ((97, None), (4096, 13), (1 << 20, None))


# --------------------------------------------------------------------------- the two folds
def _no_bulk(_line: bytes) -> None:
    return None


@dataclass
class Fold:
    state: RunState
    stats: ReadStats
    index: EventIndex
    column_lines: int = 0  # lines fold_records folded


def _fold_reference(data: bytes) -> Fold:
    """The general path only: plain lines, orjson + apply_object / from_dict for each."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    chunk = LineChunk(lines, starts, 1, len(data))
    state, stats, index = RunState(), ReadStats(), EventIndex()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bulkload, "decode_bulk", _no_bulk)
        mp.setattr(fastscan, "AVAILABLE", False)
        apply_chunk(state, chunk, stats, AutoDecoder(), index)
    state.bad_lines = stats.bad_lines
    return Fold(state, stats, index)


def _fold_scanned(
    data: bytes,
    chunk_bytes: int,
    first_bytes: int | None = None,
    min_segment: int = 1,
    msgspec_path: bool = False,
    lazy: bool = True,
) -> Fold:
    """The compiled scan; `msgspec_path` leaves decode_bulk on for lines folded one by one;
    `lazy`: the column fold keeps where values are (read back from `data`, as an opened
    log's are from its file), else it decodes them at once."""
    state, stats, index = RunState(), ReadStats(), EventIndex()
    if lazy:
        state.terms.source = BufferSpans(data)
    fold = Fold(state, stats, index)
    real = fastfold.fold_records

    def counting(
        st_: RunState, block: bytes, recs: fastscan.Columns, scanner: Any, base: int = 0
    ) -> None:
        fold.column_lines += len(recs)
        real(st_, block, recs, scanner, base)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastscan, "AVAILABLE", True)
        mp.setattr(bulkload, "MIN_SEGMENT", min_segment)
        mp.setattr(bulkload, "fold_records", counting)
        if not msgspec_path:
            mp.setattr(bulkload, "decode_bulk", _no_bulk)
        dec = AutoDecoder()
        for chunk in iter_line_chunks(io.BytesIO(data), chunk_bytes, first_bytes):
            assert chunk.records is not None  # the block really was scanned
            apply_chunk(state, chunk, stats, dec, index)
    state.bad_lines = stats.bad_lines
    return fold


# --------------------------------------------------------------------------- comparing
_NAN_BITS = struct.unpack("<q", struct.pack("<d", math.nan))[0]


def _bits(x: float) -> int:
    return _NAN_BITS if x != x else struct.unpack("<q", struct.pack("<d", x))[0]


def _canon(v: Any, n_rows: int = 0) -> Any:
    """A value with its exact types and float bits (any NaN is one NaN; -0.0 is not 0.0)."""
    if isinstance(v, array):
        if v.typecode == "d":
            return ("array.d", [_bits(x) for x in np.frombuffer(v, np.float64).tolist()])
        return (f"array.{v.typecode}", v.tolist())
    if isinstance(v, float):
        return (type(v).__name__, _bits(v))
    if isinstance(v, (bool, int, str, bytes)) or v is None:
        return (type(v).__name__, v)
    if isinstance(v, (list, tuple, deque)):
        return (type(v).__name__, [_canon(x) for x in v])
    if isinstance(v, (set, frozenset)):
        return (type(v).__name__, sorted(v, key=repr))
    if isinstance(v, dict):
        return ("dict", [(_canon(k), _canon(x)) for k, x in v.items()])
    if isinstance(v, ChangedRows):  # the rows the views will be handed, however added
        return ("ChangedRows", v.rows().tolist())
    if isinstance(v, TermColumns):  # each row's values (interned values may differ)
        return ("TermColumns", _canon(v.as_lists(n_rows)))
    if isinstance(v, QualityTally):  # each row's quality; the counts follow from them
        rows = v.entries()
        return ("QualityTally", _canon(rows), _canon(v.summary(len(rows))))
    raise TypeError(f"no canonical form for {type(v)}")


def _diff_states(a: RunState, b: RunState) -> list[str]:
    """Names of the attributes that differ (every attribute of RunState, exactly)."""
    for s in (a, b):  # row_of may index rows lazily (a property): have it index them all
        assert isinstance(s.row_of, dict)
    assert vars(a).keys() == vars(b).keys()
    out = []
    for name in vars(a):
        x, y = getattr(a, name), getattr(b, name)
        if name == "type_counts":  # a count per type; the order types first appear is free
            same = _canon(dict(sorted(x.items()))) == _canon(dict(sorted(y.items())))
        else:
            same = _canon(x, a.rows) == _canon(y, b.rows)
        if not same:
            out.append(name)
    if list(a.row_of.items()) != list(b.row_of.items()):
        out.append("row_of")
    return out


def _assert_same(got: Fold, ref: Fold) -> None:
    a, b = got.state, ref.state
    diff = _diff_states(a, b)
    assert not diff, {n: (getattr(a, n), getattr(b, n)) for n in diff}
    assert a.summary() == b.summary()
    sa, sb = got.stats, ref.stats
    assert (sa.lines, sa.events, sa.bad_lines) == (sb.lines, sb.events, sb.bad_lines)
    assert [(x.line_no, x.offset, x.reason, x.excerpt) for x in sa.bad_samples] == [
        (x.line_no, x.offset, x.reason, x.excerpt) for x in sb.bad_samples
    ]
    ia, ib = got.index, ref.index
    assert ia.starts.tolist() == ib.starts.tolist()
    assert ia.lengths.tolist() == ib.lengths.tolist()
    assert [ia.type_names[t] for t in ia.types] == [ib.type_names[t] for t in ib.types]
    assert ia.held == ib.held


def _check_log(data: bytes, msgspec_path: bool = False) -> dict[tuple[int, int], int]:
    """Every scanned variant of `data` equals the reference.

    Returns the lines the column fold took per (block size, MIN_SEGMENT).
    """
    ref = _fold_reference(data)
    folded = {}
    variants = [(c, f, 1) for c, f in CHUNK_SIZES]
    variants += [(c, f, fastfold.MIN_SEGMENT) for c, f in CHUNK_SIZES[1:]]
    for k, (chunk, first, min_segment) in enumerate(variants):
        got = _fold_scanned(data, chunk, first, min_segment, msgspec_path, lazy=k % 2 == 0)
        _assert_same(got, ref)
        folded[chunk, min_segment] = got.column_lines
    return folded


def _longest_scanned_run(data: bytes) -> int:
    """The most consecutive lines of kinds 1-4 (blank lines between them do not count)."""
    best = run = 0
    for kind in fastscan.BlockScanner().scan(data).kind.tolist():
        if kind == fastscan.KIND_OTHER:
            run = 0
        elif kind != fastscan.KIND_BLANK:
            run += 1
            best = max(best, run)
    return best


# --------------------------------------------------------------------------- one line's record
def _scan(line: bytes) -> fastscan.Columns:
    """The scanner's record of one line (the newline makes an empty line one row too)."""
    return fastscan.BlockScanner().scan(line + b"\n")


def _span_value(recs: fastscan.Columns, line: bytes, name: str) -> bytes | None:
    off, ln = int(getattr(recs, f"{name}_off")[0]), int(getattr(recs, f"{name}_len")[0])
    return None if ln < 0 else line[off : off + ln]


def _check_record(line: bytes) -> int:
    """The scanner's record of one line against orjson's reading of it; returns the kind.

    A line the scanner takes (kinds 1-4) must be valid JSON of that event type which the
    general path folds without conversion, and every value the scanner reports must be what
    the general path reads from it, to the bit.
    """
    recs = _scan(line)
    assert len(recs) == 1
    kind = int(recs.kind[0])
    stripped = line.strip()
    assert (kind == fastscan.KIND_BLANK) == (stripped == b""), line
    if kind in (fastscan.KIND_BLANK, fastscan.KIND_OTHER):
        return kind
    assert 1 <= kind <= 4, kind
    try:
        obj = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        raise AssertionError(f"scanner took invalid JSON {line!r}: {exc}") from exc
    assert type(obj) is dict, line
    assert obj.get("event_type") == fastfold.TYPE_NAMES[kind], line
    assert "schema_version" in obj, line
    assert RunState().apply_object(dict(obj)), line  # exact types: no conversion needed
    sid = obj.get("specimen_id")
    assert type(sid) is str and sid, line
    assert _span_value(recs, line, "sid") == sid.encode(), line
    assert int(recs.seq[0]) == obj.get("seq", 0), line
    seqn = obj.get("sequence")
    assert int(recs.sequence[0]) == (fastscan.MISSING if seqn is None else seqn), line
    assert (_span_value(recs, line, "ts") or b"").decode() == (obj.get("timestamp") or ""), line
    assert (_span_value(recs, line, "run") or b"").decode() == (obj.get("run_id") or ""), line
    d = obj.get("data") or {}
    for name, field in (("image", "image"), ("path", "path")):
        assert (_span_value(recs, line, name) or b"").decode() == (d.get(field) or ""), line
    for col, field, bit in (
        ("conf", "confidence", fastscan.FIX_CONF),
        ("time_ms", "processing_time_ms", fastscan.FIX_TIME),
        ("cost", "cost_usd", fastscan.FIX_COST),
    ):
        want = _num(d.get(field))
        got = float(getattr(recs, col)[0])
        if int(recs.fix[0]) & bit:  # left to a full parser: only a number, never a value
            assert isinstance(d.get(field), (int, float)) and math.isnan(got), (line, field)
            continue
        assert _bits(got) == _bits(math.nan if want is None else want), (line, field, got, want)
    for col, field in (
        ("fields", "fields_extracted"),
        ("attempts", "attempts"),
        ("tokens", "tokens"),
    ):
        got_count = int(fastfold._counts(getattr(recs, col)[:1])[0])
        assert got_count == _count(d.get(field)), (line, field, got_count, _count(d.get(field)))
    success = {False: fastscan.SUCCESS_FALSE, True: fastscan.SUCCESS_TRUE}.get(
        d.get("success"), fastscan.SUCCESS_NONE
    )
    assert int(recs.success[0]) == success, line
    err = _span_value(recs, line, "error")
    assert (None if err is None else orjson.loads(err)) == d.get("error"), line
    met = _span_value(recs, line, "metrics")
    assert (None if met is None else orjson.loads(met)) == obj.get("metrics"), line
    ts = obj.get("timestamp") or ""
    ts_kind = int(recs.ts_kind[0])
    if not ts:
        assert ts_kind == fastscan.TS_NONE, line
    elif ts_kind == fastscan.TS_EPOCH:
        want_epoch = parse_ts(ts)
        assert want_epoch is not None, line
        assert _bits(float(recs.epoch[0])) == _bits(want_epoch), (line, recs.epoch[0], want_epoch)
    else:
        assert ts_kind == fastscan.TS_PYTHON, line
    return kind


# --------------------------------------------------------------------------- generators
# Lines are built from a seeded random.Random (hypothesis draws the seed and the knobs): a
# hundred lines of a dozen fields each cost a few hundred draws this way, not thousands.
BULK_TYPES = ("specimen.queued", "specimen.processing", "specimen.completed", "specimen.failed")
OTHER_TYPES = (
    "specimen.retrying",
    "specimen.skipped",
    "extraction.started",
    "extraction.completed",
    "extraction.paused",
    "validation.checkpoint",
)
SIDS = ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "#3", "DAO-000123", "a b", "s1 ")
# odd ids, as JSON text: escapes, text beyond ASCII (raw and escaped), wrong types
ODD_SID_TEXT = (
    b'"s\\u0031"',  # "s1" spelled with an escape: the same row as the plain "s1"
    b'"s\\/2"',
    b'"s\xc3\xa9"',
    b'"s\\u00e9"',
    b'""',
    b"null",
    b"5",
    b'"\\ud83d\\ude00"',
    b'"s\\ud800"',  # a lone surrogate: orjson refuses the line
    b'"s\xff"',  # invalid UTF-8
    b'"s\xed\xa0\x80"',  # a surrogate as raw bytes
    b'"s\\"1"',
    b'"s\\\\1"',
    b'"s\\n1"',
)
FLOAT_TEXT = (
    b"1", b"1.0", b"-0", b"-0.0", b"0", b"0.0", b"1e2", b"1E+2", b"1e-2", b"0.1e-3", b"0.5",
    b"0.99", b"0.3", b"0.30000000000000004", b"123.456", b"1500.25", b"0.00012", b"1e22",
    b"1e23", b"1e-22", b"1e-23", b"12345678901234567890", b"9223372036854775807",
    b"9223372036854775808", b"9007199254740992", b"9007199254740991", b"9007199254740993",
    b"-9007199254740993", b"9007199254740992.0", b"9.007199254740993e15", b"1e300", b"5e-324",
    b"2.2250738585072014e-308", b"4.9e-324", b"1e-400", b"0.1", b"0.7", b"17", b"-3.5",
    b"1234567890123456.7", b"1.7976931348623157e308", b"1e309", b"1000000000e300", b"-1e309",
    b"0e999999", b"00", b"01", b"1.", b".5", b"+1", b"1e", b"-", b"NaN", b"Infinity",
)  # fmt: skip
INT_TEXT = (
    b"0", b"1", b"2", b"3", b"7", b"12", b"-1", b"-0", b"100", b"9007199254740991",
    b"9007199254740992", b"9007199254740993", b"-9007199254740993", b"9007199254740994",
    b"-9007199254740992", b"9223372036854775807", b"9223372036854775808",
    b"-9223372036854775808", b"-9223372036854775807", b"18446744073709551616",
    b"12345678901234567890", b"1.0", b"1e2", b"2.5", b"-0.0", b"1E0",
)  # fmt: skip
WRONG_TEXT = (
    b"null", b"true", b"false", b'"3"', b'"0.5"', b'""', b"[]", b"[1]", b"{}", b'{"a":1}',
    b'"\\u00e9"', b"[[[]]]", b"nul", b"tru", b"nullx",
)  # fmt: skip
METRICS_TEXT = (
    b"{}", b"{ }", b'{"a":1}', b"null", b"[1]", b'"x"', b"5", b'{"total_processed":3}',
    b'{"total_processed": 4, "success_count": 3}', b'{"a":{"b":[1,2,{"c":null}]},"d":"e"}',
    b'{"a":"\\u00e9\\n"}', b'{"a":"\xc3\xa9"}', b'{"a":1e309}', b'{"a":12345678901234567890123}',
    b'{"a":1,"a":2}', b'{"a":-0.0}', b'{"a":1e300}', b'{"\\u0061":1}', b"{\t}", b'{"":0}',
    b'{"a":1000000000e300}', b'{"a":"\\ud800"}', b'{"a":"\xff"}',
)  # fmt: skip
ERROR_TEXT = (
    b'"boom"', b'{"kind":"k","message":"m"}', b'{"message":3}', b"null", b'""',
    b'"\\u00e9 \\" \\\\ \\/ \\n"', b"[1]", b"5", b'{"kind":"bad_reply","message":"no JSON"}',
    b'"\xc3\xa9"', b'{"kind":"k","x":1e400}', b"{}", b'{"kind":null,"message":null}', b"true",
    b'{"kind":"k","x":1000000000e300}', b'{"kind":"k","message":"\\ud83d\\ude00"}',
)  # fmt: skip
NAME_TEXT = (
    b'"a.jpg"', b'""', b'"b/c.jpg"', b'"img\\/x.jpg"', b'"M\\u00fcller.jpg"',
    b'"M\xc3\xbcller.jpg"', b"null", b"3", b'"\\t"', b'"x.jpg"', b'"\x7f"', b'"a\tb"',
)  # fmt: skip
EXTRA_TEXT = (
    b'"\\ud800"', b'"\xff"', b'"\xed\xa0\x80"', b"1000000000e300", b"1e309", b"1e300",
    b'"\\ud83d\\ude00"', b'"\xf0\x9f\x98\x80"', b"12345678901234567890123456789",
    b"1" + b"0" * 299, b"1" + b"0" * 300, b"0." + b"0" * 299 + b"1", b"1e-300", b"-1e-400",
)  # fmt: skip
SEPARATORS = (
    (b",", b":"),
    (b", ", b": "),
    (b" , ", b" : "),
    (b",\t", b":\t"),
    (b",", b": "),
    (b",\r", b"\r:"),
    (b"  ,", b":  "),
)
BAD_TS = (
    "2024-02-29T10:00:00.000Z", "2025-02-29T10:00:00.000Z", "2024-12-31T24:00:00.000Z",
    "2024-06-30T23:59:60.000Z", "1899-12-31T23:59:59.999Z", "1900-01-01T00:00:00.000Z",
    "2200-12-31T23:59:59.999Z", "2201-01-01T00:00:00.000Z", "2024-04-31T00:00:00.000Z",
    "2024-13-01T00:00:00.000Z", "2024-00-10T00:00:00.000Z", "2024-01-00T00:00:00.000Z",
    "junk", "", "2026-11-26", "2026-11-26T10:00:00.000+25:00", "0001-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z", "2026-1l-26T10:00:00.000Z", "+026-11-26T10:00:00.000Z",
    "2026-11-26T10:00:00.000Z\t", "2026-11-26T10:00:00.0000Z", "2026-11-26T10:00:00,000Z",
)  # fmt: skip
LEGACY = tuple((FIXTURES / "legacy_events.jsonl").read_bytes().splitlines()[:4])
NOT_EVENTS = (
    b"", b"", b"   ", b"\r", b"\t", b"\x0b", b"\x0c", b" \x0b\x0c ", b"[1, 2]", b"42", b'"s"',
    b"null", b"{}", b"{not json", b'{"schema_version":1}',
    b'{"schema_version": 1, "event_type": 5}', b'{"schema_version":1,"event_type":"x","data":[1]}',
    b"\x1c", b"\x00", b"\xff", b"\xef\xbb\xbf{}",
    b'{"image":"a.jpg","error":"x"}', *LEGACY,
)  # fmt: skip
_EPOCH0 = datetime(1899, 12, 31)
_SPAN_S = int((datetime(2201, 1, 2) - _EPOCH0).total_seconds())


def _ts_text(dt: datetime, style: int) -> str:
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    ms = f".{dt.microsecond // 1000:03d}"
    return [
        base + ms + "Z",
        base + "Z",
        base + ms + "+00:00",
        base + ms + "+02:00",
        base + ms + "z",
        base.replace("T", " ") + ms + "Z",
        base + ms,
        base + f".{dt.microsecond:06d}Z",
        base + ms + "Z ",
        base.replace("T", "t") + ms + "Z",
    ][style]


def _number_text(rng: random.Random) -> bytes:
    """A JSON number in a random spelling: up to 17 significant digits, any exponent form."""
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
    digits = digits.lstrip("0") or "0"
    text = digits
    if rng.random() < 0.6:
        text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 8)))
    if rng.random() < 0.4:
        text += rng.choice(["e", "E", "e+", "e-", "E-"]) + str(rng.randint(0, 30))
    return (rng.choice(["", "", "-"]) + text).encode()


def _nested(depth: int, kind: int) -> bytes:
    if kind == 0:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _obj(pairs: list[tuple[bytes, bytes]], sep: tuple[bytes, bytes], pad: bytes = b"") -> bytes:
    comma, colon = sep
    return b"{" + pad + comma.join(k + colon + v for k, v in pairs) + pad + b"}"


PARTS = (
    "schema_version", "seq", "event_type", "timestamp", "run_id", "specimen_id", "sequence",
    "metrics", "drop", "dup", "order", "sep", "pad", "ends", "image", "path", "success",
    "fields_extracted", "confidence", "processing_time_ms", "attempts", "tokens", "cost_usd",
    "error", "extra", "data_sep", "data_type", "quality", "dwc",
)  # fmt: skip
NUMERIC = ("confidence", "processing_time_ms", "cost_usd")
COUNTS = ("fields_extracted", "attempts", "tokens")


# data.dwc: the record's values as herbdesk writes them, and shapes only other writers make
DWC_TEXT = (
    b'{"scientificName":"Quercus robur L.","country":"Canada"}',
    b'{"scientificName":"Identified by","catalogNumber":"MO-1"}',
    b'{"catalogNumber":"MO-2","stateProvince":"Ontario","locality":" 3 km N of Ottawa "}',
    b"{}",
    b"null",
    # text beyond ASCII, as orjson writes it (raw UTF-8): the scanner takes these lines too
    '{"stateProvince":"Québec","locality":"Mont-Royal, près du lac"}'.encode(),
    '{"recordedBy":"J. Müller","locality":"Åland – 🌿"}'.encode(),
)
ODD_DWC_TEXT = (
    b'"Quercus"',
    b"[1,2]",
    b'{"scientificName":{"value":"Acer rubrum","confidence":0.5},"dwc:Country":"canada"}',
    b'{"scientificName":null,"decimalLatitude":45.25,"bogus":"x","eventDate":""}',
    b'{"locality":"M\\u00fcnchen","recordedBy":["A","B"]}',
    '{"locality":"Z\u00fcrich"}'.encode(),
    '{"Localit\u00e9":"Z\u00fcrich","pa\u00eds":"Espa\u00f1a"}'.encode(),  # keys beyond ASCII
    # a term twice (JSON readers keep the last), under two names, or spelled with an escape
    b'{"locality":"A","locality":"B"}',
    b'{"locality":"A","locality":""}',
    b'{"locality":"A","dwc:locality":" "}',
    b'{"dwc:locality":"A","locality":"B","country":"C"}',
    b'{"loc\\u0061lity":"x","country":"\\u0043anada"}',
    b'{"decimalLatitude":1e400}',
    b'{"decimalLatitude":45.10,"decimalLongitude":-7.5e1,"recordNumber":12}',
    # not UTF-8: a bad line in every path (latin-1, overlong, surrogate, past U+10FFFF, cut)
    b'{"locality":"M\xfcnchen"}',
    b'{"locality":"\xc0\xaf"}',
    b'{"locality":"\xed\xa0\x80"}',
    b'{"locality":"\xf4\x90\x80\x80"}',
    b'{"locality":"\xe2\x82"}',
    b'{"locality":"a\xe2\x82\xac\x80"}',
    b'{"locality":"\xf0\x9f\x8c"}',
)


def _q(
    usable: bool, filled: list[str], invalid: list[str], findings: list[list[str]], fp: str | None
) -> bytes:
    return orjson.dumps({"usable": usable, "filled": filled, "invalid": invalid,
                         "findings": findings, "fingerprint": fp})  # fmt: skip


# data.quality as herbdesk writes it (RecordJudge.quality): the scanner sorts these into kinds
QUALITY_TEXT = (
    _q(True, ["eventDate", "scientificName"], [], [], "0123456789abcdef"),
    _q(True, ["eventDate", "scientificName"], [], [], "fedcba9876543210"),
    _q(True, ["eventDate", "scientificName"], [], [], "0123456789abcdef"),  # identical records
    _q(True, ["catalogNumber", "eventDate", "locality", "recordedBy", "scientificName"], [],
       [["date_not_iso", "eventDate", "Sept 12, 1984", "normalisable to 1984-09-12"]],
       "ffffffffffffffff"),
    _q(True, ["eventDate", "scientificName"], [], [["date_not_iso", "eventDate", "8.IX.1984",
       "normalisable to 1984-09-08"]], "0000000000000000"),
    _q(False, ["eventDate", "scientificName"], ["eventDate", "scientificName"],
       [["name_boilerplate", "scientificName", "Identified by"],
        ["date_future", "eventDate", "2809"],
        ["required_missing", "scientificName", "", "scientificName"]], "00000000000000aa"),
    _q(False, [], [], [["placeholder", "scientificName", "-"],
       ["required_missing", "scientificName", "", "scientificName, eventDate|recordedBy"]], None),
    _q(True, ["scientificName", "locality"], [], [["name_shape", "scientificName",
       'a "quoted" \\ value, "fingerprint":', "d"]], "1111111111111111"),
    b'{"usable":true,"filled":["scientific\\u004eame"],"invalid":[],"findings":[],'
    b'"fingerprint":"2222222222222222"}',
    # escaped quotes that spell the shape's own keys inside strings
    rb'{"usable":true,"filled":["a"],"invalid":[],"findings":[["c","\",\"fingerprint\":\"'
    rb'0123456789abcdef\"}"]],"fingerprint":"3333333333333333"}',
    rb'{"usable":true,"filled":["a\"],\"invalid\":[\"b"],"invalid":[],"findings":[],'
    b'"fingerprint":null}',
)  # fmt: skip
# odd ones, which the scanner must leave to the general path or read exactly as it does
ODD_QUALITY_TEXT = (
    b"null", b"[]", b"{}", b'"usable"', b"0",
    b'{"filled":["a"],"usable":true,"invalid":[],"findings":[],"fingerprint":"0123456789abcdef"}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":"0123456789ABCDEF"}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":"0123456789abcde"}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":"x,y"}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":7}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":"0123456789abcdef",'
    b'"fingerprint":"1123456789abcdef"}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"usable":false,'
    b'"fingerprint":"0123456789abcdef"}',
    b'{"usable":1,"filled":["a"],"invalid":[],"findings":[],"fingerprint":"0123456789abcdef"}',
    b'{"usable":"no","filled":["a"],"invalid":[],"findings":[],"fingerprint":null}',
    b'{"usable":true,"filled":"a","invalid":[],"findings":[],"fingerprint":null}',
    b'{"usable":true,"filled":[1,"a"],"invalid":[null],"findings":[],"fingerprint":null}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[[],[1],["c",2],"c"],'
    b'"fingerprint":null}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[["c"]],"fingerprint":null,"x":1}',
    b'{"usable":true, "filled":["a"],"invalid":[],"findings":[],"fingerprint":null}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":null }',
    b'{"usable":true,"filled":["' + b"t" * 3000 + b'"],"invalid":[],"findings":[],'
    b'"fingerprint":null}',
    b'{"usable":true,"filled":["a"],"invalid":[],"findings":[],"fingerprint":"0123456789abcdef"',
)  # fmt: skip


class LineGen:
    """Herbdesk event lines, plausible or with a few odd parts each."""

    def __init__(self, rng: random.Random, hostile: float, others: float = 0.2) -> None:
        # others: the share of lines of other types (and of 17-digit doubles), which the
        # scanner leaves to Python and so end a segment
        self.rng, self.hostile, self.others = rng, hostile, others

    def timestamp(self, odd: bool) -> bytes:
        rng = self.rng
        if odd and rng.random() < 0.3:
            return rng.choice([b"null", b"5", b'"2024-01-01T00:00:00.000\\u005a"', b'""'])
        if odd and rng.random() < 0.5:
            return json.dumps(rng.choice(BAD_TS)).encode()
        dt = _EPOCH0 + timedelta(seconds=rng.randrange(_SPAN_S), milliseconds=rng.randrange(1000))
        if rng.random() < 0.1:  # the last day of a month, leap days included
            dt = (
                datetime(dt.year, dt.month % 12 + 1, 1)
                if dt.month < 12
                else datetime(dt.year + 1, 1, 1)
            )
            dt -= timedelta(milliseconds=rng.randrange(1, 86400000))
        return json.dumps(_ts_text(dt, rng.randrange(10) if odd else 0)).encode()

    def number(self, odd: bool, count: bool) -> bytes:
        rng = self.rng
        if not odd:
            if count:
                return str(rng.randint(0, 40)).encode()
            if rng.random() < self.others / 2:
                return json.dumps(rng.random()).encode()  # 17 digits: often left to Python
            return rng.choice(
                [
                    json.dumps(round(rng.random(), rng.randint(1, 6))).encode(),
                    json.dumps(round(rng.random(), rng.randint(1, 6))).encode(),
                    b"0.5",
                    b"1",
                    b"0",
                    b"0.25",
                    f"{rng.random() * 1e4:.2f}".encode(),
                ]
            )
        r = rng.random()
        if r < 0.35:
            return rng.choice(INT_TEXT if count else FLOAT_TEXT)
        if r < 0.7:
            return _number_text(rng)
        if r < 0.85:
            return rng.choice(FLOAT_TEXT if count else INT_TEXT)
        return rng.choice(WRONG_TEXT)

    def data(self, et: str, odd: set[str]) -> bytes:
        rng = self.rng
        pairs: list[tuple[bytes, bytes]] = []

        def put(name: str, good: bytes, bad: bytes, present: float = 0.8) -> None:
            if name in odd:
                if rng.random() < 0.15:
                    return  # absent
                pairs.append((json.dumps(name).encode(), bad))
            elif rng.random() < present:
                pairs.append((json.dumps(name).encode(), good))

        finished = et in ("specimen.completed", "specimen.failed")
        put(
            "image",
            rng.choice([b'"a.jpg"', b'"b.jpg"', b'"c/d.jpg"', b'""', b"null"]),
            rng.choice(NAME_TEXT),
        )
        put("path", rng.choice([b'"/x/a.jpg"', b'""', b'"/x/b.jpg"']), rng.choice(NAME_TEXT), 0.4)
        if finished or odd:
            p = 0.85 if finished else 0.0
            put(
                "success",
                rng.choice([b"true", b"true", b"false", b"null"]),
                rng.choice([b"null", b"1", b"0", b'"true"', b"[]", b"True"]),
                p,
            )
            for name in COUNTS:
                put(name, self.number(False, True), self.number(True, True), p)
            for name in NUMERIC:
                put(name, self.number(False, False), self.number(True, False), p)
            put(
                "error",
                rng.choice([b'"boom"', b'{"kind":"k","message":"m"}', b"null"]),
                rng.choice(ERROR_TEXT),
                p * 0.5,
            )
            put("quality", rng.choice(QUALITY_TEXT), rng.choice(ODD_QUALITY_TEXT), p * 0.9)
            put("dwc", rng.choice(DWC_TEXT), rng.choice(ODD_DWC_TEXT), p * 0.7)
        if "extra" in odd:  # fields nobody reads, of any shape, and repeated known keys
            extra = rng.choice(
                [
                    rng.choice(METRICS_TEXT + WRONG_TEXT + FLOAT_TEXT + EXTRA_TEXT),
                    _nested(rng.randint(1, 100), rng.randrange(2)),
                    _number_text(rng),
                ]
            )
            key = rng.choice(
                [
                    "extra",
                    "x",
                    "reason",
                    "image",
                    "confidence",
                    "\\u0063onfidence",
                    "tokens",
                    "success",
                    "error",
                    "",
                ]
            )
            pairs.insert(rng.randint(0, len(pairs)), (b'"' + key.encode() + b'"', extra))
        if et in ("specimen.retrying", "specimen.skipped", "extraction.paused"):
            pairs.append((b'"reason"', rng.choice([b'"quota"', b'"user"', b'"dup"'])))
            pairs.append((b'"error"', rng.choice(ERROR_TEXT)))
        elif et == "extraction.started":
            pairs.append((b'"total"', rng.choice([b"10", b"5.5", b'"7"', b"null"])))
            pairs.append((b'"config"', b'{"engine":"x"}'))
        elif et == "validation.checkpoint":
            pairs.append((b'"checkpoint"', b"10"))
            pairs.append((b'"status"', b'"passed"'))
            pairs.append((b'"success_rate"', rng.choice(FLOAT_TEXT)))
        if "data_type" in odd:
            return rng.choice([b"null", b"[]", b'"x"', b"{}", b"0", b'{"image":"a.jpg"'])
        sep = rng.choice(SEPARATORS) if "data_sep" in odd else (b",", b":")
        return _obj(pairs, sep, rng.choice([b"", b" ", b"\t"]) if "data_sep" in odd else b"")

    def line(self) -> bytes:
        rng = self.rng
        odd: set[str] = set()
        if rng.random() < self.hostile:
            odd = set(rng.sample(PARTS, rng.choice([1, 1, 1, 2, 2, 3, 5])))
        et = rng.choice(OTHER_TYPES if rng.random() < self.others else BULK_TYPES)

        def pick(name: str, good: bytes, bad: tuple[bytes, ...]) -> bytes:
            return rng.choice(bad) if name in odd else good

        sid = json.dumps(rng.choice(SIDS)).encode()
        pairs: list[tuple[bytes, bytes]] = [
            (b'"schema_version"', pick("schema_version", b"1", (
                b"2", b"1.0", b'"1"', b"null", b"-1", b"99999999999999999999", b"0", b"-0"))),
            (b'"seq"', self.number(True, True) if "seq" in odd
                else str(rng.randint(0, 60)).encode()),
            (b'"event_type"', pick("event_type", json.dumps(et).encode(), (
                b'"specimen\\u002equeued"', b"7", b"null", b'"Specimen.queued"',
                b'"specimen.completed "', b'"specimen.completed\\u0000"'))),
            (b'"timestamp"', self.timestamp("timestamp" in odd)),
            (b'"run_id"', pick("run_id", b'"r1"',
                               (b'""', b"null", b"3", b'"r\\u0032"', b'"r\xc3\xa9"', b'"r 2"'))),
            (b'"specimen_id"', pick("specimen_id", sid, ODD_SID_TEXT)),
            (b'"sequence"', self.number(True, True) if "sequence" in odd
                else str(rng.randint(0, 9)).encode()),
            (b'"data"', self.data(et, odd)),
            (b'"metrics"', pick("metrics", rng.choice(
                [b'{"total_processed":%d}' % rng.randint(0, 99), b"{}", b"null"]), METRICS_TEXT)),
        ]  # fmt: skip
        drop = set(rng.sample(range(len(pairs)), rng.randint(1, 3))) if "drop" in odd else set()
        for i, (k, _) in enumerate(pairs):
            if k in (b'"sequence"', b'"metrics"') and rng.random() < 0.4:
                drop.add(i)
        pairs = [p for i, p in enumerate(pairs) if i not in drop]
        if "dup" in odd:  # duplicate keys (the last one counts), escaped keys
            dup = rng.choice(
                [
                    (b'"data"', b"{}"),
                    (b'"data"', b'{"confidence":0.25,"success":false}'),
                    (b'"event_type"', b'"specimen.failed"'),
                    (b'"event_type"', b'"specimen.retrying"'),
                    (b'"\\u0073eq"', b"5"),
                    (b'"specimen_id"', b'"s2"'),
                    (b'"specimen_id"', b"null"),
                    (b'"metrics"', b'{"b":2}'),
                    (b'"metrics"', b"null"),
                    (b'"timestamp"', b'""'),
                    (b'"seq"', b"0"),
                    (b'"\\u0064ata"', b"{}"),
                    (b'"sequence"', b"null"),
                    (b'"schema_version"', b"null"),
                    (b'"data"', b"null"),
                    (b'"run_id"', b'"r9"'),
                ]
            )
            pairs.insert(rng.randint(0, len(pairs)), dup)
        if "order" in odd:
            rng.shuffle(pairs)
        sep = rng.choice(SEPARATORS) if "sep" in odd else (b",", b":")
        line = _obj(pairs, sep, rng.choice([b" ", b"\t", b"\r"]) if "pad" in odd else b"")
        if "ends" in odd:
            line = rng.choice([b"", b" ", b"\t", b"\r", b"\x0b", b"\x0c"]) + line
            line += rng.choice([b"", b" ", b"\t", b"\r", b"\x0b", b"\x0c", b" \r", b"\x00"])
        return line

    def mutate(self, line: bytes) -> bytes:
        """`line` with one byte deleted, inserted or replaced."""
        rng = self.rng
        if not line:
            return line
        i = rng.randrange(len(line))
        pool = b'{}[]":,\\ 0123456789.eE-+tnu\x00\x80\xff\r\x0b'
        byte = bytes([rng.choice(pool) if rng.random() < 0.7 else rng.randrange(256)])
        op = rng.randrange(3)
        if op == 0:
            return line[:i] + line[i + 1 :]
        if op == 1:
            return line[:i] + byte + line[i:]
        return line[:i] + byte + line[i + 1 :]

    def any_line(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < self.hostile * 0.1:
            return rng.choice(NOT_EVENTS)
        line = self.line()
        if roll > 1 - self.hostile * 0.15:
            line = self.mutate(line)
        return line

    def log(self, n: int) -> bytes:
        out = [self.any_line() + (b"\r\n" if self.rng.random() < 0.05 else b"\n") for _ in range(n)]
        data = b"".join(out)
        return data[:-1] if self.rng.random() < 0.3 else data  # no newline at the end


seeds = st.integers(0, 2**64 - 1)
hostility = st.sampled_from([0.0, 0.03, 0.1, 0.3, 0.6, 1.0])


# --------------------------------------------------------------------------- property tests
@settings(max_examples=400, **SETTINGS)
@given(seeds, hostility, st.integers(1, 80))
def test_scanned_fold_equals_general_path(seed: int, hostile: float, n: int) -> None:
    """Random logs, clean to hostile: every line's record and the whole state agree."""
    data = LineGen(random.Random(seed), hostile).log(n)
    for line in data.split(b"\n"):
        _check_record(line)
    _check_log(data)


@settings(max_examples=60, **SETTINGS)
@given(seeds, st.sampled_from([0.0, 0.01, 0.03]), st.integers(60, 250))
def test_long_realistic_runs_fold_in_columns(seed: int, hostile: float, n: int) -> None:
    """Mostly clean logs: segments past MIN_SEGMENT, crossing blocks, with a few odd lines."""
    data = LineGen(random.Random(seed), hostile, 0.01).log(n)
    folded = _check_log(data)
    # (an unended last line is a block of its own)
    longest = _longest_scanned_run(data[: data.rfind(b"\n") + 1])
    assert folded[1 << 20, 1] > 0  # the column fold really ran
    if longest >= fastfold.MIN_SEGMENT:  # in one block: a segment past the default too
        assert folded[1 << 20, fastfold.MIN_SEGMENT] >= longest


def _msgspec_known_difference(line: bytes) -> bool:
    """bulk.py's documented exception: orjson refuses the line (a number past a double's
    range in a field nobody reads) while msgspec folds it."""
    line = line.strip()
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return bulk.decode_bulk(line) is not None
    return False


@settings(max_examples=80, **SETTINGS)
@given(seeds, hostility, st.integers(1, 120))
def test_scanned_fold_with_the_msgspec_path_equals_general_path(
    seed: int, hostile: float, n: int
) -> None:
    """As opened for real: lines folded one by one try the typed (msgspec) decode first."""
    data = LineGen(random.Random(seed), hostile).log(n)
    assume(not any(_msgspec_known_difference(x) for x in data.split(b"\n")))
    ref = _fold_reference(data)
    for chunk, first, min_segment in ((97, None, 1), (4096, 13, 1), (1 << 20, None, 48)):
        _assert_same(_fold_scanned(data, chunk, first, min_segment, True), ref)


# --------------------------------------------------------------------------- targeted checks
@settings(max_examples=2000, **SETTINGS)
@given(seeds, st.sampled_from([0.0, 0.0, 0.2, 1.0]), st.integers(1, 3))
def test_scanner_never_takes_invalid_json(seed: int, hostile: float, mutations: int) -> None:
    """(a) Mutated lines: whatever the scanner takes is valid JSON of that type, read alike."""
    gen = LineGen(random.Random(seed), hostile)
    line = gen.line()
    for _ in range(mutations):
        line = gen.mutate(line)
    for piece in line.split(b"\n"):  # a mutation may have made two lines
        _check_record(piece)


def _completed(ts: bytes = b'"2026-11-26T10:00:00.000Z"', data: bytes = b"{}") -> bytes:
    return (
        b'{"schema_version":1,"seq":1,"event_type":"specimen.completed","timestamp":' + ts
        + b',"run_id":"r","specimen_id":"s1","data":' + data + b"}"
    )  # fmt: skip


LEAP_DAYS = [datetime(y, 2, 29) for y in range(1904, 2200, 4) if y % 100 or y % 400 == 0]


@settings(max_examples=1000, **SETTINGS)
@given(
    st.one_of(
        st.datetimes(datetime(1900, 1, 1), datetime(2200, 12, 31, 23, 59, 59, 999999)),
        st.builds(
            lambda d, s: d + timedelta(seconds=s), st.sampled_from(LEAP_DAYS), st.integers(0, 86399)
        ),
        st.builds(
            lambda y, m: datetime(y + (m == 12), m % 12 + 1, 1) - timedelta(milliseconds=1),
            st.integers(1900, 2200),
            st.integers(1, 12),
        ),
        st.sampled_from(
            [
                datetime(1900, 1, 1),
                datetime(2200, 12, 31, 23, 59, 59, 999000),
                datetime(1970, 1, 1),
                datetime(1969, 12, 31, 23, 59, 59, 999000),
                datetime(2000, 2, 29, 12),
                datetime(2100, 2, 28, 23, 59, 59),
            ]
        ),
    )
)
def test_scanner_epoch_equals_parse_ts(dt: datetime) -> None:
    """(b) herbdesk's own timestamp shape: the scanner's epoch is parse_ts's, to the bit."""
    ts = dt.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert len(ts) == 24
    recs = _scan(_completed(json.dumps(ts).encode()))
    assert recs.kind[0] == fastscan.KIND_COMPLETED
    assert recs.ts_kind[0] == fastscan.TS_EPOCH, ts
    want = parse_ts(ts)
    assert want is not None
    assert _bits(float(recs.epoch[0])) == _bits(want), (ts, float(recs.epoch[0]), want)


@pytest.mark.parametrize("ts", [*BAD_TS, "2024-02-29T10:00:00.000z", "2024-02-29 10:00:00.000Z"])
def test_scanner_leaves_other_timestamps_to_python(ts: str) -> None:
    text = json.dumps(ts).encode()
    recs = _scan(_completed(text))
    if b"\\" in text:  # an escape in the timestamp: the general path reads the line
        assert recs.kind[0] == fastscan.KIND_OTHER
        return
    assert recs.kind[0] == fastscan.KIND_COMPLETED
    if recs.ts_kind[0] == fastscan.TS_EPOCH:
        want = parse_ts(ts)
        assert want is not None and _bits(float(recs.epoch[0])) == _bits(want), ts
    else:
        assert recs.ts_kind[0] == (fastscan.TS_PYTHON if ts else fastscan.TS_NONE)


@st.composite
def decimal_spellings(draw: st.DrawFn) -> bytes:
    """A decimal with up to 17 significant digits, spelled any way JSON allows."""
    sig = draw(st.integers(1, 10**17 - 1))
    digits = str(sig)
    lead = draw(st.integers(0, 3))  # leading zeros after the point: 0.000ddd
    trail = draw(st.integers(0, 3))
    point = draw(st.integers(0, len(digits)))
    e = draw(st.integers(-30, 30))
    sign = draw(st.sampled_from(["", "-"]))
    style = draw(st.integers(0, 3))
    if style == 0:  # integer digits with an exponent
        text = digits + "0" * trail + draw(st.sampled_from(["e", "E", "e+", "E-"])) + str(abs(e))
    elif style == 1:  # fixed point
        whole, frac = digits[:point] or "0", digits[point:] + "0" * trail
        text = whole.lstrip("0") or "0"
        text = (text + "." + "0" * lead + frac) if (frac or lead) else text
    elif style == 2:  # fixed point with an exponent
        whole, frac = digits[:point] or "0", digits[point:] or "0"
        text = (whole.lstrip("0") or "0") + "." + frac + "e" + str(e)
    else:
        text = repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
        sign = ""
    return (sign + text).encode()


@settings(max_examples=1200, **SETTINGS)
@given(decimal_spellings(), st.sampled_from(["confidence", "processing_time_ms", "cost_usd"]))
def test_scanner_numbers_equal_the_general_path(num: bytes, field: str) -> None:
    """(c) A number the scanner reads is the double the general path stores, to the bit."""
    line = _completed(data=b'{"' + field.encode() + b'":' + num + b"}")
    if _check_record(line) != fastscan.KIND_OTHER:
        col = {"confidence": "conf", "processing_time_ms": "time_ms", "cost_usd": "cost"}[field]
        want = _num(orjson.loads(num))
        recs = _scan(line)
        got = float(getattr(recs, col)[0])
        if not recs.fix[0]:  # else left to a full parser: the fold below still compares
            assert _bits(got) == _bits(math.nan if want is None else want), (num, got, want)
        # and through the whole fold
        state = _fold_scanned(line + b"\n", 4096).state
        ref = _fold_reference(line + b"\n").state
        assert not _diff_states(state, ref), num


def test_scanner_takes_plain_numbers() -> None:
    """The number checks above are not vacuous: plain spellings are read, not passed on."""
    for num in (b"0.5", b"1", b"-0.0", b"1e2", b"0.1e-3", b"123456789.25", b"7"):
        assert _scan(_completed(data=b'{"confidence":' + num + b"}")).kind[0] == 3, num


def _quality_lines(objects: list[bytes]) -> bytes:
    return b"".join(_completed(data=b'{"success":true,"quality":' + q + b"}") + b"\n"
                    for q in objects)  # fmt: skip


def test_scanner_sorts_herbdesks_quality_objects_into_kinds() -> None:
    """Every object of RecordJudge's shape gets a key number and its fingerprint as a number;
    any other object is left to the general path (-2); a line without one has -1."""
    scanner = fastscan.BlockScanner()
    odd = [q for q in ODD_QUALITY_TEXT if q.startswith(b"{") and _valid_json(q)]
    recs = scanner.scan(_quality_lines([*QUALITY_TEXT, *odd]) + _completed() + b"\n")
    good = len(QUALITY_TEXT)
    assert (recs.kind == fastscan.KIND_COMPLETED).all()
    key, fp, has = recs.qkey, recs.qfp.view(np.uint64), recs.qhas
    assert (key[:good] >= 0).all() and (key[good:-1] == -2).all() and key[-1] == -1
    keys = scanner.quality_keys(0)
    assert len(keys) == good - 2  # the same usable, terms and checks share a key (three)
    assert scanner.quality_keys(len(keys)) == []
    for j, text in enumerate(QUALITY_TEXT):
        q = orjson.loads(text)
        want = q["fingerprint"]
        assert bool(has[j]) == (want is not None)
        assert want is None or int(fp[j]) == int(want, 16)
        # the key holds what the tally counts, and the kinds agree
        k = orjson.loads(keys[int(key[j])])
        assert (k["usable"], k["filled"], k["invalid"]) == (q["usable"], q["filled"], q["invalid"])
        assert [f[0] for f in k["findings"]] == [f[0] for f in q["findings"]]
    # the next block's objects get the same numbers
    again = scanner.scan(_quality_lines(list(QUALITY_TEXT)))
    assert again.qkey.tolist() == key[:good].tolist()


def test_scanner_numbers_at_most_65536_quality_keys() -> None:
    """Past 65536 distinct keys (a hostile log; a run has hundreds) objects are read in full."""
    scanner = fastscan.BlockScanner()
    objects = [_q(True, [f"t{i}"], [], [], None) for i in range(65536 + 10)]
    recs = scanner.scan(_quality_lines(objects))
    assert recs.qkey[:65536].tolist() == list(range(65536))
    assert (recs.qkey[65536:] == -2).all()
    assert len(scanner.quality_keys(65530)) == 6


def _valid_json(text: bytes) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def test_judged_records_fold_in_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's own quality objects (RecordJudge on varied and junk records) fold in columns,
    with resumed specimens re-judged and failed ones, to the general path's state."""
    from fakeapi import junk_fields, record_for

    from herbdesk.quality.judge import QualitySettings, RecordJudge

    judge = RecordJudge.from_settings(QualitySettings())
    rng = random.Random(3)
    lines = []
    for i in range(600):
        sid = f"s{rng.randrange(250)}"
        ok = rng.random() < 0.85
        values = record_for(str(i)) if rng.random() < 0.8 else junk_fields(
            rng.choice(["boilerplate", "placeholders", "identical", "term_names"]),
            {"messages": i})  # fmt: skip
        data: dict[str, Any] = {"image": f"{sid}.jpg", "success": ok, "tokens": 10}
        if ok:
            data["quality"] = judge.quality(values)
        lines.append(orjson.dumps({
            "schema_version": 1, "seq": i + 1,
            "event_type": "specimen.completed" if ok else "specimen.failed",
            "timestamp": "2026-11-26T10:00:00.000Z", "run_id": "r1", "specimen_id": sid,
            "sequence": i, "data": data}))  # fmt: skip
    data = b"\n".join(lines) + b"\n"
    one_by_one = []
    real_set = QualityTally.set
    monkeypatch.setattr(
        QualityTally, "set", lambda t, r, q: (one_by_one.append(r), real_set(t, r, q))
    )
    got = _fold_scanned(data, 1 << 20, None, fastfold.MIN_SEGMENT)
    assert got.column_lines == 600
    assert len(got.state.quality) > 150 and not one_by_one  # all through the scanner's keys
    monkeypatch.undo()
    assert got.state.quality.identical_records > 0
    _assert_same(got, _fold_reference(data))
    _check_log(data)


def test_random_logs_fold_mostly_in_columns() -> None:
    """Realistic logs are mostly taken by the scanner (the property tests are not vacuous)."""
    rng = random.Random(7)
    lines = []
    for i in range(400):
        sid = f"s{rng.randrange(40)}"
        et = rng.choice(BULK_TYPES)
        lines.append(
            orjson.dumps(
                {
                    "schema_version": 1,
                    "seq": i + 1,
                    "event_type": et,
                    "timestamp": f"2026-11-26T10:{i // 60:02d}:{i % 60:02d}.{i:03d}Z",
                    "run_id": "r1",
                    "specimen_id": sid,
                    "sequence": i,
                    "data": {
                        "image": f"{sid}.jpg",
                        "success": rng.random() < 0.8,
                        # rounded: a double written with 17 digits is left to Python
                        "confidence": round(rng.random(), 4),
                        "processing_time_ms": round(rng.random() * 1e4, 1),
                        "tokens": rng.randrange(2000),
                        "cost_usd": round(rng.random() / 100, 6),
                        "error": {"kind": "k", "message": "m"},
                    },
                    "metrics": {"total_processed": i},
                }
            )
        )
    data = b"\n".join(lines) + b"\n"
    got = _fold_scanned(data, 1 << 20, None, fastfold.MIN_SEGMENT)  # one block: one segment
    assert got.column_lines == 400
    _assert_same(got, _fold_reference(data))
    _check_log(data)


def test_values_fold_in_columns_and_are_read_back_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Completed lines whose values hold text beyond ASCII stay in the column fold (they
    broke its runs when the scanner refused them); the fold decodes no values, a row shown
    reads its own back, and the first whole-column look decodes the rest once."""
    rng = random.Random(11)
    places = ("Qu\u00e9bec", "Montr\u00e9al", "Trois-Rivi\u00e8res", "Ottawa", "K\u00f6ln")
    lines, want = [], {}
    for i in range(500):
        sid = f"s{i}"
        dwc = {"catalogNumber": f"MO-{i}", "locality": rng.choice(places) + f" {i % 7}"}
        want[sid] = dwc["locality"]
        lines.append(orjson.dumps({
            "schema_version": 1, "seq": i + 1, "event_type": "specimen.completed",
            "timestamp": "2026-11-26T10:00:00.000Z", "run_id": "r1", "specimen_id": sid,
            "sequence": i,
            "data": {"image": f"{sid}.jpg", "success": True, "dwc": dwc}}))  # fmt: skip
    data = b"\n".join(lines) + b"\n"
    assert sum(b > 0x7F for b in data) > 300
    decoded: list[int] = []
    real_fill = TermColumns._fill_parsed

    def counting(t: TermColumns, buf: Any, rows: np.ndarray, *rest: Any) -> None:
        decoded.append(len(rows))
        real_fill(t, buf, rows, *rest)

    monkeypatch.setattr(TermColumns, "_fill_parsed", counting)
    got = _fold_scanned(data, 1 << 20, None, fastfold.MIN_SEGMENT)
    assert got.column_lines == 500  # every line in one run of the column fold
    terms, state = got.state.terms, got.state
    assert not decoded and terms.pending() == 500  # nothing decoded while opening
    row = state.row_of["s321"]
    assert terms.value("locality", row) == want["s321"]  # one row read back
    assert terms.value("catalogNumber", row) == "MO-321"
    assert not decoded and terms.pending() == 500
    order = terms.sorted_rows("locality", state.rows, descending=False)  # builds, once
    assert decoded == [500] and terms.pending() == 0
    texts = [want[state.specimen_id[r]] for r in order.tolist()]
    assert texts == sorted(texts, key=str.casefold)
    assert terms.hits("k\u00f6ln", state.rows).sum() == sum("K\u00f6ln" in v for v in want.values())
    assert decoded == [500]
    monkeypatch.undo()
    _assert_same(got, _fold_reference(data))


# --------------------------------------------------------------------------- regressions
# Mismatches the property tests found, minimised to one line each. They fail until the
# scanner is fixed (events/_scan.c); see each comment for what the two paths give.
_DONE = b'{"schema_version":1,"event_type":"specimen.completed","specimen_id":"s","data":'
_QUEUED = b'{"schema_version":1,"event_type":"specimen.queued","specimen_id":"s",'
_FAILED = b'{"schema_version":1,"event_type":"specimen.failed","specimen_id":"s","data":'
REGRESSIONS: list[tuple[str, bytes]] = [
    # 2**53 + 1 as an integer literal in a number field: the general path's _num gives
    # float(2**53 + 1) == 2**53 (within range: kept); field_float in _scan.c compares the
    # integer itself against 2**53 and reports NaN ("no value"). Scanned: confidence None,
    # _conf_n 0, finish_conf []; general: 9007199254740992.0 in all three.
    ("confidence-2**53+1", _DONE + b'{"confidence":9007199254740993}}'),
    ("time-ms-minus-2**53-1", _DONE + b'{"processing_time_ms":-9007199254740993}}'),
    ("cost-2**53+1", _DONE + b'{"cost_usd":9007199254740993}}'),
    # the same in a count field: _count(2**53 + 1) == 2**53 on the general path; the column
    # fold's _counts gives 0 (tokens 0 instead of 9007199254740992, fields_extracted 0,
    # attempts 1 instead of -9007199254740992)
    ("tokens-2**53+1", _DONE + b'{"tokens":9007199254740993}}'),
    ("fields-2**53+1", _DONE + b'{"fields_extracted":9007199254740993}}'),
    ("attempts-minus-2**53-1", _DONE + b'{"attempts":-9007199254740993}}'),
    # a number past a double's range with at most 300 digits and an exponent of at most 300
    # (1e309 spelled 1000000000e300): parse_number only flags exponents past 300 or more than
    # 300 digits, so the scanner takes the line while orjson refuses it. General: a bad line
    # ("invalid JSON: number is infinity when parsed as double"), events 0, no row; scanned:
    # an event, row "s" created, bad_lines 0.
    ("overflow-in-unread-field", _QUEUED + b'"data":{"x":1000000000e300}}'),
    ("overflow-in-metrics", _QUEUED + b'"metrics":{"a":-1000000000e300}}'),
    # ... and in `error` of a failed line: fold_records decodes it with orjson, which raises
    # JSONDecodeError out of apply_chunk (the whole load fails; see the test below)
    ("overflow-in-error", _FAILED + b'{"error":{"x":1000000000e300}}}'),
]


@pytest.mark.parametrize(("why", "data"), REGRESSIONS, ids=[w for w, _ in REGRESSIONS])
def test_regression(why: str, data: bytes) -> None:
    _check_record(data)
    _check_log(data + b"\n")


def test_loading_a_log_survives_an_overflowing_error(tmp_path: Path) -> None:
    """As `herbdesk summary` loads a log (summary.load_state, default MIN_SEGMENT): 47
    queued lines and one failed line with 1000000000e300 in its error make a 48-line
    scanned segment; the column fold raised orjson.JSONDecodeError instead of counting the
    line as bad (HERBDESK_NO_SCAN=1: events 47, bad_lines 1)."""
    from herbdesk.runstate.load import load_state

    queued = b'{"schema_version":1,"seq":%d,"event_type":"specimen.queued","specimen_id":"s%d"}'
    lines = [queued % (i + 1, i) for i in range(47)]
    lines.append(_FAILED + b'{"error":{"x":1000000000e300}}}')
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastscan, "AVAILABLE", True)
        state, stats = load_state(log)
    ref = _fold_reference(log.read_bytes())
    assert (state.events, stats.bad_lines) == (47, 1)
    assert not _diff_states(state, ref.state)


def test_the_compiled_scanner_is_built_where_required() -> None:
    """CI sets HERBDESK_REQUIRE_SCAN=1: an install whose C build failed (the extension is
    optional) must fail there, not silently open every log through the Python path."""
    if not os.environ.get("HERBDESK_REQUIRE_SCAN"):
        pytest.skip("HERBDESK_REQUIRE_SCAN is not set (CI sets it)")
    assert fastscan._scan is not None, "herbdesk.events._scan was not built (no C compiler?)"
    assert fastscan.AVAILABLE
