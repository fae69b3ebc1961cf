"""What to do after a run ended without completing: the one wording for terminal and alerts.

A halt for the records' quality (the quality checkpoint, identical records, degradation, the
known answers) is not undone by a resume: a resumed run is judged on all its records, the
earlier invocations' included, so it halts again at once. Saying "--resume" there sends the
user round in a circle; the way on is a new run with the cause fixed, or a gate set to what
these sheets can meet.
"""

from __future__ import annotations

from pathlib import Path

from herbdesk.events.types import HaltReason

# the option that sets each record gate, for "resume with ... if the gate is too strict"
_GATE_OPTION = {
    HaltReason.EARLY_QUALITY_FAILED: "a lower --quality-threshold",
    HaltReason.GOLD_FAILED: "a lower --gold-threshold",
    HaltReason.DEGRADED: "--no-degraded-halt",
    HaltReason.IDENTICAL_RECORDS: "",  # identical records are never acceptable
}


def go_on(reason: str, run_dir: Path | str) -> str:
    """How to go on after a run ended for `reason` (a HaltReason, or "cancelled")."""
    if reason in _GATE_OPTION:
        option = _GATE_OPTION[reason]
        loosen = (
            f"; or, if the gate is too strict for these sheets, herbdesk run --resume {run_dir}"
            f" with {option}"
            if option
            else ""
        )
        return (
            "The records so far fail this gate, and a resumed run is judged on them too: fix "
            f"the cause (engine, model, prompt) and start a new run{loosen}."
        )
    return f"Continue with: herbdesk run --resume {run_dir}"
