"""Opening a log: which file a path means, the runs in a folder, and folding it whole."""

from __future__ import annotations

from pathlib import Path

from herbdesk.common.gcpause import gc_paused
from herbdesk.events.layout import EVENTS, RAW
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import (
    ReadStats,
    head_stats,
    iter_line_chunks,
    not_regular_reason,
    open_regular,
    read_ahead,
)
from herbdesk.runstate.chunks import apply_chunk
from herbdesk.runstate.state import RunState
from herbdesk.runstate.terms import FileSpans


def resolve_log(path: Path) -> Path:
    """A run directory means its events.jsonl (or raw.jsonl alone); a file is taken as given."""
    if path.is_dir():
        events = path / EVENTS
        raw = path / RAW
        return raw if not events.exists() and raw.exists() else events
    return path


def runs_in(folder: Path) -> list[Path]:
    """The run directories directly inside a runs folder, newest (last written) first."""
    if not folder.is_dir() or (folder / EVENTS).exists() or (folder / RAW).exists():
        return []
    runs = [p.parent for p in folder.glob(f"*/{EVENTS}")]

    def written(p: Path) -> float:
        try:
            return (p / EVENTS).stat().st_mtime
        except OSError:
            return 0.0

    return sorted(runs, key=written, reverse=True)


def load_state(path: Path) -> tuple[RunState, ReadStats]:
    """Fold a whole log into a RunState (bad lines counted, not fatal)."""
    log = resolve_log(path)
    state = RunState()
    state.terms.source = FileSpans(log)  # values stay in the file until a view asks
    stats = ReadStats()
    decoder = AutoDecoder()
    with open_regular(log) as fh, gc_paused():
        for chunk in read_ahead(iter_line_chunks(fh)):
            apply_chunk(state, chunk, stats, decoder)
    state.bad_lines = stats.bad_lines
    return state, stats


# lines a glance reads before a window opens a file (`open`, File → Open)
HEAD_LINES = 200


def not_a_log(log: Path, stats: ReadStats, all_lines: bool = True) -> str | None:
    """The refusal of a file none of whose lines (read: `stats`) is an event or a record —
    a CSV, an image, a names list — or None. The one wording for `summary`, `open` and the
    window's File → Open."""
    if stats.events or not stats.bad_lines:
        return None
    lines = f"its {stats.lines:,}" if all_lines else f"its first {stats.lines:,}"
    return (
        f"{log} is not a herbdesk event log or raw.jsonl "
        f"(none of {lines} lines is an event or a record)"
    )


def log_refusal(path: Path) -> str | None:
    """Why the log `path` stands for cannot be opened, from a glance at its head, or None: no
    log there, not a regular file (a FIFO would block), unreadable, or not a log at all. A
    runs folder is not refused: the caller picks one of its runs."""
    if path.is_dir() and runs_in(path):
        return None
    log = resolve_log(path)
    if not log.exists():
        return f"no event log at {log}"
    if (reason := not_regular_reason(log)) is not None:
        return reason
    try:
        stats, whole = head_stats(log, HEAD_LINES)
    except OSError as exc:
        return f"cannot read {log}: {exc}"
    return not_a_log(log, stats, all_lines=whole)
