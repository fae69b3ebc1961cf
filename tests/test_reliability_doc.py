"""docs/reliability.md names the test behind each guarantee: every name must exist, so the
document cannot silently outlive a renamed or deleted test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_reliability_md_exists() -> None:
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    named: list[tuple[str, str]] = []
    for line in doc.splitlines():
        current = None
        for m in re.finditer(r"`(?:(test_\w+\.py))?::(\w+)(?:\[\w+\])?`", line):
            current = m.group(1) or current
            assert current, f"a test reference without its file: {line}"
            named.append((current, m.group(2)))
    assert len(named) >= 40
    defined: dict[str, set[str]] = {}
    for file, name in named:
        if file not in defined:
            tree = ast.parse((ROOT / "tests" / file).read_text(encoding="utf-8"))
            defined[file] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in defined[file], f"docs/reliability.md names a missing test {file}::{name}"
