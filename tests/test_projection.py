"""Cost and time ahead (monitor/projection.py): the numbers on a known run, the same from
RunState's columns (window, summary) and from the live fold (terminal, alerts), and their
presence in `herbdesk summary` of a running run."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from test_cli import _herbdesk

from herbdesk.events.types import Event, EventType
from herbdesk.monitor.projection import ProjectionFold, cost_text, sentence, time_text
from herbdesk.runstate.state import RunState

T0 = 1_750_000_000.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def known_run(finish_at: list[float], costs: list[float], total: int = 10) -> list[Event]:
    evs = [
        Event(EventType.EXTRACTION_STARTED, "r", 1, _iso(T0), data={"total": total}),
    ]
    for i, (t, c) in enumerate(zip(finish_at, costs, strict=True)):
        evs.append(
            Event(
                EventType.SPECIMEN_COMPLETED,
                "r",
                len(evs) + 1,
                _iso(T0 + t),
                specimen_id=f"s{i}",
                sequence=i + 1,
                data={"image": f"{i}.jpg", "success": True, "cost_usd": c},
            )
        )
    return evs


def test_projection_numbers_on_a_known_state() -> None:
    # 4 of 10 done at 5, 20, 30, 40 s costing 1..4 cents: the mean gap to now is 10 s (sd
    # 4.08), the mean cost 2.5 cents (sd 1.29); 6 to go
    evs = known_run([5, 20, 30, 40], [0.01, 0.02, 0.03, 0.04])
    state = RunState()
    state.apply_batch(evs)
    p = state.projection(now=T0 + 40)
    assert p is not None and p.remaining == 6 and p.basis == 4
    half_c = 1.96 * math.sqrt(0.0005 / 3) * math.sqrt(6 * (1 + 6 / 4))
    assert p.cost is not None
    assert p.cost.mid == pytest.approx(0.10 + 6 * 0.025)
    assert (p.cost.low, p.cost.high) == pytest.approx((0.25 - half_c, 0.25 + half_c))
    half_t = 1.96 * math.sqrt(50 / 3) * math.sqrt(15)
    assert p.seconds_left is not None
    assert p.seconds_left.mid == pytest.approx(60.0)
    assert (p.seconds_left.low, p.seconds_left.high) == pytest.approx((60 - half_t, 60 + half_t))
    assert state.eta_s(T0 + 40) == pytest.approx(p.seconds_left.mid)  # the ETA card's figure
    assert cost_text(p) == "$0.2500 ($0.1520-$0.3480)"
    assert time_text(p) == "1m00s (0m29s-1m31s)"
    # the live fold of the same events says the same
    fold = ProjectionFold()
    for ev in evs:
        fold.on_event(ev)
    q = fold.projection(T0 + 40)
    assert q is not None
    assert (q.cost, q.seconds_left, q.remaining) == (
        pytest.approx(p.cost),
        pytest.approx(p.seconds_left),
        p.remaining,
    )


def test_the_range_narrows_as_specimens_finish_and_is_none_when_unknown() -> None:
    times = [5.0, 20, 30, 40, 52, 60, 71, 80, 93]
    costs = [0.01, 0.02, 0.03, 0.04, 0.01, 0.03, 0.02, 0.04, 0.02]
    widths = []
    for n in (4, 6, 9):
        state = RunState()
        state.apply_batch(known_run(times[:n], costs[:n]))
        p = state.projection(now=T0 + times[n - 1])
        assert p is not None and p.cost is not None
        widths.append(p.cost.high - p.cost.low)
    assert widths[0] > widths[1] > widths[2] > 0
    # two finished: no projection; no recorded cost (OCR): time only; paused: cost only
    few = RunState()
    few.apply_batch(known_run([5, 20], [0.01, 0.02]))
    assert few.projection(T0 + 20) is None and sentence(few.projection(T0 + 20)) == ""
    free = RunState()
    free.apply_batch(known_run([5, 20, 30], [None, None, None]))  # type: ignore[list-item]
    p = free.projection(T0 + 30)
    assert p is not None and p.cost is None and p.seconds_left is not None
    paused = RunState()
    paused.apply_batch(known_run([5, 20, 30], [0.01, 0.01, 0.01]))
    pause = {"reason": "budget"}
    paused.apply(Event(EventType.EXTRACTION_PAUSED, "r", 9, _iso(T0 + 31), data=pause))
    p = paused.projection(T0 + 31)
    assert p is not None and p.seconds_left is None
    assert p.cost is not None and p.cost.low == p.cost.high == pytest.approx(0.10)


def test_summary_of_a_running_run_shows_the_projection(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    evs = known_run([5, 20, 30, 40], [0.01, 0.02, 0.03, 0.04])
    (run / "events.jsonl").write_bytes(b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in evs))
    out = _herbdesk("summary", "--json", str(run))
    assert out.returncode == 0, out.stderr
    p = json.loads(out.stdout)["projection"]
    assert p["remaining"] == 6 and p["basis"] == 4
    lo, mid, hi = p["cost_usd"]
    assert mid == pytest.approx(0.25) and lo < mid < hi
    assert p["seconds_left"][0] <= p["seconds_left"][1] <= p["seconds_left"][2]
    text = _herbdesk("summary", str(run))
    assert "projected cost" in text.stdout and "$0.2500 ($0.1520-$0.3480" in text.stdout
    assert "projected finish" in text.stdout
