"""Spot-check review: verdicts per term, their ledger, the accuracy estimate and the queue.

A person reviews a record term by term: accept (the value is right), correct (it is wrong,
here is the right one) or reject (it is wrong, no right value: the term is emptied). Each
verdict is one `review.*` event appended to the run's events.jsonl; `VerdictLedger` folds
them, the newest verdict per specimen and term winning, so a changed mind replaces the
earlier verdict and the log keeps both.

Only verdicts on records of the *random* audit sample estimate accuracy: the risk queue
picks records because they look wrong, so counting them would make the run look worse than
it is. Records are drawn into the sample by a seeded hash of their specimen id (bottom-k
sampling): independent of content and of the order records arrive in, so a live run's
sample stays a uniform draw while it grows. Qt-free; the window, `herbdesk review` and the
export all use this module.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.events.codec import BadLine, decode
from herbdesk.events.types import Event, EventType

ACCEPT, CORRECT, REJECT = "accept", "correct", "reject"
SAMPLE_RANDOM, SAMPLE_RISK = "random", "risk"
VERDICT_OF_TYPE: dict[str, str] = {
    EventType.REVIEW_ACCEPTED: ACCEPT,
    EventType.REVIEW_CORRECTED: CORRECT,
    EventType.REVIEW_REJECTED: REJECT,
}
TYPE_OF_VERDICT: dict[str, str] = {v: k for k, v in VERDICT_OF_TYPE.items()}
DEFAULT_SAMPLE = 40  # records in the random audit sample unless told otherwise
LOW_CONFIDENCE = 0.7  # a record's mean confidence below this is a risk
_TERM_ORDER = {t: i for i, t in enumerate(DWC_TERMS)}


def verdict_data(
    term: str, verdict: str, extracted: str, value: str, sample: str
) -> dict[str, Any]:
    """The `data` of a review event. `value` is the reviewer's value: the extracted one for
    an accept, the typed one for a correct, "" for a reject."""
    if verdict not in TYPE_OF_VERDICT:
        raise ValueError(f"unknown verdict {verdict!r}")
    if sample not in (SAMPLE_RANDOM, SAMPLE_RISK):
        raise ValueError(f"unknown sample {sample!r}")
    if verdict == ACCEPT:
        value = extracted
    elif verdict == REJECT:
        value = ""
    return {"term": term, "extracted": extracted, "value": value, "sample": sample}


@dataclass(frozen=True)
class Verdict:
    specimen_id: str
    term: str
    verdict: str  # accept | correct | reject
    extracted: str
    value: str  # what the record should hold ("" after a reject)
    sample: str  # random | risk
    seq: int = 0

    @property
    def correct(self) -> bool:
        """Whether the extracted value was right."""
        return self.verdict == ACCEPT


def verdict_of(ev: Event) -> Verdict | None:
    """The verdict a review event records, or None for any other (or a malformed) event."""
    kind = VERDICT_OF_TYPE.get(ev.event_type)
    d = ev.data
    term = d.get("term")
    if kind is None or not ev.specimen_id or not isinstance(term, str) or not term:
        return None
    sample = d.get("sample")
    value = str(d.get("value") or "")
    if kind == CORRECT and value == "":
        kind = REJECT  # a correction to nothing empties the term, as a reject does
    return Verdict(
        specimen_id=ev.specimen_id,
        term=term,
        verdict=kind,
        extracted=str(d.get("extracted") or ""),
        value=value if kind != REJECT else "",
        sample=SAMPLE_RANDOM if sample == SAMPLE_RANDOM else SAMPLE_RISK,
        seq=ev.seq,
    )


@dataclass
class VerdictLedger:
    """The review verdicts of one run, the newest per (specimen id, term)."""

    by_specimen: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    events: int = 0  # review events folded (replaced verdicts included)

    def apply(self, ev: Event) -> bool:
        """Fold one event; True if it was a review verdict."""
        v = verdict_of(ev)
        if v is None:
            return False
        self.add(v)
        return True

    def add(self, v: Verdict) -> None:
        self.events += 1
        self.by_specimen.setdefault(v.specimen_id, {})[v.term] = v

    def of(self, specimen_id: str) -> dict[str, Verdict]:
        return self.by_specimen.get(specimen_id, {})

    def verdicts(self) -> Iterator[Verdict]:
        for terms in self.by_specimen.values():
            yield from terms.values()

    def reviewed(self) -> set[str]:
        return set(self.by_specimen)

    def corrections(self) -> dict[str, dict[str, str]]:
        """Per specimen, term -> the value it should hold, for corrected and rejected terms
        ("" = rejected: emptied). Accepted terms keep their extracted value."""
        out: dict[str, dict[str, str]] = {}
        for sid, terms in self.by_specimen.items():
            fixed = {t: v.value for t, v in terms.items() if v.verdict != ACCEPT}
            if fixed:
                out[sid] = fixed
        return out


def read_verdicts(events_path: Path) -> VerdictLedger:
    """The ledger of a run's events.jsonl (missing file: empty). Lines without the text
    `"review.` are skipped before decoding, so a big log is read at the speed of a scan."""
    ledger = VerdictLedger()
    try:
        fh = open(events_path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return ledger
    with fh:
        for line in fh:
            if b'"review.' not in line:
                continue
            try:
                ev = decode(line)
            except BadLine:
                continue  # a torn line: readers skip it, as everywhere
            ledger.apply(ev)
    return ledger


# --- the estimate -------------------------------------------------------------------------


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (no continuity correction).

    Unlike k/n ± z·se it stays inside [0, 1] and does not collapse to a point at 0 or n
    successes, which matters for the small samples a person reviews.
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside 0..{n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def _pct(x: float) -> str:
    return f"{round(100 * x):d}"


@dataclass(frozen=True)
class TermEstimate:
    """A term's accuracy estimated from the random sample's verdicts on it."""

    term: str
    n: int  # random-sample records with a verdict on the term
    correct: int  # of them, accepted
    low: float
    high: float
    unreviewed: int  # records with no verdict on the term (either sample)

    @property
    def rate(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def expected_wrong(self) -> tuple[int, int, int]:
        """Wrong values expected among the unreviewed: (low, estimate, high), from the
        interval's bounds."""
        u = self.unreviewed
        return (
            round(u * (1 - self.high)),
            round(u * (1 - self.rate)),
            round(u * (1 - self.low)),
        )

    def text(self) -> str:
        """e.g. "scientificName 92 % correct (81–97 %, n = 40)"."""
        _, rate, interval, n, _ = self.cells()
        return f"{self.term} {rate} correct ({interval}, n = {n})"

    def cells(self) -> tuple[str, str, str, str, str]:
        """A table row: term, "92 %", "81–97 %", n, and the wrong records expected among the
        unreviewed as "10 of 120 (4–23)" (the window's compact estimate)."""
        lo, mid, hi = self.expected_wrong
        return (
            self.term,
            f"{_pct(self.rate)} %",
            f"{_pct(self.low)}–{_pct(self.high)} %",
            str(self.n),
            f"{mid:,} of {self.unreviewed:,} ({lo:,}–{hi:,})",
        )

    def wrong_text(self) -> str:
        lo, mid, hi = self.expected_wrong
        return (
            f"about {mid:,} wrong record(s) expected among the {self.unreviewed:,} "
            f"unreviewed ({lo:,}–{hi:,})"
        )

    def to_dict(self) -> dict[str, Any]:
        lo, mid, hi = self.expected_wrong
        return {
            "term": self.term,
            "n": self.n,
            "correct": self.correct,
            "rate": self.rate,
            "low": self.low,
            "high": self.high,
            "unreviewed": self.unreviewed,
            "expected_wrong": [lo, mid, hi],
            "text": self.text(),
        }


def estimate(
    ledger: VerdictLedger, population: int, confidence: float = 0.95
) -> list[TermEstimate]:
    """Per term with a random-sample verdict, its estimate, in the Darwin Core term order.

    `population` is the number of records that could be reviewed (the run's successful
    records); the unreviewed are those of them without a verdict on the term.
    """
    n: dict[str, int] = {}
    ok: dict[str, int] = {}
    reviewed: dict[str, int] = {}
    for v in ledger.verdicts():
        reviewed[v.term] = reviewed.get(v.term, 0) + 1
        if v.sample == SAMPLE_RANDOM:
            n[v.term] = n.get(v.term, 0) + 1
            ok[v.term] = ok.get(v.term, 0) + v.correct
    out = []
    for term in sorted(n, key=lambda t: (_TERM_ORDER.get(t, len(_TERM_ORDER)), t)):
        low, high = wilson_interval(ok[term], n[term], confidence)
        unreviewed = max(0, population - reviewed[term])
        out.append(TermEstimate(term, n[term], ok[term], low, high, unreviewed))
    return out


def random_reviewed(ledger: VerdictLedger) -> int:
    """Records of the random sample with at least one verdict."""
    return sum(
        1
        for terms in ledger.by_specimen.values()
        if any(v.sample == SAMPLE_RANDOM for v in terms.values())
    )


# --- the queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A record that can be reviewed, with what makes it risky."""

    specimen_id: str
    confidence: float | None = None
    findings: tuple[tuple[str, str], ...] = ()  # (check, term) of the quality findings
    gold_mismatches: int = 0  # known-answer terms wrong or missing

    @property
    def risk(self) -> float:
        """3 per gold mismatch, 2 per quality finding, up to 2 for a mean confidence below
        LOW_CONFIDENCE (scaled: 0 at the threshold, 2 at 0). 0 = no sign of trouble."""
        score = 3.0 * self.gold_mismatches + 2.0 * len(self.findings)
        c = self.confidence
        if c is not None and math.isfinite(c) and c < LOW_CONFIDENCE:
            score += 2.0 * (LOW_CONFIDENCE - max(0.0, c)) / LOW_CONFIDENCE
        return score


@dataclass(frozen=True)
class QueueItem:
    specimen_id: str
    sample: str  # random | risk: what the item's verdicts record
    risk: float


def sample_rank(seed: str, specimen_id: str) -> int:
    """A record's place in the seeded random order (lower = drawn first)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{specimen_id}".encode()).digest()[:8], "big")


def random_sample(candidates: Iterable[Candidate], size: int, seed: str) -> list[str]:
    """The `size` records of lowest seeded rank, in rank order (bottom-k sampling)."""
    ids = {c.specimen_id for c in candidates}
    return heapq.nsmallest(max(0, size), ids, key=lambda s: sample_rank(seed, s))


def build_queue(
    candidates: Sequence[Candidate], sample_size: int = DEFAULT_SAMPLE, seed: str = ""
) -> list[QueueItem]:
    """Risky records by falling risk, alternating with the random sample (risk first, then
    random, ...; when one side runs out the other goes on). A record of the random sample
    is a random item even when it is risky too, so the sample stays a uniform draw."""
    drawn = random_sample(candidates, sample_size, seed)
    in_sample = set(drawn)
    by_id = {c.specimen_id: c for c in candidates}
    order = {c.specimen_id: i for i, c in enumerate(candidates)}
    risky = sorted(
        (c for c in by_id.values() if c.risk > 0 and c.specimen_id not in in_sample),
        key=lambda c: (-c.risk, order[c.specimen_id]),
    )
    out: list[QueueItem] = []
    for i in range(max(len(risky), len(drawn))):
        if i < len(risky):
            out.append(QueueItem(risky[i].specimen_id, SAMPLE_RISK, risky[i].risk))
        if i < len(drawn):
            sid = drawn[i]
            out.append(QueueItem(sid, SAMPLE_RANDOM, by_id[sid].risk))
    return out


def candidate(
    specimen_id: str,
    confidence: float | None,
    quality: Mapping[str, Any] | None,
    gold_terms: Mapping[str, str] | None = None,
) -> Candidate:
    """A Candidate from what a run records: the quality dict of specimen.completed
    ({findings: [[check, term, value, ...]]}) and a quality.gold event's terms."""
    findings: list[tuple[str, str]] = []
    for f in (quality or {}).get("findings") or []:
        if isinstance(f, (list, tuple)) and len(f) >= 2:
            findings.append((str(f[0]), str(f[1])))
    gold = sum(1 for r in (gold_terms or {}).values() if r in ("wrong", "missing"))
    conf = confidence if isinstance(confidence, (int, float)) else None
    return Candidate(specimen_id, conf, tuple(findings), gold)
