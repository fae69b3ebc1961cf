"""A lone UTF-16 surrogate from the API (valid JSON, `"\\ud800"`, but no text orjson can
write) becomes U+FFFD in a clean value or a failed specimen's message; the run never halts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fakeapi import FakeApi, record_for
from helpers import api_config, raw_records, run

from herbdesk.extraction.reply import parse_reply, well_formed

BAD = "\ud800"


def test_reply_parser_cleans_lone_surrogates() -> None:
    fields = parse_reply('{"scientificName": "Malva \\ud800 neglecta", "country": "Canada"}')
    assert fields["scientificName"].value == "Malva \ufffd neglecta"
    assert parse_reply(f'{{"locality": "a {BAD} b"}}')["locality"].value == "a \ufffd b"
    assert well_formed(f"x{BAD}y\U0001f600") == "x\ufffdy\U0001f600"  # a real pair is kept


def test_lone_surrogates_from_the_api_never_halt_the_run(tmp_path: Path, many_images) -> None:
    images = many_images(3)  # one fixed reply_text: more would rightly halt as identical
    fields = {**record_for("a sheet"), "locality": {"value": f"near {BAD} hill", "confidence": 0.7}}
    # the content holds a real lone surrogate (the body's JSON escapes it as \ud800); one
    # reply escapes it inside the content too; one error message carries one
    text = json.dumps(fields, ensure_ascii=False)
    with FakeApi(script=["good", "lone_surrogate", "good"], reply_text=text) as api:
        cfg = api_config(images, tmp_path / "runs", api.base_url, concurrency=1, max_attempts=1)
        outcome, _ = run(cfg)
    assert outcome.status == "completed", outcome.message
    recs = raw_records(outcome.run_dir)
    assert [r["success"] for r in recs] == [True, False, True]
    assert recs[1]["error"]["message"].endswith("upstream said \ufffd then left")
    assert recs[0]["dwc"]["locality"]["value"] == "near \ufffd hill"
    assert BAD not in recs[0]["raw_text"] and "\ufffd" in recs[0]["raw_text"]
    with open(outcome.run_dir / "occurrences.csv", encoding="utf-8") as fh:
        assert [r["locality"] for r in csv.DictReader(fh)] == ["near \ufffd hill"] * 2
