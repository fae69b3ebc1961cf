"""Export: CSV and Darwin Core Archive read back by python-dwca-reader, from real runs
against the fake API, the offline OCR engine, and the original scripts' raw.jsonl."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest
from dwca.darwincore.utils import qualname as qn
from dwca.read import DwCAReader
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.events.types import EventType
from herbdesk.export import ExportError, ExportOptions, export
from herbdesk.export.columns import COLUMN_NAMES, HERBDESK_NS
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.monitor.validation import ValidationConfig

FIXTURES = Path(__file__).parent / "fixtures"
HD = HERBDESK_NS
VERBATIM_LABEL = "http://rs.tdwg.org/dwc/terms/verbatimLabel"
# lenient validation: a run with junk records must finish, not halt, to be exported
LENIENT = ValidationConfig(
    checkpoint_threshold=0.0,
    warning_threshold=0.0,
    quality_threshold=0.0,
    degraded_halt=False,
    max_consecutive_failures=0,
)


def _api_run(tmp_path: Path, images: Path, script: list[str], **kw) -> Path:
    with FakeApi(script=script, **kw) as api:
        outcome, _ = run(
            api_config(images, tmp_path / "runs", api.base_url, concurrency=1, validation=LENIENT)
        )
    assert outcome.status == "completed", outcome.message
    return outcome.run_dir


def _usable_by_run(run_dir: Path) -> dict[str, bool]:
    """What the run itself judged, per specimen (specimen.completed quality.usable)."""
    return {
        e.specimen_id: e.data["quality"]["usable"]
        for e in events_of(run_dir)
        if e.event_type == EventType.SPECIMEN_COMPLETED
    }


@pytest.fixture()
def mixed_run(tmp_path: Path, many_images) -> Path:
    """8 sheets: 5 good records, 2 junk (placeholders, term names), 1 failure (no terms)."""
    script = ["good", "placeholders", "good", "no_terms", "good", "term_names", "good", "good"]
    return _api_run(tmp_path, many_images(8), script)


def test_dwca_read_back_has_rows_terms_and_provenance(tmp_path: Path, mixed_run: Path) -> None:
    out = tmp_path / "run.zip"
    result = export(ExportOptions(mixed_run, out, "dwca"))
    usable = _usable_by_run(mixed_run)
    assert len(usable) == 7 and sum(usable.values()) == 5  # the run's own verdicts
    assert result.rows == 7 and result.without_success == 1 and result.unusable_kept == 2
    info = json.loads((mixed_run / "run.json").read_text())
    with DwCAReader(str(out)) as dwca:
        rows = dwca.rows
        assert len(rows) == 7
        assert dwca.descriptor.core.type == qn("Occurrence")
        for term in ("occurrenceID", "scientificName", "catalogNumber", "basisOfRecord"):
            assert dwca.core_contains_term(qn(term)), term
        assert dwca.core_contains_term(VERBATIM_LABEL)
        ids = {r.id for r in rows}
        assert len(ids) == 7 and all(i.startswith("urn:uuid:") for i in ids)
        for r in rows:
            d = r.data
            assert d[qn("occurrenceID")] == r.id
            assert d[qn("basisOfRecord")] == "PreservedSpecimen"
            assert d[HD + "engine"] == "openrouter" and d[HD + "model"] == "test/vision-model"
            assert d[HD + "run_id"] == mixed_run.name
            assert (
                d[HD + "prompt_sha256"] == hashlib.sha256(b"Return Darwin Core JSON.").hexdigest()
            )
            assert d[HD + "herbdesk_version"] == info["versions"]["herbdesk"]
            assert d[HD + "reviewed"] == "false"
            # judged as the run judged it
            assert d[HD + "usable"] == str(usable[d[HD + "specimen_id"]]).lower()
            if d[HD + "usable"] == "false":
                assert d[HD + "findings"], d
            assert d[VERBATIM_LABEL] == ""  # a vision model's reply is not label text
        by_id = {r["specimen_id"]: r["dwc"] for r in raw_records(mixed_run) if r["success"]}
        for r in rows:  # the values are the record's
            dwc = by_id[r.data[HD + "specimen_id"]]
            for term in ("scientificName", "catalogNumber", "recordedBy"):
                assert r.data[qn(term)] == (dwc.get(term) or {}).get("value", ""), term
        eml = _xml(dwca.metadata)
        assert mixed_run.name in eml and "test/vision-model" in eml and "openrouter" in eml
        assert info["config"]["prompt_sha256"] in eml


def _xml(element) -> str:
    from xml.etree import ElementTree

    return ElementTree.tostring(element, encoding="unicode")


def test_only_usable_keeps_the_usable_records(tmp_path: Path, mixed_run: Path) -> None:
    out = tmp_path / "usable.zip"
    result = export(ExportOptions(mixed_run, out, "dwca", only_usable=True))
    assert result.rows == 5 and result.not_usable == 2
    usable_ids = {sid for sid, ok in _usable_by_run(mixed_run).items() if ok}
    with DwCAReader(str(out)) as dwca:
        assert {r.data[HD + "specimen_id"] for r in dwca.rows} == usable_ids
        assert all(r.data[HD + "usable"] == "true" for r in dwca.rows)
        assert "Only usable records" in _xml(dwca.metadata)


def test_newest_success_per_specimen_and_a_later_failure_keeps_it(
    tmp_path: Path, many_images
) -> None:
    run_dir = _api_run(tmp_path, many_images(3), ["good"] * 3)
    recs = raw_records(run_dir)
    newer = json.loads(json.dumps(recs[0]))
    newer["dwc"]["scientificName"]["value"] = "Rosa woodsii Lindl."
    failed = {**recs[0], "success": False, "dwc": {}, "error": {"kind": "server", "message": "x"}}
    with open(run_dir / "raw.jsonl", "ab") as fh:  # a resumed rerun's records, then a torn line
        for rec in (newer, failed):
            fh.write(orjson.dumps(rec) + b"\n")
        fh.write(b'{"run_id": "torn')
    out = tmp_path / "r.csv"
    result = export(ExportOptions(run_dir, out, "csv"))
    assert result.rows == 3 and result.bad_lines == 1
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    mine = [r for r in rows if r["specimen_id"] == recs[0]["specimen_id"]]
    assert len(mine) == 1 and mine[0]["scientificName"] == "Rosa woodsii Lindl."


@pytest.mark.parametrize("name", ["legacy_raw.jsonl", "legacy_raw_flat.jsonl"])
def test_the_original_scripts_raw_jsonl_is_exported(tmp_path: Path, name: str) -> None:
    out = tmp_path / "legacy.zip"
    result = export(ExportOptions(FIXTURES / name, out, "dwca"))
    with DwCAReader(str(out)) as dwca:
        rows = dwca.rows
        assert len(rows) == result.rows > 0
        d = rows[0].data
        if name == "legacy_raw.jsonl":  # hash-named image; provider and model per record
            assert d[qn("scientificName")] == "Malva neglecta Wallr."
            assert d[HD + "engine"] == "openrouter"
            assert d[HD + "model"] == "qwen/qwen2.5-vl-72b-instruct:free"
            assert d[HD + "specimen_id"] == d[HD + "image"].removesuffix(".jpg")
        else:  # flat values with a separate confidence map
            assert [r.data[HD + "specimen_id"] for r in rows] == ["DAO000200", "DAO000202"]
            assert d[qn("recordedBy")] == "J. Cayouette" and d[HD + "engine"] == "tesseract"
            assert rows[1].data[HD + "usable"] == "false"  # markup is no name
        assert d[HD + "herbdesk_version"] == "" and d[HD + "reviewed"] == "false"
        assert "original extraction scripts" in _xml(dwca.metadata)


def test_csv_opens_with_the_csv_module_and_formulas_are_neutralised(
    tmp_path: Path, many_images
) -> None:
    hostile = {
        "scientificName": {"value": '=HYPERLINK("http://evil.example","x")', "confidence": 0.9},
        "eventDate": {"value": "1961-06-08", "confidence": 0.9},
        "locality": {"value": "+cmd|' /C calc'!A0", "confidence": 0.9},
        "decimalLatitude": {"value": "-45.2", "confidence": 0.9},
        "habitat": {"value": 'wet\nmeadow, "shaded"', "confidence": 0.9},
    }
    run_dir = _api_run(tmp_path, many_images(1), ["good"], reply_text=json.dumps(hostile))
    out = tmp_path / "o.csv"
    export(ExportOptions(run_dir, out, "csv"))
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(COLUMN_NAMES)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["scientificName"] == "'" + hostile["scientificName"]["value"]
    assert row["locality"] == "'" + hostile["locality"]["value"]
    assert row["decimalLatitude"] == "-45.2"  # a number is no formula
    assert row["habitat"] == 'wet\nmeadow, "shaded"'  # quoted, read back whole
    for cell in rows[1]:
        assert not cell.startswith(("=", "+", "@")), cell
    # the archive keeps values as extracted, tabs and line breaks folded
    export(ExportOptions(run_dir, tmp_path / "o.zip", "dwca"))
    with DwCAReader(str(tmp_path / "o.zip")) as dwca:
        (r,) = dwca.rows
        assert r.data[qn("scientificName")] == hostile["scientificName"]["value"]
        assert r.data[qn("habitat")] == 'wet meadow, "shaded"'


def test_ocr_text_is_the_verbatim_label(tmp_path: Path, sample_dir: Path) -> None:
    config = RunConfig(
        inputs=[sample_dir],
        out_dir=tmp_path / "runs",
        engine=EngineSettings(engine="ocr"),
        limit=1,
        validation=LENIENT,
    )
    outcome, _ = run(config)
    (rec,) = raw_records(outcome.run_dir)
    assert rec["success"] and "\n" in rec["raw_text"]
    out = tmp_path / "ocr.zip"
    export(ExportOptions(outcome.run_dir, out, "dwca"))
    with DwCAReader(str(out)) as dwca:
        (row,) = dwca.rows
        label = row.data[VERBATIM_LABEL]
    lines = [ln.strip() for ln in rec["raw_text"].splitlines() if ln.strip()]
    assert label == " | ".join(lines)
    assert row.data[HD + "engine"] == "ocr" and row.data[HD + "model"] == rec["model"]


def test_no_secret_of_the_base_url_reaches_the_archive(tmp_path: Path, many_images) -> None:
    run_dir = _api_run(tmp_path, many_images(2), ["good"] * 2)
    info = json.loads((run_dir / "run.json").read_text())
    info["config"]["base_url"] = "https://user:sk-or-secret1@proxy.example:8443/v1?key=sk-secret2"
    (run_dir / "run.json").write_text(json.dumps(info))
    out = tmp_path / "s.zip"
    export(ExportOptions(run_dir, out, "dwca"))
    with zipfile.ZipFile(out) as zf:
        blob = b"".join(zf.read(n) for n in zf.namelist())
    assert b"sk-or-secret1" not in blob and b"sk-secret2" not in blob
    assert b"https://proxy.example:8443/v1" in blob


def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path, mixed_run: Path) -> None:
    cases = {
        "nowhere": tmp_path / "nope",
        "events only": FIXTURES / "legacy_events.jsonl",
        "an image": next((tmp_path / "imgs").glob("*.jpg")),
    }
    for label, path in cases.items():
        with pytest.raises(ExportError):
            export(ExportOptions(path, tmp_path / "x.zip", "dwca"))
        assert not (tmp_path / "x.zip").exists(), label
    with pytest.raises(ExportError, match="own files"):
        export(ExportOptions(mixed_run, mixed_run / "occurrences.csv", "csv", force=True))
    assert list(tmp_path.glob(".*.tmp")) == [] and list(mixed_run.glob(".*.tmp")) == []


# ---------------------------------------------------------------- the command


def _herbdesk(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("OPENROUTER_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_export_exit_codes_and_force(tmp_path: Path, mixed_run: Path) -> None:
    out = tmp_path / "a.zip"
    r = _herbdesk("export", str(mixed_run), "--format", "dwca", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "exported 7 record(s)" in r.stdout
    first = out.read_bytes()
    # an existing --out is kept without --force
    r = _herbdesk("export", str(mixed_run), "--format", "csv", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr and out.read_bytes() == first
    r = _herbdesk(
        "export", str(mixed_run / "events.jsonl"), "--format", "dwca", "--only", "usable",
        "--out", str(out), "--force",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with DwCAReader(str(out)) as dwca:
        assert len(dwca.rows) == 5
    bad = {
        "missing run": [str(tmp_path / "nope"), "--format", "csv", "--out", str(tmp_path / "b")],
        "not a log": [
            str(next((tmp_path / "imgs").glob("*.jpg"))), "--format", "csv",
            "--out", str(tmp_path / "b"),
        ],
        "no folder": [str(mixed_run), "--format", "csv", "--out", str(tmp_path / "no/b.csv")],
        "bad format": [str(mixed_run), "--format", "xlsx", "--out", str(tmp_path / "b")],
        "no --out": [str(mixed_run), "--format", "csv"],
    }  # fmt: skip
    for label, args in bad.items():
        r = _herbdesk("export", *args)
        assert r.returncode == 2, (label, r.stderr)
        assert "error" in r.stderr and "Traceback" not in r.stderr, (label, r.stderr)
    assert not (tmp_path / "b").exists()
    assert "export" in _herbdesk("--help").stdout


def test_columns_cover_every_term() -> None:
    assert set(DWC_TERMS) <= set(COLUMN_NAMES)
    assert COLUMN_NAMES[0] == "occurrenceID"


def _append_verdicts(run_dir: Path, verdicts: list[tuple[str, str, str, str, str]]) -> None:
    """(specimen id, term, verdict, value, sample) as review events appended to the log,
    the extracted value taken from the run's raw.jsonl."""
    from herbdesk.events.bus import EventBus
    from herbdesk.events.writer import EventLogWriter, last_seq
    from herbdesk.quality import review as rv

    extracted = {
        r["specimen_id"]: {t: str(v.get("value") or "") for t, v in (r.get("dwc") or {}).items()}
        for r in raw_records(run_dir)
    }
    log = run_dir / "events.jsonl"
    writer = EventLogWriter(log)
    bus = EventBus(run_dir.name, writer, start_seq=last_seq(log))
    for sid, term, verdict, value, sample in verdicts:
        data = rv.verdict_data(term, verdict, extracted[sid].get(term, ""), value, sample)
        bus.emit(rv.TYPE_OF_VERDICT[verdict], specimen_id=sid, data=data)
    writer.close()


def test_review_verdicts_in_the_log_reach_the_export(tmp_path: Path, mixed_run: Path) -> None:
    """Corrections replace values and are judged anew, rejected terms are emptied, reviewed
    records are marked; `--reviewed` keeps only them (herbdesk/export/review.py)."""
    usable = _usable_by_run(mixed_run)
    bad = next(sid for sid, ok in usable.items() if not ok)
    good = next(sid for sid, ok in usable.items() if ok)
    before = {r["specimen_id"]: r for r in raw_records(mixed_run)}
    good_name = before[good]["dwc"]["scientificName"]["value"]
    _append_verdicts(
        mixed_run,
        [
            (bad, "scientificName", "correct", "Carex aurea Nutt.", "risk"),
            (bad, "eventDate", "correct", "1961-06-08", "risk"),
            (bad, "recordedBy", "reject", "", "risk"),
            (bad, "locality", "correct", "Elk Island National Park", "risk"),
            (bad, "locality", "reject", "", "risk"),  # the newest verdict wins
            (good, "scientificName", "accept", "", "random"),
            (good, "country", "correct", "Canada", "random"),
        ],
    )
    out = tmp_path / "reviewed.zip"
    result = export(ExportOptions(mixed_run, out, "dwca"))
    assert result.rows == 7 and result.reviewed == 2
    with DwCAReader(str(out)) as dwca:
        rows = {r.data[HD + "specimen_id"]: r.data for r in dwca.rows}
    assert rows[bad][qn("scientificName")] == "Carex aurea Nutt."
    assert rows[bad][qn("eventDate")] == "1961-06-08"
    assert rows[bad][qn("recordedBy")] == "" and rows[bad][qn("locality")] == ""  # rejected
    assert rows[bad][HD + "reviewed"] == "true" and rows[bad][HD + "usable"] == "true"
    assert rows[good][qn("scientificName")] == good_name  # accepted: as extracted
    assert rows[good][qn("country")] == "Canada"
    assert rows[good][HD + "reviewed"] == "true"
    assert all(d[HD + "reviewed"] == "false" for sid, d in rows.items() if sid not in {bad, good})
    with DwCAReader(str(out)) as dwca:  # eml.xml says how many a person checked
        eml = _xml(dwca.metadata)
    assert "2 of the records were checked by a person" in eml
    assert "reviewedRecords>2<" in eml
    # raw.jsonl keeps what was extracted
    assert {r["specimen_id"]: r for r in raw_records(mixed_run)} == before

    only = tmp_path / "only.zip"
    r = _herbdesk("export", str(mixed_run), "--format", "dwca", "--reviewed", "--out", str(only))
    assert r.returncode == 0, r.stderr
    assert "exported 2 record(s)" in r.stdout and "5 not reviewed left out" in r.stdout
    with DwCAReader(str(only)) as dwca:
        assert {row.data[HD + "specimen_id"] for row in dwca.rows} == {bad, good}
        assert "Only records a person reviewed" in _xml(dwca.metadata)
    csv_out = tmp_path / "only.csv"
    r = _herbdesk("export", str(mixed_run), "--format", "csv", "--reviewed", "--out", str(csv_out))
    assert r.returncode == 0, r.stderr
    with open(csv_out, newline="", encoding="utf-8") as fh:
        got = {row["specimen_id"]: row for row in csv.DictReader(fh)}
    assert got[bad]["scientificName"] == "Carex aurea Nutt." and got[bad]["reviewed"] == "true"
