"""Tests never touch the user's world: every test and subprocess has its own HOME and XDG dirs."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path


def test_home_and_config_are_per_test(tmp_path: Path) -> None:
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    for var in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        assert not Path(os.environ[var]).resolve().is_relative_to(real_home), var
    code = (
        "from PySide6.QtCore import QSettings;"
        "s = QSettings('herbdesk', 'herbdesk'); s.setValue('probe', 1); s.sync();"
        "print(s.fileName())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(out).resolve().is_relative_to(Path(os.environ["XDG_CONFIG_HOME"]).resolve())
    assert not Path(out).resolve().is_relative_to(real_home)
