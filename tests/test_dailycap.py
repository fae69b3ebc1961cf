"""A free model's daily cap turned into days, at the start of a run (terminal and window), and
the projection on the window's Cost and ETA cards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fakeapi import FakeApi
from PySide6.QtGui import QGuiApplication
from test_cli import _herbdesk
from test_projection import T0, known_run

from herbdesk.events.types import Event, EventType
from herbdesk.extraction.limits import daily_cap_note
from herbdesk.runstate.state import RunState

EXPECTED = (
    "2,885 sheets at 50 requests a day: about 58 days (1,000 a day once you have bought "
    "credits: 3 days); choose a paid model or run the OCR engine"
)


def test_daily_cap_in_days_for_a_free_model_only() -> None:
    assert daily_cap_note("openrouter", "qwen/qwen2.5-vl-72b-instruct:free", 2885) == EXPECTED
    assert daily_cap_note("openrouter", "", 2885) == EXPECTED  # the default model is free
    assert daily_cap_note("openrouter", "openai/gpt-4o", 2885) is None  # a paid model
    assert daily_cap_note("ocr", "", 2885) is None
    assert daily_cap_note("openrouter", "x:free", 50) is None  # fits in a day


def test_herbdesk_run_with_a_free_model_says_the_days_at_start(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    with FakeApi(models=["test/vision-model:free"]) as api:
        r = _herbdesk(
            "run",
            str(many_images(51)),
            "--engine",
            "openrouter",
            "--model",
            "test/vision-model:free",
            "--base-url",
            api.base_url,
            "--requests-per-minute",
            "0",  # unpaced, and a budget ends it after a few: the message is at the start
            "--budget",
            "0.002",
            "--out",
            str(tmp_path / "runs"),
            env={"OPENROUTER_API_KEY": "sk-test-good"},
        )
    assert r.returncode == 7, r.stderr
    assert (
        "WARNING: 51 sheets at 50 requests a day: about 2 days (1,000 a day once you have "
        "bought credits: 1 day); choose a paid model or run the OCR engine"
    ) in r.stderr.replace("\n", " ")


def test_window_banner_says_the_days_and_kpis_show_the_projection(qtbot) -> None:
    from herbdesk.ui.banners import BannerBar
    from herbdesk.ui.kpis import KpiStrip

    state = RunState()
    started = Event(
        EventType.EXTRACTION_STARTED,
        "r",
        1,
        "2025-06-15T15:06:40.000Z",
        data={"total": 2885, "config": {"engine": "openrouter", "model": "m:free"}},
    )
    state.apply(started)
    bar = BannerBar()
    qtbot.addWidget(bar)
    bar.update_from(state)
    assert ("warning", EXPECTED[0].upper() + EXPECTED[1:] + ".") in bar.texts()

    state = RunState()
    state.apply_batch(known_run([5, 20, 30, 40], [0.01, 0.02, 0.03, 0.04]))
    strip = KpiStrip()
    qtbot.addWidget(strip)
    strip.resize(1900, 80)
    strip.show()
    qtbot.waitExposed(strip)
    import herbdesk.ui.kpis as kpis

    real_time = kpis.time.time
    kpis.time.time = lambda: T0 + 40  # type: ignore[assignment]
    try:
        strip.update_from(state)
    finally:
        kpis.time.time = real_time  # type: ignore[assignment]
    QGuiApplication.processEvents()
    cost, eta = strip.cards["cost"], strip.cards["eta"]
    assert cost.value.text() == "$0.1000 → $0.2500"
    assert "projected total $0.2500 ($0.1520-$0.3480)" in cost.toolTip()
    assert eta.value.text() == "1m 00s" and "1m00s (0m29s-1m31s)" in eta.toolTip()
    strip.resize(800, 80)  # a laptop beside the setup dock: the spent figure, never cut
    QGuiApplication.processEvents()
    assert cost.value.shown_text()[1] in ("$0.1000 → $0.2500", "$0.1000")
    assert not cost.value.is_elided()
