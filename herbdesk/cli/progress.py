"""Live terminal progress for headless runs (rich), fed by the event bus."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Column

from herbdesk.common.termtext import clean_text
from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event, EventType
from herbdesk.extraction.budget import no_cost_note
from herbdesk.extraction.limits import daily_cap_note
from herbdesk.monitor import ending, goon, projection


def fmt_duration(seconds: float | None) -> str:
    """The terminal's compact duration ("4m05s", "2h10m", "3d04h"); "--" when unknown."""
    if seconds is None:
        return "--"
    return projection.duration(seconds)


class TerminalProgress:
    """Progress bar with success rate, throughput, ETA and cost; checkpoints stand out."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self._lock = threading.Lock()
        self._done_before = 0  # specimens a resume skips: finished by an earlier invocation
        self._skipped = 0  # duplicates, unreadable images, ones stopped while they waited
        self._ok = self._failed = 0  # finishes seen (a follower's go on after the end event)
        self._budget: float | None = None  # the run's --budget, as started or paused
        self._metrics: Mapping[str, Any] = {}  # the newest finish's metrics
        # In a narrow terminal rich shrinks every column of a row that does not fit, and the
        # count went first ("extracting   ok 100%"): the label and count never shrink, the
        # bar takes what is left (none at all, if need be), and the figures wrap instead.
        self._progress = Progress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None, table_column=Column(ratio=1)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
            transient=False,
            refresh_per_second=4,
            disable=quiet,
            expand=True,
        )
        self._task: TaskID | None = None
        self._ahead = projection.ProjectionFold()  # cost and time ahead, with a range
        self.run_dir = ""

    def __enter__(self) -> TerminalProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def note(self, text: str, style: str = "yellow") -> None:
        if not self.quiet:
            self._print(text, style)

    def _print(self, text: str, style: str | None = None) -> None:
        """Every line goes out here: it quotes servers, models and file names (termtext)."""
        self.console.print(clean_text(text), style=style or "", markup=False, soft_wrap=True)

    def on_event(self, ev: Event) -> None:
        with self._lock:
            self._ahead.on_event(ev)
            self._handle(ev)

    def _handle(self, ev: Event) -> None:
        d = ev.data
        et = ev.event_type
        if et == EventType.EXTRACTION_STARTED:
            cfg = d.get("config", {})
            budget = cfg.get("budget_usd")
            self._budget = float(budget) if isinstance(budget, int | float) else None
            rpm = cfg.get("requests_per_minute")
            self.note(
                f"run {ev.run_id}: {d.get('total')} image(s), engine {cfg.get('engine')}"
                + (f" ({cfg.get('model')})" if cfg.get("model") else "")
                + (f", at most {rpm:g} requests/min" if isinstance(rpm, (int, float)) else ""),
                style="bold",
            )
            total = d.get("total")
            cap = daily_cap_note(
                cfg.get("engine"), cfg.get("model"), total if isinstance(total, int) else None
            )
            if cap:
                self.note(f"WARNING: {cap}", style="bold yellow")
            if note := no_cost_note(str(cfg.get("engine") or ""), self._budget):
                self.note(f"WARNING: {note}", style="bold yellow")
        elif et == EventType.PREFLIGHT_COMPLETED:
            for c in d.get("checks", []):
                mark = "ok " if c.get("ok") else "FAIL"
                self.note(
                    f"  preflight {mark} {c.get('name')}: {c.get('detail')}",
                    style="green" if c.get("ok") else "bold red",
                )
        elif et == EventType.SPECIMEN_QUEUED:
            if self._task is None:
                self._task = self._progress.add_task("extracting", total=0, stats="")
            self._progress.update(self._task, total=(self._progress.tasks[0].total or 0) + 1)
        elif et in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            m = self._metrics = ev.metrics or {}
            if et == EventType.SPECIMEN_COMPLETED and d.get("success") is not False:
                self._ok += 1
            else:
                self._failed += 1
            if self._task is not None:
                self._progress.update(
                    self._task, completed=m.get("total_processed", 0), stats=self._stats(m)
                )
            if et == EventType.SPECIMEN_FAILED:
                err = d.get("error") or {}
                self.note(
                    f"  failed {d.get('image')}: {err.get('kind')}: "
                    f"{str(err.get('message', ''))[:160]}",
                    style="red",
                )
        elif et == EventType.SPECIMEN_SKIPPED:
            if d.get("reason") == "already completed":  # counted on the final line instead
                self._done_before += 1
            else:
                self._skipped += 1
                self.note(f"  skipped {d.get('image')}: {d.get('reason')}", style="dim")
        elif et == EventType.SPECIMEN_RETRYING:
            err = d.get("error") or {}
            if d.get("reason") == "quota":  # the run's pause says it once; no line per specimen
                return
            self.note(
                f"  retrying in {d.get('delay_s')}s after {err.get('kind')}: "
                f"{str(err.get('message', ''))[:120]}",
                style="dim",
            )
        elif et == EventType.VALIDATION_CHECKPOINT:
            passed = d.get("status") == "passed"
            ahead = projection.sentence(self._ahead.projection(time.time()), time.time())
            self.note(
                f"CHECKPOINT {d.get('checkpoint')}: {str(d.get('status')).upper()} - "
                f"success rate {float(d.get('success_rate', 0)):.0%}"
                + (f"; {ahead}" if passed and ahead else ""),
                style="bold green" if passed else "bold white on red",
            )
        elif et == EventType.QUALITY_CHECKPOINT:
            passed = d.get("status") == "passed"
            terms = d.get("failed_terms") or {}
            shown = "; ".join(
                f"{t}: {', '.join(repr(str(v)[:40]) for v in vals)}" for t, vals in terms.items()
            )
            self.note(
                f"QUALITY CHECKPOINT {d.get('checkpoint')}: {str(d.get('status')).upper()} - "
                f"{float(d.get('usable_rate', 0)):.0%} of records usable"
                + (f" (invalid: {shown})" if shown and not passed else ""),
                style="bold green" if passed else "bold white on red",
            )
        elif et == EventType.QUALITY_GOLD:
            right, n = d.get("correct"), d.get("compared")
            wrong = [t for t, r in (d.get("terms") or {}).items() if r != "correct"]
            self.note(
                f"  known answer {d.get('image')}: {right}/{n} terms right"
                + (f" (wrong or missing: {', '.join(wrong)})" if wrong else ""),
                style="green" if not wrong else "yellow",
            )
        elif et == EventType.VALIDATION_WARNING:
            self.note(f"WARNING: {d.get('message')}", style="bold yellow")
        elif et == EventType.EXTRACTION_PAUSED and d.get("message"):
            if d.get("reason") == "budget" and isinstance(d.get("budget_usd"), int | float):
                self._budget = float(d["budget_usd"])
            self.note(f"PAUSED: {d.get('message')}", style="bold yellow")
        elif et == EventType.EXTRACTION_RESUMED and d.get("reason"):
            why = "budget raised" if d.get("reason") == "budget" else f"{d.get('reason')} reset"
            self.note(f"resumed ({why})", style="bold green")
        elif et == EventType.CONSUMER_ERROR:
            self.note(f"consumer {d.get('consumer')} failed: {d.get('error')}", style="magenta")
        elif et in TERMINAL_EVENT_TYPES and self._task is not None:
            # the run is over: no time ahead on its last line
            self._progress.update(self._task, stats=self._stats(self._metrics, ended=True))

    def _stats(self, m: Mapping[str, Any], ended: bool = False) -> str:
        # the run's cost over all its invocations, as the budget counts it (a resume's own
        # metrics start from $0 again)
        cost = self._ahead.spent
        usable = m.get("usable_rate")
        ahead = None if ended else self._ahead.projection(time.time())
        eta = projection.time_text(ahead) or fmt_duration(m.get("eta_seconds"))
        total = projection.cost_text(ahead)
        budget = self._budget
        return (
            f"ok {m.get('success_rate', 0):.0%}"
            + (f" | usable {usable:.0%}" if isinstance(usable, (int, float)) else "")
            + f" | {m.get('specimens_per_minute', 0):.1f}/min"
            + ("" if ended else f" | ETA {eta}")
            + (f" | ${cost:.4f}" if cost else "")
            + (f" of ~{total}" if cost and total else "")
            + (f" | budget ${budget:.4f}" if budget is not None else "")
        )

    def final(self, outcome: Any, go_on: str | None = None) -> None:
        """The run's last lines; `go_on` how a budget pause goes on (default: a local
        resume of `outcome.run_dir`)."""
        if ending.paused_at_budget(outcome.status, outcome.reason):
            self._final_budget_pause(outcome, go_on or ending.budget_go_on(outcome.run_dir))
            return
        m = outcome.metrics
        line = (
            f"{outcome.status.upper()}: {m.get('total_processed', 0)} processed, "
            f"{m.get('success_count', 0)} succeeded, {m.get('failed_count', 0)} failed "
            f"({m.get('success_rate', 0):.0%}) in {fmt_duration(m.get('elapsed_seconds'))}"
        )
        style = {"completed": "bold green", "cancelled": "bold yellow"}.get(
            outcome.status, "bold red"
        )
        below = outcome.status == "completed" and getattr(outcome, "verdict", None) == (
            "below_threshold"
        )
        usable = m.get("usable_rate")
        if isinstance(usable, (int, float)) and m.get("total_processed"):
            line += f", {m.get('usable_count', 0)} usable ({usable:.0%})"
        if below:
            line = line.replace("COMPLETED", "COMPLETED BELOW THRESHOLD", 1)
            style = "bold red"
        extra = [f"{self._skipped} skipped"] if self._skipped else []
        if self._done_before:
            extra.append(f"{self._done_before} already done by an earlier invocation")
        if extra:
            line += f"; {', '.join(extra)}"
        if outcome.reason == "preflight_failed":
            line = "NOT STARTED: preflight failed, no specimen was attempted"
        self._print(line, style)
        if outcome.status != "completed":
            self._print(f"  {outcome.message}", style)
        elif below:
            self._print(f"  {outcome.verdict_message}", style)
        self._print(f"  run directory: {outcome.run_dir}")
        self._print(f"  summary: herbdesk summary {outcome.run_dir}")
        if outcome.status in ("failed", "cancelled") and outcome.reason != "preflight_failed":
            self._print(f"  {goon.go_on(outcome.reason or '', outcome.run_dir)}")

    def _final_budget_pause(self, outcome: Any, go_on: str) -> None:
        """A run paused at its budget is no failure: amber, the final spend (the specimens in
        flight at the pause finished since its message), and how it goes on."""
        m = outcome.metrics or {}
        counts = ending.budget_pause_text(
            self._ok + self._failed, self._ok, self._failed, self._ahead.spent, self._budget
        )
        line = f"PAUSED AT BUDGET after {fmt_duration(m.get('elapsed_seconds'))}: {counts}"
        if self._done_before:
            line += f"; {self._done_before} already done by an earlier invocation"
        style = "bold yellow"
        self._print(line, style)
        self._print(f"  {go_on}", style)
        self._print(f"  run directory: {outcome.run_dir}")
        self._print(f"  summary: herbdesk summary {outcome.run_dir}")
