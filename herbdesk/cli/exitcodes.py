"""herbdesk's exit codes: the only copy, for `run`, `tail --until-done`, `export` and the
distributed commands, and the one mapping from a run's end to its code."""

from __future__ import annotations

import sys
from typing import Any

from herbdesk.common.termtext import clean_text
from herbdesk.events.types import Event, EventType, HaltReason

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PREFLIGHT = 3
EXIT_HALTED = 4
EXIT_FATAL = 5
EXIT_BELOW_THRESHOLD = 6
EXIT_BUDGET = 7
EXIT_DEAD = 8  # tail only: the run's writer died, or the run went silent, before its end
EXIT_CANCELLED = 130

# What each code means, in a few words: the help texts that list codes are written from it
# (tests/test_exit_codes.py checks every "exit N" of the help texts and docs against it).
EXIT_MEANINGS: dict[int, str] = {
    EXIT_OK: "completed",
    EXIT_INTERNAL: "internal error",
    EXIT_USAGE: "usage error",
    EXIT_PREFLIGHT: "preflight failed",
    EXIT_HALTED: "halted by validation or quality",
    EXIT_FATAL: "fatal error",
    EXIT_BELOW_THRESHOLD: "completed below threshold",
    EXIT_BUDGET: "paused at its --budget",
    EXIT_DEAD: "the run never ended: its writer died or it went silent",
    EXIT_CANCELLED: "cancelled",
}

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK:<4} run completed
  {EXIT_INTERNAL:<4} internal error
  {EXIT_USAGE:<4} usage error (bad arguments, no images, unreadable config), or the run directory is
       in use by another herbdesk process (its pid, host and start are named)
  {EXIT_PREFLIGHT:<4} preflight failed (no/refused API key, model missing, output not writable);
       nothing attempted
  {EXIT_HALTED:<4} halted by validation: a checkpoint failed (success or record quality), too many
       failures in a row, identical records, the run degraded, or known-answer sheets wrong
       (a resume is judged on all the run's records: a gate they fail halts it again)
  {EXIT_FATAL:<4} halted by a fatal error mid-run (key revoked, model gone, disk full)
  {EXIT_BELOW_THRESHOLD:<4} ran to the end but below threshold (success rate or share of usable
       records)
  {EXIT_BUDGET:<4} paused at its --budget: nothing new started, in-flight specimens finished; go on
       with --resume RUN_DIR --budget HIGHER (plus --broker URL for a distributed run)
  {EXIT_CANCELLED:<4} cancelled (Ctrl-C); in-flight specimens were finished or left for --resume
"""


# How a run that halted ends the process (the reasons are HaltReason's, plus the budget pause).
HALT_EXIT: dict[str, int] = {
    HaltReason.PREFLIGHT_FAILED: EXIT_PREFLIGHT,
    HaltReason.EARLY_VALIDATION_FAILED: EXIT_HALTED,
    HaltReason.CONSECUTIVE_FAILURES: EXIT_HALTED,
    HaltReason.EARLY_QUALITY_FAILED: EXIT_HALTED,
    HaltReason.IDENTICAL_RECORDS: EXIT_HALTED,
    HaltReason.DEGRADED: EXIT_HALTED,
    HaltReason.GOLD_FAILED: EXIT_HALTED,
    HaltReason.FATAL_ERROR: EXIT_FATAL,
    "budget": EXIT_BUDGET,
}


def exit_code(status: str, reason: str | None, verdict: str | None) -> int:
    """The code for a run that ended with this status ("completed", "cancelled", "failed"),
    halt reason and verdict."""
    if status == "completed":
        return EXIT_BELOW_THRESHOLD if verdict == "below_threshold" else EXIT_OK
    if status == "cancelled":
        return EXIT_CANCELLED
    return HALT_EXIT.get(reason or "", EXIT_INTERNAL)


def exit_code_for_outcome(outcome: Any) -> int:
    """The code for a RunOutcome (a local run, or a distributed run followed to its end)."""
    return exit_code(outcome.status, outcome.reason, outcome.verdict)


def exit_code_for(ev: Event | None) -> int:
    """The code for a run's terminal event (`tail --until-done`)."""
    if ev is None:
        return EXIT_INTERNAL
    if ev.event_type == EventType.EXTRACTION_COMPLETED:
        return exit_code("completed", None, ev.data.get("verdict"))
    if ev.event_type == EventType.EXTRACTION_CANCELLED:
        return exit_code("cancelled", None, None)
    return exit_code("failed", str(ev.data.get("reason") or ""), None)


def usage_error(msg: str) -> int:
    """Say a usage error on stderr (cleaned: paths and exception texts) and give its code."""
    print(f"herbdesk: error: {clean_text(msg)}", file=sys.stderr)
    return EXIT_USAGE
