"""The run directory: its layout, run.json, and what a resumed run takes from it."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from herbdesk import __version__
from herbdesk.common.fsnames import json_safe
from herbdesk.events.layout import CSV, EVENTS, METRICS, RAW, RUN_JSON  # noqa: F401 (runfiles.EVENTS)


def new_run_id() -> str:
    """Sortable and readable: run-20261126-211849-3f2a."""
    now = datetime.now(UTC)
    return f"run-{now:%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"


def write_run_json(run_dir: Path, info: dict[str, Any]) -> None:
    """Replace run.json atomically (it is a summary, not a log: rewriting it is safe)."""
    tmp = run_dir / (RUN_JSON + ".tmp")
    opts = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    tmp.write_bytes(orjson.dumps(json_safe(info), option=opts))  # names as \xNN if not UTF-8
    os.replace(tmp, run_dir / RUN_JSON)


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_JSON
    if not path.exists():
        return {}
    try:
        obj = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def environment_info() -> dict[str, Any]:
    """Versions and host, recorded so a run can be reproduced and compared."""
    versions: dict[str, str] = {"herbdesk": __version__, "python": sys.version.split()[0]}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("httpx", "rapidocr", "onnxruntime", "Pillow", "PySide6-Essentials"):
        with contextlib.suppress(PackageNotFoundError):
            versions[pkg] = version(pkg)
    return {"versions": versions, "host": socket.gethostname(), "platform": platform.platform()}
