"""One spot-check review of a run: its queue of records, their verdicts, the estimate.

Qt-free, for the window's review mode (herbdesk/ui/review.py) and `herbdesk review`. The
records are the export's (per specimen its newest successful record in raw.jsonl, the same
values an export holds), with the quality the run recorded for them (specimen.completed),
or judged as the export judges them where the log has none; known-answer results come from
the log's `quality.gold` events. Verdicts are appended through a ReviewAppender
(herbdesk/extraction/reviewlog.py) and folded into the session's ledger as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.events.layout import EVENTS
from herbdesk.export.records import (
    Record,
    ScanCounts,
    newest_successes,
    read_records,
    require_records,
)
from herbdesk.export.source import ExportError, build_judge, resolve_source
from herbdesk.extraction.reviewlog import (
    BusAppender,
    LogAppender,
    ReviewAppender,
    ReviewRefused,
)
from herbdesk.quality.review import (
    ACCEPT,
    CORRECT,
    DEFAULT_SAMPLE,
    REJECT,
    SAMPLE_RANDOM,
    TermEstimate,
    Verdict,
    VerdictLedger,
    build_queue,
    candidate,
    estimate,
    random_reviewed,
    random_sample,
    read_verdicts,
)

# Always shown for review, filled or not (a term the model missed can be corrected); then
# whatever else the record holds, in the Darwin Core order.
REVIEW_TERMS: tuple[str, ...] = (
    "scientificName",
    "catalogNumber",
    "recordedBy",
    "recordNumber",
    "eventDate",
    "country",
    "stateProvince",
    "locality",
)


@dataclass
class ReviewRecord:
    specimen_id: str
    image: str
    image_path: str
    values: dict[str, str]  # as extracted
    confidence: float | None
    findings: tuple[tuple[str, str], ...]
    gold: dict[str, str]  # term -> correct | wrong | missing (known-answer sheets)
    sample: str  # random | risk
    risk: float

    def terms(self) -> list[str]:
        extra = [t for t in DWC_TERMS if t in self.values and t not in REVIEW_TERMS]
        return [*REVIEW_TERMS, *extra]

    def flagged(self, term: str) -> list[str]:
        """What marks the term as risky: its quality findings and a gold mismatch."""
        out = [check for check, t in self.findings if term in t.split("/")]
        if self.gold.get(term) in ("wrong", "missing"):
            out.append(f"gold {self.gold[term]}")
        return out


@dataclass
class ReviewSession:
    run_dir: Path | None
    run_id: str
    records: list[ReviewRecord]  # the queue, in review order
    population: int  # successful records: what the estimate extrapolates to
    sample_size: int
    drawn: list[str]  # the random sample's specimen ids
    ledger: VerdictLedger = field(default_factory=VerdictLedger)
    appender: ReviewAppender | None = None
    read_only_reason: str = ""  # why verdicts cannot be recorded, when they cannot

    @classmethod
    def load(
        cls,
        path: Path,
        sample_size: int = DEFAULT_SAMPLE,
        open_appender: Callable[[Path], ReviewAppender] | None = None,
    ) -> ReviewSession:
        """The review of the run `path` names (a run directory or its events.jsonl).

        `open_appender` takes the run directory for appending (LogAppender.open, or a live
        run's BusAppender); if it refuses, the session is read-only and says why. ExportError
        if `path` holds no records.
        """
        source = resolve_source(path)
        counts = ScanCounts()
        chosen = newest_successes(source.raw_path, counts)
        require_records(source.raw_path, counts)
        judge = build_judge(source)
        run_dir = source.run_dir
        events = run_dir / EVENTS if run_dir is not None else None
        gold, judged = _from_log(events) if events is not None else ({}, {})
        recs: dict[str, Record] = {r.specimen_id: r for r in read_records(source.raw_path, chosen)}
        cands = []
        for sid, rec in recs.items():
            # the run judged each record as it finished (specimen.completed's quality): taken
            # from there where the event holds this very record, judged again only otherwise
            # (a log without events, a record the log did not get): judging every record
            # again was most of a 200,000-record review's 22 s
            was = judged.get(sid)
            q = was[1] if was is not None and was[0] == rec.values else judge.quality(rec.values)
            cands.append(candidate(sid, rec.confidence, q, gold.get(rec.image)))
        run_id = source.provenance.run_id or (run_dir.name if run_dir else source.raw_path.stem)
        queue = build_queue(cands, sample_size, seed=run_id)
        by_id = {c.specimen_id: c for c in cands}
        records = [
            ReviewRecord(
                specimen_id=item.specimen_id,
                image=recs[item.specimen_id].image,
                image_path=str(recs[item.specimen_id].extra.get("image_path") or ""),
                values=recs[item.specimen_id].values,
                confidence=recs[item.specimen_id].confidence,
                findings=by_id[item.specimen_id].findings,
                gold=dict(gold.get(recs[item.specimen_id].image) or {}),
                sample=item.sample,
                risk=item.risk,
            )
            for item in queue
        ]
        session = cls(
            run_dir=run_dir,
            run_id=run_id,
            records=records,
            population=len(recs),
            sample_size=sample_size,
            drawn=random_sample(cands, sample_size, run_id),
            ledger=read_verdicts(events) if events is not None else VerdictLedger(),
        )
        if run_dir is None:
            session.read_only_reason = (
                f"{source.raw_path} is not a run's raw.jsonl beside its events.jsonl: "
                "verdicts cannot be recorded"
            )
        elif open_appender is not None:
            try:
                session.appender = open_appender(run_dir)
            except ReviewRefused as exc:
                session.read_only_reason = str(exc)
        return session

    # --- verdicts ---------------------------------------------------------------------

    def verdict(self, rec: ReviewRecord, term: str) -> Verdict | None:
        return self.ledger.of(rec.specimen_id).get(term)

    def record_verdict(
        self, rec: ReviewRecord, term: str, verdict: str, value: str = ""
    ) -> Verdict:
        """Append one verdict to the log and fold it; ReviewRefused if it cannot be recorded
        (read-only, or the log refused: nothing is folded then)."""
        if self.appender is None:
            raise ReviewRefused(self.read_only_reason or "verdicts cannot be recorded here")
        extracted = rec.values.get(term, "")
        if verdict == CORRECT and value.strip() == extracted.strip():
            verdict = ACCEPT  # "corrected" to what it was: it was right
        if verdict == CORRECT and not value.strip():
            verdict = REJECT
        args = (rec.specimen_id, term, verdict, extracted, value.strip(), rec.sample)
        try:
            ev = self.appender.append(*args)
        except ReviewRefused:
            if not self._live_run_ended():
                raise
            # the live run has closed its log: append as to any log nobody writes
            assert self.run_dir is not None
            self.appender = LogAppender.open(self.run_dir)
            ev = self.appender.append(*args)
        self.ledger.apply(ev)
        got = self.ledger.of(rec.specimen_id)[term]
        return got

    def _live_run_ended(self) -> bool:
        return (
            isinstance(self.appender, BusAppender)
            and self.appender.run.log_closed
            and self.run_dir is not None
        )

    def reviewed_terms(self, rec: ReviewRecord) -> int:
        return sum(1 for t in rec.terms() if self.verdict(rec, t) is not None)

    def first_unreviewed(self) -> int:
        """The first record of the queue without a verdict on every shown term (0 if all)."""
        for i, rec in enumerate(self.records):
            if self.reviewed_terms(rec) < len(rec.terms()):
                return i
        return 0

    def close(self) -> None:
        if self.appender is not None:
            self.appender.close()
            self.appender = None

    # --- the estimate -----------------------------------------------------------------

    def estimate(self) -> list[TermEstimate]:
        return estimate(self.ledger, self.population)

    def sample_reviewed(self) -> int:
        return random_reviewed(self.ledger)

    def summary(self) -> dict[str, Any]:
        """What `herbdesk review --json` prints."""
        risk = sum(
            1
            for terms in self.ledger.by_specimen.values()
            if terms and all(v.sample != SAMPLE_RANDOM for v in terms.values())
        )
        return {
            "run_id": self.run_id,
            "records": self.population,
            "sample": {
                "size": self.sample_size,
                "drawn": len(self.drawn),
                "reviewed": self.sample_reviewed(),
            },
            "risk_reviewed": risk,
            "verdicts": self.ledger.events,
            "terms": [e.to_dict() for e in self.estimate()],
        }

    def estimate_lines(self) -> list[str]:
        """One line per term: the estimate, then the wrong records expected."""
        return [f"{e.text()}; {e.wrong_text()}" for e in self.estimate()]


def _from_log(
    events: Path,
) -> tuple[dict[str, dict[str, str]], dict[str, tuple[dict[str, str], dict[str, Any]]]]:
    """From the log, in one pass: image -> term -> correct|wrong|missing (quality.gold events),
    and specimen id -> (the values, the quality) of its newest specimen.completed."""
    gold: dict[str, dict[str, str]] = {}
    judged: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
    try:
        fh = open(events, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return gold, judged
    with fh:
        for line in fh:
            is_gold = b'"quality.gold"' in line
            if not is_gold and b'"specimen.completed"' not in line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            data = obj.get("data") if isinstance(obj, dict) else None
            if not isinstance(data, dict):
                continue
            if is_gold and isinstance(data.get("terms"), dict):
                gold[str(data.get("image") or "")] = {
                    str(t): str(r) for t, r in data["terms"].items()
                }
            elif obj.get("event_type") == "specimen.completed":
                sid, dwc, quality = obj.get("specimen_id"), data.get("dwc"), data.get("quality")
                if isinstance(sid, str) and isinstance(dwc, dict) and isinstance(quality, dict):
                    values = {str(t): str(v).strip() for t, v in dwc.items() if str(v).strip()}
                    judged[sid] = (values, quality)
    return gold, judged


__all__ = ["REVIEW_TERMS", "ExportError", "ReviewRecord", "ReviewSession"]
