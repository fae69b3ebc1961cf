"""`herbdesk summary`: what a run did, read back from its event log."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson

from herbdesk.common.termtext import clean_text, json_safe
from herbdesk.events.reader import (
    not_regular_reason,
)
from herbdesk.extraction.liveness import DEFAULT_STALE_S
from herbdesk.runstate.load import load_state, not_a_log, resolve_log, runs_in
from herbdesk.runstate.state import RunState


def cmd_summary(path: Path, as_json: bool = False) -> int:
    log = resolve_log(path)
    if not log.exists():
        print(f"herbdesk: error: no event log at {clean_text(log)}", file=sys.stderr)
        runs = runs_in(path)
        if runs:  # a runs folder: name the runs inside it, newest first
            shown = clean_text(", ".join(p.name for p in runs[:5]))
            print(
                f"  {clean_text(path)} holds {len(runs)} run(s), newest: {shown}", file=sys.stderr
            )
        return 2
    if (reason := not_regular_reason(log)) is not None:  # a FIFO would block, /dev/zero spin
        print(f"herbdesk: error: {clean_text(reason)}", file=sys.stderr)
        return 2
    try:
        state, stats = load_state(path)
    except OSError as exc:  # a directory or FIFO named like a log, or unreadable
        print(f"herbdesk: error: cannot read {clean_text(log)}: {clean_text(exc)}", file=sys.stderr)
        return 2
    if (refusal := not_a_log(log, stats)) is not None:  # an image, a CSV: not a log at all
        print(f"herbdesk: error: {clean_text(refusal)}", file=sys.stderr)
        return 2
    summary = state.summary()
    summary.update(run_facts(state))
    if state.paused_at_budget and log.name == "events.jsonl":  # how it goes on, this run's way
        summary["message"] = state.budget_pause_text(log.parent)
    # Silence is measured by the log's modification time on this machine, not by event
    # timestamps (a remote writer's clock may be off): a SIGKILLed run or one whose disk
    # filled up never writes its terminal event and would otherwise read as "running".
    silent = None
    summary["paused"] = state.paused
    now = time.time()
    ahead = state.projection(now)  # running runs only: cost and time ahead, with a range
    summary["projection"] = ahead.to_dict(now) if ahead is not None else None
    summary["pause_message"] = state.pause_message
    if summary["status"] in ("running", "pending") and not state.paused:  # paused: quiet on purpose
        try:
            silent = max(0.0, time.time() - log.stat().st_mtime)
        except OSError:
            silent = None
    summary["silent_seconds"] = round(silent) if silent is not None else None
    # who writes it (run.json / run.lock): a writer on this host that is gone is dead at once
    summary["writer"], summary["writer_state"] = None, None
    if log.name == "events.jsonl":
        from herbdesk.extraction.runlock import writer_status

        ws = writer_status(log.parent)
        summary["writer"] = ws.holder or None
        if summary["status"] in ("running", "pending"):
            summary["writer_state"] = ws.state
    if as_json:
        text = json_safe(orjson.dumps(summary, option=orjson.OPT_INDENT_2)).decode()
        sys.stdout.write(text + "\n")
        return 0
    _print_summary(summary)
    return 0


def run_facts(state: RunState) -> dict[str, Any]:
    """What ran and for how long, and the failures by error kind (most frequent first)."""
    from collections import Counter
    from datetime import datetime

    from herbdesk.runstate.state import STATUS_FAILED

    kinds: Counter[str] = Counter()
    for status, error in zip(state.row_status, state.error, strict=False):
        if status == STATUS_FAILED:
            kind, sep, _ = error.partition(": ")
            kinds[kind if sep and kind else "error"] += 1
    duration = None
    try:
        first = datetime.fromisoformat(str(state.first_ts))
        last = datetime.fromisoformat(str(state.last_ts))
        duration = max(0.0, (last - first).total_seconds())
    except (TypeError, ValueError):  # no timestamps, or one with a zone and one without
        pass
    config = state.config or {}
    return {
        "engine": config.get("engine"),
        "model": config.get("model") or None,
        "duration_seconds": round(duration, 1) if duration is not None else None,
        "error_kinds": dict(kinds.most_common()),
    }


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    status = str(s["status"])
    if s.get("paused_at_budget"):  # not a failure: resumable with a higher --budget
        status = "paused at its budget (exit 7; resumable)"
    elif s.get("reason"):
        status += f" ({s['reason']})"
    if s.get("paused"):
        status += f", paused: {s.get('pause_message') or 'by the user'}"
    silent = s.get("silent_seconds")
    w = s.get("writer") or {}
    if s.get("writer_state") == "dead":
        status += (
            f", but its writer (pid {w.get('pid')} on {w.get('host')}, started "
            f"{w.get('started')}) is gone: the run died; continue it with --resume"
        )
    elif silent is not None and silent >= DEFAULT_STALE_S:
        from herbdesk.cli.progress import fmt_duration

        status += (
            f", but nothing was written for {fmt_duration(silent)}: the run may have died "
            "(process killed, machine asleep, disk full)"
        )
    rows: list[tuple[str, str]] = [
        ("run", str(s["run_id"])),
        ("status", status),
        ("total", str(s["total"] if s["total"] is not None else "?")),
        ("processed", str(s["processed"])),
        ("succeeded", str(s["succeeded"])),
        ("failed", str(s["failed"])),
        ("skipped", str(s["skipped"])),
        ("success rate", f"{s['success_rate']:.1%}"),
        ("tokens", str(s["tokens"])),
        (
            "cost (USD)",
            f"{s['cost_usd']:.4f}" if s.get("cost_recorded", True) else "— (none recorded)",
        ),
        ("events", f"{s['events']} ({s['bad_lines']} bad line(s) skipped)"),
        ("first event", str(s["first_timestamp"])),
        ("last event", str(s["last_timestamp"])),
    ]

    def after(label: str, *new: tuple[str, str]) -> None:
        at = next(i for i, (k, _) in enumerate(rows) if k == label) + 1
        rows[at:at] = new

    kinds = s.get("error_kinds") or {}
    if kinds:
        after("failed", ("errors", ", ".join(f"{k} {n}" for k, n in kinds.items())))
    if s.get("engine"):
        after(
            "status", ("engine", str(s["engine"]) + (f", {s['model']}" if s.get("model") else ""))
        )
    if s.get("duration_seconds") is not None:
        from herbdesk.cli.progress import fmt_duration

        after("last event", ("duration", fmt_duration(s["duration_seconds"])))
    after("cost (USD)", *_projection_rows(s.get("projection")))
    if s.get("message") and s["status"] != "completed":
        rows.insert(2, ("message", s["message"]))
    for c in s["checkpoints"]:
        rate = c["success_rate"]
        pct = f"{rate:.0%}" if isinstance(rate, (int, float)) else str(rate)
        rows.append((f"checkpoint {c['checkpoint']}", f"{c['status']} ({pct})"))
    for w in s["warnings"]:
        rows.append(("warning", str(w.get("message", w))))
    after("success rate", *_quality_rows(s))
    for k, v in rows:  # the values quote the log: servers, models, file names
        t.add_row(clean_text(k), clean_text(v))
    console.print(t, markup=False)


def _projection_rows(p: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Cost and time ahead of a running run (monitor/projection.py), as ranges."""
    from datetime import datetime

    from herbdesk.monitor.projection import duration, money

    if not p:
        return []
    rows = []
    basis = f"from {p['basis']} finished, {p['remaining']} to go"
    if p.get("cost_usd"):
        lo, mid, hi = p["cost_usd"]
        rows.append(("projected cost", f"{money(mid)} ({money(lo)}-{money(hi)}, {basis})"))
    if p.get("seconds_left"):
        lo, mid, hi = p["seconds_left"]
        at = datetime.fromtimestamp(p["finish_epoch"][1])
        rows.append(
            (
                "projected finish",
                f"{at:%Y-%m-%d %H:%M}, in {duration(mid)} ({duration(lo)}-{duration(hi)})",
            )
        )
    return rows


def _quality_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """What the records are worth (docs/quality.md): usable share, invalid terms, findings."""
    q = s.get("quality") or {}
    if not q.get("judged"):
        return []
    rows = [("usable records", f"{q['usable']} of {q['records']} ({q['usable_rate']:.1%})")]
    if s.get("verdict") == "below_threshold":
        rows.append(("verdict", str(s.get("verdict_message") or "below threshold")))
    bad = sorted(
        ((t, c) for t, c in q.get("terms", {}).items() if c.get("invalid")),
        key=lambda tc: -tc[1]["invalid"],
    )
    for term, c in bad[:6]:
        rows.append((f"  {term}", f"{c['invalid']} invalid of {c['filled']} filled"))
    findings = sorted(q.get("findings", {}).items(), key=lambda kv: -kv[1])
    if findings:
        rows.append(("findings", ", ".join(f"{k} {n}" for k, n in findings[:6])))
    if q.get("identical_records"):
        rows.append(("identical records", str(q["identical_records"])))
    g = s.get("gold")
    if g:
        acc = g.get("accuracy")
        rows.append(
            ("known answers", f"{g['correct']}/{g['terms']} terms right on {g['sheets']} sheet(s)"
             + (f" ({acc:.0%})" if isinstance(acc, (int, float)) else ""))
        )  # fmt: skip
    return rows
