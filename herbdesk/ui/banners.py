"""Banners derived from the run state: checkpoint results, warnings, halts, completion.

One banner area that never takes the window: the most severe, newest banner shows; the rest
fold behind "N more" (expand to see them all, severity then newest first) and "Dismiss all".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from herbdesk.extraction.limits import daily_cap_note
from herbdesk.runstate.state import RunState
from herbdesk.ui import formatting as fmt

STYLES = {
    "ok": ("#1f7a3a", "#e6f4ea"),
    "error": ("#ffffff", "#c62828"),
    "warning": ("#4a3500", "#ffe08a"),
    "info": ("#0b3d91", "#e3ecfb"),
}


class Banner(QFrame):
    dismissed_now = Signal()

    def __init__(self, level: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = level
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(text)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # reasons quote model/server text
        self.label.setWordWrap(True)
        lay.addWidget(self.label, 1)
        self._lay = lay
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self._dismiss)
        lay.addWidget(close)
        self.dismissed = False
        self.set(level, text)

    def set(self, level: str, text: str) -> None:
        self.level = level
        fg, bg = STYLES[level]
        self.setStyleSheet(
            f"Banner {{ background: {bg}; border-radius: 4px; }} QLabel, QToolButton "
            f"{{ color: {fg}; font-weight: bold; }}"
        )
        self.label.setText(text)

    def hold(self, controls: QWidget) -> None:
        """Show the banner area's controls ("N more", "Dismiss all") in this banner's row."""
        self._lay.insertWidget(1, controls)

    def _dismiss(self) -> None:
        self.dismissed = True
        self.hide()
        self.dismissed_now.emit()


SEVERITY = {"error": 0, "warning": 1, "info": 2, "ok": 3}


class BannerBar(QWidget):
    """Keyed banners: recomputed from state on every refresh, dismissible, folded to one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._lay.setSpacing(4)
        self._banners: dict[str, Banner] = {}
        self._born: dict[str, int] = {}  # key -> creation count: newer banners first
        self._count = 0
        self.expanded = False
        self._shown: tuple[str, ...] = ()
        self._shown_of = 0  # banners not dismissed when _shown was laid out
        self._footer = QWidget(self)
        foot = QHBoxLayout(self._footer)
        foot.setContentsMargins(4, 0, 4, 0)
        self.more_button = QToolButton(self._footer)
        self.more_button.setAutoRaise(True)
        self.more_button.clicked.connect(self._toggle)
        self.dismiss_all_button = QToolButton(self._footer)
        self.dismiss_all_button.setText("Dismiss all")
        self.dismiss_all_button.setAutoRaise(True)
        self.dismiss_all_button.clicked.connect(self.dismiss_all)
        foot.addWidget(self.more_button)
        foot.addWidget(self.dismiss_all_button)
        self._footer.hide()  # shown in the top banner's own row: no extra line

    def _rescue_controls(self) -> None:
        """Take the controls back before a banner holding them is deleted (with it)."""
        self._footer.hide()
        self._footer.setParent(self)

    def clear(self) -> None:
        self._rescue_controls()
        for b in self._banners.values():
            b.deleteLater()
        self._banners.clear()
        self._born.clear()
        self._relayout()

    def show_banner(self, key: str, level: str, text: str) -> None:
        b = self._banners.get(key)
        if b is None:
            b = Banner(level, text, self)
            b.hide()
            self._banners[key] = b
            self._count += 1
            self._born[key] = self._count
            b.dismissed_now.connect(self._relayout)  # the next one comes forward
        elif b.label.text() != text or b.level != level:
            b.set(level, text)
            self._shown = ()  # a changed severity may reorder
        self._relayout()

    def remove_banner(self, key: str) -> None:
        b = self._banners.pop(key, None)
        self._born.pop(key, None)
        if b is not None:
            self._rescue_controls()
            self._shown = ()
            b.deleteLater()
            self._relayout()

    def dismiss_all(self) -> None:
        for b in self._banners.values():
            b.dismissed = True
            b.hide()
        self._relayout()

    def _toggle(self) -> None:
        self.expanded = not self.expanded
        self._shown = ()
        self._relayout()

    def ordered(self) -> list[str]:
        """Keys of the banners not dismissed: most severe first, then newest first."""
        live = [k for k, b in self._banners.items() if not b.dismissed]
        return sorted(live, key=lambda k: (SEVERITY[self._banners[k].level], -self._born[k]))

    def _relayout(self) -> None:
        order = self.ordered()
        shown = tuple(order if self.expanded else order[:1])
        if shown == self._shown and len(order) == self._shown_of:
            return
        self._shown, self._shown_of = shown, len(order)
        for k in order:  # re-add in order
            self._lay.removeWidget(self._banners[k])
        for i, k in enumerate(order):
            self._lay.insertWidget(i, self._banners[k])
            self._banners[k].setVisible(k in shown)
        rest = len(order) - 1
        if rest > 0:
            self._banners[order[0]].hold(self._footer)
        self._footer.setVisible(rest > 0)
        if rest > 0:
            self.more_button.setText("Show fewer ▴" if self.expanded else f"{rest} more ▾")
            self.more_button.setToolTip(
                "\n".join(self._banners[k].label.text()[:160] for k in order[1:])
            )

    def texts(self) -> list[tuple[str, str]]:
        """(level, text) of banners not dismissed (folded or not), for tests and the smoke
        test."""
        return [(b.level, b.label.text()) for b in self._banners.values() if not b.dismissed]

    def update_from(self, state: RunState, run_dir: object = None) -> None:
        """The banners for the run's state; `run_dir` goes into the commands they suggest."""
        cfg = state.config
        cap = (
            daily_cap_note(cfg.get("engine"), cfg.get("model"), state.total)
            if state.status == "running"
            else None
        )
        if cap:  # a free model's daily cap, in days: said at the start, with what to do
            self.show_banner("dailycap", "warning", cap[0].upper() + cap[1:] + ".")
        else:
            self.remove_banner("dailycap")
        failed_checks = [c for c in state.preflight if not c.get("ok")]
        if failed_checks:
            text = "Preflight failed — nothing was attempted: " + "; ".join(
                f"{c.get('name')}: {c.get('detail')}" for c in failed_checks
            )
            self.show_banner("preflight", "error", text)
        # a passed quality checkpoint joins its success checkpoint's banner: one line, not two
        usable_at = {
            qc.get("checkpoint"): qc.get("usable_rate")
            for qc in state.quality_checkpoints
            if qc.get("status") == "passed"
        }
        failed_shown = False
        for cp in state.checkpoints:
            # a log may hold anything in these fields: render what is there, never raise
            rate = fmt.whole_percent(cp.get("success_rate"))
            n = cp.get("checkpoint")
            n = n if isinstance(n, int) and not isinstance(n, bool) else "?"
            if cp.get("status") == "passed":
                u = fmt.number(usable_at.get(n))
                usable = f", {fmt.percent(u)} usable" if u is not None else ""
                self.show_banner(
                    f"cp{n}",
                    "ok",
                    f"Checkpoint {n} passed: {rate} of the first {n} succeeded{usable}.",
                )
            else:
                failed_shown = True
                self.show_banner(
                    f"cp{n}",
                    "error",
                    f"Checkpoint {n} FAILED: only {rate} of the first {n} specimens "
                    "succeeded. The run was halted; check the failed specimens' errors.",
                )
        for qc in state.quality_checkpoints:
            n = qc.get("checkpoint")
            urate = qc.get("usable_rate")
            pct = fmt.percent(urate if isinstance(urate, (int, float)) else None)
            if qc.get("status") == "passed":
                if not any(cp.get("checkpoint") == n for cp in state.checkpoints):
                    self.show_banner(
                        f"qcp{n}", "ok", f"Quality checkpoint {n} passed: {pct} usable."
                    )
            else:
                ft = qc.get("failed_terms")
                terms: dict = ft if isinstance(ft, dict) else {}
                shown = "; ".join(
                    f"{t}: " + ", ".join(f"“{str(v)[:40]}”" for v in (vals or [])[:3])
                    for t, vals in terms.items()
                )
                self.show_banner(
                    f"qcp{n}",
                    "error",
                    f"Quality checkpoint {n} FAILED: only {pct} of the records are usable. "
                    + (f"Invalid: {shown}." if shown else ""),
                )
        if state.warnings:
            w = state.warnings[-1]
            self.show_banner("warning", "warning", f"Warning: {w.get('message', '')}")
        if state.consumer_errors:
            e = state.consumer_errors[-1]
            self.show_banner(
                "consumer", "warning", f"A monitor failed ({e.get('consumer')}): {e.get('error')}"
            )
        if state.paused_at_budget:  # no failure: a pause, resumable with a higher budget
            self.show_banner(
                "end",
                "warning",
                state.budget_pause_text(run_dir or "RUN_DIR")
                + " (or raise the Budget field in the setup panel and resume the run there).",
            )
        elif state.status == "failed":
            # a failed checkpoint's banner says why the run halted; without one (the log lost
            # it, or it is unreadable) the halt still shows red
            said = failed_shown if state.reason == "early_validation_failed" else False
            if state.reason != "preflight_failed" and not said:
                self.show_banner("end", "error", f"Run halted ({state.reason}): {state.message}")
            else:
                self.remove_banner("end")
        elif state.status == "completed" and state.verdict == "below_threshold":
            self.show_banner(
                "end",
                "error" if (state.usable_rate or 0) < 0.5 else "warning",
                f"Run finished BELOW THRESHOLD: {state.verdict_message or 'not a success'} "
                f"({state.succeeded:,} of {state.processed:,} succeeded, "
                f"{fmt.percent(state.usable_rate)} usable).",
            )
        elif (
            state.status in ("completed", "pending")
            and state.quality
            and ((state.usable_rate or 0) < 0.5)
        ):
            # an opened log of the original scripts: no verdict recorded, the records say it
            self.show_banner(
                "end",
                "error",
                f"Run completed, but only {fmt.percent(state.usable_rate)} of the records are "
                "usable: see the quality findings.",
            )
        elif state.status == "completed":
            self.show_banner(
                "end",
                "ok",
                f"Run completed: {state.succeeded:,} of {state.processed:,} succeeded "
                f"({fmt.percent(state.success_rate)})"  # as the KPI card shows it
                + (
                    f", {fmt.percent(state.usable_rate)} of the records usable."
                    if state.quality
                    else "."
                ),
            )
        elif state.status == "cancelled":
            self.show_banner("end", "info", "Run stopped. Resume it to process the rest.")
        elif state.paused:
            text = state.pause_message or "Paused: in-flight specimens finish; nothing new starts."
            self.show_banner("end", "warning" if state.pause_message else "info", text)
        else:
            self.remove_banner("end")
