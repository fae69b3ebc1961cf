"""Checks before the first specimen: a run that cannot work fails in seconds, not hours."""

from __future__ import annotations

import os
from collections.abc import Sized
from pathlib import Path
from typing import TYPE_CHECKING

from herbdesk.extraction.engines.base import Check, Engine

if TYPE_CHECKING:
    from herbdesk.extraction.config import RunConfig


def run_preflight(images: Sized, config: RunConfig, run_dir: Path, engine: Engine) -> list[Check]:
    """Images found, prompt present, output writable, then the engine's own checks."""
    checks: list[Check] = []
    if images:
        checks.append(Check("images", True, f"{len(images)} image(s) found"))
    else:
        where = ", ".join(str(p) for p in config.inputs) or "(no input)"
        checks.append(Check("images", False, f"no jpg/jpeg/png/tif/tiff images under {where}"))
    if config.prompt_path is not None and not Path(config.prompt_path).is_file():
        checks.append(Check("prompt", False, f"prompt file not found: {config.prompt_path}"))
    probe = run_dir / ".herbdesk-write-test"
    try:
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
        checks.append(Check("output", True, f"{run_dir} is writable"))
    except OSError as exc:
        checks.append(Check("output", False, f"cannot write to {run_dir}: {exc}"))
    if all(c.ok for c in checks):
        try:
            checks.extend(engine.preflight())
        except Exception as exc:  # preflight must report, never crash the run
            checks.append(Check("engine", False, f"{type(exc).__name__}: {exc}"))
    return checks


def free_disk_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
