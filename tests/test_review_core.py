"""Spot-check review, the Qt-free core: the Wilson interval, the ledger fold, the estimate
and the queue (herbdesk/quality/review.py)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import jsonschema
import pytest
from fakeapi import record_for

from herbdesk.events.bus import EventBus
from herbdesk.events.types import EventType
from herbdesk.events.writer import EventLogWriter
from herbdesk.quality import review as rv

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "herbdesk" / "schemas" / "event.schema.json").read_text()
)
Z95 = 1.959963984540054  # the 97.5 % point of the standard normal, from a table


def textbook_wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) in its textbook form: (2np + z² ± z·sqrt(z² + 4np(1-p))) / 2(n + z²)."""
    p = k / n
    root = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    return (
        (2 * n * p + z * z - root) / (2 * (n + z * z)),
        (2 * n * p + z * z + root) / (2 * (n + z * z)),
    )


def test_wilson_matches_the_textbook_formula() -> None:
    low, high = rv.wilson_interval(37, 40)
    want_low, want_high = textbook_wilson(37, 40)
    assert low == pytest.approx(want_low, abs=1e-12) and high == pytest.approx(want_high, abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.8014, 0.9742)
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 5000)
        k = rng.randint(0, n)
        assert rv.wilson_interval(k, n) == pytest.approx(textbook_wilson(k, n), abs=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score, no c.c.)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    got = rv.wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_edges() -> None:
    assert rv.wilson_interval(0, 0) == (0.0, 1.0)  # no data: anything
    low, high = rv.wilson_interval(40, 40)
    assert high == pytest.approx(1.0) and low == pytest.approx(40 / (40 + Z95**2))  # not a point
    with pytest.raises(ValueError):
        rv.wilson_interval(5, 4)


def _emit(
    bus: EventBus, sid: str, term: str, verdict: str, extracted: str, value: str, sample: str
):
    return bus.emit(
        rv.TYPE_OF_VERDICT[verdict],
        specimen_id=sid,
        data=rv.verdict_data(term, verdict, extracted, value, sample),
    )


def test_ledger_folds_the_log_newest_verdict_wins(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    w = EventLogWriter(log)
    bus = EventBus("run-a", w)
    a, b = "a" * 64, "b" * 64
    ra, rb = record_for("sheet-a"), record_for("sheet-b")
    name_a = ra["scientificName"]["value"]
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 2})
    _emit(bus, a, "scientificName", rv.ACCEPT, name_a, "", rv.SAMPLE_RANDOM)
    _emit(bus, a, "eventDate", rv.CORRECT, ra["eventDate"]["value"], "1931-07-02", rv.SAMPLE_RANDOM)
    _emit(bus, b, "locality", rv.REJECT, rb["locality"]["value"], "ignored", rv.SAMPLE_RISK)
    # a changed mind: the name of a was wrong after all
    _emit(bus, a, "scientificName", rv.CORRECT, name_a, "Carex utriculata Boott", rv.SAMPLE_RANDOM)
    w.close()
    with open(log, "ab") as fh:
        fh.write(b'{"seq": 99, "event_type": "review.accepted", "da')  # torn last line
    for line in log.read_text().splitlines()[:-1]:
        jsonschema.validate(json.loads(line), SCHEMA)

    ledger = rv.read_verdicts(log)
    assert ledger.events == 4
    assert ledger.reviewed() == {a, b}
    name = ledger.of(a)["scientificName"]
    assert (name.verdict, name.value, name.seq) == (rv.CORRECT, "Carex utriculata Boott", 5)
    assert ledger.of(b)["locality"].value == ""  # rejected: emptied, whatever was sent
    assert ledger.corrections() == {
        a: {"scientificName": "Carex utriculata Boott", "eventDate": "1931-07-02"},
        b: {"locality": ""},
    }
    assert rv.read_verdicts(tmp_path / "missing.jsonl").events == 0


def test_estimate_counts_the_random_sample_only() -> None:
    ledger = rv.VerdictLedger()
    for i in range(40):  # 37 right, 3 wrong among 40 random records
        sid = f"{i:064x}"
        verdict = rv.ACCEPT if i >= 3 else rv.CORRECT
        ledger.add(rv.Verdict(sid, "scientificName", verdict, "x", "y", rv.SAMPLE_RANDOM))
        ledger.add(rv.Verdict(sid, "eventDate", rv.ACCEPT, "x", "x", rv.SAMPLE_RANDOM))
    for i in range(40, 60):  # the risk queue: all wrong, and not counted
        ledger.add(rv.Verdict(f"{i:064x}", "scientificName", rv.REJECT, "x", "", rv.SAMPLE_RISK))
    est = {e.term: e for e in rv.estimate(ledger, population=1000)}
    assert [e.term for e in rv.estimate(ledger, 1000)] == ["scientificName", "eventDate"]
    name = est["scientificName"]
    assert (name.n, name.correct, name.unreviewed) == (40, 37, 940)
    assert (name.low, name.high) == pytest.approx(textbook_wilson(37, 40))
    assert name.text() == "scientificName 92 % correct (80–97 %, n = 40)"
    lo, mid, hi = name.expected_wrong
    assert mid == round(940 * 3 / 40) == 70 and lo < mid < hi
    assert name.wrong_text().startswith(
        "about 70 wrong record(s) expected among the 940 unreviewed"
    )
    date = est["eventDate"]
    assert (date.n, date.correct, date.unreviewed) == (40, 40, 960)
    assert date.text().startswith("eventDate 100 % correct (91–100 %")
    assert rv.random_reviewed(ledger) == 40


def _candidates(n: int, seed: int = 3) -> list[rv.Candidate]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        conf = round(rng.uniform(0.4, 0.98), 2)
        findings = (("placeholder", "locality"),) if i % 7 == 0 else ()
        gold = 1 if i % 11 == 0 else 0
        out.append(rv.Candidate(f"{i:064x}", conf, findings, gold))
    return out


def test_queue_alternates_risk_by_falling_score_with_the_seeded_sample() -> None:
    cands = _candidates(200)
    queue = rv.build_queue(cands, sample_size=10, seed="run-1")
    sample = [q for q in queue if q.sample == rv.SAMPLE_RANDOM]
    risk = [q for q in queue if q.sample == rv.SAMPLE_RISK]
    assert [q.specimen_id for q in sample] == rv.random_sample(cands, 10, "run-1")
    assert len({q.specimen_id for q in queue}) == len(queue)  # each record once
    # risky: every record with a finding, a gold mismatch or low confidence, riskiest first
    by_id = {c.specimen_id: c for c in cands}
    want_risky = {c.specimen_id for c in cands if c.risk > 0} - {q.specimen_id for q in sample}
    assert {q.specimen_id for q in risk} == want_risky
    assert [q.risk for q in risk] == sorted((q.risk for q in risk), reverse=True)
    top = by_id[risk[0].specimen_id]
    assert top.gold_mismatches == 1 and top.findings  # both kinds of trouble outrank one
    # the mix: risk, random, risk, random ... while both last
    assert [q.sample for q in queue[:20]] == [rv.SAMPLE_RISK, rv.SAMPLE_RANDOM] * 10
    # the same seed draws the same sample in any order; another seed another sample
    assert rv.random_sample(list(reversed(cands)), 10, "run-1") == rv.random_sample(
        cands, 10, "run-1"
    )
    assert set(rv.random_sample(cands, 10, "run-2")) != set(rv.random_sample(cands, 10, "run-1"))
    # a growing run keeps the records drawn so far unless lower-ranked ones arrive
    grown = rv.random_sample(cands + _candidates(1, seed=9), 10, "run-1")
    assert len(set(grown) & {q.specimen_id for q in sample}) >= 9


def test_a_risky_record_drawn_at_random_counts_as_random() -> None:
    cands = [rv.Candidate(f"{i:064x}", 0.2, (("name_shape", "scientificName"),)) for i in range(5)]
    queue = rv.build_queue(cands, sample_size=5, seed="s")
    assert all(q.sample == rv.SAMPLE_RANDOM for q in queue) and len(queue) == 5


def test_candidate_from_recorded_quality_and_gold() -> None:
    q = {
        "usable": False,
        "findings": [["placeholder", "locality", "-"], ["name_digits", "scientificName", "X1"]],
    }
    c = rv.candidate(
        "c" * 64,
        0.91,
        q,
        {"scientificName": "wrong", "eventDate": "correct", "locality": "missing"},
    )
    assert c.findings == (("placeholder", "locality"), ("name_digits", "scientificName"))
    assert c.gold_mismatches == 2 and c.risk == pytest.approx(3 * 2 + 2 * 2)
    low = rv.candidate("d" * 64, 0.35, None)
    assert low.risk == pytest.approx(2 * (0.7 - 0.35) / 0.7)
    assert rv.candidate("e" * 64, 0.9, {"findings": []}).risk == 0
