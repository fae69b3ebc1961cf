"""Banners derived from the run state: checkpoint results, warnings, halts, completion."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from herbdesk.state import RunState
from herbdesk.ui import formatting as fmt

STYLES = {
    "ok": ("#1f7a3a", "#e6f4ea"),
    "error": ("#ffffff", "#c62828"),
    "warning": ("#4a3500", "#ffe08a"),
    "info": ("#0b3d91", "#e3ecfb"),
}


class Banner(QFrame):
    def __init__(self, level: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = level
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(text)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # reasons quote model/server text
        self.label.setWordWrap(True)
        lay.addWidget(self.label, 1)
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

    def _dismiss(self) -> None:
        self.dismissed = True
        self.hide()


class BannerBar(QWidget):
    """Keyed banners: recomputed from state on every refresh, shown once, dismissible."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._lay.setSpacing(4)
        self._banners: dict[str, Banner] = {}

    def clear(self) -> None:
        for b in self._banners.values():
            b.deleteLater()
        self._banners.clear()

    def show_banner(self, key: str, level: str, text: str) -> None:
        b = self._banners.get(key)
        if b is None:
            b = Banner(level, text, self)
            self._banners[key] = b
            self._lay.addWidget(b)
        elif b.label.text() != text or b.level != level:
            b.set(level, text)
        if not b.dismissed:
            b.show()

    def remove_banner(self, key: str) -> None:
        b = self._banners.pop(key, None)
        if b is not None:
            b.deleteLater()

    def texts(self) -> list[tuple[str, str]]:
        """(level, text) of visible banners, for tests and the smoke test."""
        return [(b.level, b.label.text()) for b in self._banners.values() if not b.dismissed]

    def update_from(self, state: RunState) -> None:
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
        if state.status == "failed":
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
