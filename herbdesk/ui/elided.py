"""A label that never cuts its text at the panel's edge: each line is elided to the width it
gets, the whole text in its tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    """Plain text, one drawn line per line of it, each elided (in the middle by default: a
    path's start and file name both stay); `text()` and the tooltip keep the full text. It
    does not ask for its text's width, so a long value never widens its panel."""

    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle):
        super().__init__()
        self.setTextFormat(Qt.TextFormat.PlainText)  # a log's text is never markup
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._mode = mode
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self.setText(text)
        self.setToolTip(text)

    def shown_lines(self) -> list[str]:
        """The lines a paint at the current width draws (tests check they fit)."""
        room = max(1, self.contentsRect().width())
        metrics = self.fontMetrics()
        return [metrics.elidedText(line, self._mode, room) for line in self.text().split("\n")]

    def is_elided(self) -> bool:
        return self.shown_lines() != self.text().split("\n")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        rect = self.contentsRect()
        step = self.fontMetrics().lineSpacing()
        align = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        for i, line in enumerate(self.shown_lines()):
            painter.drawText(rect.adjusted(0, i * step, 0, 0), align, line)
