"""Hostile input: logs and images herbdesk did not write, fed to the reader, the legacy
detection, the RunState fold, `herbdesk summary` and the engines.

Never a crash, never an allocation that grows with the damage; bad lines are counted.
(The tailer has its own tests in test_tail.py; it is out of scope here.)
"""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import assert_counts_agree

from herbdesk.cli.summary import cmd_summary
from herbdesk.events.codec import BadLine, decode
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import MAX_LINE_BYTES, ReadStats, iter_events, read_events
from herbdesk.events.types import ALL_EVENT_TYPES, Event, EventType
from herbdesk.extraction.engines.base import EngineError, ErrorKind, SpecimenInput
from herbdesk.extraction.images import MAX_PIXELS, load_image
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.runstate.state import RunState

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
event_types = st.sampled_from(sorted(ALL_EVENT_TYPES)) | st.text(max_size=20)
DATA_KEYS = (
    "total", "config", "checks", "image", "path", "reason", "message", "error", "success",
    "fields_extracted", "confidence", "processing_time_ms", "attempts", "tokens", "cost_usd",
    "checkpoint", "status", "success_rate", "at", "result", "metrics", "run_id", "specimen_id",
    "sequence", "total_images",
)  # fmt: skip
hostile_data = st.dictionaries(st.sampled_from(DATA_KEYS) | st.text(max_size=6), json_values)
ENVELOPE_KEYS = ("schema_version", "seq", "event_type", "timestamp", "run_id", "specimen_id",
                 "sequence", "data", "metrics")  # fmt: skip
timestamps = (
    st.datetimes().map(lambda d: d.isoformat())
    | st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "", "nope"])
    | st.text(max_size=25)
)


@st.composite
def hostile_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Event-shaped objects (herbdesk, legacy or result record) with any type in any field."""
    shape = draw(st.sampled_from(["herbdesk", "legacy", "result"]))
    obj: dict[str, Any] = {}
    if shape == "herbdesk":
        obj = {"schema_version": 1, "event_type": draw(event_types), "seq": draw(json_values)}
        for k in ENVELOPE_KEYS:
            if draw(st.booleans()):
                obj[k] = draw(json_values)
        obj["timestamp"] = draw(timestamps | json_values)
        obj["data"] = draw(hostile_data | json_values)
    elif shape == "legacy":
        obj = {"event_type": draw(event_types), "timestamp": draw(timestamps)}
        obj["data"] = draw(hostile_data | json_values)
    else:
        obj = {"image": draw(json_values), "dwc": draw(json_values)}
        for k in ("error", "errors", "usage", "success", "specimen_id", "sequence",
                  "dwc_confidence", "cost_usd", "processing_time_ms", "attempts"):  # fmt: skip
            if draw(st.booleans()):
                obj[k] = draw(json_values)
        if draw(st.booleans()):
            obj["usage"] = draw(
                st.dictionaries(
                    st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "cost"]),
                    json_values,
                )
            )
    return obj


def _fold(events: list[Event]) -> dict[str, Any]:
    state = RunState()
    state.apply_batch(events)
    state.take_changed_rows()
    state.eta_s(time.time())
    state.throughput_per_min(time.time())
    summary = state.summary()
    orjson.dumps(summary)  # `summary --json` must be able to print it
    return summary


# ---------------------------------------------------------------- the line decoders


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_decoders(line: bytes) -> None:
    for dec in (decode, AutoDecoder()):
        try:
            ev = dec(line)
        except BadLine:
            continue
        _fold([ev])


@FUZZ
@given(st.lists(hostile_objects(), min_size=1, max_size=8))
def test_wrong_types_in_every_field_are_bad_lines_or_fold_cleanly(objs: list[dict]) -> None:
    dec = AutoDecoder()
    events: list[Event] = []
    for obj in objs:
        try:
            events.append(dec(orjson.dumps(obj)))
        except BadLine:
            continue
    _fold(events)


@FUZZ
@given(st.lists(st.builds(
    Event,
    event_type=event_types,
    run_id=st.text(max_size=5),
    seq=st.integers(min_value=-5, max_value=2**62),
    timestamp=timestamps,
    specimen_id=st.none() | st.text(max_size=4),
    sequence=st.none() | st.integers(min_value=-5, max_value=10**12),
    data=hostile_data,
    metrics=st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
), max_size=30))  # fmt: skip
def test_runstate_fold_never_raises(events: list[Event]) -> None:
    """Duplicated, missing and huge seq, timestamps out of order or in the future, unknown
    event types, any value in any data field: the fold takes them all."""
    summary = _fold(events)
    assert summary["events"] == len(events)
    assert summary["seq_gaps"] >= 0


def test_specific_oddities_fold_as_documented() -> None:
    def ev(seq: int, et: str, ts: str, sid: str | None = None, **data: Any) -> Event:
        return Event(et, "r", seq, ts, specimen_id=sid, data=data)

    events = [
        ev(1, EventType.EXTRACTION_STARTED, "2030-01-01T00:00:00Z", total="lots"),
        ev(2, EventType.SPECIMEN_QUEUED, "2029-01-01T00:00:00Z", "a"),
        ev(2, EventType.SPECIMEN_QUEUED, "2029-01-01T00:00:00Z", "a"),  # duplicated seq
        ev(7, "specimen.teleported", "not a time", "a"),  # unknown type, a gap of 4
        ev(8, EventType.SPECIMEN_COMPLETED, "9999-12-31T23:59:59-23:59", "a",
           confidence="high", processing_time_ms=[1], cost_usd={}, tokens="many",
           attempts=None, fields_extracted=-3),
        ev(9, EventType.PREFLIGHT_COMPLETED, "", checks="all good"),
        ev(10, EventType.VALIDATION_CHECKPOINT, "", checkpoint=5, success_rate="fine"),
    ]  # fmt: skip
    s = _fold(events)
    assert (s["succeeded"], s["seq_gaps"], s["events"]) == (1, 4, 7)
    assert s["total"] is None and s["tokens"] == 0 and s["cost_usd"] == 0


# ---------------------------------------------------------------- whole files


@FUZZ
@given(
    chunks=st.lists(
        st.sampled_from([b"\x00", b"\xff\xfe", b"\n", b"\r\n", b"{", b"}", b'"', b"\xed\xa0\x80"])
        | st.binary(max_size=40)
        | hostile_objects().map(orjson.dumps),
        max_size=40,
    )
)
def test_files_of_junk_are_read_to_the_end_with_bad_lines_counted(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes]
) -> None:
    path = tmp_path_factory.mktemp("junk") / "events.jsonl"
    good = orjson.dumps(Event(EventType.SPECIMEN_QUEUED, "r", 1, "", "x").to_dict())
    path.write_bytes(b"".join(chunks) + b"\n" + good + b"\n")
    stats = ReadStats()
    events = list(iter_events(path, stats))
    nonblank = [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]
    assert stats.lines == len(nonblank) == stats.events + stats.bad_lines
    assert events[-1].specimen_id == "x"  # the reader never stops at a bad line
    _fold(events)


def test_nul_invalid_utf8_and_deep_nesting_are_counted(tmp_path: Path) -> None:
    good = orjson.dumps(Event(EventType.SPECIMEN_QUEUED, "r", 1, "", "x").to_dict())
    lines = [
        b"\x00" * 50,
        b'{"event_type": "specimen.queued", "schema_version": 1, "run_id": "\xff\xfe"}',
        b'{"a": ' * 5000 + b"1" + b"}" * 5000,
        b"[" * 100_000,
        good,
        b'{"schema_version": 1, "event_type": "x", "seq": 1e999}',
        good[: len(good) // 2],  # torn
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines))
    _, stats = read_events(path)
    assert (stats.events, stats.bad_lines) == (1, 6)
    assert [b.line_no for b in stats.bad_samples] == [1, 2, 3, 4, 6, 7]


def _write_huge_line(path: Path, size: int) -> None:
    good = orjson.dumps(Event(EventType.SPECIMEN_QUEUED, "r", 1, "", "x").to_dict())
    with open(path, "wb") as fh:
        fh.write(good + b"\n")
        fh.write(b'{"event_type": "specimen.queued", "data": {"image": "')
        block = b"A" * (1 << 20)
        for _ in range(size // len(block)):
            fh.write(block)
        fh.write(b'"}}\n')
        fh.write(good.replace(b'"seq":1', b'"seq":2') + b"\n")


def test_a_100mb_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_huge_line(path, 100 << 20)
    tracemalloc.start()
    try:
        stats = ReadStats()
        events = list(iter_events(path, stats))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.seq for e in events] == [1, 2]
    assert stats.bad_lines == 1 and "longer than" in stats.bad_samples[0].reason
    assert peak < 2 * MAX_LINE_BYTES + (8 << 20), f"peak {peak / 2**20:.0f} MiB"
    summary_state = RunState()
    summary_state.apply_batch(events)
    assert summary_state.rows == 1


def test_line_just_under_the_cap_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    rec = {"image": "a.jpg", "specimen_id": "a", "dwc": {}, "error": "x" * (MAX_LINE_BYTES - 200)}
    path.write_bytes(orjson.dumps(rec) + b"\n")
    events, stats = read_events(path)
    assert stats.bad_lines == 0 and events[0].specimen_id == "a"


def test_a_directory_or_fifo_in_place_of_the_log_is_an_error_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "events.jsonl").mkdir(parents=True)
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    for target in (run_dir / "events.jsonl", fifo):
        done: list[BaseException | None] = []

        def read(target: Path = target, done: list[BaseException | None] = done) -> None:
            try:
                list(iter_events(target))
                done.append(None)
            except BaseException as exc:
                done.append(exc)

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(5)
        if not done:  # unblock the reader so the thread ends, then fail
            with open(fifo, "wb"):
                pass
            pytest.fail(f"reading {target} hangs")
        assert isinstance(done[0], OSError) and "not a regular file" in str(done[0])
    assert cmd_summary(run_dir) == 2
    assert cmd_summary(fifo, as_json=True) == 2
    err = capsys.readouterr().err
    assert err.count("not a regular file") == 2


def test_summary_prints_hostile_checkpoints_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        {"schema_version": 1, "seq": 1, "event_type": "validation.checkpoint",
         "data": {"checkpoint": [1], "status": {"x": 1}, "success_rate": "high"}},
        {"schema_version": 1, "seq": 2, "event_type": "validation.warning", "data": {"message": 5}},
        {"schema_version": 1, "seq": 3, "event_type": "extraction.failed",
         "data": {"reason": ["x"], "message": {"y": 2}}},
    ]  # fmt: skip
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    assert cmd_summary(path) == 0
    assert cmd_summary(path, as_json=True) == 0
    assert "checkpoint" in capsys.readouterr().out


# ---------------------------------------------------------------- hostile images


def _truncated_jpeg(folder: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 120, 60)).save(buf, format="JPEG", quality=90)
    p = folder / "truncated.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return p


def _png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid 1-bit PNG of side x side pixels: ~40 KB on disk, 1.2 GB once decoded to RGB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture()
def hostile_images(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "hostile"
    d.mkdir()
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("This is a text file wearing a .jpg name.\n" * 20)
    return {
        "truncated.jpg": _truncated_jpeg(d),
        "empty.jpg": d / "empty.jpg",
        "notes.jpg": d / "notes.jpg",
        "bomb.png": _png_bomb(d / "bomb.png"),
    }


EXPECTED_WORDS = {
    "truncated.jpg": "truncated",
    "empty.jpg": "cannot decode",
    "notes.jpg": "cannot decode",
    "bomb.png": "too large",
}


def test_load_image_refuses_each_hostile_image_with_a_clear_reason(
    hostile_images: dict[str, Path],
) -> None:
    tracemalloc.start()
    try:
        for name, path in hostile_images.items():
            with pytest.raises(EngineError) as info:
                load_image(path, max_side=2048)
            assert info.value.kind == ErrorKind.IMAGE
            assert EXPECTED_WORDS[name] in info.value.message, info.value.message
            assert name in info.value.message
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # the bomb is refused from its header, never decoded
    assert 20_000 * 20_000 > MAX_PIXELS >= 20_000 * 15_000  # the largest real scans still open


def test_hostile_images_are_failed_specimens_through_the_pipeline(
    tmp_path: Path, hostile_images: dict[str, Path], many_images
) -> None:
    folder = next(iter(hostile_images.values())).parent
    good = many_images(4)
    for p in good.iterdir():
        p.rename(folder / p.name)
    # the hostile files sort first: judge the run after all 8, not after the first 5
    validation = ValidationConfig(checkpoint_after=8)
    with FakeApi() as api:
        outcome, _ = run(api_config(folder, tmp_path / "runs", api.base_url, validation=validation))
        assert api.state.chat_requests == 4  # no request is spent on an unreadable image
    assert outcome.status == "completed"
    by_image = {r["image"]: r for r in raw_records(outcome.run_dir)}
    for name, words in EXPECTED_WORDS.items():
        rec = by_image[name]
        assert rec["success"] is False and rec["error"]["kind"] == "image_error"
        assert words in rec["error"]["message"]
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (4, 4)
    fails = [e for e in events_of(outcome.run_dir) if e.event_type == EventType.SPECIMEN_FAILED]
    assert all(e.data["attempts"] == 1 for e in fails)  # an image error is never retried


def test_ocr_engine_refuses_hostile_images_before_any_ocr(
    hostile_images: dict[str, Path],
) -> None:
    from herbdesk.extraction.engines.base import EngineSettings
    from herbdesk.extraction.engines.ocr import OcrEngine

    engine = OcrEngine(EngineSettings(engine="ocr"))
    try:
        for name, path in hostile_images.items():
            with pytest.raises(EngineError) as info:
                engine.extract(SpecimenInput(path=path, specimen_id=name))
            assert info.value.kind == ErrorKind.IMAGE
            assert EXPECTED_WORDS[name] in info.value.message
    finally:
        engine.close()


# ---------------------------------------------------------------- the long fuzz (opt-in)

LONG_FUZZ = settings(FUZZ, max_examples=5000)


@pytest.mark.soak
@LONG_FUZZ
@given(st.binary(max_size=2000))
def test_long_fuzz_random_bytes(line: bytes) -> None:
    test_random_bytes_never_crash_the_decoders.hypothesis.inner_test(line)


@pytest.mark.soak
@LONG_FUZZ
@given(st.lists(hostile_objects(), min_size=1, max_size=20))
def test_long_fuzz_wrong_types(objs: list[dict]) -> None:
    inner = test_wrong_types_in_every_field_are_bad_lines_or_fold_cleanly.hypothesis.inner_test
    inner(objs)
