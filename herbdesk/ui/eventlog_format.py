"""How the event log pane writes an event: its clock time and one-line summary.

Qt-free and apart from the pane so that the text search (`eventlog_search`) can reason about
what a summary can hold: SUMMARY_LITERALS lists the text the summary code writes itself and
must change with it (a test checks them against each other).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from herbdesk.events.types import REVIEW_TYPES, Event, EventType
from herbdesk.runstate.values import error_text

MAX_SUMMARY = 300


def clock_time(ts: str) -> str:
    """HH:MM:SS.mmm in local time (events are stamped in UTC); the raw text if unparsable."""
    try:
        dt = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return ts or ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone()
    return f"{dt:%H:%M:%S}.{dt.microsecond // 1000:03d}"


def pct(x: Any) -> str:
    return f"{x:.0%}" if isinstance(x, int | float) else "?"


def describe(ev: Event) -> str:
    d = ev.data
    et = ev.event_type
    image = str(d.get("image") or "")
    if et == EventType.EXTRACTION_STARTED:
        cfg = d.get("config")
        cfg = cfg if isinstance(cfg, Mapping) else {}
        engine = " / ".join(str(x) for x in (cfg.get("engine"), cfg.get("model")) if x)
        resumed = " (resumed)" if d.get("resumed") else ""
        return f"{d.get('total', '?')} images{resumed}" + (f" · {engine}" if engine else "")
    if et == EventType.PREFLIGHT_COMPLETED:
        checks = d.get("checks")  # a log may hold anything here: a number would raise
        checks = checks if isinstance(checks, list | tuple) else []
        bad = [c for c in checks if isinstance(c, Mapping) and not c.get("ok")]
        if not bad:
            return "all checks passed"
        return "failed: " + "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in bad)
    if et in (EventType.SPECIMEN_QUEUED, EventType.SPECIMEN_PROCESSING):
        return image
    if et == EventType.SPECIMEN_SKIPPED:
        return f"{image}: {d.get('reason') or ''}"
    if et == EventType.SPECIMEN_RETRYING:
        if d.get("reason") == "quota":
            return f"waits for the API quota to reset (in {d.get('delay_s')} s) — " + error_text(
                d.get("error")
            )
        return f"attempt {d.get('attempt')} failed, retry in {d.get('delay_s')} s — " + error_text(
            d.get("error")
        )
    if et == EventType.SPECIMEN_COMPLETED:
        conf = d.get("confidence")
        conf_s = f" · confidence {conf:.2f}" if isinstance(conf, int | float) else ""
        ms = d.get("processing_time_ms")
        time_s = f" · {ms / 1000:.1f} s" if isinstance(ms, int | float) else ""
        return f"{image} · {d.get('fields_extracted', 0)} fields{conf_s}{time_s}"
    if et == EventType.SPECIMEN_FAILED:
        return f"{image} · {error_text(d.get('error'))}"
    if et == EventType.VALIDATION_CHECKPOINT:
        return (
            f"checkpoint at {d.get('checkpoint')}: {d.get('status')}, success rate "
            f"{pct(d.get('success_rate'))} (threshold {pct(d.get('threshold'))})"
        )
    if et == EventType.QUALITY_CHECKPOINT:
        failed = d.get("failed_terms")
        terms = ", ".join(str(t) for t in failed) if isinstance(failed, Mapping) else ""
        return (
            f"quality checkpoint at {d.get('checkpoint')}: {d.get('status')}, "
            f"{pct(d.get('usable_rate'))} usable (threshold {pct(d.get('threshold'))})"
            + (f" — invalid: {terms}" if terms else "")
        )
    if et == EventType.QUALITY_GOLD:
        return f"{image}: known-answer sheet, {d.get('correct')}/{d.get('compared')} terms right"
    if et == EventType.VALIDATION_WARNING:
        return str(d.get("message") or f"success rate {pct(d.get('success_rate'))}")
    if et == EventType.CONSUMER_ERROR:
        return f"{d.get('consumer')} on {d.get('on_event')} #{d.get('on_seq')}: {d.get('error')}"
    if et in (EventType.EXTRACTION_PAUSED, EventType.EXTRACTION_RESUMED):
        word = "paused" if et == EventType.EXTRACTION_PAUSED else "resumed"
        why = d.get("reason") or "by the user"
        until = f" until {d.get('until')}" if d.get("until") else ""
        return f"{word} ({why}){until}" + (f" — {d.get('message')}" if d.get("message") else "")
    if et in (
        EventType.EXTRACTION_COMPLETED,
        EventType.EXTRACTION_FAILED,
        EventType.EXTRACTION_CANCELLED,
    ):
        head = f"{d['reason']}: " if et == EventType.EXTRACTION_FAILED and d.get("reason") else ""
        counts = ""
        if d.get("processed") is not None:
            counts = f" ({d.get('succeeded')}/{d.get('processed')} succeeded)"
        return f"{head}{d.get('message') or ''}{counts}"
    if et in REVIEW_TYPES:
        term, was, now = d.get("term"), d.get("extracted"), d.get("value")
        verdict = {
            EventType.REVIEW_ACCEPTED: "accepted",
            EventType.REVIEW_CORRECTED: "corrected",
            EventType.REVIEW_REJECTED: "rejected",
        }[et]
        shown = f"{term}: {verdict} “{was}”"
        if et == EventType.REVIEW_CORRECTED:
            shown += f" → “{now}”"
        return shown + f" · {d.get('sample')} sample"
    if d:
        return json.dumps(dict(d), ensure_ascii=False, default=str)
    return ""


def summarize(ev: Event) -> str:
    """A one-line plain-text summary of an event's data, whatever the data holds."""
    text = " ".join(describe(ev).split())  # newlines (tracebacks, replies) would break rows
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


# Text `describe`, `err`, `pct` and `summarize` write themselves, not copied from the event
# (a test keeps this in step with their string constants). "None" is how a missing value shows.
SUMMARY_LITERALS: tuple[str, ...] = (
    " / ", " (resumed)", " images", " · ", "?", "all checks passed", "failed: ", "; ", ": ",
    "attempt ", " failed, retry in ", " s — ", " · confidence ", " s", " fields",
    "waits for the API quota to reset (in ", " s) — ",
    "checkpoint at ", ", success rate ", " (threshold ", ")", "success rate ", " on ", " #",
    "paused", "resumed", "by the user", " until ", " (", " — ", "/", " succeeded)", " ", "…",
    "None", "quality checkpoint at ", " usable (threshold ", " — invalid: ", ", ",
    ": known-answer sheet, ", " terms right", " “", "”", " → “", " sample",
    "accepted", "corrected", "rejected",
)  # fmt: skip
