"""A run's terminal event: the one builder of its type and data, for local and distributed runs.

The pipeline and the broker each end a run their own way (one process, or whoever of many
workers sets the end first), but the event they log must be the same: the summary, `tail`,
alerts and exit codes read it (tests/test_distributed.py::test_local_and_distributed_runs_
decide_alike compares them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herbdesk.events.types import EventType, HaltReason

END_TYPES = {
    "completed": EventType.EXTRACTION_COMPLETED,
    "cancelled": EventType.EXTRACTION_CANCELLED,
}


def end_event(
    status: str,
    reason: str | None,
    message: str,
    snap: Mapping[str, Any],
    started: int,
    quality: Mapping[str, Any],
    verdict: tuple[str | None, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(event type, data) of a run that ended with `status` ("completed", "cancelled",
    "failed"): counts from the metrics snapshot `snap`, the quality summary, and for a
    completed run its verdict (verdict, why)."""
    data: dict[str, Any] = {
        "status": status,
        "message": message,
        "processed": snap["total_processed"],
        "succeeded": snap["success_count"],
        "failed": snap["failed_count"],
        "success_rate": snap["success_rate"],
        "started": started,
        "duration_s": snap["elapsed_seconds"],
        "usable": quality.get("usable", 0),
        "usable_rate": quality.get("usable_rate"),
        "quality": dict(quality),
    }
    if status == "completed" and verdict is not None:
        data["verdict"] = verdict[0]
        if verdict[1]:
            data["verdict_message"] = verdict[1]
    if reason and status == "failed":
        data["reason"] = reason
    return END_TYPES.get(status, EventType.EXTRACTION_FAILED), data


# A run paused at its --budget ends as `extraction.failed`, reason `budget`, in the log and in
# run.json. Kept so rather than given a terminal type of its own: exit codes (7), the broker's
# halt and reopening, `tail --until-done`, run.json and every log already written read it that
# way, and a new type would ripple through all of them and the schema. Readers tell it apart
# here instead (RunState.paused_at_budget, the terminal, alerts), and present it as the pause
# it is: resumable with a higher budget, amber, not red.
def paused_at_budget(status: object, reason: object) -> bool:
    """Whether a run's end (its terminal event's status and reason) is a budget pause."""
    return status == "failed" and reason == HaltReason.BUDGET


def budget_go_on(run_dir: object = "RUN_DIR", broker: str | None = None) -> str:
    """How a run paused at its budget goes on (`broker`: a distributed run's, redacted)."""
    return (
        f"go on with herbdesk run --resume {run_dir}"
        + (f" --broker {broker}" if broker else "")
        + " --budget HIGHER"
    )


def budget_pause_text(
    processed: object, succeeded: object, failed: object, spent: float, budget: object
) -> str:
    """ "4 processed, 4 succeeded, 0 failed; spent $0.0080 of $0.0100": a budget pause's
    figures, the spend the final one (in-flight specimens finished), not the pause's."""
    of = f" of ${budget:.4f}" if isinstance(budget, int | float) else ""
    return f"{processed} processed, {succeeded} succeeded, {failed} failed; spent ${spent:.4f}{of}"
