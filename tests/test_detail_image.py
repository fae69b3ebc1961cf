"""The specimen detail pane decodes the sheet off the GUI thread (pytest-qt, offscreen).

No timing assertions: a slow decode is made deterministic with a gate on load_image.
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import shiboken6
from PySide6.QtCore import QEvent
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget

import herbdesk.ui.detail as detail_mod
from herbdesk.events.types import Event, EventType
from herbdesk.runstate.state import RunState
from herbdesk.ui.detail import LOADING_TEXT, SpecimenDetail

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot

ROOT = Path(__file__).resolve().parents[1]
_SHARED = ROOT.parent / "shared" / "data" / "specimens"
SPECIMENS = (
    _SHARED if (_SHARED / "specimen_001.jpg").is_file() else ROOT / "resources" / "specimens"
)
SHEET = SPECIMENS / "specimen_001.jpg"  # 1068 x 1600
SHEET_SIZE = [1068, 1600]
WAIT_MS = 10000


def _state(*paths: str | Path) -> RunState:
    """One completed specimen per path, in order (row i is paths[i])."""
    state = RunState()
    seq = 0

    def ev(et: str, i: int, **data: object) -> Event:
        nonlocal seq
        seq += 1
        return Event(
            event_type=et,
            run_id="run-detail",
            seq=seq,
            timestamp=f"2026-11-26T21:00:{seq:02d}.000Z",
            specimen_id=hashlib.sha256(f"sheet-{i}".encode()).hexdigest(),
            sequence=i + 1 if et == EventType.SPECIMEN_COMPLETED else None,
            data=data,
        )

    for i, path in enumerate(paths):
        name = Path(path).name if path else f"specimen_{i:03d}.jpg"
        state.apply(ev(EventType.SPECIMEN_QUEUED, i, image=name, path=str(path)))
    for i, _ in enumerate(paths):
        state.apply(
            ev(
                EventType.SPECIMEN_COMPLETED,
                i,
                image=f"specimen_{i:03d}.jpg",
                success=True,
                fields_extracted=12,
                confidence=0.9,
                processing_time_ms=1000.0,
                attempts=1,
                tokens=10,
                cost_usd=0.0,
            )
        )
    return state


def _small_sheet(tmp_path: Path, name: str, size: tuple[int, int]) -> Path:
    from PIL import Image

    path = tmp_path / name
    Image.new("RGB", size, (180, 170, 150)).save(path)
    return path


def _pixmap_size(detail: SpecimenDetail) -> list[int]:
    pixmap = detail.image_view._item.pixmap()
    return sorted((pixmap.width(), pixmap.height()))


class Gate:
    """Holds load_image for one path until released; counts every decode started."""

    def __init__(self, held: Path) -> None:
        self.held = str(held)
        self.started = threading.Event()  # the held decode is running in a pool thread
        self.release = threading.Event()
        self.calls: list[str] = []
        self._real = detail_mod.load_image

    def __call__(self, path: str) -> tuple[QImage | None, str]:
        self.calls.append(path)
        if path == self.held:
            self.started.set()
            self.release.wait(WAIT_MS / 1000)
        return self._real(path)


@pytest.fixture()
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Gate]]:
    gates: list[Gate] = []

    def make(held: Path) -> Gate:
        g = Gate(held)
        monkeypatch.setattr(detail_mod, "load_image", g)
        gates.append(g)
        return g

    yield make
    for g in gates:  # never leave a pool thread blocked, whatever the test did
        g.release.set()
    assert detail_mod.wait_for_decodes(WAIT_MS)


@pytest.fixture()
def detail(qtbot: QtBot) -> SpecimenDetail:
    widget = SpecimenDetail()
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.show()
    return widget


def _decoded(qtbot: QtBot):  # the shared emitter: every finished decode, stale or not
    signals, _ = detail_mod._decoder()
    return qtbot.waitSignal(signals.decoded, timeout=WAIT_MS)


def test_real_sheet_is_shown_after_background_decode(
    qtbot: QtBot, detail: SpecimenDetail, tmp_path: Path
) -> None:
    other = _small_sheet(tmp_path, "other.jpg", (300, 200))
    state = _state(SHEET, other)
    detail.show_specimen(state, 0, None)
    # returns at once: the decode has not been delivered yet, so the pane says so
    assert detail.image_pending()
    assert detail.image_stack.currentWidget() is detail.placeholder
    assert detail.placeholder.text() == LOADING_TEXT
    qtbot.waitUntil(lambda: detail.image_view.has_image(), timeout=WAIT_MS)
    assert not detail.image_pending()
    assert detail.image_stack.currentWidget() is detail.image_view
    assert _pixmap_size(detail) == SHEET_SIZE

    # the next specimen never shows under the previous one's sheet while it decodes
    with qtbot.waitSignal(detail.image_loaded, timeout=WAIT_MS) as blocker:
        detail.show_specimen(state, 1, None)
        assert detail.placeholder.text() == LOADING_TEXT
        assert detail.image_stack.currentWidget() is detail.placeholder
        assert not detail.image_view.has_image()
    assert blocker.args == [True]
    assert _pixmap_size(detail) == [200, 300]

    # wait_for_image() spins the event loop until the pane settles (screenshots use it)
    detail.show_specimen(state, 0, None)
    assert detail.image_pending()
    assert detail.wait_for_image(WAIT_MS)
    assert _pixmap_size(detail) == SHEET_SIZE
    assert detail.wait_for_image(0)  # nothing pending: returns at once


def test_same_sheet_again_starts_no_second_decode(
    qtbot: QtBot, detail: SpecimenDetail, gate: Callable[[Path], Gate]
) -> None:
    g = gate(SHEET)
    state = _state(SHEET)
    detail.show_specimen(state, 0, None)
    assert g.started.wait(WAIT_MS / 1000)
    detail.show_specimen(state, 0, None)  # a live refresh of the same row while decoding
    detail.show_specimen(state, 0, None)
    with qtbot.waitSignal(detail.image_loaded, timeout=WAIT_MS):
        g.release.set()
    assert g.calls == [str(SHEET)]
    assert _pixmap_size(detail) == SHEET_SIZE
    detail.show_specimen(state, 0, None)  # shown already: kept, not decoded again
    assert not detail.image_pending()
    assert g.calls == [str(SHEET)]


def test_stale_decode_finishing_last_is_ignored(
    qtbot: QtBot, detail: SpecimenDetail, tmp_path: Path, gate: Callable[[Path], Gate]
) -> None:
    b = _small_sheet(tmp_path, "b.jpg", (300, 200))
    g = gate(SHEET)  # A's decode is held until B's is shown
    state = _state(SHEET, b)
    detail.show_specimen(state, 0, None)  # A
    assert g.started.wait(WAIT_MS / 1000)
    with qtbot.waitSignal(detail.image_loaded, timeout=WAIT_MS):
        detail.show_specimen(state, 1, None)  # then B, quickly
    assert _pixmap_size(detail) == [200, 300]

    with _decoded(qtbot) as late:  # now A's decode finishes, last
        g.release.set()
    assert late.args is not None and late.args[1] == str(SHEET)
    QApplication.processEvents()
    assert _pixmap_size(detail) == [200, 300]  # still B
    assert detail.image_stack.currentWidget() is detail.image_view
    assert not detail.image_pending()


def test_result_with_an_old_token_is_dropped(
    qtbot: QtBot, detail: SpecimenDetail, tmp_path: Path
) -> None:
    b = _small_sheet(tmp_path, "b.jpg", (300, 200))
    state = _state(SHEET, b)
    detail.show_specimen(state, 0, None)
    old_token = detail._token
    detail.show_specimen(state, 1, None)
    assert detail._token != old_token
    # a stale result delivered before the current one: ignored, still loading
    detail._on_decoded(old_token, str(SHEET), QImage(str(SHEET)), "")
    assert detail.image_pending() and not detail.image_view.has_image()
    assert detail.placeholder.text() == LOADING_TEXT
    assert detail.wait_for_image(WAIT_MS)
    detail._on_decoded(old_token, str(SHEET), QImage(str(SHEET)), "")  # and after it
    assert _pixmap_size(detail) == [200, 300]


def test_missing_and_unreadable_files_keep_their_messages(
    qtbot: QtBot, detail: SpecimenDetail, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    state = _state(missing, "", broken)

    detail.show_specimen(state, 0, None)  # answered at once: no decode, no "Loading" flash
    assert not detail.image_pending()
    assert detail.placeholder.text() == f"Image not found:\n{missing}"
    assert detail.image_stack.currentWidget() is detail.placeholder

    detail.show_specimen(state, 1, None)
    assert not detail.image_pending()
    assert detail.placeholder.text() == "No image path is recorded for this specimen."

    with qtbot.waitSignal(detail.image_loaded, timeout=WAIT_MS) as blocker:
        detail.show_specimen(state, 2, None)
    assert blocker.args == [False]
    assert detail.placeholder.text().startswith(f"Cannot read image:\n{broken}\n")
    assert detail.image_stack.currentWidget() is detail.placeholder
    assert not detail.image_view.has_image()


def test_clear_while_decoding_leaves_the_pane_empty(
    qtbot: QtBot, detail: SpecimenDetail, gate: Callable[[Path], Gate]
) -> None:
    g = gate(SHEET)
    detail.show_specimen(_state(SHEET), 0, None)
    assert g.started.wait(WAIT_MS / 1000)
    detail.clear()
    assert not detail.image_pending()
    with _decoded(qtbot):
        g.release.set()
    QApplication.processEvents()
    assert not detail.image_view.has_image()
    assert detail.image_stack.currentWidget() is detail.placeholder
    assert detail.placeholder.text() == "Select a specimen to see its sheet and fields."
    assert detail.title_label.text() == "No specimen selected"


def test_specimen_without_image_while_decoding_keeps_its_message(
    qtbot: QtBot, detail: SpecimenDetail, gate: Callable[[Path], Gate]
) -> None:
    g = gate(SHEET)
    state = _state(SHEET, "")
    detail.show_specimen(state, 0, None)
    assert g.started.wait(WAIT_MS / 1000)
    detail.show_specimen(state, 1, None)
    with _decoded(qtbot):
        g.release.set()
    QApplication.processEvents()
    assert not detail.image_view.has_image()
    assert detail.placeholder.text() == "No image path is recorded for this specimen."


def test_queued_decode_withdrawn_before_it_starts_is_skipped(
    qtbot: QtBot, detail: SpecimenDetail, tmp_path: Path
) -> None:
    sheets = [_small_sheet(tmp_path, f"s{i}.jpg", (100 + i, 80)) for i in range(12)]
    calls: list[str] = []
    real = detail_mod.load_image
    hold = threading.Event()

    def slow(path: str) -> tuple[QImage | None, str]:
        calls.append(path)
        hold.wait(WAIT_MS / 1000)
        return real(path)

    state = _state(*sheets)
    try:
        detail_mod.load_image = slow  # type: ignore[assignment]
        for row in range(len(sheets)):  # arrowing down the table faster than decodes run
            detail.show_specimen(state, row, None)
        with qtbot.waitSignal(detail.image_loaded, timeout=WAIT_MS):
            hold.set()
    finally:
        hold.set()
        detail_mod.load_image = real  # type: ignore[assignment]
        assert detail_mod.wait_for_decodes(WAIT_MS)
    assert _pixmap_size(detail) == [80, 111]  # the last one
    # at most the pool's threads started stale decodes; the queued ones never decoded
    assert len(calls) <= detail_mod.DECODE_THREADS + 1
    assert calls[-1] == str(sheets[-1])


@pytest.mark.parametrize("how", ["python", "qt"])
def test_widget_deleted_while_decoding_does_not_crash(
    qtbot: QtBot, gate: Callable[[Path], Gate], how: str
) -> None:
    g = gate(SHEET)
    parent = QWidget()
    widget = SpecimenDetail(parent if how == "qt" else None)
    widget.show_specimen(_state(SHEET), 0, None)
    assert g.started.wait(WAIT_MS / 1000)
    if how == "qt":  # the window goes (deleteLater) while Python still holds the pane
        parent.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        assert not shiboken6.isValid(widget)
    else:
        del widget
        gc.collect()
    with _decoded(qtbot):  # the result arrives for a pane that no longer exists
        g.release.set()
    QApplication.processEvents()  # pytest-qt fails the test if a slot raised
    assert detail_mod.wait_for_decodes(WAIT_MS)
