"""`herbdesk summary`: what a run did, read back from its event log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from herbdesk.events.reader import ReadStats, iter_events
from herbdesk.state import RunState


def resolve_log(path: Path) -> Path:
    """A run directory means its events.jsonl (or raw.jsonl alone); a file is taken as given."""
    if path.is_dir():
        events = path / "events.jsonl"
        raw = path / "raw.jsonl"
        return raw if not events.exists() and raw.exists() else events
    return path


def load_state(path: Path) -> tuple[RunState, ReadStats]:
    """Fold a whole log into a RunState (bad lines counted, not fatal)."""
    log = resolve_log(path)
    state = RunState()
    stats = ReadStats()
    for ev in iter_events(log, stats):
        state.apply(ev)
    state.bad_lines = stats.bad_lines
    return state, stats


def cmd_summary(path: Path, as_json: bool = False) -> int:
    log = resolve_log(path)
    if not log.exists():
        print(f"herbdesk: error: no event log at {log}", file=sys.stderr)
        return 2
    state, _ = load_state(path)
    summary = state.summary()
    if as_json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    _print_summary(summary)
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    status = str(s["status"])
    if s.get("reason"):
        status += f" ({s['reason']})"
    rows: list[tuple[str, str]] = [
        ("run", str(s["run_id"])),
        ("status", status),
        ("total", str(s["total"] if s["total"] is not None else "?")),
        ("processed", str(s["processed"])),
        ("succeeded", str(s["succeeded"])),
        ("failed", str(s["failed"])),
        ("success rate", f"{s['success_rate']:.1%}"),
        ("tokens", str(s["tokens"])),
        ("cost (USD)", f"{s['cost_usd']:.4f}"),
        ("events", f"{s['events']} ({s['bad_lines']} bad line(s) skipped)"),
        ("first event", str(s["first_timestamp"])),
        ("last event", str(s["last_timestamp"])),
    ]
    if s.get("message") and s["status"] != "completed":
        rows.insert(2, ("message", s["message"]))
    for c in s["checkpoints"]:
        rows.append((f"checkpoint {c['checkpoint']}", f"{c['status']} ({c['success_rate']:.0%})"))
    for w in s["warnings"]:
        rows.append(("warning", str(w.get("message", w))))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t, markup=False)
