"""A run's terminal event: the one builder of its type and data, for local and distributed runs.

The pipeline and the broker each end a run their own way (one process, or whoever of many
workers sets the end first), but the event they log must be the same: the summary, `tail`,
alerts and exit codes read it (tests/test_distributed.py::test_local_and_distributed_runs_
decide_alike compares them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herbdesk.events.types import EventType

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
