"""The core stays Qt-free: everything outside herbdesk/ui imports without PySide6 or pyqtgraph."""

from __future__ import annotations

import ast
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


# Private names herbdesk reaches into on a third-party object, with the reason.
THIRD_PARTY_PRIVATE = {
    # httpx's transport takes no pool from outside; the deadline pool must be its pool.
    ("extraction/engines/deadline.py", "_pool"),
}


def _private_defs(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, module names, self/cls attrs."""
    names: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
            names.add(n.target.id)
        elif (
            isinstance(n, ast.Attribute)
            and isinstance(n.ctx, ast.Store)
            and isinstance(n.value, ast.Name)
            and n.value.id in ("self", "cls")
        ):
            names.add(n.attr)
    return {x for x in names if x.startswith("_") and not x.startswith("__")}


def test_no_module_reaches_into_another_modules_private_names() -> None:
    """What two modules share is public and documented: no `from m import _x`, and no
    `obj._x` where only other modules define `_x` (the folds once wrote 16 private members
    of RunState from two other files)."""
    trees = {p: ast.parse(p.read_text()) for p in (ROOT / "herbdesk").rglob("*.py")}
    defined: dict[str, set[Path]] = {}
    for path, tree in trees.items():
        for name in _private_defs(tree):
            defined.setdefault(name, set()).add(path)
    bad = []
    for path, tree in trees.items():
        rel = path.relative_to(ROOT / "herbdesk").as_posix()
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("herbdesk"):
                bad += [
                    f"{rel}:{n.lineno} imports {n.module}.{a.name}"
                    for a in n.names
                    if a.name.startswith("_")
                    and not a.name.startswith("__")
                    and (n.module, a.name) != ("herbdesk.events", "_scan")  # the C extension
                ]
            elif (
                isinstance(n, ast.Attribute)
                and n.attr.startswith("_")
                and not n.attr.startswith("__")
                and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"))
                and (rel, n.attr) not in THIRD_PARTY_PRIVATE
            ):
                owners = defined.get(n.attr, set())
                if owners and path not in owners:
                    bad.append(f"{rel}:{n.lineno} reaches .{n.attr} of another module")
    assert not bad, "\n".join(bad)


def test_no_merge_conflict_markers_are_left_in_the_tree() -> None:
    """A conflict resolved in one file of a merge left markers in a docstring and a doc page
    (they parse); this finds any in the files the project ships or documents."""
    root = Path(__file__).resolve().parent.parent
    marker = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.M)
    found = []
    for sub in ("herbdesk", "tests", "docs", "benchmarks", "packaging", "resources"):
        for path in (root / sub).rglob("*"):
            if path.suffix in {".py", ".md", ".txt", ".toml", ".c", ".spec", ".json", ".sh"}:
                text = path.read_text(encoding="utf-8", errors="replace")
                found += [f"{path.relative_to(root)}" for _ in marker.finditer(text)]
    for name in ("README.md", "pyproject.toml", "setup.py"):
        if marker.search((root / name).read_text(encoding="utf-8")):
            found.append(name)
    assert not found, found
