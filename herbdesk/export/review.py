"""The hook through which review verdicts reach an export (the review mode is still to come).

When the window's spot-check review lands, its `review.*` events (appended to the run's
events.jsonl) are folded into a ReviewLedger by `load_review`; `apply` then gives each
record its corrected values before quality is judged, and marks it reviewed. Until then
the ledger is empty: every record is exported as extracted, with reviewed = false.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ReviewLedger:
    """Per specimen id: corrected values by term ("" = the term was rejected: emptied)."""

    corrections: dict[str, dict[str, str]] = field(default_factory=dict)
    reviewed: set[str] = field(default_factory=set)

    def apply(self, specimen_id: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """The record's values with the review's corrections over them, and whether the
        record was reviewed."""
        out = dict(values)
        for term, value in self.corrections.get(specimen_id, {}).items():
            if value == "":
                out.pop(term, None)
            else:
                out[term] = value
        return out, specimen_id in self.reviewed


def load_review(run_dir: Path | None) -> ReviewLedger:
    """The review verdicts recorded for a run: none yet (no `review.*` events exist)."""
    return ReviewLedger()
