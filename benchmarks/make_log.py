"""Write a realistic synthetic events.jsonl: N specimens, the event mix of a real run.

    python benchmarks/make_log.py OUT.jsonl --specimens 100000 [--fail-rate 0.1]

Each specimen gets queued, processing, and completed/failed events (with realistic data and
metrics snapshots), plus checkpoints and warnings where the validation rules would put them,
through herbdesk's own EventBus and EventLogWriter, so the lines are exactly what a run writes.
A completed event carries the `quality` of a varied Darwin Core record judged by herbdesk's
RecordJudge (benchmarks/records.py) and the record's values (`dwc`), and the snapshots count
usable records, as in a real run.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from pathlib import Path

try:
    from benchmarks.records import RecordMaker
except ImportError:  # run as a script: benchmarks/ is on sys.path, the checkout may not be
    from records import RecordMaker  # type: ignore[no-redef]
from herbdesk.events import EventBus, EventLogWriter, EventType
from herbdesk.monitor.metrics import MetricsAccumulator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--specimens", type=int, default=100_000)
    ap.add_argument("--fail-rate", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-values", action="store_true", help="no dwc values (older logs)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    args.out.unlink(missing_ok=True)
    writer = EventLogWriter(args.out)
    bus = EventBus("bench-run", writer)
    n = args.specimens
    t0 = time.perf_counter()
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": n, "config": {"engine": "openrouter"}})
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    for i, sid in enumerate(ids):
        bus.emit(
            EventType.SPECIMEN_QUEUED,
            specimen_id=sid,
            data={"image": f"DAO{i:07d}.jpg", "path": f"/data/sheets/DAO{i:07d}.jpg"},
        )
    m = MetricsAccumulator(total=n)
    records = RecordMaker(args.seed)
    ok_n = usable_n = 0
    for i, sid in enumerate(ids):
        img = f"DAO{i:07d}.jpg"
        bus.emit(EventType.SPECIMEN_PROCESSING, specimen_id=sid, data={"image": img})
        ok = rng.random() >= args.fail_rate
        t_ms = rng.uniform(8000, 40000)
        conf = rng.uniform(0.4, 0.98) if ok else None
        rec = records.record(i) if ok else {}
        quality = records.quality(rec) if ok else None
        usable = bool(quality and quality["usable"])
        m.add(ok, t_ms, conf, 1400, 0.0011, usable=usable)
        data = {
            "image": img,
            "success": ok,
            "fields_extracted": len(rec),
            "confidence": round(conf, 4) if conf else None,
            "processing_time_ms": round(t_ms, 1),
            "attempts": 1,
            "tokens": 1400,
            "cost_usd": 0.0011,
        }
        if not ok:
            data["error"] = {"kind": "bad_reply", "message": "reply is not a JSON object"}
        if quality is not None:
            data["quality"] = quality
        if ok and not args.no_values:  # the record's values, as a run's events carry them
            data["dwc"] = {term: v["value"] for term, v in rec.items()}
        bus.emit(
            EventType.SPECIMEN_COMPLETED if ok else EventType.SPECIMEN_FAILED,
            specimen_id=sid,
            sequence=i + 1,
            data=data,
            metrics=m.snapshot(i * 20.0 + 1),
        )
        ok_n += ok
        usable_n += usable
        if i + 1 == 5:
            bus.emit(
                EventType.VALIDATION_CHECKPOINT,
                data={"checkpoint": 5, "status": "passed", "success_rate": ok_n / 5},
            )
    bus.emit(EventType.EXTRACTION_COMPLETED, data={"processed": n, "succeeded": ok_n})
    writer.close()
    size = args.out.stat().st_size
    print(
        f"wrote {bus.last_seq:,} events, {size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s"
        f" ({usable_n:,} usable records of {ok_n:,}, {len(records._cache):,} judgements)"
    )


if __name__ == "__main__":
    main()
