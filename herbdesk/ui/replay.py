"""Replay an opened run event by event, or at a chosen speed, to see when it went wrong."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QToolButton,
    QWidget,
)

from herbdesk.events.reader import EventStore
from herbdesk.events.types import Event
from herbdesk.ui.document import RunDocument

SPEEDS = (("1 event/s", 1), ("10 events/s", 10), ("100 events/s", 100), ("1,000 events/s", 1000))
TICK_MS = 50


class ReplayBar(QWidget):
    """Holds the opened run's events and re-folds the document up to a chosen position.

    Stepping back re-folds from the start: the fold is cheap, and one code path (RunState.apply)
    stays the only way state is built.
    """

    def __init__(self, document: RunDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.events: Sequence[Event] = []
        self.position = 0
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        self.title = QLabel("Replay")
        lay.addWidget(self.title)
        sp = QStyle.StandardPixmap  # style icons: media glyphs are missing from many fonts
        self.start_btn = self._button(
            sp.SP_MediaSkipBackward, "Back to the start", lambda: self.seek(0)
        )
        self.back_btn = self._button(
            sp.SP_MediaSeekBackward, "One event back", lambda: self.seek(self.position - 1)
        )
        self.play_btn = self._button(sp.SP_MediaPlay, "Play / pause", self.toggle_play)
        self.play_btn.setCheckable(True)
        self.fwd_btn = self._button(
            sp.SP_MediaSeekForward, "One event forward", lambda: self.seek(self.position + 1)
        )
        self.end_btn = self._button(
            sp.SP_MediaSkipForward, "To the end", lambda: self.seek(len(self.events))
        )
        for b in (self.start_btn, self.back_btn, self.play_btn, self.fwd_btn, self.end_btn):
            lay.addWidget(b)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.sliderReleased.connect(lambda: self.seek(self.slider.value()))
        self.slider.setPageStep(50)
        self.slider.actionTriggered.connect(self._slider_action)
        lay.addWidget(self.slider, 1)
        self.speed = QComboBox()
        for label, rate in SPEEDS:
            self.speed.addItem(label, rate)
        self.speed.setCurrentIndex(1)
        lay.addWidget(self.speed)
        self.where = QLabel("")
        self.where.setTextFormat(Qt.TextFormat.PlainText)
        self.where.setMinimumWidth(260)
        lay.addWidget(self.where)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._carry = 0.0
        self.setEnabled(False)

    def _button(self, icon: QStyle.StandardPixmap, tip: str, slot) -> QToolButton:
        b = QToolButton(self)
        b.setIcon(self.style().standardIcon(icon))
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    def load(self, events: Sequence[Event]) -> None:
        """Take the events of an opened run; the view stays at the end until the user seeks.

        An EventStore over an opened file is kept as it is (events are read back from the
        file as the replay needs them), not copied into a list of objects.
        """
        self.stop()
        self.events = events if isinstance(events, EventStore) else list(events)
        self.position = len(self.events)
        self.slider.setRange(0, len(self.events))
        self.slider.setValue(self.position)
        self.setEnabled(bool(self.events))
        self._describe()

    def clear(self) -> None:
        self.stop()
        self.events = []
        self.position = 0
        self.slider.setRange(0, 0)
        self.setEnabled(False)
        self.where.setText("")

    def seek(self, target: int) -> None:
        target = max(0, min(len(self.events), target))
        if target == self.position:
            return
        doc = self.document
        store = self.events
        index = store.file_index if isinstance(store, EventStore) and not store.tail else None
        if target < self.position:
            doc.reset(doc.run_dir, doc.source_label, live=False)
            if target and index is not None:
                doc.apply_indexed(index, target)
            elif target:
                doc.apply_events(list(self.events[:target]))
        elif index is not None:
            doc.apply_indexed(index, target)
        else:
            doc.apply_events(list(self.events[self.position : target]))
        self.position = target
        self.slider.setValue(target)
        doc.flush()
        self._describe()

    def toggle_play(self) -> None:
        if self._timer.isActive():
            self.stop()
        else:
            if self.position >= len(self.events):
                self.seek(0)
            self._carry = 0.0
            self._timer.start()
            self.play_btn.setChecked(True)
            self.play_btn.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))

    def stop(self) -> None:
        self._timer.stop()
        self.play_btn.setChecked(False)
        self.play_btn.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))

    def _tick(self) -> None:
        self._carry += float(self.speed.currentData()) * TICK_MS / 1000.0
        step = int(self._carry)
        if step:
            self._carry -= step
            self.seek(self.position + step)
        if self.position >= len(self.events):
            self.stop()

    def _slider_action(self, _action: int) -> None:
        QTimer.singleShot(0, self, lambda: self.seek(self.slider.sliderPosition()))

    def _describe(self) -> None:
        n = len(self.events)
        if not n:
            self.where.setText("")
            return
        if self.position == 0:
            self.where.setText(f"0 / {n:,} events")
            return
        ev = self.events[self.position - 1]
        self.where.setText(f"{self.position:,} / {n:,} · {ev.event_type} · {ev.timestamp}")
