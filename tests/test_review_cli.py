"""`herbdesk review RUN --sample N`: the estimate from verdicts recorded in the log, and the
Qt-free review session behind it and the window (herbdesk/export/reviewsession.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import FakeApi
from helpers import api_config, run

from herbdesk.export.reviewsession import ReviewSession
from herbdesk.extraction.reviewlog import LogAppender, ReviewRefused
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality import review as rv

LENIENT = ValidationConfig(
    checkpoint_threshold=0.0,
    warning_threshold=0.0,
    quality_threshold=0.0,
    degraded_halt=False,
    max_consecutive_failures=0,
)


@pytest.fixture()
def review_run(tmp_path: Path, many_images) -> Path:
    """12 sheets: 10 good (different) records, 2 junk ones the quality checks flag."""
    script = ["good"] * 3 + ["placeholders"] + ["good"] * 5 + ["term_names"] + ["good"] * 2
    with FakeApi(script=script) as api:
        outcome, _ = run(
            api_config(many_images(12), tmp_path / "runs", api.base_url, concurrency=1,
                       validation=LENIENT)
        )  # fmt: skip
    assert outcome.status == "completed", outcome.message
    return outcome.run_dir


def _herbdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )


def test_session_queue_puts_the_flagged_records_first_among_the_sample(
    review_run: Path,
) -> None:
    session = ReviewSession.load(review_run, sample_size=4)
    assert session.population == 12 and session.read_only_reason == ""
    assert session.appender is None  # nothing asked to append: read only, no lock taken
    samples = [r.sample for r in session.records]
    assert samples.count(rv.SAMPLE_RANDOM) == 4
    risky = [r for r in session.records if r.sample == rv.SAMPLE_RISK]
    junk = {r.specimen_id for r in session.records if r.findings}
    assert len(junk) == 2  # the placeholders and the term names
    # the junk records the random draw did not take lead the risk queue (the draw is seeded
    # by the run id, which differs from run to run: it takes one or both of them at times)
    leading = junk - set(session.drawn)
    assert {r.specimen_id for r in risky[: len(leading)]} == leading
    if risky:  # risk first, then random, alternating
        assert (
            session.records[0].sample == rv.SAMPLE_RISK
            and session.records[1].sample == rv.SAMPLE_RANDOM
        )
    assert {r.specimen_id for r in session.records if r.sample == rv.SAMPLE_RANDOM} == set(
        session.drawn
    )
    names = {r.values.get("scientificName") for r in session.records if not r.findings}
    assert len(names) > 1  # real-looking, different records
    with pytest.raises(ReviewRefused):
        session.record_verdict(session.records[0], "scientificName", rv.ACCEPT)


def test_cli_prints_the_estimate_of_the_recorded_verdicts(review_run: Path) -> None:
    r = _herbdesk("review", str(review_run), "--sample", "6")
    assert r.returncode == 0, r.stderr
    assert "no verdicts on the random sample yet" in r.stdout

    session = ReviewSession.load(review_run, sample_size=6, open_appender=LogAppender.open)
    random_recs = [x for x in session.records if x.sample == rv.SAMPLE_RANDOM]
    risk_recs = [x for x in session.records if x.sample == rv.SAMPLE_RISK]
    assert len(random_recs) == 6
    # five names right, one corrected; every date right; the risk records all wrong
    for i, rec in enumerate(random_recs):
        if i == 0:
            session.record_verdict(rec, "scientificName", rv.CORRECT, "Carex utriculata Boott")
        else:
            session.record_verdict(rec, "scientificName", rv.ACCEPT)
        session.record_verdict(rec, "eventDate", rv.ACCEPT)
    for rec in risk_recs:
        session.record_verdict(rec, "scientificName", rv.REJECT)
    # a correction to the value it already had is an accept
    with_country = next(x for x in random_recs if "country" in x.values)
    v = session.record_verdict(with_country, "country", rv.CORRECT, with_country.values["country"])
    assert v.verdict == rv.ACCEPT
    session.close()

    r = _herbdesk("review", str(review_run / "events.jsonl"), "--sample", "6", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["records"] == 12 and out["sample"] == {"size": 6, "drawn": 6, "reviewed": 6}
    assert out["risk_reviewed"] == len(risk_recs)
    terms = {t["term"]: t for t in out["terms"]}
    name = terms["scientificName"]
    assert (name["n"], name["correct"]) == (6, 5)  # the risk verdicts are not counted
    low, high = rv.wilson_interval(5, 6)
    assert name["low"] == pytest.approx(low) and name["high"] == pytest.approx(high)
    reviewed_names = 6 + len(risk_recs)
    assert name["unreviewed"] == 12 - reviewed_names
    assert terms["eventDate"]["correct"] == 6 and terms["country"]["n"] == 1

    r = _herbdesk("review", str(review_run), "--sample", "6")
    assert r.returncode == 0, r.stderr
    want = rv.TermEstimate("scientificName", 6, 5, low, high, 12 - reviewed_names).text()
    assert want in r.stdout and want.startswith("scientificName 83 % correct (44–97 %, n = 6)")
    assert "random sample 6 of 6 reviewed" in r.stdout
    assert "expected among the" in r.stdout


def test_cli_usage_errors(tmp_path: Path) -> None:
    for args in ([str(tmp_path / "nope")], [str(tmp_path)], [str(tmp_path), "--sample", "0"]):
        r = _herbdesk("review", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "error" in r.stderr and "Traceback" not in r.stderr
    assert "review" in _herbdesk("--help").stdout


def test_the_queue_takes_the_quality_the_run_recorded_for_each_record(review_run: Path) -> None:
    """Each record's findings are the ones its specimen.completed recorded (not judged again:
    that was most of a big review's start); where the event does not hold that very record,
    the record is judged afresh."""
    events = review_run / "events.jsonl"
    lines = [json.loads(x) for x in events.read_text(encoding="utf-8").splitlines()]
    done = [e for e in lines if e["event_type"] == "specimen.completed"]
    good = [e for e in done if not e["data"]["quality"]["findings"]]
    marked, changed = good[0], good[1]
    # the run said of this good record that its locality is a placeholder: the review says so
    marked["data"]["quality"]["findings"] = [["placeholder", "locality", "x"]]
    # and of this one the same, but its event holds other values than raw.jsonl's record
    changed["data"]["quality"]["findings"] = [["placeholder", "locality", "x"]]
    changed["data"]["dwc"] = {**changed["data"]["dwc"], "locality": "elsewhere"}
    events.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    session = ReviewSession.load(review_run, sample_size=4)
    by_id = {r.specimen_id: r for r in session.records}
    assert by_id[marked["specimen_id"]].findings == (("placeholder", "locality"),)
    again = by_id.get(changed["specimen_id"])  # judged afresh: a good record, no finding
    assert again is None or again.findings == ()
