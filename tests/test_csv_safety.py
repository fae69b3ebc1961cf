"""occurrences.csv opens safely in a spreadsheet: a value that would start a formula is
neutralised with a leading `'`; real values, negative coordinates included, stay as they are."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.extraction.results import ResultsWriter, spreadsheet_safe

HOSTILE = {
    "scientificName": '=HYPERLINK("http://evil.example","Malva")',
    "locality": "+cmd|' /C calc'!A0",
    "recordedBy": "-2+3",
    "habitat": "@SUM(A1:A9)",
    "eventDate": "\t=1+1",
    "country": "\r=1+1",
}
KEPT = {
    "decimalLatitude": "-45.2",
    "decimalLongitude": "-12",
    "minimumElevationInMeters": "+150",
    "coordinateUncertaintyInMeters": "-1.5e3",
    "stateProvince": "Saskatchewan",
    "recordNumber": "M-12",
    "occurrenceRemarks": "",
}


def test_formula_values_are_neutralised_and_numbers_kept() -> None:
    for value in HOSTILE.values():
        assert spreadsheet_safe(value) == "'" + value
    for value in KEPT.values():
        assert spreadsheet_safe(value) == value
    assert spreadsheet_safe("-") == "'-" and spreadsheet_safe("=") == "'="
    assert spreadsheet_safe("-45.2.1") == "'-45.2.1" and spreadsheet_safe("- 5") == "'- 5"


def test_occurrences_csv_holds_no_formula_cell(tmp_path: Path) -> None:
    fields = {**HOSTILE, **KEPT}
    assert set(fields) <= set(DWC_TERMS)
    w = ResultsWriter(tmp_path)
    w.write({
        "specimen_id": "a" * 64, "image": "=evil.jpg", "success": True,
        "dwc": {t: {"value": v, "confidence": 0.9} for t, v in fields.items()},
    })  # fmt: skip
    w.close()
    with open(tmp_path / "occurrences.csv", encoding="utf-8", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["image"] == "'=evil.jpg"
    for term, value in HOSTILE.items():
        assert row[term] == "'" + value
    for term, value in KEPT.items():
        assert row[term] == value
    for cell in row.values():
        assert cell[:1] not in ("=", "+", "@", "\t", "\r") or cell in KEPT.values()
    # raw.jsonl keeps what the model said
    rec = orjson.loads((tmp_path / "raw.jsonl").read_bytes())
    assert rec["dwc"]["scientificName"]["value"] == HOSTILE["scientificName"]
