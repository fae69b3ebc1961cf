"""The KPI strip: the numbers a curator glances at, plus a progress bar."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from herbdesk.monitor import projection
from herbdesk.runstate.state import RunState
from herbdesk.ui import formatting as fmt

KPI_KEYS = (
    ("processed", "Processed"),
    ("success", "Success rate"),
    ("usable", "Usable records"),
    ("failed", "Failed"),
    ("throughput", "Throughput"),
    ("avg_time", "Avg time"),
    ("confidence", "Avg confidence"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("eta", "ETA"),
    ("elapsed", "Elapsed"),
)
# what a narrow card says instead of eliding its title
SHORT_TITLES = {
    "success": "Success",
    "usable": "Usable",
    "throughput": "Per min",
    "avg_time": "Time",
    "confidence": "Confid.",
}


class FitLabel(QLabel):
    """A one-line label that never cuts its text: at a narrow width it draws in a smaller font
    (down to `min_scale`), and only then elides; `text()` stays the full text."""

    def __init__(self, text: str = "", min_scale: float = 0.75, short: str = "") -> None:
        super().__init__(text)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._min_scale = min_scale
        self._short = short  # said instead when the text does not fit
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def shown_text(self) -> tuple[QFont, str]:
        """The font and text a paint at the current width draws (tests check it fits)."""
        room = max(1, self.contentsRect().width())
        base = self.font().pointSizeF()
        for text in (self.text(), self._short) if self._short else (self.text(),):
            font = QFont(self.font())
            scale = 1.0
            while QFontMetrics(font).horizontalAdvance(text) > room and scale > self._min_scale:
                scale = max(self._min_scale, scale - 0.05)
                font.setPointSizeF(base * scale)
            if QFontMetrics(font).horizontalAdvance(text) <= room:
                return font, text
        return font, QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideRight, room)

    def is_elided(self) -> bool:
        return self.shown_text()[1] not in (self.text(), self._short)

    def paintEvent(self, event: QPaintEvent) -> None:
        font, text = self.shown_text()
        painter = QPainter(self)
        painter.setFont(font)
        painter.setPen(self.palette().color(self.foregroundRole()))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(self.contentsRect(), int(align), text)


def subdued(palette: QPalette) -> QColor:
    """Text a step lighter than body text, still readable for hours (the disabled-text grey
    was pale on white): 70 % text, 30 % background."""
    t, b = palette.color(QPalette.ColorRole.Text), palette.color(QPalette.ColorRole.Base)
    return QColor(
        round(t.red() * 0.7 + b.red() * 0.3),
        round(t.green() * 0.7 + b.green() * 0.3),
        round(t.blue() * 0.7 + b.blue() * 0.3),
    )


class KpiCard(QFrame):
    def __init__(self, title: str, parent: QWidget | None = None, short: str = "") -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.setSpacing(0)
        self.title = FitLabel(title, min_scale=0.85, short=short)
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 0.85)
        self.title.setFont(f)
        pal = self.title.palette()
        pal.setColor(QPalette.ColorRole.WindowText, subdued(pal))
        self.title.setPalette(pal)
        self._name = title
        self.setToolTip(title)
        self.value = FitLabel("–", min_scale=0.6)
        self.setMinimumWidth(64)  # eleven cards must fit a laptop screen beside the setup dock
        vf = self.value.font()
        vf.setPointSizeF(vf.pointSizeF() * 1.2)
        vf.setBold(True)
        self.value.setFont(vf)
        lay.addWidget(self.title)
        lay.addWidget(self.value)

    def set(self, text: str, color: str | None = None, exact: str = "", short: str = "") -> None:
        """Show `text` (or `short` where it does not fit); the tooltip names the card and
        gives `exact` (the unrounded value) or the text, so a squeezed card still tells all."""
        if short != self.value._short:
            self.value._short = short
            self.value.update()
        if text != self.value.text():
            self.value.setText(text)
        style = f"color: {color};" if color else ""
        if style != self.value.styleSheet():
            self.value.setStyleSheet(style)
        self.setToolTip(f"{self._name}: {exact or text}")


class KpiStrip(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.cards: dict[str, KpiCard] = {}
        for i, (key, title) in enumerate(KPI_KEYS):
            card = KpiCard(title, self, short=SHORT_TITLES.get(key, ""))
            self.cards[key] = card
            grid.addWidget(card, 0, i)
            # "333k / 333k" is the longest value: a quarter wider than the other cards
            grid.setColumnStretch(i, 5 if key == "processed" else 4)
        outer.addLayout(grid)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m")
        outer.addWidget(self.progress)

    def update_from(self, state: RunState) -> None:
        now = time.time()
        total = state.total
        c = self.cards
        # big counts are rounded to fit ten cards beside the setup dock (the bar below and
        # the tooltip give them exactly)
        c["processed"].set(
            f"{fmt.short_count(state.processed)} / {fmt.short_count(total)}",
            exact=f"{fmt.count(state.processed)} of {fmt.count(total)} processed",
        )
        rate = state.success_rate if state.processed else None
        color = None
        if rate is not None:
            color = "#2e9d4a" if rate >= 0.7 else ("#d08a00" if rate >= 0.5 else "#d03030")
        c["success"].set(fmt.percent(rate), color)
        usable = state.usable_rate
        q = state.quality
        ucolor = None
        if usable is not None:
            ucolor = "#2e9d4a" if usable >= 0.7 else ("#d08a00" if usable >= 0.5 else "#d03030")
        top = ", ".join(f"{k} {n:,}" for k, n in q.findings.most_common(4))
        c["usable"].set(
            fmt.percent(usable),
            ucolor,
            exact=f"{fmt.count(q.usable)} of {fmt.count(state.processed)} records usable "
            "(required terms filled and valid)"
            + (f"; most frequent findings: {top}" if top else ""),
        )
        c["failed"].set(
            fmt.short_count(state.failed),
            "#d03030" if state.failed else None,
            exact=f"{fmt.count(state.failed)} failed",
        )
        c["throughput"].set(fmt.rate(state.throughput_per_min(now)))
        avg_t = state.avg_time_ms
        c["avg_time"].set("–" if avg_t is None else f"{avg_t / 1000:.1f} s")
        conf = state.avg_confidence
        c["confidence"].set("–" if conf is None else f"{conf:.2f}")
        c["tokens"].set(fmt.short_count(state.tokens), exact=f"{fmt.count(state.tokens)} tokens")
        # cost and time ahead (monitor/projection.py): the middle figure on the card, the
        # range in the tooltip
        ahead = state.projection(now)
        total_text = projection.cost_text(ahead)
        if ahead is not None and ahead.cost is not None:
            c["cost"].set(
                f"{fmt.money(state.cost_total)} → {projection.money(ahead.cost.mid)}",
                exact=f"{fmt.money(state.cost_total)} so far; projected total {total_text} "
                f"(95 % range, from {ahead.basis:,} finished, {ahead.remaining:,} to go)",
                short=fmt.money(state.cost_total),  # a narrow card: what was spent
            )
        else:
            c["cost"].set(fmt.money(state.cost_total))
        left = projection.time_text(ahead, now)
        c["eta"].set(
            fmt.duration(state.eta_s(now)),
            exact=f"{left} (95 % range of the time left)" if left else "",
        )
        c["elapsed"].set(fmt.duration(state.elapsed_s(now)))
        done = state.processed + state.skipped
        maximum = max(total or 0, done, 1)
        if (maximum, done) != (self.progress.maximum(), self.progress.value()):
            # QProgressBar.setValue repaints synchronously whenever its text changes: up to
            # 30 times a second in a live run. Schedule one ordinary paint instead.
            self.progress.setUpdatesEnabled(False)
            self.progress.setMaximum(maximum)
            self.progress.setValue(done)
            self.progress.setUpdatesEnabled(True)
            self.progress.update()
