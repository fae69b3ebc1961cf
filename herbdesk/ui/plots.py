"""Live plots (pyqtgraph): success rate by specimen, throughput over time, confidence, and
record quality by term (the share of records with a valid / an invalid value per term).

Updated from the document's timer with `setData` on whole arrays (never per event), with
clip-to-view and auto-downsampling so 100,000-point curves stay cheap. Redrawing a plot costs a
few milliseconds of axis text and curve painting, so while data streams the three plots are
redrawn in turn on their own timer, one per pass of the event loop: each a few times a second,
and never all in one frame (together they stalled the loop for ~100 ms at 10k events/s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontMetrics, QPalette
from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.runstate.state import RunState
from herbdesk.ui import formatting as fmt

CHECKPOINT_THRESHOLD = 0.5
WARNING_THRESHOLD = 0.7
CONF_BINS = np.linspace(0.0, 1.0, 21)
LOADING_STEP_MS = 1000  # while a file loads: its views refresh once a second too
PLOT_STEP_MS = 90  # one plot redrawn per step: each of the four about 2.8 times a second
PARTS = ("rate", "throughput", "confidence", "terms")
TERMS_SHOWN = 8  # the most often filled terms, in Darwin Core order
VALID_COLOR, INVALID_COLOR = "#2e9d4a", "#d03030"


class GrowingSeries:
    """A float64 copy of an append-only list, grown by doubling and extended incrementally."""

    def __init__(self) -> None:
        self._buf = np.empty(1024, dtype=np.float64)
        self._n = 0

    def clear(self) -> None:
        self._n = 0

    def sync(self, source: Sequence[float]) -> np.ndarray:
        """The source as an array (a view: valid until the next sync)."""
        m = len(source)
        if m < self._n:  # the list was replaced by a shorter one
            self._n = 0
        if m > self._n:
            if m > self._buf.size:
                grown = np.empty(max(m, 2 * self._buf.size), dtype=np.float64)
                grown[: self._n] = self._buf[: self._n]
                self._buf = grown
            self._buf[self._n : m] = source[self._n : m]
            self._n = m
        return self._buf[:m]


def compact_ticks(values: Sequence[float], spacing: float) -> list[str] | None:
    """Tick labels for large values as 50k / 1.25M (None: small values, the default labels).

    Six characters at most ("0" stays "0"), so a count axis keeps one width however large
    the run grows.
    """
    big = max((abs(v) for v in values), default=0.0)
    if big < 10_000:
        return None
    unit, suffix = (1e6, "M") if big >= 1e6 else (1e3, "k")
    step = spacing / unit
    decimals = 0  # as many as the tick spacing needs: 0.25M apart reads 1.00M, 1.25M
    while decimals < 3 and abs(round(step, decimals) - step) > 1e-9 * max(step, 1.0):
        decimals += 1
    return [f"{v / unit:.{decimals}f}{suffix}" if v else "0" for v in values]


class CompactAxis(pg.AxisItem):
    """An axis of counts or rates: compact labels and a width fixed from the font.

    A width that followed the labels changed when a loaded file's counts grew (28 -> 57 px),
    which relaid and repainted each plot a second time at the end of every load.
    """

    def __init__(self, orientation: str, **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        if orientation in ("left", "right"):
            widest = QFontMetrics(QApplication.font()).horizontalAdvance("888.8k")
            self.setWidth(widest + 12)  # tick text offset, tick length, a margin

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        labels = compact_ticks([v * scale for v in values], spacing * scale)
        return labels if labels is not None else super().tickStrings(values, scale, spacing)


class TermAxis(pg.AxisItem):
    """The term chart's left axis: term names at a width fixed from the font (the longest
    names elided), so the chart does not relay when other terms come in."""

    def __init__(self, orientation: str, **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self._metrics = QFontMetrics(QApplication.font())
        self._room = self._metrics.horizontalAdvance("scientificName")
        self.setWidth(self._room + 12)
        self._terms: list[str] | None = None

    def rows_that_fit(self, height: float) -> int:
        """How many term names a chart this high shows without overlapping."""
        return min(TERMS_SHOWN, int(height // (self._metrics.height() + 2)))

    def set_terms(self, terms: Sequence[str]) -> None:
        elide = Qt.TextElideMode.ElideRight
        labels = [(i, self._metrics.elidedText(t, elide, self._room)) for i, t in enumerate(terms)]
        self.setTicks([labels, []])
        self._terms = list(terms)

    def terms(self) -> list[str] | None:
        """The term names it shows; None while it still labels numbers (never set)."""
        return self._terms


def term_shares(state: RunState, most: int = TERMS_SHOWN) -> list[tuple[str, float, float]]:
    """(term, valid share, invalid share) of the finished records, for the `most` most often
    filled terms in Darwin Core order. Failed specimens count in the denominator: they hold
    nothing."""
    tally, n = state.quality, state.processed
    if not n or not tally or most < 1:
        return []
    # basisOfRecord is the prompt's constant (PreservedSpecimen): a bar that says nothing
    filled = {t: c for t, c in tally.filled.items() if c > 0 and t != "basisOfRecord"}
    top = sorted(filled, key=lambda t: -filled[t])[:most]
    order = {t: i for i, t in enumerate(DWC_TERMS)}
    top.sort(key=lambda t: order.get(t, len(order)))
    return [(t, (filled[t] - tally.invalid[t]) / n, tally.invalid[t] / n) for t in top]


def _themed_plot(
    title: str,
    palette: QPalette,
    counts: tuple[str, ...] = (),
    axes: dict[str, pg.AxisItem] | None = None,
) -> pg.PlotWidget:
    """A plot in the window's colours; the axes named in `counts` label compactly."""
    axes = {**{name: CompactAxis(name) for name in counts}, **(axes or {})}
    pw = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base), axisItems=axes)
    fg = palette.color(QPalette.ColorRole.Text)
    pw.setTitle(title, color=fg.name(), size="10pt")
    for axis in ("left", "bottom"):
        ax = pw.getAxis(axis)
        ax.setPen(fg)
        ax.setTextPen(fg)
        ax.enableAutoSIPrefix(False)  # "minutes (x0.001)" confuses more than it helps
    pw.showGrid(x=True, y=True, alpha=0.2)
    pw.setMenuEnabled(True)
    return pw


class PlotsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # numpy copies of the state's append-only series, extended by what is new each tick
        # (converting whole lists every tick costs O(run length) 30 times a second)
        self._state: RunState | None = None
        self._series = {k: GrowingSeries() for k in ("x", "cum", "roll", "conf", "epoch")}
        pal = self.palette()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)

        self.rate_plot = _themed_plot("Success rate", pal, counts=("bottom",))
        self.rate_plot.setLabel("bottom", "specimen")
        self.rate_plot.setYRange(0, 1.05, padding=0)
        self.rate_plot.setLimits(yMin=-0.05, yMax=1.1)
        self.rate_plot.setClipToView(True)
        self.rate_plot.setDownsampling(auto=True, mode="peak")
        self.rate_plot.addLegend(offset=(-10, -10))
        self.roll_curve = self.rate_plot.plot(pen=pg.mkPen("#ff7f0e", width=1.5), name="rolling 50")
        self.cum_curve = self.rate_plot.plot(  # drawn last: on top where the two coincide
            pen=pg.mkPen("#1f77b4", width=2),
            name="cumulative",
            symbolSize=5,
            symbolBrush="#1f77b4",
            symbolPen=None,
        )
        # the run's own thresholds once its config is known (see _show_thresholds)
        self._threshold_lines: dict[str, pg.InfiniteLine] = {}
        for key, y, color in (
            ("halt", CHECKPOINT_THRESHOLD, "#d03030"),
            ("warn", WARNING_THRESHOLD, "#d08a00"),
        ):
            line = pg.InfiniteLine(
                pos=y,
                angle=0,
                pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                label=f"{key} {y:g}",
                labelOpts={"position": 0.02, "color": color, "anchors": [(0, 1), (0, 1)]},
            )
            self._threshold_lines[key] = line
            self.rate_plot.addItem(line)
        self.cp_scatter = pg.ScatterPlotItem(size=14, pen=pg.mkPen("k", width=1))
        self.rate_plot.addItem(self.cp_scatter)

        self.tp_plot = _themed_plot("Per minute", pal, counts=("left",))
        self.tp_plot.setLabel("bottom", "minutes since start")
        self.tp_curve = self.tp_plot.plot(
            pen=pg.mkPen("#2ca02c", width=2),
            stepMode="center",
            fillLevel=0,
            brush=pg.mkBrush(44, 160, 44, 60),
        )

        self.conf_plot = _themed_plot("Confidence", pal, counts=("left",))
        self.conf_plot.setLabel("bottom", "mean field confidence")
        self.conf_plot.setXRange(0, 1, padding=0.02)
        self.conf_bars = pg.BarGraphItem(
            x0=CONF_BINS[:-1], x1=CONF_BINS[1:], height=np.zeros(20), brush="#9467bd"
        )
        self.conf_plot.addItem(self.conf_bars)
        for counts in (self.tp_plot, self.conf_plot):  # counts: an empty plot starts at 0 too
            counts.setLimits(yMin=0)

        self.term_axis = TermAxis("left")
        self.term_plot = _themed_plot("Valid terms", pal, axes={"left": self.term_axis})
        self.term_plot.setLabel("bottom", "share of records")
        self.term_plot.setXRange(0, 1, padding=0.02)
        # one label: "25%50%75%" ran together in a narrow chart; the quarters stay as lines
        self.term_plot.getAxis("bottom").setTicks([[(0.5, "50%")], [(0.25, ""), (0.75, "")]])
        self.term_plot.setMouseEnabled(x=False, y=False)
        self.term_plot.showGrid(x=True, y=False, alpha=0.2)
        self.term_plot.getViewBox().invertY(True)  # the first term on top
        self.valid_bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brush=VALID_COLOR)
        self.invalid_bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brush=INVALID_COLOR)
        self.term_plot.addItem(self.valid_bars)
        self.term_plot.addItem(self.invalid_bars)
        # a short chart shows fewer terms (their names would overlap), recounted on resize
        self.term_plot.getViewBox().sigResized.connect(self._terms_resized)

        lay.addWidget(self.rate_plot, 3)
        lay.addWidget(self.tp_plot, 2)
        lay.addWidget(self.conf_plot, 2)
        lay.addWidget(self.term_plot, 3)  # its term names take a third of it

        self._conf_hist = np.zeros(CONF_BINS.size - 1, np.int64)
        self._conf_seen = 0  # values of state.finish_conf counted in _conf_hist
        self._pending: set[str] = set()
        self._next = 0
        self._timer = QTimer(self)
        self._timer.setInterval(PLOT_STEP_MS)
        self._timer.timeout.connect(self._step)
        # drawn empty from the start, as after a reset: left to pyqtgraph's defaults the term
        # chart read 0 to 1.0 down its axis and the success rate "0.2 0.4" specimens
        self.clear()

    def clear(self) -> None:
        self.update_from(RunState())
        self.flush()

    def update_from(self, state: RunState, loading: bool = False) -> None:
        """Note new data; the plots catch up on their timer (the first one at once).

        While a file loads they step less often: each redraw repaints axes and labels (a few
        ms a plot), time the load itself needs; the end of the load flushes them.
        """
        self._timer.setInterval(LOADING_STEP_MS if loading else PLOT_STEP_MS)
        self._show_thresholds(state)
        if state is not self._state:  # another run: start the growing copies over
            self._state = state
            for series in self._series.values():
                series.clear()
            self._conf_hist[:] = 0
            self._conf_seen = 0
        self._pending.update(PARTS)
        if not self._timer.isActive():
            self._step()
            self._timer.start()

    def _show_thresholds(self, state: RunState) -> None:
        """Draw the halt and warning lines at the run's own values (its logged config)."""
        validation = state.config.get("validation") if isinstance(state.config, dict) else None
        given = validation if isinstance(validation, dict) else {}
        for key, name, default in (
            ("halt", "checkpoint_threshold", CHECKPOINT_THRESHOLD),
            ("warn", "warning_threshold", WARNING_THRESHOLD),
        ):
            value = given.get(name, default)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                value = default
            line = self._threshold_lines[key]
            if line.value() != value:
                line.setValue(float(value))
                line.label.setFormat(f"{key} {float(value):g}")

    def flush(self) -> None:
        """Redraw every plot with pending data now (end of a load, screenshots, tests)."""
        while self._pending:
            self._step()
        for plot in (self.rate_plot, self.tp_plot, self.conf_plot, self.term_plot):
            # settle the auto range now: left to the paint, it changed the range there and
            # had the success-rate plot (333k points) painted twice at the end of a load
            plot.getViewBox().prepareForPaint()

    def _step(self) -> None:
        state = self._state
        if not self._pending or state is None:
            self._timer.stop()
            return
        for k in range(len(PARTS)):
            part = PARTS[(self._next + k) % len(PARTS)]
            if part in self._pending:
                self._next = (self._next + k + 1) % len(PARTS)
                self._pending.discard(part)
                break
        if part == "rate":
            self._update_rate(state)
        elif part == "throughput":
            self._update_throughput(state)
        elif part == "terms":
            self._update_terms(state)
        else:
            self.conf_bars.setOpts(height=self._conf_counts(state))

    def _terms_resized(self, *_: object) -> None:
        if self._state is not None:
            self._pending.add("terms")
            if not self._timer.isActive():
                self._timer.start()

    def _update_terms(self, state: RunState) -> None:
        # hidden (never laid out): every term; shown: as many as its height holds
        height = self.term_plot.getViewBox().height()
        most = self.term_axis.rows_that_fit(height) if self.term_plot.isVisible() else TERMS_SHOWN
        shares = term_shares(state, most)
        terms = [t for t, _, _ in shares]
        y = np.arange(len(shares), dtype=np.float64)
        valid = np.array([v for _, v, _ in shares], dtype=np.float64)
        invalid = np.array([i for _, _, i in shares], dtype=np.float64)
        self.valid_bars.setOpts(x0=np.zeros(len(shares)), y=y, width=valid)
        self.invalid_bars.setOpts(x0=valid, y=y, width=invalid)
        self.term_axis.set_terms(terms)
        self.term_plot.setYRange(-0.6, max(len(shares), 1) - 0.4, padding=0)
        of = f"of {fmt.count(state.processed)} records"
        pct = fmt.whole_percent
        lines = [f"{t}: {pct(v)} valid, {pct(i)} invalid {of}" for t, v, i in shares]
        self.term_plot.setToolTip(
            "Green: a valid value; red: a value a record check rejects; empty: not filled.\n"
            + "\n".join(lines)
            if lines
            else "Record quality by term appears as records come in."
        )

    def _update_rate(self, state: RunState) -> None:
        n = len(state.finish_x)
        x = self._series["x"].sync(state.finish_x)
        cum = self._series["cum"].sync(state.cum_rate)
        roll = self._series["roll"].sync(state.roll_rate)
        self.cum_curve.setData(x, cum, skipFiniteCheck=True)
        self.roll_curve.setData(x, roll, skipFiniteCheck=True)
        # markers help while a run is young; on long curves they cost and clutter
        self.cum_curve.setSymbol("o" if n <= 200 else None)
        self.rate_plot.setXRange(0, max(10, n) * 1.02, padding=0)
        spots = []
        for cp in state.checkpoints:
            passed = cp.get("status") == "passed"
            at, rate = fmt.number(cp.get("checkpoint")), fmt.number(cp.get("success_rate"))
            if at is None or rate is None:  # a log's nonsense is not plotted (the banner says it)
                continue
            spots.append(
                {
                    "pos": (at, rate),
                    "brush": pg.mkBrush("#2e9d4a" if passed else "#d03030"),
                    "symbol": "o" if passed else "x",
                }
            )
        self.cp_scatter.setData(spots)

    def _update_throughput(self, state: RunState) -> None:
        t = self._series["epoch"].sync(state.finish_epoch)
        t = t[np.isfinite(t)]
        start = state.start_epoch  # the KPI's throughput counts from the same start
        if start is None or t.size == 0:
            self.tp_curve.setData([0.0, 1.0], [0.0])
            return
        rel = (t - start) / 60.0
        span = max(float(rel.max()), 1e-6)
        width = max(span / 40.0, 5.0 / 60.0)  # at least 5 s per bin, at most ~40 bins
        edges = np.arange(0.0, span + width, width)
        if edges.size < 2:
            edges = np.array([0.0, width])
        # equal bins given as a count and a range: numpy bins them without sorting the data
        counts, _ = np.histogram(rel, bins=edges.size - 1, range=(0.0, float(edges[-1])))
        self.tp_curve.setData(edges, counts / width)

    def _conf_counts(self, state: RunState) -> np.ndarray:
        """Confidence histogram, counting only values appended since the last call."""
        conf = self._series["conf"].sync(state.finish_conf)
        if len(conf) < self._conf_seen:  # another run's values
            self._conf_hist[:] = 0
            self._conf_seen = 0
        new = np.clip(conf[self._conf_seen :], 0, 1)
        self._conf_hist += np.histogram(new, bins=CONF_BINS.size - 1, range=(0.0, 1.0))[0]
        self._conf_seen = len(conf)
        return self._conf_hist.copy()
