"""The core stays Qt-free: everything outside herbdesk/ui imports without PySide6 or pyqtgraph."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import herbdesk

ROOT = Path(__file__).resolve().parents[1]
QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|shiboken6|pyqtgraph)\b", re.M)


def _core_modules() -> list[str]:
    mods = []
    for info in pkgutil.walk_packages(herbdesk.__path__, "herbdesk."):
        if info.name.startswith("herbdesk.ui") or info.name == "herbdesk.__main__":
            continue
        mods.append(info.name)
    return mods


def test_core_imports_no_qt() -> None:
    mods = _core_modules()
    assert "herbdesk.extraction.pipeline" in mods and "herbdesk.runstate.state" in mods
    code = (
        "import sys, importlib\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6'))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"core modules pulled in Qt: {r.stdout.strip()}"


def test_no_core_source_mentions_qt() -> None:
    for path in (ROOT / "herbdesk").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "herbdesk").parts:
            continue
        text = path.read_text()
        assert not QT_IMPORT.search(text), f"{path} imports Qt"


def test_every_subpackage_is_listed_for_installation() -> None:
    """A package missing from pyproject's list works in a checkout but not when installed."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(conf["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "herbdesk").rglob("__init__.py")
    }
    assert found <= listed, f"not installed: {sorted(found - listed)}"
