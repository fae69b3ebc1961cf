"""`export()`: read a run's records, judge them as the run did, write CSV or a DwC-A."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herbdesk.export.atomic import atomic_output, check_target
from herbdesk.export.columns import OCCURRENCE_NS, record_row
from herbdesk.export.records import ScanCounts, newest_successes, read_records, require_records
from herbdesk.export.review import load_review
from herbdesk.export.source import ExportError, Source, build_judge, resolve_source
from herbdesk.export.writers import exported_by, write_csv, write_dwca

FORMATS = ("csv", "dwca")


@dataclass
class ExportOptions:
    source: Path  # a run directory, its events.jsonl, or a raw.jsonl (also the original's)
    out: Path
    fmt: str = "dwca"
    only_usable: bool = False
    only_reviewed: bool = False  # only records with a review verdict (docs/review.md)
    force: bool = False  # replace an existing `out`


@dataclass
class ExportResult:
    out: Path
    fmt: str
    rows: int = 0
    not_usable: int = 0  # records left out by only_usable
    not_reviewed: int = 0  # records left out by only_reviewed
    reviewed: int = 0  # exported records with a review verdict
    unusable_kept: int = 0  # records exported with usable = false
    without_success: int = 0  # specimens with no successful record: never exported
    bad_lines: int = 0
    notes: list[str] = field(default_factory=list)

    def message(self) -> str:
        """One line for the terminal and the status bar."""
        text = f"exported {self.rows:,} record(s) to {self.out} ({self.fmt})"
        extra = []
        if self.not_reviewed:
            extra.append(f"{self.not_reviewed:,} not reviewed left out")
        if self.not_usable:
            extra.append(f"{self.not_usable:,} not usable left out")
        elif self.unusable_kept:
            extra.append(f"{self.unusable_kept:,} marked usable=false")
        if self.without_success:
            extra.append(f"{self.without_success:,} specimen(s) without a successful record")
        if self.bad_lines:
            extra.append(f"{self.bad_lines:,} unreadable line(s) skipped")
        return text + (f"; {', '.join(extra)}" if extra else "")


def export(options: ExportOptions, cancelled: Callable[[], bool] | None = None) -> ExportResult:
    """Write the export; ExportError (nothing written) for bad input or an existing file.

    OSError from the file system (a full disk) is raised as it is, with nothing left behind.
    """
    if options.fmt not in FORMATS:
        raise ExportError(f"unknown format {options.fmt!r}: choose {' or '.join(FORMATS)}")
    source = resolve_source(options.source)
    out = Path(options.out)
    if out.resolve() in source.own_files():
        raise ExportError(f"{out} is one of the run's own files: choose another path")
    check_target(out, options.force)  # before reading a big log, not after
    counts = ScanCounts()
    chosen = newest_successes(source.raw_path, counts)
    require_records(source.raw_path, counts)
    judge = build_judge(source)
    ledger = load_review(source.run_dir)
    result = ExportResult(
        out=out,
        fmt=options.fmt,
        without_success=counts.without_success,
        bad_lines=counts.bad_lines,
    )

    def rows() -> Iterator[list[str]]:
        for rec in read_records(source.raw_path, chosen):
            if cancelled is not None and cancelled():
                raise ExportError("export cancelled")
            values, reviewed = ledger.apply(rec.specimen_id, rec.values)
            if options.only_reviewed and not reviewed:
                result.not_reviewed += 1
                continue
            quality = judge.quality(values)  # corrected values are judged anew
            if not quality.get("usable"):
                if options.only_usable:
                    result.not_usable += 1
                    continue
                result.unusable_kept += 1
            result.reviewed += reviewed
            yield record_row(rec, values, quality, reviewed, source.provenance)

    with atomic_output(out, options.force) as tmp:
        if options.fmt == "csv":
            result.rows = write_csv(tmp, rows())
        else:
            result.rows = write_dwca(tmp, rows(), _eml_info(source, options, result))
    result.notes = list(source.provenance.notes)
    return result


def _eml_info(source: Source, options: ExportOptions, result: ExportResult) -> dict[str, Any]:
    """What eml.xml says; `records` is filled in by the writer once the rows are written
    (and result.reviewed counted: the writer consumes the rows before eml.xml is made)."""
    p = source.provenance
    q = p.quality
    steps = [
        "Darwin Core terms were extracted from herbarium sheet images by "
        + (f"herbdesk {p.herbdesk_version}" if p.herbdesk_version else "herbdesk")
        + f" with the {p.engine or 'unknown'} engine"
        + (f", model {p.model}" if p.model else "")
        + (f", prompt sha256 {p.prompt_sha256}" if p.prompt_sha256 else "")
        + (f", served by {p.base_url}" if p.base_url else "")
        + ".",
        "Per specimen the newest successful record of the run's raw.jsonl is exported. "
        "verbatimLabel holds the OCR engine's text of the label; for a vision model it is "
        "left empty (its reply is not label text).",
    ]
    if p.legacy:
        steps[0] = (
            "Darwin Core terms were extracted by the original extraction scripts (a raw.jsonl "
            "without run.json: engine and model per record, as they recorded them)."
        )
    required = q.get("require") or "scientificName,eventDate|recordedBy|locality"
    quality = (
        f"Each record was judged by herbdesk's record-quality checks (required terms: "
        f"{required}"
        + (f"; catalogNumber pattern {q['catalog_pattern']}" if q.get("catalog_pattern") else "")
        + "). The usable and findings columns carry the verdict. "
        + (
            "Only usable records are included."
            if options.only_usable
            else "Records judged not usable are included, marked usable = false."
        )
        + (
            " Only records a person reviewed are included (docs/review.md)."
            if options.only_reviewed
            else ""
        )
        + " Records a person reviewed (the spot-check review: each term accepted, corrected "
        "or rejected; corrections applied, rejected terms emptied) have reviewed = true; "
        "the others are as extracted."
    )
    package = uuid.uuid5(OCCURRENCE_NS, "run:" + (p.run_id or str(source.raw_path.absolute())))
    info: dict[str, Any] = {
        "package_id": f"urn:uuid:{package}",
        "run_id": p.run_id,
        "engine": p.engine,
        "model": p.model,
        "method_steps": steps,
        "quality_text": quality,
        "provenance": {
            "runId": p.run_id,
            "herbdeskVersion": p.herbdesk_version,
            "engine": p.engine,
            "model": p.model,
            "promptSha256": p.prompt_sha256,
            "baseUrl": p.base_url,
            "runStatus": p.status,
            "runStartedAt": p.started_at,
            "runEndedAt": p.ended_at,
            "qualityRequire": q.get("require") or "",
            "qualityCatalogPattern": q.get("catalog_pattern") or "",
            "source": str(source.raw_path.absolute()),
            "onlyUsable": "true" if options.only_usable else "false",
            "onlyReviewed": "true" if options.only_reviewed else "false",
            "exportedBy": exported_by(),
            "exportedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": p.notes,
        },
    }

    def after_rows() -> dict[str, Any]:
        """The reviewed count, known once the writer has consumed the rows."""
        info["provenance"]["reviewedRecords"] = str(result.reviewed)
        return {"reviewed": result.reviewed}

    info["after_rows"] = after_rows
    return info
