"""What is exported from: the raw.jsonl a path names, and the run's provenance.

A run directory or its events.jsonl means the run's raw.jsonl (the record of every
specimen); any other file is taken as a raw.jsonl itself, herbdesk's or the original
scripts' (herbdesk/events/legacy.py). Provenance comes from run.json, else from the log's
extraction.started event; a log without either (the original scripts') has none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from herbdesk.events.reader import head_objects
from herbdesk.extraction import runfiles
from herbdesk.quality.checks import QualityConfig
from herbdesk.quality.judge import QualitySettings, RecordJudge


class ExportError(Exception):
    """Bad input for an export (no log, not a log, an existing output): said to the user."""


@dataclass
class Provenance:
    """Run-level facts an export records: what extracted the records, how, when."""

    run_id: str = ""
    herbdesk_version: str = ""  # the version that ran the extraction ("" = unknown)
    engine: str = ""
    model: str = ""
    prompt_sha256: str = ""
    base_url: str = ""  # without user info, query or fragment: no secret reaches an export
    started_at: str = ""
    ended_at: str = ""
    status: str = ""
    quality: dict[str, Any] = field(default_factory=dict)  # QualitySettings.public_dict()
    legacy: bool = False  # the original scripts' raw.jsonl: no run.json, default quality
    notes: list[str] = field(default_factory=list)  # what could not be reproduced, said in eml


@dataclass
class Source:
    raw_path: Path
    run_dir: Path | None  # the run directory, when raw_path is a run's raw.jsonl
    provenance: Provenance

    def own_files(self) -> set[Path]:
        """Files an export must never replace: the log itself and the run's own files."""
        files = {self.raw_path.resolve()}
        if self.run_dir is not None:
            for name in (runfiles.EVENTS, runfiles.RAW, runfiles.CSV, runfiles.RUN_JSON):
                files.add((self.run_dir / name).resolve())
        return files


def resolve_source(path: Path) -> Source:
    """The raw.jsonl `path` stands for, with its run's provenance; ExportError if none."""
    path = Path(path)
    run_dir: Path | None
    if path.is_dir():
        raw, run_dir = path / runfiles.RAW, path
        if not raw.is_file():
            if (path / runfiles.EVENTS).is_file():
                raise ExportError(f"{path} has an event log but no raw.jsonl: nothing to export")
            raise ExportError(f"{path} is not a run directory (no raw.jsonl)")
    elif path.name == runfiles.EVENTS:
        raw, run_dir = path.parent / runfiles.RAW, path.parent
        if not path.exists():
            raise ExportError(f"not found: {path}")
        if not raw.is_file():
            raise ExportError(f"{path}: the run has no raw.jsonl beside it: nothing to export")
    elif not path.exists():
        raise ExportError(f"not found: {path}")
    elif not path.is_file():
        raise ExportError(f"{path} is not a regular file")
    else:
        raw = path
        run_dir = path.parent if path.name == runfiles.RAW else None
    return Source(raw, run_dir, _provenance(run_dir))


def _provenance(run_dir: Path | None) -> Provenance:
    if run_dir is None:
        return Provenance(legacy=True)
    info = runfiles.read_run_json(run_dir)
    config: dict[str, Any] = info.get("config") or {}
    version = str((info.get("versions") or {}).get("herbdesk") or "")
    if not config:  # run.json lost: the log's extraction.started carries the same config
        started = _extraction_started(run_dir / runfiles.EVENTS)
        config = started.get("config") or {}
        version = version or str(started.get("herbdesk_version") or "")
    if not config and not info:
        return Provenance(run_id=run_dir.name, legacy=True)
    return Provenance(
        run_id=str(info.get("run_id") or run_dir.name),
        herbdesk_version=version,
        engine=str(config.get("engine") or ""),
        model=str(config.get("model") or ""),
        prompt_sha256=str(config.get("prompt_sha256") or ""),
        base_url=_public_url(str(config.get("base_url") or "")),
        started_at=str(info.get("first_started_at") or info.get("started_at") or ""),
        ended_at=str(info.get("ended_at") or ""),
        status=str(info.get("status") or ""),
        quality=dict(config.get("quality") or {}),
    )


def _extraction_started(events: Path, max_lines: int = 50) -> dict[str, Any]:
    """`data` of the log's extraction.started (within its first lines), or {}."""
    for obj in head_objects(events, max_lines):
        if obj.get("event_type") == "extraction.started":
            data = obj.get("data")
            return data if isinstance(data, dict) else {}
    return {}


def _public_url(url: str) -> str:
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def build_judge(source: Source) -> RecordJudge:
    """The RecordJudge the run used: its quality settings and its prompt's examples.

    The prompt is taken only if its text still hashes to the recorded prompt_sha256 (else
    its examples could differ from the run's); a checklist no longer on disk is left out.
    Both are said in the export's notes. Known-answer sheets do not change a record's
    quality, so they are not loaded. The original scripts' logs get the defaults, as the
    window judges them.
    """
    prov = source.provenance
    if prov.legacy:
        return RecordJudge(QualityConfig())
    q = prov.quality
    checklist = Path(q["checklist"]) if q.get("checklist") else None
    if checklist is not None and not checklist.is_file():
        prov.notes.append(f"checklist {checklist} not found: names not matched against it")
        checklist = None
    settings = QualitySettings(
        require=q.get("require") or None,
        catalog_pattern=q.get("catalog_pattern") or None,
        checklist_path=checklist,
    )
    try:
        return RecordJudge.from_settings(settings, _run_prompt(source))
    except (ValueError, OSError) as exc:
        prov.notes.append(f"the run's quality settings could not be loaded ({exc}): defaults used")
        return RecordJudge(QualityConfig())


def _run_prompt(source: Source) -> str:
    """The run's prompt text, if a file on disk still matches the recorded hash."""
    from herbdesk.common.assets import default_prompt_path

    want = source.provenance.prompt_sha256
    if not want:
        return ""
    config: dict[str, Any] = {}
    if source.run_dir is not None:
        config = runfiles.read_run_json(source.run_dir).get("config") or {}
    for candidate in (config.get("prompt_path"), default_prompt_path()):
        if not candidate:
            continue
        try:
            text = Path(candidate).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if hashlib.sha256(text.encode()).hexdigest() == want:
            return text
    source.provenance.notes.append(
        "the run's prompt (sha256 " + want[:12] + "…) was not found: its examples not checked"
    )
    return ""
