"""Review verdicts in an export: the run's `review.*` events as corrections and a mark.

`load_review` folds the verdicts of the run's events.jsonl (herbdesk/quality/review.py,
the newest per specimen and term); `apply` then gives each record its corrected values
(a rejected term emptied) before quality is judged, and says whether it was reviewed (any
verdict on any of its terms). A raw.jsonl without a run's event log has no verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbdesk.events.layout import EVENTS
from herbdesk.quality.review import read_verdicts


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
    """The review verdicts recorded in the run's events.jsonl (none without a run dir)."""
    if run_dir is None:
        return ReviewLedger()
    verdicts = read_verdicts(Path(run_dir) / EVENTS)
    return ReviewLedger(corrections=verdicts.corrections(), reviewed=verdicts.reviewed())
