"""One object the pipeline (local and distributed) asks about every record it produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herbdesk.quality.checks import QualityConfig, judge_record, parse_required, prompt_examples
from herbdesk.quality.gold import GoldSet, compare


@dataclass
class QualitySettings:
    """What the user chose (flags, config file, run.json): paths and text, no loaded data."""

    require: str | None = None  # "--require scientificName,eventDate|recordedBy"
    catalog_pattern: str | None = None
    gold_path: Path | None = None
    checklist_path: Path | None = None

    def public_dict(self) -> dict[str, Any]:
        return {
            "require": self.require,
            "catalog_pattern": self.catalog_pattern,
            "gold": str(self.gold_path) if self.gold_path else None,
            "checklist": str(self.checklist_path) if self.checklist_path else None,
        }


class RecordJudge:
    """Judges records against the run's QualityConfig and known-answer sheets.

    Loading raises ValueError (a bad pattern, --require term, gold file or checklist) with a
    message for the user, before anything of the run is started.
    """

    def __init__(self, config: QualityConfig, gold: GoldSet | None = None) -> None:
        self.config = config
        self.gold = gold

    @classmethod
    def from_settings(cls, s: QualitySettings, prompt_text: str = "") -> RecordJudge:
        import re

        kwargs: dict[str, Any] = {"examples": prompt_examples(prompt_text)}
        if s.require:
            kwargs["required"] = parse_required(s.require)
        if s.catalog_pattern:
            try:
                re.compile(s.catalog_pattern)
            except re.error as exc:
                raise ValueError(f"--catalog-pattern: not a regular expression: {exc}") from exc
            kwargs["catalog_pattern"] = s.catalog_pattern
        if s.checklist_path:
            from herbdesk.quality.checklist import Checklist

            kwargs["checklist"] = Checklist.load(Path(s.checklist_path))
        gold = GoldSet.load(Path(s.gold_path)) if s.gold_path else None
        return cls(QualityConfig(**kwargs), gold)

    def quality(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return judge_record(values, self.config).to_data()

    def is_gold_image(self, image: str) -> bool:
        return self.gold is not None and self.gold.named(image) is not None

    def gold_result(self, image: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The `quality.gold` event's data for a known-answer sheet, else None (a failed
        specimen has no values: every expected term is then missing)."""
        if self.gold is None:
            return None
        expected = self.gold.expected_for(image, values)
        if expected is None:
            return None
        terms = compare(expected, values)
        got = {}
        for t in expected:
            v = values.get(t)
            v = v.get("value") if isinstance(v, Mapping) else v
            got[t] = str(v)[:200] if v is not None else None
        return {
            "image": image,
            "terms": terms,
            "expected": dict(expected),
            "got": got,
            "correct": sum(1 for r in terms.values() if r == "correct"),
            "compared": len(terms),
        }
