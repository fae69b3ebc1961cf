"""Validation rules: checkpoint, periodic warning, consecutive-failure breaker."""

from __future__ import annotations

from herbdesk.events import EventBus, EventType
from herbdesk.events.types import Event, HaltReason
from herbdesk.extraction.control import RunControl
from herbdesk.monitor.rules import RulesConsumer, ValidationRules
from herbdesk.monitor.validation import ValidationConfig


def _setup(**cfg: float) -> tuple[EventBus, RunControl, list[Event]]:
    bus = EventBus("r")
    control = RunControl()
    bus.subscribe(RulesConsumer(ValidationRules(ValidationConfig(**cfg)), bus, control))  # type: ignore[arg-type]
    seen: list[Event] = []
    bus.subscribe(seen.append)
    return bus, control, seen


def _finish(bus: EventBus, ok: bool) -> None:
    bus.emit(
        EventType.SPECIMEN_COMPLETED if ok else EventType.SPECIMEN_FAILED,
        data={"success": ok, "error": None if ok else {"kind": "bad_reply", "message": "x"}},
    )


def _of(seen: list[Event], et: str) -> list[Event]:
    return [e for e in seen if e.event_type == et]


def test_checkpoint_passes_at_exactly_half() -> None:
    bus, control, seen = _setup()
    for ok in (True, False, True, False, True):
        _finish(bus, ok)
    cps = _of(seen, EventType.VALIDATION_CHECKPOINT)
    assert len(cps) == 1
    assert cps[0].data["status"] == "passed" and cps[0].data["success_rate"] == 0.6
    assert control.halted is None


def test_checkpoint_fails_below_threshold_and_halts_once() -> None:
    bus, control, seen = _setup()
    for ok in (True, True, False, False, False):
        _finish(bus, ok)
    cps = _of(seen, EventType.VALIDATION_CHECKPOINT)
    assert [c.data["status"] for c in cps] == ["failed"]
    assert cps[0].data["checkpoint"] == 5
    assert control.halted is not None
    assert control.halted.reason == HaltReason.EARLY_VALIDATION_FAILED
    for _ in range(5):  # late finishers of in-flight specimens do not add checkpoints
        _finish(bus, False)
    assert len(_of(seen, EventType.VALIDATION_CHECKPOINT)) == 1


def test_no_checkpoint_before_the_fifth_finished() -> None:
    bus, control, seen = _setup()
    for _ in range(4):
        _finish(bus, False)
    assert not _of(seen, EventType.VALIDATION_CHECKPOINT)
    assert control.halted is None


def test_warning_every_50_only_when_below_threshold() -> None:
    bus, control, seen = _setup(max_consecutive_failures=0)
    # first 50: 40 ok (0.8) -> no warning; next 50: 20 ok -> 60/100 = 0.6 -> warning
    for i in range(50):
        _finish(bus, i % 5 != 0)
    assert not _of(seen, EventType.VALIDATION_WARNING)
    for i in range(50):
        _finish(bus, i % 5 < 2)
    warns = _of(seen, EventType.VALIDATION_WARNING)
    assert len(warns) == 1
    assert warns[0].data["at"] == 100 and warns[0].data["success_rate"] == 0.6
    assert control.halted is None


def test_breaker_halts_after_n_consecutive_failures() -> None:
    bus, control, _ = _setup()
    for _ in range(549):
        _finish(bus, True)
    for i in range(9):
        _finish(bus, False)
        assert control.halted is None, f"halted early after {i + 1} failures"
    _finish(bus, False)
    assert control.halted is not None
    assert control.halted.reason == HaltReason.CONSECUTIVE_FAILURES
    assert "bad_reply" in control.halted.message


def test_breaker_resets_on_success_and_can_be_disabled() -> None:
    bus, control, _ = _setup(max_consecutive_failures=3)
    for ok in (True,) * 5 + (False, False, True, False, False):
        _finish(bus, ok)
    assert control.halted is None
    bus, control, _ = _setup(max_consecutive_failures=0, checkpoint_threshold=0.0)
    for _ in range(30):
        _finish(bus, False)
    assert control.halted is None


def test_config_validation_rejects_nonsense() -> None:
    import pytest

    for bad in ({"checkpoint_after": 0}, {"checkpoint_threshold": 1.5}, {"warning_every": 0}):
        with pytest.raises(ValueError):
            ValidationConfig(**bad).validate()  # type: ignore[arg-type]
