"""Shared test setup: Qt offscreen, sample sheets, a run factory against the fake API."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

if not os.environ.get("QT_QPA_PLATFORM"):  # unset or empty (Qt aborts on an empty name)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
# Started in the background by a non-interactive shell (`bash .ci/run &`), the test run
# inherits SIGINT ignored, and so would every `herbdesk` it starts: the Ctrl-C tests would
# see a process that cannot be interrupted. Children of a process that handles SIGINT get
# the default back at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
os.environ.pop("OPENROUTER_API_KEY", None)  # tests decide which key a run sees

ROOT = Path(__file__).resolve().parents[1]
SPECIMENS = ROOT / "resources" / "specimens"
ISOLATED_VARS = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test, and every subprocess it starts (they inherit os.environ), gets its own HOME
    and XDG dirs: QSettings, keyrings and caches never reach the user's real ones."""
    home = tmp_path_factory.mktemp("home")
    for var in ISOLATED_VARS:
        d = home if var == "HOME" else home / var.lower()
        d.mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(d))
    return home


@pytest.fixture()
def sample_dir(tmp_path: Path) -> Path:
    """A copy of the five real sample sheets."""
    d = tmp_path / "images"
    d.mkdir()
    for p in sorted(SPECIMENS.glob("*.jpg")):
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture()
def many_images(tmp_path: Path):
    """Factory: n distinct small JPEGs (distinct bytes, so distinct specimen ids)."""
    from PIL import Image

    def make(n: int, name: str = "imgs") -> Path:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        for i in range(n):
            img = Image.new("RGB", (64, 48), (i % 256, (i * 7) % 256, (i * 13) % 256))
            img.putpixel((i % 64, (i // 64) % 48), (255, 255, 255))
            img.save(d / f"sheet_{i:04d}.jpg", quality=95)
        return d

    return make
