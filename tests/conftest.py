"""Shared test setup: Qt offscreen, sample sheets, a run factory against the fake API."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.pop("OPENROUTER_API_KEY", None)  # tests decide which key a run sees

ROOT = Path(__file__).resolve().parents[1]
SPECIMENS = ROOT / "resources" / "specimens"


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
