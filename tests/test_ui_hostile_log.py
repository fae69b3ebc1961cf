"""An opened log whose checkpoint carries nonsense values: the window renders it without
raising on any refresh, and a halted run still shows its red banner."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config, run

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings

from herbdesk.ui.mainwindow import MainWindow


@pytest.fixture(scope="module")
def halted_log(tmp_path_factory: pytest.TempPathFactory, many_images_module) -> Path:
    """A real run halted at its checkpoint (every reply is prose)."""
    out = tmp_path_factory.mktemp("runs")
    with FakeApi(default="garbage") as api:
        outcome, _ = run(api_config(many_images_module, out, api.base_url, concurrency=1))
    assert outcome.reason == "early_validation_failed"
    return outcome.run_dir / "events.jsonl"


@pytest.fixture(scope="module")
def many_images_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    d = tmp_path_factory.mktemp("imgs")
    for i in range(8):
        Image.new("RGB", (64, 48), (i * 30, 90, 200 - i * 20)).save(d / f"s{i}.jpg")
    return d


def _rewrite_checkpoint(src: Path, dst: Path, data: object) -> None:
    lines = []
    for raw in src.read_bytes().splitlines():
        ev = orjson.loads(raw)
        if ev["event_type"] == "validation.checkpoint":
            if data is None:
                continue  # the line was lost
            ev["data"] = data(ev["data"]) if callable(data) else data
        lines.append(orjson.dumps(ev))
    dst.write_bytes(b"\n".join(lines) + b"\n")


HOSTILE = {
    "rate-n/a": lambda d: {**d, "success_rate": "n/a"},
    "rate-null": lambda d: {**d, "success_rate": None},
    "rate-table": lambda d: {**d, "success_rate": {"x": 1}, "threshold": "half"},
    "rate-nan-text": lambda d: {**d, "success_rate": "NaN"},
    "checkpoint-list": lambda d: {**d, "checkpoint": [5], "success_rate": [0.1]},
    "status-odd": lambda d: {**d, "status": {"failed": True}, "success_rate": "?"},
    "data-not-a-table": "checkpoint",
    "checkpoint-missing": None,
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_checkpoint_renders_and_the_halt_shows_red(
    qtbot, tmp_path: Path, halted_log: Path, case: str
) -> None:
    log = tmp_path / "events.jsonl"
    _rewrite_checkpoint(halted_log, log, HOSTILE[case])
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    # pytest-qt fails the test on any exception raised in a slot (every refresh is one)
    assert win.open_path(log)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20_000)
    win.document.flush()
    win.replay.seek(0)
    win.replay.seek(len(win.replay.events))  # the refreshes of a replay, to the end
    win.document.flush()
    assert win.document.state.status == "failed"
    errors = [t for level, t in win.banners.texts() if level == "error"]
    assert errors, win.banners.texts()
    # the halt itself, in red: the checkpoint's banner or the run's (not only quality's)
    assert any(t.startswith(("Checkpoint ", "Run halted")) for t in errors), errors
    win.close()
