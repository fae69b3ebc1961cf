"""Filtering inside EventLogModel over an opened log and live events; rows on the refresh tick."""

from __future__ import annotations

import ast
import inspect
import json
import random
import re
import textwrap
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_ui_widgets import Events, column, realistic_run, sid, wait_text

from herbdesk.events.codec import decode, encode
from herbdesk.events.reader import EventIndex, EventStore
from herbdesk.events.types import Event, EventType
from herbdesk.runstate.values import error_text
from herbdesk.ui import eventlog, eventlog_format
from herbdesk.ui import loader as loader_mod
from herbdesk.ui.document import RunDocument
from herbdesk.ui.eventlog import (
    COL_TYPE,
    EventLogModel,
    EventLogPane,
    raw_needle,
    summarize,
    type_mask,
)
from herbdesk.ui.eventlog_format import SUMMARY_LITERALS
from herbdesk.ui.loader import LogLoader

if TYPE_CHECKING:
    from pytestqt.modeltest import ModelTester
    from pytestqt.qtbot import QtBot

FAILED, COMPLETED, QUEUED = (
    EventType.SPECIMEN_FAILED,
    EventType.SPECIMEN_COMPLETED,
    EventType.SPECIMEN_QUEUED,
)


@pytest.fixture()
def doc(qtbot: QtBot) -> RunDocument:
    return RunDocument()


def run_events(ev: Events, n: int, seed: int = 3) -> list[Event]:
    """A run of n specimens: queued, processing, then completed or failed (and some retries)."""
    rng = random.Random(seed)
    out = realistic_run(ev)
    out += [ev.queued(i) for i in range(10, 10 + n)]
    for i in range(10, 10 + n):
        out.append(ev(EventType.SPECIMEN_PROCESSING, i, image=f"specimen_{i:03d}.jpg"))
        if rng.random() < 0.1:
            out.append(ev(EventType.SPECIMEN_RETRYING, i, attempt=1, delay_s=1.0))
        if rng.random() < 0.2:
            out.append(ev.failed(i, rng.choice(["timeout", "http_500"])))
        else:
            out.append(ev.completed(i, round(rng.random(), 2)))
    return out


def write_log(path: Path, events: list[Event]) -> Path:
    path.write_bytes(b"".join(encode(e) for e in events))
    return path


def open_log(qtbot: QtBot, doc: RunDocument, path: Path) -> list[tuple[int, int]]:
    """Load a log into the document in blocks, as the window does; the (first, count) of
    every block."""
    blocks: list[tuple[int, int]] = []
    doc.events_added.connect(lambda first, count: blocks.append((first, count)))
    doc.reset(None, str(path))
    loader = LogLoader(path)
    loader.events_loaded.connect(doc.apply_events)
    with qtbot.waitSignal(loader.loaded, timeout=20000):
        loader.start()
    loader.wait()
    qtbot.waitUntil(lambda: len(doc.events) == len(doc.events.file_index or []), timeout=5000)
    doc.flush()
    return blocks


@pytest.fixture()
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_mod, "FIRST_BYTES", 2048)
    monkeypatch.setattr(loader_mod, "CHUNK_BYTES", 4096)


def shown(model: EventLogModel) -> list[int]:
    return [model.event_index(r) for r in range(model.rowCount())]


def expected(store: EventStore | list[Event], event_type: str | None, text: str) -> list[int]:
    needle = text.strip().casefold()
    out = []
    for i, e in enumerate(store):
        if event_type is not None and e.event_type != event_type:
            continue
        if needle and not any(
            needle in s.casefold() for s in (e.event_type, e.specimen_id or "", summarize(e))
        ):
            continue
        out.append(i)
    return out


def test_type_filter_over_opened_log_and_live_events(
    qtbot: QtBot, tmp_path: Path, doc: RunDocument, small_blocks: None
) -> None:
    ev = Events()
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.resize(700, 220)
    pane.show()
    qtbot.waitExposed(pane)
    pane.attach(doc)
    blocks = open_log(qtbot, doc, write_log(tmp_path / "events.jsonl", run_events(ev, 150)))
    store, model = doc.events, pane.model
    assert len(blocks) > 5 and store.file_index is not None and store.limit == len(store)
    assert pane.table.model() is model and model.rowCount() == len(store)

    pane.type_combo.setCurrentText(FAILED)
    want = expected(store, FAILED, "")
    assert 10 < len(want) < 60
    assert shown(model) == want
    assert column(pane.model, COL_TYPE) == [FAILED] * len(want)
    wait_text(qtbot, pane.count_label, f"{len(want)} of {len(store)} events")

    # live events after the opened file (held in the store's tail): matching ones appear
    sb = pane.table.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.maximum() > 0 and sb.value() == sb.maximum())
    total = len(store)
    live = [ev.queued(500), ev.failed(500, "http_500"), ev.queued(501), ev.failed(501)]
    doc.apply_events(live[:2])
    doc.apply_events(live[2:])
    assert store.limit < len(store) == total + 4
    assert model.rowCount() == len(want)  # announced on the refresh tick
    doc.flush()
    assert shown(model) == [*want, total + 1, total + 3]
    assert column(pane.model, COL_TYPE)[-2:] == [FAILED, FAILED]
    assert pane.model.index(pane.model.rowCount() - 1, 3).data() == sid(501)[:12]
    qtbot.waitUntil(lambda: sb.value() == sb.maximum())  # still following the newest
    wait_text(qtbot, pane.count_label, f"{len(want) + 2} of {total + 4} events")
    doc.apply_events([ev.queued(502)])  # none matching: nothing inserted, the total grows
    doc.flush()
    assert model.rowCount() == len(want) + 2
    wait_text(qtbot, pane.count_label, f"{len(want) + 2} of {total + 5} events")

    # a type that only held events have, and one code over both parts of the store
    pane.type_combo.setCurrentText(COMPLETED)
    assert shown(model) == expected(store, COMPLETED, "")
    pane.type_combo.setCurrentText(QUEUED)
    assert shown(model) == expected(store, QUEUED, "")
    assert shown(model)[-3:] == [total, total + 2, total + 4]


def test_text_filter_narrows_widens_and_clears(
    qtbot: QtBot, tmp_path: Path, doc: RunDocument, small_blocks: None
) -> None:
    ev = Events()
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.attach(doc)
    open_log(qtbot, doc, write_log(tmp_path / "events.jsonl", run_events(ev, 80)))
    doc.apply_events([ev.failed(300, "http_500", "upstream said NO"), ev.queued(301)])
    doc.flush()
    store, model = doc.events, pane.model
    total = len(store)

    steps: list[tuple[str | None, str]] = [
        (None, "HTTP_500"),  # in the summary
        (None, "http_500 · upstream"),  # longer: narrows the rows shown
        (None, "said no"),  # held event
        (None, "specimen_01"),
        (None, "specimen_012"),
        (FAILED, "specimen_012"),
        (FAILED, "specimen_0"),  # shorter: widens
        (None, "retrying"),  # type name only, no decoding needed
        (None, sid(42)[:10].upper()),  # specimen id
        (EventType.SPECIMEN_PROCESSING, ""),
        (EventType.SPECIMEN_PROCESSING, "specimen_02"),
        (None, "no such text"),
    ]
    for event_type, text in steps:
        pane.type_combo.setCurrentText(event_type or "All")
        pane.search_edit.setText(text)
        assert shown(model) == expected(store, event_type, text), (event_type, text)
    assert model.rowCount() == 0
    wait_text(qtbot, pane.count_label, f"0 of {total} events")

    pane.search_edit.clear()
    pane.type_combo.setCurrentText("All")
    assert pane.table.model() is model and model.rowCount() == total
    assert model._order is None  # no filter: rows map 1:1, no permutation is built
    assert shown(model) == list(range(total))
    wait_text(qtbot, pane.count_label, f"{total} of {total} events")


def test_filtered_model_passes_modeltester(qtmodeltester: ModelTester, doc: RunDocument) -> None:
    ev = Events()
    model = EventLogModel()
    events = run_events(ev, 20)
    store = EventStore()
    store.extend(events)
    model.reset(store)
    model.set_type_filter(FAILED)
    model.set_text_filter("TIMEOUT")
    assert model.filter() == (FAILED, "timeout")
    assert model.rowCount() == len(expected(store, FAILED, "timeout")) > 0
    qtmodeltester.check(model)  # and every insertion below
    more = [ev.failed(90, "timeout"), ev.queued(91), ev.failed(92, "http_500")]
    store.extend(more)
    model.grow_to(len(store))
    assert shown(model) == expected(store, FAILED, "timeout")
    assert column(model, 3)[-1] == sid(90)[:12]
    model.set_text_filter("")
    assert shown(model) == expected(store, FAILED, "")
    model.set_type_filter("All")
    assert model.filter() == (None, "")
    assert shown(model) == list(range(len(store)))
    qtmodeltester.check(model)


def test_rows_announced_per_refresh_not_per_block(
    qtbot: QtBot, tmp_path: Path, doc: RunDocument, small_blocks: None
) -> None:
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.attach(doc)
    inserts: list[tuple[int, int]] = []
    pane.model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    view_inserts: list[int] = []  # what the view sees: the model itself, no proxy between
    pane.table.model().rowsInserted.connect(lambda *_a: view_inserts.append(1))
    blocks = open_log(qtbot, doc, write_log(tmp_path / "events.jsonl", run_events(Events(), 300)))
    total = len(doc.events)
    assert len(blocks) >= 20
    # the load folds ~4 refreshes a second: a handful of insertions, not one per block
    assert 1 <= len(inserts) <= max(3, len(blocks) // 5), (len(inserts), len(blocks))
    assert len(view_inserts) == len(inserts)
    assert inserts[0][0] == 0 and inserts[-1][1] == total - 1
    assert all(b[0] == a[1] + 1 for a, b in pairwise(inserts))

    # live batches between two refreshes: one insertion
    inserts.clear()
    ev = Events()
    for i in range(10):
        doc.apply_events([ev.queued(1000 + i), ev(EventType.SPECIMEN_PROCESSING, 1000 + i)])
    doc.flush()
    assert inserts == [(total, total + 19)]


def test_selection_kept_across_filter_changes(qtbot: QtBot, doc: RunDocument) -> None:
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.resize(700, 220)
    pane.show()
    qtbot.waitExposed(pane)
    pane.attach(doc)
    doc.apply_events(run_events(Events(), 60))
    doc.flush()
    model = pane.model
    target = next(i for i in expected(doc.events, FAILED, "") if i > 100)
    pane.table.setCurrentIndex(pane.model.index(model.view_row(target), 0))
    pane.type_combo.setCurrentText(FAILED)
    assert model.event_index(pane.table.currentIndex().row()) == target
    pane.type_combo.setCurrentText("All")
    assert model.event_index(pane.table.currentIndex().row()) == target
    pane.type_combo.setCurrentText(COMPLETED)  # filtered out: no current row
    assert not pane.table.currentIndex().isValid()


def test_type_mask_reads_codes_of_both_parts(tmp_path: Path) -> None:
    ev = Events()
    events = run_events(ev, 10)
    store = EventStore()
    store.extend(events)
    want = [e.event_type == FAILED for e in events]
    assert type_mask(store, 0, len(store), lambda t: t == FAILED).tolist() == want
    assert type_mask(events, 3, 20, lambda t: t == FAILED).tolist() == want[3:20]
    assert type_mask(store, 5, 5, lambda t: True).tolist() == []


# --------------------------------------------------------------------------- text search
# The text filter searches raw lines as bytes and decodes only the events that may match: it
# must give exactly the rows of decoding and checking every event (`expected`).
ODD_STRINGS = [
    "DAO0123.jpg", "specimen_007.jpg", "bad_reply", "Québec", "STRASSE", "Straße", "ẞ",
    "\u212aelvin", "İstanbul", "ﬁnch", "ſpecial", 'say "hi"', "back\\slash", "tab\there",
    "line\nbreak", "unit\x1fsep", "nb\xa0sp", "zero\u200bwidth", "two  spaces", "None",
    "true", "x" * 400, "a\u00e9b", "\u00c9COLE", "1e5", "0.87", "[1, 2]", "{'a': 1}",
    "", " padded ",
]  # fmt: skip
RAW_NUMBERS = ["1e5", "1E-3", "1.50", "-0.0", "0.869", "12345678901234567890.5", "2.5e+2", "7"]
KEYS = [
    "image", "reason", "attempt", "delay_s", "error", "confidence", "processing_time_ms",
    "fields_extracted", "checkpoint", "status", "success_rate", "threshold", "message",
    "consumer", "on_event", "on_seq", "until", "processed", "succeeded", "total", "config",
    "resumed", "checks", "other",
]  # fmt: skip
TYPES = [
    *(v for k, v in vars(EventType).items() if k.isupper() and isinstance(v, str)),
    "custom.thing",
]


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind < 2:
        return rng.choice(ODD_STRINGS)
    if kind == 2:
        return f"@num{rng.randrange(len(RAW_NUMBERS))}@"  # written as a raw JSON number
    if kind == 3:
        return rng.choice([None, True, False])
    if kind == 4:
        return rng.choice([0, 3, 123, -4, 0.5, 0.869, 1e-5, 0.125])
    if kind == 5:
        return rng.choice(ODD_STRINGS) + rng.choice(ODD_STRINGS)
    if kind == 6:
        return {"kind": _value(rng, depth + 1), "message": _value(rng, depth + 1)}
    if kind == 7:
        return [{"name": _value(rng, depth + 1), "detail": _value(rng, depth + 1), "ok": False}]
    return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]


def random_line(rng: random.Random, seq: int) -> tuple[bytes, str]:
    """A raw JSON event line as any writer might produce it (escaped or not, numbers in any
    form) and its event type."""
    event_type = rng.choice(TYPES)
    data = {k: _value(rng) for k in rng.sample(KEYS, rng.randrange(8))}
    obj: dict[str, object] = {"seq": seq, "event_type": event_type, "timestamp": "", "run_id": ""}
    if rng.random() < 0.7:
        obj["specimen_id"] = rng.choice(ODD_STRINGS) + str(seq)
    obj["data"] = data
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.3)
    text = re.sub(r'"@num(\d+)@"', lambda m: RAW_NUMBERS[int(m.group(1))], text)
    return text.encode() + b"\n", event_type


def random_store(tmp_path: Path, seed: int, n: int = 160, held: int = 40) -> EventStore:
    """An opened file of n random lines (indexed as the loader does) plus held events."""
    rng = random.Random(seed)
    path = tmp_path / f"events{seed}.jsonl"
    index = EventIndex(path)
    out, pos = [], 0
    for seq in range(n):
        line, event_type = random_line(rng, seq)
        if rng.random() < 0.05:
            out.append(b"\n")  # a blank line between events
            pos += 1
        index.add_line(pos, len(line), event_type)
        out.append(line)
        pos += len(line)
    path.write_bytes(b"".join(out))
    store = EventStore(index, len(index))
    store.extend(decode(random_line(rng, n + k)[0]) for k in range(held))
    return store


def needles_for(store: EventStore, rng: random.Random, count: int) -> list[str]:
    """Words and runs of what is shown, substrings of it and of the raw lines (in random
    case), and odd ones."""
    texts, words = [], set()
    for e in store:
        texts += [summarize(e), e.specimen_id or "", e.event_type]
        shown_text = summarize(e).casefold()
        words.update(shown_text.split(), re.findall(r"[!-~]+", shown_text))
        words.update(re.findall(r"[0-9A-Za-z_.+-]+", shown_text))
    assert store.file_index is not None and store.file_index.path is not None
    texts += store.file_index.path.read_text("utf-8").splitlines()
    out = [*SUMMARY_LITERALS, "0123", "87", "none", "true", "1e", "100000", "ss", "k", "fi"]
    out += ["strasse", "xa0", "u200b", "two spaces", 'say "hi', "\\", "é", "a b", "1000.0"]
    out += ["kelvin", "finch", "special", "xa0sp", "250.0", "0.001", "jpg:", "0.87", "1e-05"]
    out += rng.sample(sorted(words), min(len(words), count))
    count *= 2
    while len(out) < count:
        t = rng.choice(texts)
        if not t:
            continue
        a = rng.randrange(len(t))
        piece = t[a : a + rng.randrange(1, 12)]
        out.append(piece.upper() if rng.random() < 0.3 else piece)
    return out


def finish(qtbot: QtBot, model: EventLogModel) -> None:
    qtbot.waitUntil(lambda: not model.searching(), timeout=10000)


@pytest.fixture()
def tiny_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few events and no work at once: every filter goes on in slices."""
    monkeypatch.setattr(eventlog, "BLOCK_EVENTS", 7)
    monkeypatch.setattr(eventlog, "BLOCK_BYTES", 900)
    monkeypatch.setattr(eventlog, "CHECK_CHUNK", 3)
    monkeypatch.setattr(eventlog, "SYNC_S", 0.0)
    monkeypatch.setattr(eventlog, "SLICE_S", 0.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_text_filter_same_rows_as_decoding_everything(
    qtbot: QtBot, tmp_path: Path, seed: int
) -> None:
    store = random_store(tmp_path, seed)
    model = EventLogModel()
    model.reset(store)
    rng = random.Random(seed)
    for needle in needles_for(store, rng, 150):
        event_type = rng.choice([None, None, None, *TYPES[:4]])
        model.set_filter(event_type, needle.strip().casefold())
        finish(qtbot, model)
        assert shown(model) == expected(store, event_type, needle), (event_type, needle)


def test_text_filter_in_slices_narrowing_and_growing(
    qtbot: QtBot, qtmodeltester: ModelTester, tmp_path: Path, tiny_steps: None
) -> None:
    store = random_store(tmp_path, 7, n=200, held=0)
    tail = [decode(random_line(random.Random(8), 500 + k)[0]) for k in range(60)]
    model = EventLogModel()
    model.reset(store)
    qtmodeltester.check(model)
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    for needle in ["s", "sp", "spe", "specimen", "DAO", "dao0123.jpg", "é", "", "QUÉ", "xyz"]:
        model.set_text_filter(needle)
        if needle:
            assert model.searching()  # nothing done at once: the timer finds the rows
            qtbot.wait(1)
            if store.limit == len(store) and needle == "DAO":  # events come during a scan
                store.extend(tail[:30])
                model.grow_to(len(store))
        finish(qtbot, model)
        assert shown(model) == expected(store, None, needle), needle
        assert model.filter() == (None, needle.strip().casefold())
    assert all(b[0] == a[1] + 1 for a, b in pairwise(inserts) if b[0] > a[0])
    store.extend(tail[30:])  # and after one
    model.grow_to(len(store))
    finish(qtbot, model)
    assert shown(model) == expected(store, None, "xyz")
    model.set_text_filter("jpg")
    finish(qtbot, model)
    assert shown(model) == expected(store, None, "jpg")


def test_pane_counts_while_searching(qtbot: QtBot, tmp_path: Path, tiny_steps: None) -> None:
    store = random_store(tmp_path, 5, n=300)
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.reset(store)
    pane.search_edit.setText("jpg")
    assert pane.model.searching()
    want = expected(store, None, "jpg")
    wait_text(qtbot, pane.count_label, f"{len(want)} of {len(store)} events")
    assert shown(pane.model) == want


def test_raw_needle_is_only_used_where_it_cannot_miss() -> None:
    assert raw_needle("dao0123") is not None
    assert raw_needle("bad_reply") is not None
    assert raw_needle("failed: bad_reply") is not None  # a copied run of it is searched
    for needle in ["0123", "1.5", "none", "fields", "d", "s", ":", "·", "é", ""]:
        assert raw_needle(needle) is None, needle


def test_summary_literals_cover_what_summaries_write() -> None:
    """Every string the summary code writes itself is in SUMMARY_LITERALS (keys looked up
    with .get() or [] are not written)."""
    skip: set[int] = set()
    found: set[str] = set()
    for fn in (eventlog_format.describe, error_text, eventlog_format.pct, summarize):
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "get" and node.args:
                    skip.add(id(node.args[0]))
            elif isinstance(node, ast.Subscript):
                skip.add(id(node.slice))
            elif isinstance(node, ast.Compare):  # compared with, not written
                skip.update(id(n) for n in node.comparators if isinstance(n, ast.Constant))
            elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
                skip.update(id(n) for n in ast.walk(node.format_spec))
            elif isinstance(node, ast.FunctionDef) and ast.get_docstring(node):
                skip.add(id(node.body[0].value))  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and node.value and id(node) not in skip:
                found.add(node.value)
    assert found - set(SUMMARY_LITERALS) == set()


def test_review_verdicts_read_as_verdicts_not_json() -> None:
    def verdict(et: str, extracted: str, value: str) -> str:
        data = {"term": "scientificName", "extracted": extracted, "value": value}
        return summarize(
            Event(et, "r", 9, "2026-12-03T10:00:00Z", "s1", None, {**data, "sample": "random"})
        )

    assert verdict(EventType.REVIEW_ACCEPTED, "Carex aurea", "Carex aurea") == (
        "scientificName: accepted “Carex aurea” · random sample"
    )
    assert verdict(EventType.REVIEW_CORRECTED, "Identified by", "Carex aurea Nutt.") == (
        "scientificName: corrected “Identified by” → “Carex aurea Nutt.” · random sample"
    )
    assert verdict(EventType.REVIEW_REJECTED, "2809", "").startswith(
        "scientificName: rejected “2809”"
    )
